//! The Public Security Bureau service: its department's own checks on top of the shared ingest library.
//!
//! Owns the police kinds of domain.md section 3 (extortion reports, received leads, registration or declination,
//! security penalties, case closure).

use caselink_domain::Violations;
use caselink_ingest::checks::{require_enum, require_positive};
use caselink_ingest::DepartmentRules;
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{CaseEvent, Department, SecurityPenaltyKind};

/// The police department.
pub struct Police;

/// Longest administrative detention for combined public-security offences (Public Security Administration Punishments
/// Law, art. 16).
const MAX_DETENTION_DAYS: i32 = 20;

impl DepartmentRules for Police {
    fn department(&self) -> Department {
        Department::Police
    }

    fn default_listen(&self) -> &'static str {
        "127.0.0.1:50052"
    }

    fn check(&self, event: &CaseEvent, v: &mut Violations) {
        match &event.payload {
            Some(Payload::ExtortionReported(_)) if event.merchant.is_none() => {
                v.push(
                    "merchant",
                    "required: the merchant who reports the extortion",
                );
            }
            Some(Payload::LeadReceived(l))
                if l.referral_id.trim().is_empty() && l.from_agency.trim().is_empty() =>
            {
                v.push(
                    "lead_received.referral_id",
                    "required: the referral or the agency it came from",
                );
            }
            Some(Payload::CaseRegistered(c)) => {
                require_enum(
                    v,
                    "case_registered.offence",
                    c.offence,
                    "the offence registered",
                );
            }
            Some(Payload::CaseDeclined(c)) => {
                require_enum(
                    v,
                    "case_declined.reason",
                    c.reason,
                    "why no case is registered",
                );
            }
            Some(Payload::SecurityPenaltyImposed(p)) => {
                require_enum(
                    v,
                    "security_penalty_imposed.offence",
                    p.offence,
                    "the offence penalised",
                );
                require_enum(
                    v,
                    "security_penalty_imposed.penalty",
                    p.penalty,
                    "warning, fine or detention",
                );
                if p.penalty == SecurityPenaltyKind::Fine as i32 {
                    require_positive(
                        v,
                        "security_penalty_imposed.fine_fen",
                        p.fine_fen,
                        "the fine, in fen",
                    );
                }
                if p.penalty == SecurityPenaltyKind::Detention as i32
                    && !(1..=MAX_DETENTION_DAYS).contains(&p.detention_days)
                {
                    v.push(
                        "security_penalty_imposed.detention_days",
                        format!("detention must be 1 to {MAX_DETENTION_DAYS} days"),
                    );
                }
            }
            Some(Payload::CaseClosed(c)) => {
                require_enum(v, "case_closed.outcome", c.outcome, "how the case ended");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caselink_proto::v1::SecurityPenaltyImposed;

    #[test]
    fn detention_beyond_the_statutory_maximum_is_rejected() {
        let event = CaseEvent {
            payload: Some(Payload::SecurityPenaltyImposed(SecurityPenaltyImposed {
                offence: 5,
                penalty: SecurityPenaltyKind::Detention as i32,
                detention_days: 30,
                ..SecurityPenaltyImposed::default()
            })),
            ..CaseEvent::default()
        };
        let mut v = Violations::default();
        Police.check(&event, &mut v);
        let fields: Vec<_> = v.iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["security_penalty_imposed.detention_days"]);
    }
}
