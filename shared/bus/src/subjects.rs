//! The subject scheme.
//!
//! Case events go to `caselink.ev.p{NN}.{department}` where `NN` (two digits, `00`..`63`) is the virtual partition of
//! the person key ([`caselink_domain::PersonKey::partition`]). The partition count is fixed forever
//! ([`caselink_domain::PARTITIONS`]): an aggregator owns a range of partitions through filter subjects, so scaling out
//! never rewrites the log. Subjects carry no personal data.

use caselink_domain::{department_code, PARTITIONS};
use caselink_proto::v1::Department;

/// Prefix of every case-event subject.
pub const EVENTS_PREFIX: &str = "caselink.ev";

/// The subject of a case event in `partition` from `department`.
pub fn event_subject(partition: u16, department: Department) -> String {
    debug_assert!(partition < PARTITIONS);
    format!(
        "{EVENTS_PREFIX}.p{partition:02}.{}",
        department_code(department)
    )
}

/// Filter subjects selecting the partitions `range` (all departments).
pub fn partition_filters(range: std::ops::Range<u16>) -> Vec<String> {
    if range.start == 0 && range.end >= PARTITIONS {
        return vec![format!("{EVENTS_PREFIX}.>")];
    }
    range
        .map(|p| format!("{EVENTS_PREFIX}.p{p:02}.*"))
        .collect()
}

/// The partition number of an event subject, if it is one.
pub fn partition_of_subject(subject: &str) -> Option<u16> {
    let rest = subject.strip_prefix(EVENTS_PREFIX)?.strip_prefix(".p")?;
    rest.get(..2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_subject_carries_partition_and_department_only() {
        assert_eq!(
            event_subject(7, Department::Market),
            "caselink.ev.p07.market"
        );
        assert_eq!(
            event_subject(63, Department::Hotline),
            "caselink.ev.p63.hotline"
        );
        assert_eq!(partition_of_subject("caselink.ev.p17.court"), Some(17));
        assert_eq!(partition_of_subject("other.p17.court"), None);
    }

    #[test]
    fn all_partitions_use_one_wildcard_and_ranges_list_each() {
        assert_eq!(
            partition_filters(0..PARTITIONS),
            vec!["caselink.ev.>".to_string()]
        );
        assert_eq!(
            partition_filters(2..4),
            vec![
                "caselink.ev.p02.*".to_string(),
                "caselink.ev.p03.*".to_string()
            ]
        );
    }
}
