//! Probe: latency of one audit append (`AuditLog`: a record alone goes as a plain publish naming the chain's last
//! sequence) against a plain JetStream publish and atomic batches of 1-64, on a running nats-server
//! (`sync_interval: always`).
//! `cargo run --release -p caselink-bench --example audit_probe -- nats://127.0.0.1:4222`, or with `open RATE SECS`
//! after the address: appends offered open loop (tokio's timer: up to 1 ms late, charged to the append).

use std::time::{Duration, Instant};

use caselink_proto::v1::AuditRecord;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let client = caselink_bus::connect(&url, "audit-probe", Duration::from_secs(5))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let js = async_nats::jetstream::new(client);
    caselink_bus::audit::ensure_audit_stream(&js, 1)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let audit = caselink_bus::audit::AuditLog::spawn(js.clone(), "probe", 1);
    let record = AuditRecord {
        caller: "probe".into(),
        rpc: "/caselink.v1.Linkage/GetTimeline".into(),
        ..AuditRecord::default()
    };
    let pct = |mut v: Vec<Duration>| {
        v.sort();
        format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            v[v.len() / 2].as_secs_f64() * 1e3,
            v[v.len() * 99 / 100].as_secs_f64() * 1e3
        )
    };
    // `audit_probe URL open RATE SECS`: appends offered open loop at RATE a second for SECS seconds, each timed from
    // its scheduled instant (as the bench's open-loop queries are); per second p50 / p99 / max.
    if std::env::args().nth(2).as_deref() == Some("open") {
        let rate: f64 = std::env::args().nth(3).map_or(Ok(500.0), |a| a.parse())?;
        let secs: u64 = std::env::args().nth(4).map_or(Ok(10), |a| a.parse())?;
        let start = Instant::now();
        let mut tasks = Vec::new();
        let total = (rate * secs as f64) as u64;
        for j in 0..total {
            let due = start + Duration::from_secs_f64(j as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            let (audit, record) = (audit.clone(), record.clone());
            tasks.push(tokio::spawn(async move {
                audit.append(record).await.map(|_| due.elapsed())
            }));
        }
        let mut by_second: Vec<Vec<Duration>> = vec![Vec::new(); secs as usize + 1];
        for (j, task) in tasks.into_iter().enumerate() {
            let latency = task.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
            by_second[(j as f64 / rate) as usize].push(latency);
        }
        for (second, latencies) in by_second.into_iter().enumerate() {
            if latencies.is_empty() {
                continue;
            }
            let max = latencies.iter().max().copied().unwrap_or_default();
            println!(
                "second {second}: {} appends, {}, max {:.2} ms",
                latencies.len(),
                pct(latencies),
                max.as_secs_f64() * 1e3
            );
        }
        return Ok(());
    }
    for round in 0..2 {
        let mut a = Vec::new();
        for _ in 0..300 {
            let t = Instant::now();
            audit
                .append(record.clone())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            a.push(t.elapsed());
        }
        println!("round {round}: AuditLog.append, one at a time: {}", pct(a));
        let mut p = Vec::new();
        for _ in 0..300 {
            let t = Instant::now();
            js.publish("caselink.audit.plain", "x".into())
                .await?
                .await?;
            p.push(t.elapsed());
        }
        println!(
            "round {round}: plain js.publish + ack:            {}",
            pct(p)
        );
        for n in [1usize, 2, 16, 64] {
            let mut b = Vec::new();
            for _ in 0..100 {
                let messages = (0..n)
                    .map(|_| caselink_bus::batch::BatchMessage {
                        subject: "caselink.audit.batch".into(),
                        headers: async_nats::HeaderMap::new(),
                        payload: "x".into(),
                    })
                    .collect();
                let t = Instant::now();
                caselink_bus::batch::publish_atomic(&js.client(), messages, Duration::from_secs(5))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                b.push(t.elapsed());
            }
            println!(
                "round {round}: atomic batch of {n:>2}:                {}",
                pct(b)
            );
        }
    }
    Ok(())
}
