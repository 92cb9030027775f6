use std::path::PathBuf;
use std::time::Duration;

use caselink_runtime::{ConfigError, IdentityConfig};
use serde::{Deserialize, Serialize};

use crate::DepartmentRules;

/// Options of a department ingest service. Layered: defaults → `--config` TOML → `CASELINK_*` env → flags.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestOptions {
    /// Address to listen on; empty means the department's default.
    pub listen: String,
    pub nats_url: String,
    pub identity: IdentityConfig,
    /// Token keys: `public_key` verifies callers' bearer tokens.
    pub auth: caselink_auth::AuthKeys,
    /// TLS (and mTLS with a client CA) for the gRPC server; empty = plaintext.
    pub tls: caselink_runtime::TlsConfig,
    /// How long JetStream remembers an event id for duplicate detection.
    pub dedup_window_secs: u64,
    /// How far in the future `occurred_at` may lie (clock skew between agencies).
    pub future_tolerance_secs: u64,
    /// Most events in one `Submit`; more is RESOURCE_EXHAUSTED.
    pub max_events_per_request: usize,
    /// Largest accepted gRPC message.
    pub max_message_bytes: usize,
    /// How long to wait for the bus before answering UNAVAILABLE.
    pub ack_timeout_ms: u64,
    /// Group-commit window.
    pub linger_micros: u64,
    /// Events per atomic batch (JetStream allows at most 1,000).
    pub max_batch: usize,
    /// Stream replicas: 1 on a single node, 3 in a cluster.
    pub replicas: usize,
    /// Where `GET /metrics` (Prometheus, OpenMetrics text) is served, e.g. `127.0.0.1:51051`; empty = not served.
    pub metrics_listen: String,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            listen: String::new(),
            nats_url: "nats://127.0.0.1:4222".into(),
            identity: IdentityConfig::default(),
            auth: caselink_auth::AuthKeys::default(),
            tls: caselink_runtime::TlsConfig::default(),
            dedup_window_secs: 24 * 3600,
            future_tolerance_secs: 600,
            max_events_per_request: 10_000,
            max_message_bytes: 16 * 1024 * 1024,
            ack_timeout_ms: 5_000,
            linger_micros: 1_000,
            max_batch: 1_000,
            replicas: 1,
            metrics_listen: String::new(),
        }
    }
}

/// Command-line flags of a department service.
#[derive(Debug, Default, Clone, clap::Parser, Serialize)]
#[command(about = "caselink department ingest service")]
pub struct IngestFlags {
    /// TOML configuration file.
    #[arg(long, env = "CASELINK_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:50051 (port 0 picks a free port; the bound address is logged).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// NATS server URL.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_url: Option<String>,
    /// Where to serve `GET /metrics` (Prometheus), e.g. 127.0.0.1:51051; unset = not served.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
}

impl IngestOptions {
    /// Loads the layered configuration and fills the department's default address.
    pub fn load(
        flags: &IngestFlags,
        rules: &dyn DepartmentRules,
    ) -> Result<IngestOptions, ConfigError> {
        let mut options: IngestOptions =
            caselink_runtime::load_config(flags.config.as_deref(), flags)?;
        if options.listen.is_empty() {
            options.listen = rules.default_listen().to_string();
        }
        if options.max_batch == 0 || options.max_batch > 1000 {
            return Err(ConfigError::Invalid(format!(
                "max_batch: {} is outside 1..=1000",
                options.max_batch
            )));
        }
        Ok(options)
    }

    pub(crate) fn future_tolerance(&self) -> Duration {
        Duration::from_secs(self.future_tolerance_secs)
    }
}
