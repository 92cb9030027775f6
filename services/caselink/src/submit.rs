//! `caselink submit` and `caselink load`: department records, one proto3-JSON `CaseEvent` a line, through the
//! department's `Ingest.SubmitStream`, with progress and a summary of what became of every line.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use caselink_proto::v1::ingest_client::IngestClient;
use caselink_proto::v1::{CaseEvent, Receipt, ReceiptStatus};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::tokens::TokenArgs;
use crate::up::DEPARTMENTS;

#[derive(clap::Args)]
pub(crate) struct SubmitArgs {
    /// The department whose service takes the records: market, police, justice, court, petition, hotline.
    #[arg(long)]
    department: String,
    /// The service address (default: the department's local port, e.g. http://127.0.0.1:50051).
    #[arg(long)]
    addr: Option<String>,
    /// Print every rejection (default: the first 20).
    #[arg(long)]
    all_rejections: bool,
    /// JSONL file: one CaseEvent a line, proto3 JSON ("-" for standard input).
    file: PathBuf,
    #[command(flatten)]
    tokens: TokenArgs,
}

#[derive(clap::Args)]
pub(crate) struct LoadArgs {
    /// A folder with department files (market.jsonl … hotline.jsonl), e.g. from `caselink gen`.
    dir: PathBuf,
    /// Host of the department services.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Added to every department's default port (as `caselink up --port-offset`).
    #[arg(long, default_value_t = 0)]
    port_offset: u16,
    /// Print every rejection (default: the first 20 per file).
    #[arg(long)]
    all_rejections: bool,
    #[command(flatten)]
    tokens: TokenArgs,
}

/// What became of one file.
pub(crate) struct FileReport {
    department: String,
    file: PathBuf,
    tally: BTreeMap<&'static str, u64>,
    unreadable: Vec<(usize, String)>,
    rejections: Vec<(usize, String, String)>,
    failure: Option<tonic::Status>,
}

impl FileReport {
    pub(crate) fn count(&self, status: &str) -> u64 {
        self.tally.get(status).copied().unwrap_or(0)
    }

    fn clean(&self) -> bool {
        self.unreadable.is_empty() && self.rejections.is_empty() && self.failure.is_none()
    }

    pub(crate) fn print(&self, all: bool) {
        let limit = if all { usize::MAX } else { 20 };
        let line = |name: &str, n: u64| format!("{name} {n}");
        let mut parts: Vec<String> = self.tally.iter().map(|(k, v)| line(k, *v)).collect();
        if !self.unreadable.is_empty() {
            parts.push(line("unreadable", self.unreadable.len() as u64));
        }
        println!(
            "{} {}: {}",
            self.department,
            self.file.display(),
            parts.join(", ")
        );
        for (number, why) in self.unreadable.iter().take(limit) {
            println!("  line {number}: {why}");
        }
        for (number, source_id, why) in self.rejections.iter().take(limit) {
            println!("  line {number} (source_id {source_id:?}): {why}");
        }
        let hidden = self.unreadable.len().saturating_sub(limit)
            + self.rejections.len().saturating_sub(limit);
        if hidden > 0 {
            println!("  … {hidden} more; --all-rejections prints every one");
        }
        if let Some(status) = &self.failure {
            println!(
                "  stopped: {}: {} — everything acknowledged before is stored; run the same command again for the rest \
                 (stored events come back as duplicate)",
                code_name(status.code()),
                status.message()
            );
        }
    }
}

struct Line {
    number: usize,
    source_id: String,
}

fn department_port(department: &str) -> anyhow::Result<u16> {
    match DEPARTMENTS.iter().find(|(name, _)| *name == department) {
        Some((_, port)) => Ok(*port),
        None => bail!(
            "--department: unknown department {department:?}; one of {}",
            DEPARTMENTS.map(|(n, _)| n).join(", ")
        ),
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>9} {bar:30} {pos}/{len} events  {per_sec}  ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

pub(crate) async fn run(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let port = department_port(&args.department)?;
    let addr = args
        .addr
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
    let progress = ProgressBar::new(0)
        .with_style(bar_style())
        .with_prefix(args.department.clone());
    let token = args
        .tokens
        .for_key(&format!("writer:{}", args.department))?;
    let report = submit_file(
        &args.department,
        &addr,
        &args.file,
        progress,
        token,
        &args.tokens,
    )
    .await?;
    report.print(args.all_rejections);
    Ok(if report.failure.is_some() {
        ExitCode::FAILURE
    } else if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `caselink load DIR`: every department file of DIR through its service, concurrently.
pub(crate) async fn load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let reports = load_dir(&args.dir, &args.host, args.port_offset, true, &args.tokens).await?;
    let mut clean = true;
    let mut failed = false;
    for report in &reports {
        report.print(args.all_rejections);
        clean &= report.clean();
        failed |= report.failure.is_some();
    }
    let total = |s: &str| reports.iter().map(|r| r.count(s)).sum::<u64>();
    println!(
        "total: accepted {}, duplicate {}, rejected {}",
        total("accepted"),
        total("duplicate"),
        total("rejected")
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Loads every `<department>.jsonl` in `dir` through the department services on `host` (ports + `offset`).
pub(crate) async fn load_dir(
    dir: &Path,
    host: &str,
    offset: u16,
    show_progress: bool,
    tokens: &TokenArgs,
) -> anyhow::Result<Vec<FileReport>> {
    let multi = MultiProgress::new();
    if !show_progress {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut tasks = Vec::new();
    for (department, port) in DEPARTMENTS {
        let file = dir.join(format!("{department}.jsonl"));
        if !file.is_file() {
            continue;
        }
        let addr = format!("http://{host}:{}", port + offset);
        let token = tokens.for_key(&format!("writer:{department}"))?;
        let connection = tokens.clone();
        let bar = multi.add(
            ProgressBar::new(0)
                .with_style(bar_style())
                .with_prefix(department),
        );
        tasks.push(tokio::spawn(async move {
            submit_file(department, &addr, &file, bar, token, &connection).await
        }));
    }
    if tasks.is_empty() {
        bail!(
            "{} holds no department files (market.jsonl … hotline.jsonl)",
            dir.display()
        );
    }
    let mut reports = Vec::new();
    for task in tasks {
        reports.push(task.await.context("a loader task failed")??);
    }
    Ok(reports)
}

/// Streams one JSONL file through `addr`'s SubmitStream. Lines that are not a CaseEvent are reported with their number
/// and never sent.
pub(crate) async fn submit_file(
    department: &str,
    addr: &str,
    path: &Path,
    progress: ProgressBar,
    token: String,
    connection: &TokenArgs,
) -> anyhow::Result<FileReport> {
    let stdin = path.as_os_str() == "-";
    let reader: Box<dyn BufRead + Send> = if stdin {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        progress.set_length(
            std::io::BufReader::new(std::fs::File::open(path)?)
                .lines()
                .count() as u64,
        );
        Box::new(std::io::BufReader::with_capacity(1 << 20, f))
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<CaseEvent>(4096);
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<Line>();
    let parse = tokio::task::spawn_blocking(move || {
        let mut errors = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let number = i + 1;
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    errors.push((number, format!("unreadable: {e}")));
                    break;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<CaseEvent>(&line) {
                Ok(event) => {
                    let _ = lines_tx.send(Line {
                        number,
                        source_id: event.source_id.clone(),
                    });
                    if tx.blocking_send(event).is_err() {
                        break;
                    }
                }
                Err(e) => errors.push((number, format!("not a CaseEvent in proto3 JSON: {e}"))),
            }
        }
        errors
    });

    let channel = connection
        .connect(addr)
        .await
        .with_context(|| format!("the {department} service"))?;
    let mut client = IngestClient::with_interceptor(channel, crate::tokens::bearer(&token, None)?)
        .max_decoding_message_size(64 * 1024 * 1024);
    let mut report = FileReport {
        department: department.to_string(),
        file: path.to_path_buf(),
        tally: BTreeMap::new(),
        unreadable: Vec::new(),
        rejections: Vec::new(),
        failure: None,
    };
    match client
        .submit_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    {
        Err(status) => report.failure = Some(status),
        Ok(response) => {
            let mut receipts = response.into_inner();
            let mut sent_lines: Vec<Line> = Vec::new();
            while let Some(item) = receipts.next().await {
                match item {
                    Ok(receipt) => {
                        while sent_lines.len() <= receipt.index as usize {
                            match lines_rx.recv().await {
                                Some(line) => sent_lines.push(line),
                                None => break,
                            }
                        }
                        record(
                            &receipt,
                            sent_lines.get(receipt.index as usize),
                            &mut report,
                        );
                        progress.inc(1);
                    }
                    Err(status) => {
                        report.failure = Some(status);
                        break;
                    }
                }
            }
        }
    }
    drop(lines_rx);
    report.unreadable = parse.await.unwrap_or_default();
    progress.finish_and_clear();
    Ok(report)
}

fn record(receipt: &Receipt, line: Option<&Line>, report: &mut FileReport) {
    let status = ReceiptStatus::try_from(receipt.status).unwrap_or(ReceiptStatus::Unspecified);
    let name = match status {
        ReceiptStatus::Accepted => "accepted",
        ReceiptStatus::Duplicate => "duplicate",
        ReceiptStatus::Rejected => "rejected",
        ReceiptStatus::Unspecified => "unknown",
    };
    *report.tally.entry(name).or_default() += 1;
    if status == ReceiptStatus::Rejected {
        let why = receipt
            .violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.reason))
            .collect::<Vec<_>>()
            .join("; ");
        let (number, source_id) = line.map_or((0, receipt.source_id.clone()), |l| {
            (l.number, l.source_id.clone())
        });
        report.rejections.push((number, source_id, why));
    }
}

pub(crate) use caselink_runtime::metrics::code_name;

/// A refused call as the commands report it: `CODE: message`.
pub(crate) fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", code_name(s.code()), s.message())
}
