//! The durable pull consumer that feeds the fold.
//!
//! sled is the source of truth for the position: each session (re)creates the consumer to deliver from the stored
//! `states_at` + 1 (what was folded after it is replayed into the states: [`crate::states`]). Per pulled batch: fold
//! into one sled batch (with a checkpoint of the states when due), flush, then ack the last message (ack policy `all`).

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use caselink_bus::streams::EVENTS_STREAM;
use caselink_bus::subjects::partition_filters;
use caselink_runtime::Cancel;
use futures::StreamExt;
use tokio::sync::Notify;

use crate::fold::{prepare, Applied, Folder, Prepared};
use crate::states::{CachePolicy, StateCache};
use crate::store::Store;

/// How long the fold waits for more messages before folding a partial batch.
const BATCH_IDLE: Duration = Duration::from_millis(1);

/// What the fold consumes and how.
#[derive(Debug, Clone)]
pub struct FoldOptions {
    /// The partitions this aggregator owns (all 64 on a single node).
    pub partitions: Range<u16>,
    /// Messages per pulled batch (= per sled batch).
    pub batch: usize,
    /// Screening and alerts.
    pub folder: Folder,
    /// Notified after a flushed batch that wrote alerts to the outbox.
    pub wake: Option<Arc<Notify>>,
    /// When the fold writes its states back, and how many it keeps in memory.
    pub cache: CachePolicy,
    /// Flush (and so acknowledge durably) every batch. A rebuild, which starts over if interrupted, flushes only the
    /// batches that carry a checkpoint.
    pub flush_every_batch: bool,
}

impl Default for FoldOptions {
    /// All partitions, batches of 1,000, screening with the default rules, no alerts.
    fn default() -> Self {
        FoldOptions {
            partitions: 0..caselink_domain::PARTITIONS,
            batch: 1000,
            folder: Folder {
                screener: Some(Arc::new(caselink_screening::Screener::new(
                    caselink_screening::RuleSet::default(),
                ))),
                alerts: false,
            },
            wake: None,
            cache: CachePolicy::default(),
            flush_every_batch: true,
        }
    }
}

impl FoldOptions {
    /// The durable consumer's name: one per partition range.
    pub fn durable_name(&self) -> String {
        format!(
            "linkage-p{:02}-p{:02}",
            self.partitions.start,
            self.partitions.end.saturating_sub(1)
        )
    }
}

/// Why the fold stopped.
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("NATS: {0}")]
    Bus(String),
    /// The fold of a batch panicked: a bug, not an outage; the service stops rather than retry it forever.
    #[error("the fold of a batch failed: {0}")]
    Task(String),
}

/// When to stop folding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Run until cancelled.
    Cancelled,
    /// Stop once nothing is pending (used by rebuild).
    CaughtUp,
}

/// Folds the stream into `store` until `until` or `cancel`. Survives NATS outages by reconnecting.
pub async fn run_fold(
    store: Store,
    js: jetstream::Context,
    options: FoldOptions,
    until: Until,
    cancel: Cancel,
) -> Result<u64, FoldError> {
    let total = AtomicU64::new(0);
    reconnecting("fold", &cancel, || {
        fold_session(&store, &js, &options, until, &cancel, &total)
    })
    .await?;
    Ok(total.into_inner())
}

/// Runs `session` (one consumer's life) until it ends cleanly, `cancel`, or a fatal error; after a bus error (NATS
/// down, heartbeat lost, server restarted) it starts a new session a second later.
pub(crate) async fn reconnecting<F, Fut>(
    what: &str,
    cancel: &Cancel,
    mut session: F,
) -> Result<(), FoldError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), FoldError>>,
{
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        match session().await {
            Ok(()) => return Ok(()),
            Err(e @ (FoldError::Store(_) | FoldError::Task(_))) => return Err(e),
            Err(FoldError::Bus(e)) => {
                tracing::warn!(fold = what, error = %e, "lost the stream; retrying in 1 s");
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// The next batch of up to `max` messages: waits for the first (`None` when cancelled), then takes more while they
/// come within [`BATCH_IDLE`]. One sled flush per batch is what makes a fold fast, and `BATCH_IDLE` is all the latency
/// it adds (`ready_chunks` would stop at tokio's cooperative budget, ~127 messages). Messages that failed are left out;
/// the last failure, if any, is returned beside the batch: the caller folds what it got, then starts a new session.
pub(crate) async fn next_batch(
    messages: &mut (impl futures::Stream<Item = Result<jetstream::Message, pull::MessagesError>>
              + Unpin),
    max: usize,
    cancel: &Cancel,
    what: &str,
) -> Result<Option<(Vec<jetstream::Message>, Option<String>)>, FoldError> {
    let first = tokio::select! {
        _ = cancel.cancelled() => return Ok(None),
        first = messages.next() => first,
    };
    let Some(first) = first else {
        return Err(FoldError::Bus(format!("{what}: message stream ended")));
    };
    let mut chunk = vec![first];
    while chunk.len() < max {
        match tokio::time::timeout(BATCH_IDLE, messages.next()).await {
            Ok(Some(m)) => chunk.push(m),
            _ => break,
        }
    }
    let mut batch = Vec::with_capacity(chunk.len());
    let mut failure = None;
    for item in chunk {
        match item {
            Ok(m) => batch.push(m),
            Err(e) => failure = Some(e.to_string()),
        }
    }
    Ok(Some((batch, failure)))
}

async fn fold_session(
    store: &Store,
    js: &jetstream::Context,
    options: &FoldOptions,
    until: Until,
    cancel: &Cancel,
    total: &AtomicU64,
) -> Result<(), FoldError> {
    let bus = |e: &dyn std::fmt::Display| FoldError::Bus(e.to_string());
    let stream = js.get_stream(EVENTS_STREAM).await.map_err(|e| bus(&e))?;
    let consumer = ensure_consumer(&stream, options, store.states_at()?).await?;
    if until == Until::CaughtUp {
        let mut consumer = consumer.clone();
        let info = consumer.info().await.map_err(|e| bus(&e))?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return Ok(());
        }
    }
    let mut messages = consumer
        .stream()
        // Two batches a pull: the client asks for more once half is taken, so the next batch is already here when the
        // fold wants it (with one batch a pull, each fold waited for part of its batch to arrive).
        .max_messages_per_batch(options.batch.saturating_mul(2))
        // A stalled pull (no messages, no heartbeat) is noticed after two of these and the session starts over.
        .heartbeat(Duration::from_secs(2))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| bus(&e))?;
    let mut last_log = Instant::now();
    let mut pipeline = Pipeline {
        store,
        options,
        total,
        cache: Some(StateCache::open(store, options.cache)?),
        inflight: None,
        waiting: None,
    };
    loop {
        let next = {
            let pull = next_batch(&mut messages, options.batch, cancel, "events");
            tokio::pin!(pull);
            if pipeline.waiting.is_none() {
                pull.await?
            } else {
                // Under a backlog the next batch is already buffered; if it is not, the waiting batch goes now.
                match tokio::time::timeout(NEXT_BATCH_WAIT, &mut pull).await {
                    Ok(next) => next?,
                    Err(_) => {
                        pipeline.start_apply().await?;
                        pull.await?
                    }
                }
            }
        };
        let Some((batch, failure)) = next else {
            // Stopping: write the states back, so the next start has nothing to replay.
            pipeline.write_back().await?;
            return Ok(());
        };
        let batch_was_empty = batch.is_empty();
        if !batch.is_empty() {
            let mut inputs = Vec::with_capacity(batch.len());
            let mut pending = u64::MAX;
            for m in &batch {
                let info = m.info().map_err(|e| bus(&e))?;
                pending = info.pending;
                inputs.push((info.stream_sequence, m.payload.clone()));
            }
            // Caught up (or about to lose the session): write the states back with this batch.
            let checkpoint = batch.len() < options.batch
                || pending == 0
                || failure.is_some()
                || pipeline
                    .cache
                    .as_ref()
                    .is_some_and(StateCache::checkpoint_due);
            let prepared = pipeline.prepare(inputs, checkpoint).await?;
            let n = batch.len();
            let last = batch.into_iter().next_back().expect("not empty");
            pipeline.waiting = Some(Waiting {
                prepared,
                flush: options.flush_every_batch || checkpoint,
                last,
                messages: n,
            });
            if last_log.elapsed() > Duration::from_secs(10) {
                let c = pipeline.cache.as_ref().expect("returned");
                let memory = Memory::now();
                tracing::info!(
                    position = c.position,
                    states_at = c.states_at,
                    pending,
                    dirty = c.dirty(),
                    cache_mib = c.bytes() >> 20,
                    allocated_mib = memory.allocated >> 20,
                    active_mib = memory.active >> 20,
                    metadata_mib = memory.metadata >> 20,
                    resident_mib = memory.resident >> 20,
                    folded_total = total.load(Ordering::Relaxed),
                    "fold progress"
                );
                last_log = Instant::now();
            }
            if pending == 0 || n < options.batch {
                // Caught up: no next batch to overlap with; apply and acknowledge now rather than when more arrives.
                pipeline.drain().await?;
                if until == Until::CaughtUp && pending == 0 {
                    return Ok(());
                }
            }
        }
        if let Some(e) = failure {
            // Heartbeat loss or a server restart: resubscribe. Everything folded so far is flushed and acked, and the
            // states are written back (the batch above checkpointed if it held messages; otherwise it is done here),
            // so the next session does not replay this one's work again.
            if batch_was_empty {
                pipeline.write_back().await?;
            } else {
                pipeline.drain().await?;
            }
            return Err(FoldError::Bus(e));
        }
    }
}

/// How long a prepared batch waits for the next one to be pulled before it is applied anyway (its preload would come
/// after; what counts is that the batch is acknowledged without delay when nothing more is coming).
const NEXT_BATCH_WAIT: Duration = Duration::from_millis(2);

/// One consumer session's fold. Pipelined: while one batch is applied to sled and flushed, the next is pulled and
/// prepared (decoded, screened, written into its own sled batch); a batch is acknowledged once it is flushed. sled's
/// reads wait while a batch is applied (it holds sled's write lock throughout), so what the next batch needs from sled
/// is read first ([`StateCache::preload`]), between two applies: batch N is applied once batch N+1 is preloaded.
struct Pipeline<'a> {
    store: &'a Store,
    options: &'a FoldOptions,
    total: &'a AtomicU64,
    /// The states this session has folded but not yet written back; dropped with the session (the next one replays
    /// from `states_at`). In the blocking task while a batch is prepared.
    cache: Option<StateCache>,
    /// The batch being applied, flushed and acknowledged.
    inflight: Option<Inflight>,
    /// The batch prepared and not yet applied.
    waiting: Option<Waiting>,
}

impl Pipeline<'_> {
    /// Waits for the batch in flight (if any) to be applied, flushed and acknowledged.
    async fn settle(&mut self) -> Result<(), FoldError> {
        let Some(done) = self.inflight.take() else {
            return Ok(());
        };
        let applied = done
            .apply
            .await
            .map_err(|e| FoldError::Task(e.to_string()))??;
        if let Some(cache) = self.cache.as_mut() {
            applied.settle(cache);
        }
        if applied.stats.alerts > 0 {
            if let Some(wake) = &self.options.wake {
                wake.notify_one();
            }
        }
        self.total
            .fetch_add(applied.stats.folded as u64, Ordering::Relaxed);
        tracing::debug!(messages = done.messages, stats = ?applied.stats, "batch folded");
        Ok(())
    }

    /// Starts applying the waiting batch (if any), once the one in flight is done: applied, flushed, then acknowledged
    /// at once (not when the next batch is done), so the server sees acks as soon as they are due.
    async fn start_apply(&mut self) -> Result<(), FoldError> {
        let Some(w) = self.waiting.take() else {
            return Ok(());
        };
        self.settle().await?;
        let store = self.store.clone();
        self.inflight = Some(Inflight {
            apply: tokio::spawn(async move {
                let applied = apply_blocking(&store, w.prepared, w.flush).await?;
                w.last
                    .ack()
                    .await
                    .map_err(|e| FoldError::Bus(e.to_string()))?;
                Ok(applied)
            }),
            messages: w.messages,
        });
        Ok(())
    }

    /// Applies and acknowledges everything prepared.
    async fn drain(&mut self) -> Result<(), FoldError> {
        self.start_apply().await?;
        self.settle().await
    }

    /// Prepares a batch off the async workers (CPU work: queries, heartbeats and acks go on meanwhile): once the batch
    /// before is applied (sled is not being written), its states are preloaded, then the waiting batch is applied
    /// while this one is prepared. The cache moves into the blocking task and back; a panicking fold takes it along
    /// and stops the service.
    async fn prepare(
        &mut self,
        inputs: Vec<(u64, bytes::Bytes)>,
        checkpoint: bool,
    ) -> Result<Prepared, FoldError> {
        self.settle().await?;
        let store = self.store.clone();
        let folder = self.options.folder.clone();
        let mut taken = self
            .cache
            .take()
            .ok_or_else(|| FoldError::Task("the fold's state cache was lost".into()))?;
        let (preloaded, done) = tokio::sync::oneshot::channel();
        let preparing = tokio::task::spawn_blocking(move || {
            let messages: Vec<(u64, &[u8])> =
                inputs.iter().map(|(s, p)| (*s, p.as_ref())).collect();
            // Room first, so what is preloaded is not what the preparation's eviction drops.
            taken.evict();
            let result = taken.preload(&store, &messages).and_then(|()| {
                let _ = preloaded.send(());
                prepare(&store, &folder, &mut taken, &messages, checkpoint)
            });
            (taken, result)
        });
        // A preload that failed says so when the preparation's result is taken.
        let _ = done.await;
        self.start_apply().await?;
        let (taken, result) = preparing
            .await
            .map_err(|e| FoldError::Task(e.to_string()))?;
        self.cache = Some(taken);
        Ok(result?)
    }

    /// Applies everything prepared, then writes every dirty state back in a batch of its own, flushed.
    async fn write_back(&mut self) -> Result<(), FoldError> {
        self.drain().await?;
        let prepared = self.prepare(Vec::new(), true).await?;
        let applied = apply_blocking(self.store, prepared, true).await?;
        applied.settle(self.cache.as_mut().expect("returned"));
        tracing::debug!(stats = ?applied.stats, "states written back");
        Ok(())
    }
}

/// A prepared batch not yet applied: it waits until the next batch's states are preloaded.
struct Waiting {
    prepared: Prepared,
    flush: bool,
    last: jetstream::Message,
    messages: usize,
}

/// The allocator's figures (jemalloc, the aggregator's allocator), in bytes: what the process holds (`allocated`), the
/// pages those allocations occupy (`active`: the difference is fragmentation), the allocator's own bookkeeping
/// (`metadata`), and what it has touched and not given back (`resident`: active pages, metadata, and freed pages not yet
/// purged). Zeros when jemalloc does not answer (another allocator).
struct Memory {
    allocated: usize,
    active: usize,
    metadata: usize,
    resident: usize,
}

impl Memory {
    fn now() -> Memory {
        use tikv_jemalloc_ctl::stats;
        // The figures are refreshed only when the epoch advances.
        let _ = tikv_jemalloc_ctl::epoch::advance();
        Memory {
            allocated: stats::allocated::read().unwrap_or(0),
            active: stats::active::read().unwrap_or(0),
            metadata: stats::metadata::read().unwrap_or(0),
            resident: stats::resident::read().unwrap_or(0),
        }
    }
}

/// A prepared batch being applied, flushed and acknowledged.
struct Inflight {
    apply: tokio::task::JoinHandle<Result<Applied, FoldError>>,
    messages: usize,
}

/// Applies a prepared batch off the async workers and, with `flush`, flushes the store (timed in its figures).
async fn apply_blocking(
    store: &Store,
    prepared: Prepared,
    flush: bool,
) -> Result<Applied, FoldError> {
    let store = store.clone();
    Ok(tokio::task::spawn_blocking(move || {
        let mut applied = prepared.apply(&store)?;
        if flush {
            let started = Instant::now();
            store.flush_blocking()?;
            applied.stats.flush_us = crate::fold::micros_since(started);
        }
        Ok::<_, crate::store::StoreError>(applied)
    })
    .await
    .map_err(|e| FoldError::Task(e.to_string()))??)
}

/// (Re)creates the durable consumer to deliver from the store's `states_at` + 1.
///
/// sled, not the consumer, is the source of truth for the position. Recreating at every start means messages a crashed
/// predecessor had pulled but not acked are delivered again at once (not after the ack wait), and a wiped or rebuilt
/// store is refilled from where it really is. The durable consumer stays visible to operators as the fold's lag.
async fn ensure_consumer(
    stream: &jetstream::stream::Stream,
    options: &FoldOptions,
    position: u64,
) -> Result<jetstream::consumer::Consumer<pull::Config>, FoldError> {
    let name = options.durable_name();
    if stream.get_consumer::<pull::Config>(&name).await.is_ok() {
        stream
            .delete_consumer(&name)
            .await
            .map_err(|e| FoldError::Bus(e.to_string()))?;
    }
    let config = pull::Config {
        durable_name: Some(name.clone()),
        description: Some("linkage fold: position mirrored in sled".into()),
        deliver_policy: if position == 0 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: position + 1,
            }
        },
        ack_policy: AckPolicy::All,
        ack_wait: Duration::from_secs(60),
        max_ack_pending: 20_000,
        filter_subjects: partition_filters(options.partitions.clone()),
        ..Default::default()
    };
    tracing::info!(consumer = %name, from = position + 1, "consuming the events stream");
    stream
        .create_consumer(config)
        .await
        .map_err(|e| FoldError::Bus(e.to_string()))
}

/// Deletes the durable consumer (rebuild starts from the beginning).
pub async fn delete_consumer(
    js: &jetstream::Context,
    options: &FoldOptions,
) -> Result<(), FoldError> {
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|e| FoldError::Bus(e.to_string()))?;
    let _ = stream.delete_consumer(&options.durable_name()).await;
    Ok(())
}
