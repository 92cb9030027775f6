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

use crate::background::FoldThreads;
use crate::fold::{prepare, prepare_preloaded, Applied, Folder, Prepared};
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
    /// Where the fold's figures are kept for `GET /metrics` (none: not kept).
    pub metrics: Option<Arc<crate::metrics::FoldMetrics>>,
    /// The unfolded tail the serving aggregator shows in timelines: told the fold's backlog at each pull and what it
    /// has applied after each group ([`crate::tail`]). None in a rebuild.
    pub tail: Option<Arc<crate::tail::Tail>>,
    /// How much lower than the service's the priority (nice value) of the fold's threads is: the fold yields the cores
    /// to the follower of the bus and the queries when they compete ([`crate::background`]); 0 = the same.
    pub nice: i32,
    /// Most threads a preload reads on while the follower of the bus is engaged (the fold near the stream's end,
    /// [`crate::tail::Tail::engaged`]); otherwise 16. Fewer reads in flight leave more of a shared disk to the bus's
    /// fsyncs, which the ingest services' acks and every delivery wait for (BENCHMARKS.md, session 25).
    pub live_readers: usize,
}

/// The fold threads' default nice value (over the service's own).
pub const DEFAULT_FOLD_NICE: i32 = 5;

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
            metrics: None,
            tail: None,
            nice: DEFAULT_FOLD_NICE,
            live_readers: crate::states::MAX_READERS,
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

/// Where a consumer recreated from a stored position starts: after it (from the beginning for 0).
pub(crate) fn deliver_after(position: u64) -> DeliverPolicy {
    if position == 0 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: position + 1,
        }
    }
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
    Ok(Some(fill_batch(first, messages, max).await))
}

/// The next batch if its first message comes within `wait` (already buffered, for `Duration::ZERO`), else `None`; a
/// stream that ended counts as a failure. Never drops a message: only the wait for the first is cut short.
async fn ready_batch(
    messages: &mut (impl futures::Stream<Item = Result<jetstream::Message, pull::MessagesError>>
              + Unpin),
    max: usize,
    wait: Duration,
) -> Option<(Vec<jetstream::Message>, Option<String>)> {
    let first = if wait.is_zero() {
        futures::FutureExt::now_or_never(messages.next())?
    } else {
        tokio::time::timeout(wait, messages.next()).await.ok()?
    };
    Some(match first {
        Some(first) => fill_batch(first, messages, max).await,
        None => (Vec::new(), Some("events: message stream ended".into())),
    })
}

/// A batch from its first message and those that follow within [`BATCH_IDLE`], up to `max`; failed messages are left
/// out and the last failure returned beside it.
async fn fill_batch(
    first: Result<jetstream::Message, pull::MessagesError>,
    messages: &mut (impl futures::Stream<Item = Result<jetstream::Message, pull::MessagesError>>
              + Unpin),
    max: usize,
) -> (Vec<jetstream::Message>, Option<String>) {
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
    (batch, failure)
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
        // A group of batches a pull: the client asks for more once half is taken, so the next batches are already here
        // when the fold wants them (with one batch a pull, each fold waited for part of its batch to arrive).
        .max_messages_per_batch(options.batch.saturating_mul(GROUP_BATCHES))
        // A stalled pull (no messages, no heartbeat) is noticed after two of these and the session starts over.
        .heartbeat(Duration::from_secs(2))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| bus(&e))?;
    let mut last_log = Instant::now();
    let mut last_memory: Option<Instant> = None;
    // Two threads: a group's preparation beside the apply of the group before.
    let threads = FoldThreads::start(2, options.nice, "fold")
        .map_err(|e| FoldError::Task(format!("starting the fold's threads: {e}")))?;
    let mut pipeline = Pipeline {
        store,
        options,
        threads,
        total,
        cache: Some(StateCache::open(store, options.cache)?),
        inflight: None,
        waiting: Vec::new(),
        unsettled: Vec::new(),
    };
    loop {
        // The group's first batch. Under a backlog it is already buffered; if it is not, what waits is applied now.
        let first = if pipeline.waiting.is_empty() {
            next_batch(&mut messages, options.batch, cancel, "events").await?
        } else {
            match ready_batch(&mut messages, options.batch, NEXT_BATCH_WAIT).await {
                Some(batch) => Some(batch),
                None => {
                    pipeline.start_apply().await?;
                    next_batch(&mut messages, options.batch, cancel, "events").await?
                }
            }
        };
        let Some(first) = first else {
            // Stopping: write the states back, so the next start has nothing to replay.
            pipeline.write_back().await?;
            return Ok(());
        };
        // Then every batch already buffered, up to a group: they are preloaded together, and prepared while the group
        // before is applied.
        let mut pulled = vec![first];
        while pulled.len() < GROUP_BATCHES
            && pulled
                .last()
                .is_some_and(|(b, failure)| b.len() == options.batch && failure.is_none())
        {
            match ready_batch(&mut messages, options.batch, Duration::ZERO).await {
                Some(batch) => pulled.push(batch),
                None => break,
            }
        }
        let mut group = Vec::with_capacity(pulled.len());
        let mut failure = None;
        let mut caught_up = false;
        let count = pulled.len();
        for (i, (batch, failed)) in pulled.into_iter().enumerate() {
            failure = failure.or(failed);
            let Some(last) = batch.last().cloned() else {
                continue;
            };
            let mut inputs = Vec::with_capacity(batch.len());
            let mut pending = u64::MAX;
            for m in &batch {
                let info = m.info().map_err(|e| bus(&e))?;
                pending = info.pending;
                inputs.push((info.stream_sequence, m.payload.clone()));
            }
            // Caught up when nothing more is pending at the server. A short batch with more pending is not: the
            // pull ran dry for a moment (preparing ran ahead of delivery), and checkpointing it would write a second's
            // states for a few events.
            caught_up = pending == 0;
            // Caught up (or about to lose the session): write the states back with this batch; under a backlog, with
            // the group's last batch once a checkpoint is due.
            let checkpoint = caught_up
                || failure.is_some()
                || (i + 1 == count
                    && pipeline
                        .cache
                        .as_ref()
                        .is_some_and(StateCache::checkpoint_due));
            group.push(Pulled {
                inputs,
                checkpoint,
                last,
                pending,
            });
        }
        if !group.is_empty() {
            let pending = group.last().map_or(0, |p| p.pending);
            if let Some(tail) = &options.tail {
                tail.fold_backlog(pending);
            }
            pipeline.prepare(group).await?;
            if let Some(metrics) = &options.metrics {
                use crate::metrics::gauge_value;
                let c = pipeline.cache.as_ref().expect("returned");
                metrics.position.set(gauge_value(c.position));
                metrics.states_at.set(gauge_value(c.states_at));
                metrics.pending.set(gauge_value(pending));
                metrics.cache_bytes.set(gauge_value(c.bytes()));
                metrics.dirty_states.set(gauge_value(c.dirty()));
                metrics
                    .waiting_batches
                    .set(gauge_value(pipeline.waiting.len()));
                let (runs, entries, superseded) = store.run_stats();
                metrics.runs.set(gauge_value(runs));
                metrics.run_entries.set(gauge_value(entries));
                metrics.run_superseded.set(gauge_value(superseded));
                if last_memory.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    let memory = Memory::now();
                    metrics.resident_bytes.set(gauge_value(memory.resident));
                    metrics.allocated_bytes.set(gauge_value(memory.allocated));
                    last_memory = Some(Instant::now());
                }
            }
            if last_log.elapsed() > Duration::from_secs(10) {
                let c = pipeline.cache.as_ref().expect("returned");
                let memory = Memory::now();
                let (runs, run_entries, run_superseded) = store.run_stats();
                tracing::info!(
                    position = c.position,
                    states_at = c.states_at,
                    pending,
                    dirty = c.dirty(),
                    waiting = pipeline.waiting.len(),
                    cache_mib = c.bytes() >> 20,
                    allocated_mib = memory.allocated >> 20,
                    active_mib = memory.active >> 20,
                    metadata_mib = memory.metadata >> 20,
                    resident_mib = memory.resident >> 20,
                    folded_total = total.load(Ordering::Relaxed),
                    runs,
                    run_entries,
                    run_superseded,
                    "fold progress"
                );
                last_log = Instant::now();
            }
            if caught_up {
                // Caught up: no next batch to overlap with; apply and acknowledge now rather than when more arrives.
                pipeline.drain().await?;
                if until == Until::CaughtUp && pending == 0 {
                    return Ok(());
                }
            }
        }
        if let Some(e) = failure {
            // Heartbeat loss or a server restart: resubscribe. Everything folded so far is flushed and acked, and the
            // states are written back (the group's last batch checkpointed if it held messages; otherwise it is done
            // here), so the next session does not replay this one's work again.
            pipeline.drain().await?;
            if pipeline.cache.as_ref().is_some_and(|c| c.dirty() > 0) {
                pipeline.write_back().await?;
            }
            return Err(FoldError::Bus(e));
        }
    }
}

/// How long a prepared group waits for the next batch to be pulled before it is applied anyway (the next group's
/// preparation starts its apply; what counts is that the group is acknowledged without delay when nothing more is
/// coming).
const NEXT_BATCH_WAIT: Duration = Duration::from_millis(2);

/// Most batches preloaded and prepared together while the group before is applied. Under a backlog one apply is
/// long (a checkpoint writes every dirty state: ~350 ms at 3M events) and the next preparation cannot read sled
/// meanwhile; what was buffered is prepared during it, and the group grows to what arrived while the one before was
/// applied.
const GROUP_BATCHES: usize = 8;

/// Prepared batches waiting for the apply before them at most; then preparing waits too. A checkpoint's apply takes
/// as long as preparing several groups (a second of states at once, against a group of events), so preparing goes on
/// beside it instead of idling, and the apply after it takes everything prepared meanwhile. Each waiting batch holds
/// its sled writes (about a megabyte for a batch of 1,000 events).
const MAX_WAITING_BATCHES: usize = 3 * GROUP_BATCHES;

/// A pulled batch on its way to be prepared.
struct Pulled {
    inputs: Vec<(u64, bytes::Bytes)>,
    checkpoint: bool,
    last: jetstream::Message,
    pending: u64,
}

/// One consumer session's fold. Pipelined: while one group of batches is applied to sled and flushed, the next groups
/// are pulled and prepared (decoded, screened, written into sled batches of their own); a group is acknowledged once
/// it is flushed. What a group needs from sled is read first ([`StateCache::preload`]), beside the apply of the group
/// before (sled's reads do not wait for a batch being applied: `third_party/sled/CASELINK-PATCH.md`), so preparing
/// reads nothing.
struct Pipeline<'a> {
    store: &'a Store,
    options: &'a FoldOptions,
    /// Where the preparations and applies run (at the fold's priority).
    threads: FoldThreads,
    total: &'a AtomicU64,
    /// The states this session has folded but not yet written back; dropped with the session (the next one replays
    /// from `states_at`). In the blocking task while a group is prepared.
    cache: Option<StateCache>,
    /// The group being applied, flushed and acknowledged.
    inflight: Option<Inflight>,
    /// The batches prepared and not yet applied, in stream order.
    waiting: Vec<Waiting>,
    /// Groups applied (flushed and acknowledged) whose writes the cache has not been told of yet: it was away being
    /// prepared with when they finished ([`Pipeline::settle_applied`]).
    unsettled: Vec<(Vec<Applied>, Vec<usize>)>,
}

impl Pipeline<'_> {
    /// Waits for the group in flight (if any) to be applied, flushed and acknowledged, and tells the cache what every
    /// applied group wrote.
    async fn settle(&mut self) -> Result<(), FoldError> {
        if let Some(mut done) = self.inflight.take() {
            let applied = (&mut done.apply).await;
            self.applied(applied, done)?;
        }
        self.settle_applied()
    }

    /// Keeps the outcome of the group `done` for [`Pipeline::settle_applied`], or returns its failure (and nothing
    /// after it is applied).
    fn applied(
        &mut self,
        outcome: Result<Result<Vec<Applied>, FoldError>, tokio::task::JoinError>,
        done: Inflight,
    ) -> Result<(), FoldError> {
        let applied = outcome.map_err(|e| FoldError::Task(e.to_string()))??;
        self.unsettled.push((applied, done.messages));
        Ok(())
    }

    /// Tells the cache what the applied groups wrote (their checkpoints' states may leave it, their events are in
    /// sled), and counts and logs them.
    fn settle_applied(&mut self) -> Result<(), FoldError> {
        let cache = self
            .cache
            .as_mut()
            .ok_or_else(|| FoldError::Task("the fold's state cache was lost".into()))?;
        let groups = std::mem::take(&mut self.unsettled);
        for (applied, messages) in groups.iter().flat_map(|(a, m)| a.iter().zip(m)) {
            applied.settle(cache);
            if applied.stats.alerts > 0 {
                if let Some(wake) = &self.options.wake {
                    wake.notify_one();
                }
            }
            self.total
                .fetch_add(applied.stats.folded as u64, Ordering::Relaxed);
            if let Some(metrics) = &self.options.metrics {
                metrics.events.inc_by(applied.stats.folded as u64);
                metrics.alerts.inc_by(applied.stats.alerts as u64);
            }
            tracing::debug!(messages, stats = ?applied.stats, "batch folded");
        }
        // After the applies the tail was told of: what it holds now (and not a group earlier, when idle).
        if let (Some(metrics), Some(tail)) = (&self.options.metrics, &self.options.tail) {
            metrics
                .unfolded_events
                .set(crate::metrics::gauge_value(tail.len()));
        }
        Ok(())
    }

    /// Starts applying the waiting batches (if any), once the group in flight is done: applied in order, flushed,
    /// then acknowledged at once (the last message acknowledges all), so the server sees acks as soon as they are due.
    async fn start_apply(&mut self) -> Result<(), FoldError> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        self.settle().await?;
        self.begin_apply();
        Ok(())
    }

    /// Starts applying the waiting batches; the group before them must be applied (successfully) already.
    fn begin_apply(&mut self) {
        let group = std::mem::take(&mut self.waiting);
        let messages = group.iter().map(|w| w.messages).collect();
        let store = self.store.clone();
        let threads = self.threads.clone();
        let tail = self.options.tail.clone();
        self.inflight = Some(Inflight {
            apply: tokio::spawn(async move {
                let flush = group.iter().any(|w| w.flush);
                let mut last = None;
                let mut prepared = Vec::with_capacity(group.len());
                for w in group {
                    prepared.push(w.prepared);
                    last = Some(w.last);
                }
                let applied = apply_blocking(&store, &threads, prepared, flush).await?;
                // What the group wrote is in sled (readers see it): the tail need not hold it any more.
                if let (Some(tail), Some(done)) = (&tail, applied.last()) {
                    tail.folded_through(done.stats.position);
                }
                if let Some(last) = last {
                    last.ack()
                        .await
                        .map_err(|e| FoldError::Bus(e.to_string()))?;
                }
                Ok(applied)
            }),
            messages,
        });
    }

    /// Applies and acknowledges everything prepared.
    async fn drain(&mut self) -> Result<(), FoldError> {
        self.start_apply().await?;
        self.settle().await
    }

    /// Prepares a group of batches on the fold's threads (CPU work: queries, heartbeats and acks go on meanwhile, first)
    /// beside an apply: the waiting batches' apply starts first if the one before them is done (otherwise this group
    /// joins them, up to [`MAX_WAITING_BATCHES`]), then this group's states are preloaded and the group prepared.
    /// sled's reads do not wait for a batch being applied (`third_party/sled/CASELINK-PATCH.md`), and what the
    /// preload reads is never what that batch writes: every state it writes stays in the cache until it is applied,
    /// and the ids of its events are answered from memory. The cache moves into the blocking task and back; a panicking fold takes it along and stops the service.
    async fn prepare(&mut self, group: Vec<Pulled>) -> Result<(), FoldError> {
        let started = Instant::now();
        // While a long apply runs (a checkpoint's), this group is prepared too, rather than waiting for it: the
        // waiting batches then go to sled together once it is done. Preparing waits only when too much is waiting.
        let applying = self
            .inflight
            .as_ref()
            .is_some_and(|inflight| !inflight.apply.is_finished());
        if !applying || self.waiting.len() >= MAX_WAITING_BATCHES {
            self.start_apply().await?;
        }
        let settled = Instant::now();
        let store = self.store.clone();
        let folder = self.options.folder.clone();
        let mut taken = self.take_cache()?;
        taken.set_readers(preload_readers(self.options));
        // The inputs move into the task; what the batches are acknowledged and counted by stays here.
        let mut batches = Vec::with_capacity(group.len());
        let mut ends = Vec::with_capacity(group.len());
        for p in group {
            ends.push((p.last, p.inputs.len(), p.checkpoint));
            batches.push((p.inputs, p.checkpoint));
        }
        let (preloaded, done) = tokio::sync::oneshot::channel();
        let mut preparing = self.threads.spawn(move || {
            let messages: Vec<Vec<(u64, &[u8])>> = batches
                .iter()
                .map(|(inputs, _)| inputs.iter().map(|(s, p)| (*s, p.as_ref())).collect())
                .collect();
            let all: Vec<(u64, &[u8])> = messages.iter().flatten().copied().collect();
            // Room first, so what is preloaded is not what the preparation's eviction drops.
            taken.evict();
            let before = taken.loads;
            let result = taken
                .preload(&store, folder.screener.as_deref(), &all)
                .and_then(|answers| {
                    let _ = preloaded.send((taken.loads.0 - before.0, taken.loads.1 - before.1));
                    messages
                        .iter()
                        .zip(&batches)
                        .map(|(messages, (_, checkpoint))| {
                            prepare_preloaded(
                                &store,
                                &folder,
                                &mut taken,
                                messages,
                                *checkpoint,
                                &answers,
                            )
                        })
                        .collect::<Result<Vec<_>, _>>()
                });
            (taken, result)
        });
        // While the group is prepared, sled stays busy: when the apply in flight is done, the batches waiting go next
        // at once (not when this preparation ends). Telling the cache what was applied waits for the cache to come
        // back; a failed apply starts nothing after it.
        let mut done = std::pin::pin!(done);
        let mut preloaded_at = None;
        let mut loads = (0, 0);
        let prepared = loop {
            let chain = self.inflight.as_mut().filter(|_| !self.waiting.is_empty());
            tokio::select! {
                biased;
                counts = &mut done, if preloaded_at.is_none() => {
                    // A preload that failed says so when the preparation's result is taken.
                    loads = counts.unwrap_or_default();
                    preloaded_at = Some(Instant::now());
                }
                prepared = &mut preparing => break prepared,
                applied = async { (&mut chain.expect("guarded").apply).await }, if chain.is_some() => {
                    let done = self.inflight.take().expect("in flight");
                    self.applied(applied, done)?;
                    self.begin_apply();
                }
            }
        };
        let (persons, relations) = loads;
        let preloaded_at = preloaded_at.unwrap_or_else(Instant::now);
        let (taken, result) = prepared.map_err(|e| FoldError::Task(e.to_string()))?;
        self.cache = Some(taken);
        self.settle_applied()?;
        // Where a group's time goes: waiting for the group before the waiting one to be applied, then preloading and
        // preparing (both beside the waiting group's apply).
        tracing::debug!(
            batches = ends.len(),
            settle_us = settled.duration_since(started).as_micros(),
            preload_us = preloaded_at.duration_since(settled).as_micros(),
            prepare_us = preloaded_at.elapsed().as_micros(),
            preloaded_persons = persons,
            preloaded_relations = relations,
            "group prepared"
        );
        for (prepared, (last, messages, checkpoint)) in result?.into_iter().zip(ends) {
            self.waiting.push(Waiting {
                prepared,
                flush: self.options.flush_every_batch || checkpoint,
                last,
                messages,
            });
        }
        Ok(())
    }

    /// The cache, to move into a blocking task (and back into `self.cache` after).
    fn take_cache(&mut self) -> Result<StateCache, FoldError> {
        self.cache
            .take()
            .ok_or_else(|| FoldError::Task("the fold's state cache was lost".into()))
    }

    /// Applies everything prepared, then writes every dirty state back in a batch of its own, flushed.
    async fn write_back(&mut self) -> Result<(), FoldError> {
        self.drain().await?;
        let store = self.store.clone();
        let folder = self.options.folder.clone();
        let mut taken = self.take_cache()?;
        let (taken, prepared) = self
            .threads
            .spawn(move || {
                let prepared = prepare(&store, &folder, &mut taken, &[], true);
                (taken, prepared)
            })
            .await
            .map_err(|e| FoldError::Task(e.to_string()))?;
        self.cache = Some(taken);
        let applied = apply_blocking(self.store, &self.threads, vec![prepared?], true).await?;
        let cache = self.cache.as_mut().expect("returned");
        for applied in &applied {
            applied.settle(cache);
            tracing::debug!(stats = ?applied.stats, "states written back");
        }
        Ok(())
    }
}

/// Most threads the next preload reads on: `live_readers` while the follower of the bus is engaged, else all.
fn preload_readers(options: &FoldOptions) -> usize {
    match &options.tail {
        Some(tail) if tail.engaged() => options.live_readers,
        _ => crate::states::MAX_READERS,
    }
}

/// A prepared batch not yet applied: it waits until the next group's preparation starts (or [`NEXT_BATCH_WAIT`]).
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

/// A group of prepared batches being applied, flushed and acknowledged.
struct Inflight {
    apply: tokio::task::JoinHandle<Result<Vec<Applied>, FoldError>>,
    /// Messages of each batch.
    messages: Vec<usize>,
}

/// Applies prepared batches in order on the fold's threads and, with `flush`, flushes the store once (timed in the
/// last one's figures).
async fn apply_blocking(
    store: &Store,
    threads: &FoldThreads,
    prepared: Vec<Prepared>,
    flush: bool,
) -> Result<Vec<Applied>, FoldError> {
    let store = store.clone();
    Ok(threads
        .spawn(move || {
            let mut applied = prepared
                .into_iter()
                .map(|p| p.apply(&store))
                .collect::<Result<Vec<_>, _>>()?;
            if flush {
                let started = Instant::now();
                store.flush_blocking()?;
                if let Some(last) = applied.last_mut() {
                    last.stats.flush_us = crate::fold::micros_since(started);
                }
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
        deliver_policy: deliver_after(position),
        ack_policy: AckPolicy::All,
        ack_wait: Duration::from_secs(60),
        // Room for a group being applied, every batch prepared meanwhile, the group being prepared and two pulls
        // buffered: at the limit the server stops delivering until the next acknowledgement, and the fold waits for
        // messages (with three groups' room, the apply stood idle a third of a 3M bulk fold).
        max_ack_pending: i64::try_from(
            options
                .batch
                .saturating_mul(MAX_WAITING_BATCHES + 4 * GROUP_BATCHES),
        )
        .unwrap_or(i64::MAX)
        .max(20_000),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::states::MAX_READERS;
    use crate::tail::{Limits, Tail};

    #[test]
    fn preloads_read_on_fewer_threads_only_while_the_follower_is_engaged() {
        let tail = Arc::new(Tail::new(Limits::default(), 0));
        let options = FoldOptions {
            tail: Some(Arc::clone(&tail)),
            live_readers: 4,
            ..FoldOptions::default()
        };
        // No backlog told yet: not engaged.
        assert_eq!(preload_readers(&options), MAX_READERS);
        tail.fold_backlog(Limits::default().engage_backlog + 1);
        assert_eq!(preload_readers(&options), MAX_READERS, "a bulk fold");
        tail.fold_backlog(10);
        assert_eq!(preload_readers(&options), 4, "near the stream's end");
        let rebuild = FoldOptions {
            tail: None,
            live_readers: 4,
            ..FoldOptions::default()
        };
        assert_eq!(preload_readers(&rebuild), MAX_READERS, "no follower");
    }
}
