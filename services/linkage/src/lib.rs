//! The linkage service: the aggregator of case events and the queries over it.
//!
//! Owns: the sled projections ([`store`]), the exactly-once fold ([`fold`]) fed by a durable pull consumer
//! ([`consumer`]), the `Linkage` gRPC service ([`query`]) and the rebuild of every projection from the stream.
//! Never: writes case events (the departments do), keeps a clear ID number (lookups are hashed on arrival), or
//! acknowledges a message before the projection writes and position that cover it are flushed.

pub mod alerts;
pub mod audit_query;
mod background;
pub mod consumer;
pub mod determination;
pub mod eventlog;
pub mod fold;
pub mod metrics;
pub mod outbox;
pub mod query;
pub mod referral;
pub mod runs;
pub mod seen;
pub mod situation;
pub mod states;
pub mod store;
pub mod tail;
#[cfg(test)]
mod testing;
pub mod wire;
pub mod workflow_fold;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use caselink_proto::v1::linkage_server::LinkageServer;
use caselink_runtime::{Cancel, IdentityConfig};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

pub use consumer::{FoldOptions, Until};
pub use store::Store;

/// Options of the linkage service. Layered: defaults → `--config` TOML → `CASELINK_*` env → flags.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkageOptions {
    pub listen: String,
    pub nats_url: String,
    /// Where the sled projections live.
    pub data_dir: PathBuf,
    /// Only `person_key_secret` is used here (to hash ID numbers in lookups).
    pub identity: IdentityConfig,
    /// Token keys: `public_key` verifies callers' bearer tokens.
    pub auth: caselink_auth::AuthKeys,
    /// TLS (and mTLS with a client CA) for the gRPC server; empty = plaintext.
    pub tls: caselink_runtime::TlsConfig,
    /// Messages per pulled (and per sled) batch.
    pub fold_batch: usize,
    /// Longest time (ms) between write-backs of the fold's states while it has a backlog (see `states.rs`); when
    /// caught up it writes them with every batch.
    pub checkpoint_ms: u64,
    /// Memory (MiB, approximate: decoded states with their map entries) for states kept across checkpoints.
    pub state_cache_mb: usize,
    /// How much lower than the service's the fold's threads run (nice value added, 0-19; 0 = the same): when the
    /// fold competes for the cores with the queries and the follower of the bus, they go first (deploy/README.md).
    pub fold_nice: i32,
    /// Most threads (1-16) the fold's preloads read from the disk on while it is near the stream's end (the follower
    /// of the bus engaged); 16 otherwise. Fewer leave a disk shared with nats-server to its fsyncs but slow the fold's
    /// catch-up after a burst: measure before lowering it (deploy/README.md).
    pub fold_live_readers: usize,
    /// sled's page cache (MiB). The fold's random reads and writes (persons' rows and timeline chunks) page sled's
    /// leaves in from disk once the store outgrows it; 640 keeps a 10M-event aggregator within 1.5 GiB and spares the
    /// live fold most of its disk reads (deploy/README.md).
    pub sled_cache_mb: u64,
    /// First and one-past-last partition this aggregator owns (default all: 0..64).
    pub partition_start: u16,
    pub partition_end: u16,
    /// The screening rules (TOML, see `shared/screening/rules.toml`); unset = the guideline's defaults. A change of
    /// rules rebuilds the projections at the next start, so every flag is computed under the rules in force.
    pub rules_file: Option<PathBuf>,
    /// The criminal-referral workflow: holiday calendar file, overdue scan interval.
    pub referral: referral::ReferralOptions,
    /// Determination and the abnormal list: how long a confirmed entry is listed.
    pub determination: determination::DeterminationOptions,
    /// Where `GET /metrics` (Prometheus, OpenMetrics text) is served, e.g. `127.0.0.1:51050`; empty = not served.
    pub metrics_listen: String,
}

impl Default for LinkageOptions {
    fn default() -> Self {
        LinkageOptions {
            listen: "127.0.0.1:50050".into(),
            nats_url: "nats://127.0.0.1:4222".into(),
            data_dir: PathBuf::from(".caselink/linkage"),
            identity: IdentityConfig::default(),
            auth: caselink_auth::AuthKeys::default(),
            tls: caselink_runtime::TlsConfig::default(),
            fold_batch: 1000,
            checkpoint_ms: 1000,
            state_cache_mb: 192,
            fold_nice: consumer::DEFAULT_FOLD_NICE,
            fold_live_readers: states::MAX_READERS,
            sled_cache_mb: store::DEFAULT_SLED_CACHE >> 20,
            partition_start: 0,
            partition_end: caselink_domain::PARTITIONS,
            rules_file: None,
            referral: referral::ReferralOptions::default(),
            determination: determination::DeterminationOptions::default(),
            metrics_listen: String::new(),
        }
    }
}

impl LinkageOptions {
    pub fn fold_options(&self) -> Result<FoldOptions, LinkageError> {
        if self.partition_start >= self.partition_end
            || self.partition_end > caselink_domain::PARTITIONS
        {
            return Err(LinkageError::Config(format!(
                "partition_start..partition_end: {}..{} is not a range within 0..{}",
                self.partition_start,
                self.partition_end,
                caselink_domain::PARTITIONS
            )));
        }
        if self.fold_batch == 0 {
            return Err(LinkageError::Config(
                "fold_batch: must be at least 1".into(),
            ));
        }
        if !(0..=19).contains(&self.fold_nice) {
            return Err(LinkageError::Config(format!(
                "fold_nice: {} is not within 0..=19 (how much lower the fold's priority is)",
                self.fold_nice
            )));
        }
        if !(1..=states::MAX_READERS).contains(&self.fold_live_readers) {
            return Err(LinkageError::Config(format!(
                "fold_live_readers: {} is not within 1..={}",
                self.fold_live_readers,
                states::MAX_READERS
            )));
        }
        if self.checkpoint_ms == 0 {
            return Err(LinkageError::Config(
                "checkpoint_ms: must be at least 1".into(),
            ));
        }
        Ok(FoldOptions {
            partitions: self.partition_start..self.partition_end,
            batch: self.fold_batch,
            folder: fold::Folder {
                screener: Some(Arc::new(caselink_screening::Screener::new(self.rules()?))),
                alerts: true,
            },
            wake: None,
            cache: states::CachePolicy {
                checkpoint_every: Duration::from_millis(self.checkpoint_ms),
                budget_bytes: self.state_cache_mb << 20,
                ..states::CachePolicy::default()
            },
            flush_every_batch: true,
            metrics: None,
            tail: None,
            nice: self.fold_nice,
            live_readers: self.fold_live_readers,
        })
    }

    /// Opens the sled projections in `data_dir` (as they are: see [`open_store`]).
    pub fn open_projections(&self) -> Result<Store, LinkageError> {
        Store::open_with(&self.data_dir, self.sled_cache_mb << 20).map_err(|source| {
            LinkageError::Open {
                dir: self.data_dir.clone(),
                source,
            }
        })
    }

    /// The screening rules: the file's, validated, or the defaults.
    pub fn rules(&self) -> Result<caselink_screening::RuleSet, LinkageError> {
        let Some(path) = &self.rules_file else {
            return Ok(caselink_screening::RuleSet::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            LinkageError::Config(format!("rules_file: cannot read {}: {e}", path.display()))
        })?;
        caselink_screening::RuleSet::from_toml_str(&text)
            .map_err(|e| LinkageError::Config(format!("rules_file {}: {e}", path.display())))
    }
}

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
pub enum LinkageError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(
        "opening the projections in {dir}: {source} (is another linkage process running on it?)"
    )]
    Open {
        dir: PathBuf,
        source: store::StoreError,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Fold(#[from] consumer::FoldError),
    #[error("NATS: {0}")]
    Bus(String),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("serving gRPC: {0}")]
    Serve(String),
}

/// Opens the store, rebuilding it first if its projection version is outdated.
pub async fn open_store(
    options: &LinkageOptions,
    js: &async_nats::jetstream::Context,
) -> Result<Store, LinkageError> {
    let store = options.open_projections()?;
    let fold = options.fold_options()?;
    let fingerprint = rules_fingerprint(&fold)?;
    if !store.is_current()? {
        tracing::warn!(stored = ?store.version()?, current = store::PROJECTION_VERSION, "projection version changed: rebuilding from the stream");
        rebuild_into(&store, js, &fold, Cancel::new()).await?;
    } else if store.position()? > 0
        && store.rules_fingerprint()?.as_deref() != Some(fingerprint.as_slice())
    {
        tracing::warn!(
            "screening rules changed: rebuilding the projections under the rules in force"
        );
        rebuild_into(&store, js, &fold, Cancel::new()).await?;
    }
    store.stamp_version()?;
    store.set_rules_fingerprint(&fingerprint)?;
    Ok(store)
}

async fn connect(options: &LinkageOptions) -> Result<async_nats::jetstream::Context, LinkageError> {
    let client = caselink_bus::connect(
        &options.nats_url,
        "caselink-linkage",
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| LinkageError::Bus(e.to_string()))?;
    Ok(async_nats::jetstream::new(client))
}

/// SHA-256 of the rules in force (their canonical TOML), stored beside the projections built with them.
fn rules_fingerprint(fold: &FoldOptions) -> Result<Vec<u8>, LinkageError> {
    use sha2::Digest;
    let Some(screener) = &fold.folder.screener else {
        return Ok(Vec::new());
    };
    let canonical = screener
        .rules()
        .to_toml_string()
        .map_err(|e| LinkageError::Config(e.to_string()))?;
    Ok(sha2::Sha256::digest(canonical.as_bytes()).to_vec())
}

/// Messages per pulled batch in a rebuild (at least).
const REBUILD_BATCH: usize = 4000;

/// Drops every projection and replays the whole stream into them; returns the number of events folded. Flags are
/// recomputed but not announced again (no alerts).
pub async fn rebuild_into(
    store: &Store,
    js: &async_nats::jetstream::Context,
    fold: &FoldOptions,
    cancel: Cancel,
) -> Result<u64, LinkageError> {
    consumer::delete_consumer(js, fold).await?;
    store.reset().await?;
    store.set_rules_fingerprint(&rules_fingerprint(fold)?)?;
    referral::projection::rebuild(store, js, cancel.clone()).await?;
    determination::rebuild(store, js, cancel.clone()).await?;
    let mut fold = fold.clone();
    fold.folder.alerts = false;
    fold.wake = None;
    // Nobody reads the projections meanwhile, and an interrupted rebuild resumes from its last checkpoint (or starts
    // over when run again): flush only with checkpoints, and pull larger batches. Checkpoints stay as frequent as the
    // fold's under a backlog: written only as memory required (200k dirty states), the rebuild was 13 % slower at 3M
    // (dirty states cannot leave the cache, and one such checkpoint's batch takes seconds).
    fold.flush_every_batch = false;
    fold.batch = fold.batch.max(REBUILD_BATCH);
    let started = std::time::Instant::now();
    let folded =
        consumer::run_fold(store.clone(), js.clone(), fold, Until::CaughtUp, cancel).await?;
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        folded,
        seconds = secs,
        rate = folded as f64 / secs.max(1e-9),
        "rebuild finished"
    );
    Ok(folded)
}

/// The `rebuild` command: connect, open the store (the service must be stopped), rebuild, exit.
pub async fn rebuild(options: LinkageOptions) -> Result<u64, LinkageError> {
    let js = connect(&options).await?;
    let store = options.open_projections()?;
    rebuild_into(&store, &js, &options.fold_options()?, Cancel::new()).await
}

/// Runs the fold and serves `Linkage` on `listener` until `cancel`.
pub async fn serve_on(
    options: LinkageOptions,
    listener: TcpListener,
    cancel: Cancel,
) -> Result<(), LinkageError> {
    serve_with_clock(
        options,
        listener,
        cancel,
        Arc::new(caselink_domain::SystemClock),
    )
    .await
}

/// [`serve_on`] with the clock that referral deadlines are judged on (tests inject a `ManualClock`).
pub async fn serve_with_clock(
    options: LinkageOptions,
    listener: TcpListener,
    cancel: Cancel,
    clock: Arc<dyn caselink_domain::Clock>,
) -> Result<(), LinkageError> {
    let secret = options
        .identity
        .person_key_secret()
        .map_err(|e| LinkageError::Config(e.to_string()))?;
    let verifier = options
        .auth
        .verifier()
        .map_err(|e| LinkageError::Config(e.to_string()))?;
    // With the sealing keys configured, roles whose view is clear (determiners, police) see clear identity.
    let keyring = if options.identity.seal_key.key.is_empty() {
        None
    } else {
        let keys = options
            .identity
            .build()
            .map_err(|e| LinkageError::Config(e.to_string()))?;
        Some(Arc::new(keys.seal))
    };
    let mut fold = options.fold_options()?;
    let metrics = caselink_runtime::metrics::Metrics::new("linkage");
    fold.metrics = Some(metrics::FoldMetrics::register(&metrics));
    let workflow_metrics = metrics::WorkflowMetrics::register(&metrics);
    let rpc_metrics =
        caselink_runtime::metrics::RpcMetricsLayer::new(&metrics, caselink_auth::served_path);
    caselink_runtime::metrics::spawn(&options.metrics_listen, &metrics, &cancel)
        .await
        .map_err(|e| LinkageError::Config(e.to_string()))?;
    let js = connect(&options).await?;
    let store = open_store(&options, &js).await?;
    // Timelines show what the bus holds beyond the fold (crate::tail).
    let tail = Arc::new(tail::Tail::new(tail::Limits::default(), store.position()?));
    fold.tail = Some(Arc::clone(&tail));
    let tail_task = tokio::spawn(tail::follow(
        Arc::clone(&tail),
        js.clone(),
        caselink_bus::subjects::partition_filters(fold.partitions.clone()),
        cancel.clone(),
    ));
    let wake = Arc::new(tokio::sync::Notify::new());
    fold.wake = Some(Arc::clone(&wake));
    let outbox_task = tokio::spawn(outbox::run_outbox(
        store.clone(),
        js.clone(),
        caselink_bus::EventPublisher::spawn(js.client(), caselink_bus::PublisherOptions::default()),
        wake,
        cancel.clone(),
    ));
    // One audit chain per aggregator (its partition range), so aggregators never contend for a chain.
    let audit = caselink_bus::audit::AuditLog::spawn(js.clone(), &fold.durable_name(), 1);
    let (referral_service, referral_tasks) = referral::start(
        &options.referral,
        &store,
        &js,
        clock,
        audit.clone(),
        Arc::clone(&workflow_metrics),
        &cancel,
    )?;
    let secret = Arc::new(secret);
    let rules = match &fold.folder.screener {
        Some(screener) => Arc::new(screener.rules().clone()),
        None => Arc::new(options.rules()?),
    };
    let (determination_service, determination_tasks) = determination::start(
        &options.determination,
        determination::Parts {
            store: store.clone(),
            secret: Arc::clone(&secret),
            keyring: keyring.clone(),
            rules,
            audit: audit.clone(),
        },
        &js,
        referral_service.shared().clock,
        workflow_metrics,
        &cancel,
    )?;
    let audit_js = js.clone();
    let query_js = js.clone();
    let (health, health_service) = caselink_runtime::health_reporter();
    health
        .set_serving::<LinkageServer<query::LinkageService>>()
        .await;
    health
        .set_serving::<caselink_proto::v1::referral_server::ReferralServer<referral::ReferralService>>()
        .await;
    health
        .set_serving::<caselink_proto::v1::determination_server::DeterminationServer<
            determination::DeterminationService,
        >>()
        .await;
    health
        .set_serving::<caselink_proto::v1::audit_server::AuditServer<audit_query::AuditService>>()
        .await;
    let fold_task = {
        let store = store.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let result =
                consumer::run_fold(store, js, fold, Until::Cancelled, cancel.clone()).await;
            if let Err(e) = &result {
                tracing::error!(error = %e, "fold stopped; shutting down");
                cancel.cancel();
            }
            result
        })
    };
    let (reflection_v1, reflection_v1alpha) = caselink_runtime::reflection_services();
    let address = listener
        .local_addr()
        .map_err(|e| LinkageError::Serve(e.to_string()))?;
    tracing::info!(
        %address,
        position = store.position()?,
        // The allocator's settings as they took effect (built in: .cargo/config.toml; MALLOC_CONF overrides).
        allocator_background_thread = tikv_jemalloc_ctl::opt::background_thread::read().ok(),
        allocator_arenas = tikv_jemalloc_ctl::opt::narenas::read().ok(),
        "linkage listening"
    );
    caselink_runtime::server_builder(&options.tls)
        .map_err(|e| LinkageError::Config(e.to_string()))?
        .layer(rpc_metrics)
        .layer(caselink_auth::AuthLayer::new(
            verifier,
            caselink_auth::ServiceScope::Linkage,
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(wire::LinkageRoutes::new(
            query::LinkageService::new(store.clone(), secret, audit.clone(), keyring, query_js)
                .with_referrals(referral_service.shared())
                .with_determinations(determination_service.shared())
                .with_tail(tail),
        ))
        .add_service(caselink_proto::v1::audit_server::AuditServer::new(
            audit_query::AuditService::new(audit_js, audit),
        ))
        .add_service(caselink_proto::v1::referral_server::ReferralServer::new(
            referral_service,
        ))
        .add_service(
            caselink_proto::v1::determination_server::DeterminationServer::new(
                determination_service,
            ),
        )
        .serve_with_incoming_shutdown(
            caselink_runtime::incoming(listener),
            cancel.clone().cancelled_owned(),
        )
        .await
        .map_err(|e| LinkageError::Serve(e.to_string()))?;
    cancel.cancel();
    let _ = outbox_task.await;
    let _ = tail_task.await;
    referral_tasks.stopped().await?;
    determination_tasks.stopped().await?;
    match fold_task.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => return Err(LinkageError::Serve(format!("fold task panicked: {e}"))),
    }
    store.flush().await?;
    Ok(())
}

/// Binds `options.listen` and serves.
pub async fn serve(options: LinkageOptions, cancel: Cancel) -> Result<(), LinkageError> {
    let listener =
        TcpListener::bind(&options.listen)
            .await
            .map_err(|source| LinkageError::Listen {
                address: options.listen.clone(),
                source,
            })?;
    serve_on(options, listener, cancel).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_fold_runs_at_the_configured_lower_priority() {
        let options = LinkageOptions::default();
        assert_eq!(
            options.fold_options().unwrap().nice,
            consumer::DEFAULT_FOLD_NICE
        );
        let same = LinkageOptions {
            fold_nice: 0,
            ..LinkageOptions::default()
        };
        assert_eq!(same.fold_options().unwrap().nice, 0);
        for wrong in [-1, 20] {
            let options = LinkageOptions {
                fold_nice: wrong,
                ..LinkageOptions::default()
            };
            let e = options.fold_options().unwrap_err().to_string();
            assert!(e.contains("fold_nice"), "{e}");
        }
    }

    #[test]
    fn the_live_folds_readers_are_configured_within_bounds() {
        let four = LinkageOptions {
            fold_live_readers: 4,
            ..LinkageOptions::default()
        };
        assert_eq!(four.fold_options().unwrap().live_readers, 4);
        assert_eq!(
            LinkageOptions::default()
                .fold_options()
                .unwrap()
                .live_readers,
            states::MAX_READERS
        );
        for wrong in [0, states::MAX_READERS + 1] {
            let options = LinkageOptions {
                fold_live_readers: wrong,
                ..LinkageOptions::default()
            };
            let e = options.fold_options().unwrap_err().to_string();
            assert!(e.contains("fold_live_readers"), "{e}");
        }
    }
}
