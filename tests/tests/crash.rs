//! Exactly once across crashes: the linkage process is killed with SIGKILL in the middle of folding, restarted, and
//! every event ends up in its timeline exactly once.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use caselink_domain::SystemClock;
use caselink_e2e::*;
use caselink_proto::v1::linkage_client::LinkageClient;
use caselink_proto::v1::*;

const PEOPLE: usize = 30;
const EVENTS_EACH: usize = 100;

fn spawn_linkage(c: &Cluster, dir: &std::path::Path, port: u16) -> Child {
    Command::new(bin_dir().join("caselink-linkage"))
        .arg("--nats-url")
        .arg(c.nats.url())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir)
        .env(
            "CASELINK_IDENTITY__PERSON_KEY_SECRET",
            &c.identity.person_key_secret,
        )
        .env("CASELINK_AUTH__PUBLIC_KEY", &c.auth.public_key)
        // Small batches: many flush-then-ack cycles for the kill to land in.
        .env("CASELINK_FOLD_BATCH", "7")
        // No write-back of the states within a run under the backlog: every restart replays all that was folded
        // before into the states (the timeline and index must not get it twice).
        .env("CASELINK_CHECKPOINT_MS", "100000")
        .env("CASELINK_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill9(child: &mut Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linkage_killed_mid_fold_resumes_and_folds_every_event_exactly_once() {
    let mut c = Cluster::start_ingest_only(Arc::new(SystemClock)).await;
    let people: Vec<String> = (0..PEOPLE)
        .map(|i| id_number("19790101", i as u16))
        .collect();
    let mut events = Vec::new();
    for (p, id) in people.iter().enumerate() {
        for i in 0..EVENTS_EACH {
            let mut event = complaint(&format!("MK-{p}-{i}"), id, T2025 + (i as i64) * DAY);
            // Each person with their own contacts and words: this test is about crashes, not about a ring of 30
            // sharing one phone (which screening would rightly link, at a cost this test does not need to pay).
            let subject = event.subject.as_mut().unwrap();
            subject.phone = format!("139{p:08}");
            subject.address = format!("湖南省岳阳市岳阳楼区洞庭南路{p}号");
            event.summary = format!("第{i}次购买，第{p}号消费者");
            events.push(event);
        }
    }
    for chunk in events.chunks(500) {
        let receipts = c.submit_market(chunk.to_vec()).await.unwrap();
        assert!(statuses(&receipts)
            .iter()
            .all(|s| *s == ReceiptStatus::Accepted));
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut kills = 0;
    for delay_ms in [150u64, 250, 400] {
        let mut child = spawn_linkage(&c, dir.path(), port);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        kill9(&mut child);
        kills += 1;
    }
    assert_eq!(kills, 3);
    // A final run without interruption: everything must be there exactly once.
    let mut child = spawn_linkage(&c, dir.path(), port);
    let addr = format!("http://127.0.0.1:{port}");
    let analyst = c.token(|claims| claims.role = caselink_auth::Role::Analyst);
    let mut client = LinkageClient::with_interceptor(
        channel(&addr).await,
        Bearer::new(&analyst, Some(TEST_PURPOSE)),
    );
    for id in &people {
        let mut entries = Vec::new();
        for _ in 0..1200 {
            let request = GetTimelineRequest {
                person: by_id(id),
                page_size: 1000,
                ..GetTimelineRequest::default()
            };
            if let Ok(t) = client.get_timeline(request).await {
                entries = t.into_inner().entries;
                if entries.len() >= EVENTS_EACH {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let unique: HashSet<_> = entries
            .iter()
            .map(|e| e.event.as_ref().unwrap().event_id.clone())
            .collect();
        assert_eq!(entries.len(), EVENTS_EACH, "{id}: entries");
        assert_eq!(unique.len(), EVENTS_EACH, "{id}: distinct events");
    }
    kill9(&mut child);
}
