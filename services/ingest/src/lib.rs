//! The ingest library: what every department service runs (market, police, justice, court, petition, hotline).
//!
//! A department service is this library plus its [`DepartmentRules`]: the department it speaks for, its default address
//! and its department-specific checks. Per event: validate at the door (generic checks of `caselink-domain` plus the
//! department's own), derive the event id, stamp `recorded_at`, pseudonymise the subject (the clear ID number never
//! leaves this process), choose the partitioned subject, and publish durably through the group-committing publisher.
//! Answers only after JetStream acknowledged every accepted event.
//!
//! Stateless: any number of instances may run behind a load balancer. Never logs personal data (keys and counts only).

pub mod checks;
mod config;
mod error;
mod service;

pub use config::{IngestFlags, IngestOptions};
pub use error::IngestError;
pub use service::{serve_on, IngestService, Prepared};

use caselink_domain::Violations;
use caselink_proto::v1::{CaseEvent, Department};

/// What makes a department's service its own.
pub trait DepartmentRules: Send + Sync + 'static {
    /// The department whose events this service accepts (and only those).
    fn department(&self) -> Department;
    /// Default listen address (api.md: market :50051 … hotline :50056).
    fn default_listen(&self) -> &'static str;
    /// Department-specific checks, after the generic ones of `caselink_domain::validate_event` passed the envelope.
    /// Push one violation per problem, naming the proto field path.
    fn check(&self, event: &CaseEvent, violations: &mut Violations);
}

/// The `main` of a department binary: flags → config → logging → serve until Ctrl-C/SIGTERM.
pub fn main_for<R: DepartmentRules>(rules: R) -> std::process::ExitCode {
    use clap::Parser;
    let flags = IngestFlags::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let service_name: &'static str = caselink_domain::department_code(rules.department());
    runtime.block_on(async move {
        caselink_runtime::init_logging(service_name);
        let options = match IngestOptions::load(&flags, &rules) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "bad configuration");
                eprintln!("{e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let cancel = caselink_runtime::shutdown_on_signal();
        match service::serve(rules, options, cancel).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "ingest service failed");
                eprintln!("{e}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}
