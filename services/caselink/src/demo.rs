//! `caselink up --demo`: a small generated population loaded at start, so a newcomer's first timeline shows a real
//! person's cross-agency history.

use std::path::Path;

use anyhow::Context;
use caselink_population::{generate, read_truth, GenParams, Label};

/// Seed of the demo population (fixed, so every demo shows the same people).
const DEMO_SEED: u64 = 20_261_123;

/// Generates the demo population under `data_dir/demo` (once) and loads it through the department services.
pub(crate) async fn seed(data_dir: &Path, port_offset: u16) -> anyhow::Result<()> {
    let dir = data_dir.join("demo");
    if !dir.join("truth.json").is_file() {
        let params = GenParams {
            seed: DEMO_SEED,
            people: 400,
            years: 2,
            ..GenParams::default()
        };
        let out = dir.clone();
        tokio::task::spawn_blocking(move || generate(&params, &out, &mut |_| {}))
            .await
            .context("the demo generator failed")??;
    }
    println!("loading the demo population from {} …", dir.display());
    let tokens = crate::tokens::TokenArgs::local(data_dir);
    let reports = crate::submit::load_dir(&dir, "127.0.0.1", port_offset, true, &tokens).await?;
    let total = |s: &str| reports.iter().map(|r| r.count(s)).sum::<u64>();
    println!(
        "demo loaded: {} accepted, {} already there, {} rejected",
        total("accepted"),
        total("duplicate"),
        total("rejected")
    );
    let truth = read_truth(&dir.join("truth.json"))?;
    let abusive = truth
        .persons
        .iter()
        .filter(|p| p.label == Label::Abusive)
        .max_by_key(|p| (p.criteria.len(), p.events));
    let escalating = truth
        .persons
        .iter()
        .filter(|p| p.label == Label::Ordinary && p.matters.iter().any(|m| m.is_multi_platform()))
        .max_by_key(|p| p.events);
    let linkage = 50050 + port_offset;
    println!("\nTry the demo:");
    if let Some(p) = abusive {
        println!(
            "  caselink timeline --addr http://127.0.0.1:{linkage} --purpose demo --id-number {}   # a planted abusive claimant ({})",
            p.id_number,
            p.criteria.join(", ")
        );
        println!(
            "  caselink person --addr http://127.0.0.1:{linkage} --purpose demo --id-number {}   # the joint view: flags, links, determination",
            p.id_number
        );
        println!(
            "  caselink determination check --addr http://127.0.0.1:{linkage} --id {}   # on the abnormal list? (confirm with `caselink determination confirm`)",
            p.id_number
        );
    }
    if let Some(p) = escalating {
        println!(
            "  caselink timeline --addr http://127.0.0.1:{linkage} --purpose demo --id-number {}   # an ordinary consumer who filed one grievance on several platforms",
            p.id_number
        );
    }
    Ok(())
}
