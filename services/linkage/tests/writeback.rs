//! The fold's write-back of states (`states.rs`): however often it checkpoints, wherever it crashes between
//! checkpoints and however it compacts the runs of relations with one user, the store ends up byte for byte what one
//! uninterrupted fold that writes everything with every batch makes (the runs compared as the relations they hold):
//! nothing lost, nothing counted twice, no alert written twice, duplicates skipped on replay too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use caselink_domain::{
    department_from_code, derive_event_id, pseudonymise, IdentityKeys, KeySecret, Keyring, SealKey,
};
use caselink_linkage::fold::{fold_batch, fold_into, prepare, Folder};
use caselink_linkage::states::{CachePolicy, StateCache};
use caselink_linkage::Store;
use caselink_population::{generate, GenParams, DEPARTMENT_FILES};
use caselink_proto::v1::CaseEvent;
use prost::Message;

/// A generated population with abusive claimants and rings (shared phones, addresses, texts), pseudonymised and
/// sealed as ingest does, departments interleaved; then copies of some events under new sequences (duplicates past
/// the bus's dedup window) and one undecodable message.
fn messages() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let params = GenParams {
        seed: 9,
        people: 400,
        abuser_share: 0.06,
        ..GenParams::default()
    };
    generate(&params, dir.path(), &mut |_| {}).unwrap();
    let keys = IdentityKeys {
        hmac: KeySecret::from_hex(&"5a".repeat(32)).unwrap(),
        seal: Keyring::new(SealKey::new("test", [7; 32])),
    };
    let mut files: Vec<Vec<CaseEvent>> = Vec::new();
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
            events.push(e);
        }
        files.push(events);
    }
    // Round robin over the departments, like concurrent loaders.
    let mut out: Vec<Vec<u8>> = Vec::new();
    let longest = files.iter().map(Vec::len).max().unwrap();
    for i in 0..longest {
        for f in &files {
            if let Some(e) = f.get(i) {
                out.push(e.encode_to_vec());
            }
        }
    }
    let n = out.len();
    for i in (0..n).step_by(97) {
        let copy = out[i].clone();
        out.push(copy);
    }
    out.insert(n / 2, b"\xff not a case event".to_vec());
    out
}

fn folder() -> Folder {
    Folder {
        screener: Some(Arc::new(caselink_screening::Screener::new(
            caselink_screening::RuleSet::default(),
        ))),
        alerts: true,
    }
}

/// Every entry of the store, with the timelines as what they hold: one entry per event (`t` ‖ person key ‖ its place →
/// its sequence and the event bytes it points to in the event log), however the fold's batches cut them into chunks
/// (so two stores compare equal only if their timelines hold the same events, where their logs say); and the
/// runs as the relations they hold (`u` ‖ relation key → state), however the checkpoints cut and compacted them
/// (and wherever the event log holds them).
fn contents(store: &Store) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut persons = std::collections::BTreeSet::new();
    for kv in store.entries() {
        let (k, v) = kv.unwrap();
        match k[0] {
            // A timeline chunk: `p` ‖ person number ‖ `t` ‖ its first place (read below, by person).
            b'p' if k.len() == 34 && k[9] == b't' => {}
            // A person's number (the same in both stores: numbers follow the stream), and whose timeline to read.
            b'n' => {
                persons.insert(caselink_domain::PersonKey(k[1..33].try_into().unwrap()));
                out.push((k.to_vec(), v.to_vec()));
            }
            b'u' => {}
            // The event log's length: it holds the runs too, so it depends on where checkpoints fell.
            b'm' if &k[..] == b"mlog" => {}
            _ => out.push((k.to_vec(), v.to_vec())),
        }
    }
    for (key, state) in store.relations_in_runs().unwrap() {
        let mut k = vec![b'u'];
        k.extend_from_slice(&key);
        out.push((k, state));
    }
    for person in persons {
        for row in store.timeline(&person, i64::MIN, i64::MAX, None) {
            let row = row.unwrap();
            let mut key = vec![b't'];
            key.extend_from_slice(&person.0);
            key.extend_from_slice(row.cursor());
            let mut value = row.sequence.to_be_bytes().to_vec();
            value.extend_from_slice(&row.event.encode_to_vec());
            out.push((key, value));
        }
    }
    out.sort();
    out
}

/// Same keys, same values, in the same order.
fn assert_same(got: &[(Vec<u8>, Vec<u8>)], expected: &[(Vec<u8>, Vec<u8>)]) {
    assert_eq!(got.len(), expected.len(), "same number of keys");
    for ((k1, v1), (k2, v2)) in got.iter().zip(expected) {
        assert_eq!(k1, k2, "same keys");
        assert!(
            v1 == v2,
            "the value under {:?}… differs",
            &k1[..k1.len().min(9)]
        );
    }
}

fn numbered(messages: &[Vec<u8>]) -> Vec<(u64, &[u8])> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| (i as u64 + 1, m.as_slice()))
        .collect()
}

const BATCH: usize = 100;

/// The cache's default policy, but compacting the runs at every checkpoint: every run counts as small, and two are
/// enough to merge the oldest four.
fn compacting() -> CachePolicy {
    CachePolicy {
        compaction: caselink_linkage::runs::Compaction {
            min_dead: 1,
            small_entries: u32::MAX,
            min_small: 2,
            max_runs: 4,
        },
        ..CachePolicy::default()
    }
}

/// Compaction ran: the first run (id 0) is gone from the store.
fn assert_compacted(store: &Store) {
    let first = store
        .entries()
        .map(|kv| kv.unwrap().0)
        .find(|k| k[0] == b'u')
        .expect("runs stored");
    assert_ne!(&first[1..], &[0, 0, 0, 0], "run 0 is still stored");
}

#[test]
fn crashes_between_checkpoints_change_nothing() {
    let messages = messages();
    let all = numbered(&messages);
    assert!(all.len() > 20 * BATCH, "{} messages", all.len());

    // The reference: every batch writes everything (a fresh cache and a checkpoint per batch).
    let dir = tempfile::tempdir().unwrap();
    let reference = Store::open(dir.path()).unwrap();
    for chunk in all.chunks(BATCH) {
        fold_batch(&reference, &folder(), chunk).unwrap();
    }
    let expected = contents(&reference);
    assert!(expected.iter().any(|(k, _)| k[0] == b'o'), "alerts written");
    assert!(
        expected.iter().any(|(k, _)| k[0] == b'f'),
        "persons flagged"
    );
    assert!(
        expected.iter().any(|(k, _)| k[0] == b'u'),
        "relations with one user in runs"
    );
    assert!(
        expected.iter().any(|(k, _)| k.starts_with(b"rX")),
        "texts shared by a ring at r"
    );

    // Checkpoints every 7th batch; the process "crashes" (its cache is lost, sled keeps what was applied) after
    // some batches, and each restart resumes after `states_at`, as the consumer does: its first batches replay what
    // was folded since the last checkpoint, the one across `position` mixes replays and new messages.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut crash_after = vec![5usize, 12, 13, 30];
    let crash_points = crash_after.len();
    let mut batches = 0usize;
    let mut replayed = 0usize;
    let mut duplicates = 0usize;
    let mut crashes = 0usize;
    let mut cache = StateCache::open(&store, compacting()).unwrap();
    let mut next = 0usize;
    while next < all.len() {
        let end = (next + BATCH).min(all.len());
        batches += 1;
        let checkpoint = batches.is_multiple_of(7) || end == all.len();
        let stats = fold_into(&store, &folder(), &mut cache, &all[next..end], checkpoint).unwrap();
        replayed += stats.replayed;
        duplicates += stats.duplicates;
        next = end;
        if let Some(i) = crash_after.iter().position(|&b| b == batches) {
            crash_after.remove(i);
            let states_at = store.states_at().unwrap();
            assert!(
                states_at < store.position().unwrap(),
                "the crash after batch {batches} falls between checkpoints"
            );
            cache = StateCache::open(&store, compacting()).unwrap();
            crashes += 1;
            next = usize::try_from(states_at).unwrap();
        }
    }
    assert_eq!(crashes, crash_points);
    assert!(replayed > 0, "the crashes replayed events into the states");
    assert!(duplicates > 0, "the copies were skipped as duplicates");
    assert_compacted(&store);
    assert_same(&contents(&store), &expected);
}

/// As the consumer runs it: each batch is prepared while the one before is still unapplied, and events come again
/// in the very next batch (a retry past the dedup window right behind the original). Same store as one batch at a time.
#[test]
fn pipelined_batches_equal_one_at_a_time() {
    let mut messages = messages();
    let n = messages.len();
    for i in (0..n - BATCH).step_by(53).rev() {
        let copy = messages[i].clone();
        messages.insert(i + BATCH / 2 + 7, copy);
    }
    let all = numbered(&messages);

    let dir = tempfile::tempdir().unwrap();
    let reference = Store::open(dir.path()).unwrap();
    for chunk in all.chunks(BATCH) {
        fold_batch(&reference, &folder(), chunk).unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut cache = StateCache::open(&store, compacting()).unwrap();
    let mut inflight: Option<caselink_linkage::fold::Prepared> = None;
    let mut duplicates = 0;
    for (i, chunk) in all.chunks(BATCH).enumerate() {
        let checkpoint = i % 3 == 2;
        let prepared = prepare(&store, &folder(), &mut cache, chunk, checkpoint).unwrap();
        duplicates += prepared.stats.duplicates;
        if let Some(previous) = inflight.replace(prepared) {
            previous.apply(&store).unwrap().settle(&mut cache);
        }
    }
    let last = inflight.take().unwrap();
    last.apply(&store).unwrap().settle(&mut cache);
    prepare(&store, &folder(), &mut cache, &[], true)
        .unwrap()
        .apply(&store)
        .unwrap()
        .settle(&mut cache);
    assert!(
        duplicates > n / 60,
        "copies caught while their originals were in flight: {duplicates}"
    );
    assert_compacted(&store);
    assert_same(&contents(&store), &contents(&reference));
}
