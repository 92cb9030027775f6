//! The ingest figure: events per second accepted through `Ingest.SubmitStream` of the six real department services
//! (the ingest library's `serve_on` on `127.0.0.1:0`, in this process), all six streaming their department's records at
//! once, answered only after JetStream acknowledged them. The six keep pace with each other ([`EPOCHS`]), so every
//! stretch of the stream holds the departments in the population's proportions, as live traffic from six agencies does.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use caselink_domain::{department_code, SystemClock};
use caselink_ingest::{DepartmentRules, IngestOptions};
use caselink_proto::v1::ingest_client::IngestClient;
use caselink_proto::v1::{CaseEvent, Department, ReceiptStatus, SubmitRequest};
use caselink_runtime::{Cancel, IdentityConfig};
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::access::{Access, Authed};
use crate::data::{epoch_end, stream_submit, Dataset, DEPARTMENTS, EPOCHS};
use crate::progress::Progress;
use crate::stats::Throughput;

/// The six department ingest services, running in this process until dropped.
pub struct IngestFleet {
    addresses: Vec<(Department, String)>,
    access: Access,
    cancel: Cancel,
}

impl IngestFleet {
    /// Starts one ingest service per department against `nats_url`; returns once each accepts submissions.
    pub async fn start(
        nats_url: &str,
        identity: &IdentityConfig,
        access: &Access,
    ) -> anyhow::Result<IngestFleet> {
        let cancel = Cancel::new();
        let mut addresses = Vec::new();
        for department in DEPARTMENTS {
            let options = IngestOptions {
                nats_url: nats_url.to_string(),
                identity: identity.clone(),
                auth: access.verifier_keys(),
                ..IngestOptions::default()
            };
            let address = match department {
                Department::Police => {
                    spawn(caselink_police::Police, options, access, &cancel).await?
                }
                Department::Justice => {
                    spawn(caselink_justice::Justice, options, access, &cancel).await?
                }
                Department::Court => spawn(caselink_court::Court, options, access, &cancel).await?,
                Department::Petition => {
                    spawn(caselink_petition::Petition, options, access, &cancel).await?
                }
                Department::Hotline => {
                    spawn(caselink_hotline::Hotline, options, access, &cancel).await?
                }
                Department::Market | Department::Unspecified => {
                    spawn(caselink_market::Market, options, access, &cancel).await?
                }
            };
            addresses.push((department, address));
        }
        Ok(IngestFleet {
            addresses,
            access: access.clone(),
            cancel,
        })
    }

    /// `http://127.0.0.1:<port>` of a department's service.
    pub fn address(&self, department: Department) -> anyhow::Result<&str> {
        self.addresses
            .iter()
            .find(|(d, _)| *d == department)
            .map(|(_, a)| a.as_str())
            .ok_or_else(|| anyhow!("no ingest service for {}", department_code(department)))
    }

    /// A client of a department's service, as a writer of that department.
    pub async fn client(&self, department: Department) -> anyhow::Result<IngestClient<Authed>> {
        self.access
            .ingest_client(self.address(department)?, department_code(department))
            .await
    }
}

impl Drop for IngestFleet {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn spawn<R: DepartmentRules>(
    rules: R,
    options: IngestOptions,
    access: &Access,
    cancel: &Cancel,
) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding 127.0.0.1:0 for an ingest service")?;
    let address = format!("http://{}", listener.local_addr()?);
    let department = department_code(rules.department());
    let task_cancel = cancel.clone();
    tokio::spawn(async move {
        if let Err(e) =
            caselink_ingest::serve_on(rules, options, listener, Arc::new(SystemClock), task_cancel)
                .await
        {
            eprintln!("the {department} ingest service stopped: {e}");
        }
    });
    // Ready when the events stream exists: an empty Submit answers OK.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut client) = access.ingest_client(&address, department).await {
            if client
                .submit(SubmitRequest { events: vec![] })
                .await
                .is_ok()
            {
                return Ok(address);
            }
        }
        if Instant::now() > deadline {
            bail!("the {department} ingest service at {address} did not become ready in 30 s");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `events` (`count` of them) in [`EPOCHS`] slices, waiting at `barrier` after each slice for the other departments to
/// send theirs. Every caller waits exactly [`EPOCHS`] times, whatever happens to its own stream (a failed read is passed
/// on and ends the sending; so does a closed request), so one department's failure cannot leave the others waiting.
fn in_step(
    mut events: mpsc::Receiver<io::Result<CaseEvent>>,
    count: u64,
    barrier: Arc<tokio::sync::Barrier>,
) -> mpsc::Receiver<io::Result<CaseEvent>> {
    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(async move {
        let mut sent = 0u64;
        let mut sending = true;
        for epoch in 1..=EPOCHS {
            let end = epoch_end(count, epoch);
            while sending && sent < end {
                let Some(item) = events.recv().await else {
                    sending = false;
                    break;
                };
                let failed = item.is_err();
                sending = tx.send(item).await.is_ok() && !failed;
                sent += 1;
            }
            barrier.wait().await;
        }
    });
    rx
}

/// Streams every department's submit-form file through its service's `SubmitStream`, all six at once and in step
/// ([`EPOCHS`]); the time is from the first event sent to the last receipt. Fails unless every event is accepted.
pub async fn submit_all(
    fleet: &IngestFleet,
    data: &Dataset,
    progress: &Progress,
) -> anyhow::Result<Throughput> {
    let answered = Arc::new(AtomicU64::new(0));
    let ticker = progress.ticker("ingested", data.events, Arc::clone(&answered));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let sending = data.submit_files.iter().filter(|(_, _, count)| *count > 0);
    let barrier = Arc::new(tokio::sync::Barrier::new(sending.clone().count()));
    for (department, file, count) in sending {
        let mut client = fleet
            .client(*department)
            .await?
            .max_decoding_message_size(16 * 1024 * 1024);
        let events = in_step(stream_submit(file), *count, Arc::clone(&barrier));
        let answered = Arc::clone(&answered);
        let department = *department;
        tasks.push(tokio::spawn(async move {
            let request = tokio_stream::wrappers::ReceiverStream::new(events)
                .take_while(|item| std::future::ready(item.is_ok()))
                .filter_map(|item| std::future::ready(item.ok()));
            let mut receipts = client
                .submit_stream(request)
                .await
                .with_context(|| format!("SubmitStream to {}", department_code(department)))?
                .into_inner();
            let mut tally = [0u64; 4];
            while let Some(receipt) = receipts
                .message()
                .await
                .with_context(|| format!("receipts from {}", department_code(department)))?
            {
                let i = usize::try_from(receipt.status).unwrap_or(0).min(3);
                tally[i] += 1;
                answered.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(tally)
        }));
    }
    let mut accepted = 0u64;
    let mut other = Vec::new();
    for task in tasks {
        let tally = task.await.context("a submitting task failed")??;
        accepted += tally[ReceiptStatus::Accepted as usize];
        if tally[ReceiptStatus::Duplicate as usize] + tally[ReceiptStatus::Rejected as usize] > 0 {
            other.push(format!(
                "{} duplicate, {} rejected",
                tally[ReceiptStatus::Duplicate as usize],
                tally[ReceiptStatus::Rejected as usize]
            ));
        }
    }
    let elapsed = started.elapsed();
    ticker.stop().await;
    if accepted != data.events {
        bail!(
            "ingest accepted {accepted} of {} events ({})",
            data.events,
            other.join("; ")
        );
    }
    Ok(Throughput::new(accepted, elapsed))
}
