//! The log: the JetStream streams and subjects of caselink, and how events get onto them durably.
//!
//! Owns: stream names and configuration ([`streams`]), the subject scheme with its fixed virtual partitions
//! ([`subjects`]), connecting ([`connect`]) and the group-committing atomic-batch publisher ([`publisher`]).
//! Never: validation or pseudonymisation (that is `caselink-domain`, before anything reaches here); clear personal data
//! in a subject or header.

pub mod audit;
pub mod batch;
pub mod derived;
pub mod publisher;
pub mod streams;
pub mod subjects;
pub mod workflow;

use std::time::Duration;

pub use publisher::{EventPublisher, OutgoingEvent, PublishOutcome, PublisherOptions};

/// Why the bus could not take a write or a read.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// NATS is down, slow or refused: nothing acknowledged; the caller may retry the same events safely.
    #[error("the event bus is unavailable: {0}")]
    Unavailable(String),
    /// The server answered with an error that retrying will not fix.
    #[error("the event bus refused the request: {0}")]
    Refused(String),
}

/// Connects to NATS. Keeps retrying in the background (also on the first connect), so a service can start before NATS
/// and reports `UNAVAILABLE` until it is there.
pub async fn connect(
    url: &str,
    name: &str,
    request_timeout: Duration,
) -> Result<async_nats::Client, BusError> {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .request_timeout(Some(request_timeout))
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))
}
