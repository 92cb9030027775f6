//! `caselink submit`: a department's records, one proto3-JSON `CaseEvent` a line, through its `Ingest.SubmitStream`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use caselink_proto::v1::ingest_client::IngestClient;
use caselink_proto::v1::{CaseEvent, Receipt, ReceiptStatus};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

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
}

struct Line {
    number: usize,
    source_id: String,
}

pub(crate) async fn run(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let Some((_, port)) = DEPARTMENTS
        .iter()
        .find(|(name, _)| *name == args.department)
    else {
        bail!(
            "--department: unknown department {:?}; one of {}",
            args.department,
            DEPARTMENTS.map(|(n, _)| n).join(", ")
        );
    };
    let addr = args
        .addr
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
    let reader: Box<dyn BufRead + Send> = if args.file.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(&args.file)
            .with_context(|| format!("opening {}", args.file.display()))?;
        Box::new(std::io::BufReader::new(f))
    };
    let total_lines = if args.file.as_os_str() == "-" {
        None
    } else {
        Some(
            std::io::BufReader::new(std::fs::File::open(&args.file)?)
                .lines()
                .count() as u64,
        )
    };

    // Parse lines locally first: a malformed line is reported with its number and never sent.
    let mut local_errors: Vec<(usize, String)> = Vec::new();
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

    let mut client = IngestClient::connect(addr.clone())
        .await
        .with_context(|| format!("connecting to the {} service at {addr}", args.department))?
        .max_decoding_message_size(64 * 1024 * 1024);
    let progress = ProgressBar::new(total_lines.unwrap_or(0));
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events  {per_sec}  ETA {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut receipts = client
        .submit_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", code_name(s.code()), s.message()))?
        .into_inner();

    let mut tally: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut rejections: Vec<(usize, String, String)> = Vec::new();
    let mut stream_error = None;
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
                let line = sent_lines.get(receipt.index as usize);
                record(&receipt, line, &mut tally, &mut rejections);
                progress.inc(1);
            }
            Err(status) => {
                stream_error = Some(status);
                break;
            }
        }
    }
    progress.finish_and_clear();
    local_errors.extend(parse.await.unwrap_or_default());
    progress.inc(local_errors.len() as u64);

    println!("{} {}:", args.department, args.file.display());
    for (name, n) in &tally {
        println!("  {name:<10} {n}");
    }
    if !local_errors.is_empty() {
        println!("  unreadable {}", local_errors.len());
    }
    let shown = if args.all_rejections { usize::MAX } else { 20 };
    for (number, why) in local_errors.iter().take(shown) {
        println!("  line {number}: {why}");
    }
    for (number, source_id, why) in rejections.iter().take(shown) {
        println!("  line {number} (source_id {source_id:?}): {why}");
    }
    let hidden = local_errors.len().saturating_sub(shown) + rejections.len().saturating_sub(shown);
    if hidden > 0 && !args.all_rejections {
        println!("  … {hidden} more; --all-rejections prints every one");
    }
    if let Some(status) = stream_error {
        bail!(
            "{}: {} — every event acknowledged above is stored; run the same command again to submit the rest (already stored events come back as duplicate)",
            code_name(status.code()),
            status.message()
        );
    }
    Ok(if rejections.is_empty() && local_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn record(
    receipt: &Receipt,
    line: Option<&Line>,
    tally: &mut BTreeMap<&'static str, u64>,
    rejections: &mut Vec<(usize, String, String)>,
) {
    let status = ReceiptStatus::try_from(receipt.status).unwrap_or(ReceiptStatus::Unspecified);
    let name = match status {
        ReceiptStatus::Accepted => "accepted",
        ReceiptStatus::Duplicate => "duplicate",
        ReceiptStatus::Rejected => "rejected",
        ReceiptStatus::Unspecified => "unknown",
    };
    *tally.entry(name).or_default() += 1;
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
        rejections.push((number, source_id, why));
    }
}

pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
        _ => "ERROR",
    }
}
