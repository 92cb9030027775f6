//! Golden behaviour: generated populations run through the screener must give exactly the flags (every field), links,
//! figures and flag changes recorded in `tests/golden/screening.txt`. The state's encoding may change; what the
//! screener decides may not. Regenerate (only for an intended change of behaviour) with
//! `UPDATE_GOLDEN=1 cargo test --release -p caselink-screening --test golden`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fmt::Write as _;

use caselink_proto::v1::CaseEvent;
use caselink_screening::{MemoryStore, RelationKey, RuleSet, Screener};
use sha2::{Digest, Sha256};

const GOLDEN: &str = "tests/golden/screening.txt";

fn digest(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..12])
}

/// A link as the golden file was written (the state keeps the other person's key and the evidence ids in their
/// compact forms, and a plain sharing link's evidence in its relation; this is what the person view shows): its
/// `Debug` is the recorded one.
#[derive(Debug)]
#[allow(dead_code)] // Read through `Debug` only.
struct Link {
    other: String,
    reason: i32,
    relation: Vec<u8>,
    evidence: Vec<String>,
}

/// A relation key as the golden file was written: its tag and its text (the state now keeps hex keys as their bytes).
fn as_text(key: RelationKey) -> Vec<u8> {
    let (tag, text) = match key {
        RelationKey::Phone(s) => (b'p', s),
        RelationKey::Address(s) => (b'a', s),
        RelationKey::Text(s) => (b'x', s),
    };
    [&[tag][..], text.as_bytes()].concat()
}

impl Link {
    /// The link as the person view shows it: a plain sharing link's evidence comes from its relation.
    fn of(l: &caselink_screening::Link, me: &[u8; 32], store: &MemoryStore) -> Link {
        let shown = if l.evidence.is_empty() {
            RelationKey::from_bytes(&l.relation)
                .and_then(|k| store.relations.get(&k))
                .map(|r| caselink_screening::sharing_evidence(r, me, &l.other))
                .unwrap_or_default()
        } else {
            l.evidence.clone()
        };
        Link {
            other: hex::encode(&l.other),
            reason: l.reason,
            relation: RelationKey::from_bytes(&l.relation)
                .map_or_else(|| l.relation.clone(), as_text),
            evidence: shown
                .iter()
                .map(|e| caselink_screening::id_string(e))
                .collect(),
        }
    }
}

/// One line per person (key prefix, flags in short, digest of flags + links + figures), then the digest of every
/// flag change the run reported.
fn describe(label: &str, events: &[CaseEvent], out: &mut String) {
    let screener = Screener::new(RuleSet::default());
    let mut store = MemoryStore::new();
    let mut changes = String::new();
    for (seq, e) in events.iter().enumerate() {
        for c in screener.apply(&mut store, e, seq as u64 + 1).unwrap() {
            writeln!(changes, "{c:?}").unwrap();
        }
    }
    writeln!(out, "# {label}: {} events", events.len()).unwrap();
    for (key, p) in &store.persons {
        let short: Vec<String> = p
            .flags
            .iter()
            .map(|f| {
                format!(
                    "{}r{}{}e{}",
                    f.rule,
                    f.revision,
                    if f.active { "" } else { "w" },
                    f.evidence_total
                )
            })
            .collect();
        let links: Vec<Link> = p.links.iter().map(|l| Link::of(l, key, &store)).collect();
        let full = format!("{:?}\n{:?}\n{:?}", p.flags, links, p.figures);
        writeln!(
            out,
            "{} {} l{} {}",
            &hex::encode(key)[..16],
            if short.is_empty() {
                "-".to_owned()
            } else {
                short.join(",")
            },
            p.links.len(),
            digest(&full)
        )
        .unwrap();
    }
    writeln!(out, "changes {}", digest(&changes)).unwrap();
}

#[test]
fn flags_links_and_figures_match_the_golden_file() {
    let mut out = String::new();
    for seed in [1, 2] {
        let (per_department, _) = support::population(seed, 1_500, 0.05);
        let interleaved = support::interleave(&per_department);
        describe(&format!("seed {seed}, interleaved"), &interleaved, &mut out);
        if seed == 1 {
            let sequential: Vec<_> = per_department.iter().rev().flatten().cloned().collect();
            describe("seed 1, departments in reverse", &sequential, &mut out);
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &out).unwrap();
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap();
    if golden != out {
        let diff: Vec<String> = golden
            .lines()
            .zip(out.lines())
            .filter(|(a, b)| a != b)
            .take(20)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!(
            "screening differs from {GOLDEN} ({} vs {} lines):\n{}",
            golden.lines().count(),
            out.lines().count(),
            diff.join("\n")
        );
    }
}
