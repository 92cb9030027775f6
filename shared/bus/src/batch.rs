//! One JetStream atomic batch (ADR-50): every message stored or none, with one fsync for all of them.
//!
//! The messages go out as plain publishes carrying `Nats-Batch-Id` and `Nats-Batch-Sequence`; the last one also carries
//! `Nats-Batch-Commit: 1` and is sent as a request, whose reply is the batch's ack (or the reason it was refused as a
//! whole). The stream must allow atomic publish.

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use serde::Deserialize;

use crate::BusError;

/// One message of a batch.
#[derive(Debug, Clone)]
pub struct BatchMessage {
    pub subject: String,
    /// Headers of this message (`Nats-Msg-Id`, `Nats-Expected-Last-Subject-Sequence`…); the batch headers are added.
    pub headers: HeaderMap,
    pub payload: Bytes,
}

/// The server's refusal of a batch as a whole (e.g. 10201: a stored `Nats-Msg-Id` in it; 10071: wrong last sequence).
#[derive(Deserialize, Debug, Clone)]
pub struct ApiError {
    #[serde(default)]
    pub err_code: u64,
    #[serde(default)]
    pub description: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (err_code {})", self.description, self.err_code)
    }
}

#[derive(Deserialize)]
struct BatchAck {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    error: Option<ApiError>,
}

/// Publishes `messages` (not empty) as one atomic batch. `Ok(Ok(first_sequence))`: all stored, the i-th at
/// `first_sequence + i`. `Ok(Err(api))`: the server refused the batch as a whole, nothing stored. `Err`: no answer
/// (NATS down or slow): the outcome is unknown, so the caller must only retry what is idempotent.
pub async fn publish_atomic(
    client: &async_nats::Client,
    messages: Vec<BatchMessage>,
    ack_timeout: Duration,
) -> Result<Result<u64, ApiError>, BusError> {
    let count = messages.len() as u64;
    let batch_id = uuid::Uuid::new_v4().simple().to_string();
    let mut messages = messages.into_iter().enumerate().peekable();
    while let Some((i, mut message)) = messages.next() {
        message.headers.insert("Nats-Batch-Id", batch_id.as_str());
        message
            .headers
            .insert("Nats-Batch-Sequence", (i + 1).to_string());
        if messages.peek().is_some() {
            client
                .publish_with_headers(message.subject, message.headers, message.payload)
                .await
                .map_err(|e| BusError::Unavailable(e.to_string()))?;
            continue;
        }
        message.headers.insert("Nats-Batch-Commit", "1");
        let reply = tokio::time::timeout(
            ack_timeout,
            client.request_with_headers(message.subject, message.headers, message.payload),
        )
        .await
        .map_err(|_| BusError::Unavailable("timed out waiting for the batch ack".into()))?
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let ack: BatchAck = serde_json::from_slice(&reply.payload)
            .map_err(|e| BusError::Refused(format!("unreadable batch ack: {e}")))?;
        return Ok(match ack.error {
            Some(error) => Err(error),
            None => Ok(ack.seq + 1 - count),
        });
    }
    Err(BusError::Refused(
        "an atomic batch needs at least one message".into(),
    ))
}
