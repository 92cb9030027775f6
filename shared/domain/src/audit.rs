//! The audit chain's arithmetic: how a record's hash is computed and how a chain is verified. Pure; the appending lives
//! in `caselink-bus`.

use caselink_proto::v1::AuditRecord;
use prost::Message;
use sha2::{Digest, Sha256};

/// The `prev_hash` of a chain's first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// SHA-256 over the previous hash and the record's protobuf encoding with `hash` empty.
pub fn audit_hash(record: &AuditRecord) -> [u8; 32] {
    let mut unsealed = record.clone();
    unsealed.hash.clear();
    let mut hasher = Sha256::new();
    hasher.update(&record.prev_hash);
    hasher.update(unsealed.encode_to_vec());
    hasher.finalize().into()
}

/// Links `record` after a record with `prev_hash` at `prev_index`, and seals it with its hash.
pub fn seal_audit(mut record: AuditRecord, prev_index: u64, prev_hash: &[u8]) -> AuditRecord {
    record.chain_index = prev_index + 1;
    record.prev_hash = prev_hash.to_vec();
    record.hash = audit_hash(&record).to_vec();
    record
}

/// Where a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain {chain}: record {index}: {why}")]
pub struct ChainBreak {
    pub chain: String,
    pub index: u64,
    pub why: String,
}

/// Follows one chain's records in stream order; returns how many verified.
pub fn verify_chain<'a>(
    chain: &str,
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> Result<u64, ChainBreak> {
    let mut prev_hash = GENESIS.to_vec();
    let mut expected_index = 1u64;
    for record in records {
        let brk = |why: String| ChainBreak {
            chain: chain.to_string(),
            index: record.chain_index,
            why,
        };
        if record.chain != chain {
            return Err(brk(format!("belongs to chain {:?}", record.chain)));
        }
        if record.chain_index != expected_index {
            return Err(brk(format!(
                "expected index {expected_index}: a record is missing or out of order"
            )));
        }
        if record.prev_hash != prev_hash {
            return Err(brk(
                "does not name the previous record's hash: a record was altered or removed".into(),
            ));
        }
        if record.hash != audit_hash(record) {
            return Err(brk(
                "its content does not match its hash: the record was altered".into(),
            ));
        }
        prev_hash.clone_from(&record.hash);
        expected_index += 1;
    }
    Ok(expected_index - 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let (index, prev) = out
                .last()
                .map_or((0, GENESIS.to_vec()), |r| (r.chain_index, r.hash.clone()));
            let record = AuditRecord {
                chain: "linkage".into(),
                caller: format!("analyst-{i}"),
                person_keys: vec![format!("{i:064x}")],
                purpose: "case review".into(),
                ..AuditRecord::default()
            };
            out.push(seal_audit(record, index, &prev));
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify_chain("linkage", &chain(5)), Ok(5));
        assert_eq!(verify_chain("linkage", &[]), Ok(0));
    }

    #[test]
    fn an_altered_record_is_detected() {
        let mut records = chain(5);
        records[2].purpose = "curiosity".into();
        let err = verify_chain("linkage", &records).unwrap_err();
        assert_eq!(err.index, 3);
        assert!(err.why.contains("altered"), "{err}");
    }

    #[test]
    fn a_removed_or_reordered_record_is_detected() {
        let mut records = chain(5);
        records.remove(1);
        assert_eq!(verify_chain("linkage", &records).unwrap_err().index, 3);
        let mut records = chain(5);
        records.swap(1, 2);
        assert!(verify_chain("linkage", &records).is_err());
    }

    #[test]
    fn a_recomputed_forgery_still_breaks_the_next_link() {
        let mut records = chain(4);
        records[1].caller = "someone-else".into();
        records[1].hash = audit_hash(&records[1]).to_vec();
        let err = verify_chain("linkage", &records).unwrap_err();
        assert_eq!(err.index, 3, "{err}");
    }
}
