//! The caselink benchmark: the raw ceilings of this machine and the pipeline's figures, measured in one run, on the
//! same seeded data, with the same durability (`../shared/spec/performance.md` defines every figure and bar).
//!
//! Owns: preparing the data ([`data`]: the population generator's records in submit form and, through the ingest
//! library's own `prepare`, in bus form); the raw baselines ([`baseline`]: JetStream publish three ways, pull consume,
//! sled batched writes; [`disk`]: the disk's random reads); the pipeline figures ([`ingest`], [`fold`], [`query`], [`freshness`], with the aggregator as
//! its own process, [`aggregator`]); the run ([`run`]) and the table and JSON ([`report`]).
//!
//! Never: asserts timings in tests (tests cover the arithmetic and the table only); touches a port it did not bind
//! itself on 127.0.0.1 (every `nats-server`, service and aggregator gets `127.0.0.1:0` or a testkit port); leaves
//! anything behind (temporary folders, child processes killed or stopped on every path).

pub mod access;
pub mod aggregator;
pub mod baseline;
pub mod data;
pub mod disk;
pub mod fold;
pub mod freshness;
pub mod ingest;
pub mod progress;
pub mod query;
pub mod report;
pub mod run;
pub mod stats;

pub use run::{run, RunOptions, Selection};
