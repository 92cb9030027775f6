//! The kind catalogue (domain.md sections 2 and 3): which kinds of event exist, what they are called, and which
//! department owns (publishes) each.
//!
//! A kind's proto payload field is its name with the dot turned into an underscore (`complaint.received` ↔
//! `complaint_received`); [`payload_field`] gives it.

use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::Department;

/// The six publishing departments, in `events.proto` order.
pub const ALL_DEPARTMENTS: [Department; 6] = [
    Department::Market,
    Department::Police,
    Department::Justice,
    Department::Court,
    Department::Petition,
    Department::Hotline,
];

const MARKET_KINDS: [&str; 11] = [
    "complaint.received",
    "complaint.accepted",
    "complaint.rejected",
    "complaint.mediation_closed",
    "compensation.paid",
    "report.received",
    "report.verified",
    "disclosure.requested",
    "disclosure.decided",
    "discipline.report_notified",
    "penalty.imposed",
];
const POLICE_KINDS: [&str; 6] = [
    "extortion.reported",
    "lead.received",
    "case.registered",
    "case.declined",
    "security_penalty.imposed",
    "case.closed",
];
const JUSTICE_KINDS: [&str; 4] = [
    "reconsideration.filed",
    "reconsideration.rejected",
    "reconsideration.decided",
    "reconsideration.withdrawn",
];
const COURT_KINDS: [&str; 6] = [
    "admin_suit.filed",
    "admin_suit.dismissed",
    "admin_suit.judged",
    "civil_claim.filed",
    "civil_claim.judged",
    "criminal.judged",
];
const PETITION_KINDS: [&str; 3] = [
    "petition.received",
    "petition.classified",
    "petition.closed",
];
const HOTLINE_KINDS: [&str; 5] = [
    "ticket.created",
    "ticket.dispatched",
    "ticket.merged",
    "ticket.closed",
    "ticket.marked_unfounded",
];

/// Every kind: (name, proto payload field, owning department), in `events.proto` order.
const CATALOGUE: [(&str, &str, Department); 35] = [
    (
        "complaint.received",
        "complaint_received",
        Department::Market,
    ),
    (
        "complaint.accepted",
        "complaint_accepted",
        Department::Market,
    ),
    (
        "complaint.rejected",
        "complaint_rejected",
        Department::Market,
    ),
    (
        "complaint.mediation_closed",
        "complaint_mediation_closed",
        Department::Market,
    ),
    ("compensation.paid", "compensation_paid", Department::Market),
    ("report.received", "report_received", Department::Market),
    ("report.verified", "report_verified", Department::Market),
    (
        "disclosure.requested",
        "disclosure_requested",
        Department::Market,
    ),
    (
        "disclosure.decided",
        "disclosure_decided",
        Department::Market,
    ),
    (
        "discipline.report_notified",
        "discipline_report_notified",
        Department::Market,
    ),
    ("penalty.imposed", "penalty_imposed", Department::Market),
    (
        "extortion.reported",
        "extortion_reported",
        Department::Police,
    ),
    ("lead.received", "lead_received", Department::Police),
    ("case.registered", "case_registered", Department::Police),
    ("case.declined", "case_declined", Department::Police),
    (
        "security_penalty.imposed",
        "security_penalty_imposed",
        Department::Police,
    ),
    ("case.closed", "case_closed", Department::Police),
    (
        "reconsideration.filed",
        "reconsideration_filed",
        Department::Justice,
    ),
    (
        "reconsideration.rejected",
        "reconsideration_rejected",
        Department::Justice,
    ),
    (
        "reconsideration.decided",
        "reconsideration_decided",
        Department::Justice,
    ),
    (
        "reconsideration.withdrawn",
        "reconsideration_withdrawn",
        Department::Justice,
    ),
    ("admin_suit.filed", "admin_suit_filed", Department::Court),
    (
        "admin_suit.dismissed",
        "admin_suit_dismissed",
        Department::Court,
    ),
    ("admin_suit.judged", "admin_suit_judged", Department::Court),
    ("civil_claim.filed", "civil_claim_filed", Department::Court),
    (
        "civil_claim.judged",
        "civil_claim_judged",
        Department::Court,
    ),
    ("criminal.judged", "criminal_judged", Department::Court),
    (
        "petition.received",
        "petition_received",
        Department::Petition,
    ),
    (
        "petition.classified",
        "petition_classified",
        Department::Petition,
    ),
    ("petition.closed", "petition_closed", Department::Petition),
    ("ticket.created", "ticket_created", Department::Hotline),
    (
        "ticket.dispatched",
        "ticket_dispatched",
        Department::Hotline,
    ),
    ("ticket.merged", "ticket_merged", Department::Hotline),
    ("ticket.closed", "ticket_closed", Department::Hotline),
    (
        "ticket.marked_unfounded",
        "ticket_marked_unfounded",
        Department::Hotline,
    ),
];

/// Position of a payload's kind in [`CATALOGUE`].
fn index(payload: &Payload) -> usize {
    match payload {
        Payload::ComplaintReceived(_) => 0,
        Payload::ComplaintAccepted(_) => 1,
        Payload::ComplaintRejected(_) => 2,
        Payload::ComplaintMediationClosed(_) => 3,
        Payload::CompensationPaid(_) => 4,
        Payload::ReportReceived(_) => 5,
        Payload::ReportVerified(_) => 6,
        Payload::DisclosureRequested(_) => 7,
        Payload::DisclosureDecided(_) => 8,
        Payload::DisciplineReportNotified(_) => 9,
        Payload::PenaltyImposed(_) => 10,
        Payload::ExtortionReported(_) => 11,
        Payload::LeadReceived(_) => 12,
        Payload::CaseRegistered(_) => 13,
        Payload::CaseDeclined(_) => 14,
        Payload::SecurityPenaltyImposed(_) => 15,
        Payload::CaseClosed(_) => 16,
        Payload::ReconsiderationFiled(_) => 17,
        Payload::ReconsiderationRejected(_) => 18,
        Payload::ReconsiderationDecided(_) => 19,
        Payload::ReconsiderationWithdrawn(_) => 20,
        Payload::AdminSuitFiled(_) => 21,
        Payload::AdminSuitDismissed(_) => 22,
        Payload::AdminSuitJudged(_) => 23,
        Payload::CivilClaimFiled(_) => 24,
        Payload::CivilClaimJudged(_) => 25,
        Payload::CriminalJudged(_) => 26,
        Payload::PetitionReceived(_) => 27,
        Payload::PetitionClassified(_) => 28,
        Payload::PetitionClosed(_) => 29,
        Payload::TicketCreated(_) => 30,
        Payload::TicketDispatched(_) => 31,
        Payload::TicketMerged(_) => 32,
        Payload::TicketClosed(_) => 33,
        Payload::TicketMarkedUnfounded(_) => 34,
    }
}

/// The kind of an event, e.g. `"complaint.received"`, `"ticket.marked_unfounded"`.
pub fn kind_name(payload: &Payload) -> &'static str {
    CATALOGUE[index(payload)].0
}

/// The proto field of the payload, e.g. `"complaint_received"`: the first segment of validation field paths.
pub fn payload_field(payload: &Payload) -> &'static str {
    CATALOGUE[index(payload)].1
}

/// The department that owns (publishes) events of this kind.
pub fn department_of(payload: &Payload) -> Department {
    CATALOGUE[index(payload)].2
}

/// The department that owns the named kind, or `None` for an unknown name.
pub fn department_of_kind(kind: &str) -> Option<Department> {
    CATALOGUE
        .iter()
        .find(|(name, _, _)| *name == kind)
        .map(|(_, _, d)| *d)
}

/// Every kind name, in `events.proto` order.
pub fn all_kinds() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|(name, _, _)| *name)
}

/// The short code of a department, used in subjects, event ids and configuration: `"market"`, `"police"`,
/// `"justice"`, `"court"`, `"petition"`, `"hotline"`, and `"unspecified"`.
pub fn department_code(d: Department) -> &'static str {
    match d {
        Department::Unspecified => "unspecified",
        Department::Market => "market",
        Department::Police => "police",
        Department::Justice => "justice",
        Department::Court => "court",
        Department::Petition => "petition",
        Department::Hotline => "hotline",
    }
}

/// The department of a short code (`"market"`) or a proto name (`"DEPARTMENT_MARKET"`), ignoring case and surrounding
/// whitespace. `None` for anything else, including `"unspecified"`: there is no such department to run or address.
pub fn department_from_code(code: &str) -> Option<Department> {
    let code = code.trim();
    ALL_DEPARTMENTS.into_iter().find(|d| {
        code.eq_ignore_ascii_case(department_code(*d)) || code.eq_ignore_ascii_case(d.as_str_name())
    })
}

/// The kind names a department owns (empty for `Unspecified`).
pub fn kinds_of(d: Department) -> &'static [&'static str] {
    match d {
        Department::Unspecified => &[],
        Department::Market => &MARKET_KINDS,
        Department::Police => &POLICE_KINDS,
        Department::Justice => &JUSTICE_KINDS,
        Department::Court => &COURT_KINDS,
        Department::Petition => &PETITION_KINDS,
        Department::Hotline => &HOTLINE_KINDS,
    }
}

/// The department's name for people, e.g. `"Market Supervision Bureau (市场监督管理局)"`.
pub fn department_title(d: Department) -> &'static str {
    match d {
        Department::Unspecified => "unspecified department",
        Department::Market => "Market Supervision Bureau (市场监督管理局)",
        Department::Police => "Public Security Bureau (公安局)",
        Department::Justice => "Justice Bureau (司法局)",
        Department::Court => "People's Court (人民法院)",
        Department::Petition => "Petition Office (信访局)",
        Department::Hotline => "12345 Hotline Center (12345热线中心)",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use caselink_proto::v1::*;

    /// One default payload of every kind, in `events.proto` order.
    pub(crate) fn every_payload() -> Vec<Payload> {
        vec![
            Payload::ComplaintReceived(ComplaintReceived::default()),
            Payload::ComplaintAccepted(ComplaintAccepted::default()),
            Payload::ComplaintRejected(ComplaintRejected::default()),
            Payload::ComplaintMediationClosed(ComplaintMediationClosed::default()),
            Payload::CompensationPaid(CompensationPaid::default()),
            Payload::ReportReceived(ReportReceived::default()),
            Payload::ReportVerified(ReportVerified::default()),
            Payload::DisclosureRequested(DisclosureRequested::default()),
            Payload::DisclosureDecided(DisclosureDecided::default()),
            Payload::DisciplineReportNotified(DisciplineReportNotified::default()),
            Payload::PenaltyImposed(PenaltyImposed::default()),
            Payload::ExtortionReported(ExtortionReported::default()),
            Payload::LeadReceived(LeadReceived::default()),
            Payload::CaseRegistered(CaseRegistered::default()),
            Payload::CaseDeclined(CaseDeclined::default()),
            Payload::SecurityPenaltyImposed(SecurityPenaltyImposed::default()),
            Payload::CaseClosed(CaseClosed::default()),
            Payload::ReconsiderationFiled(ReconsiderationFiled::default()),
            Payload::ReconsiderationRejected(ReconsiderationRejected::default()),
            Payload::ReconsiderationDecided(ReconsiderationDecided::default()),
            Payload::ReconsiderationWithdrawn(ReconsiderationWithdrawn::default()),
            Payload::AdminSuitFiled(AdminSuitFiled::default()),
            Payload::AdminSuitDismissed(AdminSuitDismissed::default()),
            Payload::AdminSuitJudged(AdminSuitJudged::default()),
            Payload::CivilClaimFiled(CivilClaimFiled::default()),
            Payload::CivilClaimJudged(CivilClaimJudged::default()),
            Payload::CriminalJudged(CriminalJudged::default()),
            Payload::PetitionReceived(PetitionReceived::default()),
            Payload::PetitionClassified(PetitionClassified::default()),
            Payload::PetitionClosed(PetitionClosed::default()),
            Payload::TicketCreated(TicketCreated::default()),
            Payload::TicketDispatched(TicketDispatched::default()),
            Payload::TicketMerged(TicketMerged::default()),
            Payload::TicketClosed(TicketClosed::default()),
            Payload::TicketMarkedUnfounded(TicketMarkedUnfounded::default()),
        ]
    }

    #[test]
    fn every_kind_has_a_distinct_name_matching_its_proto_field() {
        let payloads = every_payload();
        let names: std::collections::BTreeSet<_> = payloads.iter().map(kind_name).collect();
        assert_eq!(names.len(), 35);
        for p in &payloads {
            assert_eq!(kind_name(p).replace('.', "_"), payload_field(p));
        }
        assert_eq!(kind_name(&payloads[0]), "complaint.received");
        assert_eq!(kind_name(&payloads[34]), "ticket.marked_unfounded");
    }

    #[test]
    fn proto_field_names_match_the_generated_oneof() {
        // prost names the oneof variant after the field; its Debug output starts with the CamelCase variant name.
        for p in every_payload() {
            let camel: String = payload_field(&p)
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect();
            assert!(format!("{p:?}").starts_with(&camel), "{camel} vs {p:?}");
        }
    }

    #[test]
    fn each_kind_belongs_to_exactly_the_department_that_lists_it() {
        for p in every_payload() {
            let owner = department_of(&p);
            for d in ALL_DEPARTMENTS {
                assert_eq!(
                    kinds_of(d).contains(&kind_name(&p)),
                    d == owner,
                    "{} in {d:?}",
                    kind_name(&p)
                );
            }
            assert_eq!(department_of_kind(kind_name(&p)), Some(owner));
        }
        let listed: usize = ALL_DEPARTMENTS.iter().map(|d| kinds_of(*d).len()).sum();
        assert_eq!(listed, 35);
        assert!(kinds_of(Department::Unspecified).is_empty());
    }

    #[test]
    fn owners_follow_the_catalogue() {
        let payloads = every_payload();
        assert_eq!(department_of(&payloads[10]), Department::Market); // penalty.imposed
        assert_eq!(department_of(&payloads[13]), Department::Police); // case.registered
        assert_eq!(department_of(&payloads[20]), Department::Justice);
        assert_eq!(department_of(&payloads[26]), Department::Court); // criminal.judged
        assert_eq!(department_of(&payloads[29]), Department::Petition);
        assert_eq!(department_of(&payloads[30]), Department::Hotline);
        assert_eq!(department_of_kind("no.such_kind"), None);
    }

    #[test]
    fn department_codes_round_trip() {
        for d in ALL_DEPARTMENTS {
            assert_eq!(department_from_code(department_code(d)), Some(d));
            assert_eq!(department_from_code(d.as_str_name()), Some(d));
        }
        assert_eq!(department_code(Department::Market), "market");
        assert_eq!(department_code(Department::Unspecified), "unspecified");
        assert_eq!(
            department_from_code("DEPARTMENT_HOTLINE"),
            Some(Department::Hotline)
        );
        assert_eq!(department_from_code(" Police "), Some(Department::Police));
        assert_eq!(department_from_code("unspecified"), None);
        assert_eq!(department_from_code("DEPARTMENT_UNSPECIFIED"), None);
        assert_eq!(department_from_code("tax"), None);
    }
}
