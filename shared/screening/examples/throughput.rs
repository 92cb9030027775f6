//! Measures the screener: the engine alone over a generated population (in-memory store), and a simulated fold
//! round-trip as the aggregator does it (per batch of 1,000 events: decode each touched state at first touch, apply,
//! encode every touched state back at the end of the batch).
//!
//! `cargo run --release -p caselink-screening --example throughput -- --people 8300 --seed 1`
//!
//! `--ring 30` measures the large-relation case instead: a ring of 30 persons sharing one phone, one address and one
//! complaint text, filing `--ring-complaints` (3,000) complaints on one merchant, against as many independent persons
//! filing as many complaints with their own phones, addresses and texts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::time::Instant;

use caselink_domain::PersonKey;
use caselink_population::GenParams;
use caselink_proto::v1::CaseEvent;
use caselink_screening::{
    MemoryStore, PersonScreening, RelationKey, RelationState, RuleSet, Screener, ScreeningStore,
};
use prost::Message;

#[path = "../tests/support/mod.rs"]
mod support;

struct Args {
    people: usize,
    seed: u64,
    years: u32,
    abusers: f64,
    rounds: usize,
    ring: usize,
    ring_complaints: usize,
}

fn args() -> Args {
    let mut a = Args {
        people: 8_300,
        seed: 1,
        years: 2,
        abusers: 0.01,
        rounds: 1,
        ring: 0,
        ring_complaints: 3_000,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--people" => a.people = v.parse().unwrap(),
            "--seed" => a.seed = v.parse().unwrap(),
            "--years" => a.years = v.parse().unwrap(),
            "--abusers" => a.abusers = v.parse().unwrap(),
            "--rounds" => a.rounds = v.parse().unwrap(),
            "--ring" => a.ring = v.parse().unwrap(),
            "--ring-complaints" => a.ring_complaints = v.parse().unwrap(),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

/// The population's events, pseudonymised like ingest does, interleaved like concurrently loading departments (the
/// tests' own preparation).
fn events(a: &Args) -> Vec<CaseEvent> {
    let params = GenParams {
        seed: a.seed,
        people: a.people,
        years: a.years,
        abuser_share: a.abusers,
        ..GenParams::default()
    };
    support::interleave(&support::population_with(&params).0)
}

/// The aggregator's batch cache, over encoded states standing in for sled.
struct Fold<'d> {
    disk: &'d mut HashMap<Vec<u8>, Vec<u8>>,
    persons: HashMap<PersonKey, PersonScreening>,
    relations: BTreeMap<Vec<u8>, RelationState>,
}

impl ScreeningStore for Fold<'_> {
    type Error = Infallible;

    fn person(&mut self, key: &PersonKey) -> Result<&mut PersonScreening, Infallible> {
        let disk = &*self.disk;
        Ok(self.persons.entry(*key).or_insert_with(|| {
            let mut k = b"s".to_vec();
            k.extend_from_slice(&key.0);
            disk.get(&k)
                .map(|v| PersonScreening::decode(v.as_slice()).unwrap())
                .unwrap_or_default()
        }))
    }

    fn relation(&mut self, key: &RelationKey) -> Result<&mut RelationState, Infallible> {
        let bytes = key.to_bytes();
        if !self.relations.contains_key(&bytes) {
            let mut k = b"r".to_vec();
            k.extend_from_slice(&bytes);
            let loaded = self
                .disk
                .get(&k)
                .map(|v| RelationState::decode(v.as_slice()).unwrap())
                .unwrap_or_default();
            self.relations.insert(bytes.clone(), loaded);
        }
        Ok(self.relations.get_mut(&bytes).unwrap())
    }
}

fn fold(screener: &Screener, events: &[CaseEvent]) -> (HashMap<Vec<u8>, Vec<u8>>, u64) {
    let mut disk: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut written = 0u64;
    for (b, chunk) in events.chunks(1_000).enumerate() {
        let mut cache = Fold {
            disk: &mut disk,
            persons: HashMap::new(),
            relations: BTreeMap::new(),
        };
        for (i, e) in chunk.iter().enumerate() {
            let seq = (b * 1_000 + i) as u64 + 1;
            screener.apply(&mut cache, e, seq).unwrap();
        }
        let Fold {
            persons, relations, ..
        } = cache;
        for (k, v) in persons {
            let mut key = b"s".to_vec();
            key.extend_from_slice(&k.0);
            let bytes = v.encode_to_vec();
            written += bytes.len() as u64;
            disk.insert(key, bytes);
        }
        for (k, v) in relations {
            let mut key = b"r".to_vec();
            key.extend_from_slice(&k);
            let bytes = v.encode_to_vec();
            written += bytes.len() as u64;
            disk.insert(key, bytes);
        }
    }
    (disk, written)
}

fn sizes(label: &str, mut v: Vec<usize>) {
    if v.is_empty() {
        println!("{label}: none");
        return;
    }
    v.sort_unstable();
    let mean = v.iter().sum::<usize>() as f64 / v.len() as f64;
    let p99 = v[(v.len() * 99 / 100).min(v.len() - 1)];
    println!(
        "{label}: {} states, mean {mean:.0} B, p50 {} B, p99 {p99} B, max {} B, total {:.1} MB",
        v.len(),
        v[v.len() / 2],
        v[v.len() - 1],
        v.iter().sum::<usize>() as f64 / 1e6
    );
}

/// `complaints` complaints on one merchant by `persons` persons, one every three hours in turn: sharing one phone,
/// address and text (`ring`), or each with their own.
fn ring_events(persons: usize, complaints: usize, ring: bool) -> Vec<CaseEvent> {
    use caselink_proto::v1::case_event::Payload;
    use caselink_proto::v1::{
        ClaimType, ComplaintReceived, Department, GoodsCategory, Merchant, Person,
    };
    const T0: i64 = 1_750_000_000;
    (0..complaints)
        .map(|k| {
            let who = k % persons;
            let own = |what: &str| {
                if ring {
                    format!("ring-{what}")
                } else {
                    format!("{what}-of-{who}")
                }
            };
            CaseEvent {
                event_id: format!("{:08x}-0000-4000-8000-{:012x}", k, who),
                department: Department::Market as i32,
                occurred_at: Some(caselink_proto::Timestamp {
                    seconds: T0 + k as i64 * 3 * 3_600,
                    nanos: 0,
                }),
                case_ref: format!("MK-{k}"),
                subject: Some(Person {
                    person_key: format!("{:064x}", who + 1),
                    phone_key: own("phone"),
                    address_key: own("address"),
                    ..Person::default()
                }),
                merchant: Some(Merchant {
                    name: "商户".to_owned(),
                    uscc: "91430600MA00000001".to_owned(),
                    category: GoodsCategory::Food as i32,
                }),
                summary: format!("本人在该店购买的牛奶已过期，要求十倍赔偿。{}", own("text")),
                payload: Some(Payload::ComplaintReceived(ComplaintReceived {
                    amount_fen: 3_000,
                    quantity: 1,
                    claim_type: ClaimType::Punitive10x as i32,
                    claimed_fen: 30_000,
                    ..ComplaintReceived::default()
                })),
                ..CaseEvent::default()
            }
        })
        .collect()
}

/// The best of `rounds` runs of the engine over `events` (memory store): seconds, the store, and a digest of the flag
/// changes, flags, links and figures (what the golden test compares: equal before and after a change of the engine),
/// taken on one more run outside the timing.
fn engine(screener: &Screener, events: &[CaseEvent], rounds: usize) -> (f64, MemoryStore, String) {
    use sha2::{Digest, Sha256};
    use std::fmt::Write as _;
    struct Hashing(Sha256);
    impl std::fmt::Write for Hashing {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.update(s.as_bytes());
            Ok(())
        }
    }
    let mut best = f64::MAX;
    for _ in 0..rounds.max(1) {
        let mut store = MemoryStore::new();
        let t = Instant::now();
        for (seq, e) in events.iter().enumerate() {
            screener.apply(&mut store, e, seq as u64 + 1).unwrap();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mut h = Hashing(Sha256::new());
    let mut store = MemoryStore::new();
    for (seq, e) in events.iter().enumerate() {
        for c in screener.apply(&mut store, e, seq as u64 + 1).unwrap() {
            writeln!(h, "{c:?}").unwrap();
        }
    }
    for p in store.persons.values() {
        writeln!(h, "{:?}\n{:?}\n{:?}", p.flags, p.links, p.figures).unwrap();
    }
    let digest = hex::encode(&h.0.finalize()[..8]);
    (best, store, digest)
}

fn ring_main(a: &Args) {
    let screener = Screener::new(RuleSet::default());
    for (label, ring) in [("ring", true), ("independent", false)] {
        let events = ring_events(a.ring, a.ring_complaints, ring);
        let n = events.len() as f64;
        let (secs, store, digest) = engine(&screener, &events, a.rounds);
        let flags: usize = store.persons.values().map(|p| p.flags.len()).sum();
        let links: usize = store.persons.values().map(|p| p.links.len()).sum();
        println!(
            "{label} ({} persons, {} complaints on one merchant): engine {:.0} events/s, {:.2} µs/event; flags {flags}, links {links}, digest {digest}",
            a.ring,
            events.len(),
            n / secs,
            secs * 1e6 / n,
        );
    }
}

fn main() {
    let a = args();
    if a.ring > 0 {
        ring_main(&a);
        return;
    }
    let t = Instant::now();
    let events = events(&a);
    println!(
        "{} persons, seed {}: {} events (generated in {:.1}s)",
        a.people,
        a.seed,
        events.len(),
        t.elapsed().as_secs_f64()
    );
    let screener = Screener::new(RuleSet::default());
    let n = events.len() as f64;

    let (best_engine, store, digest) = engine(&screener, &events, a.rounds);
    println!(
        "engine (memory store): {:.0} events/s, {:.2} µs/event (digest {digest})",
        n / best_engine,
        best_engine * 1e6 / n
    );

    let mut best_fold = f64::MAX;
    let mut written = 0;
    let mut disk = HashMap::new();
    for _ in 0..a.rounds {
        let t = Instant::now();
        (disk, written) = fold(&screener, &events);
        best_fold = best_fold.min(t.elapsed().as_secs_f64());
    }
    println!(
        "fold simulation (decode, apply, encode per batch of 1,000): {:.0} events/s, {:.2} µs/event, {:.1} MB encoded written",
        n / best_fold,
        best_fold * 1e6 / n,
        written as f64 / 1e6
    );

    let persons: Vec<usize> = store.persons.values().map(|p| p.encoded_len()).collect();
    sizes("person states", persons);
    let relations: Vec<usize> = store.relations.values().map(|r| r.encoded_len()).collect();
    let shared = store
        .relations
        .values()
        .filter(|r| r.persons.len() >= 2)
        .count();
    let texts = store
        .relations
        .keys()
        .filter(|k| matches!(k, RelationKey::Text(_)))
        .count();
    println!(
        "relations: {} ({} with 2+ persons, {} text)",
        store.relations.len(),
        shared,
        texts
    );
    sizes("relation states", relations);
    if std::env::var_os("SIZES").is_some() {
        breakdown(&store);
    }
    if std::env::var_os("RELATIONS").is_some() {
        relation_histogram(&store);
    }
    let flags: usize = store.persons.values().map(|p| p.flags.len()).sum();
    let links: usize = store.persons.values().map(|p| p.links.len()).sum();
    println!(
        "flags {flags}, links {links}, disk entries after fold {}",
        disk.len()
    );
}

fn relation_histogram(store: &MemoryStore) {
    let mut v: Vec<(usize, usize)> = store
        .relations
        .values()
        .filter(|r| r.persons.len() >= 2)
        .map(|r| (r.persons.len(), r.uses.len()))
        .collect();
    v.sort_unstable();
    println!("shared relations (persons, uses): {v:?}");
}

/// Where the bytes of the person states go (totals per field, MB).
fn breakdown(store: &MemoryStore) {
    fn list<T: Message>(v: &[T]) -> usize {
        v.iter().map(|x| x.encoded_len() + 2).sum()
    }
    let mut t = [0usize; 8];
    for p in store.persons.values() {
        t[0] += p.encoded_len();
        t[1] += list(&p.intakes);
        t[2] += list(&p.matter_links);
        t[3] += list(&p.contacts);
        t[4] += list(&p.findings);
        t[5] += list(&p.links);
        t[6] += list(&p.flags);
        t[7] += p.figures.as_ref().map_or(0, |f| f.encoded_len());
    }
    let names = [
        "total",
        "intakes",
        "matter_links",
        "contacts",
        "findings",
        "links",
        "flags",
        "figures",
    ];
    for (n, v) in names.iter().zip(t) {
        println!("  persons.{n}: {:.2} MB", v as f64 / 1e6);
    }
    let mut r = [0usize; 3];
    for x in store.relations.values() {
        r[0] += x.encoded_len();
        r[1] += x.persons.iter().map(|p| p.len() + 2).sum::<usize>();
        r[2] += list(&x.uses);
    }
    for (n, v) in ["total", "persons", "uses"].iter().zip(r) {
        println!("  relations.{n}: {:.2} MB", v as f64 / 1e6);
    }
}
