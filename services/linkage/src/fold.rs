//! The fold: one pulled batch of stream messages → one atomic sled batch.
//!
//! Exactly once: a message at or below the stored position was folded before (a redelivery after a crash between
//! flush and ack) and is skipped; an event id already in the event-id index (a duplicate that slipped past the bus's
//! dedup window, or a replay) is skipped; the projections, the screening state, the flagged list, the alert outbox, the
//! index entries and the new position are written in the same `sled::Batch`, so a crash leaves either all of a batch
//! or none of it.
//!
//! Per batch every touched person record and relation is read once and written once: the batch-local [`BatchCache`]
//! is what the screener works on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use caselink_domain::PersonKey;
use caselink_proto::v1::{Alert, AlertKind, CaseEvent};
use caselink_screening::{FlagChange, PersonScreening, RelationKey, RelationState, Screener};
use prost::Message;

use crate::store::{
    dead_letter_key, event_index_key, flagged_key, outbox_key, person_key, relation_key,
    timeline_key, FlaggedEntry, PersonRecord, Store, StoreError, IDENTITY, PERSON, SCREENING,
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
    /// Messages at or below the stored position (redelivered).
    pub redelivered: usize,
    /// Messages that could not be decoded, kept aside under their sequence.
    pub dead_letters: usize,
    /// Alerts written to the outbox.
    pub alerts: usize,
    /// The stored position after the batch.
    pub position: u64,
}

/// The person records, screening states and relations a batch touches, read once from sled and written back once.
struct BatchCache<'s> {
    store: &'s Store,
    persons: HashMap<PersonKey, PersonRecord>,
    screenings: HashMap<PersonKey, PersonScreening>,
    relations: BTreeMap<Vec<u8>, RelationState>,
}

impl BatchCache<'_> {
    fn record(&mut self, key: &PersonKey) -> Result<&mut PersonRecord, StoreError> {
        if !self.persons.contains_key(key) {
            let loaded = self.store.person(key)?.unwrap_or_default();
            self.persons.insert(*key, loaded);
        }
        Ok(self.persons.get_mut(key).expect("inserted above"))
    }
}

impl caselink_screening::ScreeningStore for BatchCache<'_> {
    type Error = StoreError;

    fn person(&mut self, key: &PersonKey) -> Result<&mut PersonScreening, StoreError> {
        if !self.screenings.contains_key(key) {
            let loaded = self.store.screening(key)?.unwrap_or_default();
            self.screenings.insert(*key, loaded);
        }
        Ok(self.screenings.get_mut(key).expect("inserted above"))
    }

    fn relation(&mut self, key: &RelationKey) -> Result<&mut RelationState, StoreError> {
        let bytes = key.to_bytes();
        if !self.relations.contains_key(&bytes) {
            let loaded = self.store.relation(&bytes)?.unwrap_or_default();
            self.relations.insert(bytes.clone(), loaded);
        }
        Ok(self.relations.get_mut(&bytes).expect("inserted above"))
    }
}

/// Folds `messages` (stream sequence, encoded `CaseEvent`), in order, into the store as one atomic batch.
/// The caller flushes before acknowledging.
pub fn fold_batch(
    store: &Store,
    folder: &Folder,
    messages: &[(u64, &[u8])],
) -> Result<FoldStats, StoreError> {
    let position = store.position()?;
    let mut stats = FoldStats {
        position,
        ..FoldStats::default()
    };
    let mut batch = sled::Batch::default();
    let mut seen: HashSet<uuid::Uuid> = HashSet::new();
    let mut cache = BatchCache {
        store,
        persons: HashMap::new(),
        screenings: HashMap::new(),
        relations: BTreeMap::new(),
    };
    let mut outbox_index = 0u32;
    let mut counters = crate::situation::BatchCounters::default();
    for &(sequence, bytes) in messages {
        if sequence <= position {
            stats.redelivered += 1;
            continue;
        }
        stats.position = stats.position.max(sequence);
        let mut event = match CaseEvent::decode(bytes) {
            Ok(e) => e,
            Err(e) => {
                let why = format!("undecodable CaseEvent: {e}");
                dead_letter(&mut batch, &mut stats, sequence, &why);
                continue;
            }
        };
        let Ok(event_id) = uuid::Uuid::parse_str(&event.event_id) else {
            dead_letter(&mut batch, &mut stats, sequence, "event_id is not a UUID");
            continue;
        };
        if !seen.insert(event_id) || store.has_event(&event_id)? {
            stats.duplicates += 1;
            continue;
        }
        let person = match event
            .subject
            .as_ref()
            .map(|s| PersonKey::from_hex(&s.person_key))
        {
            None => None,
            Some(Ok(key)) => Some(key),
            Some(Err(_)) => {
                let why = "subject.person_key is not a person key";
                dead_letter(&mut batch, &mut stats, sequence, why);
                continue;
            }
        };
        let mut index_value = sequence.to_be_bytes().to_vec();
        if let Some(key) = person {
            let sealed = event.subject.as_mut().and_then(|s| s.sealed.take());
            let micros = occurred_micros(&event);
            let record = cache.record(&key)?;
            if let Some(sealed) = sealed {
                // Store a new sealed copy only when the identity changed (or was never stored, or carries no digest).
                if sealed.digest.is_empty() || sealed.digest != record.identity_digest {
                    record.identity_digest.clone_from(&sealed.digest);
                    batch.insert(&person_key(IDENTITY, &key)[..], sealed.encode_to_vec());
                }
            }
            update_person(record, &event, micros);
            if let Some(screener) = &folder.screener {
                let changes = screener.apply(&mut cache, &event, sequence)?;
                count_flag_changes(&mut counters, &mut cache, &changes, &event)?;
                if folder.alerts {
                    for change in changes.iter().filter(|c| announced(c)) {
                        let alert = alert_of(&mut cache, change, &event)?;
                        batch.insert(&outbox_key(sequence, outbox_index)[..], alert);
                        outbox_index += 1;
                        stats.alerts += 1;
                    }
                }
            }
            let mut value = sequence.to_be_bytes().to_vec();
            event.encode(&mut value).expect("a Vec grows as needed");
            batch.insert(timeline_key(&key, micros, &event_id), value);
            index_value.extend_from_slice(&key.0);
        }
        counters.event(&event);
        batch.insert(&event_index_key(&event_id)[..], index_value);
        stats.folded += 1;
    }
    let screenings = std::mem::take(&mut cache.screenings);
    for (key, screening) in &screenings {
        // A cross-person rule may flag someone this batch has no event of: their record is loaded for the listing.
        let record = cache.record(key)?;
        relist(&mut batch, key, record, screening);
        batch.insert(&person_key(SCREENING, key)[..], screening.encode_to_vec());
    }
    let BatchCache {
        persons, relations, ..
    } = cache;
    for (key, record) in persons {
        batch.insert(&person_key(PERSON, &key)[..], record.encode_to_vec());
    }
    for (key, state) in relations {
        // A relation looked up but never used stays absent (an empty state encodes to nothing).
        if state.encoded_len() == 0 {
            batch.remove(relation_key(&key));
        } else {
            batch.insert(relation_key(&key), state.encode_to_vec());
        }
    }
    counters.write(store, &mut batch)?;
    if stats.position > position {
        let (k, v) = Store::position_entry(stats.position);
        batch.insert(k, &v[..]);
    }
    store.tree().apply_batch(batch)?;
    let folded: Vec<uuid::Uuid> = seen.into_iter().collect();
    store.note_folded(&folded)?;
    Ok(stats)
}

/// Keeps the person's entry in the flagged list (`f`) in step with their flags.
fn relist(
    batch: &mut sled::Batch,
    key: &PersonKey,
    record: &mut PersonRecord,
    screening: &PersonScreening,
) {
    if screening.flags.is_empty() {
        return;
    }
    let mut entry = FlaggedEntry::default();
    for flag in &screening.flags {
        if flag.active {
            entry.rules.push(flag.rule.clone());
        } else {
            entry.withdrawn.push(flag.rule.clone());
        }
        if flag.updated_seq >= entry.updated_seq {
            entry.updated_seq = flag.updated_seq;
            entry.updated_us = flag.window_to_us;
        }
    }
    let region = record.latest_region.clone();
    if !record.listed_region.is_empty() && record.listed_region != region {
        batch.remove(&flagged_key(&record.listed_region, key)[..]);
    }
    batch.insert(&flagged_key(&region, key)[..], entry.encode_to_vec());
    record.listed_region = region;
}

/// Counts the flags raised and withdrawn for the situation figures, under the region each person is listed in.
fn count_flag_changes(
    counters: &mut crate::situation::BatchCounters,
    cache: &mut BatchCache<'_>,
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
        let record = cache.record(person)?;
        let region = if record.latest_region.is_empty() {
            event.region_code.as_str()
        } else {
            record.latest_region.as_str()
        };
        counters.flag(region, recorded, &flag.rule, raised);
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
    cache: &mut BatchCache<'_>,
    change: &FlagChange,
    event: &CaseEvent,
) -> Result<Vec<u8>, StoreError> {
    let (kind, person, flag) = match change {
        FlagChange::Raised { person, flag } => (AlertKind::Raised, person, flag),
        FlagChange::Grown { person, flag } => (AlertKind::Grew, person, flag),
        FlagChange::Withdrawn { person, flag } => (AlertKind::Withdrawn, person, flag),
    };
    let record = cache.record(person)?;
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

fn dead_letter(batch: &mut sled::Batch, stats: &mut FoldStats, sequence: u64, why: &str) {
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

fn update_person(record: &mut PersonRecord, event: &CaseEvent, micros: i64) {
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
