//! `caselink-linkage`: the aggregator process (serve, or rebuild the projections from the stream).

use std::path::PathBuf;
use std::process::ExitCode;

use caselink_linkage::LinkageOptions;
use clap::{Parser, Subcommand};

/// jemalloc: the fold and sled allocate and free many small nodes per event; glibc's allocator spent ~30 % of the
/// aggregator's CPU in malloc/free (perf, 100k-event fold).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use serde::Serialize;

#[derive(Parser, Serialize)]
#[command(
    about = "caselink linkage: folds case events into projections and serves the Linkage API"
)]
struct Flags {
    /// TOML configuration file.
    #[arg(long, env = "CASELINK_CONFIG", global = true)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Listen address (default 127.0.0.1:50050).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    /// NATS server URL.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    nats_url: Option<String>,
    /// Where to serve `GET /metrics` (Prometheus), e.g. 127.0.0.1:51050; unset = not served.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<String>,
    /// Directory of the sled projections.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    #[serde(skip)]
    command: Option<Command>,
}

#[derive(Subcommand, Clone, Copy)]
enum Command {
    /// Fold the stream and serve queries (the default).
    Serve,
    /// Drop every projection and replay the whole stream into them, then exit. Stop the service first.
    Rebuild,
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        caselink_runtime::init_logging("linkage");
        let options: LinkageOptions =
            match caselink_runtime::load_config(flags.config.as_deref(), &flags) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
        let result = match flags.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                caselink_linkage::serve(options, caselink_runtime::shutdown_on_signal()).await
            }
            Command::Rebuild => caselink_linkage::rebuild(options).await.map(|folded| {
                println!("rebuilt: {folded} events folded");
            }),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "linkage failed");
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}
