//! The derived stream: what the aggregator concludes from the facts (screening alerts), rebuildable and re-emittable.
//!
//! `CASELINK_DERIVED` holds alerts on `caselink.alert.<province>.<prefecture>.<county>` — the 2-, 4- and 6-digit
//! prefixes of the region code — so a watcher of a region prefix of 2, 4 or 6 digits gets exactly its region through a
//! filter subject. Subjects carry region codes only, never personal data. Alerts are published from the aggregator's
//! outbox with a deterministic `Nats-Msg-Id`, so a republish after a crash is recognised.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::BusError;

/// The stream of derived events.
pub const DERIVED_STREAM: &str = "CASELINK_DERIVED";
/// Prefix of alert subjects.
pub const ALERT_PREFIX: &str = "caselink.alert";
/// Prefix of overdue-referral alerts (`caselink.overdue.<2>.<4>.<6>`, the referral's region; payload a `ReferralView`).
pub const OVERDUE_PREFIX: &str = "caselink.overdue";

/// The subject of an alert in `region_code` (6 digits; anything else goes under `000000`).
pub fn alert_subject(region_code: &str) -> String {
    let code = if region_code.len() == 6 && region_code.bytes().all(|b| b.is_ascii_digit()) {
        region_code
    } else {
        "000000"
    };
    format!("{ALERT_PREFIX}.{}.{}.{code}", &code[..2], &code[..4])
}

/// The subject of an overdue-referral alert in `region_code` (6 digits; anything else goes under `000000`).
pub fn overdue_subject(region_code: &str) -> String {
    let code = if region_code.len() == 6 && region_code.bytes().all(|b| b.is_ascii_digit()) {
        region_code
    } else {
        "000000"
    };
    format!("{OVERDUE_PREFIX}.{}.{}.{code}", &code[..2], &code[..4])
}

/// The filter subject for alerts of regions starting with `prefix`, and whether the subject filter alone is exact
/// (prefixes of 0, 2, 4 or 6 digits); for other lengths the watcher must also check each alert's region itself.
pub fn alert_filter(prefix: &str) -> (String, bool) {
    match prefix.len() {
        0 => (format!("{ALERT_PREFIX}.>"), true),
        2 => (format!("{ALERT_PREFIX}.{prefix}.>"), true),
        4 => (format!("{ALERT_PREFIX}.{}.{prefix}.*", &prefix[..2]), true),
        6 => (
            format!("{ALERT_PREFIX}.{}.{}.{prefix}", &prefix[..2], &prefix[..4]),
            true,
        ),
        1 => (format!("{ALERT_PREFIX}.>"), false),
        3 => (format!("{ALERT_PREFIX}.{}.>", &prefix[..2]), false),
        _ => (
            format!("{ALERT_PREFIX}.{}.{}.*", &prefix[..2], &prefix[..4]),
            false,
        ),
    }
}

/// The configuration of the derived stream.
pub fn derived_stream_config(replicas: usize) -> stream::Config {
    stream::Config {
        name: DERIVED_STREAM.to_string(),
        description: Some(
            "caselink derived events (screening alerts): rebuildable from the case events".into(),
        ),
        subjects: vec![format!("{ALERT_PREFIX}.>"), format!("{OVERDUE_PREFIX}.>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(24 * 3600),
        num_replicas: replicas,
        allow_atomic_publish: true,
        ..Default::default()
    }
}

/// Creates the derived stream if it does not exist, and adds subject families it lacks (a stream created before
/// overdue alerts).
pub async fn ensure_derived_stream(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<stream::Stream, BusError> {
    let wanted = derived_stream_config(replicas);
    let subjects = wanted.subjects.clone();
    crate::streams::ensure_stream(js, wanted, |current| {
        let missing: Vec<String> = subjects
            .into_iter()
            .filter(|s| !current.subjects.contains(s))
            .collect();
        let changed = !missing.is_empty();
        current.subjects.extend(missing);
        changed
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_subjects_nest_the_region_prefixes() {
        assert_eq!(alert_subject("430602"), "caselink.alert.43.4306.430602");
        assert_eq!(alert_subject("bad"), "caselink.alert.00.0000.000000");
    }

    #[test]
    fn filters_are_exact_for_two_four_and_six_digits() {
        assert_eq!(alert_filter(""), ("caselink.alert.>".into(), true));
        assert_eq!(alert_filter("43"), ("caselink.alert.43.>".into(), true));
        assert_eq!(
            alert_filter("4306"),
            ("caselink.alert.43.4306.*".into(), true)
        );
        assert_eq!(
            alert_filter("430602"),
            ("caselink.alert.43.4306.430602".into(), true)
        );
        assert_eq!(
            alert_filter("43060"),
            ("caselink.alert.43.4306.*".into(), false)
        );
        assert_eq!(alert_filter("430"), ("caselink.alert.43.>".into(), false));
    }
}
