//! End to end: `caselink up` as a process (its own nats-server, six department services, linkage), events in through
//! department ports with the `caselink submit` command and raw gRPC, the timeline back through linkage.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use caselink_e2e::*;
use caselink_proto::v1::ingest_client::IngestClient;
use caselink_proto::v1::linkage_client::LinkageClient;
use caselink_proto::v1::*;

fn free_offset() -> u16 {
    // Seven consecutive free ports above 50050.
    'search: for offset in (1000..9000).step_by(17) {
        for port in 50050 + offset..50057 + offset {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue 'search;
            }
        }
        return offset;
    }
    panic!("no free port range");
}

#[test]
fn caselink_up_runs_the_whole_path_and_stops_cleanly() {
    let bin = bin_dir();
    let data = tempfile::tempdir().unwrap();
    let nats_port = free_port();
    let offset = free_offset();
    let mut up = Command::new(bin.join("caselink"))
        .args(["up", "--data-dir"])
        .arg(data.path())
        .args([
            "--nats-port",
            &nats_port.to_string(),
            "--port-offset",
            &offset.to_string(),
        ])
        .env("CASELINK_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = up.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut banner = Vec::new();
    while !banner
        .iter()
        .any(|l: &String| l.contains("Ctrl-C stops everything"))
    {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("caselink up prints its banner");
        banner.push(line);
    }
    let banner = banner.join("\n");
    let linkage_port = 50050 + offset;
    let market_port = 50051 + offset;
    assert!(
        banner.contains(&format!("127.0.0.1:{linkage_port}")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("127.0.0.1:{}", 50056 + offset)),
        "{banner}"
    );

    // Records in through the CLI, as a clerk's script would.
    let id = id_number("19850312", 123);
    let file = data.path().join("market.jsonl");
    let lines: Vec<String> = [
        complaint("MK-1", &id, T2025),
        complaint("MK-2", &id, T2025 + DAY),
    ]
    .iter()
    .map(|e| serde_json::to_string(e).unwrap())
    .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let submit = Command::new(bin.join("caselink"))
        .args([
            "submit",
            "--department",
            "market",
            "--addr",
            &format!("http://127.0.0.1:{market_port}"),
        ])
        .arg(&file)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&submit.stdout);
    assert!(
        submit.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    assert!(out.contains("accepted   2"), "{out}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // And through a department port with raw gRPC.
        let mut police = IngestClient::connect(format!("http://127.0.0.1:{}", 50052 + offset))
            .await
            .unwrap();
        let receipts = police
            .submit(SubmitRequest {
                events: vec![police_case("GA-1", &id, T2025 + 2 * DAY)],
            })
            .await
            .unwrap()
            .into_inner()
            .receipts;
        assert_eq!(statuses(&receipts), [ReceiptStatus::Accepted]);
        let mut linkage = LinkageClient::connect(format!("http://127.0.0.1:{linkage_port}"))
            .await
            .unwrap();
        let mut kinds = Vec::new();
        for _ in 0..200 {
            let request = GetTimelineRequest {
                person: by_id(&id),
                ..GetTimelineRequest::default()
            };
            if let Ok(t) = linkage.get_timeline(request).await {
                kinds = t
                    .into_inner()
                    .entries
                    .iter()
                    .map(|e| e.kind.clone())
                    .collect();
                if kinds.len() == 3 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            kinds,
            [
                "complaint.received",
                "complaint.received",
                "case.registered"
            ]
        );
    });

    let timeline = Command::new(bin.join("caselink"))
        .args([
            "timeline",
            "--id-number",
            &id,
            "--addr",
            &format!("http://127.0.0.1:{linkage_port}"),
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&timeline.stdout);
    assert!(timeline.status.success(), "{out}");
    assert!(
        out.contains(&format!("430602********{}", &id[14..])),
        "{out}"
    );
    assert!(
        !out.contains(&id),
        "the clear ID number is never printed: {out}"
    );
    assert!(out.contains("3 events"), "{out}");

    // Ctrl-C (SIGTERM here) stops everything, nats-server included.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "caselink up did not stop within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    assert!(
        TcpStream::connect(("127.0.0.1", nats_port)).is_err(),
        "nats-server stopped"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", linkage_port)).is_err(),
        "linkage stopped"
    );
}
