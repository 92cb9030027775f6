//! `caselink eval DIR`: runs a generated population through the running system and scores the flags against its
//! `truth.json` — per rule and overall precision and recall, the share of ordinary consumers flagged, and the persons
//! misclassified (for inspection with `caselink person`).
//!
//! The events go through the real department services and the real fold (nothing is simulated); the flags are read
//! back with `ListFlagged`. Person keys of the truth's ID numbers are computed with the deployment's person-key secret
//! from `caselink up`'s configuration, so no person is looked up one by one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use caselink_population::{read_truth, Label};
use caselink_proto::v1::ListFlaggedRequest;
use caselink_screening::eval::{compare, TruthRow};
use caselink_screening::RuleCode;

#[derive(clap::Args)]
pub(crate) struct EvalArgs {
    /// A folder from `caselink gen` (department files and truth.json).
    dir: PathBuf,
    /// Score what is already loaded instead of loading the folder first.
    #[arg(long)]
    no_load: bool,
    /// Host of the department services.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Added to every default port (as `caselink up --port-offset`).
    #[arg(long, default_value_t = 0)]
    port_offset: u16,
    /// NATS, to wait until the fold has caught up with everything loaded.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Misclassified persons to list (0 = all).
    #[arg(long, default_value_t = 50)]
    show: usize,
    #[command(flatten)]
    tokens: crate::tokens::TokenArgs,
}

/// The quality bar of issue 7.
const MIN_RECALL: f64 = 0.95;
const MIN_PRECISION: f64 = 0.9;
const MAX_ORDINARY_FLAGGED: f64 = 0.001;

pub(crate) async fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let truth = read_truth(&args.dir.join("truth.json"))
        .with_context(|| format!("reading {}", args.dir.join("truth.json").display()))?;
    let secret = person_key_secret(&args.tokens.data_dir)?;
    if !args.no_load {
        let reports =
            crate::submit::load_dir(&args.dir, &args.host, args.port_offset, true, &args.tokens)
                .await?;
        for report in &reports {
            report.print(false);
        }
    }
    wait_for_fold(&args.nats_url).await?;

    // Person key → ID number, for every person of the truth.
    let mut by_key: HashMap<String, String> = HashMap::new();
    for p in &truth.persons {
        let id = caselink_domain::parse_id_number(&p.id_number)
            .with_context(|| format!("truth.json holds an invalid ID number {:?}", p.id_number))?;
        by_key.insert(
            caselink_domain::person_key(&secret, &id).to_hex(),
            p.id_number.clone(),
        );
    }
    let flagged_keys = flagged(&args).await?;
    let mut flagged: BTreeMap<String, BTreeSet<RuleCode>> = BTreeMap::new();
    let mut others = 0usize;
    for (key, rules) in flagged_keys {
        match by_key.get(&key) {
            Some(id) => {
                flagged.insert(id.clone(), rules);
            }
            None => others += 1,
        }
    }
    let rows = truth.persons.iter().map(|p| TruthRow {
        person: p.id_number.clone(),
        display: p.id_number.clone(),
        abusive: p.label == Label::Abusive,
        criteria: p.criteria.clone(),
    });
    let mut report = compare(rows, &flagged);
    let total_misclassified = report.misclassified.len();
    if args.show > 0 {
        report.misclassified.truncate(args.show);
    }
    println!(
        "{} persons ({} abusive, {} ordinary); {} flagged persons are not of this population (ignored)\n",
        report.persons, report.abusive, report.ordinary, others
    );
    println!("{report}");
    if total_misclassified > report.misclassified.len() {
        println!(
            "… and {} more misclassified (--show 0 lists all)",
            total_misclassified - report.misclassified.len()
        );
    }
    let recall = report.recall().unwrap_or(0.0);
    let precision = report.precision().unwrap_or(0.0);
    let ordinary = report.ordinary_flagged_share().unwrap_or(0.0);
    let pass =
        recall >= MIN_RECALL && precision >= MIN_PRECISION && ordinary <= MAX_ORDINARY_FLAGGED;
    println!(
        "\nquality bar: recall {recall:.3} (≥ {MIN_RECALL}), precision {precision:.3} (≥ {MIN_PRECISION}), ordinary flagged {:.3} % (≤ {:.1} %): {}",
        ordinary * 100.0,
        MAX_ORDINARY_FLAGGED * 100.0,
        if pass { "PASS" } else { "FAIL" }
    );
    Ok(if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The person-key secret of the local deployment (`caselink up`'s caselink.toml).
fn person_key_secret(data_dir: &Path) -> anyhow::Result<caselink_domain::KeySecret> {
    #[derive(serde::Deserialize)]
    struct Local {
        identity: caselink_runtime::IdentityConfig,
    }
    let path = data_dir.join("caselink.toml");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} not readable: eval needs the deployment's person-key secret (run `caselink up` first, or pass --data-dir)",
            path.display()
        )
    })?;
    let local: Local =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    local
        .identity
        .person_key_secret()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Waits until linkage's fold consumer has nothing pending (everything loaded is folded and flagged).
async fn wait_for_fold(nats_url: &str) -> anyhow::Result<()> {
    let client = async_nats::connect(nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {nats_url}"))?;
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(caselink_bus::streams::EVENTS_STREAM)
        .await
        .context("the events stream")?;
    let started = Instant::now();
    let mut said = Instant::now() - Duration::from_secs(60);
    let mut quiet = 0;
    loop {
        let last = stream
            .info()
            .await
            .context("the events stream")?
            .state
            .last_sequence;
        let mut pending = None;
        let mut consumers = stream.consumers();
        use futures::StreamExt;
        while let Some(info) = consumers.next().await {
            let info = info.context("listing consumers")?;
            if info.name.starts_with("linkage-") {
                pending = Some(info.num_pending + info.num_ack_pending as u64);
            }
        }
        match pending {
            Some(0) => {
                quiet += 1;
                if quiet >= 3 {
                    eprintln!("fold caught up at stream sequence {last}");
                    return Ok(());
                }
            }
            Some(n) => {
                quiet = 0;
                if said.elapsed() >= Duration::from_secs(5) {
                    eprintln!("waiting for the fold: {n} events pending");
                    said = Instant::now();
                }
            }
            None => {
                if said.elapsed() >= Duration::from_secs(5) {
                    eprintln!("waiting for linkage's fold consumer");
                    said = Instant::now();
                }
            }
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("the fold did not catch up within an hour");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every flagged person (key → rules of active flags), through `ListFlagged`.
async fn flagged(args: &EvalArgs) -> anyhow::Result<BTreeMap<String, BTreeSet<RuleCode>>> {
    let addr = format!("http://{}:{}", args.host, 50050 + args.port_offset);
    let mut client = args
        .tokens
        .linkage(
            &addr,
            Some("screening evaluation against a synthetic population"),
        )
        .await?;
    let mut out = BTreeMap::new();
    let mut request = ListFlaggedRequest {
        page_size: 500,
        ..ListFlaggedRequest::default()
    };
    loop {
        let page = client
            .list_flagged(request.clone())
            .await
            .map_err(crate::submit::status_error)?
            .into_inner();
        for p in page.persons {
            let rules = p.rules.iter().filter_map(|r| RuleCode::parse(r)).collect();
            out.insert(p.person_key, rules);
        }
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        request.page_token = page.next_page_token;
    }
}
