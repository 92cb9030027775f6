//! One benchmark run: generate and prepare the data once, then per repetition measure the baselines and the
//! pipeline's figures, each on a fresh `nats-server` (same durability as the pipeline) and fresh temporary folders.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use caselink_testkit::NatsServer;

use crate::access::Access;
use crate::aggregator::{self, Aggregator};
use crate::data::{DataParams, Dataset};
use crate::ingest::IngestFleet;
use crate::progress::Progress;
use crate::report::{Meta, RepResult, Report};
use crate::stats::{human_duration, thousands, Throughput};
use crate::{baseline, fold, freshness, query};

/// Acks in flight for publish (a).
pub const PUBLISH_IN_FLIGHT: usize = 2048;
/// Concurrent callers of the timeline figure.
pub const QUERY_CALLERS: usize = 64;
/// The durability mode every measurement runs in.
pub const MODE: &str = "single node, sync_interval: always";

/// What can be selected with `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Publish,
    Consume,
    Disk,
    Sled,
    Ingest,
    Fold,
    Freshness,
    Query,
    Rebuild,
    Memory,
    Cost,
}

impl Part {
    const ALL: [Part; 11] = [
        Part::Publish,
        Part::Consume,
        Part::Disk,
        Part::Sled,
        Part::Ingest,
        Part::Fold,
        Part::Freshness,
        Part::Query,
        Part::Rebuild,
        Part::Memory,
        Part::Cost,
    ];

    fn name(self) -> &'static str {
        match self {
            Part::Publish => "publish",
            Part::Consume => "consume",
            Part::Disk => "disk",
            Part::Sled => "sled",
            Part::Ingest => "ingest",
            Part::Fold => "fold",
            Part::Freshness => "freshness",
            Part::Query => "query",
            Part::Rebuild => "rebuild",
            Part::Memory => "memory",
            Part::Cost => "cost",
        }
    }

    /// What this part's figure is a ratio against (measured along with it).
    fn needs(self) -> &'static [Part] {
        match self {
            Part::Ingest => &[Part::Publish],
            Part::Fold | Part::Cost | Part::Memory => &[Part::Sled, Part::Fold],
            Part::Rebuild => &[Part::Fold, Part::Sled],
            _ => &[],
        }
    }
}

/// The selected parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection(BTreeSet<Part>);

impl Selection {
    /// Everything.
    pub fn all() -> Selection {
        Selection(Part::ALL.into_iter().collect())
    }

    /// Parses `--only` names (`publish`, `consume`, `sled`, `baselines`, `ingest`, `fold`, `freshness`, `query`,
    /// `rebuild`, `memory`, `cost`, `all`) and adds what their ratios need. Empty means everything.
    pub fn parse(names: &[String]) -> Result<Selection, String> {
        if names.iter().all(|n| n.trim().is_empty()) {
            return Ok(Selection::all());
        }
        let mut set = BTreeSet::new();
        for name in names.iter().map(|n| n.trim().to_ascii_lowercase()) {
            match name.as_str() {
                "" => {}
                "all" => set.extend(Part::ALL),
                "baselines" => set.extend([Part::Publish, Part::Consume, Part::Disk, Part::Sled]),
                "timeline" | "queries" => {
                    set.insert(Part::Query);
                }
                "rss" => {
                    set.insert(Part::Memory);
                }
                other => {
                    let part = Part::ALL
                        .into_iter()
                        .find(|p| p.name() == other)
                        .ok_or_else(|| {
                            format!(
                                "--only: {other:?} is not one of baselines, {}",
                                Part::ALL.map(Part::name).join(", ")
                            )
                        })?;
                    set.insert(part);
                }
            }
        }
        let needed: Vec<Part> = set.iter().flat_map(|p| p.needs().iter().copied()).collect();
        set.extend(needed);
        Ok(Selection(set))
    }

    pub fn has(&self, part: Part) -> bool {
        self.0.contains(&part)
    }

    /// Whether a running aggregator is needed.
    fn aggregator(&self) -> bool {
        [
            Part::Fold,
            Part::Freshness,
            Part::Query,
            Part::Memory,
            Part::Cost,
        ]
        .iter()
        .any(|&p| self.has(p))
    }

    /// Whether the pipeline's stream is needed.
    fn pipeline(&self) -> bool {
        self.aggregator() || self.has(Part::Ingest) || self.has(Part::Rebuild)
    }

    /// The names, for the record.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|p| p.name()).collect()
    }
}

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub data: DataParams,
    pub reps: usize,
    pub only: Selection,
    /// Events for publish (a) and (c) (one fsync per message makes them slow): at most this many of the data set.
    pub publish_each_max: u64,
    pub freshness_rate: u64,
    pub freshness: Duration,
    /// GetTimeline calls per caller with 64 callers.
    pub query_calls: usize,
    /// Offered rate of the open-loop query measurement, calls/s (all 64 callers together).
    pub query_rate: f64,
    /// How long each open-loop query measurement runs.
    pub query_open: Duration,
    /// Open-loop measurements per RPC and repetition (the figure is the median window's).
    pub query_windows: usize,
}

/// Rates seen on this machine kind (2 cores, shared) for the up-front estimate: a slow day's at 10M events (sessions
/// 26-27: a complete 10M run took 40 min on a noisy day, 24 min on a quiet one); a busy disk makes the per-message
/// fsyncs much slower.
struct Guess;
impl Guess {
    const GENERATE_AND_PREPARE: f64 = 50_000.0;
    const PUBLISH_EACH: f64 = 2_000.0;
    const PUBLISH_ATOMIC: f64 = 25_000.0;
    const PUBLISH_FAST: f64 = 2_000.0;
    const CONSUME: f64 = 150_000.0;
    const SLED: f64 = 30_000.0;
    /// Writing the disk baseline's file, bytes/s.
    const DISK_WRITE: f64 = 300e6;
    const INGEST: f64 = 22_000.0;
    const FOLD: f64 = 22_000.0;
    const QUERIES: f64 = 15.0;
    const SETUP_PER_REP: f64 = 5.0;
}

/// A rough estimate of the run's duration in seconds, from indicative rates.
pub fn estimate_seconds(options: &RunOptions) -> f64 {
    let n = options.data.events as f64;
    let sel = &options.only;
    let mut rep = Guess::SETUP_PER_REP;
    if sel.has(Part::Publish) {
        let per_message = n.min(options.publish_each_max as f64);
        rep += per_message / Guess::PUBLISH_EACH
            + n / Guess::PUBLISH_ATOMIC
            + per_message / Guess::PUBLISH_FAST;
    }
    if sel.has(Part::Consume) {
        rep += n / Guess::CONSUME;
        if !sel.has(Part::Publish) {
            rep += n / Guess::PUBLISH_ATOMIC;
        }
    }
    if sel.has(Part::Disk) {
        rep += crate::disk::FILE_BYTES as f64 / Guess::DISK_WRITE
            + crate::disk::DEPTHS.len() as f64 * crate::disk::READ_TIME.as_secs_f64();
    }
    if sel.has(Part::Sled) {
        rep += n / Guess::SLED;
    }
    if sel.pipeline() {
        rep += n / if sel.has(Part::Ingest) {
            Guess::INGEST
        } else {
            Guess::PUBLISH_ATOMIC
        };
    }
    if sel.aggregator() {
        rep += n / Guess::FOLD;
    }
    if sel.has(Part::Query) {
        rep +=
            Guess::QUERIES + 2.0 * options.query_windows as f64 * options.query_open.as_secs_f64();
    }
    if sel.has(Part::Freshness) {
        rep += options.freshness.as_secs_f64() + 3.0;
    }
    if sel.has(Part::Rebuild) {
        rep += (n + options.freshness_rate as f64 * options.freshness.as_secs_f64()) / Guess::FOLD;
    }
    n / Guess::GENERATE_AND_PREPARE + rep * options.reps.max(1) as f64
}

/// Runs the benchmark.
pub async fn run(options: &RunOptions, progress: &Progress) -> anyhow::Result<Report> {
    let started = Instant::now();
    progress.phase(&format!(
        "caselink-bench: {} events, {} repetition(s), parts: {}; expect roughly {} on a 2-core machine",
        thousands(options.data.events as f64),
        options.reps,
        options.only.names().join(", "),
        human_duration(estimate_seconds(options))
    ));
    let date = now_rfc3339();
    let nats_version = nats_server_version();
    let (commit, dirty) = built_from();
    let data = {
        let server = NatsServer::start().context("starting nats-server")?;
        crate::data::prepare(&options.data, &server.url(), progress).await?
    };
    let query_mean = data
        .query_persons
        .iter()
        .map(|(_, n)| *n as f64)
        .sum::<f64>()
        / data.query_persons.len().max(1) as f64;
    progress.note(&format!(
        "{} events of {} persons ({} generated, {} refused at the door), {:.0} bytes per bus message; \
         {} query persons with {:.0} events on average; {} events for freshness",
        thousands(data.events as f64),
        thousands(data.persons as f64),
        thousands(data.generated as f64),
        thousands(data.rejected as f64),
        data.mean_payload_bytes,
        data.query_persons.len(),
        query_mean,
        thousands(data.fresh.len() as f64),
    ));
    let access = Access::generate()?;
    let mut reps = Vec::new();
    for rep in 0..options.reps.max(1) {
        progress.phase(&format!(
            "repetition {} of {}",
            rep + 1,
            options.reps.max(1)
        ));
        reps.push(repetition(options, &data, &access, rep, progress).await);
    }
    let scale_note = format!(
        "at this run's scale ({} events, {} persons); the bar is defined at 10M events, 1M persons",
        thousands(data.events as f64),
        thousands(data.persons as f64)
    );
    let parts = options.only.names();
    let rows = crate::report::rows(&reps, &scale_note)
        .into_iter()
        .filter(|row| parts.contains(&row.part))
        .collect();
    let meta = Meta {
        commit,
        dirty,
        date,
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        mode: MODE.into(),
        nats_server: nats_version,
        events: data.events,
        persons: data.persons,
        people_generated: data.people,
        seed: options.data.seed,
        reps: reps.len(),
        mean_payload_bytes: data.mean_payload_bytes,
        query_persons: data.query_persons.len(),
        query_persons_mean_events: query_mean,
        publish_each_events: options.publish_each_max.min(data.events),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(Report {
        meta,
        rows,
        repetitions: reps,
    })
}

/// Runs `what`, reporting its outcome; a failure is recorded in `errors`, not fatal to the run.
async fn attempt<T, F>(errors: &mut Vec<String>, progress: &Progress, what: &str, f: F) -> Option<T>
where
    F: Future<Output = anyhow::Result<T>>,
{
    progress.phase(what);
    match f.await {
        Ok(v) => Some(v),
        Err(e) => {
            let text = format!("{what}: {e:#}");
            progress.note(&format!("FAILED {text}"));
            errors.push(text);
            None
        }
    }
}

fn said(progress: &Progress, t: Option<Throughput>) -> Option<Throughput> {
    if let Some(t) = t {
        progress.note(&format!(
            "{}/s ({} in {:.1} s)",
            thousands(t.per_second()),
            thousands(t.count as f64),
            t.seconds
        ));
    }
    t
}

async fn repetition(
    options: &RunOptions,
    data: &Dataset,
    access: &Access,
    rep: usize,
    progress: &Progress,
) -> RepResult {
    let mut r = RepResult::default();
    let mut errors = Vec::new();
    if let Err(e) = measure(options, data, access, rep, progress, &mut r, &mut errors).await {
        progress.note(&format!("FAILED {e:#}"));
        errors.push(format!("{e:#}"));
    }
    r.errors = errors;
    r
}

async fn measure(
    options: &RunOptions,
    data: &Dataset,
    access: &Access,
    rep: usize,
    progress: &Progress,
    r: &mut RepResult,
    errors: &mut Vec<String>,
) -> anyhow::Result<()> {
    let sel = &options.only;
    let n = data.events;
    if sel.has(Part::Publish) {
        let server = NatsServer::start().context("starting nats-server")?;
        let limit = options.publish_each_max.min(n);
        let what = format!(
            "baseline publish (a): {} events one by one, {PUBLISH_IN_FLIGHT} acks in flight",
            thousands(limit as f64)
        );
        let t = attempt(
            errors,
            progress,
            &what,
            baseline::publish_each(&server.url(), data, limit, PUBLISH_IN_FLIGHT),
        )
        .await;
        r.publish_each = said(progress, t);
    }
    if sel.has(Part::Publish) || sel.has(Part::Consume) {
        let server = NatsServer::start().context("starting nats-server")?;
        let t = attempt(
            errors,
            progress,
            "baseline publish (b): atomic batches of 1,000",
            baseline::publish_atomic(&server.url(), data, n),
        )
        .await;
        r.publish_atomic = said(progress, t);
        if sel.has(Part::Consume) && r.publish_atomic.is_some() {
            let t = attempt(
                errors,
                progress,
                "baseline consume: pull + ack",
                baseline::consume(&server.url(), n),
            )
            .await;
            r.consume = said(progress, t);
        }
    }
    if sel.has(Part::Publish) {
        let server = NatsServer::start().context("starting nats-server")?;
        let limit = options.publish_each_max.min(n);
        let what = format!(
            "baseline publish (c): {} events as one fast batch (ADR-50)",
            thousands(limit as f64)
        );
        let t = attempt(
            errors,
            progress,
            &what,
            baseline::publish_fast(&server.url(), data, limit),
        )
        .await;
        r.publish_fast = said(progress, t);
    }
    if sel.has(Part::Disk) {
        let dir = tempfile::tempdir_in(data.dir()).context("a folder for the disk baseline")?;
        let what = format!(
            "baseline disk: a {} MiB file, then 4 KiB random reads past the page cache, {} in flight",
            crate::disk::FILE_BYTES >> 20,
            crate::disk::DEPTHS.map(|d| d.to_string()).join(" and ")
        );
        let dir = dir.path().to_owned();
        let measured =
            async { tokio::task::spawn_blocking(move || crate::disk::measure(&dir)).await? };
        let reads = attempt(errors, progress, &what, measured).await;
        for read in reads.iter().flatten() {
            progress.note(&format!(
                "{} in flight: {} reads/s ({:.0} µs a read)",
                read.in_flight,
                thousands(read.reads.per_second()),
                read.in_flight as f64 * 1e6 / read.reads.per_second().max(1e-9)
            ));
        }
        r.disk = reads.unwrap_or_default();
    }
    if sel.has(Part::Sled) {
        let dir = tempfile::tempdir_in(data.dir()).context("a sled folder")?;
        let t = attempt(
            errors,
            progress,
            "baseline sled: insert + flush per 1,000 timeline records",
            baseline::sled_write(dir.path(), data, n, baseline::SLED_BATCH),
        )
        .await;
        if let Some((_, Some(growth))) = &t {
            progress.note(&growth.describe());
        }
        r.sled_growth = t.and_then(|(_, growth)| growth);
        r.sled = said(progress, t.map(|(throughput, _)| throughput));
    }
    if !sel.pipeline() {
        return Ok(());
    }

    let server = NatsServer::start().context("starting nats-server")?;
    let url = server.url();
    let fleet = if sel.has(Part::Ingest) || sel.has(Part::Freshness) {
        progress.phase("starting the six ingest services");
        Some(IngestFleet::start(&url, &data.identity, access).await?)
    } else {
        None
    };
    match &fleet {
        Some(fleet) if sel.has(Part::Ingest) => {
            let t = attempt(
                errors,
                progress,
                "ingest: every department's records through SubmitStream",
                crate::ingest::submit_all(fleet, data, progress),
            )
            .await;
            r.ingest = said(progress, t);
        }
        _ => {
            progress.phase("filling the events stream (atomic batches)");
            baseline::publish_atomic(&url, data, n).await?;
        }
    }
    let client = caselink_bus::connect(&url, "caselink-bench-watch", Duration::from_secs(10))
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let js = async_nats::jetstream::new(client);
    let filled = fold::stream_last_sequence(&js).await?;
    if filled < n {
        anyhow::bail!(
            "the events stream holds {filled} events, {n} expected; the pipeline figures need all"
        );
    }

    if sel.aggregator() {
        let dir = tempfile::tempdir_in(data.dir()).context("an aggregator folder")?;
        progress.phase("starting the aggregator process on an empty store");
        let sled = dir.path().join("sled");
        // The fold options the aggregator runs with (its durable consumer's name among them).
        let fold_options = aggregator::layered_options(&url, &sled)?
            .fold_options()
            .map_err(|e| anyhow!("{e}"))?;
        let aggregator = Aggregator::spawn(
            &url,
            &sled,
            &data.identity.person_key_secret,
            &access.verifier_keys().public_key,
            &dir.path().join("aggregator.log"),
        )
        .await?;
        let what = format!(
            "fold: {} events from the stream into an empty store",
            thousands(filled as f64)
        );
        let run = attempt(
            errors,
            progress,
            &what,
            fold::watch_fold(&js, &fold_options, filled, aggregator.pid(), progress),
        )
        .await;
        if let Some(run) = &run {
            said(progress, Some(run.throughput));
            progress.note(&format!(
                "{}; first tenth {}/s ({} samples); CPU: aggregator {} cores, machine {} of {}",
                run.growth
                    .map_or("growth not resolved".into(), |g| g.describe()),
                run.first_tenth_per_second.map_or("-".into(), thousands),
                run.samples,
                run.aggregator_cores
                    .map_or("-".into(), |c| format!("{c:.2}")),
                run.machine_cores.map_or("-".into(), |c| format!("{c:.2}")),
                std::thread::available_parallelism().map_or(0, usize::from),
            ));
        }
        r.fold = run;
        if sel.has(Part::Query) && r.fold.is_some() {
            let what = format!(
                "GetTimeline: {QUERY_CALLERS} callers × {} calls",
                options.query_calls
            );
            r.query = attempt(
                errors,
                progress,
                &what,
                query::measure(
                    query::Query::Timeline,
                    access,
                    aggregator.address(),
                    &data.query_persons,
                    QUERY_CALLERS,
                    options.query_calls,
                ),
            )
            .await;
            let what = format!(
                "GetPersonView: {QUERY_CALLERS} callers × {} calls",
                options.query_calls
            );
            r.person_view = attempt(
                errors,
                progress,
                &what,
                query::measure(
                    query::Query::PersonView,
                    access,
                    aggregator.address(),
                    &data.query_persons,
                    QUERY_CALLERS,
                    options.query_calls,
                ),
            )
            .await;
            for (query, name) in [
                (query::Query::Timeline, "GetTimeline"),
                (query::Query::PersonView, "GetPersonView"),
            ] {
                let mut windows = Vec::with_capacity(options.query_windows);
                for window in 1..=options.query_windows {
                    let what = format!(
                        "{name}: open loop, {QUERY_CALLERS} callers, {}/s offered for {} s (window {window} of {})",
                        thousands(options.query_rate),
                        options.query_open.as_secs_f64(),
                        options.query_windows
                    );
                    let Some(q) = attempt(
                        errors,
                        progress,
                        &what,
                        query::measure_open(
                            query,
                            access,
                            aggregator.address(),
                            &data.query_persons,
                            QUERY_CALLERS,
                            options.query_rate,
                            options.query_open,
                        ),
                    )
                    .await
                    else {
                        break;
                    };
                    progress.note(&format!(
                        "{name}, open loop: p50 {:.2} ms, p99 {:.2} ms from the scheduled send, {}/s achieved \
                         of {}/s offered, send lag p99 {:.2} ms, {} calls",
                        q.latency.p50_ms,
                        q.latency.p99_ms,
                        thousands(q.achieved_per_second),
                        thousands(q.offered_per_second),
                        q.send_lag_p99_ms,
                        q.calls
                    ));
                    windows.push(q);
                }
                // A window that failed leaves the RPC without a figure (the failure is in the errors).
                let run = if windows.len() == options.query_windows {
                    query::median_window(windows)
                } else {
                    None
                };
                match query {
                    query::Query::Timeline => r.query_open = run,
                    query::Query::PersonView => r.person_view_open = run,
                }
            }
            let what = format!("GetTimeline: 1 caller × {} calls", options.query_calls * 4);
            r.query_one_caller = attempt(
                errors,
                progress,
                &what,
                query::measure(
                    query::Query::Timeline,
                    access,
                    aggregator.address(),
                    &data.query_persons,
                    1,
                    options.query_calls * 4,
                ),
            )
            .await;
            for (name, q) in [
                ("GetTimeline", &r.query),
                ("GetPersonView", &r.person_view),
                ("GetTimeline", &r.query_one_caller),
            ]
            .into_iter()
            .filter_map(|(n, q)| Some((n, q.as_ref()?)))
            {
                progress.note(&format!(
                    "{name}, {} caller(s): p50 {:.2} ms, p99 {:.2} ms, {}/s, {:.0} events per person",
                    q.callers,
                    q.latency.p50_ms,
                    q.latency.p99_ms,
                    thousands(q.calls_per_second),
                    q.mean_entries
                ));
            }
        }
        if let (Some(fleet), true) = (&fleet, sel.has(Part::Freshness) && r.fold.is_some()) {
            let what = format!(
                "freshness: {} events/s offered for {} s",
                thousands(options.freshness_rate as f64),
                options.freshness.as_secs()
            );
            r.freshness = attempt(
                errors,
                progress,
                &what,
                freshness::freshness(
                    access,
                    fleet,
                    aggregator.address(),
                    &js,
                    &fold_options.durable_name(),
                    &data.fresh,
                    options.freshness_rate,
                    options.freshness,
                    rep,
                ),
            )
            .await;
            if let Some(f) = &r.freshness {
                progress.note(&format!(
                    "p50 {:.1} ms, p99 {:.1} ms over {} traced events ({} missed); {}/s offered, {} accepted; \
                     fold backlog up to {}, {} when the load stopped",
                    f.latency.p50_ms,
                    f.latency.p99_ms,
                    f.latency.samples,
                    f.missed,
                    thousands(f.offered_per_second),
                    thousands(f.accepted as f64),
                    thousands(f.max_fold_backlog as f64),
                    thousands(f.end_fold_backlog as f64)
                ));
            }
        }
        r.aggregator_peak_rss_bytes = aggregator.peak_rss_bytes();
        if let Some(b) = r.aggregator_peak_rss_bytes {
            progress.note(&format!(
                "aggregator peak RSS {:.0} MiB",
                b as f64 / 1048576.0
            ));
        }
        attempt(
            errors,
            progress,
            "stopping the aggregator",
            aggregator.stop(),
        )
        .await;
    }
    drop(fleet);

    if sel.has(Part::Rebuild) {
        let expected = fold::stream_last_sequence(&js).await?;
        let dir = tempfile::tempdir_in(data.dir()).context("a rebuild folder")?;
        let what = format!(
            "rebuild: {} events into empty projections",
            thousands(expected as f64)
        );
        let t = attempt(
            errors,
            progress,
            &what,
            fold::rebuild(&url, dir.path(), expected, progress),
        )
        .await;
        r.rebuild = said(progress, t);
    }
    drop(server);
    Ok(())
}

/// The commit this binary was built from and whether the tree had uncommitted changes then (`build.rs`): what the run
/// measured, wherever it is started from; `None` when built without git.
fn built_from() -> (Option<String>, Option<bool>) {
    let commit = Some(env!("CASELINK_BENCH_COMMIT")).filter(|c| !c.is_empty());
    let dirty = match env!("CASELINK_BENCH_DIRTY") {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    (commit.map(str::to_string), dirty)
}

fn nats_server_version() -> Option<String> {
    let binary = caselink_runtime::find_nats_server().ok()?;
    let out = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn empty_only_selects_everything() {
        assert_eq!(Selection::parse(&[]), Ok(Selection::all()));
        assert_eq!(Selection::parse(&names(&[""])), Ok(Selection::all()));
    }

    #[test]
    fn only_adds_the_baselines_a_ratio_needs() {
        let s = Selection::parse(&names(&["ingest"])).expect("valid");
        assert!(s.has(Part::Ingest) && s.has(Part::Publish));
        assert!(!s.has(Part::Fold) && !s.has(Part::Sled));
        let s = Selection::parse(&names(&["rebuild"])).expect("valid");
        assert!(s.has(Part::Rebuild) && s.has(Part::Fold) && s.has(Part::Sled));
        let s = Selection::parse(&names(&["baselines", "query"])).expect("valid");
        assert_eq!(
            s.names(),
            vec!["publish", "consume", "disk", "sled", "query"]
        );
    }

    #[test]
    fn the_report_names_the_commit_the_binary_was_built_from() {
        let here = std::process::Command::new("git")
            .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
        let (commit, dirty) = built_from();
        match here {
            // Built in a checkout: its HEAD, and whether the tree was clean is known.
            Some(head) => {
                assert_eq!(commit.as_deref(), Some(head.as_str()));
                assert!(dirty.is_some());
            }
            // Built from sources without git: unknown, not guessed.
            None => assert_eq!((commit, dirty), (None, None)),
        }
    }

    #[test]
    fn only_rejects_unknown_names_listing_the_known() {
        let err = Selection::parse(&names(&["speed"])).expect_err("unknown");
        assert!(
            err.contains("\"speed\"") && err.contains("freshness"),
            "{err}"
        );
    }
}
