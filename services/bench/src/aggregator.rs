//! The aggregator as its own process, so its memory is its own: this binary re-executes itself with the hidden
//! `aggregator` command, which runs exactly what `caselink-linkage` runs (`caselink_linkage::serve_on` with the
//! layered configuration and logging), on `127.0.0.1:0`. Re-executing itself rather than a `caselink-linkage` found
//! on disk guarantees the measured aggregator is built from the same commit and profile as the benchmark.
//!
//! The child prints `listening <address>` on stdout once bound, logs to a file, and stops gracefully when its stdin
//! closes, so it never outlives the benchmark.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use caselink_linkage::LinkageOptions;
use caselink_runtime::Cancel;
use serde::Serialize;
use tokio::net::TcpListener;

/// The hidden command that runs the aggregator.
pub const AGGREGATOR_COMMAND: &str = "aggregator";

#[derive(Serialize)]
struct Flags {
    nats_url: String,
    data_dir: PathBuf,
}

/// The child's side: serve linkage on 127.0.0.1:0 until stdin closes. Secrets come from the environment
/// (`CASELINK_IDENTITY__PERSON_KEY_SECRET`, `CASELINK_AUTH__PUBLIC_KEY`), as for `caselink-linkage`.
pub async fn serve_child(nats_url: String, data_dir: PathBuf) -> anyhow::Result<()> {
    caselink_runtime::init_logging("linkage");
    let options = layered_options(&nats_url, &data_dir)?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding 127.0.0.1:0")?;
    let address = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {address}")?;
        out.flush()?;
    }
    let cancel = Cancel::new();
    let on_eof = cancel.clone();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        on_eof.cancel();
    });
    caselink_linkage::serve_on(options, listener, cancel)
        .await
        .map_err(|e| anyhow!("linkage: {e}"))
}

/// The options `caselink-linkage` runs with over `data_dir` against `nats_url`, layered as it layers them (defaults →
/// `CASELINK_*` environment → these two flags): the aggregator child serves with them, and the bench's rebuild and its
/// watches of the durable consumer use the same, so an override (`CASELINK_FOLD_LIVE_READERS=4`,
/// `CASELINK_PARTITION_END=32`) applies to every part of a run alike.
pub fn layered_options(nats_url: &str, data_dir: &Path) -> anyhow::Result<LinkageOptions> {
    caselink_runtime::load_config(
        None,
        &Flags {
            nats_url: nats_url.to_string(),
            data_dir: data_dir.to_path_buf(),
        },
    )
    .context("the aggregator's configuration (CASELINK_* environment)")
}

/// The environment variable naming a command the aggregator is run under (a profiler), words split on spaces.
pub const WRAP_ENV: &str = "CASELINK_BENCH_AGGREGATOR_WRAP";

/// A running aggregator process.
pub struct Aggregator {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    address: String,
    log: PathBuf,
}

impl Aggregator {
    /// Starts the aggregator over `data_dir` against `nats_url`; returns once it listens.
    pub async fn spawn(
        nats_url: &str,
        data_dir: &Path,
        person_key_secret: &str,
        auth_public_key: &str,
        log: &Path,
    ) -> anyhow::Result<Aggregator> {
        let exe = std::env::current_exe().context("finding this program")?;
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        // A profiler to run the aggregator under (`heaptrack -o FILE`, `perf record -g -o FILE --`), for
        // finding what a figure is made of; the figures of such a run are the profiler's, not the pipeline's.
        let prefix = std::env::var(WRAP_ENV).unwrap_or_default();
        let mut words = prefix.split_whitespace();
        let mut command = match words.next() {
            Some(wrapper) => {
                let mut command = Command::new(wrapper);
                command.args(words).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let mut child = command
            .arg(AGGREGATOR_COMMAND)
            .arg("--nats-url")
            .arg(nats_url)
            .arg("--data-dir")
            .arg(data_dir)
            .env("CASELINK_IDENTITY__PERSON_KEY_SECRET", person_key_secret)
            .env("CASELINK_AUTH__PUBLIC_KEY", auth_public_key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .context("starting the aggregator process")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("the aggregator's stdout")?;
        let mut aggregator = Aggregator {
            child: Some(child),
            stdin,
            address: String::new(),
            log: log.to_path_buf(),
        };
        let line = tokio::time::timeout(
            Duration::from_secs(60),
            // The first line that says so: a profiler it runs under may print its own lines before and after, so
            // stdout is read to its end.
            tokio::task::spawn_blocking(move || {
                let (sender, receiver) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        if line.starts_with("listening ") {
                            let _ = sender.send(line);
                        }
                    }
                });
                receiver.recv()
            }),
        )
        .await;
        let line = match line {
            Ok(Ok(Ok(line))) => line,
            _ => String::new(),
        };
        let Some(address) = line.trim().strip_prefix("listening ") else {
            bail!(
                "the aggregator did not start; its log ends with:\n{}",
                aggregator.log_tail()
            );
        };
        aggregator.address = format!("http://{address}");
        Ok(aggregator)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        parse_vm_hwm(&status)
    }

    /// The last lines of the aggregator's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Asks the aggregator to stop (closes its stdin) and waits up to 30 s, then kills it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                if !status.success() {
                    bail!(
                        "the aggregator exited with {status}; its log ends with:\n{}",
                        self.log_tail()
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
        bail!("the aggregator did not stop within 30 s of being asked; killed")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Aggregator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `VmHWM` of a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut parts = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    let factor = match parts.next().unwrap_or("kB") {
        "kB" | "KB" | "kb" => 1024,
        "mB" | "MB" => 1024 * 1024,
        "B" => 1,
        _ => return None,
    };
    Some(value * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layered_options_take_the_address_and_folder_the_bench_gives() {
        let options = layered_options("nats://127.0.0.1:4999", Path::new("/tmp/bench-x/sled"))
            .expect("the defaults and two flags make valid options");
        assert_eq!(options.nats_url, "nats://127.0.0.1:4999");
        assert_eq!(options.data_dir, Path::new("/tmp/bench-x/sled"));
        // The fold's options (its consumer's name among them) come from the same layers.
        let fold = options.fold_options().expect("valid fold options");
        assert_eq!(fold.batch, options.fold_batch);
        assert_eq!(fold.live_readers, options.fold_live_readers);
    }

    #[test]
    fn peak_rss_is_read_from_vm_hwm_in_kib() {
        let status = "Name:\tcaselink-bench\nVmPeak:\t  200000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(51200 * 1024));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\tlots kB\n"), None);
    }
}
