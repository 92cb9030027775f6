//! `caselink audit verify`: follows every audit chain and reports the first broken link.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use caselink_proto::v1::AuditRecord;

#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// The NATS server holding the audit stream.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
}

pub(crate) async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let client = caselink_bus::connect(
        &args.nats_url,
        "caselink-audit-verify",
        Duration::from_secs(10),
    )
    .await
    .with_context(|| format!("connecting to {}", args.nats_url))?;
    let js = async_nats::jetstream::new(client);
    let records = caselink_bus::audit::read_all(&js).await?;
    let mut chains: BTreeMap<String, Vec<AuditRecord>> = BTreeMap::new();
    for (sequence, record) in records {
        let chain = subject_chain(&record, sequence);
        chains.entry(chain).or_default().push(record);
    }
    if chains.is_empty() {
        println!("the audit trail is empty");
        return Ok(ExitCode::SUCCESS);
    }
    let mut broken = false;
    for (chain, records) in &chains {
        match caselink_domain::verify_chain(chain, records) {
            Ok(n) => println!("chain {chain}: {n} records, intact"),
            Err(e) => {
                broken = true;
                println!("BROKEN: {e}");
            }
        }
    }
    Ok(if broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The chain a stored record claims; an empty claim is its own (broken) chain.
fn subject_chain(record: &AuditRecord, sequence: u64) -> String {
    if record.chain.is_empty() {
        format!("(unnamed, stream sequence {sequence})")
    } else {
        record.chain.clone()
    }
}
