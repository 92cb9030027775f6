//! The audit appender against a real nats-server: group-committed records form one unbroken chain, also when two
//! appenders share a chain.

use caselink_bus::audit::{read_all, AuditLog};
use caselink_domain::verify_chain;
use caselink_proto::v1::AuditRecord;
use caselink_testkit::NatsServer;

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        caller: format!("analyst-{i}"),
        role: "analyst".into(),
        rpc: "/caselink.v1.Linkage/GetTimeline".into(),
        person_keys: vec![format!("{i:064x}")],
        purpose: "test".into(),
        outcome: "OK".into(),
        ..Default::default()
    }
}

async fn jetstream(server: &NatsServer) -> async_nats::jetstream::Context {
    let client = async_nats::connect(server.url()).await.expect("connect");
    async_nats::jetstream::new(client)
}

async fn chain_of(js: &async_nats::jetstream::Context, chain: &str) -> Vec<AuditRecord> {
    read_all(js)
        .await
        .expect("read the audit stream")
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.chain == chain)
        .collect()
}

#[tokio::test]
async fn concurrent_appends_are_group_committed_into_one_unbroken_chain() {
    let server = NatsServer::start().expect("nats-server");
    let js = jetstream(&server).await;
    let log = AuditLog::spawn(js.clone(), "test-chain", 1);
    let mut tasks = Vec::new();
    for i in 0..300 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move { log.append(record(i)).await }));
    }
    let mut indexes = Vec::new();
    for t in tasks {
        let stored = t.await.expect("task").expect("appended");
        assert_eq!(stored.chain, "test-chain");
        indexes.push(stored.chain_index);
    }
    indexes.sort_unstable();
    assert_eq!(
        indexes,
        (1..=300).collect::<Vec<u64>>(),
        "each append got its own index"
    );
    let records = chain_of(&js, "test-chain").await;
    assert_eq!(records.len(), 300);
    assert_eq!(verify_chain("test-chain", &records), Ok(300));
}

#[tokio::test]
async fn two_appenders_on_one_chain_never_fork_it() {
    let server = NatsServer::start().expect("nats-server");
    let js = jetstream(&server).await;
    let a = AuditLog::spawn(js.clone(), "shared", 1);
    let b = AuditLog::spawn(js.clone(), "shared", 1);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let log = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { log.append(record(i)).await }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.expect("task").is_ok() {
            ok += 1;
        }
    }
    let records = chain_of(&js, "shared").await;
    // Losers of a race reload the tip and retry; whatever was acknowledged is in the chain, and the chain is whole.
    assert_eq!(records.len(), ok);
    assert!(ok >= 50, "at least one writer's records all land ({ok})");
    assert_eq!(verify_chain("shared", &records), Ok(ok as u64));
}

#[tokio::test]
async fn single_and_grouped_appends_make_one_unbroken_chain() {
    let server = NatsServer::start().expect("nats-server");
    let js = jetstream(&server).await;
    let log = AuditLog::spawn(js.clone(), "mixed", 1);
    // One at a time: every group is one record, stored as a plain publish naming the chain's last sequence.
    for i in 0..20 {
        let stored = log.append(record(i)).await.expect("appended");
        assert_eq!(stored.chain_index, i as u64 + 1);
    }
    // Then bursts (atomic batches), then single records again, and another writer's chain interleaved in the stream.
    let other = AuditLog::spawn(js.clone(), "other", 1);
    let mut tasks = Vec::new();
    for i in 20..120 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move { log.append(record(i)).await }));
        let other = other.clone();
        tasks.push(tokio::spawn(async move { other.append(record(i)).await }));
    }
    for t in tasks {
        t.await.expect("task").expect("appended");
    }
    for i in 120..130 {
        log.append(record(i)).await.expect("appended");
        other.append(record(i)).await.expect("appended");
    }
    let records = chain_of(&js, "mixed").await;
    assert_eq!(verify_chain("mixed", &records), Ok(130));
    let records = chain_of(&js, "other").await;
    assert_eq!(verify_chain("other", &records), Ok(110));
}
