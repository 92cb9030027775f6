//! `caselink-bench`: flags → [`caselink_bench::run`] → the table on stdout (and JSON with `--json`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use caselink_bench::aggregator::AGGREGATOR_COMMAND;
use caselink_bench::data::DataParams;
use caselink_bench::progress::Progress;
use caselink_bench::report::{format_markdown, format_table};
use caselink_bench::stats::parse_count;
use caselink_bench::{RunOptions, Selection};
use clap::{Parser, Subcommand};

/// jemalloc: the fold and sled allocate and free many small nodes per event; glibc's allocator spent ~30 % of the
/// aggregator's CPU in malloc/free (perf, 100k-event fold).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "caselink-bench",
    about = "caselink benchmark: raw JetStream/sled baselines and the pipeline's figures, in one run on the same data",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Events to generate and push through (100k, 1M, 10M, …).
    #[arg(long, default_value = "100k", value_parser = parse_count)]
    events: u64,
    /// Persons in the generated population (100k, 1M, …; default: enough for --events).
    #[arg(long, value_parser = parse_count)]
    people: Option<u64>,
    /// Years of history to generate.
    #[arg(long, default_value_t = 2)]
    years: u32,
    /// Repetitions; the table shows medians.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seed of the generated population.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only these parts (comma-separated): baselines, publish, consume, disk, sled, ingest, fold, freshness, query,
    /// rebuild, memory, cost. Baselines a chosen figure's ratio needs are added.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Events for publish (a) and (c), which cost one fsync per message here: at most this many of the data set
    /// (their rate does not depend on the count; the other figures use every event).
    #[arg(long, default_value = "20k", value_parser = parse_count)]
    publish_each_max: u64,
    /// Offered load of the freshness figure, events/s.
    #[arg(long, default_value_t = 5000)]
    freshness_rate: u64,
    /// How long the freshness load runs, seconds.
    #[arg(long, default_value_t = 10)]
    freshness_secs: u64,
    /// GetTimeline calls per caller (64 callers).
    #[arg(long, default_value_t = 50)]
    query_calls: usize,
    /// Offered rate of the open-loop GetTimeline and GetPersonView measurements, calls/s (64 callers in all).
    #[arg(long, default_value_t = 500.0)]
    query_rate: f64,
    /// How long each open-loop query measurement runs, seconds.
    #[arg(long, default_value_t = 10.0)]
    query_secs: f64,
    /// Open-loop measurements (windows of --query-secs) per RPC and repetition; each figure is the median window's.
    #[arg(long, default_value_t = 3)]
    query_windows: usize,
    /// Also print the table as Markdown.
    #[arg(long)]
    markdown: bool,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the aggregator (what `caselink-linkage` runs) for a measurement; used by the benchmark itself.
    #[command(name = AGGREGATOR_COMMAND, hide = true)]
    Aggregator {
        #[arg(long)]
        nats_url: String,
        #[arg(long)]
        data_dir: PathBuf,
    },
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
    if let Some(Command::Aggregator { nats_url, data_dir }) = cli.command {
        return match runtime.block_on(caselink_bench::aggregator::serve_child(nats_url, data_dir)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("aggregator: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let only = match Selection::parse(&cli.only) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let options = RunOptions {
        data: DataParams {
            events: cli.events,
            people: cli.people.map(|p| usize::try_from(p).unwrap_or(usize::MAX)),
            seed: cli.seed,
            years: cli.years,
        },
        reps: cli.reps.max(1),
        only,
        publish_each_max: cli.publish_each_max,
        freshness_rate: cli.freshness_rate,
        freshness: Duration::from_secs(cli.freshness_secs),
        query_calls: cli.query_calls.max(1),
        query_rate: cli.query_rate,
        query_open: Duration::from_secs_f64(cli.query_secs.max(0.1)),
        query_windows: cli.query_windows.max(1),
    };
    let progress = Progress::new(cli.quiet);
    // On Ctrl-C or SIGTERM the run is dropped, which stops its nats-servers and aggregator and removes its folders.
    let outcome = runtime.block_on(async {
        let stop = caselink_runtime::shutdown_on_signal();
        tokio::select! {
            report = caselink_bench::run(&options, &progress) => Some(report),
            _ = stop.cancelled() => None,
        }
    });
    let report = match outcome {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            eprintln!("benchmark failed: {e:#}");
            return ExitCode::FAILURE;
        }
        None => {
            eprintln!("interrupted; cleaned up");
            return ExitCode::from(130);
        }
    };
    let meta = &report.meta;
    println!(
        "caselink-bench  commit {}{}  {}  {} cores  {}  {}",
        meta.commit.as_deref().unwrap_or("unknown"),
        if meta.dirty == Some(true) {
            " (dirty)"
        } else {
            ""
        },
        meta.date,
        meta.cores,
        meta.mode,
        meta.nats_server.as_deref().unwrap_or("nats-server ?"),
    );
    println!(
        "{} events, {} persons, {:.0} bytes per bus message, median of {} repetition(s), {:.0} s in all\n",
        meta.events, meta.persons, meta.mean_payload_bytes, meta.reps, meta.seconds
    );
    print!("{}", format_table(&report.rows));
    if cli.markdown {
        println!("\n{}", format_markdown(&report.rows));
    }
    let errors: Vec<&String> = report.repetitions.iter().flat_map(|r| &r.errors).collect();
    for e in &errors {
        println!("error: {e}");
    }
    if let Some(path) = &cli.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(path, json));
        if let Err(e) = written {
            eprintln!("writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
