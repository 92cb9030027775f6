//! The People's Court service: its department's own checks on top of the shared ingest library.

use caselink_domain::Violations;
use caselink_ingest::checks::{require_enum, require_positive, require_text};
use caselink_ingest::DepartmentRules;
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{CaseEvent, Department};

/// The court department.
pub struct Court;

impl DepartmentRules for Court {
    fn department(&self) -> Department {
        Department::Court
    }

    fn default_listen(&self) -> &'static str {
        "127.0.0.1:50054"
    }

    fn check(&self, event: &CaseEvent, v: &mut Violations) {
        match &event.payload {
            Some(Payload::AdminSuitFiled(s)) => {
                require_text(
                    v,
                    "admin_suit_filed.defendant_agency",
                    &s.defendant_agency,
                    "the defendant agency",
                );
            }
            Some(Payload::AdminSuitDismissed(s)) => {
                require_enum(
                    v,
                    "admin_suit_dismissed.reason",
                    s.reason,
                    "why the suit is dismissed",
                );
            }
            Some(Payload::AdminSuitJudged(s)) => {
                require_enum(v, "admin_suit_judged.outcome", s.outcome, "the judgment");
            }
            Some(Payload::CivilClaimFiled(c)) => {
                require_positive(
                    v,
                    "civil_claim_filed.claimed_fen",
                    c.claimed_fen,
                    "the amount claimed, in fen",
                );
            }
            Some(Payload::CivilClaimJudged(c)) => {
                require_enum(v, "civil_claim_judged.outcome", c.outcome, "the judgment");
            }
            Some(Payload::CriminalJudged(c)) => {
                require_enum(v, "criminal_judged.offence", c.offence, "the offence tried");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caselink_proto::v1::CriminalJudged;

    #[test]
    fn criminal_judgment_names_the_offence() {
        let event = CaseEvent {
            payload: Some(Payload::CriminalJudged(CriminalJudged {
                convicted: true,
                ..CriminalJudged::default()
            })),
            ..CaseEvent::default()
        };
        let mut v = Violations::default();
        Court.check(&event, &mut v);
        assert_eq!(
            v.iter().map(|x| x.field.as_str()).collect::<Vec<_>>(),
            ["criminal_judged.offence"]
        );
    }
}
