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
                next = next_decoded::<Alert, _, _>(&mut messages, "alert") => next,
            };
            let item = next.map(|(sequence, mut alert)| {
                alert.cursor = sequence;
                alert
            });
            if let Ok(alert) = &item {
                if !exact && !alert.region_code.starts_with(&prefix) {
                    continue;
                }
            }
            if !forward(&tx, item).await {
                return;
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

/// The next message of a followed stream that decodes as `M`, with its stream sequence (the client's cursor). One that
/// does not decode is logged and skipped; the stream's end or failure, and a message without its sequence, are an error
/// for the client (`UNAVAILABLE`: reconnect with your cursor), naming the stream (`what`).
pub(crate) async fn next_decoded<M, S, E>(messages: &mut S, what: &str) -> Result<(u64, M), Status>
where
    M: Message + Default,
    S: Stream<Item = Result<jetstream::Message, E>> + Unpin,
    E: std::fmt::Display,
{
    loop {
        let message = match messages.next().await {
            None => {
                return Err(Status::unavailable(format!(
                    "the {what} stream ended; reconnect with your cursor"
                )))
            }
            Some(Err(e)) => {
                return Err(Status::unavailable(format!(
                    "the {what} stream failed ({e}); reconnect with your cursor"
                )))
            }
            Some(Ok(message)) => message,
        };
        let sequence = message
            .info()
            .map_err(|e| Status::internal(e.to_string()))?
            .stream_sequence;
        match M::decode(message.payload.as_ref()) {
            Ok(decoded) => return Ok((sequence, decoded)),
            Err(e) => tracing::error!(sequence, error = %e, "undecodable {what} event skipped"),
        }
    }
}

/// Sends `item` to the client; false when the stream is over (the client went away, or `item` was the error that
/// ends it).
pub(crate) async fn forward<T>(
    tx: &mpsc::Sender<Result<T, Status>>,
    item: Result<T, Status>,
) -> bool {
    let end = item.is_err();
    tx.send(item).await.is_ok() && !end
}
