//! The Petition Office service: its department's own checks on top of the shared ingest library.

use caselink_domain::Violations;
use caselink_ingest::checks::{require_enum, require_text};
use caselink_ingest::DepartmentRules;
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{CaseEvent, Department};

/// The petition department.
pub struct Petition;

impl DepartmentRules for Petition {
    fn department(&self) -> Department {
        Department::Petition
    }

    fn default_listen(&self) -> &'static str {
        "127.0.0.1:50055"
    }

    fn check(&self, event: &CaseEvent, v: &mut Violations) {
        match &event.payload {
            Some(Payload::PetitionReceived(p)) => {
                require_text(
                    v,
                    "petition_received.matter",
                    &p.matter,
                    "what the petition is about",
                );
                require_enum(
                    v,
                    "petition_received.form",
                    p.form,
                    "letter, visit, online or phone",
                );
            }
            Some(Payload::PetitionClassified(p)) => {
                require_enum(
                    v,
                    "petition_classified.class",
                    p.class,
                    "the classification",
                );
            }
            Some(Payload::PetitionClosed(p)) => {
                require_enum(
                    v,
                    "petition_closed.satisfaction",
                    p.satisfaction,
                    "the petitioner's satisfaction",
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caselink_proto::v1::PetitionReceived;

    #[test]
    fn petition_needs_matter_and_form() {
        let event = CaseEvent {
            payload: Some(Payload::PetitionReceived(PetitionReceived::default())),
            ..CaseEvent::default()
        };
        let mut v = Violations::default();
        Petition.check(&event, &mut v);
        assert_eq!(
            v.iter().map(|x| x.field.as_str()).collect::<Vec<_>>(),
            ["petition_received.matter", "petition_received.form"]
        );
    }
}
