//! The benchmark program end to end, at a small scale (30k events): one run measures every figure of performance.md (none of its
//! measurements fails), prints the table and writes the JSON naming the commit. Values are not judged here: speed is
//! the benchmark's to report, never a test's.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use caselink_e2e::bin_dir;

/// Every figure of performance.md's table, by the start of its row.
const FIGURES: [&str; 10] = [
    "ingest: SubmitStream",
    "fold: durable",
    "freshness p99",
    "GetTimeline p99, 64 callers",
    "GetPersonView p99, 64 callers",
    "GetTimeline p99, open loop",
    "GetPersonView p99, open loop",
    "rebuild: replay",
    "aggregator peak RSS",
    "cost growth",
];

#[test]
fn one_run_measures_every_figure_and_writes_the_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let stdout = dir.path().join("table.txt");
    let stderr = dir.path().join("progress.txt");
    // Every part but the disk's (a 1 GiB file), short windows and loads.
    let mut child = Command::new(bin_dir().join("caselink-bench"))
        .args([
            "--events",
            "30k",
            "--reps",
            "1",
            "--only",
            "publish,consume,sled,ingest,fold,freshness,query,rebuild,memory,cost",
            "--publish-each-max",
            "1000",
            "--freshness-rate",
            "500",
            "--freshness-secs",
            "2",
            "--query-calls",
            "2",
            "--query-rate",
            "100",
            "--query-secs",
            "1",
            "--query-windows",
            "1",
            "--json",
        ])
        .arg(&json)
        .current_dir(dir.path())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(900);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // SIGTERM: the bench stops its servers and the aggregator and removes its folders.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
            panic!(
                "the benchmark did not finish in 15 min:\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let progress = std::fs::read_to_string(&stderr).unwrap();
    assert!(status.success(), "{status}:\n{progress}");

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rep = &report["repetitions"][0];
    assert_eq!(
        rep["errors"],
        serde_json::json!([]),
        "no measurement failed:\n{progress}"
    );
    assert_eq!(report["meta"]["events"], 30_000, "{}", report["meta"]);
    // Built in this checkout: the commit the binary was built from.
    let commit = report["meta"]["commit"].as_str().unwrap_or_default();
    assert!(
        commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{}",
        report["meta"]
    );

    let rows = report["rows"].as_array().unwrap();
    let row = |figure: &str| {
        rows.iter()
            .find(|r| r["figure"].as_str().unwrap().starts_with(figure))
            .unwrap_or_else(|| panic!("no row {figure:?} in {rows:?}"))
    };
    let table = std::fs::read_to_string(&stdout).unwrap();
    for figure in FIGURES {
        let row = row(figure);
        assert!(row["value"].as_f64().is_some(), "{figure} measured: {row}");
        if figure == "cost growth" {
            // Its bar is defined as 10M ÷ 100k: a stream under 1M events is shown, not judged.
            assert!(row["pass"].is_null(), "{row}");
            assert!(
                row["note"].as_str().unwrap().contains("not judged"),
                "{row}"
            );
        } else {
            assert!(
                row["pass"].is_boolean(),
                "{figure} judged against its bar: {row}"
            );
        }
        assert!(
            table.contains(figure),
            "{figure} in the printed table:\n{table}"
        );
    }
    // The ratios against this run's own ceilings.
    for (figure, baseline) in [
        ("ingest: SubmitStream", "publish ceiling"),
        ("fold: durable", "sled"),
        ("rebuild: replay", "fold"),
    ] {
        let row = row(figure);
        assert_eq!(row["baseline_of"], baseline, "{row}");
        let (value, base, ratio) = (
            row["value"].as_f64().unwrap(),
            row["baseline"].as_f64().unwrap(),
            row["ratio"].as_f64().unwrap(),
        );
        assert!(
            (ratio - value / base).abs() < 1e-9 * ratio.max(1.0),
            "{figure}: {ratio} = {value} / {base}"
        );
    }
}
