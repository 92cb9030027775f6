//! The fold: one pulled batch of stream messages → one atomic sled batch.
//!
//! Exactly once: a message at or below the stored position was folded before (a redelivery after a crash between
//! flush and ack) and is skipped; an event id already in the event-id index (a duplicate that slipped past the bus's
//! dedup window, or a replay) is skipped; the projections, the index entries and the new position are written in the
//! same `sled::Batch`, so a crash leaves either all of a batch or none of it.

use std::collections::{HashMap, HashSet};

use caselink_domain::PersonKey;
use caselink_proto::v1::CaseEvent;
use prost::Message;

use crate::store::{
    dead_letter_key, event_index_key, person_key, timeline_key, PersonRecord, Store, StoreError,
    IDENTITY, PERSON,
};

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
    /// The stored position after the batch.
    pub position: u64,
}

/// Folds `messages` (stream sequence, encoded `CaseEvent`), in order, into the store as one atomic batch.
/// The caller flushes before acknowledging.
pub fn fold_batch(store: &Store, messages: &[(u64, &[u8])]) -> Result<FoldStats, StoreError> {
    let position = store.position()?;
    let mut stats = FoldStats {
        position,
        ..FoldStats::default()
    };
    let mut batch = sled::Batch::default();
    let mut seen: HashSet<uuid::Uuid> = HashSet::new();
    let mut persons: HashMap<PersonKey, PersonRecord> = HashMap::new();
    for &(sequence, bytes) in messages {
        if sequence <= position {
            stats.redelivered += 1;
            continue;
        }
        stats.position = stats.position.max(sequence);
        let mut event = match CaseEvent::decode(bytes) {
            Ok(e) => e,
            Err(e) => {
                dead_letter(
                    &mut batch,
                    &mut stats,
                    sequence,
                    &format!("undecodable CaseEvent: {e}"),
                );
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
                dead_letter(
                    &mut batch,
                    &mut stats,
                    sequence,
                    "subject.person_key is not a person key",
                );
                continue;
            }
        };
        let mut index_value = sequence.to_be_bytes().to_vec();
        if let Some(key) = person {
            let subject = event
                .subject
                .as_mut()
                .expect("person key came from the subject");
            if let Some(sealed) = subject.sealed.take() {
                batch.insert(&person_key(IDENTITY, &key)[..], sealed.encode_to_vec());
            }
            let micros = occurred_micros(&event);
            let record = match persons.get_mut(&key) {
                Some(r) => r,
                None => {
                    let loaded = store.person(&key)?.unwrap_or_default();
                    persons.entry(key).or_insert(loaded)
                }
            };
            update_person(record, &event, micros);
            let mut value = sequence.to_be_bytes().to_vec();
            event.encode(&mut value).expect("a Vec grows as needed");
            batch.insert(timeline_key(&key, micros, &event_id), value);
            index_value.extend_from_slice(&key.0);
        }
        batch.insert(&event_index_key(&event_id)[..], index_value);
        stats.folded += 1;
    }
    for (key, record) in persons {
        batch.insert(&person_key(PERSON, &key)[..], record.encode_to_vec());
    }
    if stats.position > position {
        let (k, v) = Store::position_entry(stats.position);
        batch.insert(k, &v[..]);
    }
    store.tree().apply_batch(batch)?;
    Ok(stats)
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
    if let Some(subject) = &event.subject {
        // The most recent event's masks win: a person's phone may change over the years.
        if record.events == 0 || micros >= record.last_occurred_micros {
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
