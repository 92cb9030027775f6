//! `WatchAlerts`: a live stream of screening alerts for a region prefix, resumable by cursor.
//!
//! The alerts are the derived stream's messages ([`caselink_bus::derived`]); a watcher is an ordered JetStream consumer
//! starting right after the client's cursor (the stream sequence of the last alert it saw), so a client that
//! reconnects with its cursor misses nothing and sees nothing twice. Cursor 0 means "from now on".

use std::pin::Pin;

use async_nats::jetstream::{self, consumer::DeliverPolicy};
use caselink_bus::derived::alert_filter;
use caselink_proto::v1::Alert;
use futures::{Stream, StreamExt};
use prost::Message;
use tokio::sync::mpsc;
use tonic::Status;

/// The stream a `WatchAlerts` call answers with.
pub type AlertStream = Pin<Box<dyn Stream<Item = Result<Alert, Status>> + Send>>;

/// Checks a region prefix: digits only, at most 6. `Err` says why (without the field's name).
pub fn check_region_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > 6 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{prefix:?} is not a region prefix (up to 6 digits, e.g. \"43\" or \"4306\")"
        ));
    }
    Ok(())
}

/// [`check_region_prefix`] as a gRPC status naming `field`.
pub fn validate_region_prefix(field: &'static str, prefix: &str) -> Result<(), Status> {
    check_region_prefix(prefix).map_err(|why| Status::invalid_argument(format!("{field}: {why}")))
}

/// Starts watching alerts of regions starting with `prefix`, after `cursor`.
pub async fn watch(
    js: &jetstream::Context,
    prefix: String,
    cursor: u64,
) -> Result<AlertStream, Status> {
    let stream = caselink_bus::derived::ensure_derived_stream(js, 1)
        .await
        .map_err(|e| Status::unavailable(format!("the alert stream is unavailable: {e}")))?;
    let (filter, exact) = alert_filter(&prefix);
    let config = jetstream::consumer::pull::OrderedConfig {
        filter_subject: filter,
        deliver_policy: if cursor == 0 {
            DeliverPolicy::New
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: cursor + 1,
            }
        },
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| Status::unavailable(format!("cannot follow the alert stream: {e}")))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| Status::unavailable(format!("cannot follow the alert stream: {e}")))?;
    let (tx, rx) = mpsc::channel::<Result<Alert, Status>>(256);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = tx.closed() => return,
                next = messages.next() => next,
            };
            let item = match next {
                None => Err(Status::unavailable(
                    "the alert stream ended; reconnect with your cursor",
                )),
                Some(Err(e)) => Err(Status::unavailable(format!(
                    "the alert stream failed ({e}); reconnect with your cursor"
                ))),
                Some(Ok(message)) => {
                    let sequence = match message.info() {
                        Ok(info) => info.stream_sequence,
                        Err(e) => {
                            let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                            return;
                        }
                    };
                    match Alert::decode(message.payload.as_ref()) {
                        Ok(mut alert) => {
                            if !exact && !alert.region_code.starts_with(&prefix) {
                                continue;
                            }
                            alert.cursor = sequence;
                            Ok(alert)
                        }
                        Err(e) => {
                            tracing::error!(sequence, error = %e, "undecodable alert skipped");
                            continue;
                        }
                    }
                }
            };
            let end = item.is_err();
            if tx.send(item).await.is_err() || end {
                return;
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}
