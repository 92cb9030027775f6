//! The `caselink.v1` wire contract, generated from `proto/caselink/v1` (the only source of it).
//!
//! Owns: the prost message types, the tonic clients and servers, proto3-canonical JSON (serde via pbjson) and the file
//! descriptor set for gRPC reflection. Never: hand-written logic; helpers over these types live in `caselink-domain`.
//!
//! ```
//! use caselink_proto::v1::{CaseEvent, Department};
//! let event: CaseEvent = serde_json::from_str(r#"{"sourceId":"MK-1","department":"DEPARTMENT_MARKET"}"#).unwrap();
//! assert_eq!(event.department(), Department::Market);
//! ```

/// The `caselink.v1` package.
pub mod v1 {
    #![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/caselink.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/caselink.v1.serde.rs"));
}

/// Encoded `FileDescriptorSet` of the contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/caselink_descriptor.bin"));

pub use pbjson_types::Timestamp;
