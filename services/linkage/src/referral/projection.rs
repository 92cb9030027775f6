//! The referral projection: each referral's events as folded from `CASELINK_WORKFLOW`, in a sled tree of its own.
//!
//! | key | value |
//! | --- | --- |
//! | `r` ‖ referral id | [`StoredReferral`]: every event with its stream sequence |
//! | `a` ‖ referral id ‖ `0` ‖ version (8) | an overdue alert was raised for the state entered at that version |
//! | `mposition` | the last stream sequence folded (u64) |
//!
//! Fed by the durable pull consumer `linkage-referrals` ([`crate::workflow_fold`]): per pulled batch one `sled::Batch`
//! (referrals + position), flush, then ack; the consumer is recreated from the stored position at every start. While folding, the police moves are published as police case events (`lead.received`, `case.registered`,
//! `case.declined`, `case.closed`) onto the events stream with deterministic ids, so each appears once in the person's
//! timeline. Rebuildable: [`rebuild`] clears the tree and replays the stream (without republishing).

use std::collections::HashMap;

use async_nats::jetstream;
use caselink_bus::workflow::referral_filter;
use caselink_proto::v1::referral_event::Action;
use caselink_proto::v1::ReferralEvent;
use caselink_runtime::Cancel;
use caselink_workflow::referral::{replay, Referral};
use prost::Message;

use crate::consumer::FoldError;
use crate::store::{Store, StoreError};

/// The durable consumer of the referral fold.
pub const DURABLE: &str = "linkage-referrals";
const REFERRAL: u8 = b'r';
const ALERTED: u8 = b'a';
/// Index of referrals by person: `p` ‖ person key (hex) ‖ 0 ‖ referral id → ().
const BY_PERSON: u8 = b'p';
const META_POSITION: &[u8] = b"mposition";

/// One referral as stored: its events, oldest first, and the stream sequence of each.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredReferral {
    #[prost(message, repeated, tag = "1")]
    pub events: Vec<ReferralEvent>,
    #[prost(uint64, repeated, tag = "2")]
    pub sequences: Vec<u64>,
}

impl StoredReferral {
    /// The referral folded from the first `n` events (all when `n` is larger).
    pub fn replay_first(&self, n: usize) -> Option<Referral> {
        replay(self.events.iter().take(n))
    }

    /// The stream sequence of the last event.
    pub fn last_sequence(&self) -> u64 {
        self.sequences.last().copied().unwrap_or(0)
    }
}

/// The referral tree of a [`Store`].
#[derive(Clone)]
pub struct Referrals {
    store: Store,
    tree: sled::Tree,
}

fn corrupt(why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table: "referral",
        why: why.to_string(),
    }
}

fn referral_key(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(REFERRAL);
    k.extend_from_slice(id.as_bytes());
    k
}

fn alerted_key(id: &str, version: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len() + 9);
    k.push(ALERTED);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

impl Referrals {
    pub fn open(store: &Store) -> Result<Referrals, StoreError> {
        Ok(Referrals {
            store: store.clone(),
            tree: store.referrals_tree()?,
        })
    }

    /// The last stream sequence folded.
    pub fn position(&self) -> Result<u64, StoreError> {
        Ok(crate::workflow_fold::decode_position(
            self.tree.get(META_POSITION)?,
        ))
    }

    /// One referral's stored events.
    pub fn get(&self, id: &str) -> Result<Option<StoredReferral>, StoreError> {
        self.tree
            .get(referral_key(id))?
            .map(|v| StoredReferral::decode(v.as_ref()).map_err(corrupt))
            .transpose()
    }

    /// Every referral with an id after `after` (exclusive), in id order.
    pub fn scan(
        &self,
        after: Option<&str>,
    ) -> impl Iterator<Item = Result<(String, StoredReferral), StoreError>> + '_ {
        let start = match after {
            Some(a) => {
                let mut k = referral_key(a);
                k.push(0);
                k
            }
            None => vec![REFERRAL],
        };
        self.tree
            .range(start..)
            .take_while(|item| {
                item.as_ref()
                    .map_or(true, |(k, _)| k.first() == Some(&REFERRAL))
            })
            .map(|item| {
                let (k, v) = item?;
                let id = String::from_utf8_lossy(&k[1..]).into_owned();
                let stored = StoredReferral::decode(v.as_ref()).map_err(corrupt)?;
                Ok((id, stored))
            })
    }

    /// The ids of the referrals naming `person_key` (hex), in id order.
    pub fn of_person(&self, person_key: &str) -> Result<Vec<String>, StoreError> {
        let mut prefix = vec![BY_PERSON];
        prefix.extend_from_slice(person_key.as_bytes());
        prefix.push(0);
        self.tree
            .scan_prefix(&prefix)
            .map(|item| {
                let (k, _) = item?;
                Ok(String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            })
            .collect()
    }

    /// Whether the overdue alert of the state entered at `version` was raised.
    pub fn alerted(&self, id: &str, version: u64) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(alerted_key(id, version))?)
    }

    /// Records that the overdue alert of the state entered at `version` was raised (flushed).
    pub async fn mark_alerted(&self, id: &str, version: u64) -> Result<(), StoreError> {
        self.store
            .exclusive(|| self.tree.insert(alerted_key(id, version), &[][..]))?;
        self.store.flush().await
    }

    /// Folds `messages` (stream sequence, encoded `ReferralEvent`) into one atomic batch; returns the events newly
    /// applied with the referral before each. Redeliveries (at or below the position, or a version already stored) are
    /// skipped. The caller flushes before acknowledging.
    pub fn fold(
        &self,
        messages: &[(u64, &[u8])],
    ) -> Result<Vec<(Option<Referral>, ReferralEvent)>, StoreError> {
        let position = self.position()?;
        let mut last = position;
        let mut touched: HashMap<String, StoredReferral> = HashMap::new();
        let mut applied = Vec::new();
        let mut index = Vec::new();
        for &(sequence, bytes) in messages {
            if sequence <= position {
                continue;
            }
            last = last.max(sequence);
            let event = match ReferralEvent::decode(bytes) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(sequence, error = %e, "undecodable referral event skipped");
                    continue;
                }
            };
            let id = event.referral_id.clone();
            let stored = match touched.get_mut(&id) {
                Some(s) => s,
                None => {
                    let s = self.get(&id)?.unwrap_or_default();
                    touched.entry(id.clone()).or_insert(s)
                }
            };
            if event.version <= stored.events.len() as u64 {
                continue; // already folded (a redelivery after a crash between flush and ack)
            }
            let before = replay(stored.events.iter());
            if let Some(Action::Drafted(drafted)) = &event.action {
                for person in &drafted.person_keys {
                    let mut k = vec![BY_PERSON];
                    k.extend_from_slice(person.as_bytes());
                    k.push(0);
                    k.extend_from_slice(id.as_bytes());
                    index.push(k);
                }
            }
            stored.events.push(event.clone());
            stored.sequences.push(sequence);
            applied.push((before, event));
        }
        let mut batch = sled::Batch::default();
        for (id, stored) in touched {
            batch.insert(referral_key(&id), stored.encode_to_vec());
        }
        for k in index {
            batch.insert(k, &[][..]);
        }
        if last > position {
            batch.insert(META_POSITION, &last.to_be_bytes()[..]);
        }
        self.store.exclusive(|| self.tree.apply_batch(batch))?;
        Ok(applied)
    }
}

impl crate::workflow_fold::WorkflowProjection for Referrals {
    type Applied = (Option<Referral>, ReferralEvent);
    const DURABLE: &'static str = DURABLE;
    const NAME: &'static str = "referrals";

    fn filter(&self) -> String {
        referral_filter()
    }

    fn position(&self) -> Result<u64, StoreError> {
        Referrals::position(self)
    }

    fn fold(&self, messages: &[(u64, &[u8])]) -> Result<Vec<Self::Applied>, StoreError> {
        Referrals::fold(self, messages)
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn reset(&self) -> Result<(), StoreError> {
        self.store.exclusive(|| self.tree.clear())?;
        Ok(())
    }
}

/// What is done with the police moves the fold applies (they become police case events).
pub type OnApplied = crate::workflow_fold::OnApplied<(Option<Referral>, ReferralEvent)>;

/// Drops the referral projection and replays the whole workflow stream into it; returns the events folded. Police
/// case events are not published again (they are on the events stream already).
pub async fn rebuild(
    store: &Store,
    js: &jetstream::Context,
    cancel: Cancel,
) -> Result<u64, FoldError> {
    crate::workflow_fold::rebuild(&Referrals::open(store)?, js, cancel).await
}
