//! The aggregator's metrics (served on `metrics_listen`, see `caselink_runtime::metrics`): how far the fold is, how
//! much it holds, and the workflow projections' positions. The per-RPC counts and latencies come from the layer every
//! gRPC server wears.

use std::sync::Arc;

use caselink_runtime::metrics::{Counter, Family, Gauge, Metrics};
use prometheus_client::encoding::EncodeLabelSet;

/// The case-event fold's figures.
#[derive(Debug, Clone)]
pub struct FoldMetrics {
    /// Events folded into the timelines (replays and duplicates not counted).
    pub events: Counter,
    /// Alerts written to the outbox (raised, grown or withdrawn flags).
    pub alerts: Counter,
    /// The last stream sequence applied, and the one the stored states are exactly as of.
    pub position: Gauge,
    pub states_at: Gauge,
    /// Messages of the fold's partitions still pending at the server (the backlog), as of the last batch pulled.
    pub pending: Gauge,
    /// The state cache: bytes held, and states changed since the last checkpoint.
    pub cache_bytes: Gauge,
    pub dirty_states: Gauge,
    /// Batches prepared and waiting for the apply.
    pub waiting_batches: Gauge,
    /// Events the bus holds beyond the fold that timelines show from memory ([`crate::tail`]).
    pub unfolded_events: Gauge,
    /// The runs of relations with one user: runs stored, their entries (8 bytes each in memory), and of those the
    /// superseded ones (compaction removes them).
    pub runs: Gauge,
    pub run_entries: Gauge,
    pub run_superseded: Gauge,
    /// The allocator's resident and allocated bytes (jemalloc), refreshed about once a second.
    pub resident_bytes: Gauge,
    pub allocated_bytes: Gauge,
}

impl FoldMetrics {
    pub fn register(metrics: &Metrics) -> Arc<FoldMetrics> {
        Arc::new(FoldMetrics {
            events: metrics.register(
                "fold_events",
                "case events folded into the projections",
                Counter::default(),
            ),
            alerts: metrics.register(
                "fold_alerts",
                "alerts written to the outbox",
                Counter::default(),
            ),
            position: metrics.register(
                "fold_position",
                "the last events-stream sequence applied",
                Gauge::default(),
            ),
            states_at: metrics.register(
                "fold_states_at",
                "the events-stream sequence the stored states are exactly as of",
                Gauge::default(),
            ),
            pending: metrics.register(
                "fold_pending",
                "messages still pending at the server for the fold (its backlog)",
                Gauge::default(),
            ),
            cache_bytes: metrics.register(
                "fold_state_cache_bytes",
                "bytes held by the fold's state cache",
                Gauge::default(),
            ),
            dirty_states: metrics.register(
                "fold_dirty_states",
                "states changed since the last checkpoint",
                Gauge::default(),
            ),
            waiting_batches: metrics.register(
                "fold_waiting_batches",
                "batches prepared and waiting to be applied",
                Gauge::default(),
            ),
            unfolded_events: metrics.register(
                "fold_unfolded_events",
                "events beyond the fold that timelines show from memory (the unfolded tail)",
                Gauge::default(),
            ),
            runs: metrics.register(
                "fold_runs",
                "runs of relations with one user stored",
                Gauge::default(),
            ),
            run_entries: metrics.register(
                "fold_run_entries",
                "entries of the runs of relations with one user (8 bytes each in memory)",
                Gauge::default(),
            ),
            run_superseded: metrics.register(
                "fold_run_superseded",
                "entries of the runs superseded by newer ones, until compaction removes them",
                Gauge::default(),
            ),
            resident_bytes: metrics.register(
                "allocator_resident_bytes",
                "bytes of physical memory the allocator holds",
                Gauge::default(),
            ),
            allocated_bytes: metrics.register(
                "allocator_allocated_bytes",
                "bytes allocated by the process",
                Gauge::default(),
            ),
        })
    }
}

/// Which workflow projection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProjectionLabel {
    pub projection: String,
}

/// The workflow projections' figures (referrals, determinations).
#[derive(Debug, Clone)]
pub struct WorkflowMetrics {
    pub position: Family<ProjectionLabel, Gauge>,
    pub events: Family<ProjectionLabel, Counter>,
}

impl WorkflowMetrics {
    pub fn register(metrics: &Metrics) -> Arc<WorkflowMetrics> {
        Arc::new(WorkflowMetrics {
            position: metrics.register(
                "workflow_position",
                "the last workflow-stream sequence folded, by projection",
                Family::default(),
            ),
            events: metrics.register(
                "workflow_events",
                "workflow events folded, by projection",
                Family::default(),
            ),
        })
    }

    /// Records a folded batch of `projection`.
    pub fn folded(&self, projection: &str, position: u64, events: usize) {
        let label = ProjectionLabel {
            projection: projection.to_owned(),
        };
        self.position
            .get_or_create(&label)
            .set(i64::try_from(position).unwrap_or(i64::MAX));
        self.events.get_or_create(&label).inc_by(events as u64);
    }
}

/// A count as a gauge's value.
pub(crate) fn gauge_value(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}
