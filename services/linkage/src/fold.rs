//! The fold: one pulled batch of stream messages → one atomic sled batch.
//!
//! Exactly once: a message at or below the stored `states_at` was folded before (a redelivery after a crash between
//! flush and ack) and is skipped, as is one this session's states already took (delivered again after the ack
//! wait); one at or below `position` was folded but its effect on the states was not yet written back, and is
//! applied to the states only ([`crate::states`]); an event whose id its person's timeline
//! already holds (or, for an event without a person, the event-id index: a duplicate that slipped past the bus's
//! dedup window) is skipped. The timeline entries, the event-id index entries, the sealed identities, the alert
//! outbox and the new position are written in the same `sled::Batch`, and with a
//! checkpoint the states (person records among them) too, so a crash leaves either all of a batch or none of it.
//!
//! The screener works on the fold's [`StateCache`]: every touched state is read from sled once per cache life and
//! written back once per checkpoint.

use foldhash::HashSet;
use std::sync::Arc;

use caselink_domain::PersonKey;
use caselink_proto::v1::{Alert, AlertKind, CaseEvent};
use caselink_screening::{FlagChange, Screener};
use prost::Message;

use crate::states::{CachePolicy, Preloaded, StateCache, Working};
use crate::store::{
    dead_letter_key, event_index_key, outbox_key, FoldedAt, PersonRecord, Store, StoreError,
    Stored, Writes,
};

/// What the fold does besides the timeline: screening, and whether flag changes are announced as alerts.
#[derive(Clone, Debug)]
pub struct Folder {
    /// `None` folds timelines and person records only.
    pub screener: Option<Arc<Screener>>,
    /// Write alerts to the outbox (live folding); a rebuild recomputes flags without announcing them again.
    pub alerts: bool,
}

impl Folder {
    /// Timelines and person records only.
    pub fn plain() -> Folder {
        Folder {
            screener: None,
            alerts: false,
        }
    }
}

/// What one fold call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FoldStats {
    /// Newly folded events.
    pub folded: usize,
    /// Events whose id was folded before (not counted again).
    pub duplicates: usize,
    /// Messages the states already hold (redelivered: at or below `states_at`, or taken before in this session).
    pub redelivered: usize,
    /// Messages that could not be decoded, kept aside under their sequence.
    pub dead_letters: usize,
    /// Alerts written to the outbox.
    pub alerts: usize,
    /// Messages folded before but not yet into the states, applied to the states only (see [`crate::states`]).
    pub replayed: usize,
    /// The stored position after the batch.
    pub position: u64,
    /// The sequence the stored states are as of, after the batch.
    pub states_at: u64,
    /// Whether the batch wrote the states back.
    pub checkpoint: bool,
    /// Entries (inserts and removes) and bytes the batch wrote to sled.
    pub writes: usize,
    pub bytes: usize,
    /// The same, by table.
    pub tables: crate::store::TableWrites,
    /// Event bytes the batch appended to the event log (the timeline entries in sled say where).
    pub log_bytes: usize,
    /// Microseconds spent folding it into the cache and the batch, applying it to sled, and flushing.
    pub prepare_us: u64,
    pub apply_us: u64,
    pub flush_us: u64,
    /// Of `prepare_us` and `apply_us`: microseconds the thread ran, and waited for a core (Linux; 0 elsewhere). The
    /// rest of the time it slept (I/O, locks).
    pub prepare_cpu_us: u64,
    pub prepare_runq_us: u64,
    pub apply_cpu_us: u64,
    pub apply_runq_us: u64,
    /// Person rows and relations its preparation read from sled (not in the fold's cache).
    pub loaded_persons: u64,
    pub loaded_relations: u64,
    /// Events its preparation looked up in sled (the seen-filter's "maybe", or a replay) because no preload had.
    pub looked_up_events: u64,
}

pub(crate) fn micros_since(started: std::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The calling thread's time on a core and waiting for one, in µs (`/proc/thread-self/schedstat`; zeros where there
/// is none).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ThreadTimes {
    cpu_us: u64,
    runq_us: u64,
}

impl ThreadTimes {
    pub(crate) fn now() -> ThreadTimes {
        let Ok(text) = std::fs::read_to_string("/proc/thread-self/schedstat") else {
            return ThreadTimes::default();
        };
        let mut fields = text
            .split_ascii_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0));
        ThreadTimes {
            cpu_us: fields.next().unwrap_or(0) / 1_000,
            runq_us: fields.next().unwrap_or(0) / 1_000,
        }
    }

    /// (on a core, waiting for one) since `self`.
    pub(crate) fn since(self) -> (u64, u64) {
        let now = ThreadTimes::now();
        (
            now.cpu_us.saturating_sub(self.cpu_us),
            now.runq_us.saturating_sub(self.runq_us),
        )
    }
}

/// Folds `messages` (stream sequence, encoded `CaseEvent`), in order, into a fresh [`StateCache`] and the store, as
/// one atomic batch that also checkpoints every state. The caller flushes before acknowledging. (The consumer keeps
/// its cache across batches and checkpoints less often: [`fold_into`].)
pub fn fold_batch(
    store: &Store,
    folder: &Folder,
    messages: &[(u64, &[u8])],
) -> Result<FoldStats, StoreError> {
    let mut cache = StateCache::open(store, CachePolicy::default())?;
    fold_into(store, folder, &mut cache, messages, true)
}

/// A batch folded into the cache and written into a `sled::Batch`, not yet applied to the store.
pub struct Prepared {
    pub(crate) batch: Writes,
    pub stats: FoldStats,
    /// The events it folds (for the seen-filter, once applied).
    pub(crate) ids: Vec<uuid::Uuid>,
    /// The relations and person rows its checkpoint stores (for the store's filters, once applied).
    pub(crate) stored: Stored,
    /// The checkpoint it carries.
    pub(crate) checkpoint: Option<u64>,
}

impl Prepared {
    /// Applies the batch to the store (the caller flushes, then tells the cache: [`Prepared::applied`]).
    pub fn apply(self, store: &Store) -> Result<Applied, StoreError> {
        let started = std::time::Instant::now();
        let times = ThreadTimes::now();
        let mut stats = self.stats;
        stats.writes = self.batch.entries;
        stats.bytes = self.batch.bytes;
        stats.tables = self.batch.tables;
        stats.log_bytes = self.batch.log_bytes();
        store.apply(self.batch)?;
        store.note_folded(&self.ids);
        store.note_stored(&self.stored);
        stats.apply_us = micros_since(started);
        (stats.apply_cpu_us, stats.apply_runq_us) = times.since();
        Ok(Applied {
            stats,
            checkpoint: self.checkpoint,
            ids: self.ids,
        })
    }
}

/// A prepared batch after it was applied.
#[derive(Debug, Clone)]
pub struct Applied {
    pub stats: FoldStats,
    checkpoint: Option<u64>,
    /// Its events, now in sled (and its seen-filter).
    ids: Vec<uuid::Uuid>,
}

impl Applied {
    /// Tells the cache that what the batch wrote is in the store: its checkpoint's states may leave the cache, and
    /// its events are found in sled by later batches' duplicate checks.
    pub fn settle(&self, cache: &mut StateCache) {
        if let Some(generation) = self.checkpoint {
            cache.checkpoint_applied(generation);
        }
        for id in &self.ids {
            cache.inflight_ids.remove(id);
        }
    }
}

/// [`prepare`], then apply; the caller flushes before acknowledging.
pub fn fold_into(
    store: &Store,
    folder: &Folder,
    cache: &mut StateCache,
    messages: &[(u64, &[u8])],
    checkpoint: bool,
) -> Result<FoldStats, StoreError> {
    let applied = prepare(store, folder, cache, messages, checkpoint)?.apply(store)?;
    applied.settle(cache);
    Ok(applied.stats)
}

/// Folds `messages` (stream sequence, encoded `CaseEvent`), in order, into `cache` and one atomic `sled::Batch`;
/// with `checkpoint`, the batch also writes every dirty state and moves `states_at` (see [`crate::states`]). Messages
/// must continue from the cache's `states_at`: the ones at or below its `position` are replays, applied to the states
/// only. The batch prepared before may still be being applied meanwhile (its events are remembered in the cache for
/// the duplicate check); it must be applied before this one.
pub fn prepare(
    store: &Store,
    folder: &Folder,
    cache: &mut StateCache,
    messages: &[(u64, &[u8])],
    checkpoint: bool,
) -> Result<Prepared, StoreError> {
    prepare_preloaded(
        store,
        folder,
        cache,
        messages,
        checkpoint,
        &Preloaded::default(),
    )
}

/// [`prepare`] after [`StateCache::preload`] of `messages` (or of messages that include them): the possible duplicates
/// and replays are answered by what the preload read.
pub(crate) fn prepare_preloaded(
    store: &Store,
    folder: &Folder,
    cache: &mut StateCache,
    messages: &[(u64, &[u8])],
    checkpoint: bool,
    preloaded: &Preloaded,
) -> Result<Prepared, StoreError> {
    cache.evict();
    let position = cache.position;
    let states_at = cache.states_at;
    let mut stats = FoldStats {
        position,
        states_at,
        ..FoldStats::default()
    };
    let mut applied = cache.states_through;
    let started = std::time::Instant::now();
    let times = ThreadTimes::now();
    let loads = cache.loads;
    let mut batch = Writes::appending_at(cache.log_end);
    let mut seen: HashSet<uuid::Uuid> = HashSet::default();
    for &(sequence, bytes) in messages {
        // Already in the cached states: checkpointed before this session (a redelivery after a crash between flush
        // and ack), or taken earlier in this session and delivered again after the ack wait. Only a message above
        // them may be a replay, whose timeline entry an earlier session wrote (never a batch still being applied).
        if sequence <= applied {
            stats.redelivered += 1;
            continue;
        }
        // Folded before, but not yet into the states (a crash or a new session since the last checkpoint).
        let replay = sequence <= position;
        applied = applied.max(sequence);
        stats.position = stats.position.max(sequence);
        let mut event = match CaseEvent::decode(bytes) {
            Ok(e) => e,
            Err(e) => {
                if !replay {
                    let why = format!("undecodable CaseEvent: {e}");
                    dead_letter(&mut batch, &mut stats, sequence, &why);
                }
                continue;
            }
        };
        let Ok(event_id) = uuid::Uuid::parse_str(&event.event_id) else {
            if !replay {
                dead_letter(&mut batch, &mut stats, sequence, "event_id is not a UUID");
            }
            continue;
        };
        let person = match event
            .subject
            .as_ref()
            .map(|s| PersonKey::from_hex(&s.person_key))
        {
            None => None,
            Some(Ok(key)) => Some(key),
            Some(Err(_)) => {
                if !replay {
                    let why = "subject.person_key is not a person key";
                    dead_letter(&mut batch, &mut stats, sequence, why);
                }
                continue;
            }
        };
        let micros = occurred_micros(&event);
        let at = match &person {
            Some(person) => FoldedAt::Timeline {
                person,
                id: &event_id,
            },
            None => FoldedAt::Index(&event_id),
        };
        if replay {
            // Only what the first fold applied: its timeline entry (or index entry) names the sequence it was
            // folded under.
            let folded = match preloaded.folded.get(&event_id) {
                Some(&folded) => folded,
                None => {
                    stats.looked_up_events += 1;
                    store.folded_sequence(&at)?
                }
            };
            if folded != Some(sequence) {
                continue;
            }
            stats.replayed += 1;
        } else if !seen.insert(event_id)
            || cache.inflight_ids.contains(&event_id)
            || match preloaded.folded.get(&event_id) {
                Some(folded) => folded.is_some(),
                // Without a preload: sled is asked only on the seen-filter's "maybe".
                None if store.may_have_seen(&at) => {
                    stats.looked_up_events += 1;
                    store.folded_sequence(&at)?.is_some()
                }
                None => false,
            }
        {
            stats.duplicates += 1;
            continue;
        }
        if let Some(key) = person {
            if let Some(sealed) = event.subject.as_mut().and_then(|s| s.sealed.take()) {
                cache.identity(store, &key, &sealed)?;
            }
            update_person(cache.record(store, &key)?, &event, micros);
            if let Some(screener) = &folder.screener {
                let mut working = cache.screening_store(store);
                let changes = screener.apply(&mut working, &event, sequence)?;
                count_flag_changes(&mut working, &changes, &event)?;
                if folder.alerts && !replay {
                    // Keyed by the event's sequence and the alert's place among its alerts: the same keys however
                    // the stream was cut into batches.
                    for (index, change) in changes.iter().filter(|c| announced(c)).enumerate() {
                        let alert = alert_of(&mut working, change, &event)?;
                        let index = u32::try_from(index).unwrap_or(u32::MAX);
                        batch.insert(&outbox_key(sequence, index)[..], alert);
                        stats.alerts += 1;
                    }
                }
            }
            if !replay {
                let number = cache.number(store, &key, &mut batch)?;
                // The bus bytes without the sealed identity (kept apart, above): spliced, not re-encoded.
                batch.timeline(number, micros, &event_id, sequence, |out| {
                    if crate::wire::without_sealed(bytes, out).is_err() {
                        event.encode(out).expect("a Vec grows as needed");
                    }
                });
            }
        } else if !replay {
            batch.insert(&event_index_key(&event_id)[..], &sequence.to_be_bytes()[..]);
        }
        cache.counters().event(&event);
        if !replay {
            stats.folded += 1;
        }
    }
    batch.close_timelines();
    cache.states_through = applied;
    let mut generation = None;
    let mut stored = Stored::default();
    if checkpoint {
        generation = Some(cache.checkpoint(store, &mut batch, &mut stored)?);
        if applied > states_at {
            let (k, v) = Store::states_entry(applied);
            batch.insert(k, &v[..]);
        }
        stats.states_at = applied;
        cache.states_at = applied;
        stats.checkpoint = true;
    }
    // After the checkpoint: its runs go into the event log too.
    cache.log_end = batch.log_end();
    if stats.position > position {
        let (k, v) = Store::position_entry(stats.position);
        batch.insert(k, &v[..]);
        cache.position = stats.position;
    }
    stats.prepare_us = micros_since(started);
    (stats.prepare_cpu_us, stats.prepare_runq_us) = times.since();
    stats.loaded_persons = cache.loads.0 - loads.0;
    stats.loaded_relations = cache.loads.1 - loads.1;
    // Later batches are prepared while this one waits or is applied: their duplicate check must see these until it
    // is applied ([`Applied::settle`]).
    cache.inflight_ids.extend(seen.iter().copied());
    Ok(Prepared {
        batch,
        stats,
        ids: seen.into_iter().collect(),
        stored,
        checkpoint: generation,
    })
}

/// Counts the flags raised and withdrawn for the situation figures, under the region each person is listed in.
fn count_flag_changes(
    working: &mut Working<'_>,
    changes: &[FlagChange],
    event: &CaseEvent,
) -> Result<(), StoreError> {
    let recorded = event
        .recorded_at
        .as_ref()
        .map_or(0, caselink_domain::timestamp_micros);
    for change in changes {
        let (person, flag, raised) = match change {
            FlagChange::Raised { person, flag } => (person, flag, true),
            FlagChange::Withdrawn { person, flag } => (person, flag, false),
            FlagChange::Grown { .. } => continue,
        };
        let record = working.record(person)?;
        let region = if record.latest_region.is_empty() {
            event.region_code.clone()
        } else {
            record.latest_region.clone()
        };
        working
            .counters()
            .flag(&region, recorded, &flag.rule, raised);
    }
    Ok(())
}

/// Evidence ids carried by an alert (the whole list is in the person view).
const ALERT_EVIDENCE: usize = 10;

/// Which flag changes are announced: every raise and withdrawal, and growth each time the evidence doubles (2, 4, 8…
/// events), so a claimant with hundreds of complaints causes a handful of alerts, not hundreds (no alert storms).
fn announced(change: &FlagChange) -> bool {
    match change {
        FlagChange::Raised { .. } | FlagChange::Withdrawn { .. } => true,
        FlagChange::Grown { flag, .. } => flag.evidence_total.is_power_of_two(),
    }
}

/// The outbox entry announcing a flag change.
fn alert_of(
    working: &mut Working<'_>,
    change: &FlagChange,
    event: &CaseEvent,
) -> Result<Vec<u8>, StoreError> {
    let (kind, person, flag) = match change {
        FlagChange::Raised { person, flag } => (AlertKind::Raised, person, flag),
        FlagChange::Grown { person, flag } => (AlertKind::Grew, person, flag),
        FlagChange::Withdrawn { person, flag } => (AlertKind::Withdrawn, person, flag),
    };
    let record = working.record(person)?;
    let region = if record.latest_region.is_empty() {
        event.region_code.clone()
    } else {
        record.latest_region.clone()
    };
    let alert = Alert {
        cursor: 0,
        kind: kind as i32,
        person_key: person.to_hex(),
        identity: Some(crate::query::masked_identity(record)),
        region_code: region.clone(),
        flag: Some({
            let mut flag = crate::query::flag_to_proto(flag);
            let keep = flag.evidence_event_ids.len().saturating_sub(ALERT_EVIDENCE);
            flag.evidence_event_ids.drain(..keep);
            flag
        }),
        at: event.recorded_at,
    };
    let entry = crate::store::OutboxEntry {
        subject: caselink_bus::derived::alert_subject(&region),
        msg_id: format!("alert.{}.{}.{}", person.to_hex(), flag.rule, flag.revision),
        payload: alert.encode_to_vec(),
    };
    Ok(entry.encode_to_vec())
}

fn dead_letter(batch: &mut Writes, stats: &mut FoldStats, sequence: u64, why: &str) {
    tracing::error!(
        sequence,
        why,
        "message cannot be folded; kept as a dead letter"
    );
    batch.insert(&dead_letter_key(sequence)[..], why.as_bytes());
    stats.dead_letters += 1;
}

pub(crate) fn occurred_micros(event: &CaseEvent) -> i64 {
    event
        .occurred_at
        .as_ref()
        .map_or(0, caselink_domain::timestamp_micros)
}

pub(crate) fn update_person(record: &mut PersonRecord, event: &CaseEvent, micros: i64) {
    let latest = record.events == 0 || micros >= record.last_occurred_micros;
    if let Some(subject) = &event.subject {
        // The most recent event's masks win: a person's phone may change over the years.
        if latest {
            if !subject.id_number_masked.is_empty() {
                record
                    .id_number_masked
                    .clone_from(&subject.id_number_masked);
            }
            if !subject.name_masked.is_empty() {
                record.name_masked.clone_from(&subject.name_masked);
            }
            if !subject.phone_masked.is_empty() {
                record.phone_masked.clone_from(&subject.phone_masked);
            }
        }
    }
    if latest && !event.region_code.is_empty() {
        record.latest_region.clone_from(&event.region_code);
    }
    if record.events == 0 || micros < record.first_occurred_micros {
        record.first_occurred_micros = micros;
    }
    if record.events == 0 || micros > record.last_occurred_micros {
        record.last_occurred_micros = micros;
    }
    record.events += 1;
    if !event.region_code.is_empty()
        && record.regions.len() < crate::store::MAX_PERSON_REGIONS
        && !record.regions.contains(&event.region_code)
    {
        record.regions.push(event.region_code.clone());
        record.regions.sort();
    }
    let d = usize::try_from(event.department).unwrap_or(0);
    if record.by_department.len() <= d {
        record.by_department.resize(d + 1, 0);
    }
    record.by_department[d] += 1;
}
