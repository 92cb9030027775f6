//! Event ids (domain.md section 3): an event submitted without an id gets one derived from its department and the
//! department's own record key, so a retried submission is the same event and is stored once.

use caselink_proto::v1::Department;
use uuid::Uuid;

use crate::catalogue::department_code;

/// The UUID v5 namespace of caselink event ids: `5f0c7a3e-8d2b-4c61-9e47-b1a6d3f08c25`. Fixed forever: changing it
/// changes every derived event id and breaks deduplication of retried submissions.
pub const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x5f0c7a3e_8d2b_4c61_9e47_b1a6d3f08c25);

/// The id of the record `source_id` of `department`: UUID v5 in [`EVENT_NAMESPACE`] of `"<department code>/<source_id>"`
/// (e.g. `"market/MK-2026-000123"`).
pub fn derive_event_id(department: Department, source_id: &str) -> Uuid {
    let name = format!("{}/{}", department_code(department), source_id);
    Uuid::new_v5(&EVENT_NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_the_documented_constant() {
        assert_eq!(
            EVENT_NAMESPACE.to_string(),
            "5f0c7a3e-8d2b-4c61-9e47-b1a6d3f08c25"
        );
        assert_eq!(EVENT_NAMESPACE.get_version_num(), 4);
    }

    #[test]
    fn same_record_gives_the_same_id() {
        let a = derive_event_id(Department::Market, "MK-2026-000123");
        assert_eq!(a, derive_event_id(Department::Market, "MK-2026-000123"));
        assert_eq!(a, Uuid::new_v5(&EVENT_NAMESPACE, b"market/MK-2026-000123"));
    }

    #[test]
    fn different_department_or_record_gives_a_different_id() {
        let a = derive_event_id(Department::Market, "2026-1");
        assert_ne!(a, derive_event_id(Department::Police, "2026-1"));
        assert_ne!(a, derive_event_id(Department::Market, "2026-2"));
    }

    #[test]
    fn derived_ids_are_version_5() {
        let id = derive_event_id(Department::Hotline, "T-1");
        assert_eq!(id.get_version_num(), 5);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
    }
}
