//! The fold of a workflow projection (referrals, determinations) from `CASELINK_WORKFLOW`, exactly like the case-event
//! fold: a durable pull consumer filtered to the projection's subjects, recreated from the position stored in sled at
//! every start; per pulled batch one `sled::Batch` (the aggregates and the position), flush, then ack.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy};
use caselink_bus::workflow::{ensure_workflow_stream, WORKFLOW_STREAM};
use caselink_runtime::Cancel;

use crate::consumer::FoldError;
use crate::metrics::WorkflowMetrics;
use crate::store::{Store, StoreError};

/// Messages per pulled batch.
const BATCH: usize = 500;

/// A projection of some workflow aggregates.
pub trait WorkflowProjection: Send + Sync {
    /// What one fold applied (handed to the `on_applied` hook).
    type Applied: Send;
    /// The durable consumer's name.
    const DURABLE: &'static str;
    /// For logs, e.g. `referrals`.
    const NAME: &'static str;
    /// The subjects folded.
    fn filter(&self) -> String;
    /// The last stream sequence folded.
    fn position(&self) -> Result<u64, StoreError>;
    /// Folds `messages` (stream sequence, payload) into one atomic batch with the new position; skips what is at or
    /// below the position or already folded. The caller flushes before acknowledging.
    fn fold(&self, messages: &[(u64, &[u8])]) -> Result<Vec<Self::Applied>, StoreError>;
    /// The store the projection lives in (for the flush).
    fn store(&self) -> &Store;
    /// Drops the projection's data and position.
    fn reset(&self) -> Result<(), StoreError>;
}

/// What is done with what a fold applied, before the batch is acknowledged.
pub type OnApplied<A> = std::sync::Arc<
    dyn Fn(Vec<A>) -> futures::future::BoxFuture<'static, Result<(), FoldError>> + Send + Sync,
>;

/// Folds the workflow stream into `projection` until cancelled (or, with `caught_up`, until nothing is pending);
/// returns the events applied. Survives NATS outages by reconnecting.
pub async fn run<P: WorkflowProjection>(
    projection: &P,
    js: &jetstream::Context,
    on_applied: Option<&OnApplied<P::Applied>>,
    caught_up: bool,
    metrics: Option<&WorkflowMetrics>,
    cancel: Cancel,
) -> Result<u64, FoldError> {
    let total = AtomicU64::new(0);
    crate::consumer::reconnecting(P::NAME, &cancel, || {
        session(
            projection, js, on_applied, caught_up, metrics, &cancel, &total,
        )
    })
    .await?;
    Ok(total.into_inner())
}

async fn session<P: WorkflowProjection>(
    projection: &P,
    js: &jetstream::Context,
    on_applied: Option<&OnApplied<P::Applied>>,
    caught_up: bool,
    metrics: Option<&WorkflowMetrics>,
    cancel: &Cancel,
    total: &AtomicU64,
) -> Result<(), FoldError> {
    let bus = |e: &dyn std::fmt::Display| FoldError::Bus(e.to_string());
    let stream = ensure_workflow_stream(js, 1).await.map_err(|e| bus(&e))?;
    let position = projection.position()?;
    if stream
        .get_consumer::<pull::Config>(P::DURABLE)
        .await
        .is_ok()
    {
        stream
            .delete_consumer(P::DURABLE)
            .await
            .map_err(|e| bus(&e))?;
    }
    let mut consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(P::DURABLE.into()),
            description: Some(format!(
                "linkage {} fold: position mirrored in sled",
                P::NAME
            )),
            deliver_policy: crate::consumer::deliver_after(position),
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(60),
            filter_subject: projection.filter(),
            ..Default::default()
        })
        .await
        .map_err(|e| bus(&e))?;
    if caught_up {
        let info = consumer.info().await.map_err(|e| bus(&e))?;
        if info.num_pending == 0 {
            return Ok(());
        }
    }
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| bus(&e))?;
    loop {
        let Some((batch, failure)) =
            crate::consumer::next_batch(&mut messages, BATCH, cancel, P::NAME).await?
        else {
            return Ok(());
        };
        if let Some(last) = batch.last() {
            let mut inputs = Vec::with_capacity(batch.len());
            let mut pending = u64::MAX;
            for m in &batch {
                let info = m.info().map_err(|e| bus(&e))?;
                pending = info.pending;
                inputs.push((info.stream_sequence, m.payload.as_ref()));
            }
            let applied = projection.fold(&inputs)?;
            projection.store().flush().await?;
            total.fetch_add(applied.len() as u64, Ordering::Relaxed);
            if let Some(metrics) = metrics {
                metrics.folded(P::NAME, projection.position()?, applied.len());
            }
            if let Some(on_applied) = on_applied {
                // Before the ack: a failure redelivers the batch, and what the hook derives must be idempotent.
                on_applied(applied).await?;
            }
            last.ack().await.map_err(|e| bus(&e))?;
            if caught_up && pending == 0 {
                return Ok(());
            }
        }
        if let Some(e) = failure {
            return Err(FoldError::Bus(e));
        }
    }
}

/// A workflow projection's fold running beside the services; a failure cancels everything (the service stops).
pub struct FoldTask {
    name: &'static str,
    handle: tokio::task::JoinHandle<Result<u64, FoldError>>,
}

impl FoldTask {
    /// Folds `projection` until `cancel`, with the `on_applied` hook and figures in `metrics`.
    pub fn spawn<P: WorkflowProjection + 'static>(
        projection: P,
        js: jetstream::Context,
        on_applied: Option<OnApplied<P::Applied>>,
        metrics: std::sync::Arc<WorkflowMetrics>,
        cancel: &Cancel,
    ) -> FoldTask {
        let cancel = cancel.clone();
        let handle = tokio::spawn(async move {
            let result = run(
                &projection,
                &js,
                on_applied.as_ref(),
                false,
                Some(&metrics),
                cancel.clone(),
            )
            .await;
            if let Err(e) = &result {
                tracing::error!(error = %e, projection = P::NAME, "workflow fold stopped; shutting down");
                cancel.cancel();
            }
            result
        });
        FoldTask {
            name: P::NAME,
            handle,
        }
    }

    /// Waits for the fold to stop (after the cancel).
    pub async fn stopped(self) -> Result<(), crate::LinkageError> {
        match self.handle.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(crate::LinkageError::Serve(format!(
                "{} fold task panicked: {e}",
                self.name
            ))),
        }
    }
}

/// Drops `projection` and replays the whole workflow stream into it (without the `on_applied` hook); returns the events
/// folded.
pub async fn rebuild<P: WorkflowProjection>(
    projection: &P,
    js: &jetstream::Context,
    cancel: Cancel,
) -> Result<u64, FoldError> {
    if let Ok(stream) = js.get_stream(WORKFLOW_STREAM).await {
        let _ = stream.delete_consumer(P::DURABLE).await;
    }
    projection.reset()?;
    projection.store().flush().await?;
    let folded = run(projection, js, None, true, None, cancel).await?;
    tracing::info!(folded, projection = P::NAME, "workflow projection rebuilt");
    Ok(folded)
}

/// The stored position (a big-endian u64; 0 when none).
pub fn decode_position(value: Option<sled::IVec>) -> u64 {
    value.map_or(0, |v| {
        let mut b = [0u8; 8];
        let n = v.len().min(8);
        b[..n].copy_from_slice(&v[..n]);
        u64::from_be_bytes(b)
    })
}
