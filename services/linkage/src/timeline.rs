//! The timeline stage of the fold: what makes an event visible in `GetTimeline`, apart from its screening.
//!
//! Why: screening an event needs its person's state, their contacts' relations and those relations' other users; a
//! person not touched for a while has all of that on the disk, and a slow disk answers a few thousand reads a second.
//! Putting an event into its person's timeline needs only the person's number. So the consumer writes the timeline
//! first, batch by batch as they are pulled ([`prepare_timeline`]: number, timeline chunk, event-id index, dead
//! letters, `position`), and the screening follows behind over the same messages, as replays of what the timeline
//! stage folded ([`crate::fold::prepare_preloaded`] with the verdicts handed on: nothing is looked up again). An
//! analyst sees a new record as soon as the timeline batch is applied, whatever the screening is waiting for.
//!
//! Exactly once, as before ([`crate::states`]): `position` is the timeline's, `states_at` the screening's, and the
//! alerts of a sequence are written once, by the screening, with `alerted` ([`crate::store::Store::alerted_at`]). A
//! message is acknowledged only once its screening is applied and flushed; a new session starts from `states_at` + 1,
//! the timeline stage passes over what it already holds, and the screening replays it.

use foldhash::{HashMap, HashSet};

use caselink_domain::PersonKey;

use crate::fold::{
    dead_letter, micros_since, occurred_micros, parse, prepare_preloaded, timeline_entry,
    FoldStats, Folder, Prepared, ThreadTimes,
};
use crate::states::StateCache;
use crate::store::{event_index_key, FoldedAt, PersonNumber, Store, StoreError, Stored, Writes};

/// What the timeline stage decided of the events it was handed, for their screening.
#[derive(Debug, Default)]
pub struct Verdicts {
    /// Of each event: `Some(sequence)` when it was folded under that sequence, `None` when it was folded before (a
    /// duplicate). The screening applies exactly the first.
    pub(crate) events: HashMap<uuid::Uuid, Option<u64>>,
    /// The persons it gave numbers, with them: the screening may load them before sled has them.
    pub(crate) numbered: Vec<(PersonKey, PersonNumber)>,
}

impl Verdicts {
    /// Adds what a later batch decided.
    pub(crate) fn merge(&mut self, later: Verdicts) {
        for (id, verdict) in later.events {
            // An event folded once and delivered again: the sequence it was folded under wins.
            let held = self.events.entry(id).or_insert(verdict);
            *held = held.or(verdict);
        }
        self.numbered.extend(later.numbered);
    }
}

/// The timeline stage's own state across batches (one consumer session; a new one continues from the store).
pub struct TimelineCursor {
    /// The last sequence in the timeline once the batches prepared so far are applied.
    pub(crate) position: u64,
    /// The number the next new person gets, likewise.
    next_number: u64,
    /// Persons' numbers this session has met: the person's key (its first 16 bytes: an HMAC-SHA-256, so two persons
    /// share them with a chance of about n² / 2¹²⁹, 10⁻²⁷ for a million) → their number. About 20 bytes a person
    /// (40 MiB of table for a million); a person met again costs no read, whatever sled's cache holds.
    numbers: HashMap<[u8; 16], u32>,
    /// Events of the batches prepared and not yet applied (sled does not hold them yet).
    pub(crate) inflight_ids: HashSet<uuid::Uuid>,
}

impl TimelineCursor {
    /// Continuing from the store's timeline.
    pub fn open(store: &Store) -> Result<TimelineCursor, StoreError> {
        Ok(TimelineCursor {
            position: store.position()?,
            next_number: store.next_number()?,
            numbers: HashMap::default(),
            inflight_ids: HashSet::default(),
        })
    }

    /// The person's number: known, stored, or the next one (given in `batch`, and added to `numbered`).
    fn number(
        &mut self,
        store: &Store,
        key: &PersonKey,
        batch: &mut Writes,
        numbered: &mut Vec<(PersonKey, PersonNumber)>,
    ) -> Result<PersonNumber, StoreError> {
        let short = short_key(key);
        if let Some(&number) = self.numbers.get(&short) {
            return Ok(PersonNumber(u64::from(number)));
        }
        let number = match store.number(key)? {
            Some(number) => number,
            None => {
                let number = PersonNumber(self.next_number);
                self.next_number += 1;
                batch.number(key, number);
                numbered.push((*key, number));
                number
            }
        };
        if let Ok(small) = u32::try_from(number.0) {
            self.numbers.insert(short, small);
        }
        Ok(number)
    }

    /// Persons whose numbers are known.
    pub(crate) fn known_numbers(&self) -> usize {
        self.numbers.len()
    }
}

fn short_key(key: &PersonKey) -> [u8; 16] {
    let mut short = [0u8; 16];
    short.copy_from_slice(&key.0[..16]);
    short
}

/// Folds `messages` (stream sequence, encoded `CaseEvent`), in order, into the timeline: for each event above the
/// cursor's position, unless it was folded before, its person's number (a new person gets the next), its timeline
/// entry and its bytes in the event log (an event without a person: its event-id index entry); a message that cannot
/// be folded becomes a dead letter; and the new position. Nothing of the states is read or written. Returns the batch
/// (applied like any other, before the screening's batch of these messages) and what it decided of each event (and of
/// each person it numbered: the screening may be prepared before this batch is applied).
pub fn prepare_timeline(
    store: &Store,
    cursor: &mut TimelineCursor,
    messages: &[(u64, &[u8])],
) -> Result<(Prepared, Verdicts), StoreError> {
    let started = std::time::Instant::now();
    let times = ThreadTimes::now();
    let before = cursor.position;
    let mut stats = FoldStats {
        position: before,
        ..FoldStats::default()
    };
    let mut writes = Writes::default();
    let mut verdicts = Verdicts::default();
    let mut ids = Vec::new();
    for &(sequence, bytes) in messages {
        if sequence <= cursor.position {
            // In the timeline already (a new session replays from `states_at`): the screening looks it up.
            continue;
        }
        cursor.position = sequence;
        let (event, event_id, person) = match parse(bytes) {
            Ok(parsed) => parsed,
            Err(why) => {
                dead_letter(&mut writes, &mut stats, sequence, &why);
                continue;
            }
        };
        let at = match &person {
            Some(person) => FoldedAt::Timeline {
                person,
                id: &event_id,
            },
            None => FoldedAt::Index(&event_id),
        };
        let duplicate = verdicts.events.contains_key(&event_id)
            || cursor.inflight_ids.contains(&event_id)
            || (store.may_have_seen(&at) && {
                stats.looked_up_events += 1;
                store.folded_sequence(&at)?.is_some()
            });
        if duplicate {
            verdicts.events.entry(event_id).or_insert(None);
            stats.duplicates += 1;
            continue;
        }
        match person {
            Some(key) => {
                let number = cursor.number(store, &key, &mut writes, &mut verdicts.numbered)?;
                let micros = occurred_micros(&event);
                timeline_entry(
                    &mut writes,
                    number,
                    micros,
                    &event_id,
                    sequence,
                    bytes,
                    &event,
                );
            }
            None => writes.insert(&event_index_key(&event_id)[..], &sequence.to_be_bytes()[..]),
        }
        verdicts.events.insert(event_id, Some(sequence));
        ids.push(event_id);
        stats.folded += 1;
    }
    writes.close_timelines();
    if cursor.position > before {
        let (k, v) = Store::position_entry(cursor.position);
        writes.insert(k, &v[..]);
    }
    stats.position = cursor.position;
    stats.prepare_us = micros_since(started);
    (stats.prepare_cpu_us, stats.prepare_runq_us) = times.since();
    cursor.inflight_ids.extend(ids.iter().copied());
    let prepared = Prepared {
        batch: writes,
        stats,
        ids,
        stored: Stored::default(),
        checkpoint: None,
        numbered: verdicts.numbered.iter().map(|(key, _)| *key).collect(),
    };
    Ok((prepared, verdicts))
}

/// The screening of `messages` after the timeline stage took them (`verdicts`, what it decided, merged over the
/// batches if several; its batch applied before this one is): every event is a replay of what the timeline holds, screened into `cache`
/// (with `checkpoint`, the states written back), alerts announced for what no batch announced before. What the
/// consumer does for each group of batches, on one batch. A message the timeline took before this session (no
/// verdict) is looked up in sled.
pub fn prepare_screening(
    store: &Store,
    folder: &Folder,
    cache: &mut StateCache,
    cursor: &TimelineCursor,
    messages: &[(u64, &[u8])],
    checkpoint: bool,
    verdicts: Verdicts,
) -> Result<Prepared, StoreError> {
    cache.evict();
    cache.position = cache.position.max(cursor.position);
    cache.expect_numbers(&verdicts.numbered);
    let preloaded = cache.preload(store, folder.screener.as_deref(), messages, verdicts.events)?;
    prepare_preloaded(store, folder, cache, messages, checkpoint, &preloaded)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::{complaint, numbered, screening};
    use prost::Message;

    fn sequences(store: &Store, person: &PersonKey) -> Vec<u64> {
        store
            .timeline(person, i64::MIN, i64::MAX, None)
            .map(|row| row.unwrap().sequence)
            .collect()
    }

    #[test]
    fn the_timeline_stage_numbers_persons_and_folds_their_events_without_reading_or_writing_states()
    {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (PersonKey([1; 32]), PersonKey([2; 32]));
        let mut without_person = complaint(9, &a, "pa");
        without_person.subject = None;
        let encoded: Vec<Vec<u8>> = vec![
            complaint(1, &b, "pb").encode_to_vec(),
            complaint(2, &a, "pa").encode_to_vec(),
            b"\xff not a case event".to_vec(),
            complaint(3, &b, "pb").encode_to_vec(),
            without_person.encode_to_vec(),
        ];
        let mut cursor = TimelineCursor::open(&store).unwrap();
        let (prepared, verdicts) =
            prepare_timeline(&store, &mut cursor, &numbered(&encoded, 1)).unwrap();
        assert_eq!(prepared.stats.folded, 4);
        assert_eq!(prepared.stats.dead_letters, 1);
        assert_eq!(cursor.position, 5);
        assert_eq!(verdicts.events.len(), 4);
        assert!(verdicts.events.values().all(Option::is_some));
        assert_eq!(
            verdicts.numbered,
            [(b, PersonNumber(0)), (a, PersonNumber(1))]
        );
        prepared.apply(&store).unwrap().settle_timeline(&mut cursor);

        // Visible at once, in stream order of first appearance numbered; no state was written.
        assert_eq!(sequences(&store, &b), [1, 4]);
        assert_eq!(sequences(&store, &a), [2]);
        assert_eq!(store.number(&b).unwrap(), Some(PersonNumber(0)));
        assert_eq!(store.number(&a).unwrap(), Some(PersonNumber(1)));
        assert_eq!(store.position().unwrap(), 5);
        assert_eq!(store.states_at().unwrap(), 0);
        assert!(store.person(&a).unwrap().is_none(), "no person row yet");
        let id = uuid::Uuid::parse_str(&without_person.event_id).unwrap();
        assert_eq!(
            store.folded_sequence(&FoldedAt::Index(&id)).unwrap(),
            Some(5)
        );
        let dead = crate::store::dead_letter_key(3);
        assert!(store.entries().any(|kv| kv.unwrap().0[..] == dead[..]));

        // A new session: what the timeline holds is passed over; a known person keeps their number, a new one gets
        // the next; events folded before are duplicates, stored or still in flight.
        let mut cursor = TimelineCursor::open(&store).unwrap();
        let c = PersonKey([3; 32]);
        let again: Vec<Vec<u8>> = vec![
            complaint(4, &a, "pa").encode_to_vec(),
            complaint(2, &a, "pa").encode_to_vec(),
            complaint(5, &c, "pc").encode_to_vec(),
        ];
        let replayed = numbered(&encoded, 1);
        let (prepared, verdicts) = prepare_timeline(&store, &mut cursor, &replayed).unwrap();
        assert_eq!(
            prepared.stats.folded, 0,
            "what the timeline holds is passed over"
        );
        assert!(verdicts.events.is_empty());
        let (first, verdicts) =
            prepare_timeline(&store, &mut cursor, &numbered(&again, 6)).unwrap();
        assert_eq!((first.stats.folded, first.stats.duplicates), (2, 1));
        let stored = uuid::Uuid::from_u128(0x5000 + 2);
        assert_eq!(
            verdicts.events.get(&stored),
            Some(&None),
            "a stored event is a duplicate"
        );
        assert_eq!(
            verdicts.numbered,
            [(c, PersonNumber(2))],
            "a known person keeps theirs"
        );
        // Prepared, not applied: its events are duplicates of the next batch too.
        let copy = vec![complaint(5, &c, "pc").encode_to_vec()];
        let (second, verdicts) =
            prepare_timeline(&store, &mut cursor, &numbered(&copy, 9)).unwrap();
        assert_eq!(second.stats.duplicates, 1);
        assert_eq!(
            verdicts.events.get(&uuid::Uuid::from_u128(0x5000 + 5)),
            Some(&None)
        );
        first.apply(&store).unwrap().settle_timeline(&mut cursor);
        second.apply(&store).unwrap().settle_timeline(&mut cursor);
        assert_eq!(sequences(&store, &a), [2, 6]);
        assert_eq!(store.number(&c).unwrap(), Some(PersonNumber(2)));
        assert_eq!(sequences(&store, &c), [8]);
        assert_eq!(store.position().unwrap(), 9);
        assert!(cursor.inflight_ids.is_empty());
    }

    #[test]
    fn the_screening_after_the_timeline_equals_the_fold_of_both_at_once() {
        let (a, b) = (PersonKey([1; 32]), PersonKey([2; 32]));
        // Two persons on one phone, many complaints: flags, links, a relation with two users.
        let encoded: Vec<Vec<u8>> = (0..40u128)
            .map(|n| complaint(n, if n % 3 == 0 { &b } else { &a }, "shared").encode_to_vec())
            .collect();
        let messages = numbered(&encoded, 1);
        let folder = crate::fold::Folder {
            alerts: true,
            ..screening()
        };

        let dir = tempfile::tempdir().unwrap();
        let reference = Store::open(dir.path()).unwrap();
        let once = crate::fold::fold_batch(&reference, &folder, &messages).unwrap();
        assert!(once.alerts > 0);

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut cursor = TimelineCursor::open(&store).unwrap();
        let mut cache = StateCache::open(&store, crate::states::CachePolicy::default()).unwrap();
        let (timeline, verdicts) = prepare_timeline(&store, &mut cursor, &messages).unwrap();
        timeline.apply(&store).unwrap().settle_timeline(&mut cursor);
        assert_eq!(
            store.alerted_at().unwrap(),
            0,
            "the timeline announces nothing"
        );
        let screened = prepare_screening(
            &store, &folder, &mut cache, &cursor, &messages, true, verdicts,
        )
        .unwrap();
        assert_eq!(screened.stats.replayed, 40);
        assert_eq!(screened.stats.looked_up_events, 0, "the verdicts answered");
        assert_eq!(screened.stats.alerts, once.alerts);
        screened.apply(&store).unwrap().settle(&mut cache);
        assert_eq!(store.alerted_at().unwrap(), 40);
        assert_eq!(store.states_at().unwrap(), 40);
        let all = |s: &Store| -> Vec<(Vec<u8>, Vec<u8>)> {
            s.entries()
                .map(|kv| {
                    let (k, v) = kv.unwrap();
                    (k.to_vec(), v.to_vec())
                })
                .collect()
        };
        assert_eq!(all(&store), all(&reference), "byte for byte");
    }
}
