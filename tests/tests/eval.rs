//! `caselink eval` end to end: a generated population goes through `caselink up`'s real services and fold, and the
//! flags are scored against its truth — the quality bar of issue 7 holds.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use caselink_e2e::*;

#[test]
fn eval_scores_a_generated_population_through_the_running_system() {
    let up = UpProcess::start(&[], Duration::from_secs(120));
    let pop = up.data.path().join("pop");
    let (ok, out) = up.caselink(&[
        "gen",
        "--seed",
        "11",
        "--people",
        "1500",
        "--abuser-share",
        "0.04",
        "--out",
        pop.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let offset = up.offset.to_string();
    let nats = format!("nats://127.0.0.1:{}", up.nats_port);
    let (ok, out) = up.caselink(&[
        "eval",
        pop.to_str().unwrap(),
        "--data-dir",
        up.data.path().to_str().unwrap(),
        "--port-offset",
        &offset,
        "--nats-url",
        &nats,
    ]);
    assert!(ok, "eval failed or missed the quality bar:\n{out}");
    assert!(
        out.contains("quality bar:") && out.contains("PASS"),
        "{out}"
    );
    // Every rule has a line in the table, and the population has abusive persons of most rules.
    for rule in ["C1", "C4", "C6", "R1", "R5"] {
        assert!(
            out.lines().any(|l| l.starts_with(rule)),
            "no {rule} row:\n{out}"
        );
    }
    assert!(out.contains("1500 persons"), "{out}");

    // The joint view of a planted claimant, as `caselink person` prints it: each of their criteria as a flag with its
    // clause and evidence.
    let truth = caselink_population::read_truth(&pop.join("truth.json")).unwrap();
    let claimant = truth
        .persons
        .iter()
        .filter(|p| p.label == caselink_population::Label::Abusive)
        .max_by_key(|p| p.criteria.len())
        .unwrap();
    let addr = up.url(50050);
    let (ok, view) = up.caselink(&[
        "person",
        "--id-number",
        &claimant.id_number,
        "--purpose",
        "eval test",
        "--data-dir",
        up.data.path().to_str().unwrap(),
        "--addr",
        &addr,
    ]);
    assert!(ok, "{view}");
    for rule in &claimant.criteria {
        assert!(
            view.lines()
                .any(|l| l.starts_with(&format!("flag {rule} "))),
            "no {rule} flag in the view:\n{view}"
        );
    }
    assert!(view.contains("evidence"), "{view}");
    assert!(
        !view.contains(&claimant.id_number),
        "an analyst's view shows no clear ID number"
    );
}
