//! End to end: `caselink up` as a process (its own nats-server, six department services, linkage), events in through
//! department ports with the `caselink submit` command and raw gRPC, the timeline back through linkage.

#![allow(clippy::unwrap_used)]

use std::net::TcpStream;
use std::time::Duration;

use caselink_e2e::*;
use caselink_proto::v1::ingest_client::IngestClient;
use caselink_proto::v1::linkage_client::LinkageClient;
use caselink_proto::v1::*;

#[test]
fn caselink_up_runs_the_whole_path_and_stops_cleanly() {
    // Debug logging, so the scan for clear ID numbers below reads everything the services say.
    let mut up = UpProcess::start_logging(&[], Duration::from_secs(90), "debug");
    let banner = up.output.join("\n");
    assert!(
        banner.contains("analyst"),
        "the banner prints development credentials: {banner}"
    );
    assert!(
        banner.contains(&format!("127.0.0.1:{}", 50050 + up.offset)),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("127.0.0.1:{}", 50056 + up.offset)),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("http://127.0.0.1:{}/metrics", 51050 + up.offset)),
        "{banner}"
    );

    // Records in through the CLI, as a clerk's script would.
    let id = id_number("19850312", 123);
    let file = up.data.path().join("market.jsonl");
    let lines: Vec<String> = [
        complaint("MK-1", &id, T2025),
        complaint("MK-2", &id, T2025 + DAY),
    ]
    .iter()
    .map(|e| serde_json::to_string(e).unwrap())
    .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let data_dir = up.data.path().to_str().unwrap().to_string();
    let (ok, out) = up.caselink(&[
        "submit",
        "--department",
        "market",
        "--addr",
        &up.url(50051),
        "--data-dir",
        &data_dir,
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("accepted 2"), "{out}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // And through a department port with raw gRPC.
        let mut police = IngestClient::with_interceptor(
            channel(&up.url(50052)).await,
            Bearer::new(&up.dev_token("writer:police"), None),
        );
        let receipts = police
            .submit(SubmitRequest {
                events: vec![police_case("GA-1", &id, T2025 + 2 * DAY)],
            })
            .await
            .unwrap()
            .into_inner()
            .receipts;
        assert_eq!(statuses(&receipts), [ReceiptStatus::Accepted]);
        // Without a token: refused.
        let mut anonymous = LinkageClient::new(channel(&up.url(50050)).await);
        let refused = anonymous.get_timeline(GetTimelineRequest {
            person: by_id(&id),
            ..GetTimelineRequest::default()
        });
        assert_eq!(
            refused.await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut linkage = LinkageClient::with_interceptor(
            channel(&up.url(50050)).await,
            Bearer::new(&up.dev_token("analyst"), Some(TEST_PURPOSE)),
        );
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

    let (ok, out) = up.caselink(&[
        "timeline",
        "--id-number",
        &id,
        "--purpose",
        "e2e check",
        "--addr",
        &up.url(50050),
        "--data-dir",
        &data_dir,
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("430602********{}", &id[14..])),
        "{out}"
    );
    assert!(
        !out.contains(&id),
        "the clear ID number is never printed: {out}"
    );
    assert!(out.contains("3 events"), "{out}");

    // Nobody has determined this person: not on the abnormal list (looked up by the key the timeline printed).
    let person_key = out
        .lines()
        .find_map(|l| l.strip_prefix("person   "))
        .unwrap()
        .trim()
        .to_string();
    let (ok, out) = up.caselink(&[
        "determination",
        "check",
        "--person-key",
        &person_key,
        "--addr",
        &up.url(50050),
        "--data-dir",
        &data_dir,
    ]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "not listed");

    // A token issued with `caselink token issue` under the deployment's key works; a police token cannot read
    // timelines.
    let config = up.data.path().join("caselink.toml");
    let (ok, analyst) = up.caselink(&[
        "token",
        "issue",
        "--role",
        "analyst",
        "--sub",
        "analyst-0042",
        "--ttl",
        "1h",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(ok, "{analyst}");
    let (ok, out) = up.caselink(&[
        "timeline",
        "--id-number",
        &id,
        "--purpose",
        "issued token check",
        "--addr",
        &up.url(50050),
        "--token",
        analyst.trim(),
    ]);
    assert!(ok && out.contains("3 events"), "{out}");
    let (ok, police) = up.caselink(&[
        "token",
        "issue",
        "--role",
        "police",
        "--unit",
        "430602",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(ok, "{police}");
    let (ok, out) = up.caselink(&[
        "timeline",
        "--id-number",
        &id,
        "--purpose",
        "curiosity",
        "--addr",
        &up.url(50050),
        "--token",
        police.trim(),
    ]);
    assert!(!ok && out.contains("PERMISSION_DENIED"), "{out}");
    let (ok, out) = up.caselink(&[
        "token",
        "issue",
        "--role",
        "police",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(
        !ok && out.contains("--unit"),
        "a police token needs its unit: {out}"
    );

    // Operators scrape every service: the market service counted the clerk's receipts, linkage its fold and calls.
    let scrape = |port: u16| {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", port + up.offset)).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).unwrap();
        body
    };
    let market = scrape(51051);
    assert!(
        market.contains(r#"caselink_ingest_receipts_total{service="market",status="accepted"}"#),
        "{market}"
    );
    let linkage = scrape(51050);
    assert!(
        linkage.contains(r#"caselink_fold_events_total{service="linkage"}"#)
            && linkage.contains(r#"method="/caselink.v1.Linkage/GetTimeline",code="OK""#),
        "{linkage}"
    );
    assert!(!market.contains(&id) && !linkage.contains(&id));

    // The reads above are in the audit trail, and its chains are intact.
    let nats = format!("nats://127.0.0.1:{}", up.nats_port);
    let (ok, out) = up.caselink(&["audit", "verify", "--nats-url", &nats]);
    assert!(ok, "{out}");
    assert!(out.contains("intact"), "{out}");

    // Ctrl-C (SIGTERM here) stops everything, nats-server included.
    assert!(up.stop(), "caselink up exits successfully");
    assert!(
        TcpStream::connect(("127.0.0.1", up.nats_port)).is_err(),
        "nats-server stopped"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", 50050 + up.offset)).is_err(),
        "linkage stopped"
    );
}
