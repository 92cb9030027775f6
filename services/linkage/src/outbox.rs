//! The alert outbox: alerts decided by the fold reach the derived stream exactly as the projections say.
//!
//! The fold writes each alert into the outbox (`o` keys) in the same sled batch as the flag it announces, so an alert
//! exists if and only if its flag change was committed. This task publishes the outbox to `CASELINK_DERIVED` (group
//! committed, `Nats-Msg-Id` = person key, rule and revision, so a republish after a crash is recognised) and removes
//! what the bus acknowledged. A bus outage only delays alerts; none is lost or invented.

use std::sync::Arc;
use std::time::Duration;

use caselink_bus::{EventPublisher, OutgoingEvent};
use caselink_runtime::Cancel;
use tokio::sync::Notify;

use crate::store::{OutboxEntry, Store};

/// Alerts published per round.
const ROUND: usize = 1000;

/// Publishes the outbox until `cancel`; `wake` is notified by the fold after each flushed batch that added alerts.
pub async fn run_outbox(
    store: Store,
    js: async_nats::jetstream::Context,
    publisher: EventPublisher,
    wake: Arc<Notify>,
    cancel: Cancel,
) {
    // The derived stream may not exist yet, and NATS may be down at start: keep trying, alerts wait in the outbox.
    while let Err(e) = caselink_bus::derived::ensure_derived_stream(&js, 1).await {
        tracing::warn!(error = %e, "the derived stream is not reachable yet; retrying in 1 s");
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    loop {
        let pending = match store.outbox(ROUND) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "reading the alert outbox failed");
                Vec::new()
            }
        };
        if pending.is_empty() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = wake.notified() => continue,
                _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
            }
        }
        let events = pending
            .iter()
            .map(|(_, entry): &(Vec<u8>, OutboxEntry)| OutgoingEvent {
                msg_id: entry.msg_id.clone(),
                subject: entry.subject.clone(),
                payload: entry.payload.clone().into(),
            })
            .collect();
        match publisher.publish(events).await {
            Ok(_) => {
                let keys: Vec<Vec<u8>> = pending.into_iter().map(|(k, _)| k).collect();
                if let Err(e) = store.remove_outbox(&keys).await {
                    tracing::error!(error = %e, "clearing the alert outbox failed");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, alerts = pending.len(), "alerts not published yet; retrying in 1 s");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
