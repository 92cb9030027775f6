//! Test helpers shared by the crate's unit tests.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use caselink_domain::PersonKey;
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{CaseEvent, ComplaintReceived, Department, Merchant, Person};

use crate::fold::Folder;

/// Complaint `n` (a day apart, each on its own merchant and with its own text) of `person` carrying `phone`.
pub(crate) fn complaint(n: u128, person: &PersonKey, phone: &str) -> CaseEvent {
    CaseEvent {
        event_id: uuid::Uuid::from_u128(0x5000 + n).to_string(),
        source_id: format!("C-{n}"),
        department: Department::Market as i32,
        occurred_at: Some(caselink_proto::Timestamp {
            seconds: 1_750_000_000 + i64::try_from(n).unwrap() * 86_400,
            nanos: 0,
        }),
        region_code: "430602".into(),
        subject: Some(Person {
            person_key: person.to_hex(),
            phone_key: phone.into(),
            ..Person::default()
        }),
        merchant: Some(Merchant {
            uscc: format!("91430600MA4L{n:06}"),
            ..Merchant::default()
        }),
        summary: format!("投诉 {n}"),
        payload: Some(Payload::ComplaintReceived(ComplaintReceived::default())),
        ..CaseEvent::default()
    }
}

/// The fold with the default rules, no alerts.
pub(crate) fn screening() -> Folder {
    Folder {
        screener: Some(Arc::new(caselink_screening::Screener::new(
            caselink_screening::RuleSet::default(),
        ))),
        alerts: false,
    }
}

/// Encoded messages numbered from `first` as stream sequences, as the fold takes them.
pub(crate) fn numbered(encoded: &[Vec<u8>], first: u64) -> Vec<(u64, &[u8])> {
    encoded
        .iter()
        .enumerate()
        .map(|(i, m)| (first + i as u64, m.as_slice()))
        .collect()
}

/// Waits (polling every 10 ms) until `done`; fails the test, naming `what`, after many tries.
pub(crate) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}
