//! An in-memory [`ScreeningStore`] (ordered maps: iteration and encoding are deterministic), for tests, evaluation
//! and small tools.

use std::collections::BTreeMap;
use std::convert::Infallible;

use caselink_domain::PersonKey;
use prost::Message;

use crate::engine::{RelationKey, ScreeningStore};
use crate::state::{PersonScreening, RelationState};

/// Persons and relations in ordered maps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStore {
    pub persons: BTreeMap<[u8; 32], PersonScreening>,
    pub relations: BTreeMap<RelationKey, RelationState>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The person's state, if any.
    pub fn get(&self, key: &PersonKey) -> Option<&PersonScreening> {
        self.persons.get(&key.0)
    }

    /// Every state encoded as sled would hold it, in key order: equal bytes mean equal states.
    pub fn encoded(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = self
            .persons
            .iter()
            .map(|(k, v)| ([b"s".as_slice(), k.as_slice()].concat(), v.encode_to_vec()))
            .collect();
        out.extend(
            self.relations
                .iter()
                .map(|(k, v)| ([b"r".as_slice(), &k.to_bytes()].concat(), v.encode_to_vec())),
        );
        out
    }
}

impl ScreeningStore for MemoryStore {
    type Error = Infallible;

    fn person(&mut self, key: &PersonKey) -> Result<&mut PersonScreening, Infallible> {
        Ok(self.persons.entry(key.0).or_default())
    }

    fn relation(&mut self, key: &RelationKey) -> Result<&mut RelationState, Infallible> {
        Ok(self.relations.entry(key.clone()).or_default())
    }
}
