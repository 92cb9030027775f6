//! The Market Supervision Bureau (12315) service: its department's own checks on top of the shared ingest library.
//!
//! Owns the market kinds of domain.md section 3 (complaints, reports, disclosure, discipline reports, penalties).

use caselink_domain::Violations;
use caselink_ingest::checks::{require_enum, require_positive, require_text};
use caselink_ingest::DepartmentRules;
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{CaseEvent, ClaimType, Department, VerificationOutcome};

/// The market department.
pub struct Market;

impl DepartmentRules for Market {
    fn department(&self) -> Department {
        Department::Market
    }

    fn default_listen(&self) -> &'static str {
        "127.0.0.1:50051"
    }

    fn check(&self, event: &CaseEvent, v: &mut Violations) {
        let needs_merchant = |v: &mut Violations, what: &str| {
            if event.merchant.is_none() {
                v.push("merchant", format!("required: {what}"));
            }
        };
        match &event.payload {
            Some(Payload::ComplaintReceived(c)) => {
                needs_merchant(v, "a complaint names the merchant complained about");
                require_enum(
                    v,
                    "complaint_received.channel",
                    c.channel,
                    "how the complaint arrived",
                );
                require_enum(
                    v,
                    "complaint_received.claim_type",
                    c.claim_type,
                    "what the complainant claims",
                );
            }
            Some(Payload::ComplaintRejected(c)) => {
                require_enum(
                    v,
                    "complaint_rejected.reason",
                    c.reason,
                    "why the complaint is not accepted",
                );
            }
            Some(Payload::ComplaintMediationClosed(c)) => {
                require_enum(
                    v,
                    "complaint_mediation_closed.outcome",
                    c.outcome,
                    "success, failed or terminated",
                );
            }
            Some(Payload::CompensationPaid(c)) => {
                require_positive(
                    v,
                    "compensation_paid.amount_fen",
                    c.amount_fen,
                    "the amount paid, in fen",
                );
                let punitive_basis = [ClaimType::Punitive10x as i32, ClaimType::Punitive3x as i32];
                if c.punitive && !punitive_basis.contains(&c.basis) {
                    v.push(
                        "compensation_paid.basis",
                        "punitive compensation must name its basis: 10x or 3x",
                    );
                }
            }
            Some(Payload::ReportReceived(r)) => {
                needs_merchant(v, "a report names the merchant reported");
                require_enum(
                    v,
                    "report_received.alleged_violation",
                    r.alleged_violation,
                    "the alleged violation",
                );
            }
            Some(Payload::ReportVerified(r)) => {
                require_enum(
                    v,
                    "report_verified.outcome",
                    r.outcome,
                    "substantiated or unsubstantiated",
                );
                if r.found_fabricated && r.outcome == VerificationOutcome::Substantiated as i32 {
                    v.push(
                        "report_verified.found_fabricated",
                        "a substantiated report cannot be fabricated",
                    );
                }
            }
            Some(Payload::DisclosureRequested(d)) => {
                require_text(
                    v,
                    "disclosure_requested.matter",
                    &d.matter,
                    "what information is requested",
                );
            }
            Some(Payload::DisclosureDecided(d)) => {
                require_enum(
                    v,
                    "disclosure_decided.outcome",
                    d.outcome,
                    "the decision on the request",
                );
            }
            Some(Payload::DisciplineReportNotified(d)) => {
                require_text(
                    v,
                    "discipline_report_notified.target_agency",
                    &d.target_agency,
                    "whose staff were reported",
                );
            }
            Some(Payload::PenaltyImposed(p)) => {
                needs_merchant(v, "a penalty is imposed on a merchant");
                require_enum(
                    v,
                    "penalty_imposed.violation",
                    p.violation,
                    "the violation penalised",
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caselink_proto::v1::{CompensationPaid, ComplaintReceived, Merchant};

    fn check(event: &CaseEvent) -> Vec<String> {
        let mut v = Violations::default();
        Market.check(event, &mut v);
        v.iter().map(|x| x.field.clone()).collect()
    }

    #[test]
    fn complaint_needs_merchant_channel_and_claim_type() {
        let mut event = CaseEvent {
            payload: Some(Payload::ComplaintReceived(ComplaintReceived::default())),
            ..CaseEvent::default()
        };
        assert_eq!(
            check(&event),
            [
                "merchant",
                "complaint_received.channel",
                "complaint_received.claim_type"
            ]
        );
        event.merchant = Some(Merchant::default());
        event.payload = Some(Payload::ComplaintReceived(ComplaintReceived {
            channel: 1,
            claim_type: ClaimType::Punitive10x as i32,
            ..ComplaintReceived::default()
        }));
        assert!(check(&event).is_empty());
    }

    #[test]
    fn punitive_compensation_names_its_basis() {
        let event = CaseEvent {
            payload: Some(Payload::CompensationPaid(CompensationPaid {
                amount_fen: 100,
                punitive: true,
                ..CompensationPaid::default()
            })),
            ..CaseEvent::default()
        };
        assert_eq!(check(&event), ["compensation_paid.basis"]);
    }
}
