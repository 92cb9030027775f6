//! Shared by the integration tests: a generated population, pseudonymised like ingest does, interleaved like
//! concurrently loading departments, run through the screener.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use caselink_domain::{
    department_from_code, derive_event_id, parse_id_number, person_key, pseudonymise, IdentityKeys,
    KeySecret, Keyring, SealKey,
};
use caselink_population::{
    generate, read_truth, GenParams, Label, Truth, DEPARTMENT_FILES, TRUTH_FILE,
};
use caselink_proto::v1::CaseEvent;
use caselink_screening::eval::TruthRow;
use caselink_screening::{MemoryStore, RuleCode, Screener};

pub(crate) fn keys() -> IdentityKeys {
    IdentityKeys {
        hmac: KeySecret::from_hex(&"5a".repeat(32)).unwrap(),
        seal: Keyring::new(SealKey::new("test", [7; 32])),
    }
}

/// Generates a population and returns its events per department (prepared as ingest would) and its truth.
pub(crate) fn population(
    seed: u64,
    people: usize,
    abuser_share: f64,
) -> (Vec<Vec<CaseEvent>>, Truth) {
    population_with(&GenParams {
        seed,
        people,
        abuser_share,
        ..GenParams::default()
    })
}

/// As [`population`], with every generator parameter.
pub(crate) fn population_with(params: &GenParams) -> (Vec<Vec<CaseEvent>>, Truth) {
    let dir = tempfile::tempdir().unwrap();
    generate(params, dir.path(), &mut |_| {}).unwrap();
    let keys = keys();
    let mut per_department = Vec::new();
    for (code, file) in DEPARTMENT_FILES {
        let department = department_from_code(code).unwrap();
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let mut events = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut e: CaseEvent = serde_json::from_str(line).unwrap();
            if e.event_id.is_empty() {
                e.event_id = derive_event_id(department, &e.source_id).to_string();
            }
            pseudonymise(&mut e, &keys).unwrap();
            if let Some(s) = e.subject.as_mut() {
                s.sealed = None;
            }
            events.push(e);
        }
        per_department.push(events);
    }
    let truth = read_truth(&dir.path().join(TRUTH_FILE)).unwrap();
    (per_department, truth)
}

/// Interleaves the departments' files as if each were loaded at the same pace concurrently: event `i` of a file of
/// `n` comes at fraction `i / n` of the run.
pub(crate) fn interleave(per_department: &[Vec<CaseEvent>]) -> Vec<CaseEvent> {
    let mut order: Vec<(u128, usize, usize)> = Vec::new();
    for (d, events) in per_department.iter().enumerate() {
        let n = events.len().max(1) as u128;
        for i in 0..events.len() {
            order.push(((i as u128) * 1_000_000_000 / n, d, i));
        }
    }
    order.sort_unstable();
    order
        .into_iter()
        .map(|(_, d, i)| per_department[d][i].clone())
        .collect()
}

/// Runs events through a screener into a fresh memory store.
pub(crate) fn run(screener: &Screener, events: &[CaseEvent]) -> MemoryStore {
    let mut store = MemoryStore::new();
    for (seq, e) in events.iter().enumerate() {
        screener.apply(&mut store, e, seq as u64 + 1).unwrap();
    }
    store
}

/// Active flags per person (hex key).
pub(crate) fn flagged(store: &MemoryStore) -> BTreeMap<String, BTreeSet<RuleCode>> {
    store
        .persons
        .iter()
        .map(|(k, p)| {
            (
                hex::encode(k),
                p.flags
                    .iter()
                    .filter(|f| f.active)
                    .filter_map(|f| RuleCode::parse(&f.rule))
                    .collect(),
            )
        })
        .filter(|(_, s): &(String, BTreeSet<RuleCode>)| !s.is_empty())
        .collect()
}

pub(crate) fn person_hex(id_number: &str) -> String {
    person_key(&keys().hmac, &parse_id_number(id_number).unwrap()).to_hex()
}

pub(crate) fn truth_rows(truth: &Truth) -> Vec<TruthRow> {
    truth
        .persons
        .iter()
        .map(|p| TruthRow {
            person: person_hex(&p.id_number),
            display: format!(
                "{}{}{}",
                p.id_number,
                p.ring.as_ref().map(|r| format!(" {r}")).unwrap_or_default(),
                p.impersonated_by
                    .as_ref()
                    .map(|_| " (impersonated)")
                    .unwrap_or_default()
            ),
            abusive: p.label == Label::Abusive,
            criteria: p.criteria.clone(),
        })
        .collect()
}
