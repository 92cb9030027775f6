//! The domain rules of caselink's case events, shared by every service.
//!
//! Owns: validation at the door ([`validate_event`]: what every department's ingest refuses, field by field);
//! identity and pseudonymisation (resident ID numbers per GB 11643, the keyed [`PersonKey`] and phone and address keys,
//! [`pseudonymise()`]); masking ([`mask_id_number`] and friends, one table for every view); sealing the clear identity
//! ([`Keyring`], XChaCha20-Poly1305 with rotating keys); the kind catalogue (which kinds exist and which department
//! owns each, domain.md section 3); Unified Social Credit Codes (GB 32100) and region codes; deterministic event ids;
//! and clocks.
//!
//! Never: any I/O (no files, network, environment or async runtime; secrets are handed in), and never logging or
//! formatting personal data: error messages and `Debug` output show ID numbers masked and keys redacted.
//!
//! ```
//! use caselink_domain::*;
//!
//! let id = parse_id_number("11010519491231002x").unwrap();
//! assert_eq!(id.as_str(), "11010519491231002X");
//! assert_eq!(format!("{id:?}"), r#"IdNumber("110105********002X")"#);
//!
//! let secret = KeySecret::generate();
//! let key = person_key(&secret, &id);
//! assert_eq!(key, person_key(&secret, &parse_id_number("11010519491231002X").unwrap()));
//! assert!(key.partition() < PARTITIONS);
//!
//! assert_eq!(
//!     parse_id_number("110105194912310021").unwrap_err().to_string(),
//!     "ID number's check character (the 18th) is '1' but the first 17 digits require 'X'; a digit is probably mistyped"
//! );
//! ```

pub mod audit;
pub mod catalogue;
pub mod clock;
pub mod event_id;
pub mod identity;
pub mod mask;
pub mod pseudonymise;
pub mod region;
pub mod seal;
pub mod uscc;
pub mod validate;

pub use audit::{audit_hash, seal_audit, verify_chain, ChainBreak, GENESIS};
pub use catalogue::{
    all_kinds, department_code, department_from_code, department_of, department_of_kind,
    department_title, kind_name, kinds_of, payload_field, ALL_DEPARTMENTS,
};
pub use clock::{
    format_duration, format_rfc3339, format_timestamp, system_time_from_timestamp,
    timestamp_from_system_time, timestamp_micros, Clock, ManualClock, SystemClock,
};
pub use event_id::{derive_event_id, EVENT_NAMESPACE};
pub use identity::{
    address_key, id_check_char, identity_digest, looks_like_phone, normalise_address,
    normalise_phone, parse_id_number, person_key, phone_key, IdNumber, IdNumberError, KeySecret,
    PersonKey, PersonKeyError, SecretError, EARLIEST_BIRTH_YEAR, MIN_SECRET_BYTES, PARTITIONS,
};
pub use mask::{mask_id_number, mask_name, mask_phone, redact_id_numbers};
pub use pseudonymise::{pseudonymise, IdentityKeys};
pub use region::{is_province_prefix, province_name, validate_region_code, RegionError, PROVINCES};
pub use seal::{Keyring, SealError, SealKey};
pub use uscc::{uscc_check_char, validate_uscc, UsccError};
pub use validate::{
    validate_event, Limits, Violation, Violations, MAX_CASE_REF_CHARS, MAX_NAME_CHARS,
    MAX_SOURCE_ID_CHARS,
};

#[cfg(test)]
mod testdata;
