//! The query figures: `Linkage.GetTimeline` and `Linkage.GetPersonView` latency, measured by the caller, with a number
//! of concurrent callers each calling back to back (closed loop) over the persons whose timelines are closest to 200
//! events. Each timeline call asks for a page of 1,000, so the whole timeline comes back in one answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use caselink_proto::v1::person_lookup::Lookup;
use caselink_proto::v1::{GetPersonViewRequest, GetTimelineRequest, PersonLookup};
use tokio::sync::Barrier;

use crate::access::Access;
use crate::stats::{summarise, LatencySummary};

/// Calls each caller makes before measuring (connections, caches).
const WARM_UP_CALLS: usize = 3;

/// Which query is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Timeline,
    PersonView,
}

/// One query measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueryRun {
    pub callers: usize,
    pub latency: LatencySummary,
    pub calls_per_second: f64,
    /// Mean entries per answered timeline (events behind each person view).
    pub mean_entries: f64,
}

/// `callers` concurrent callers, each on its own connection, make `calls_per_caller` calls of `query` each.
pub async fn measure(
    query: Query,
    access: &Access,
    address: &str,
    persons: &[(String, u64)],
    callers: usize,
    calls_per_caller: usize,
) -> anyhow::Result<QueryRun> {
    if persons.is_empty() {
        return Err(anyhow!("no persons to query"));
    }
    let persons: Arc<Vec<String>> = Arc::new(persons.iter().map(|(k, _)| k.clone()).collect());
    let barrier = Arc::new(Barrier::new(callers + 1));
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let client = access.linkage_client(address).await?;
        let persons = Arc::clone(&persons);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let call = |i: usize| {
                let key = persons[(caller * 7 + i) % persons.len()].clone();
                let mut client = client.clone();
                async move {
                    let person = Some(PersonLookup {
                        lookup: Some(Lookup::PersonKey(key)),
                    });
                    let started = Instant::now();
                    let entries = match query {
                        Query::Timeline => {
                            let request = GetTimelineRequest {
                                person,
                                page_size: 1000,
                                ..GetTimelineRequest::default()
                            };
                            let timeline = client
                                .get_timeline(request)
                                .await
                                .context("GetTimeline")?
                                .into_inner();
                            timeline.entries.len() as u64
                        }
                        Query::PersonView => {
                            let view = client
                                .get_person_view(GetPersonViewRequest { person })
                                .await
                                .context("GetPersonView")?
                                .into_inner();
                            view.events
                        }
                    };
                    anyhow::Ok((started.elapsed(), entries))
                }
            };
            let mut warm_up = Ok(());
            for i in 0..WARM_UP_CALLS {
                if let Err(e) = call(i).await {
                    warm_up = Err(e);
                    break;
                }
            }
            // Everyone meets at the barrier, even a caller that failed, so nobody waits forever.
            barrier.wait().await;
            warm_up?;
            let mut latencies = Vec::with_capacity(calls_per_caller);
            let mut entries = 0u64;
            for i in WARM_UP_CALLS..WARM_UP_CALLS + calls_per_caller {
                let (latency, n) = call(i).await?;
                latencies.push(latency);
                entries += n;
            }
            anyhow::Ok((latencies, entries))
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut latencies: Vec<Duration> = Vec::with_capacity(callers * calls_per_caller);
    let mut entries = 0u64;
    for task in tasks {
        let (mine, n) = task.await.context("a query task failed")??;
        latencies.extend(mine);
        entries += n;
    }
    let elapsed = started.elapsed();
    let calls = latencies.len();
    Ok(QueryRun {
        callers,
        latency: summarise(&latencies).ok_or_else(|| anyhow!("no calls measured"))?,
        calls_per_second: crate::stats::rate(calls as u64, elapsed),
        mean_entries: entries as f64 / calls.max(1) as f64,
    })
}
