//! The freshness figure: the time from `Ingest.Submit` returning to the event being visible in
//! `Linkage.GetTimeline`, under a steady offered load.
//!
//! Load: every [`TICK`] the departments' systems submit the tick's share of the offered rate, one `Submit` per
//! department with that department's events (open loop: a slow answer does not slow the offer). The events are
//! copies of generated records of persons with short timelines, under new source ids (so new event ids), dated within
//! the last minute: live traffic, records of what just happened. (Kept at their generated dates, spread over the
//! population's years, every event fell on a different region and day and rewrote that day's situation counters: a
//! department loading its history at 5,000 events/s, which is not what freshness is about.)
//! Tracing: the first event of one `Submit` every [`TRACE_EVERY`] ticks is followed: once its `Submit` returned, its
//! person's timeline is read every [`POLL_EVERY`] (by clear ID number, as a clerk would) until the event is in it.
//! Only a sample is traced so that the polling stays a small part of the load it measures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use caselink_proto::v1::ingest_client::IngestClient;
use caselink_proto::v1::linkage_client::LinkageClient;
use caselink_proto::v1::person_lookup::Lookup;
use caselink_proto::v1::{
    CaseEvent, Department, GetTimelineRequest, PersonLookup, ReceiptStatus, SubmitRequest,
};
use caselink_proto::Timestamp;
use tokio::task::JoinSet;

use crate::access::{Access, Authed};
use crate::data::DEPARTMENTS;
use crate::ingest::IngestFleet;
use crate::stats::{summarise, LatencySummary};

/// How often the offered load is submitted.
const TICK: Duration = Duration::from_millis(10);
/// One traced event every this many ticks (20 a second, 200 per 10 s): enough for a p99, few enough that polling
/// stays a small share of the load.
const TRACE_EVERY: u64 = 5;
/// How often a traced event's timeline is read.
const POLL_EVERY: Duration = Duration::from_millis(5);
/// A traced event not visible after this long counts as missed.
const GIVE_UP: Duration = Duration::from_secs(10);

/// One freshness measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FreshnessRun {
    pub latency: LatencySummary,
    /// Events offered per second, as achieved.
    pub offered_per_second: f64,
    pub accepted: u64,
    /// Traced events never seen within [`GIVE_UP`] (in the percentiles at [`GIVE_UP`]).
    pub missed: u64,
    /// The fold's largest backlog seen (events in the stream not yet folded and acked), sampled every 100 ms.
    pub max_fold_backlog: u64,
    /// The backlog when the offered load stopped.
    pub end_fold_backlog: u64,
}

/// Offers `rate` events/s for `duration`; `round` makes the source ids of this call unique within the run; `durable` is
/// the fold's consumer, whose backlog is sampled.
#[allow(clippy::too_many_arguments)]
pub async fn freshness(
    access: &Access,
    fleet: &IngestFleet,
    linkage_address: &str,
    js: &async_nats::jetstream::Context,
    durable: &str,
    pool: &[CaseEvent],
    rate: u64,
    duration: Duration,
    round: usize,
) -> anyhow::Result<FreshnessRun> {
    if pool.is_empty() {
        bail!("no events of persons with short timelines to resubmit");
    }
    let mut ingest: Vec<(Department, IngestClient<Authed>)> = Vec::new();
    for department in DEPARTMENTS {
        ingest.push((department, fleet.client(department).await?));
    }
    let linkage = access.linkage_client(linkage_address).await?;
    let per_tick = ((rate as f64) * TICK.as_secs_f64()).round().max(1.0) as usize;
    let ticks = (duration.as_secs_f64() / TICK.as_secs_f64()).round() as u64;
    let accepted = Arc::new(AtomicU64::new(0));
    let mut submits = JoinSet::new();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut next = 0usize;
    let backlog = BacklogWatch::start(js, durable).await?;
    let started = Instant::now();
    for tick in 0..ticks {
        interval.tick().await;
        let mut by_department: Vec<Vec<CaseEvent>> = vec![Vec::new(); DEPARTMENTS.len()];
        for _ in 0..per_tick {
            let mut event = pool[next % pool.len()].clone();
            event.source_id = format!("bench-{round}-{next}");
            event.event_id.clear();
            event.occurred_at = Some(just_before(std::time::SystemTime::now(), next));
            next += 1;
            let d = DEPARTMENTS
                .iter()
                .position(|&d| d as i32 == event.department)
                .unwrap_or(0);
            by_department[d].push(event);
        }
        let mut traced = tick % TRACE_EVERY != 0;
        for (d, events) in by_department.into_iter().enumerate() {
            if events.is_empty() {
                continue;
            }
            let trace = !traced;
            traced = true;
            let mut client = ingest[d].1.clone();
            let linkage = linkage.clone();
            let accepted = Arc::clone(&accepted);
            submits.spawn(async move {
                let id_number = events[0]
                    .subject
                    .as_ref()
                    .map(|s| s.id_number.clone())
                    .unwrap_or_default();
                let occurred_at = events[0].occurred_at;
                let receipts = client
                    .submit(SubmitRequest { events })
                    .await
                    .context("Submit")?
                    .into_inner()
                    .receipts;
                let returned = Instant::now();
                let ok = receipts
                    .iter()
                    .filter(|r| r.status == ReceiptStatus::Accepted as i32)
                    .count();
                accepted.fetch_add(ok as u64, Ordering::Relaxed);
                if !trace || id_number.is_empty() {
                    return anyhow::Ok(None);
                }
                let first = receipts
                    .first()
                    .ok_or_else(|| anyhow!("Submit answered no receipt"))?;
                if first.status != ReceiptStatus::Accepted as i32 {
                    bail!("a fresh event was not accepted: {:?}", first.violations);
                }
                Ok(Some(
                    visible_after(linkage, &id_number, occurred_at, &first.event_id, returned)
                        .await?,
                ))
            });
        }
    }
    let offered = next as u64;
    let offered_for = started.elapsed();
    let (max_fold_backlog, end_fold_backlog) = backlog.stop().await;
    let mut latencies = Vec::new();
    let mut missed = 0u64;
    while let Some(result) = submits.join_next().await {
        match result.context("a submitting task failed")?? {
            Some(Some(latency)) => latencies.push(latency),
            Some(None) => {
                // Counted at the give-up time, so a miss can only make the percentiles worse.
                missed += 1;
                latencies.push(GIVE_UP);
            }
            None => {}
        }
    }
    Ok(FreshnessRun {
        latency: summarise(&latencies).ok_or_else(|| anyhow!("no traced event was seen"))?,
        offered_per_second: crate::stats::rate(offered, offered_for),
        accepted: accepted.load(Ordering::Relaxed),
        missed,
        max_fold_backlog,
        end_fold_backlog,
    })
}

/// Samples the fold's backlog (the durable consumer's pending plus unacknowledged messages) every 100 ms.
struct BacklogWatch {
    task: tokio::task::JoinHandle<()>,
    max: Arc<AtomicU64>,
    last: Arc<AtomicU64>,
}

impl BacklogWatch {
    async fn start(
        js: &async_nats::jetstream::Context,
        durable: &str,
    ) -> anyhow::Result<BacklogWatch> {
        let stream = js
            .get_stream(caselink_bus::streams::EVENTS_STREAM)
            .await
            .context("reading the events stream")?;
        let name = durable.to_string();
        let max = Arc::new(AtomicU64::new(0));
        let last = Arc::new(AtomicU64::new(0));
        let (max_w, last_w) = (Arc::clone(&max), Arc::clone(&last));
        let task = tokio::spawn(async move {
            loop {
                if let Ok(info) = stream.consumer_info(&name).await {
                    let backlog = info.num_pending + info.num_ack_pending as u64;
                    max_w.fetch_max(backlog, Ordering::Relaxed);
                    last_w.store(backlog, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Ok(BacklogWatch { task, max, last })
    }

    async fn stop(self) -> (u64, u64) {
        self.task.abort();
        let _ = self.task.await;
        (
            self.max.load(Ordering::Relaxed),
            self.last.load(Ordering::Relaxed),
        )
    }
}

/// A time up to a minute before `now`, spread by `n`: when a live record's event happened.
fn just_before(now: std::time::SystemTime, n: usize) -> Timestamp {
    let at = now - Duration::from_millis((n as u64 % 600) * 100);
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

/// Reads the person's timeline, narrowed to the event's own `occurred_at` instant (so the answer stays small however
/// long the timeline is), until `event_id` is in it; the time from `since`, or `None` after [`GIVE_UP`].
async fn visible_after(
    mut linkage: LinkageClient<Authed>,
    id_number: &str,
    occurred_at: Option<Timestamp>,
    event_id: &str,
    since: Instant,
) -> anyhow::Result<Option<Duration>> {
    let to = occurred_at.map(|t| Timestamp {
        seconds: t.seconds,
        nanos: t.nanos + 1_000,
    });
    loop {
        let request = GetTimelineRequest {
            person: Some(PersonLookup {
                lookup: Some(Lookup::IdNumber(id_number.to_string())),
            }),
            from: occurred_at,
            to,
            page_size: 1000,
            ..GetTimelineRequest::default()
        };
        let timeline = linkage
            .get_timeline(request)
            .await
            .context("GetTimeline")?
            .into_inner();
        let seen = Instant::now();
        if timeline
            .entries
            .iter()
            .any(|e| e.event.as_ref().is_some_and(|ev| ev.event_id == event_id))
        {
            return Ok(Some(seen - since));
        }
        if seen - since > GIVE_UP {
            return Ok(None);
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_copies_are_dated_within_the_last_minute() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let now_s = 1_800_000_000i64;
        for n in [0, 1, 599, 600, 12_345] {
            let t = just_before(now, n);
            let back = (now_s - t.seconds) as f64 - f64::from(t.nanos) / 1e9;
            assert!(
                (0.0..60.0).contains(&back),
                "event {n} is {back} s before now"
            );
        }
        assert_ne!(
            just_before(now, 1),
            just_before(now, 2),
            "spread, not one instant"
        );
    }
}
