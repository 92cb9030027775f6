//! Progress on stderr: phases with the time since start, and a periodic count during long phases.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::thousands;

/// How often a running count is printed.
const TICK: Duration = Duration::from_secs(5);

/// Prints progress lines to stderr; cheap to clone.
#[derive(Clone)]
pub struct Progress {
    started: Instant,
    quiet: bool,
}

impl Progress {
    /// Progress measured from now; `quiet` prints nothing.
    pub fn new(quiet: bool) -> Progress {
        Progress {
            started: Instant::now(),
            quiet,
        }
    }

    fn line(&self, text: &str) {
        if !self.quiet {
            eprintln!("[{:>7.1} s] {text}", self.started.elapsed().as_secs_f64());
        }
    }

    /// A new phase starts.
    pub fn phase(&self, text: &str) {
        self.line(text);
    }

    /// Something worth knowing within a phase.
    pub fn note(&self, text: &str) {
        self.line(&format!("  {text}"));
    }

    /// Prints `counter` every few seconds (with its rate) until the ticker is stopped.
    pub fn ticker(&self, label: &'static str, total: u64, counter: Arc<AtomicU64>) -> Ticker {
        let progress = self.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut interval = tokio::time::interval(TICK);
            interval.tick().await;
            loop {
                interval.tick().await;
                let n = counter.load(Ordering::Relaxed);
                progress.note(&format!(
                    "{label} {} of {} ({}/s)",
                    thousands(n as f64),
                    thousands(total as f64),
                    thousands(crate::stats::rate(n, started.elapsed()))
                ));
            }
        });
        Ticker { task }
    }
}

/// A running progress count; stop it when the phase ends.
pub struct Ticker {
    task: tokio::task::JoinHandle<()>,
}

impl Ticker {
    /// Stops printing.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
