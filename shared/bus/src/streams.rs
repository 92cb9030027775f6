//! Stream configuration.
//!
//! `CASELINK_EVENTS` holds the case events: the facts, kept forever (no age or size limit, delete and purge denied),
//! file storage. Durability of an acknowledged publish comes from the server's `sync_interval: always` on a single node
//! (set in the server config, see `deploy/`) or from `replicas: 3` in a cluster.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::subjects::EVENTS_PREFIX;
use crate::BusError;

/// The stream of case events.
pub const EVENTS_STREAM: &str = "CASELINK_EVENTS";

/// Settings of the events stream that a deployment may choose.
#[derive(Debug, Clone)]
pub struct EventsStreamOptions {
    /// How long JetStream remembers a `Nats-Msg-Id` (the first of the two idempotence levels).
    pub duplicate_window: Duration,
    /// 1 on a single node, 3 in a cluster.
    pub replicas: usize,
}

impl Default for EventsStreamOptions {
    fn default() -> Self {
        EventsStreamOptions {
            duplicate_window: Duration::from_secs(24 * 3600),
            replicas: 1,
        }
    }
}

/// The configuration of the events stream.
pub fn events_stream_config(options: &EventsStreamOptions) -> stream::Config {
    stream::Config {
        name: EVENTS_STREAM.to_string(),
        description: Some(
            "caselink case events from the six departments: immutable facts, kept forever".into(),
        ),
        subjects: vec![format!("{EVENTS_PREFIX}.>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        duplicate_window: options.duplicate_window,
        num_replicas: options.replicas,
        deny_delete: true,
        deny_purge: true,
        allow_atomic_publish: true,
        ..Default::default()
    }
}

/// Creates the events stream, or brings the settings a deployment may change up to date.
pub async fn ensure_events_stream(
    js: &jetstream::Context,
    options: &EventsStreamOptions,
) -> Result<stream::Stream, BusError> {
    let wanted = events_stream_config(options);
    let window = wanted.duplicate_window;
    ensure_stream(js, wanted, |current| {
        let changed = current.duplicate_window != window || !current.allow_atomic_publish;
        current.duplicate_window = window;
        current.allow_atomic_publish = true;
        changed
    })
    .await
}

/// Creates the stream `wanted` if it does not exist; otherwise lets `upgrade` bring the settings that can change in
/// place up to date on the stream's current config (returning whether it changed anything) and applies that.
pub(crate) async fn ensure_stream(
    js: &jetstream::Context,
    wanted: stream::Config,
    upgrade: impl FnOnce(&mut stream::Config) -> bool,
) -> Result<stream::Stream, BusError> {
    let name = wanted.name.clone();
    let mut stream = js
        .get_or_create_stream(wanted)
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
    let info = stream
        .info()
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
    let mut updated = info.config.clone();
    if upgrade(&mut updated) {
        js.update_stream(updated)
            .await
            .map_err(|e| BusError::Refused(e.to_string()))?;
        stream = js
            .get_stream(&name)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
    }
    Ok(stream)
}
