//! The sled projections and their key layout.
//!
//! One sled tree, so that a pulled batch's projection writes, event-id index entries and consumer position go in one
//! atomic `Batch`. Keys start with a one-byte table tag:
//!
//! | tag | key | value |
//! | --- | --- | --- |
//! | `e` | event uuid (16) | stream seq (8): the event-id index, for events without a person only (an event with a person is found by its timeline key, which holds its id and sequence) |
//! | `n` | person key (32) | the person's number (8, big-endian): [`PersonNumber`], given when their first event is folded |
//! | `p` | person number (8) | `PersonRow` protobuf: the `PersonRecord` (masks, counts, regions: every query reads it) and the person's screening state (`caselink_screening::PersonScreening`, skipped undecoded when only the record is read) |
//! | `p` | person number (8) ‖ `i` | latest `SealedIdentity` protobuf (ciphertext only) |
//! | `p` | person number (8) ‖ `t` ‖ its first entry's place: occurred_at µs (8, order-preserving) ‖ event uuid (16) | a timeline chunk: the person's events of one fold batch, each occurred µs (8) ‖ event uuid (16) ‖ stream seq (8) ‖ where the `CaseEvent` protobuf is in the event log (offset 8, length 4, CRC-32 4: [`crate::eventlog`]), in place order |
//! | `r` | relation key (`RelationKey::to_bytes`: tag ‖ the bytes of a phone, address or text key) | screening `RelationState` protobuf of a relation with more than one user |
//! | `u` | run id (4, big-endian) | a run of relations with one user: where its bytes (their keys and `RelationState`s) are in the event log (offset 8, length 4, CRC-32 4), then its entries' count and key digests ([`crate::runs`]) |
//! | `f` | region code (6) ‖ person key (32) | `FlaggedEntry`: the flagged-persons list, by region |
//! | `c` | region code (6) ‖ China day (4, order-preserving) | `CounterDay`: the situation counters of that region and day, (tag, name) → count (`crate::situation`) |
//! | `x` | stream seq (8) | why the message could not be folded (dead letter) |
//! | `o` | stream seq (8) ‖ index (4) | `OutboxEntry`: an alert not yet acknowledged by the derived stream |
//! | `m` | name | meta: `position` (u64), `states` (u64: `states_at`), `log` (u64: the event log's committed length), `numbers` (u64: the next person number), `version` (u32), `rules` (fingerprint) |
//!
//! Timeline chunks, `n`, `e`, identities, `o` and `x` are written with every batch, up to `position`; person rows, `r`, `u`,
//! `f` and `c` only at the fold's checkpoints, exactly as of `states_at` ([`crate::states`]). (`s`, the screening
//! states' own table until projection version 10, is in `p` now: one entry per person.)
//!
//! A person's row, identity and timeline chunks are one run of keys, `p ‖ person number …`: folding a person's events
//! inserts a chunk, writes the row back at the next checkpoint and, if the row was not cached, reads it just before,
//! all in one sled leaf, so a store bigger than sled's cache pulls one leaf from disk for them rather than two (until
//! projection version 20 the chunks were a table of their own, `t ‖ person`). Persons are numbered in the order they
//! first appear (until projection version 23 these keys began with the person key, a hash): the persons a stretch of
//! the stream is about (a department loading its history person by person, a claimant's burst of filings, the cases
//! that follow a complaint) share the leaves at the tree's growing end, which stay in sled's cache, where hashed keys
//! spread them over every leaf of a store many times the cache's size. `n` (person key → number) is small (~45 bytes a
//! person) and read once per person not in the fold's cache; a query reads it before the row.
//!
//! A timeline is one range scan over `p ‖ person number ‖ t` (the chunks that begin before the range's end), its entries
//! sorted by place, then one read of the event log per entry: the events' bytes live in `timeline.log` beside sled
//! ([`crate::eventlog`]), appended and synced before the sled batch that refers to them is applied. A person's events
//! of one batch share one chunk, so a claimant filing many records at once (or a department loading its history,
//! person by person) costs sled one insert, not one per record. Everything here is rebuildable from the stream.

use caselink_domain::PersonKey;
use caselink_proto::v1::{CaseEvent, SealedIdentity};
use prost::Message;

use crate::eventlog::{EventLog, Extent, LogError, Pending};
use crate::runs::{find_in_run, ref_extent, run_entries, run_key, GoneRun, RunIndex, RUN};
use crate::seen::TableFilter;

/// Bump when the layout or meaning of any projection changes: start-up then rebuilds from the stream.
pub const PROJECTION_VERSION: u32 = 23;

pub(crate) const EVENT_INDEX: u8 = b'e';
pub(crate) const PERSON: u8 = b'p';
/// `n ‖ person key` → the person's [`PersonNumber`].
pub(crate) const PERSON_NUMBER: u8 = b'n';
/// Suffix of a person's sealed identity key, `p ‖ number ‖ i`: beside the person's row, so the checkpoint that writes
/// both touches one sled leaf.
const IDENTITY_SUFFIX: u8 = b'i';
/// Suffix of a person's timeline chunks, `p ‖ number ‖ t ‖ place`: after the row and identity (see the module docs).
pub(crate) const TIMELINE: u8 = b't';
/// Length of a person's row key: `p` ‖ number (8).
const ROW_KEY_LEN: usize = 1 + 8;
/// Length of a timeline chunk's key: `p` ‖ number (8) ‖ `t` ‖ place (24).
const CHUNK_KEY_LEN: usize = ROW_KEY_LEN + 1 + 24;
pub(crate) const DEAD_LETTER: u8 = b'x';
pub(crate) const OUTBOX: u8 = b'o';
pub(crate) const RELATION: u8 = b'r';
pub(crate) const FLAGGED: u8 = b'f';
pub(crate) const COUNTER: u8 = b'c';
const META_POSITION: &[u8] = b"mposition";
const META_STATES: &[u8] = b"mstates";
const META_VERSION: &[u8] = b"mversion";
const META_RULES: &[u8] = b"mrules";
const META_LOG: &[u8] = b"mlog";
const META_NUMBERS: &[u8] = b"mnumbers";

/// Where a person's row, identity and timeline chunks are: `p ‖ number …`. Numbers are given in the order persons
/// first appear in the stream (`n ‖ person key` says whose), so the persons a stretch of the stream is about share
/// sled leaves, and those leaves stay in sled's cache while the stream is about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PersonNumber(pub(crate) u64);

/// Per-person summary kept beside the timeline.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PersonRecord {
    #[prost(string, tag = "1")]
    pub id_number_masked: String,
    #[prost(string, tag = "2")]
    pub name_masked: String,
    #[prost(string, tag = "3")]
    pub phone_masked: String,
    #[prost(uint64, tag = "4")]
    pub events: u64,
    #[prost(int64, tag = "5")]
    pub first_occurred_micros: i64,
    #[prost(int64, tag = "6")]
    pub last_occurred_micros: i64,
    /// Events by department, indexed by the `Department` enum number.
    #[prost(uint64, repeated, tag = "7")]
    pub by_department: Vec<u64>,
    /// Distinct region codes of the person's events (scopes regional roles), at most [`MAX_PERSON_REGIONS`].
    #[prost(string, repeated, tag = "8")]
    pub regions: Vec<String>,
    /// Region of the most recent event (by occurred_at): where the person is listed when flagged.
    #[prost(string, tag = "9")]
    pub latest_region: String,
    /// The region the person is listed under in the flagged list (`f`), empty when not listed.
    #[prost(string, tag = "10")]
    pub listed_region: String,
    /// Digest of the stored sealed identity (`SealedIdentity.digest`): a new copy is stored only when it differs.
    #[prost(bytes = "vec", tag = "11")]
    pub identity_digest: Vec<u8>,
}

/// A person's row (`p`): the record and the screening state, in one sled entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PersonRow {
    #[prost(message, optional, tag = "1")]
    pub record: Option<PersonRecord>,
    #[prost(message, optional, tag = "2")]
    pub screening: Option<caselink_screening::PersonScreening>,
}

/// A person's row read for the record alone: the screening state (field 2) is skipped, not decoded.
#[derive(Clone, PartialEq, prost::Message)]
struct PersonRowRecord {
    #[prost(message, optional, tag = "1")]
    record: Option<PersonRecord>,
}

/// Encodes a [`PersonRow`] from its two parts (the fold keeps them apart, and need not copy them into a row).
pub(crate) fn encode_person_row(
    record: &PersonRecord,
    screening: &caselink_screening::PersonScreening,
) -> Vec<u8> {
    let len = record.encoded_len() + screening.encoded_len() + 12;
    let mut out = Vec::with_capacity(len);
    prost::encoding::message::encode(1, record, &mut out);
    prost::encoding::message::encode(2, screening, &mut out);
    out
}

/// A stored person: their number, and their row with its encoded size if one was written.
pub(crate) type LoadedPerson = (PersonNumber, Option<(PersonRow, usize)>);

/// A stored relation: its state and its encoded size.
pub(crate) type LoadedRelation = (caselink_screening::RelationState, usize);

/// One person in the flagged list.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FlaggedEntry {
    /// Active flags' rules, in guideline order.
    #[prost(string, repeated, tag = "1")]
    pub rules: Vec<String>,
    /// Withdrawn flags' rules.
    #[prost(string, repeated, tag = "2")]
    pub withdrawn: Vec<String>,
    #[prost(uint64, tag = "3")]
    pub updated_seq: u64,
    #[prost(int64, tag = "4")]
    pub updated_us: i64,
}

/// An alert waiting in the outbox for the derived stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OutboxEntry {
    #[prost(string, tag = "1")]
    pub subject: String,
    #[prost(string, tag = "2")]
    pub msg_id: String,
    /// The encoded `Alert` (its cursor is the stream sequence it gets).
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
}

/// A `sled::Batch` being filled, counting what it holds (the fold reports it per batch), with the event bytes its
/// timeline entries refer to.
#[derive(Debug, Default)]
pub struct Writes {
    batch: sled::Batch,
    /// Event bytes for the log, appended before the batch is applied.
    log: Pending,
    /// Timeline entries by person, written as one chunk each when the batch is closed.
    timelines: foldhash::HashMap<PersonNumber, Vec<TimelineEntry>>,
    /// Persons given a number: the person filter learns them once the batch is applied.
    numbered: Vec<PersonKey>,
    /// The number the next new person gets, if this batch gave any: stored (`mnumbers`) when the batch is applied.
    next_number: Option<u64>,
    /// Inserts and removes.
    pub entries: usize,
    /// Bytes of keys and values inserted.
    pub bytes: usize,
    /// The same, by table.
    pub tables: TableWrites,
}

/// Entries and bytes written, by table tag (`a`..=`z`; the fold's debug log shows where a batch's writes go). Timeline
/// chunks count as `t`, though their keys are in `p`.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct TableWrites([(u32, u32); 26]);

impl TableWrites {
    /// Entries written to the table `tag`.
    pub fn entries(&self, tag: u8) -> u32 {
        tag.checked_sub(b'a')
            .and_then(|i| self.0.get(usize::from(i)))
            .map_or(0, |slot| slot.0)
    }

    fn add(&mut self, key: &[u8], bytes: usize) {
        let tag = if is_chunk_key(key) {
            Some(&TIMELINE)
        } else {
            key.first()
        };
        if let Some(slot) = tag
            .and_then(|t| t.checked_sub(b'a'))
            .and_then(|i| self.0.get_mut(usize::from(i)))
        {
            slot.0 = slot.0.saturating_add(1);
            slot.1 = slot
                .1
                .saturating_add(u32::try_from(bytes).unwrap_or(u32::MAX));
        }
    }
}

impl std::fmt::Debug for TableWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (tag, (entries, bytes)) in (b'a'..=b'z').zip(self.0.iter()) {
            if *entries > 0 {
                map.entry(&char::from(tag), &format_args!("{entries}/{bytes}B"));
            }
        }
        map.finish()
    }
}

impl Writes {
    /// An empty batch whose event bytes will go at `log_end` (the log's end once the batches before are applied).
    pub(crate) fn appending_at(log_end: u64) -> Writes {
        Writes {
            log: Pending::at(log_end),
            ..Writes::default()
        }
    }

    /// Gives `person` the number `number`: the next new person gets a greater one.
    pub(crate) fn number(&mut self, person: &PersonKey, number: PersonNumber) {
        self.insert(&number_key(person)[..], &number.0.to_be_bytes()[..]);
        self.numbered.push(*person);
        let next = number.0 + 1;
        self.next_number = Some(self.next_number.map_or(next, |held| held.max(next)));
    }

    /// A timeline entry of the person numbered `person`: `write` appends the event's bytes (an encoded `CaseEvent`)
    /// to the event log, the entry (in the person's chunk of this batch) says where.
    pub(crate) fn timeline(
        &mut self,
        person: PersonNumber,
        micros: i64,
        event_id: &uuid::Uuid,
        sequence: u64,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let extent = self.log.push(write);
        self.timelines
            .entry(person)
            .or_default()
            .push(TimelineEntry {
                place: place(micros, event_id),
                sequence,
                extent,
            });
    }

    /// A run's bytes ([`crate::runs`]), appended to the event log in blocks of their own; returns where they will be.
    pub(crate) fn run(&mut self, bytes: &[u8]) -> Extent {
        self.log.push_blocks(bytes)
    }

    /// Writes the timeline entries gathered so far: one chunk per person, keyed by its first place.
    pub(crate) fn close_timelines(&mut self) {
        for (person, mut entries) in std::mem::take(&mut self.timelines) {
            entries.sort_unstable_by_key(|e| e.place);
            let Some(first) = entries.first() else {
                continue;
            };
            let mut key = timeline_prefix(person);
            key.extend_from_slice(&first.place);
            let mut value = Vec::with_capacity(entries.len() * TimelineEntry::LEN);
            for entry in &entries {
                entry.encode(&mut value);
            }
            self.insert(key, value);
        }
    }

    /// The event log's end once this batch is applied.
    pub(crate) fn log_end(&self) -> u64 {
        self.log.end()
    }

    /// Event bytes this batch appends to the log.
    pub(crate) fn log_bytes(&self) -> usize {
        self.log.len()
    }

    pub(crate) fn insert(&mut self, key: impl Into<sled::IVec>, value: impl Into<sled::IVec>) {
        let (key, value) = (key.into(), value.into());
        self.entries += 1;
        self.bytes += key.len() + value.len();
        self.tables.add(&key, key.len() + value.len());
        self.batch.insert(key, value);
    }

    /// Gives `person` a number as the fold would, for tests that write timelines themselves: the first 8 bytes of
    /// their key.
    #[cfg(test)]
    pub(crate) fn number_for_test(&mut self, person: &PersonKey) -> PersonNumber {
        let mut first = [0u8; 8];
        first.copy_from_slice(&person.0[..8]);
        let number = PersonNumber(u64::from_be_bytes(first));
        self.number(person, number);
        number
    }

    pub(crate) fn remove(&mut self, key: impl Into<sled::IVec>) {
        let key = key.into();
        self.entries += 1;
        self.tables.add(&key, key.len());
        self.batch.remove(key);
    }
}

/// sled's page cache unless configured (its own default is 1 GiB).
pub const DEFAULT_SLED_CACHE: u64 = 640 << 20;

/// Regions remembered per person; beyond that the person is in scope of every regional role that matches any.
pub const MAX_PERSON_REGIONS: usize = 64;

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt projection value under {table}: {why}")]
    Corrupt { table: &'static str, why: String },
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Timeline entries whose bytes are read together ([`Store::timeline_raw`]).
const READ_STRETCH: usize = 32;

/// A relation found in a run: the run's id, its bytes, and where the relation's state is in them.
type FoundInRun = (u32, Vec<u8>, std::ops::Range<usize>);

/// What a checkpoint stored that the store's filters must learn once its batch is applied.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    pub(crate) relations: Vec<Vec<u8>>,
    /// Runs written ([`crate::runs`]): each run's id and its keys' digests.
    pub(crate) runs: Vec<(u32, Vec<u32>)>,
    /// Runs removed (compacted); their blocks are given back once the removal is flushed ([`Store::flush`]).
    pub(crate) gone_runs: Vec<GoneRun>,
}

/// The projections of one aggregator.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    /// Event ids folded so far, as a Bloom filter in front of the event-id index (see [`crate::seen`]).
    seen: std::sync::Arc<TableFilter>,
    /// Relation keys stored (`r`), the same way: most relations the fold looks up are new.
    relations: std::sync::Arc<TableFilter>,
    /// Persons with a number (`n`), the same way: a person's first event looks their number up, and it is not there.
    persons: std::sync::Arc<TableFilter>,
    /// The timeline's event bytes.
    log: std::sync::Arc<EventLog>,
    /// Which runs may hold a relation with one user ([`crate::runs`]).
    runs: std::sync::Arc<std::sync::RwLock<RunIndex>>,
    /// Taken by every write to the sled Db, either tree ([`Store::exclusive`]).
    writer: std::sync::Arc<std::sync::Mutex<()>>,
    /// Runs' bytes that applied batches stopped referring to: punched out of the event log after the next flush
    /// (a crash before it recovers a store that still refers to them).
    freed: std::sync::Arc<std::sync::Mutex<Vec<Extent>>>,
}

/// The seen-filter's digest of an event-id index key: the event id itself.
fn event_digest(key: &[u8]) -> Option<[u8; 16]> {
    key.try_into().ok()
}

/// The seen-filter's digests of an event-id index entry: the event id.
fn index_event_digests(key: &[u8], _value: &[u8], out: &mut Vec<[u8; 16]>) {
    out.extend(event_digest(key));
}

/// Whether `key` (with its tag) is a timeline chunk's: `p ‖ number ‖ t ‖ place`.
fn is_chunk_key(key: &[u8]) -> bool {
    key.first() == Some(&PERSON) && is_chunk_of_person(&key[1..])
}

/// [`is_chunk_key`] of a key of `p` without its tag: `number ‖ t ‖ place`, not a row or an identity.
fn is_chunk_of_person(key: &[u8]) -> bool {
    key.len() == CHUNK_KEY_LEN - 1 && key[ROW_KEY_LEN - 1] == TIMELINE
}

/// The seen-filter's digests of an entry of `p` that is a timeline chunk (rows and identities give none): its events'
/// ids. A chunk that does not decode cannot be read either (its timeline fails with "corrupt"); it is named here, at
/// start, with the way out.
fn chunk_event_digests(key: &[u8], value: &[u8], out: &mut Vec<[u8; 16]>) {
    if !is_chunk_of_person(key) {
        return;
    }
    match TimelineEntry::decode_all(value) {
        Some(entries) => out.extend(entries.iter().map(TimelineEntry::id)),
        None => tracing::error!(
            person_number = %hex::encode(key.get(..ROW_KEY_LEN - 1).unwrap_or(key)),
            "a timeline chunk does not decode: its events' duplicates cannot be recognised; rebuild the projections"
        ),
    }
}

/// The person filter's digest of a person number's key (`n` without its tag): the first half of the person key (an
/// HMAC output).
fn person_digest(key: &[u8]) -> Option<[u8; 16]> {
    if key.len() != 32 {
        return None;
    }
    key.get(..16)?.try_into().ok()
}

/// The relation filter's digest of a relation key.
fn relation_digest(key: &[u8]) -> Option<[u8; 16]> {
    Some(crate::seen::SeenFilter::digest(key))
}

/// Opens sled in `dir`. sled's file lock outlives the last handle of a closed Db by a moment (its thread pool
/// finishes writes it was handed), so a lock held is asked again for up to a second before it counts as another
/// process's.
fn open_db(dir: &std::path::Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let open = || {
        sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(cache_bytes)
            .open()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return Ok(opened?),
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`. Fails if another process has it open.
    pub fn open(dir: &std::path::Path) -> Result<Store, StoreError> {
        Store::open_with(dir, DEFAULT_SLED_CACHE)
    }

    /// [`Store::open`] with sled's page cache of `cache_bytes`.
    pub fn open_with(dir: &std::path::Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let db = open_db(dir, cache_bytes)?;
        let tree = db.open_tree("projections")?;
        // The persons with a number (the person filter's keys), then their timeline chunks (the events folded with a
        // person, for the seen filter).
        let started = std::time::Instant::now();
        let persons = TableFilter::load(&tree, PERSON_NUMBER, person_digest, "person")?;
        let mut folded = Vec::new();
        for item in tree.scan_prefix([PERSON]) {
            let (k, v) = item?;
            chunk_event_digests(&k[1..], &v, &mut folded);
        }
        for item in tree.scan_prefix([EVENT_INDEX]) {
            let (k, v) = item?;
            index_event_digests(&k[1..], &v, &mut folded);
        }
        let seen = TableFilter::of(&folded, event_digest, "seen", started);
        let relations = TableFilter::load(&tree, RELATION, relation_digest, "relation")?;
        let runs = RunIndex::load(&tree)?;
        let committed = tree.get(META_LOG)?.map(|v| be_u64(&v)).unwrap_or(0);
        let log = EventLog::open(dir, committed)?;
        Ok(Store {
            db,
            tree,
            seen: std::sync::Arc::new(seen),
            relations: std::sync::Arc::new(relations),
            persons: std::sync::Arc::new(persons),
            log: std::sync::Arc::new(log),
            runs: std::sync::Arc::new(std::sync::RwLock::new(runs)),
            writer: std::sync::Arc::default(),
            freed: std::sync::Arc::default(),
        })
    }

    /// Runs `write` (writes to the sled Db, either tree) while no other write runs. The sled in use
    /// (`third_party/sled/CASELINK-PATCH.md`) applies a batch without excluding readers, so the fold's preload and
    /// the queries read beside a long batch; writes must still not interleave (two batches inside one log
    /// reservation would not be recovered whole), and this lock is what keeps them apart.
    pub(crate) fn exclusive<T, E>(&self, write: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let _writing = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        write()
    }

    /// Applies `writes`: their event bytes are appended to the log and synced first, then the sled batch (with the
    /// log's new length) is applied. Flushing is the caller's.
    pub(crate) fn apply(&self, mut writes: Writes) -> Result<(), StoreError> {
        // The fold closes them itself (to count them in its stats); for any other writer, here. Closing twice writes
        // nothing more.
        writes.close_timelines();
        let Writes {
            mut batch,
            log,
            numbered,
            next_number,
            ..
        } = writes;
        self.exclusive(|| {
            if !log.is_empty() {
                self.log.append(&log)?;
                batch.insert(META_LOG, &log.end().to_be_bytes()[..]);
            }
            if let Some(next) = next_number {
                batch.insert(META_NUMBERS, &next.to_be_bytes()[..]);
            }
            self.tree.apply_batch(batch)?;
            Ok::<(), StoreError>(())
        })?;
        self.persons.note(numbered.iter().map(|p| &p.0[..]));
        Ok(())
    }

    /// The event log's end: where the next batch's event bytes go.
    pub(crate) fn log_end(&self) -> u64 {
        self.log.end()
    }

    /// Records the relations and runs a checkpoint just stored (after its batch was applied, like
    /// [`Store::note_folded`]); until then the fold's cache holds them.
    pub(crate) fn note_stored(&self, stored: &Stored) {
        self.relations
            .note(stored.relations.iter().map(Vec::as_slice));
        if !stored.runs.is_empty() || !stored.gone_runs.is_empty() {
            let mut index = self.run_index();
            for (run, digests) in &stored.runs {
                index.note(*run, digests);
            }
            index.forget(&stored.gone_runs);
        }
        if !stored.gone_runs.is_empty() {
            self.freed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(stored.gone_runs.iter().map(|gone| gone.extent));
        }
    }

    /// The runs' index (a panic elsewhere while it was held leaves it whole: every change is one call).
    pub(crate) fn run_index(&self) -> std::sync::RwLockWriteGuard<'_, RunIndex> {
        self.runs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs stored, their entries, and how many of those are superseded (for the metrics and the log).
    pub fn run_stats(&self) -> (usize, u64, u64) {
        self.runs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .stats()
    }

    /// Every relation the runs hold and `r` does not, with its state as of `states_at` (the newest run's):
    /// relation key → encoded `RelationState`. Reads every run: for checks and tests, not for serving.
    pub fn relations_in_runs(
        &self,
    ) -> Result<std::collections::BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
        let mut relations = std::collections::BTreeMap::new();
        // Runs in id order: a newer run's state replaces an older one's.
        for item in self.tree.scan_prefix([RUN]) {
            let (_, reference) = item?;
            let run = self.log.read(ref_extent(&reference)?)?;
            for entry in run_entries(&run) {
                let (key, state) = entry?;
                relations.insert(key.to_vec(), state.to_vec());
            }
        }
        let mut in_runs = std::collections::BTreeMap::new();
        for (key, state) in relations {
            if !self.tree.contains_key(relation_key(&key))? {
                in_runs.insert(key, state);
            }
        }
        Ok(in_runs)
    }

    /// A relation's state from the newest run that holds it, with its encoded size.
    fn load_from_runs(&self, relation: &[u8]) -> Result<Option<LoadedRelation>, StoreError> {
        let Some((run, value, state)) = self.newest_in_runs(relation)? else {
            return Ok(None);
        };
        let state = &value[state];
        let decoded =
            caselink_screening::RelationState::decode(state).map_err(|e| StoreError::Corrupt {
                table: "relation run",
                why: format!("run {run}: {e}"),
            })?;
        Ok(Some((decoded, state.len())))
    }

    /// The newest run holding `relation`: its id, its value and where the relation's state is in it. A run the index
    /// names may be gone: compaction removes a run one checkpoint after its live entries were copied into newer runs,
    /// and the index forgets it only once that batch is applied; a reader between the two finds every live entry of
    /// it in a newer run first.
    fn newest_in_runs(&self, relation: &[u8]) -> Result<Option<FoundInRun>, StoreError> {
        let runs = self
            .runs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .runs_of(relation);
        for run in runs {
            let Some((_, value)) = self.run(run)? else {
                continue;
            };
            if let Some(state) = find_in_run(&value, relation)? {
                return Ok(Some((run, value, state)));
            }
        }
        Ok(None)
    }

    /// Whether `relation` may have a state at `r` (the filter's answer: "no" is certain).
    pub(crate) fn may_be_at_r(&self, relation: &[u8]) -> bool {
        self.relations.may_contain(relation)
    }

    /// The run whose entry of `relation` is its stored state: the newest holding it, unless it is at `r`.
    pub(crate) fn newest_run_of(&self, relation: &[u8]) -> Result<Option<u32>, StoreError> {
        if self.may_be_at_r(relation) && self.tree.contains_key(relation_key(relation))? {
            return Ok(None);
        }
        Ok(self.newest_in_runs(relation)?.map(|(run, _, _)| run))
    }

    /// Run `id`'s bytes and where they are in the event log, if it is stored.
    pub(crate) fn run(&self, id: u32) -> Result<Option<(Extent, Vec<u8>)>, StoreError> {
        let Some(reference) = self.tree.get(run_key(id))? else {
            return Ok(None);
        };
        let extent = ref_extent(&reference)?;
        match self.log.read(extent) {
            Ok(bytes) => Ok(Some((extent, bytes))),
            // Removed, flushed and punched between the two reads (a compacted run: its live entries are in newer
            // runs): as if it were gone.
            Err(LogError::Checksum { .. }) if !self.tree.contains_key(run_key(id))? => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A person's number and their stored row with its encoded size; `None` when the person has no number (most
    /// often answered by the filter), no row when none was written yet (rows are written at checkpoints, numbers with
    /// the person's first timeline entry).
    pub(crate) fn load_person_row(
        &self,
        key: &PersonKey,
    ) -> Result<Option<LoadedPerson>, StoreError> {
        let Some(number) = self.number(key)? else {
            return Ok(None);
        };
        Ok(Some((number, self.load(&row_key(number), "person")?)))
    }

    /// The person's number, if they have one (see [`PersonNumber`]).
    pub(crate) fn number(&self, key: &PersonKey) -> Result<Option<PersonNumber>, StoreError> {
        if !self.persons.may_contain(&key.0) {
            return Ok(None);
        }
        match self.tree.get(number_key(key))? {
            None => Ok(None),
            Some(v) if v.len() == 8 => Ok(Some(PersonNumber(be_u64(&v)))),
            Some(v) => Err(StoreError::Corrupt {
                table: "person number",
                why: format!("{} bytes, not 8", v.len()),
            }),
        }
    }

    /// The number the next new person gets.
    pub(crate) fn next_number(&self) -> Result<u64, StoreError> {
        Ok(self
            .tree
            .get(META_NUMBERS)?
            .map(|v| be_u64(&v))
            .unwrap_or(0))
    }

    /// The value at the person's `key_of(number)`, if they have a number.
    fn person_value<K: AsRef<[u8]>>(
        &self,
        key: &PersonKey,
        key_of: impl FnOnce(PersonNumber) -> K,
    ) -> Result<Option<sled::IVec>, StoreError> {
        match self.number(key)? {
            None => Ok(None),
            Some(number) => Ok(self.tree.get(key_of(number))?),
        }
    }

    /// The person's row, if they have one.
    fn row(&self, key: &PersonKey) -> Result<Option<sled::IVec>, StoreError> {
        self.person_value(key, row_key)
    }

    /// A stored relation state with its encoded size; `None` when absent (most often answered by the filter and the
    /// runs' index). A relation at `r` (with more than one user) is newer than any run holding it.
    pub(crate) fn load_relation(
        &self,
        relation: &[u8],
    ) -> Result<Option<LoadedRelation>, StoreError> {
        if self.may_be_at_r(relation) {
            if let Some(loaded) =
                self.load::<caselink_screening::RelationState>(&relation_key(relation), "relation")?
            {
                return Ok(Some(loaded));
            }
        }
        self.load_from_runs(relation)
    }

    /// Records event ids just folded (after their batch was applied).
    pub(crate) fn note_folded(&self, ids: &[uuid::Uuid]) {
        self.seen.note(ids.iter().map(|id| &id.as_bytes()[..]));
    }

    /// Every stored key and value of the projections, in key order (for checks and diagnostics).
    pub fn entries(&self) -> sled::Iter {
        self.tree.iter()
    }

    /// The one tree of the projections, for tests that plant or remove entries.
    #[cfg(test)]
    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// The referral projection's own tree (`crate::referral::projection`): in the same sled Db, so one flush covers
    /// both, but apart from the case-event fold's tree.
    pub fn referrals_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree("referrals")?)
    }

    /// The tree of the determination projection ([`crate::determination::projection`]).
    pub fn determinations_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree("determinations")?)
    }

    /// [`Store::flush`] on the calling thread.
    pub(crate) fn flush_blocking(&self) -> Result<(), StoreError> {
        let freed = self.take_freed();
        self.db.flush()?;
        self.punch(&freed)
    }

    /// Durably writes everything applied so far; then gives back the blocks of the runs that batches applied before
    /// removed (nothing durable refers to them now).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let freed = self.take_freed();
        self.db.flush_async().await?;
        self.punch(&freed)
    }

    /// The runs' extents batches applied so far removed. Should the flush after fail, they are not punched: the disk
    /// keeps a few blocks nothing reads.
    fn take_freed(&self) -> Vec<Extent> {
        std::mem::take(
            &mut self
                .freed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn punch(&self, freed: &[Extent]) -> Result<(), StoreError> {
        if !freed.is_empty() {
            self.log.punch(freed)?;
        }
        Ok(())
    }

    /// The last stream sequence folded (0 when empty).
    pub fn position(&self) -> Result<u64, StoreError> {
        Ok(self
            .tree
            .get(META_POSITION)?
            .map(|v| be_u64(&v))
            .unwrap_or(0))
    }

    pub(crate) fn position_entry(sequence: u64) -> (&'static [u8], [u8; 8]) {
        (META_POSITION, sequence.to_be_bytes())
    }

    /// The last stream sequence the stored states (`p`, `r`, `f`, `c`) are as of; the fold resumes after it.
    pub fn states_at(&self) -> Result<u64, StoreError> {
        Ok(self.tree.get(META_STATES)?.map(|v| be_u64(&v)).unwrap_or(0))
    }

    pub(crate) fn states_entry(sequence: u64) -> (&'static [u8], [u8; 8]) {
        (META_STATES, sequence.to_be_bytes())
    }

    /// The stream sequence an event was folded under: from its timeline entry (`t` key of the event), or for an
    /// event without a person from the event-id index.
    pub(crate) fn folded_sequence(&self, at: &FoldedAt<'_>) -> Result<Option<u64>, StoreError> {
        match at {
            FoldedAt::Timeline { person, id } => self.timeline_sequence(person, id),
            FoldedAt::Index(id) => Ok(self
                .tree
                .get(event_index_key(id))?
                .filter(|v| v.len() >= 8)
                .map(|v| be_u64(&v))),
        }
    }

    /// Which of `ids` the person's timeline holds, at whatever time, each with the sequence it was folded under: one
    /// scan of the person's chunks, which stops once every id is found.
    pub(crate) fn timeline_sequences(
        &self,
        person: &PersonKey,
        ids: &[uuid::Uuid],
    ) -> Result<foldhash::HashMap<uuid::Uuid, u64>, StoreError> {
        let mut found = foldhash::HashMap::default();
        if ids.is_empty() {
            return Ok(found);
        }
        let Some(number) = self.number(person)? else {
            return Ok(found);
        };
        for item in self.tree.scan_prefix(timeline_prefix(number)) {
            let (_, chunk) = item?;
            let entries = TimelineEntry::decode_all(&chunk).ok_or_else(corrupt_chunk)?;
            for entry in entries {
                let id = uuid::Uuid::from_bytes(entry.id());
                if ids.contains(&id) {
                    found.insert(id, entry.sequence);
                    if found.len() == ids.len() {
                        return Ok(found);
                    }
                }
            }
        }
        Ok(found)
    }

    /// The sequence of the entry of event `id` in the person's timeline, at whatever time.
    fn timeline_sequence(
        &self,
        person: &PersonKey,
        id: &uuid::Uuid,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self.timeline_sequences(person, &[*id])?.remove(id))
    }

    /// A stored protobuf value and its encoded size.
    pub(crate) fn load<M: Message + Default>(
        &self,
        key: &[u8],
        table: &'static str,
    ) -> Result<Option<(M, usize)>, StoreError> {
        let Some(v) = self.tree.get(key)? else {
            return Ok(None);
        };
        let value = M::decode(v.as_ref()).map_err(|e| StoreError::Corrupt {
            table,
            why: e.to_string(),
        })?;
        Ok(Some((value, v.len())))
    }

    /// The stored projection version (None for an empty store).
    pub fn version(&self) -> Result<Option<u32>, StoreError> {
        Ok(self.tree.get(META_VERSION)?.map(|v| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&v[..4.min(v.len())]);
            u32::from_be_bytes(b)
        }))
    }

    /// Drops every projection and marks the store as of the current version at position 0.
    pub async fn reset(&self) -> Result<(), StoreError> {
        self.exclusive(|| self.tree.clear())?;
        // Durably nothing refers to the log before it is emptied.
        self.flush().await?;
        self.log.clear()?;
        self.seen.clear();
        self.relations.clear();
        self.persons.clear();
        self.run_index().clear();
        self.write_version()?;
        self.flush().await
    }

    /// Whether the store is empty or of the current version.
    pub fn is_current(&self) -> Result<bool, StoreError> {
        Ok(match self.version()? {
            Some(v) => v == PROJECTION_VERSION,
            None => self.position()? == 0,
        })
    }

    /// Marks a fresh store with the current version.
    pub fn stamp_version(&self) -> Result<(), StoreError> {
        if self.version()?.is_none() {
            self.write_version()?;
        }
        Ok(())
    }

    fn write_version(&self) -> Result<(), StoreError> {
        self.exclusive(|| {
            self.tree
                .insert(META_VERSION, &PROJECTION_VERSION.to_be_bytes())
        })?;
        Ok(())
    }

    /// Whether the event was folded before: for an event with a person, whether their timeline holds its id (at
    /// whatever time: the same record resubmitted with another time is still the same record); without a person,
    /// whether the event-id index does. The seen-filter answers "no" for almost every new event without reading
    /// sled; a "maybe" (a duplicate, or about 1 % of new events) reads the person's timeline chunks.
    #[cfg(test)]
    pub(crate) fn has_event(&self, at: &FoldedAt<'_>) -> Result<bool, StoreError> {
        if !self.may_have_seen(at) {
            return Ok(false);
        }
        Ok(self.folded_sequence(at)?.is_some())
    }

    /// The seen-filter's answer, without reading sled: false when the event was certainly never folded.
    pub(crate) fn may_have_seen(&self, at: &FoldedAt<'_>) -> bool {
        self.seen.may_contain(at.id().as_bytes())
    }

    /// The fingerprint of the screening rules the projections were built with.
    pub fn rules_fingerprint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(META_RULES)?.map(|v| v.to_vec()))
    }

    /// Records the fingerprint of the screening rules (after a rebuild with them, or on a fresh store).
    pub fn set_rules_fingerprint(&self, fingerprint: &[u8]) -> Result<(), StoreError> {
        self.exclusive(|| self.tree.insert(META_RULES, fingerprint))?;
        Ok(())
    }

    /// A person's record and screening state, from one read of their row.
    pub fn person_row(
        &self,
        key: &PersonKey,
    ) -> Result<Option<(PersonRecord, caselink_screening::PersonScreening)>, StoreError> {
        let row: Option<PersonRow> = decode_opt(self.row(key)?, "person")?;
        Ok(row.map(|r| {
            (
                r.record.unwrap_or_default(),
                r.screening.unwrap_or_default(),
            )
        }))
    }

    /// A person's screening state: facts per rule, links, flags and the abnormal-list figures.
    pub fn screening(
        &self,
        key: &PersonKey,
    ) -> Result<Option<caselink_screening::PersonScreening>, StoreError> {
        let row: Option<PersonRow> = decode_opt(self.row(key)?, "person")?;
        Ok(row.and_then(|r| r.screening))
    }

    /// A relation's screening state (at `r`, or in a run: see [`crate::runs`]).
    pub fn relation(
        &self,
        key: &[u8],
    ) -> Result<Option<caselink_screening::RelationState>, StoreError> {
        Ok(self.load_relation(key)?.map(|(state, _)| state))
    }

    /// Flagged persons whose listing region starts with `region_prefix`, from `after` (an exclusive key cursor).
    pub fn flagged(
        &self,
        region_prefix: &str,
        after: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<(String, PersonKey, FlaggedEntry), StoreError>> + '_ {
        let mut prefix = vec![FLAGGED];
        prefix.extend_from_slice(region_prefix.as_bytes());
        scan_after(&self.tree, prefix, after).map(|item| {
            let (k, v) = item?;
            if k.len() != 1 + 6 + 32 {
                return Err(StoreError::Corrupt {
                    table: "flagged",
                    why: "bad key length".into(),
                });
            }
            let region = String::from_utf8_lossy(&k[1..7]).into_owned();
            let mut key = [0u8; 32];
            key.copy_from_slice(&k[7..]);
            let entry = FlaggedEntry::decode(v.as_ref()).map_err(|e| StoreError::Corrupt {
                table: "flagged",
                why: e.to_string(),
            })?;
            Ok((region, PersonKey(key), entry))
        })
    }

    /// A region's stored situation counters of one day (empty when absent).
    pub(crate) fn counter_day(&self, key: &CounterKey) -> Result<CounterDay, StoreError> {
        Ok(decode_opt(self.tree.get(key)?, "counter")?.unwrap_or_default())
    }

    /// Every situation counter of the regions starting with `region_prefix` and days `from_day..to_day` (China days,
    /// see [`counter_key`]), as (region, day, counter tag, name, value). One range scan per region: regions are skipped
    /// past, their days outside the period are never read.
    pub(crate) fn counters(
        &self,
        region_prefix: &str,
        from_day: i32,
        to_day: i32,
    ) -> Result<Vec<CounterRow>, StoreError> {
        let mut prefix = vec![COUNTER];
        prefix.extend_from_slice(region_prefix.as_bytes());
        let mut rows = Vec::new();
        let mut cursor = prefix.clone();
        let short = || StoreError::Corrupt {
            table: "counter",
            why: "short key".into(),
        };
        loop {
            // The next region at or after the cursor.
            let Some(item) = self.tree.range(cursor.clone()..).next() else {
                break;
            };
            let (k, _) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            if k.len() < COUNTER_KEY_LEN {
                return Err(short());
            }
            let region: [u8; 6] = k[1..7].try_into().expect("6 bytes");
            if from_day < to_day {
                let start = counter_day_prefix(&region, from_day);
                let end = counter_day_prefix(&region, to_day);
                for item in self.tree.range(start..end) {
                    let (k, v) = item?;
                    let day = k
                        .get(7..COUNTER_KEY_LEN)
                        .and_then(|b| b.try_into().ok())
                        .map(decode_day)
                        .ok_or_else(short)?;
                    let counters =
                        CounterDay::decode(v.as_ref()).map_err(|e| StoreError::Corrupt {
                            table: "counter",
                            why: e.to_string(),
                        })?;
                    for c in counters.entries {
                        rows.push(CounterRow {
                            region: String::from_utf8_lossy(&region).into_owned(),
                            day,
                            tag: u8::try_from(c.tag).unwrap_or(0),
                            name: c.name,
                            value: c.value,
                        });
                    }
                }
            }
            // Past every key of this region.
            cursor = vec![COUNTER];
            cursor.extend_from_slice(&region);
            cursor.extend_from_slice(&[0xff; 5]);
        }
        Ok(rows)
    }

    /// The oldest `limit` outbox entries, with their keys.
    pub fn outbox(&self, limit: usize) -> Result<Vec<(Vec<u8>, OutboxEntry)>, StoreError> {
        self.tree
            .scan_prefix([OUTBOX])
            .take(limit)
            .map(|item| {
                let (k, v) = item?;
                let entry = OutboxEntry::decode(v.as_ref()).map_err(|e| StoreError::Corrupt {
                    table: "outbox",
                    why: e.to_string(),
                })?;
                Ok((k.to_vec(), entry))
            })
            .collect()
    }

    /// Removes published outbox entries.
    pub async fn remove_outbox(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(k.as_slice());
        }
        self.exclusive(|| self.tree.apply_batch(batch))?;
        self.flush().await
    }

    /// The summary of a person.
    pub fn person(&self, key: &PersonKey) -> Result<Option<PersonRecord>, StoreError> {
        let row: Option<PersonRowRecord> = decode_opt(self.row(key)?, "person")?;
        Ok(row.map(|r| r.record.unwrap_or_default()))
    }

    /// The latest sealed identity of a person (a state: as of `states_at`, like the person's row).
    pub fn sealed_identity(&self, key: &PersonKey) -> Result<Option<SealedIdentity>, StoreError> {
        match self.person_value(key, identity_key)? {
            None => Ok(None),
            Some(v) => {
                SealedIdentity::decode(v.as_ref())
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        table: "identity",
                        why: e.to_string(),
                    })
            }
        }
    }

    /// Timeline entries of `key` with `from_micros <= occurred < to_micros`, starting after `after` (an opaque
    /// cursor from [`TimelineRow::cursor`]), decoded.
    pub fn timeline(
        &self,
        key: &PersonKey,
        from_micros: i64,
        to_micros: i64,
        after: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<TimelineRow, StoreError>> + '_ {
        self.timeline_raw(key, from_micros, to_micros, after)
            .map(|row| {
                let raw = row?;
                let event = CaseEvent::decode(&raw.event[..]).map_err(|e| StoreError::Corrupt {
                    table: "timeline",
                    why: e.to_string(),
                })?;
                Ok(TimelineRow {
                    sequence: raw.sequence,
                    event,
                    cursor: raw.cursor,
                })
            })
    }

    /// [`Store::timeline`] without decoding the events: one range scan over the person's chunks that begin before
    /// `to_micros`, their entries in the range (and after `after`) sorted by place, then each entry's bytes from the
    /// event log as the iterator reaches it.
    pub(crate) fn timeline_raw(
        &self,
        key: &PersonKey,
        from_micros: i64,
        to_micros: i64,
        after: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<RawTimelineRow, StoreError>> + '_ {
        let (entries, failed) = match self.timeline_entries(key, from_micros, to_micros, after) {
            Ok(entries) => (entries, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let failed = failed.into_iter().map(Err);
        failed.chain(self.timeline_rows(entries))
    }

    /// The rows of `entries` (from [`Store::timeline_entries`]), in order, each with its event's bytes from the
    /// event log as the iterator reaches it.
    pub(crate) fn timeline_rows(
        &self,
        entries: Vec<TimelineEntry>,
    ) -> impl Iterator<Item = Result<RawTimelineRow, StoreError>> + '_ {
        // A stretch of entries at a time (a page may stop early), each stretch's bytes read with as few reads as lie
        // end to end in the log; after an error, nothing more.
        let mut entries = entries.into_iter();
        let mut ready: std::collections::VecDeque<Result<RawTimelineRow, StoreError>> =
            std::collections::VecDeque::new();
        std::iter::from_fn(move || {
            if ready.is_empty() {
                let stretch: Vec<TimelineEntry> = entries.by_ref().take(READ_STRETCH).collect();
                let extents: Vec<Extent> = stretch.iter().map(|e| e.extent).collect();
                match self.log.read_all(&extents) {
                    Ok(events) => {
                        ready.extend(stretch.into_iter().zip(events).map(|(entry, event)| {
                            Ok(RawTimelineRow {
                                sequence: entry.sequence,
                                event,
                                cursor: entry.place.to_vec(),
                            })
                        }));
                    }
                    Err(e) => {
                        entries = Vec::new().into_iter();
                        ready.push_back(Err(e.into()));
                    }
                }
            }
            ready.pop_front()
        })
    }

    /// The person's timeline entries with `from_micros <= occurred < to_micros` and a place after `after`, in place
    /// order (occurred µs, then event id).
    pub(crate) fn timeline_entries(
        &self,
        key: &PersonKey,
        from_micros: i64,
        to_micros: i64,
        after: Option<&[u8]>,
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        let Some(number) = self.number(key)? else {
            return Ok(Vec::new());
        };
        let lowest = place(from_micros, &uuid::Uuid::nil());
        let end = place(to_micros, &uuid::Uuid::nil());
        let start = timeline_prefix(number);
        let mut stop = start.clone();
        stop.extend_from_slice(&end[..8]);
        let mut entries = Vec::new();
        for item in self.tree.range(start..stop) {
            let (_, chunk) = item?;
            let chunk = TimelineEntry::decode_all(&chunk).ok_or_else(corrupt_chunk)?;
            entries.extend(chunk.into_iter().filter(|e| {
                e.place >= lowest && e.place < end && after.is_none_or(|a| e.place.as_slice() > a)
            }));
        }
        entries.sort_unstable_by_key(|e| e.place);
        Ok(entries)
    }
}

fn corrupt_chunk() -> StoreError {
    StoreError::Corrupt {
        table: "timeline",
        why: "a chunk's length is not a whole number of entries".into(),
    }
}

/// One event in a timeline chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimelineEntry {
    /// Occurred µs (order-preserving) ‖ event id: the entry's place in the person's timeline, and the paging cursor.
    place: [u8; 24],
    sequence: u64,
    extent: Extent,
}

impl TimelineEntry {
    /// Encoded size: place, sequence, extent.
    const LEN: usize = 24 + 8 + Extent::LEN;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.place);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        self.extent.encode(out);
    }

    /// The entries of a chunk; `None` unless it is a whole, non-zero number of them.
    fn decode_all(chunk: &[u8]) -> Option<Vec<TimelineEntry>> {
        if chunk.is_empty() || !chunk.len().is_multiple_of(Self::LEN) {
            return None;
        }
        chunk
            .chunks_exact(Self::LEN)
            .map(|e| {
                let (place, rest) = e.split_at(24);
                let (sequence, extent) = rest.split_at(8);
                Some(TimelineEntry {
                    place: place.try_into().ok()?,
                    sequence: be_u64(sequence),
                    extent: Extent::decode(extent)?,
                })
            })
            .collect()
    }

    fn id(&self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id.copy_from_slice(&self.place[8..]);
        id
    }

    /// Occurred µs ‖ event id: the entry's place in the timeline, and the paging cursor.
    pub(crate) fn place(&self) -> &[u8; 24] {
        &self.place
    }

    /// The stream sequence the event was folded under.
    #[cfg(test)]
    pub(crate) fn sequence(&self) -> u64 {
        self.sequence
    }
}

/// An entry's place: occurred µs ‖ event id.
pub(crate) fn place(micros: i64, event_id: &uuid::Uuid) -> [u8; 24] {
    let mut place = [0u8; 24];
    place[..8].copy_from_slice(&encode_micros(micros));
    place[8..].copy_from_slice(event_id.as_bytes());
    place
}

/// The entries of `tree` whose keys start with `prefix`, after `after` (exclusive: the last key of a previous page).
pub(crate) fn scan_after<'t>(
    tree: &'t sled::Tree,
    prefix: Vec<u8>,
    after: Option<&[u8]>,
) -> impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + 't {
    let start = match after {
        Some(a) if a > prefix.as_slice() => {
            let mut k = a.to_vec();
            k.push(0);
            k
        }
        _ => prefix.clone(),
    };
    tree.range(start..)
        .take_while(move |item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
}

/// One stored timeline entry.
#[derive(Debug, Clone)]
pub struct TimelineRow {
    pub sequence: u64,
    pub event: CaseEvent,
    cursor: Vec<u8>,
}

impl TimelineRow {
    /// Opaque position of this row within its person's timeline (for paging).
    pub fn cursor(&self) -> &[u8] {
        &self.cursor
    }
}

/// One stored timeline entry with the event's bytes as stored (the bus form without its sealed identity).
#[derive(Debug, Clone)]
pub(crate) struct RawTimelineRow {
    pub sequence: u64,
    pub event: Vec<u8>,
    /// Position within the person's timeline: occurred µs ‖ event id.
    pub cursor: Vec<u8>,
}

/// Order-preserving encoding of a signed microsecond timestamp.
pub(crate) fn encode_micros(micros: i64) -> [u8; 8] {
    ((micros as u64) ^ (1u64 << 63)).to_be_bytes()
}

/// Where a folded event is found: in its person's timeline, or for an event without a person in the event-id index.
pub(crate) enum FoldedAt<'a> {
    Timeline {
        person: &'a PersonKey,
        id: &'a uuid::Uuid,
    },
    Index(&'a uuid::Uuid),
}

impl FoldedAt<'_> {
    fn id(&self) -> &uuid::Uuid {
        match self {
            FoldedAt::Timeline { id, .. } | FoldedAt::Index(id) => id,
        }
    }
}

/// `p ‖ number ‖ t`: where the person's chunks are, each keyed further by its first place (occurred µs ‖ event id).
fn timeline_prefix(number: PersonNumber) -> Vec<u8> {
    let mut k = Vec::with_capacity(CHUNK_KEY_LEN);
    k.extend_from_slice(&row_key(number));
    k.push(TIMELINE);
    k
}

pub(crate) fn event_index_key(event_id: &uuid::Uuid) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = EVENT_INDEX;
    k[1..].copy_from_slice(event_id.as_bytes());
    k
}

/// `n ‖ person key`: the person's number.
pub(crate) fn number_key(key: &PersonKey) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = PERSON_NUMBER;
    k[1..].copy_from_slice(&key.0);
    k
}

/// `p ‖ number`: the person's row.
pub(crate) fn row_key(number: PersonNumber) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = PERSON;
    k[1..].copy_from_slice(&number.0.to_be_bytes());
    k
}

/// Key of a person's latest sealed identity: right after their row, `p ‖ number ‖ i`.
pub(crate) fn identity_key(number: PersonNumber) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[..9].copy_from_slice(&row_key(number));
    k[9] = IDENTITY_SUFFIX;
    k
}

pub(crate) fn relation_key(relation: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + relation.len());
    k.push(RELATION);
    k.extend_from_slice(relation);
    k
}

/// Key of a person in the flagged list under `region` (6 digits; shorter or malformed codes are padded).
pub(crate) fn flagged_key(region: &str, key: &PersonKey) -> [u8; 39] {
    let mut k = [b'0'; 39];
    k[0] = FLAGGED;
    for (slot, b) in k[1..7].iter_mut().zip(region.bytes()) {
        *slot = b;
    }
    k[7..].copy_from_slice(&key.0);
    k
}

/// One situation counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CounterRow {
    pub region: String,
    pub day: i32,
    pub tag: u8,
    pub name: String,
    pub value: u64,
}

/// Order-preserving encoding of a signed day number.
fn encode_day(day: i32) -> [u8; 4] {
    ((day as u32) ^ (1u32 << 31)).to_be_bytes()
}

fn decode_day(bytes: [u8; 4]) -> i32 {
    (u32::from_be_bytes(bytes) ^ (1u32 << 31)) as i32
}

fn counter_day_prefix(region: &[u8; 6], day: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 6 + 4);
    k.push(COUNTER);
    k.extend_from_slice(region);
    k.extend_from_slice(&encode_day(day));
    k
}

/// One counter record per region and China day. Records of 32 days were measured in session 4: a bulk load of years
/// of records touches thousands of region-days per checkpoint, and spans cut its counter writes from 0.24 to 0.014 per
/// event (100k events); but once caught up every small batch is a checkpoint, and each then rewrote a ~8 KB record
/// per region touched (the freshness p99 at 5,000 events/s went from 52 to 415 ms). Live folding is what the
/// aggregator does every day.
/// Key of a region's situation counters for one day: `c` ‖ region (6; shorter or malformed codes are padded with `0`)
/// ‖ China day (counted from 1970-01-01 in UTC+8; order-preserving).
pub(crate) type CounterKey = [u8; COUNTER_KEY_LEN];
pub(crate) const COUNTER_KEY_LEN: usize = 1 + 6 + 4;

pub(crate) fn counter_key(region: &str, day: i32) -> CounterKey {
    let mut k = [b'0'; COUNTER_KEY_LEN];
    k[0] = COUNTER;
    for (slot, b) in k[1..7].iter_mut().zip(region.bytes()) {
        *slot = b;
    }
    k[7..].copy_from_slice(&encode_day(day));
    k
}

/// The situation counters of one region and day (both in the key), sorted by (tag, name).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CounterDay {
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<Counter>,
}

/// One situation counter: tag (`crate::situation`: kind, raised, withdrawn, metric), name, count.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Counter {
    #[prost(uint32, tag = "1")]
    pub tag: u32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(uint64, tag = "3")]
    pub value: u64,
}

impl CounterDay {
    /// Adds every counter of `other`.
    pub(crate) fn merge(&mut self, other: &CounterDay) {
        for c in &other.entries {
            self.add(u8::try_from(c.tag).unwrap_or(0), &c.name, c.value);
        }
    }

    /// Adds `n` to the counter (tag, name).
    pub(crate) fn add(&mut self, tag: u8, name: &str, n: u64) {
        let tag = u32::from(tag);
        match self
            .entries
            .binary_search_by(|c| (c.tag, c.name.as_str()).cmp(&(tag, name)))
        {
            Ok(i) => self.entries[i].value = self.entries[i].value.saturating_add(n),
            Err(i) => self.entries.insert(
                i,
                Counter {
                    tag,
                    name: name.to_owned(),
                    value: n,
                },
            ),
        }
    }
}

fn decode_opt<M: Message + Default>(
    value: Option<sled::IVec>,
    table: &'static str,
) -> Result<Option<M>, StoreError> {
    value
        .map(|v| {
            M::decode(v.as_ref()).map_err(|e| StoreError::Corrupt {
                table,
                why: e.to_string(),
            })
        })
        .transpose()
}

pub(crate) fn outbox_key(sequence: u64, index: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = OUTBOX;
    k[1..9].copy_from_slice(&sequence.to_be_bytes());
    k[9..].copy_from_slice(&index.to_be_bytes());
    k
}

pub(crate) fn dead_letter_key(sequence: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = DEAD_LETTER;
    k[1..].copy_from_slice(&sequence.to_be_bytes());
    k
}

fn be_u64(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = v.len().min(8);
    b[..n].copy_from_slice(&v[..n]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Record `i` of person 3, at `i` µs, folded under sequence `10 + i`.
    fn push_event(writes: &mut Writes, i: u64) {
        let id = uuid::Uuid::from_u128(u128::from(i) + 1);
        let event = CaseEvent {
            event_id: id.to_string(),
            summary: format!("record {i}"),
            ..CaseEvent::default()
        };
        let number = writes.number_for_test(&PersonKey([3; 32]));
        writes.timeline(number, i as i64, &id, 10 + i, |out| {
            event.encode(out).unwrap()
        });
    }

    fn summaries(store: &Store) -> Vec<String> {
        store
            .timeline(&PersonKey([3; 32]), i64::MIN, i64::MAX, None)
            .map(|row| row.unwrap().event.summary)
            .collect()
    }

    /// The lock of a store held open is asked again for a moment, then refused naming the lock.
    #[test]
    fn a_store_held_open_elsewhere_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _held = Store::open(dir.path()).unwrap();
        match Store::open(dir.path()) {
            Ok(_) => panic!("opened a store held open"),
            Err(e) => assert!(e.to_string().contains("could not acquire lock"), "{e}"),
        }
    }

    /// More entries than one read stretch: every one read back in order; a corrupt byte in the log ends the
    /// timeline with an error at that entry (the stretches before it are whole), never with wrong bytes.
    #[test]
    fn a_timeline_longer_than_a_read_stretch_reads_whole_and_stops_at_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let n = 2 * READ_STRETCH as u64 + 5;
        let mut writes = Writes::appending_at(store.log_end());
        for i in 0..n {
            push_event(&mut writes, i);
        }
        store.apply(writes).unwrap();
        let expected: Vec<String> = (0..n).map(|i| format!("record {i}")).collect();
        assert_eq!(summaries(&store), expected);

        let bad = READ_STRETCH + 3;
        let entry = store
            .timeline_entries(&PersonKey([3; 32]), i64::MIN, i64::MAX, None)
            .unwrap()[bad];
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(crate::eventlog::FILE_NAME))
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, b"\xff", entry.extent.offset + 2).unwrap();
        let rows: Vec<_> = store
            .timeline(&PersonKey([3; 32]), i64::MIN, i64::MAX, None)
            .collect();
        assert_eq!(
            rows.len(),
            READ_STRETCH + 1,
            "a stretch whole, then the error"
        );
        assert!(rows[..READ_STRETCH].iter().all(Result::is_ok));
        assert!(
            matches!(
                rows[READ_STRETCH],
                Err(StoreError::Log(LogError::Checksum { offset, .. })) if offset == entry.extent.offset
            ),
            "{:?}",
            rows[READ_STRETCH].as_ref().err()
        );
    }

    #[tokio::test]
    async fn event_bytes_of_a_batch_sled_never_committed_are_cut_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let committed = {
            let store = Store::open(dir.path()).unwrap();
            let mut writes = Writes::appending_at(store.log_end());
            for i in 0..2 {
                push_event(&mut writes, i);
            }
            store.apply(writes).unwrap();
            store.flush().await.unwrap();
            let committed = store.log_end();
            // A crash after the next batch's bytes were synced but before its sled batch was applied.
            let mut lost = Writes::appending_at(committed);
            push_event(&mut lost, 2);
            store.log.append(&lost.log).unwrap();
            assert!(store.log_end() > committed);
            committed
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.log_end(), committed);
        let file = dir.path().join(crate::eventlog::FILE_NAME);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), committed);
        assert_eq!(summaries(&store), ["record 0", "record 1"]);
        // Folded again from the stream, the lost event goes where its bytes were cut.
        let mut again = Writes::appending_at(store.log_end());
        push_event(&mut again, 2);
        store.apply(again).unwrap();
        store.flush().await.unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(summaries(&store), ["record 0", "record 1", "record 2"]);
        let rows: Vec<u64> = store
            .timeline(&PersonKey([3; 32]), i64::MIN, i64::MAX, None)
            .map(|row| row.unwrap().sequence)
            .collect();
        assert_eq!(rows, [10, 11, 12]);
        // A reset empties the log with the projections.
        store.reset().await.unwrap();
        assert_eq!(store.log_end(), 0);
        assert!(summaries(&store).is_empty());
    }

    /// Persons are numbered in the order their first events are folded (not in the order of their keys), keep their
    /// number in later batches and sessions, and their rows and timelines are under it.
    #[test]
    fn persons_are_numbered_in_the_order_they_first_appear_and_keep_their_numbers() {
        use crate::testing::{complaint, numbered, screening};
        let dir = tempfile::tempdir().unwrap();
        let folder = screening();
        let [a, b, c, d] = [0xa1, 0x02, 0xc3, 0x04].map(|byte| PersonKey([byte; 32]));
        let encoded = |n: u128, person: &PersonKey| {
            complaint(n, person, &format!("{n:02x}").repeat(32)).encode_to_vec()
        };
        let numbers = |store: &Store, persons: &[PersonKey]| -> Vec<Option<u64>> {
            persons
                .iter()
                .map(|p| store.number(p).unwrap().map(|n| n.0))
                .collect()
        };
        {
            let store = Store::open(dir.path()).unwrap();
            let first = [
                encoded(1, &a),
                encoded(2, &b),
                encoded(3, &a),
                encoded(4, &c),
            ];
            crate::fold::fold_batch(&store, &folder, &numbered(&first, 1)).unwrap();
            assert_eq!(
                numbers(&store, &[a, b, c, d]),
                [Some(0), Some(1), Some(2), None]
            );
        }
        // Another session over the reopened store: the known keep theirs, the new get the next.
        let store = Store::open(dir.path()).unwrap();
        let second = [encoded(5, &d), encoded(6, &b)];
        crate::fold::fold_batch(&store, &folder, &numbered(&second, 5)).unwrap();
        assert_eq!(
            numbers(&store, &[a, b, c, d]),
            [Some(0), Some(1), Some(2), Some(3)]
        );
        assert_eq!(store.person(&a).unwrap().unwrap().events, 2);
        assert_eq!(store.person(&b).unwrap().unwrap().events, 2);
        let timeline = |p: &PersonKey| store.timeline(p, i64::MIN, i64::MAX, None).count();
        assert_eq!([a, b, c, d].map(|p| timeline(&p)), [2, 2, 1, 1]);
        // One row each, at `p ‖ number`, in the order the persons came.
        let rows: Vec<u64> = store
            .tree()
            .scan_prefix([PERSON])
            .keys()
            .map(|k| k.unwrap())
            .filter(|k| k.len() == ROW_KEY_LEN)
            .map(|k| be_u64(&k[1..]))
            .collect();
        assert_eq!(rows, [0, 1, 2, 3]);
    }

    /// A person's events of one batch share a chunk; the timeline reads them in place order across chunks, within a
    /// time range and after a cursor, and an event is found in whichever chunk holds it (also by the seen-filter
    /// after reopening).
    #[tokio::test]
    async fn a_timeline_reads_in_place_order_across_its_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let person = PersonKey([5; 32]);
        let id = |t: i64| uuid::Uuid::from_u128(t as u128);
        let write = |store: &Store, times: &[i64], first_sequence: u64| {
            let mut writes = Writes::appending_at(store.log_end());
            let number = writes.number_for_test(&person);
            for (n, &t) in times.iter().enumerate() {
                let event = CaseEvent {
                    event_id: id(t).to_string(),
                    summary: format!("at {t}"),
                    ..CaseEvent::default()
                };
                writes.timeline(number, t, &id(t), first_sequence + n as u64, |out| {
                    event.encode(out).unwrap();
                });
            }
            store.apply(writes).unwrap();
        };
        let summaries = |store: &Store, from: i64, to: i64, after: Option<&[u8]>| {
            store
                .timeline(&person, from, to, after)
                .map(|row| row.unwrap().event.summary)
                .collect::<Vec<_>>()
        };
        {
            let store = Store::open(dir.path()).unwrap();
            write(&store, &[9, 1, 5], 1);
            write(&store, &[7, 3], 4);
            assert_eq!(
                store
                    .tree()
                    .scan_prefix([PERSON])
                    .keys()
                    .filter(|k| is_chunk_key(k.as_ref().expect("key")))
                    .count(),
                2,
                "one chunk per batch"
            );
            assert_eq!(
                summaries(&store, i64::MIN, i64::MAX, None),
                ["at 1", "at 3", "at 5", "at 7", "at 9"]
            );
            assert_eq!(summaries(&store, 3, 9, None), ["at 3", "at 5", "at 7"]);
            let third = store
                .timeline(&person, i64::MIN, i64::MAX, None)
                .nth(2)
                .unwrap()
                .unwrap();
            assert_eq!(third.sequence, 3);
            assert_eq!(
                summaries(&store, i64::MIN, i64::MAX, Some(third.cursor())),
                ["at 7", "at 9"]
            );
            let sequence_of = |t: i64| {
                let id = id(t);
                store
                    .folded_sequence(&FoldedAt::Timeline {
                        person: &person,
                        id: &id,
                    })
                    .unwrap()
            };
            assert_eq!(
                sequence_of(7),
                Some(4),
                "in the second chunk, not its first"
            );
            assert_eq!(sequence_of(5), Some(3));
            assert_eq!(sequence_of(4), None);
            store.flush().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        for t in [1, 3, 5, 7, 9] {
            let found = store
                .has_event(&FoldedAt::Timeline {
                    person: &person,
                    id: &id(t),
                })
                .unwrap();
            assert!(found, "event at {t} found after reopening");
        }
    }

    /// A folded event found again however it comes back: by its timeline entry (same person and time, or another
    /// time), after the store is reopened (the seen-filter loaded from the timeline's keys) as before; an event
    /// without a person by the event-id index.
    #[tokio::test]
    async fn an_event_id_is_folded_once_per_timeline_across_reopening() {
        use crate::fold::{fold_batch, Folder};
        let dir = tempfile::tempdir().unwrap();
        let at = |seconds: i64| caselink_proto::Timestamp { seconds, nanos: 0 };
        let with_person = |person: u8, seconds: i64| {
            CaseEvent {
                event_id: uuid::Uuid::from_u128(7).to_string(),
                occurred_at: Some(at(seconds)),
                region_code: "430602".into(),
                subject: Some(caselink_proto::v1::Person {
                    person_key: PersonKey([person; 32]).to_hex(),
                    ..Default::default()
                }),
                ..CaseEvent::default()
            }
            .encode_to_vec()
        };
        let without_person = CaseEvent {
            event_id: uuid::Uuid::from_u128(8).to_string(),
            occurred_at: Some(at(1_700_000_000)),
            ..CaseEvent::default()
        }
        .encode_to_vec();
        let original = with_person(3, 1_700_000_000);
        let fold = |store: &Store, sequence: u64, bytes: &[u8]| {
            let stats = fold_batch(store, &Folder::plain(), &[(sequence, bytes)]).unwrap();
            (stats.folded, stats.duplicates)
        };
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(fold(&store, 1, &original), (1, 0));
            assert_eq!(fold(&store, 2, &without_person), (1, 0));
            assert_eq!(fold(&store, 3, &original), (0, 1));
            store.flush().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(fold(&store, 4, &original), (0, 1), "after reopening");
        assert_eq!(
            fold(&store, 5, &with_person(3, 1_700_086_400)),
            (0, 1),
            "the same id at another time of the same person"
        );
        assert_eq!(fold(&store, 6, &without_person), (0, 1));
        let entries: Vec<u64> = store
            .timeline(&PersonKey([3; 32]), i64::MIN, i64::MAX, None)
            .map(|row| row.unwrap().sequence)
            .collect();
        assert_eq!(entries, [1]);
        let person = store.person(&PersonKey([3; 32])).unwrap().unwrap();
        assert_eq!(person.events, 1);
        // The fold finds the person's row through the person filter: noted when written, loaded at reopening.
        assert!(store
            .load_person_row(&PersonKey([3; 32]))
            .unwrap()
            .is_some());
        assert!(store
            .load_person_row(&PersonKey([4; 32]))
            .unwrap()
            .is_none());
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = Store::open(fresh_dir.path()).unwrap();
        assert_eq!(fold(&fresh, 1, &with_person(9, 1_700_000_000)), (1, 0));
        assert!(
            fresh
                .load_person_row(&PersonKey([9; 32]))
                .unwrap()
                .is_some(),
            "noted once its batch is applied"
        );
        // Only the subject-less event has an event-id index entry.
        let index: Vec<_> = store
            .tree()
            .scan_prefix([EVENT_INDEX])
            .map(|kv| kv.unwrap().0.to_vec())
            .collect();
        assert_eq!(index, [event_index_key(&uuid::Uuid::from_u128(8)).to_vec()]);
    }

    #[test]
    fn micros_encoding_preserves_order_across_zero() {
        let values = [
            i64::MIN,
            -5_000_000,
            -1,
            0,
            1,
            1_700_000_000_000_000,
            i64::MAX,
        ];
        for pair in values.windows(2) {
            assert!(encode_micros(pair[0]) < encode_micros(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn day_encoding_preserves_order_and_round_trips() {
        let days = [i32::MIN, -1, 0, 1, 20_089, i32::MAX];
        for pair in days.windows(2) {
            assert!(encode_day(pair[0]) < encode_day(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn the_relation_filter_knows_every_stored_relation_through_growth_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let key = |i: u32| format!("p{i:064x}").into_bytes();
        // A stored state has a user (one without is a pointer to a state beside a row).
        let state = caselink_screening::RelationState {
            latest_us: 5,
            persons: vec![vec![7; 32]],
            ..Default::default()
        };
        let n = 70_000; // past the filter's first capacity (65,536): it grows a layer while filling
        {
            let store = Store::open(dir.path()).unwrap();
            for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
                let keys: Vec<Vec<u8>> = chunk.iter().map(|i| key(*i)).collect();
                let mut batch = sled::Batch::default();
                for k in &keys {
                    batch.insert(relation_key(k), state.encode_to_vec());
                }
                // As the fold does: applied first, then noted.
                store.tree().apply_batch(batch).unwrap();
                store.note_stored(&Stored {
                    relations: keys,
                    ..Stored::default()
                });
            }
            assert!((0..n).all(|i| store.load_relation(&key(i)).unwrap().is_some()));
            assert!(store.load_relation(b"pnever").unwrap().is_none());
        }
        let store = Store::open(dir.path()).unwrap();
        assert!((0..n).all(|i| store.load_relation(&key(i)).unwrap().unwrap().0 == state));
    }

    #[test]
    fn counters_of_a_period_are_its_days_across_regions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Days around the order-preserving encoding's sign bit and far apart, in two regions.
        let days = [-33, -1, 0, 31, 32, 63, 64, 20_089];
        let mut records: std::collections::HashMap<CounterKey, CounterDay> = Default::default();
        for (i, day) in days.into_iter().enumerate() {
            for region in ["430602", "430603"] {
                let record = records.entry(counter_key(region, day)).or_default();
                record.add(b'k', "complaint.received", i as u64 + 1);
                record.add(b'k', "complaint.received", 1);
            }
        }
        // Merging an increment into a stored record adds to it.
        let key = counter_key("430602", 31);
        let mut more = CounterDay::default();
        more.add(b'k', "complaint.received", 100);
        records.get_mut(&key).unwrap().merge(&more);
        for (k, v) in &records {
            store.tree().insert(&k[..], v.encode_to_vec()).unwrap();
        }
        let rows = store.counters("430602", 0, 64).unwrap();
        let got: Vec<(i32, u64)> = rows.iter().map(|r| (r.day, r.value)).collect();
        // days[2..6] are 0, 31, 32, 63: values i + 2, plus 100 on day 31.
        assert_eq!(got, vec![(0, 4), (31, 105), (32, 6), (63, 7)]);
        assert!(rows.iter().all(|r| r.region == "430602"));
        let both = store.counters("4306", -33, 0).unwrap();
        let got: Vec<(&str, i32)> = both.iter().map(|r| (r.region.as_str(), r.day)).collect();
        assert_eq!(
            got,
            vec![
                ("430602", -33),
                ("430602", -1),
                ("430603", -33),
                ("430603", -1)
            ]
        );
        assert!(store.counters("430602", 5, 5).unwrap().is_empty());
    }
}
