//! The query figures: `Linkage.GetTimeline` and `Linkage.GetPersonView` latency, measured by the caller, over the
//! persons whose timelines are closest to 200 events. Each timeline call asks for a page of 1,000, so the whole
//! timeline comes back in one answer. Two ways:
//! - closed loop ([`measure`]): a number of concurrent callers each calling back to back; shows the saturation
//!   throughput (latency there is callers ÷ throughput, Little's law);
//! - open loop ([`measure_open`]): callers on their own connections send at a stated aggregate rate, each call at its
//!   scheduled time whether or not earlier calls have been answered, and latency is counted from the scheduled time
//!   (no coordinated omission: a slow answer does not delay the next send and is charged its full wait). The schedule
//!   is kept by a thread of its own ([`pace`]), not by tokio's millisecond timer wheel.
//!
//! The callers share the machine's two cores with the server. So that the harness takes as little of them as it
//! can, a timeline answer is read down to its entries (each kept as bytes and counted), not decoded into 200 events:
//! the whole answer still crosses the connection and is checked to be a `Timeline`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use caselink_proto::v1::person_lookup::Lookup;
use caselink_proto::v1::{GetPersonViewRequest, GetTimelineRequest, PersonLookup, PersonView};
use tokio::sync::Barrier;
use tonic::codegen::http::uri::PathAndQuery;
use tonic_prost::ProstCodec;

use crate::access::{Access, Authed};
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

/// A `Timeline` answer read down to its entries (field 3 of `caselink.v1.Timeline`), each left encoded.
#[derive(Clone, PartialEq, prost::Message)]
struct TimelineEntries {
    #[prost(string, tag = "1")]
    person_key: String,
    #[prost(bytes = "bytes", repeated, tag = "3")]
    entries: Vec<bytes::Bytes>,
}

type Client = tonic::client::Grpc<Authed>;

/// One call of `query` about the person `key`: its latency (from the call's start) and the entries or events behind it.
async fn call_once(
    query: Query,
    mut client: Client,
    key: String,
) -> anyhow::Result<(Duration, u64)> {
    let person = Some(PersonLookup {
        lookup: Some(Lookup::PersonKey(key.clone())),
    });
    let started = Instant::now();
    client.ready().await.context("connection")?;
    let entries = match query {
        Query::Timeline => {
            let request = GetTimelineRequest {
                person,
                page_size: 1000,
                ..GetTimelineRequest::default()
            };
            let timeline = client
                .unary(
                    tonic::Request::new(request),
                    PathAndQuery::from_static("/caselink.v1.Linkage/GetTimeline"),
                    ProstCodec::<GetTimelineRequest, TimelineEntries>::default(),
                )
                .await
                .context("GetTimeline")?
                .into_inner();
            if timeline.person_key != key {
                return Err(anyhow!("GetTimeline answered about another person"));
            }
            timeline.entries.len() as u64
        }
        Query::PersonView => {
            let view = client
                .unary(
                    tonic::Request::new(GetPersonViewRequest { person }),
                    PathAndQuery::from_static("/caselink.v1.Linkage/GetPersonView"),
                    ProstCodec::<GetPersonViewRequest, PersonView>::default(),
                )
                .await
                .context("GetPersonView")?
                .into_inner();
            view.events
        }
    };
    anyhow::Ok((started.elapsed(), entries))
}

/// One open-loop measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenLoopRun {
    pub callers: usize,
    /// Calls per second offered (scheduled), all callers together.
    pub offered_per_second: f64,
    /// Calls answered per second, from the first scheduled send to the last answer.
    pub achieved_per_second: f64,
    /// From each call's scheduled send time to its answer.
    pub latency: LatencySummary,
    /// How late calls left the client after their scheduled time (the load generator's own share), p99.
    pub send_lag_p99_ms: f64,
    pub calls: usize,
    /// Mean entries per answered timeline (events behind each person view).
    pub mean_entries: f64,
    /// When the figure is the median of several windows ([`median_window`]): every window's p99, in the order
    /// measured; empty for a single window.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub window_p99_ms: Vec<f64>,
}

/// The window with the median p99 of `windows` (the upper one of an even count), carrying every window's p99: one
/// second of this shared machine stalling (both cores and the disk slow at once, seen in the aggregator's log) is a
/// window's 1 % tail on its own, so like the repetitions of a run the windows are summarised by their median.
pub fn median_window(windows: Vec<OpenLoopRun>) -> Option<OpenLoopRun> {
    let p99s: Vec<f64> = windows.iter().map(|w| w.latency.p99_ms).collect();
    let mut sorted = windows;
    sorted.sort_by(|a, b| a.latency.p99_ms.total_cmp(&b.latency.p99_ms));
    let middle = sorted.len() / 2;
    let mut median = sorted.into_iter().nth(middle)?;
    if p99s.len() > 1 {
        median.window_p99_ms = p99s;
    }
    Some(median)
}

/// `callers` callers, each on its own connection, send `query` calls at `rate` calls/s in all for `duration`: call
/// `j` is scheduled at `start + j / rate` and made by caller `j mod callers`, without waiting for earlier calls.
pub async fn measure_open(
    query: Query,
    access: &Access,
    address: &str,
    persons: &[(String, u64)],
    callers: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<OpenLoopRun> {
    if persons.is_empty() {
        return Err(anyhow!("no persons to query"));
    }
    if !rate.is_finite() || rate <= 0.0 || callers == 0 {
        return Err(anyhow!(
            "an open-loop rate and callers above zero are needed"
        ));
    }
    let persons: Vec<String> = persons.iter().map(|(k, _)| k.clone()).collect();
    let mut clients = Vec::with_capacity(callers);
    for caller in 0..callers {
        let client = access.grpc_client(address).await?;
        for i in 0..WARM_UP_CALLS {
            call_once(
                query,
                client.clone(),
                persons[(caller * 7 + i) % persons.len()].clone(),
            )
            .await?;
        }
        clients.push(client);
    }
    let total = ((rate * duration.as_secs_f64()).round() as usize).max(1);
    let start = Instant::now() + Duration::from_millis(20);
    let schedule = move |j: usize| start + Duration::from_secs_f64(j as f64 / rate);
    let (ticks, mut due) = tokio::sync::mpsc::unbounded_channel();
    let pacer = std::thread::Builder::new()
        .name("bench-pacer".into())
        .spawn(move || pace(total, schedule, sleep_until, ticks))
        .context("starting the pacing thread")?;
    let persons = Arc::new(persons);
    let mut calls = Vec::with_capacity(total);
    while let Some(j) = due.recv().await {
        let scheduled = schedule(j);
        let lag = scheduled.elapsed();
        let caller = j % callers;
        let key = persons[(caller * 7 + j / callers) % persons.len()].clone();
        let call = call_once(query, clients[caller].clone(), key);
        calls.push(tokio::spawn(async move {
            let (_, entries) = call.await?;
            // Answered now: charged from the scheduled time, however late the send was.
            anyhow::Ok((scheduled.elapsed(), lag, entries, Instant::now()))
        }));
    }
    pacer
        .join()
        .map_err(|_| anyhow!("the pacing thread panicked"))?;
    let mut latencies = Vec::with_capacity(total);
    let mut lags = Vec::with_capacity(total);
    let mut entries = 0u64;
    let mut last = start;
    for call in calls {
        let (latency, lag, n, done) = call.await.context("a query call failed")??;
        latencies.push(latency);
        lags.push(lag);
        entries += n;
        last = last.max(done);
    }
    let calls = latencies.len();
    Ok(OpenLoopRun {
        callers,
        offered_per_second: rate,
        achieved_per_second: crate::stats::rate(calls as u64, last.duration_since(start)),
        latency: summarise(&latencies).ok_or_else(|| anyhow!("no calls measured"))?,
        send_lag_p99_ms: summarise(&lags).map_or(0.0, |l| l.p99_ms),
        calls,
        mean_entries: entries as f64 / calls.max(1) as f64,
        window_p99_ms: Vec::new(),
    })
}

/// Announces each call `j` of `0..total` once `wait_until(schedule(j))` returns, from a thread of its own (with
/// [`sleep_until`]): tokio's timers fire on a 1 ms wheel, so a call scheduled between two ticks would leave up to a
/// millisecond late and the harness's timer would be charged to the server; a thread sleeping on the OS's
/// high-resolution timer wakes within tens of microseconds. Stops early if nobody listens any more.
fn pace(
    total: usize,
    schedule: impl Fn(usize) -> Instant,
    mut wait_until: impl FnMut(Instant),
    ticks: tokio::sync::mpsc::UnboundedSender<usize>,
) {
    for j in 0..total {
        wait_until(schedule(j));
        if ticks.send(j).is_err() {
            return;
        }
    }
}

/// Sleeps this thread until `at` (at once if it is past).
fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
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
        let client = access.grpc_client(address).await?;
        let persons = Arc::clone(&persons);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let call = |i: usize| {
                call_once(
                    query,
                    client.clone(),
                    persons[(caller * 7 + i) % persons.len()].clone(),
                )
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_pacer_announces_every_call_in_order_each_after_waiting_for_its_time() {
        let start = Instant::now();
        let schedule = |j: usize| start + Duration::from_millis(3 * j as u64);
        let (ticks, mut due) = tokio::sync::mpsc::unbounded_channel();
        // Each wait, with how many calls were announced when it began.
        let mut waits = Vec::new();
        pace(5, schedule, |at| waits.push((at, due.len())), ticks);
        let expected: Vec<(Instant, usize)> = (0..5).map(|j| (schedule(j), j)).collect();
        assert_eq!(waits, expected);
        let announced: Vec<usize> = std::iter::from_fn(|| due.try_recv().ok()).collect();
        assert_eq!(announced, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn the_pacer_stops_when_nobody_listens() {
        let start = Instant::now();
        let (ticks, due) = tokio::sync::mpsc::unbounded_channel();
        drop(due);
        let mut waits = 0;
        pace(
            3,
            |j| start + Duration::from_secs(j as u64),
            |_| waits += 1,
            ticks,
        );
        assert_eq!(
            waits, 1,
            "the first announcement found nobody: no second wait"
        );
    }
}
