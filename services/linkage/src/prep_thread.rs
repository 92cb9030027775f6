//! The fold's preparing thread: one long-lived thread that preloads and prepares the fold's groups, at a lower
//! priority (a positive nice value) than the thread applying them.
//!
//! On two cores the apply (the sled batches: the fold's bottleneck) shares the machine with the preparation of the
//! groups after it, with nats-server and with the queries; measured at 10M events, the apply thread waited ~8 µs per
//! event for a core while the preparing threads ran. The preparation has room to spare, so it yields: the scheduler
//! gives a nice-5 thread about a third of the share of a nice-0 one when both want the same core, and all of it when
//! the apply is idle. The threads the preparation starts itself (the preload's second half) inherit its nice value.
//! Raising a thread's priority back needs a privilege, so the preparation keeps a thread of its own rather than
//! borrowing the runtime's blocking pool (where the apply runs too).

use std::sync::mpsc;

use thread_priority::{ThreadPriority, ThreadPriorityValue};

type Job = Box<dyn FnOnce() + Send>;

/// A thread running jobs one at a time, in order, at the nice value it was started with.
pub struct PrepThread {
    jobs: mpsc::Sender<Job>,
}

/// The job ended without an answer: it panicked (the thread carries on with the next job).
#[derive(Debug, thiserror::Error)]
#[error("the fold's preparing thread lost a job (it panicked)")]
pub struct JobLost;

impl PrepThread {
    /// Starts the thread; it lowers its own priority to `nice` (0: unchanged; a failure is logged, not fatal). The
    /// thread ends when this handle is dropped.
    pub fn start(nice: i8) -> std::io::Result<PrepThread> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("fold-prepare".into())
            .spawn(move || {
                if nice != 0 {
                    match lower_priority(nice) {
                        Ok(()) => tracing::info!(nice, "the fold prepares below the apply's priority"),
                        Err(e) => {
                            tracing::warn!(nice, error = %e, "the fold's preparing thread keeps its priority")
                        }
                    }
                }
                for job in queue {
                    // A panic is answered by the dropped reply (`JobLost`); the thread goes on.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })?;
        Ok(PrepThread { jobs })
    }

    /// Runs `f` on the thread; the answer arrives on the returned future.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, JobLost>> + Send + 'static {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send(Box::new(move || {
            let _ = reply.send(f());
        }));
        async move {
            if sent.is_err() {
                return Err(JobLost);
            }
            answer.await.map_err(|_| JobLost)
        }
    }
}

/// Sets the calling thread's nice value to `nice` (normal scheduling policies), through the value of the portable
/// priority scale that maps to it.
fn lower_priority(nice: i8) -> Result<(), String> {
    let policy = thread_priority::thread_schedule_policy().map_err(|e| format!("{e:?}"))?;
    let value = (0..=ThreadPriorityValue::MAX.into())
        .filter_map(|v: u8| ThreadPriorityValue::try_from(v).ok())
        .map(ThreadPriority::Crossplatform)
        .find(|p| p.to_posix(policy).ok() == Some(i32::from(nice)))
        .ok_or_else(|| format!("no priority maps to nice {nice}"))?;
    thread_priority::set_current_thread_priority(value).map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The calling thread's nice value, from /proc (field 19 of its stat).
    fn own_nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn jobs_run_in_order_below_the_callers_priority_and_a_panic_loses_only_its_job() {
        let thread = PrepThread::start(5).unwrap();
        let here = own_nice();
        let there = thread.run(own_nice).await.unwrap();
        assert_eq!(there, 5, "the caller runs at {here}");
        let first = thread.run(|| 1);
        let second = thread.run(|| 2);
        assert_eq!((first.await.unwrap(), second.await.unwrap()), (1, 2));
        let lost = thread.run(|| -> u8 { panic!("a job fails") }).await;
        assert!(lost.is_err());
        assert_eq!(thread.run(|| 3).await.unwrap(), 3);
        // The threads it starts inherit its nice value.
        let child = thread
            .run(|| std::thread::spawn(own_nice).join().unwrap())
            .await
            .unwrap();
        assert_eq!(child, 5);
    }
}
