//! The 12345 hotline service: its department's own checks on top of the shared ingest library.

use caselink_domain::Violations;
use caselink_ingest::checks::{require_enum, require_text};
use caselink_ingest::DepartmentRules;
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{CaseEvent, Department};

/// The hotline department.
pub struct Hotline;

impl DepartmentRules for Hotline {
    fn department(&self) -> Department {
        Department::Hotline
    }

    fn default_listen(&self) -> &'static str {
        "127.0.0.1:50056"
    }

    fn check(&self, event: &CaseEvent, v: &mut Violations) {
        match &event.payload {
            Some(Payload::TicketCreated(t)) => {
                require_enum(
                    v,
                    "ticket_created.channel",
                    t.channel,
                    "how the ticket came in",
                );
                if t.text.trim().is_empty() && event.summary.trim().is_empty() {
                    v.push(
                        "ticket_created.text",
                        "required: what the caller said (or a summary)",
                    );
                }
            }
            Some(Payload::TicketDispatched(t)) => {
                require_enum(
                    v,
                    "ticket_dispatched.to_department",
                    t.to_department,
                    "the department it goes to",
                );
            }
            Some(Payload::TicketMerged(t))
                if t.duplicate_of_case_ref.trim().is_empty()
                    && t.duplicate_of_event_id.trim().is_empty() =>
            {
                v.push(
                    "ticket_merged.duplicate_of_case_ref",
                    "required: the ticket or 12315 complaint this one duplicates",
                );
            }
            Some(Payload::TicketClosed(t)) => {
                require_enum(
                    v,
                    "ticket_closed.satisfaction",
                    t.satisfaction,
                    "the caller's satisfaction",
                );
            }
            Some(Payload::TicketMarkedUnfounded(t)) => {
                require_text(
                    v,
                    "ticket_marked_unfounded.reason",
                    &t.reason,
                    "why the ticket is unfounded",
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caselink_proto::v1::TicketMerged;

    #[test]
    fn merged_ticket_names_what_it_duplicates() {
        let event = CaseEvent {
            payload: Some(Payload::TicketMerged(TicketMerged::default())),
            ..CaseEvent::default()
        };
        let mut v = Violations::default();
        Hotline.check(&event, &mut v);
        assert_eq!(
            v.iter().map(|x| x.field.as_str()).collect::<Vec<_>>(),
            ["ticket_merged.duplicate_of_case_ref"]
        );
    }
}
