//! `caselink`: the all-in-one command.
//!
//! `caselink up` runs the whole system locally (its own nats-server, the six department services and linkage);
//! `submit`, `timeline` and `rebuild` are the client and operator commands for people and scripts.

mod audit;
mod demo;
mod determination;
mod eval;
mod gen;
mod person;
mod referral;
mod situation;
mod submit;
mod timeline;
mod tokens;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "caselink",
    version,
    about = "caselink: inter-agency case linkage against abusive complaint-for-profit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything locally: nats-server, the six department services and linkage. Ctrl-C stops all.
    Up(up::UpArgs),
    /// Submit a department's records (proto3 JSON, one CaseEvent a line) through its Ingest service.
    Submit(submit::SubmitArgs),
    /// Generate a seeded synthetic population (department files + truth.json) for tests, demos and benchmarks.
    Gen(gen::GenArgs),
    /// Load a folder of department files (e.g. from `caselink gen`) through all department services at once.
    Load(submit::LoadArgs),
    /// Show a person's cross-agency timeline.
    Timeline(timeline::TimelineArgs),
    /// Criminal referral 行刑衔接: draft, approve, transfer, receive, register, … get, list.
    Referral(referral::ReferralArgs),
    /// Determination and the abnormal list 异常名录: confirm, clear, revoke (determiner); check, list.
    Determination(determination::DeterminationArgs),
    /// Follow a police unit's incoming leads live (resume with --cursor).
    Leads(referral::LeadsArgs),
    /// Show the joint view of a person: figures, flags (rule, clause, status, evidence), determination, links.
    Person(person::PersonArgs),
    /// Follow screening alerts of a region live (resumable with --cursor).
    Alerts(person::AlertsArgs),
    /// The joint meeting's figures for a region and period: totals, flags, referrals, assessment rates.
    Situation(situation::SituationArgs),
    /// Load a generated population (from `caselink gen`) and score the flags against its truth.json.
    Eval(eval::EvalArgs),
    /// The audit trail of reads of person data.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Bearer tokens for people and systems.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Drop the linkage projections and replay the whole stream into them (stop `caselink up` first).
    Rebuild {
        /// The data directory `caselink up` uses.
        #[arg(long, default_value = ".caselink")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Follow every hash chain of the audit stream and report the first broken link (exit 1 if any).
    Verify(audit::VerifyArgs),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token under the deployment's signing key, e.g. `caselink token issue --role police --unit 430602 --ttl 30d`.
    Issue(tokens::IssueArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Submit(args) => submit::run(args).await,
            Command::Gen(args) => gen::run(args).await,
            Command::Load(args) => submit::load(args).await,
            Command::Timeline(args) => timeline::run(args).await,
            Command::Referral(args) => referral::run(args).await,
            Command::Determination(args) => determination::run(args).await,
            Command::Leads(args) => referral::leads(args).await,
            Command::Person(args) => person::person(args).await,
            Command::Alerts(args) => person::alerts(args).await,
            Command::Situation(args) => situation::run(args).await,
            Command::Eval(args) => eval::run(args).await,
            Command::Token(TokenCommand::Issue(args)) => tokens::issue(args),
            Command::Audit(AuditCommand::Verify(args)) => audit::verify(args).await,
            Command::Rebuild { data_dir } => up::rebuild(&data_dir).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("caselink: {e:#}");
            ExitCode::FAILURE
        }
    }
}
