//! `caselink gen`: a seeded synthetic population as department files plus its truth.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use caselink_population::{generate, GenParams};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub(crate) struct GenArgs {
    /// Same seed and parameters give byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Persons in the population.
    #[arg(long, default_value_t = 1000)]
    people: usize,
    /// Years of history, ending at --end.
    #[arg(long, default_value_t = 2)]
    years: u32,
    /// Region prefix (4 or 6 digits) every record falls in, e.g. 4306 (Yueyang).
    #[arg(long, default_value = "4306")]
    region: String,
    /// Last day of the history (YYYY-MM-DD, China time).
    #[arg(long, default_value = "2026-06-30")]
    end: String,
    /// Share of persons who are abusive claimants.
    #[arg(long, default_value_t = 0.01)]
    abuser_share: f64,
    /// Output folder: market.jsonl … hotline.jsonl and truth.json.
    #[arg(long)]
    out: PathBuf,
}

pub(crate) async fn run(args: GenArgs) -> anyhow::Result<ExitCode> {
    let params = GenParams {
        seed: args.seed,
        people: args.people,
        years: args.years,
        region: args.region,
        end: args.end,
        abuser_share: args.abuser_share,
    };
    let out = args.out;
    let progress = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {pos} events  {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let bar = progress.clone();
    let started = Instant::now();
    let summary =
        tokio::task::spawn_blocking(move || generate(&params, &out, &mut |n| bar.set_position(n)))
            .await
            .context("the generator task failed")??;
    progress.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} events for {} persons ({} abusive, {} rings) in {:.1} s ({:.0} events/s)",
        summary.events,
        summary.persons,
        summary.abusers,
        summary.rings,
        secs,
        summary.events as f64 / secs.max(1e-9)
    );
    for (i, (department, _)) in caselink_population::DEPARTMENT_FILES.iter().enumerate() {
        println!("  {department:<9} {}", summary.by_department[i]);
    }
    for file in &summary.files {
        println!("  {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
