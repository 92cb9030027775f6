//! The report: per-repetition measurements → one table of medians (figure, value, baseline, ratio, bar, pass) and
//! its JSON form for comparing commits.
//!
//! Every ratio is computed within a repetition (the figure against the baseline measured in the same repetition, on
//! the same data), and the table shows the median of those ratios; values and baselines are medians too.

use serde::Serialize;

use crate::disk::DiskReads;
use crate::fold::FoldRun;
use crate::freshness::FreshnessRun;
use crate::query::{OpenLoopRun, QueryRun};
use crate::stats::{median, thousands, Growth, Throughput};

/// What one repetition measured (`None`: not selected, or it failed; see `errors`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepResult {
    pub publish_each: Option<Throughput>,
    pub publish_atomic: Option<Throughput>,
    pub publish_fast: Option<Throughput>,
    pub consume: Option<Throughput>,
    /// The disk's random reads, at each depth measured (empty: not selected, or it failed).
    pub disk: Vec<DiskReads>,
    pub sled: Option<Throughput>,
    /// How sled's own rate held up as its tree filled (the cost growth's context).
    pub sled_growth: Option<Growth>,
    pub ingest: Option<Throughput>,
    pub fold: Option<FoldRun>,
    pub rebuild: Option<Throughput>,
    pub query: Option<QueryRun>,
    pub query_one_caller: Option<QueryRun>,
    pub person_view: Option<QueryRun>,
    /// GetTimeline and GetPersonView at a stated offered rate (open loop).
    pub query_open: Option<OpenLoopRun>,
    pub person_view_open: Option<OpenLoopRun>,
    pub freshness: Option<FreshnessRun>,
    pub aggregator_peak_rss_bytes: Option<u64>,
    /// Measurements that failed, with why.
    pub errors: Vec<String>,
}

impl RepResult {
    /// The best of the three publish baselines, and which it was.
    pub fn publish_ceiling(&self) -> Option<(f64, &'static str)> {
        [
            (self.publish_each, "a"),
            (self.publish_atomic, "b"),
            (self.publish_fast, "c"),
        ]
        .into_iter()
        .filter_map(|(t, name)| Some((t?.per_second(), name)))
        .max_by(|x, y| x.0.total_cmp(&y.0))
    }
}

/// The unit of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    #[serde(rename = "events/s")]
    PerSecond,
    #[serde(rename = "ms")]
    Millis,
    #[serde(rename = "MiB")]
    MiB,
    /// A plain ratio (cost growth).
    #[serde(rename = "x")]
    Times,
}

/// A figure's bar: on its ratio or on its value, at least or at most.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bar {
    pub on_ratio: bool,
    pub at_least: bool,
    pub limit: f64,
}

impl Bar {
    fn passes(&self, value: Option<f64>, ratio: Option<f64>) -> Option<bool> {
        let x = if self.on_ratio { ratio? } else { value? };
        Some(if self.at_least {
            x >= self.limit
        } else {
            x <= self.limit
        })
    }

    fn text(&self, unit: Unit) -> String {
        let op = if self.at_least { "≥" } else { "≤" };
        if self.on_ratio {
            format!("ratio {op} {}", self.limit)
        } else {
            format!("{op} {}", format_value(self.limit, unit))
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub figure: String,
    /// The `--only` part that measures it.
    pub part: &'static str,
    pub value: Option<f64>,
    pub unit: Unit,
    pub baseline: Option<f64>,
    pub baseline_of: Option<String>,
    pub ratio: Option<f64>,
    pub bar: Option<Bar>,
    pub pass: Option<bool>,
    pub note: String,
}

impl Row {
    fn new(part: &'static str, figure: &str, unit: Unit) -> Row {
        Row {
            figure: figure.into(),
            part,
            value: None,
            unit,
            baseline: None,
            baseline_of: None,
            ratio: None,
            bar: None,
            pass: None,
            note: String::new(),
        }
    }

    /// The baseline's cell: what it is and its value, in the row's unit (`missing` when it was not measured).
    fn baseline_cell(&self, missing: &str) -> String {
        match (&self.baseline_of, self.baseline) {
            (Some(of), Some(b)) => format!("{of} {}", format_value(b, self.unit)),
            (Some(of), None) if !missing.is_empty() => format!("{of} {missing}"),
            _ => String::new(),
        }
    }

    fn value(mut self, value: Option<f64>) -> Row {
        self.value = value;
        self
    }

    fn baseline(mut self, of: &str, baseline: Option<f64>, ratio: Option<f64>) -> Row {
        self.baseline_of = Some(of.into());
        self.baseline = baseline;
        self.ratio = ratio;
        self
    }

    fn bar(mut self, on_ratio: bool, at_least: bool, limit: f64) -> Row {
        self.bar = Some(Bar {
            on_ratio,
            at_least,
            limit,
        });
        self
    }

    fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    fn judged(mut self) -> Row {
        self.pass = self.bar.and_then(|b| b.passes(self.value, self.ratio));
        self
    }
}

/// Median over the repetitions of what `f` picks out.
fn med<F: Fn(&RepResult) -> Option<f64>>(reps: &[RepResult], f: F) -> Option<f64> {
    median(&reps.iter().filter_map(f).collect::<Vec<_>>())
}

fn rate(t: Option<Throughput>) -> Option<f64> {
    t.map(|t| t.per_second())
}

/// Where the fold's CPU went: the aggregator's cores and the machine's (medians), or nothing if unmeasured.
fn fold_cpu_note(reps: &[RepResult]) -> String {
    let aggregator = med(reps, |r| r.fold.as_ref()?.aggregator_cores);
    let machine = med(reps, |r| r.fold.as_ref()?.machine_cores);
    match (aggregator, machine) {
        (Some(a), Some(m)) => format!("CPU: aggregator {a:.2} cores, machine {m:.2}"),
        (Some(a), None) => format!("CPU: aggregator {a:.2} cores"),
        _ => String::new(),
    }
}

/// Builds the table's rows from the repetitions.
pub fn rows(reps: &[RepResult], scale_note: &str) -> Vec<Row> {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let ceiling_names: Vec<&str> = reps
        .iter()
        .filter_map(|r| r.publish_ceiling().map(|c| c.1))
        .collect();
    let ceiling_is = |name: &str| {
        let n = ceiling_names.iter().filter(|&&c| c == name).count();
        if n == 0 {
            String::new()
        } else {
            format!("the ceiling in {n} of {} repetitions", reps.len())
        }
    };
    let mut rows: Vec<Row> = vec![
        Row::new(
            "publish",
            "publish (a): one message each, 2,048 acks in flight",
            Unit::PerSecond,
        )
        .value(med(reps, |r| rate(r.publish_each)))
        .note(ceiling_is("a")),
        Row::new(
            "publish",
            "publish (b): atomic batches of 1,000",
            Unit::PerSecond,
        )
        .value(med(reps, |r| rate(r.publish_atomic)))
        .note(ceiling_is("b")),
        Row::new(
            "publish",
            "publish (c): fast batch (ADR-50, allow_batched)",
            Unit::PerSecond,
        )
        .value(med(reps, |r| rate(r.publish_fast)))
        .note(ceiling_is("c")),
        Row::new(
            "publish",
            "publish ceiling: best of (a)-(c)",
            Unit::PerSecond,
        )
        .value(med(reps, |r| r.publish_ceiling().map(|c| c.0))),
        Row::new(
            "consume",
            "consume: pull + ack, batches of 1,000",
            Unit::PerSecond,
        )
        .value(med(reps, |r| rate(r.consume))),
        Row::new(
            "sled",
            "sled: insert + flush per batch of 1,000",
            Unit::PerSecond,
        )
        .value(med(reps, |r| rate(r.sled))),
    ];
    rows.extend(crate::disk::DEPTHS.map(|depth| {
        Row::new(
            "disk",
            &format!("disk: 4 KiB random reads past the page cache, {depth} in flight"),
            Unit::PerSecond,
        )
        .value(med(reps, |r| {
            let read = r.disk.iter().find(|d| d.in_flight == depth)?;
            Some(read.reads.per_second())
        }))
    }));
    rows.extend([
        Row::new(
            "ingest",
            "ingest: SubmitStream, 6 services",
            Unit::PerSecond,
        )
        .value(med(reps, |r| rate(r.ingest)))
        .baseline(
            "publish ceiling",
            med(reps, |r| r.publish_ceiling().map(|c| c.0)),
            med(reps, |r| Some(rate(r.ingest)? / r.publish_ceiling()?.0)),
        )
        .bar(true, true, 0.7),
        Row::new(
            "fold",
            "fold: durable, into an empty store",
            Unit::PerSecond,
        )
        .value(med(reps, |r| {
            Some(r.fold.as_ref()?.throughput.per_second())
        }))
        .baseline(
            "sled",
            med(reps, |r| rate(r.sled)),
            med(reps, |r| {
                Some(r.fold.as_ref()?.throughput.per_second() / rate(r.sled)?)
            }),
        )
        .bar(true, true, 0.5)
        .note(fold_cpu_note(reps)),
        Row::new("freshness", "freshness p50 at 5,000 events/s", Unit::Millis)
            .value(med(reps, |r| Some(r.freshness.as_ref()?.latency.p50_ms))),
        Row::new("freshness", "freshness p99 at 5,000 events/s", Unit::Millis)
            .value(med(reps, |r| Some(r.freshness.as_ref()?.latency.p99_ms)))
            .bar(false, false, 100.0),
        Row::new("query", "GetTimeline p50, 64 callers", Unit::Millis)
            .value(med(reps, |r| Some(r.query.as_ref()?.latency.p50_ms))),
        Row::new("query", "GetTimeline p99, 64 callers", Unit::Millis)
            .value(med(reps, |r| Some(r.query.as_ref()?.latency.p99_ms)))
            .bar(false, false, 5.0)
            .note(scale_note),
        Row::new("query", "GetTimeline calls/s, 64 callers", Unit::PerSecond)
            .value(med(reps, |r| Some(r.query.as_ref()?.calls_per_second))),
        Row::new("query", "GetTimeline p99, 1 caller", Unit::Millis).value(med(reps, |r| {
            Some(r.query_one_caller.as_ref()?.latency.p99_ms)
        })),
        Row::new("query", "GetPersonView p50, 64 callers", Unit::Millis)
            .value(med(reps, |r| Some(r.person_view.as_ref()?.latency.p50_ms))),
        Row::new("query", "GetPersonView p99, 64 callers", Unit::Millis)
            .value(med(reps, |r| Some(r.person_view.as_ref()?.latency.p99_ms)))
            .bar(false, false, 10.0)
            .note(scale_note),
        Row::new(
            "query",
            "GetPersonView calls/s, 64 callers",
            Unit::PerSecond,
        )
        .value(med(reps, |r| {
            Some(r.person_view.as_ref()?.calls_per_second)
        })),
    ]);
    let offered = |f: fn(&RepResult) -> Option<&OpenLoopRun>| {
        med(reps, |r| Some(f(r)?.offered_per_second))
            .map_or("-".to_string(), |x| format_value(x, Unit::PerSecond))
    };
    for (rpc, pick, bar) in [
        (
            "GetTimeline",
            (|r: &RepResult| r.query_open.as_ref()) as fn(&RepResult) -> Option<&OpenLoopRun>,
            5.0,
        ),
        (
            "GetPersonView",
            |r: &RepResult| r.person_view_open.as_ref(),
            10.0,
        ),
    ] {
        let load = format!("open loop, {} offered", offered(pick));
        rows.push(
            Row::new("query", &format!("{rpc} p50, {load}"), Unit::Millis)
                .value(med(reps, |r| Some(pick(r)?.latency.p50_ms))),
        );
        rows.push(
            Row::new("query", &format!("{rpc} p99, {load}"), Unit::Millis)
                .value(med(reps, |r| Some(pick(r)?.latency.p99_ms)))
                .bar(false, false, bar)
                .note(windows_note(reps, pick, scale_note)),
        );
        rows.push(
            Row::new("query", &format!("{rpc} achieved, {load}"), Unit::PerSecond)
                .value(med(reps, |r| Some(pick(r)?.achieved_per_second))),
        );
    }
    rows.extend(vec![
        Row::new(
            "rebuild",
            "rebuild: replay into empty projections",
            Unit::PerSecond,
        )
        .value(med(reps, |r| rate(r.rebuild)))
        .baseline(
            "fold",
            med(reps, |r| Some(r.fold.as_ref()?.throughput.per_second())),
            med(reps, |r| {
                Some(rate(r.rebuild)? / r.fold.as_ref()?.throughput.per_second())
            }),
        )
        .bar(true, true, 1.0),
        Row::new("memory", "aggregator peak RSS", Unit::MiB)
            .value(med(reps, |r| Some(mib(r.aggregator_peak_rss_bytes?))))
            .bar(false, false, 1536.0)
            .note(scale_note),
        growth_row(reps),
    ]);
    for row in &mut rows {
        *row = row.clone().judged();
    }
    rows
}

/// The cost growth, with sled's own beside it. Judged against its bar only when it compares the first 100k events
/// (a stream of 1M or more): a shorter stream's first tenth is mostly the fold's warming up, not a store filling.
fn growth_row(reps: &[RepResult]) -> Row {
    let row = Row::new(
        "cost",
        "cost growth: fold rate as the store fills",
        Unit::Times,
    )
    .value(med(reps, |r| Some(r.fold.as_ref()?.growth?.ratio())))
    .baseline(
        "sled's own",
        med(reps, |r| Some(r.sled_growth?.ratio())),
        None,
    );
    let Some(growth) = reps.iter().find_map(|r| r.fold.as_ref()?.growth) else {
        return row.bar(false, true, 0.8);
    };
    let compared = format!(
        "within one fold: the last tenth of the stream ÷ its {}",
        growth.start_name()
    );
    if growth.as_defined() {
        row.bar(false, true, 0.8).note(format!(
            "{compared} (performance.md's 10M ÷ 100k when the stream holds 10M); sled's own: its baseline's rate the same way"
        ))
    } else {
        row.note(format!(
            "{compared}, not judged: the bar is defined as 10M ÷ 100k, and this stream is under 1M events"
        ))
    }
}

/// A value for the table.
pub fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::PerSecond => format!("{}/s", thousands(value)),
        Unit::Millis if value < 10.0 => format!("{value:.2} ms"),
        Unit::Millis => format!("{value:.1} ms"),
        Unit::MiB => format!("{value:.0} MiB"),
        Unit::Times => format!("{value:.2}"),
    }
}

/// The table as text: one line per row, columns aligned, notes numbered below.
pub fn format_table(rows: &[Row]) -> String {
    let header = ["figure", "value", "baseline", "ratio", "bar", "pass"];
    let mut notes: Vec<&str> = Vec::new();
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let mut figure = r.figure.clone();
            if !r.note.is_empty() {
                let number = match notes.iter().position(|n| *n == r.note) {
                    Some(i) => i + 1,
                    None => {
                        notes.push(&r.note);
                        notes.len()
                    }
                };
                figure = format!("{figure} [{number}]");
            }
            [
                figure,
                r.value.map_or("-".into(), |v| format_value(v, r.unit)),
                r.baseline_cell("-"),
                r.ratio.map_or(String::new(), |x| format!("{x:.2}")),
                r.bar.map_or(String::new(), |b| b.text(r.unit)),
                match (r.bar, r.pass) {
                    (None, _) => String::new(),
                    (Some(_), None) => "n/a".into(),
                    (Some(_), Some(true)) => "pass".into(),
                    (Some(_), Some(false)) => "FAIL".into(),
                },
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            let pad = w - c.chars().count();
            // Numbers right-aligned, text left-aligned.
            if i == 1 || i == 3 {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            }
            if i + 1 < cols.len() {
                s.push_str("  ");
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(&header.map(String::from));
    out.push('\n');
    out.push_str(&line(&widths.map(|w| "-".repeat(w))));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    for (i, note) in notes.iter().enumerate() {
        out.push_str(&format!("[{}] {note}\n", i + 1));
    }
    out
}

/// The scale note of an open-loop p99 row, with the windows it is the median of: each window's p99 for one
/// repetition, their number for several.
fn windows_note(
    reps: &[RepResult],
    pick: fn(&RepResult) -> Option<&OpenLoopRun>,
    scale_note: &str,
) -> String {
    let windows: Vec<&[f64]> = reps
        .iter()
        .filter_map(|r| Some(pick(r)?.window_p99_ms.as_slice()))
        .filter(|w| !w.is_empty())
        .collect();
    let said = match windows.as_slice() {
        [] => return scale_note.to_string(),
        [one] => format!(
            "the median of {} windows, whose p99s were {} ms",
            one.len(),
            one.iter()
                .map(|p| format!("{p:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        many => format!("each repetition's median of {} windows", many[0].len()),
    };
    if scale_note.is_empty() {
        said
    } else {
        format!("{scale_note}; {said}")
    }
}

/// The table as Markdown (for BENCHMARKS.md).
pub fn format_markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| figure | value | baseline | ratio | bar | pass |\n| --- | ---: | --- | ---: | --- | --- |\n",
    );
    for r in rows {
        let figure = if r.note.is_empty() {
            r.figure.clone()
        } else {
            format!("{} ({})", r.figure, r.note)
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            figure,
            r.value.map_or("-".into(), |v| format_value(v, r.unit)),
            r.baseline_cell(""),
            r.ratio.map_or(String::new(), |x| format!("{x:.2}")),
            r.bar.map_or(String::new(), |b| b.text(r.unit)),
            match (r.bar, r.pass) {
                (None, _) => "",
                (Some(_), None) => "n/a",
                (Some(_), Some(true)) => "pass",
                (Some(_), Some(false)) => "**FAIL**",
            },
        ));
    }
    out
}

/// Where, when and on what the run happened.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// The commit the benchmark binary was built from.
    pub commit: Option<String>,
    /// Uncommitted changes in the working tree when the binary was built.
    pub dirty: Option<bool>,
    /// When the run started (UTC).
    pub date: String,
    pub cores: usize,
    pub mode: String,
    pub nats_server: Option<String>,
    pub events: u64,
    pub persons: u64,
    pub people_generated: usize,
    pub seed: u64,
    pub reps: usize,
    pub mean_payload_bytes: f64,
    pub query_persons: usize,
    pub query_persons_mean_events: f64,
    pub publish_each_events: u64,
    pub seconds: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub meta: Meta,
    pub rows: Vec<Row>,
    pub repetitions: Vec<RepResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(count: u64, seconds: f64) -> Option<Throughput> {
        Some(Throughput { count, seconds })
    }

    fn rep(atomic: f64, ingest: f64) -> RepResult {
        RepResult {
            publish_each: t(4_700, 1.0),
            publish_atomic: t(atomic as u64, 1.0),
            ingest: t(ingest as u64, 1.0),
            ..RepResult::default()
        }
    }

    fn row<'a>(rows: &'a [Row], prefix: &str) -> &'a Row {
        rows.iter()
            .find(|r| r.figure.starts_with(prefix))
            .expect("row exists")
    }

    #[test]
    fn ratios_are_per_repetition_then_median() {
        // Per-rep ratios 0.5, 0.8, 0.9 → median 0.8 (not median ingest ÷ median ceiling = 36k/45k).
        let reps = vec![
            rep(40_000.0, 20_000.0),
            rep(45_000.0, 36_000.0),
            rep(50_000.0, 45_000.0),
        ];
        let rows = rows(&reps, "");
        let ingest = row(&rows, "ingest");
        assert_eq!(ingest.value, Some(36_000.0));
        assert_eq!(ingest.baseline, Some(45_000.0));
        assert!((ingest.ratio.expect("ratio") - 0.8).abs() < 1e-9);
        assert_eq!(ingest.pass, Some(true));
        assert_eq!(row(&rows, "publish ceiling").value, Some(45_000.0));
        assert!(row(&rows, "publish (b)").note.contains("3 of 3"));
        assert!(row(&rows, "publish (a)").note.is_empty());
    }

    #[test]
    fn bars_judge_value_or_ratio_and_missing_is_not_a_pass() {
        let reps = vec![RepResult {
            aggregator_peak_rss_bytes: Some(2048 * 1024 * 1024),
            ..RepResult::default()
        }];
        let rows = rows(&reps, "");
        assert_eq!(row(&rows, "aggregator peak RSS").pass, Some(false));
        assert_eq!(row(&rows, "fold").pass, None);
        assert_eq!(row(&rows, "GetPersonView").pass, None);
        let bar = Bar {
            on_ratio: false,
            at_least: false,
            limit: 100.0,
        };
        assert_eq!(bar.passes(Some(100.0), None), Some(true));
        assert_eq!(bar.passes(Some(100.1), None), Some(false));
    }

    #[test]
    fn the_disk_rows_take_each_depths_median() {
        let disk = |one: u64, sixteen: u64| RepResult {
            disk: vec![
                DiskReads {
                    in_flight: 1,
                    reads: Throughput::new(one, std::time::Duration::from_secs(1)),
                },
                DiskReads {
                    in_flight: 16,
                    reads: Throughput::new(sixteen, std::time::Duration::from_secs(1)),
                },
            ],
            ..RepResult::default()
        };
        let reps = vec![
            disk(2_000, 30_000),
            disk(2_400, 25_000),
            disk(1_000, 28_000),
        ];
        let rows = rows(&reps, "");
        let one = row(
            &rows,
            "disk: 4 KiB random reads past the page cache, 1 in flight",
        );
        assert_eq!((one.part, one.value), ("disk", Some(2_000.0)));
        let sixteen = row(
            &rows,
            "disk: 4 KiB random reads past the page cache, 16 in flight",
        );
        assert_eq!(sixteen.value, Some(28_000.0));
        // Without the disk measured, its rows are empty.
        let rows = super::rows(&[RepResult::default()], "");
        assert_eq!(row(&rows, "disk: 4 KiB").value, None);
    }

    #[test]
    fn table_aligns_columns_and_numbers_notes() {
        let reps = vec![rep(47_000.0, 30_000.0)];
        let text = format_table(&rows(&reps, "at this run's scale"));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("figure"));
        assert!(lines[1].starts_with("------"));
        let ingest = lines
            .iter()
            .find(|l| l.starts_with("ingest"))
            .expect("ingest line");
        assert!(ingest.contains("30,000/s"), "{ingest}");
        assert!(ingest.contains("publish ceiling 47,000/s"), "{ingest}");
        assert!(ingest.contains("0.64"), "{ingest}");
        assert!(ingest.contains("ratio ≥ 0.7"), "{ingest}");
        assert!(ingest.ends_with("FAIL"), "{ingest}");
        // The value column is right-aligned: every value ends at the same character column.
        let value_end = |l: &str| {
            let v = if l.contains("30,000/s") {
                "30,000/s"
            } else {
                "47,000/s"
            };
            l.find(v).map(|i| l[..i + v.len()].chars().count())
        };
        let publish_b = lines
            .iter()
            .find(|l| l.starts_with("publish (b)"))
            .expect("publish b line");
        assert_eq!(value_end(ingest), value_end(publish_b));
        assert!(text.contains("[1] the ceiling in 1 of 1 repetitions"));
        assert!(text.contains("[2] at this run's scale"));
        let md = format_markdown(&rows(&reps, ""));
        assert!(md.starts_with("| figure | value |"));
        assert!(md.contains("| **FAIL** |"));
    }

    #[test]
    fn open_loop_rows_name_their_offered_rate_and_carry_the_bars() {
        let open = |p99_ms: f64| OpenLoopRun {
            callers: 64,
            offered_per_second: 500.0,
            achieved_per_second: 499.0,
            latency: crate::stats::LatencySummary {
                samples: 5000,
                p50_ms: 1.0,
                p99_ms,
                max_ms: 9.0,
            },
            send_lag_p99_ms: 0.5,
            calls: 5000,
            mean_entries: 114.0,
            window_p99_ms: Vec::new(),
        };
        let reps = vec![RepResult {
            query_open: Some(open(4.0)),
            person_view_open: Some(open(11.0)),
            ..RepResult::default()
        }];
        let rows = rows(&reps, "");
        let timeline = row(&rows, "GetTimeline p99, open loop, 500/s offered");
        assert_eq!(timeline.value, Some(4.0));
        assert_eq!(timeline.pass, Some(true));
        let view = row(&rows, "GetPersonView p99, open loop, 500/s offered");
        assert_eq!(view.pass, Some(false));
        assert_eq!(
            row(&rows, "GetTimeline achieved, open loop").value,
            Some(499.0)
        );
        // Closed-loop rows stay, empty here.
        assert_eq!(row(&rows, "GetTimeline p99, 64 callers").value, None);

        // Three windows: the figure is the median window's, and the row names all three.
        let windows = vec![open(9.5), open(3.0), open(4.5)];
        let median = crate::query::median_window(windows).expect("three windows");
        assert_eq!(median.latency.p99_ms, 4.5);
        assert_eq!(median.window_p99_ms, [9.5, 3.0, 4.5]);
        let reps = vec![RepResult {
            query_open: Some(median),
            ..RepResult::default()
        }];
        let table = super::rows(&reps, "at 10M");
        let timeline = row(&table, "GetTimeline p99, open loop, 500/s offered");
        assert_eq!(timeline.value, Some(4.5));
        assert_eq!(timeline.pass, Some(true));
        assert_eq!(
            timeline.note,
            "at 10M; the median of 3 windows, whose p99s were 9.50, 3.00, 4.50 ms"
        );
        // One window: itself, no list.
        let one = crate::query::median_window(vec![open(7.0)]).expect("one window");
        assert!(one.window_p99_ms.is_empty());
        assert!(crate::query::median_window(Vec::new()).is_none());
    }

    #[test]
    fn cost_growth_is_judged_on_the_fold_and_shows_sleds_own_beside_it() {
        let growth = |start: f64, last: f64| {
            Some(Growth {
                start_from: 896,
                start_events: crate::stats::GROWTH_BASE,
                start_per_second: start,
                last_tenth_per_second: last,
            })
        };
        let fold = FoldRun {
            throughput: Throughput {
                count: 10_000_000,
                seconds: 250.0,
            },
            first_tenth_per_second: Some(42_000.0),
            growth: growth(40_000.0, 34_000.0),
            samples: 100,
            aggregator_cores: None,
            machine_cores: None,
        };
        let reps = vec![RepResult {
            fold: Some(fold),
            sled_growth: growth(150_000.0, 60_000.0),
            ..RepResult::default()
        }];
        let rows = rows(&reps, "");
        let cost = row(&rows, "cost growth");
        assert_eq!(cost.value, Some(0.85));
        assert_eq!(cost.baseline, Some(0.4));
        // The bar is on the fold's own growth, not on a ratio to sled's.
        assert_eq!((cost.ratio, cost.pass), (None, Some(true)));
        assert!(cost.note.contains("first 100,000 events"), "{}", cost.note);
        let text = format_table(&rows);
        let line = text
            .lines()
            .find(|l| l.starts_with("cost growth"))
            .expect("cost line");
        assert!(line.contains("sled's own 0.40"), "{line}");

        // A stream under 1M events compares its first tenth: shown, not judged.
        let mut short = reps;
        let fold = short[0].fold.as_mut().expect("fold");
        fold.growth = Some(Growth {
            start_from: 1_000,
            start_events: 10_000,
            start_per_second: 20_000.0,
            last_tenth_per_second: 40_000.0,
        });
        let rows = super::rows(&short, "");
        let cost = row(&rows, "cost growth");
        assert_eq!((cost.value, cost.bar, cost.pass), (Some(2.0), None, None));
        assert!(cost.note.contains("not judged"), "{}", cost.note);
    }

    #[test]
    fn values_format_by_unit() {
        assert_eq!(format_value(47_123.4, Unit::PerSecond), "47,123/s");
        assert_eq!(format_value(3.456, Unit::Millis), "3.46 ms");
        assert_eq!(format_value(123.45, Unit::Millis), "123.5 ms");
        assert_eq!(format_value(812.4, Unit::MiB), "812 MiB");
        assert_eq!(format_value(0.9123, Unit::Times), "0.91");
    }
}
