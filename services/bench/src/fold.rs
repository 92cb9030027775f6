//! The fold figures: how fast the aggregator folds a pre-filled stream into an empty store (durably: it acks only
//! after the sled flush), how that rate holds up as the store fills (cost growth), and how fast a rebuild replays
//! the whole stream into empty projections.
//!
//! The fold is watched from outside: the aggregator acks the last message of every flushed batch (ack policy `all`),
//! so the durable consumer's ack floor *is* the number of events durably folded. It is sampled every
//! [`SAMPLE_EVERY`]; the rate runs from the first sample that shows progress (process start-up and store opening
//! excluded) to the sample that shows the whole stream folded.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use async_nats::jetstream;
use caselink_bus::streams::EVENTS_STREAM;
use caselink_linkage::FoldOptions;
use caselink_runtime::Cancel;

use crate::progress::Progress;
use crate::stats::{rate_between, thousands, Growth, Throughput};

/// How often the consumer's ack floor is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// Give up when the fold makes no progress for this long.
const STALL: Duration = Duration::from_secs(120);

/// One watched fold.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FoldRun {
    /// Events folded between the first and the last sample, and the time between them.
    pub throughput: Throughput,
    /// Rate over the first tenth of the stream (events 0..N/10), if the samples resolve it.
    pub first_tenth_per_second: Option<f64>,
    /// The cost growth: the rate over the last tenth of the stream against the first 100k events (a tenth for a
    /// stream under 1M).
    pub growth: Option<Growth>,
    pub samples: usize,
    /// CPU the aggregator process used over the fold, in cores (its user + system time ÷ the fold's wall time).
    pub aggregator_cores: Option<f64>,
    /// CPU the whole machine used meanwhile, in cores (nats-server and the bench's own watching included).
    pub machine_cores: Option<f64>,
}

/// The stream's last sequence (= its message count: the events stream never deletes).
pub async fn stream_last_sequence(js: &jetstream::Context) -> anyhow::Result<u64> {
    let mut stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .context("reading the events stream")?;
    Ok(stream
        .info()
        .await
        .context("stream info")?
        .state
        .last_sequence)
}

/// Clock ticks per second of `/proc`'s CPU times (`USER_HZ`: 100 on Linux, whatever the kernel's own tick).
const USER_HZ: f64 = 100.0;

/// CPU time so far, in seconds: of process `pid` (user + system, `/proc/<pid>/stat`) and of the whole machine (every
/// state but idle and I/O wait, `/proc/stat`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTimes {
    pub process: Option<f64>,
    pub machine: Option<f64>,
}

impl CpuTimes {
    pub fn now(pid: Option<u32>) -> CpuTimes {
        let read = |path: String| std::fs::read_to_string(path).ok();
        CpuTimes {
            process: pid
                .and_then(|pid| read(format!("/proc/{pid}/stat")))
                .and_then(|stat| process_cpu_seconds(&stat)),
            machine: read("/proc/stat".into()).and_then(|stat| machine_busy_seconds(&stat)),
        }
    }

    /// Cores used between `self` and `later`, `seconds` apart: (process, machine).
    pub fn cores_until(&self, later: &CpuTimes, seconds: f64) -> (Option<f64>, Option<f64>) {
        let cores = |a: Option<f64>, b: Option<f64>| {
            (seconds > 0.0)
                .then_some(())
                .and_then(|()| Some((b? - a?) / seconds))
        };
        (
            cores(self.process, later.process),
            cores(self.machine, later.machine),
        )
    }
}

/// User + system CPU seconds of a `/proc/<pid>/stat` line (fields 14 and 15, counted after the parenthesised name,
/// which may hold spaces).
pub fn process_cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Busy CPU seconds of the machine from `/proc/stat`'s `cpu` line: everything but idle (4th) and iowait (5th).
pub fn machine_busy_seconds(stat: &str) -> Option<f64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    // guest and guest_nice (9th, 10th) are already inside user and nice.
    let total: f64 = ticks.iter().take(8).sum();
    Some((total - ticks.get(3)? - ticks.get(4).unwrap_or(&0.0)) / USER_HZ)
}

/// Watches the durable consumer of `fold` until its ack floor reaches `last_sequence`; `aggregator` is the folding
/// process, whose CPU is measured over the same span.
pub async fn watch_fold(
    js: &jetstream::Context,
    fold: &FoldOptions,
    last_sequence: u64,
    aggregator: Option<u32>,
    progress: &Progress,
) -> anyhow::Result<FoldRun> {
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .context("reading the events stream")?;
    let name = fold.durable_name();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut origin: Option<(Instant, CpuTimes)> = None;
    let mut last_change = Instant::now();
    let mut last_floor = 0u64;
    let mut last_print = Instant::now();
    loop {
        // The aggregator (re)creates its consumer at start: until then there is nothing to read.
        let floor = match stream.consumer_info(&name).await {
            Ok(info) => info.ack_floor.stream_sequence,
            Err(_) => 0,
        };
        let now = Instant::now();
        if floor > last_floor {
            last_floor = floor;
            last_change = now;
        } else if now - last_change > STALL {
            bail!(
                "the fold made no progress for {} s at {floor} of {last_sequence}",
                STALL.as_secs()
            );
        }
        if floor > 0 {
            let (t0, _) = *origin.get_or_insert_with(|| (now, CpuTimes::now(aggregator)));
            samples.push(((now - t0).as_secs_f64(), floor));
        }
        if floor >= last_sequence {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            last_print = Instant::now();
            progress.note(&format!(
                "folded {} of {}",
                thousands(floor as f64),
                thousands(last_sequence as f64)
            ));
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let (t_end, n_end) = *samples.last().ok_or_else(|| anyhow!("no fold samples"))?;
    let (_, n_start) = samples[0];
    let (aggregator_cores, machine_cores) = origin
        .map(|(_, cpu)| cpu.cores_until(&CpuTimes::now(aggregator), t_end))
        .unwrap_or((None, None));
    let tenth = last_sequence / 10;
    Ok(FoldRun {
        throughput: Throughput {
            count: n_end - n_start,
            seconds: t_end,
        },
        first_tenth_per_second: (n_start < tenth)
            .then(|| rate_between(&samples, n_start, tenth))
            .flatten(),
        growth: Growth::of(&samples, last_sequence),
        samples: samples.len(),
        aggregator_cores,
        machine_cores,
    })
}

/// Replays the whole stream into an empty store in `dir` (`caselink_linkage::rebuild_into`, what
/// `caselink-linkage rebuild` runs). The aggregator must be stopped: rebuild takes over its durable consumer.
pub async fn rebuild(
    url: &str,
    dir: &Path,
    expected: u64,
    progress: &Progress,
) -> anyhow::Result<Throughput> {
    let client = caselink_bus::connect(url, "caselink-bench-rebuild", Duration::from_secs(10))
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let js = jetstream::new(client);
    // The rebuild runs with the options the aggregator ran with (`caselink-linkage rebuild` layers them the same way).
    let options = crate::aggregator::layered_options(url, dir)?;
    let fold = options.fold_options().map_err(|e| anyhow!("{e}"))?;
    let store = options
        .open_projections()
        .map_err(|e| anyhow!("opening a store for the rebuild: {e}"))?;
    let started = Instant::now();
    // The rebuild's stored position, read every second, is its progress (a 10M rebuild takes the better part of an
    // hour).
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let ticker = progress.ticker("rebuilt", expected, std::sync::Arc::clone(&done));
    let poller = {
        let (store, done) = (store.clone(), std::sync::Arc::clone(&done));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok(position) = store.position() {
                    done.store(position, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
    };
    let folded = caselink_linkage::rebuild_into(&store, &js, &fold, Cancel::new()).await;
    poller.abort();
    ticker.stop().await;
    let folded = folded.map_err(|e| anyhow!("rebuild: {e}"))?;
    let elapsed = started.elapsed();
    if folded != expected {
        bail!("the rebuild folded {folded} events, the stream holds {expected}");
    }
    Ok(Throughput::new(folded, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_cpu_is_user_plus_system_after_a_name_with_spaces() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
        let stat = "4242 (caselink bench) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 9 0";
        assert_eq!(process_cpu_seconds(stat), Some(3.0));
        assert_eq!(process_cpu_seconds("4242 (x) S 1 2"), None);
    }

    #[test]
    fn machine_busy_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 20 30 1000 50 5 5 0 10 0\ncpu0 50 10 15 500 25 2 3 0 5 0\n";
        // user + nice + system + irq + softirq + steal = 160 ticks; guest is inside user.
        assert_eq!(machine_busy_seconds(stat), Some(1.6));
        assert_eq!(machine_busy_seconds("intr 1 2 3\n"), None);
    }

    #[test]
    fn cores_are_cpu_seconds_over_wall_seconds() {
        let before = CpuTimes {
            process: Some(10.0),
            machine: Some(100.0),
        };
        let after = CpuTimes {
            process: Some(21.0),
            machine: Some(116.0),
        };
        assert_eq!(before.cores_until(&after, 10.0), (Some(1.1), Some(1.6)));
        let unknown = CpuTimes {
            process: None,
            machine: Some(116.0),
        };
        assert_eq!(before.cores_until(&unknown, 10.0), (None, Some(1.6)));
        assert_eq!(before.cores_until(&after, 0.0), (None, None));
    }
}
