//! Police moves in the person's timeline: each police receipt, registration, decline and close of a referral becomes a
//! police case event (`lead.received`, `case.registered`, `case.declined`, `case.closed`) for each person of the
//! referral, published onto the events stream like a department's event.
//!
//! The referral carries person keys, never clear identity, so the event's `subject.person_key` is set directly (the
//! fold takes it as is). Ids are deterministic — `derive_event_id(police, "<referral>/<version>/<person key>")`, also
//! the `Nats-Msg-Id` — so publishing again after a crash (the fold publishes before acking) stores nothing twice.

use async_nats::jetstream;
use caselink_bus::subjects::event_subject;
use caselink_domain::{derive_event_id, PersonKey};
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{
    CaseClosed, CaseDeclined, CaseEvent, CaseRegistered, Department, LeadReceived, Person,
    PoliceCaseOutcome, ReferralEvent, ReferralOutcome, ReferralRole,
};
use caselink_workflow::referral::{Action, Referral};
use prost::Message;

use crate::consumer::FoldError;

/// The police case events recording `event` (by police) for each person of the referral `before` it.
pub fn police_case_events(before: Option<&Referral>, event: &ReferralEvent) -> Vec<CaseEvent> {
    let Some(referral) = before else {
        return Vec::new();
    };
    if event.actor_role != ReferralRole::Police as i32 {
        return Vec::new();
    }
    let id = &event.referral_id;
    let payload = match &event.action {
        Some(Action::Received(_)) => Payload::LeadReceived(LeadReceived {
            referral_id: id.clone(),
            from_agency: referral.agency.clone(),
            police_unit: event.actor_unit.clone(),
        }),
        Some(Action::Registered(r)) => Payload::CaseRegistered(CaseRegistered {
            offence: if r.offence == 0 {
                referral.offence as i32
            } else {
                r.offence
            },
            referral_id: id.clone(),
        }),
        Some(Action::ReconsiderationDecided(d)) if d.register => {
            Payload::CaseRegistered(CaseRegistered {
                offence: referral.offence as i32,
                referral_id: id.clone(),
            })
        }
        Some(Action::Declined(d)) => Payload::CaseDeclined(CaseDeclined {
            reason: d.reason,
            detail: d.detail.clone(),
            referral_id: id.clone(),
        }),
        Some(Action::Closed(c)) => Payload::CaseClosed(CaseClosed {
            outcome: police_outcome(c.outcome()) as i32,
            offence: referral.offence as i32,
        }),
        _ => return Vec::new(),
    };
    referral
        .person_keys
        .iter()
        .map(|key| {
            let source_id = format!("{id}/{}/{key}", event.version);
            CaseEvent {
                event_id: derive_event_id(Department::Police, &source_id).to_string(),
                source_id,
                department: Department::Police as i32,
                occurred_at: event.occurred_at,
                recorded_at: event.occurred_at,
                region_code: referral.region_code.clone(),
                case_ref: referral.case_ref.clone(),
                subject: Some(Person {
                    person_key: key.clone(),
                    ..Person::default()
                }),
                summary: format!("referral {id}"),
                payload: Some(payload.clone()),
                ..CaseEvent::default()
            }
        })
        .collect()
}

fn police_outcome(outcome: ReferralOutcome) -> PoliceCaseOutcome {
    match outcome {
        ReferralOutcome::CriminalCase => PoliceCaseOutcome::ProsecutionRecommended,
        ReferralOutcome::SecurityPenalty => PoliceCaseOutcome::SecurityPenalty,
        ReferralOutcome::ReturnedForAdministrativeHandling => {
            PoliceCaseOutcome::ReturnedForAdministrativeHandling
        }
        ReferralOutcome::Unspecified | ReferralOutcome::Other => PoliceCaseOutcome::Unspecified,
    }
}

/// Publishes the police case events of `applied` moves, each with its event id as `Nats-Msg-Id`, and waits for the
/// acks.
pub async fn publish(
    js: &jetstream::Context,
    applied: &[(Option<Referral>, ReferralEvent)],
) -> Result<usize, FoldError> {
    let mut published = 0;
    for (before, event) in applied {
        for case_event in police_case_events(before.as_ref(), event) {
            let Ok(key) = PersonKey::from_hex(
                case_event
                    .subject
                    .as_ref()
                    .map_or("", |s| s.person_key.as_str()),
            ) else {
                tracing::warn!(referral_id = %event.referral_id, "a referral person key is malformed; no timeline event");
                continue;
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", case_event.event_id.as_str());
            let ack = js
                .publish_with_headers(
                    event_subject(key.partition(), Department::Police),
                    headers,
                    case_event.encode_to_vec().into(),
                )
                .await
                .map_err(|e| FoldError::Bus(e.to_string()))?;
            ack.await.map_err(|e| FoldError::Bus(e.to_string()))?;
            published += 1;
        }
    }
    Ok(published)
}
