//! Where the fold's own work runs: threads of its own at a lower scheduling priority (a higher nice value) than the
//! service's async workers and query tasks.
//!
//! The fold is throughput work; the follower of the bus (the unfolded tail), the queries and their audit records are
//! latency work. When they compete for the cores — the live load after a bulk fold, when the fold catches up through
//! cold reads beside six ingest services and the bus on the same machine — the latency work goes first and the fold
//! takes what it leaves; alone, the fold has every core as before. The threads a fold job starts (the preload's
//! readers) inherit its priority.
//!
//! A thread's nice value can only be raised without privilege, so the fold does not borrow tokio's blocking pool
//! (shared with the queries) but runs on these threads, which keep their priority for their whole life.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// A few threads at `nice` running the fold's blocking jobs in the order they are given. Cloned handles share the
/// threads; they end when the last handle is dropped and their jobs are done.
#[derive(Clone)]
pub(crate) struct FoldThreads {
    jobs: mpsc::Sender<Job>,
}

impl FoldThreads {
    /// Starts `threads` threads named `name` at `nice` (added to the process's own: 0 keeps it). A priority the
    /// system refuses is logged once and the threads run at the process's.
    pub(crate) fn start(threads: usize, nice: i32, name: &str) -> std::io::Result<FoldThreads> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    // Every thread lowers its own priority (nice is per thread); the first says how it went, once
                    // for all of them, since they meet the same permission.
                    if i == 0 {
                        lower_priority(nice);
                    } else {
                        let _ = set_nice(nice);
                    }
                    loop {
                        // The lock is held only while waiting for a job, not while running it.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(FoldThreads { jobs })
    }

    /// Runs `job` on one of the threads. As `tokio::task::spawn_blocking`: the handle answers the job's value, or an
    /// error if it panicked (the panic is not resumed here) or the threads are gone.
    pub(crate) fn spawn<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send(Box::new(move || {
            let _ = done.send(std::panic::catch_unwind(AssertUnwindSafe(job)));
        }));
        tokio::spawn(async move {
            if sent.is_err() {
                panic!("the fold's threads have stopped");
            }
            match answer.await {
                Ok(Ok(value)) => value,
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                Err(_) => panic!("a fold thread stopped before its job was done"),
            }
        })
    }
}

/// Raises the calling thread's nice value by `nice` (Linux: nice is per thread).
fn set_nice(nice: i32) -> std::io::Result<()> {
    if nice == 0 {
        return Ok(());
    }
    let tid = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(tid))?;
    rustix::process::setpriority_process(Some(tid), current.saturating_add(nice).min(19))?;
    Ok(())
}

/// [`set_nice`], saying what it did (or why not).
fn lower_priority(nice: i32) {
    match set_nice(nice) {
        Ok(()) if nice != 0 => tracing::debug!(nice, "fold threads: priority lowered"),
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(nice, error = %e, "fold threads: cannot lower their priority; they run at the service's")
        }
    }
}

/// The calling thread's nice value.
#[cfg(test)]
fn nice_of_this_thread() -> i32 {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(i32::MIN)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn jobs_run_at_the_lower_priority_and_so_do_the_threads_they_start() {
        let own = nice_of_this_thread();
        let threads = FoldThreads::start(2, 5, "test-fold").unwrap();
        let (job, started) = threads
            .spawn(|| {
                let started = std::thread::spawn(nice_of_this_thread).join().unwrap();
                (nice_of_this_thread(), started)
            })
            .await
            .unwrap();
        assert_eq!(job, (own + 5).min(19));
        assert_eq!(started, job, "a thread a job starts inherits its priority");
        // The caller's own thread is untouched.
        assert_eq!(nice_of_this_thread(), own);
    }

    #[tokio::test]
    async fn nice_zero_keeps_the_process_priority() {
        let own = nice_of_this_thread();
        let threads = FoldThreads::start(1, 0, "test-fold").unwrap();
        assert_eq!(threads.spawn(nice_of_this_thread).await.unwrap(), own);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_threads_go_on() {
        let threads = FoldThreads::start(1, 0, "test-fold").unwrap();
        let failed = threads.spawn(|| -> u32 { panic!("boom") }).await;
        assert!(failed.unwrap_err().is_panic());
        assert_eq!(threads.spawn(|| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn jobs_run_side_by_side_on_two_threads() {
        // The first job waits for the second: with one thread they would deadlock.
        let threads = FoldThreads::start(2, 0, "test-fold").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let first =
            threads.spawn(move || rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok());
        let second = threads.spawn(move || tx.send(()).unwrap());
        second.await.unwrap();
        assert!(first.await.unwrap(), "the first job saw the second run");
    }
}
