//! The Justice Bureau service (administrative reconsideration): its own checks on top of the shared ingest library.

use caselink_domain::Violations;
use caselink_ingest::checks::{require_enum, require_text};
use caselink_ingest::DepartmentRules;
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{CaseEvent, Department};

/// The justice department.
pub struct Justice;

impl DepartmentRules for Justice {
    fn department(&self) -> Department {
        Department::Justice
    }

    fn default_listen(&self) -> &'static str {
        "127.0.0.1:50053"
    }

    fn check(&self, event: &CaseEvent, v: &mut Violations) {
        match &event.payload {
            Some(Payload::ReconsiderationFiled(r)) => {
                require_text(
                    v,
                    "reconsideration_filed.respondent_agency",
                    &r.respondent_agency,
                    "the respondent agency",
                );
                require_enum(
                    v,
                    "reconsideration_filed.matter_type",
                    r.matter_type,
                    "what kind of matter is contested",
                );
            }
            Some(Payload::ReconsiderationRejected(r)) => {
                require_enum(
                    v,
                    "reconsideration_rejected.reason",
                    r.reason,
                    "why the application is rejected",
                );
            }
            Some(Payload::ReconsiderationDecided(r)) => {
                require_enum(
                    v,
                    "reconsideration_decided.outcome",
                    r.outcome,
                    "the decision",
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caselink_proto::v1::ReconsiderationRejected;

    #[test]
    fn rejection_must_give_its_reason() {
        let event = CaseEvent {
            payload: Some(Payload::ReconsiderationRejected(
                ReconsiderationRejected::default(),
            )),
            ..CaseEvent::default()
        };
        let mut v = Violations::default();
        Justice.check(&event, &mut v);
        assert_eq!(
            v.iter().map(|x| x.field.as_str()).collect::<Vec<_>>(),
            ["reconsideration_rejected.reason"]
        );
    }
}
