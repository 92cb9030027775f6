//! The determination projection: each person's determination events as folded from `CASELINK_WORKFLOW`, in a sled tree
//! of its own, with the abnormal list's index.
//!
//! | key | value |
//! | --- | --- |
//! | `d` ‖ person key (hex) | [`StoredDetermination`]: every event with its stream sequence |
//! | `l` ‖ region (6 digits) ‖ person key (hex) | () — the person's last move confirmed them, in that bureau's region |
//! | `mposition` | the last stream sequence folded (u64) |
//!
//! The `l` index holds every person whose last move is a confirmation; whether it has expired is judged when read (on
//! the clock of the reader), so nothing needs to be written when an entry expires. Fed by the durable pull consumer
//! `linkage-determinations` ([`crate::workflow_fold`]); rebuildable from the stream.

use std::collections::HashMap;

use caselink_bus::workflow::determination_filter;
use caselink_proto::v1::determination_event::Action;
use caselink_proto::v1::DeterminationEvent;
use caselink_workflow::determination::{replay, Determination};
use prost::Message;

use crate::store::{Store, StoreError};

/// The durable consumer of the determination fold.
pub const DURABLE: &str = "linkage-determinations";
const DETERMINATION: u8 = b'd';
const LISTED: u8 = b'l';
const META_POSITION: &[u8] = b"mposition";
/// Region codes are 6 digits; person keys 64 hex characters.
const REGION_LEN: usize = 6;
const KEY_HEX_LEN: usize = 64;

/// One person's determination as stored: its events, oldest first, and the stream sequence of each.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredDetermination {
    #[prost(message, repeated, tag = "1")]
    pub events: Vec<DeterminationEvent>,
    #[prost(uint64, repeated, tag = "2")]
    pub sequences: Vec<u64>,
}

impl StoredDetermination {
    /// The determination folded from the events.
    pub fn replay(&self) -> Option<Determination> {
        replay(self.events.iter())
    }

    /// The stream sequence of the last event.
    pub fn last_sequence(&self) -> u64 {
        self.sequences.last().copied().unwrap_or(0)
    }

    /// The region under which the last move lists the person, when it is a confirmation.
    fn listed_region(&self) -> Option<&str> {
        self.events.last().and_then(|e| match e.action {
            Some(Action::Confirmed(_)) => Some(e.region_code.as_str()),
            _ => None,
        })
    }
}

/// The determination tree of a [`Store`].
#[derive(Clone)]
pub struct Determinations {
    store: Store,
    tree: sled::Tree,
}

fn corrupt(why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table: "determination",
        why: why.to_string(),
    }
}

fn determination_key(person_key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + person_key.len());
    k.push(DETERMINATION);
    k.extend_from_slice(person_key.as_bytes());
    k
}

/// The abnormal-list index key of a person listed by the bureau of `region`.
pub fn listed_key(region: &str, person_key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + region.len() + person_key.len());
    k.push(LISTED);
    k.extend_from_slice(region.as_bytes());
    k.extend_from_slice(person_key.as_bytes());
    k
}

impl Determinations {
    pub fn open(store: &Store) -> Result<Determinations, StoreError> {
        Ok(Determinations {
            store: store.clone(),
            tree: store.determinations_tree()?,
        })
    }

    /// One person's stored determination events.
    pub fn get(&self, person_key: &str) -> Result<Option<StoredDetermination>, StoreError> {
        self.tree
            .get(determination_key(person_key))?
            .map(|v| StoredDetermination::decode(v.as_ref()).map_err(corrupt))
            .transpose()
    }

    /// Every person's stored determination events, in person-key order.
    pub fn scan(
        &self,
    ) -> impl Iterator<Item = Result<(String, StoredDetermination), StoreError>> + '_ {
        self.tree.scan_prefix([DETERMINATION]).map(|item| {
            let (k, v) = item?;
            let person = String::from_utf8_lossy(&k[1..]).into_owned();
            Ok((
                person,
                StoredDetermination::decode(v.as_ref()).map_err(corrupt)?,
            ))
        })
    }

    /// The persons whose last move confirmed them, by region (of the bureau) then person key, from the regions starting
    /// with `region_prefix`, after the index key `after` (exclusive): (region, person key, stored events).
    pub fn listed(
        &self,
        region_prefix: &str,
        after: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<(String, String, StoredDetermination), StoreError>> + '_ {
        let mut prefix = vec![LISTED];
        prefix.extend_from_slice(region_prefix.as_bytes());
        crate::store::scan_after(&self.tree, prefix, after).map(move |item| {
            let (k, _) = item?;
            if k.len() != 1 + REGION_LEN + KEY_HEX_LEN {
                return Err(corrupt("a listing key of the wrong length"));
            }
            let region = String::from_utf8_lossy(&k[1..1 + REGION_LEN]).into_owned();
            let person = String::from_utf8_lossy(&k[1 + REGION_LEN..]).into_owned();
            let stored = self
                .get(&person)?
                .ok_or_else(|| corrupt(format!("listed person {person} has no determination")))?;
            Ok((region, person, stored))
        })
    }

    /// Folds `messages` (stream sequence, encoded `DeterminationEvent`) into one atomic batch with the position;
    /// returns the events newly applied. Redeliveries (at or below the position, or a version already stored) are
    /// skipped. The caller flushes before acknowledging.
    pub fn fold(&self, messages: &[(u64, &[u8])]) -> Result<Vec<DeterminationEvent>, StoreError> {
        let position = self.position()?;
        let mut last = position;
        let mut touched: HashMap<String, (Option<String>, StoredDetermination)> = HashMap::new();
        let mut applied = Vec::new();
        for &(sequence, bytes) in messages {
            if sequence <= position {
                continue;
            }
            last = last.max(sequence);
            let event = match DeterminationEvent::decode(bytes) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(sequence, error = %e, "undecodable determination event skipped");
                    continue;
                }
            };
            let key = event.person_key.clone();
            let (_, stored) = match touched.get_mut(&key) {
                Some(entry) => entry,
                None => {
                    let stored = self.get(&key)?.unwrap_or_default();
                    let was_listed = stored.listed_region().map(str::to_owned);
                    touched.entry(key.clone()).or_insert((was_listed, stored))
                }
            };
            if event.version <= stored.events.len() as u64 {
                continue; // already folded (a redelivery after a crash between flush and ack)
            }
            stored.events.push(event.clone());
            stored.sequences.push(sequence);
            applied.push(event);
        }
        let mut batch = sled::Batch::default();
        for (key, (was_listed, stored)) in touched {
            let now_listed = stored.listed_region();
            if let Some(region) = &was_listed {
                if now_listed != Some(region.as_str()) {
                    batch.remove(listed_key(region, &key));
                }
            }
            if let Some(region) = now_listed {
                batch.insert(listed_key(region, &key), &[][..]);
            }
            batch.insert(determination_key(&key), stored.encode_to_vec());
        }
        if last > position {
            batch.insert(META_POSITION, &last.to_be_bytes()[..]);
        }
        self.store.exclusive(|| self.tree.apply_batch(batch))?;
        Ok(applied)
    }
}

impl crate::workflow_fold::WorkflowProjection for Determinations {
    type Applied = DeterminationEvent;
    const DURABLE: &'static str = DURABLE;
    const NAME: &'static str = "determinations";

    fn filter(&self) -> String {
        determination_filter()
    }

    fn position(&self) -> Result<u64, StoreError> {
        Determinations::position(self)
    }

    fn fold(&self, messages: &[(u64, &[u8])]) -> Result<Vec<DeterminationEvent>, StoreError> {
        Determinations::fold(self, messages)
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn reset(&self) -> Result<(), StoreError> {
        self.store.exclusive(|| self.tree.clear())?;
        Ok(())
    }
}

impl Determinations {
    /// The last stream sequence folded.
    pub fn position(&self) -> Result<u64, StoreError> {
        Ok(crate::workflow_fold::decode_position(
            self.tree.get(META_POSITION)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use caselink_proto::v1::{DeterminationConfirmed, DeterminationRevoked};

    fn event(person: &str, version: u64, region: &str, action: Action) -> Vec<u8> {
        DeterminationEvent {
            person_key: person.into(),
            version,
            region_code: region.into(),
            action: Some(action),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn confirmed() -> Action {
        Action::Confirmed(DeterminationConfirmed::default())
    }

    fn revoked() -> Action {
        Action::Revoked(DeterminationRevoked { reason: "r".into() })
    }

    fn listed(d: &Determinations, prefix: &str) -> Vec<(String, String)> {
        d.listed(prefix, None)
            .map(|r| r.map(|(region, person, _)| (region, person)))
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn the_list_index_follows_the_last_move_and_redeliveries_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Determinations::open(&store).unwrap();
        let a = "aa".repeat(32);
        let b = "bb".repeat(32);
        let e1 = event(&a, 1, "430602", confirmed());
        let e2 = event(&b, 1, "330106", confirmed());
        let applied = d.fold(&[(1, &e1), (2, &e2)]).unwrap();
        assert_eq!(applied.len(), 2);
        assert_eq!(
            listed(&d, ""),
            [
                ("330106".to_string(), b.clone()),
                ("430602".to_string(), a.clone())
            ]
        );
        assert_eq!(listed(&d, "43"), [("430602".to_string(), a.clone())]);
        // A redelivery (same sequence, or same version under a new sequence) is skipped.
        assert!(d.fold(&[(2, &e2)]).unwrap().is_empty());
        assert!(d.fold(&[(3, &e1)]).unwrap().is_empty());
        assert_eq!(d.position().unwrap(), 3);
        // A revocation takes the person off the index; a new confirmation elsewhere lists them there.
        let e3 = event(&a, 2, "430602", revoked());
        d.fold(&[(4, &e3)]).unwrap();
        assert_eq!(listed(&d, "43"), []);
        let e4 = event(&a, 3, "430600", confirmed());
        d.fold(&[(5, &e4)]).unwrap();
        assert_eq!(listed(&d, "4306"), [("430600".to_string(), a.clone())]);
        assert_eq!(d.get(&a).unwrap().unwrap().sequences, [1, 4, 5]);
        // Paging: after the first key, the second.
        let first = listed_key("330106", &b);
        let rest: Vec<String> = d.listed("", Some(&first)).map(|r| r.unwrap().1).collect();
        assert_eq!(rest, [a]);
    }
}
