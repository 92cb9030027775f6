//! Validation at the door: the checks every department's ingest applies to a submitted event before it is
//! pseudonymised and published. Every problem is reported (not just the first), each naming its field by proto path
//! (`subject.id_number`, `related_event_ids[2]`, `complaint_received.amount_fen`), with a reason a clerk can act on.
//!
//! Department-specific rules (e.g. which references a kind must carry) belong to the department's service; these are
//! the rules they all share.

use std::fmt;
use std::time::{Duration, SystemTime};

use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{
    CaseDeclineReason, Channel, ClaimType, ComplaintRejectionReason, Department, DisclosureOutcome,
    FieldViolation, GoodsCategory, JudgmentOutcome, MatterType, MediationOutcome, Offence,
    PetitionClass, PetitionForm, PoliceCaseOutcome, ReconsiderationOutcome,
    ReconsiderationRejectionReason, Satisfaction, SecurityPenaltyKind, SuitDismissalReason,
    TicketChannel, VerificationOutcome, ViolationType,
};
use caselink_proto::v1::{CaseEvent, Merchant, Person};
use caselink_proto::Timestamp;
use prost::Message;
use uuid::Uuid;

use crate::catalogue::{department_code, department_of, kind_name, kinds_of, payload_field};
use crate::clock::{format_duration, format_rfc3339, format_timestamp, system_time_from_timestamp};
use crate::identity::{looks_like_phone, parse_id_number};
use crate::region::validate_region_code;
use crate::uscc::validate_uscc;

/// Longest `source_id`, in characters.
pub const MAX_SOURCE_ID_CHARS: usize = 128;
/// Longest `case_ref` (and other file numbers that stand for a case_ref), in characters.
pub const MAX_CASE_REF_CHARS: usize = 128;
/// Longest `subject.name`, in characters.
pub const MAX_NAME_CHARS: usize = 64;

const SET_BY_INGEST: &str = "set by the ingest service; leave it empty";
const REQUIRED: &str = "required";

/// One offending field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Proto path of the field: field names, dots for nesting, `[i]` for repeated elements.
    pub field: String,
    /// What is wrong, for the person who submitted it.
    pub reason: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl From<Violation> for FieldViolation {
    fn from(v: Violation) -> FieldViolation {
        FieldViolation {
            field: v.field,
            reason: v.reason,
        }
    }
}

/// Every problem found with one event, in the order found. Empty means valid.
#[derive(Debug, Default, Clone)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// No violations.
    pub fn new() -> Violations {
        Violations::default()
    }

    /// Records a problem with `field`.
    pub fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// Whether the event is valid.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems.
    pub fn iter(&self) -> std::slice::Iter<'_, Violation> {
        self.0.iter()
    }

    /// The problems, owned.
    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }

    /// The first problem with exactly this field, if any.
    pub fn get(&self, field: &str) -> Option<&Violation> {
        self.0.iter().find(|v| v.field == field)
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

impl Extend<Violation> for Violations {
    fn extend<T: IntoIterator<Item = Violation>>(&mut self, iter: T) {
        self.0.extend(iter);
    }
}

impl IntoIterator for Violations {
    type Item = Violation;
    type IntoIter = std::vec::IntoIter<Violation>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Violations {
    type Item = &'a Violation;
    type IntoIter = std::slice::Iter<'a, Violation>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<Violations> for Vec<FieldViolation> {
    fn from(v: Violations) -> Vec<FieldViolation> {
        v.0.into_iter().map(FieldViolation::from).collect()
    }
}

/// The bounds validation enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How far `occurred_at` may lie after now (clock skew between a department's system and ours).
    pub future_tolerance: Duration,
    /// Largest encoded event, in bytes.
    pub max_event_bytes: usize,
    /// Longest `summary` and other free-text fields (`detail`, `matter`, ticket `text`), in characters.
    pub max_summary_chars: usize,
    /// Longest other string (names, agencies, references, addresses), in characters.
    pub max_text_chars: usize,
    /// Earliest accepted `occurred_at`.
    pub earliest_occurred_at: SystemTime,
}

impl Default for Limits {
    /// 10 minutes into the future, 64 KiB, summaries 4000 characters, other strings 256, nothing before
    /// 1990-01-01T00:00:00Z.
    fn default() -> Limits {
        Limits {
            future_tolerance: Duration::from_secs(10 * 60),
            max_event_bytes: 64 * 1024,
            max_summary_chars: 4000,
            max_text_chars: 256,
            earliest_occurred_at: SystemTime::UNIX_EPOCH + Duration::from_secs(631_152_000),
        }
    }
}

/// The checks every department shares, applied to an event submitted to the `department` service at `now`.
///
/// Returns every problem found; never panics, whatever the input. `recorded_at` is not looked at: the service sets it.
pub fn validate_event(
    event: &CaseEvent,
    department: Department,
    now: SystemTime,
    limits: &Limits,
) -> Violations {
    let mut c = Check {
        v: Violations::new(),
        now,
        limits,
    };

    let size = event.encoded_len();
    if size > limits.max_event_bytes {
        c.v.push(
            "event",
            format!("oversize: {size} bytes > limit {}", limits.max_event_bytes),
        );
    }

    c.uuid("event_id", &event.event_id);

    if event.source_id.trim().is_empty() {
        c.v.push("source_id", REQUIRED);
    } else {
        c.max_chars("source_id", &event.source_id, MAX_SOURCE_ID_CHARS);
        c.no_control("source_id", &event.source_id);
    }

    match Department::try_from(event.department) {
        Ok(Department::Unspecified) => c.v.push("department", REQUIRED),
        Ok(d) if d != department => c.v.push(
            "department",
            format!(
                "event of department {} submitted to the {} service",
                department_code(d),
                department_code(department)
            ),
        ),
        Ok(_) => {}
        Err(_) => c.v.push(
            "department",
            format!("unknown department {}", event.department),
        ),
    }

    match &event.payload {
        None => {
            let example = kinds_of(department)
                .first()
                .map_or_else(|| "complaint_received".to_owned(), |k| k.replace('.', "_"));
            c.v.push(
                "payload",
                format!("missing: set one of the kinds, e.g. {example}"),
            );
        }
        Some(payload) => {
            let owner = department_of(payload);
            if owner != department {
                c.v.push(
                    "payload",
                    format!(
                        "kind {} belongs to {}, not {}",
                        kind_name(payload),
                        department_code(owner),
                        department_code(department)
                    ),
                );
            }
            c.payload(payload);
        }
    }

    c.time("occurred_at", event.occurred_at.as_ref(), true);

    if event.region_code.is_empty() {
        c.v.push("region_code", REQUIRED);
    } else if let Err(e) = validate_region_code(&event.region_code) {
        c.v.push("region_code", e.to_string());
    }

    c.max_chars("case_ref", &event.case_ref, MAX_CASE_REF_CHARS);
    c.no_control("case_ref", &event.case_ref);
    c.max_chars("summary", &event.summary, limits.max_summary_chars);

    match &event.subject {
        Some(subject) => c.subject(subject),
        None if matches!(event.payload, Some(Payload::PenaltyImposed(_))) => {}
        None => c.v.push(
            "subject",
            "required: the person the event is about (only penalty.imposed, on a merchant, may leave it out)",
        ),
    }

    if let Some(merchant) = &event.merchant {
        c.merchant(merchant);
    }

    for (i, id) in event.related_event_ids.iter().enumerate() {
        c.uuid(&format!("related_event_ids[{i}]"), id);
    }
    c.uuid("corrects_event_id", &event.corrects_event_id);

    c.v
}

struct Check<'a> {
    v: Violations,
    now: SystemTime,
    limits: &'a Limits,
}

impl Check<'_> {
    /// Empty is fine; otherwise a canonical (lowercase, hyphenated), non-nil UUID. Canonical so that one event is never
    /// two strings.
    fn uuid(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        match Uuid::try_parse(value) {
            Err(_) => self.v.push(field, "not a UUID"),
            Ok(u) if u.is_nil() => self.v.push(field, "must not be the nil UUID"),
            Ok(u) if u.hyphenated().to_string() != value => self.v.push(
                field,
                format!("UUID not in canonical form: write it lowercase with hyphens, as {u}"),
            ),
            Ok(_) => {}
        }
    }

    fn max_chars(&mut self, field: &str, value: &str, max: usize) {
        // Counting stops early so that a huge string costs no more than the limit.
        let n = value.chars().take(max + 1).count();
        if n > max {
            let total = value.chars().count();
            self.v
                .push(field, format!("too long: {total} characters > limit {max}"));
        }
    }

    fn no_control(&mut self, field: &str, value: &str) {
        if value.chars().any(char::is_control) {
            self.v
                .push(field, "contains a control character (tab, newline, ...)");
        }
    }

    fn non_negative(&mut self, field: &str, value: i64) {
        if value < 0 {
            self.v.push(field, "must not be negative");
        }
    }

    fn known<E: TryFrom<i32>>(&mut self, field: &str, value: i32) {
        if E::try_from(value).is_err() {
            self.v.push(field, format!("unknown value {value}"));
        }
    }

    fn time(&mut self, field: &str, ts: Option<&Timestamp>, required: bool) {
        let Some(ts) = ts else {
            if required {
                self.v.push(field, REQUIRED);
            }
            return;
        };
        if !(0..1_000_000_000).contains(&ts.nanos) {
            self.v.push(
                field,
                format!(
                    "nanos out of range: {} is not within 0..=999999999",
                    ts.nanos
                ),
            );
            return;
        }
        let Some(t) = system_time_from_timestamp(ts) else {
            self.v
                .push(field, format!("out of range: {} seconds", ts.seconds));
            return;
        };
        if t < self.limits.earliest_occurred_at {
            self.v.push(
                field,
                format!(
                    "too early: {} is before {}, the earliest accepted",
                    format_timestamp(ts),
                    format_rfc3339(self.limits.earliest_occurred_at)
                ),
            );
        }
        if let Some(latest) = self.now.checked_add(self.limits.future_tolerance) {
            if t > latest {
                self.v.push(
                    field,
                    format!(
                        "in the future: {} is after now + {} tolerance",
                        format_timestamp(ts),
                        format_duration(self.limits.future_tolerance)
                    ),
                );
            }
        }
    }

    fn subject(&mut self, p: &Person) {
        if p.id_number.trim().is_empty() {
            self.v.push("subject.id_number", REQUIRED);
        } else if let Err(e) = parse_id_number(&p.id_number) {
            self.v.push("subject.id_number", e.to_string());
        }
        if !p.phone.trim().is_empty() && !looks_like_phone(&p.phone) {
            self.v.push(
                "subject.phone",
                "not a phone number: expected an 11-digit mobile number starting with 1 or a 7-12 digit fixed line",
            );
        }
        self.max_chars("subject.name", &p.name, MAX_NAME_CHARS);
        self.max_chars("subject.address", &p.address, self.limits.max_text_chars);
        for (field, value) in [
            ("subject.person_key", &p.person_key),
            ("subject.phone_key", &p.phone_key),
            ("subject.address_key", &p.address_key),
            ("subject.id_number_masked", &p.id_number_masked),
            ("subject.name_masked", &p.name_masked),
            ("subject.phone_masked", &p.phone_masked),
        ] {
            if !value.is_empty() {
                self.v.push(field, SET_BY_INGEST);
            }
        }
        if p.sealed.is_some() {
            self.v.push("subject.sealed", SET_BY_INGEST);
        }
    }

    fn merchant(&mut self, m: &Merchant) {
        if m.name.trim().is_empty() {
            self.v.push("merchant.name", REQUIRED);
        } else {
            self.max_chars("merchant.name", &m.name, self.limits.max_text_chars);
        }
        if m.uscc.is_empty() {
            self.v.push("merchant.uscc", REQUIRED);
        } else if let Err(e) = validate_uscc(&m.uscc) {
            self.v.push("merchant.uscc", e.to_string());
        }
        self.known::<GoodsCategory>("merchant.category", m.category);
    }

    /// Generic sanity of the payload's own fields: references are UUIDs, amounts and counts are not negative, enums
    /// are known values, strings within limits.
    fn payload(&mut self, payload: &Payload) {
        let mut p = PayloadCheck {
            c: self,
            prefix: payload_field(payload),
        };
        match payload {
            Payload::ComplaintReceived(x) => {
                p.known::<Channel>("channel", x.channel);
                p.non_negative("amount_fen", x.amount_fen);
                p.non_negative("quantity", i64::from(x.quantity));
                p.known::<ClaimType>("claim_type", x.claim_type);
                p.non_negative("claimed_fen", x.claimed_fen);
                p.short("goods", &x.goods);
                p.time("purchased_at", x.purchased_at.as_ref());
            }
            Payload::ComplaintAccepted(x) => p.uuid("complaint_event_id", &x.complaint_event_id),
            Payload::ComplaintRejected(x) => {
                p.uuid("complaint_event_id", &x.complaint_event_id);
                p.known::<ComplaintRejectionReason>("reason", x.reason);
                p.long("detail", &x.detail);
            }
            Payload::ComplaintMediationClosed(x) => {
                p.uuid("complaint_event_id", &x.complaint_event_id);
                p.known::<MediationOutcome>("outcome", x.outcome);
                p.non_negative("amount_fen", x.amount_fen);
                p.long("detail", &x.detail);
            }
            Payload::CompensationPaid(x) => {
                p.uuid("complaint_event_id", &x.complaint_event_id);
                p.non_negative("amount_fen", x.amount_fen);
                p.known::<ClaimType>("basis", x.basis);
            }
            Payload::ReportReceived(x) => {
                p.known::<Channel>("channel", x.channel);
                p.known::<ViolationType>("alleged_violation", x.alleged_violation);
            }
            Payload::ReportVerified(x) => {
                p.uuid("report_event_id", &x.report_event_id);
                p.known::<VerificationOutcome>("outcome", x.outcome);
                p.known::<ViolationType>("violation", x.violation);
            }
            Payload::DisclosureRequested(x) => {
                p.long("matter", &x.matter);
                p.short("matter_ref", &x.matter_ref);
            }
            Payload::DisclosureDecided(x) => {
                p.uuid("request_event_id", &x.request_event_id);
                p.known::<DisclosureOutcome>("outcome", x.outcome);
                p.short("matter_ref", &x.matter_ref);
            }
            Payload::DisciplineReportNotified(x) => {
                p.short("target_agency", &x.target_agency);
                p.short("matter_ref", &x.matter_ref);
            }
            Payload::PenaltyImposed(x) => {
                p.known::<ViolationType>("violation", x.violation);
                p.non_negative("fine_fen", x.fine_fen);
                p.short("decision_ref", &x.decision_ref);
            }
            Payload::ExtortionReported(x) => {
                p.non_negative("demanded_fen", x.demanded_fen);
                p.long("detail", &x.detail);
            }
            Payload::LeadReceived(x) => {
                p.short("referral_id", &x.referral_id);
                p.short("from_agency", &x.from_agency);
                p.short("police_unit", &x.police_unit);
            }
            Payload::CaseRegistered(x) => {
                p.known::<Offence>("offence", x.offence);
                p.short("referral_id", &x.referral_id);
            }
            Payload::CaseDeclined(x) => {
                p.known::<CaseDeclineReason>("reason", x.reason);
                p.long("detail", &x.detail);
                p.short("referral_id", &x.referral_id);
            }
            Payload::SecurityPenaltyImposed(x) => {
                p.known::<Offence>("offence", x.offence);
                p.known::<SecurityPenaltyKind>("penalty", x.penalty);
                p.non_negative("fine_fen", x.fine_fen);
                p.non_negative("detention_days", i64::from(x.detention_days));
            }
            Payload::CaseClosed(x) => {
                p.known::<PoliceCaseOutcome>("outcome", x.outcome);
                p.known::<Offence>("offence", x.offence);
            }
            Payload::ReconsiderationFiled(x) => {
                p.short("respondent_agency", &x.respondent_agency);
                p.long("underlying_matter", &x.underlying_matter);
                p.known::<MatterType>("matter_type", x.matter_type);
                p.short("matter_ref", &x.matter_ref);
            }
            Payload::ReconsiderationRejected(x) => {
                p.uuid("filed_event_id", &x.filed_event_id);
                p.known::<ReconsiderationRejectionReason>("reason", x.reason);
                p.long("detail", &x.detail);
            }
            Payload::ReconsiderationDecided(x) => {
                p.uuid("filed_event_id", &x.filed_event_id);
                p.known::<ReconsiderationOutcome>("outcome", x.outcome);
            }
            Payload::ReconsiderationWithdrawn(x) => p.uuid("filed_event_id", &x.filed_event_id),
            Payload::AdminSuitFiled(x) => {
                p.short("defendant_agency", &x.defendant_agency);
                p.known::<MatterType>("matter_type", x.matter_type);
                p.short("matter_ref", &x.matter_ref);
            }
            Payload::AdminSuitDismissed(x) => {
                p.uuid("filed_event_id", &x.filed_event_id);
                p.known::<SuitDismissalReason>("reason", x.reason);
                p.long("detail", &x.detail);
            }
            Payload::AdminSuitJudged(x) => {
                p.uuid("filed_event_id", &x.filed_event_id);
                p.known::<JudgmentOutcome>("outcome", x.outcome);
            }
            Payload::CivilClaimFiled(x) => {
                p.non_negative("claimed_fen", x.claimed_fen);
                p.known::<ClaimType>("claim_type", x.claim_type);
            }
            Payload::CivilClaimJudged(x) => {
                p.uuid("filed_event_id", &x.filed_event_id);
                p.known::<JudgmentOutcome>("outcome", x.outcome);
                p.non_negative("awarded_fen", x.awarded_fen);
            }
            Payload::CriminalJudged(x) => {
                p.known::<Offence>("offence", x.offence);
                p.non_negative("sentence_months", i64::from(x.sentence_months));
            }
            Payload::PetitionReceived(x) => {
                p.long("matter", &x.matter);
                p.short("target_agency", &x.target_agency);
                p.known::<PetitionForm>("form", x.form);
                p.known::<MatterType>("matter_type", x.matter_type);
                p.short("matter_ref", &x.matter_ref);
            }
            Payload::PetitionClassified(x) => {
                p.uuid("received_event_id", &x.received_event_id);
                p.known::<PetitionClass>("class", x.class);
            }
            Payload::PetitionClosed(x) => {
                p.uuid("received_event_id", &x.received_event_id);
                p.known::<Satisfaction>("satisfaction", x.satisfaction);
            }
            Payload::TicketCreated(x) => {
                p.known::<TicketChannel>("channel", x.channel);
                p.short("category", &x.category);
                p.long("text", &x.text);
            }
            Payload::TicketDispatched(x) => {
                p.known::<Department>("to_department", x.to_department);
                p.short("to_unit", &x.to_unit);
            }
            Payload::TicketMerged(x) => {
                p.c.max_chars(
                    &format!("{}.duplicate_of_case_ref", p.prefix),
                    &x.duplicate_of_case_ref,
                    MAX_CASE_REF_CHARS,
                );
                p.uuid("duplicate_of_event_id", &x.duplicate_of_event_id);
            }
            Payload::TicketClosed(x) => p.known::<Satisfaction>("satisfaction", x.satisfaction),
            Payload::TicketMarkedUnfounded(x) => p.long("reason", &x.reason),
        }
    }
}

/// Checks of one payload's fields, with paths prefixed by the payload's proto field.
struct PayloadCheck<'c, 'a> {
    c: &'c mut Check<'a>,
    prefix: &'static str,
}

impl PayloadCheck<'_, '_> {
    fn path(&self, field: &str) -> String {
        format!("{}.{field}", self.prefix)
    }

    fn uuid(&mut self, field: &str, value: &str) {
        let path = self.path(field);
        self.c.uuid(&path, value);
    }

    fn non_negative(&mut self, field: &str, value: i64) {
        let path = self.path(field);
        self.c.non_negative(&path, value);
    }

    fn known<E: TryFrom<i32>>(&mut self, field: &str, value: i32) {
        let path = self.path(field);
        self.c.known::<E>(&path, value);
    }

    /// Names, agencies, references.
    fn short(&mut self, field: &str, value: &str) {
        let path = self.path(field);
        let max = self.c.limits.max_text_chars;
        self.c.max_chars(&path, value, max);
    }

    /// Free text: details, matters, ticket text.
    fn long(&mut self, field: &str, value: &str) {
        let path = self.path(field);
        let max = self.c.limits.max_summary_chars;
        self.c.max_chars(&path, value, max);
    }

    fn time(&mut self, field: &str, value: Option<&Timestamp>) {
        let path = self.path(field);
        self.c.time(&path, value, false);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::catalogue::tests::every_payload;
    use crate::catalogue::ALL_DEPARTMENTS;
    use crate::testdata::{event, event_with, now, rich_payload, ts, uuid};
    use caselink_proto::v1::*;

    fn check(e: &CaseEvent) -> Violations {
        validate_event(e, Department::Market, now(), &Limits::default())
    }

    /// Validates a valid market event after `change`.
    fn after(change: impl FnOnce(&mut CaseEvent)) -> Violations {
        let mut e = event(Department::Market);
        change(&mut e);
        check(&e)
    }

    /// Asserts exactly one violation, on `field`, and returns its reason.
    #[track_caller]
    fn only(v: &Violations, field: &str) -> String {
        assert_eq!(v.len(), 1, "expected one violation on {field}, got: {v}");
        let first = v.iter().next().unwrap();
        assert_eq!(first.field, field, "{v}");
        first.reason.clone()
    }

    #[test]
    fn valid_event_of_every_department_has_no_violations() {
        for d in ALL_DEPARTMENTS {
            let v = validate_event(&event(d), d, now(), &Limits::default());
            assert!(v.is_empty(), "{d:?}: {v}");
        }
    }

    #[test]
    fn every_kind_with_empty_fields_is_valid_for_its_own_department() {
        for p in every_payload() {
            let d = department_of(&p);
            let v = validate_event(&event_with(d, p.clone()), d, now(), &Limits::default());
            assert!(v.is_empty(), "{}: {v}", kind_name(&p));
        }
    }

    #[test]
    fn minimal_event_is_valid() {
        let e = CaseEvent {
            source_id: "1".into(),
            department: Department::Police as i32,
            occurred_at: ts(now()),
            region_code: "110000".into(),
            subject: Some(Person {
                id_number: "440524188001010014".into(),
                ..Person::default()
            }),
            payload: Some(Payload::CaseClosed(CaseClosed::default())),
            ..CaseEvent::default()
        };
        let v = validate_event(&e, Department::Police, now(), &Limits::default());
        assert!(v.is_empty(), "{v}");
    }

    #[test]
    fn empty_event_reports_every_missing_field() {
        let v = check(&CaseEvent::default());
        let fields: Vec<&str> = v.iter().map(|x| x.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "source_id",
                "department",
                "payload",
                "occurred_at",
                "region_code",
                "subject"
            ]
        );
        assert!(v
            .iter()
            .filter(|x| x.field != "payload" && x.field != "subject")
            .all(|x| x.reason == "required"));
    }

    #[test]
    fn event_id_may_be_empty_but_otherwise_must_be_a_uuid() {
        assert!(after(|e| e.event_id.clear()).is_empty());
        assert_eq!(
            only(&after(|e| e.event_id = "MK-1".into()), "event_id"),
            "not a UUID"
        );
        let upper = uuid(3).to_uppercase();
        assert!(only(&after(|e| e.event_id = upper), "event_id").contains(&uuid(3)));
        let nil = uuid::Uuid::nil().to_string();
        assert_eq!(
            only(&after(|e| e.event_id = nil), "event_id"),
            "must not be the nil UUID"
        );
    }

    #[test]
    fn source_id_is_required_bounded_and_printable() {
        assert_eq!(
            only(&after(|e| e.source_id = "  ".into()), "source_id"),
            "required"
        );
        assert!(after(|e| e.source_id = "源".repeat(128)).is_empty());
        assert_eq!(
            only(&after(|e| e.source_id = "源".repeat(129)), "source_id"),
            "too long: 129 characters > limit 128"
        );
        assert!(only(&after(|e| e.source_id = "A\n1".into()), "source_id")
            .contains("control character"));
    }

    #[test]
    fn department_must_be_the_services_own() {
        assert_eq!(only(&after(|e| e.department = 0), "department"), "required");
        assert_eq!(
            only(
                &after(|e| e.department = Department::Police as i32),
                "department"
            ),
            "event of department police submitted to the market service"
        );
        assert_eq!(
            only(&after(|e| e.department = 42), "department"),
            "unknown department 42"
        );
    }

    #[test]
    fn payload_is_required() {
        assert_eq!(
            only(&after(|e| e.payload = None), "payload"),
            "missing: set one of the kinds, e.g. complaint_received"
        );
        let mut e = event(Department::Hotline);
        e.payload = None;
        let v = validate_event(&e, Department::Hotline, now(), &Limits::default());
        assert_eq!(
            only(&v, "payload"),
            "missing: set one of the kinds, e.g. ticket_created"
        );
    }

    #[test]
    fn payload_kind_must_belong_to_the_service_department() {
        let v = after(|e| e.payload = Some(rich_payload(Department::Police)));
        assert_eq!(
            only(&v, "payload"),
            "kind case.registered belongs to police, not market"
        );
    }

    #[test]
    fn occurred_at_is_required_and_well_formed() {
        assert_eq!(
            only(&after(|e| e.occurred_at = None), "occurred_at"),
            "required"
        );
        let v = after(|e| e.occurred_at.as_mut().unwrap().nanos = -1);
        assert!(only(&v, "occurred_at").starts_with("nanos out of range"));
        let v = after(|e| e.occurred_at.as_mut().unwrap().nanos = 1_000_000_000);
        assert!(only(&v, "occurred_at").starts_with("nanos out of range"));
    }

    #[test]
    fn occurred_at_before_1990_is_refused() {
        let earliest = Limits::default().earliest_occurred_at;
        assert!(after(|e| e.occurred_at = ts(earliest)).is_empty());
        let v = after(|e| e.occurred_at = ts(earliest - Duration::from_secs(1)));
        assert_eq!(
            only(&v, "occurred_at"),
            "too early: 1989-12-31T23:59:59Z is before 1990-01-01T00:00:00Z, the earliest accepted"
        );
        let v = after(|e| {
            e.occurred_at = Some(Timestamp {
                seconds: i64::MIN,
                nanos: 0,
            })
        });
        only(&v, "occurred_at");
    }

    // now = 2026-11-23T10:00:00+08:00, tolerance 10 minutes.
    #[test]
    fn occurred_at_exactly_at_now_plus_tolerance_is_accepted() {
        let v = after(|e| e.occurred_at = ts(now() + Duration::from_secs(600)));
        assert!(v.is_empty(), "{v}");
    }

    #[test]
    fn occurred_at_one_second_past_the_tolerance_is_refused() {
        let v = after(|e| e.occurred_at = ts(now() + Duration::from_secs(601)));
        assert_eq!(
            only(&v, "occurred_at"),
            "in the future: 2026-11-23T02:10:01Z is after now + 10m tolerance"
        );
    }

    #[test]
    fn date_only_record_at_local_midnight_today_is_accepted_and_tomorrow_refused() {
        // 2026-11-23T00:00:00+08:00 = 2026-11-22T16:00:00Z, ten hours before now.
        let today = now() - Duration::from_secs(10 * 3600);
        assert!(after(|e| e.occurred_at = ts(today)).is_empty());
        // 2026-11-24T00:00:00+08:00, fourteen hours after now.
        let tomorrow = now() + Duration::from_secs(14 * 3600);
        let reason = only(&after(|e| e.occurred_at = ts(tomorrow)), "occurred_at");
        assert!(
            reason.starts_with("in the future: 2026-11-23T16:00:00Z"),
            "{reason}"
        );
    }

    #[test]
    fn recorded_at_is_ignored() {
        assert!(after(|e| e.recorded_at = Some(Timestamp {
            seconds: -5,
            nanos: -5
        }))
        .is_empty());
    }

    #[test]
    fn region_code_is_six_digits_of_a_real_province() {
        assert_eq!(
            only(&after(|e| e.region_code.clear()), "region_code"),
            "required"
        );
        assert!(
            only(&after(|e| e.region_code = "33010".into()), "region_code").contains("6 digits")
        );
        assert!(
            only(&after(|e| e.region_code = "33O106".into()), "region_code").contains("6 digits")
        );
        assert!(only(&after(|e| e.region_code = "990106".into()), "region_code").contains("99"));
    }

    #[test]
    fn case_ref_and_summary_are_bounded_in_characters() {
        assert!(after(|e| e.case_ref = "号".repeat(128)).is_empty());
        only(&after(|e| e.case_ref = "号".repeat(129)), "case_ref");
        // 4000 Chinese characters are 12000 bytes: the limit counts characters.
        assert!(after(|e| e.summary = "过".repeat(4000)).is_empty());
        assert_eq!(
            only(&after(|e| e.summary = "过".repeat(4001)), "summary"),
            "too long: 4001 characters > limit 4000"
        );
    }

    #[test]
    fn subject_is_required_except_for_a_penalty_on_the_merchant() {
        assert!(only(&after(|e| e.subject = None), "subject").starts_with("required"));
        let v = after(|e| {
            e.subject = None;
            e.payload = Some(Payload::PenaltyImposed(PenaltyImposed::default()));
        });
        assert!(v.is_empty(), "{v}");
    }

    #[test]
    fn subject_id_number_is_required_and_must_be_valid() {
        let v = after(|e| e.subject.as_mut().unwrap().id_number.clear());
        assert_eq!(only(&v, "subject.id_number"), "required");
        let v = after(|e| e.subject.as_mut().unwrap().id_number = "110105194912310021".into());
        assert_eq!(
            only(&v, "subject.id_number"),
            crate::identity::parse_id_number("110105194912310021")
                .unwrap_err()
                .to_string()
        );
        let v = after(|e| e.subject.as_mut().unwrap().id_number = "11010519490230002X".into());
        assert!(only(&v, "subject.id_number").contains("date of birth"));
    }

    #[test]
    fn subject_phone_when_given_must_look_like_a_phone() {
        assert!(after(|e| e.subject.as_mut().unwrap().phone.clear()).is_empty());
        assert!(after(|e| e.subject.as_mut().unwrap().phone = "0571-87654321".into()).is_empty());
        let v = after(|e| e.subject.as_mut().unwrap().phone = "12315".into());
        assert!(only(&v, "subject.phone").starts_with("not a phone number"));
    }

    #[test]
    fn subject_name_and_address_are_bounded() {
        assert!(after(|e| e.subject.as_mut().unwrap().name = "名".repeat(64)).is_empty());
        only(
            &after(|e| e.subject.as_mut().unwrap().name = "名".repeat(65)),
            "subject.name",
        );
        assert!(after(|e| e.subject.as_mut().unwrap().address = "址".repeat(256)).is_empty());
        only(
            &after(|e| e.subject.as_mut().unwrap().address = "址".repeat(257)),
            "subject.address",
        );
    }

    #[test]
    fn subject_fields_set_by_ingest_must_be_empty_on_submit() {
        type SetField = fn(&mut Person);
        let cases: [(&str, SetField); 7] = [
            ("subject.person_key", |p| p.person_key = "ab".into()),
            ("subject.phone_key", |p| p.phone_key = "ab".into()),
            ("subject.address_key", |p| p.address_key = "ab".into()),
            ("subject.id_number_masked", |p| {
                p.id_number_masked = "110105********002X".into()
            }),
            ("subject.name_masked", |p| p.name_masked = "张*".into()),
            ("subject.phone_masked", |p| {
                p.phone_masked = "138****5678".into()
            }),
            ("subject.sealed", |p| {
                p.sealed = Some(SealedIdentity::default())
            }),
        ];
        for (field, set) in cases {
            let v = after(|e| set(e.subject.as_mut().unwrap()));
            assert_eq!(only(&v, field), "set by the ingest service; leave it empty");
        }
    }

    #[test]
    fn merchant_is_optional_but_when_given_needs_name_and_valid_uscc() {
        assert!(after(|e| e.merchant = None).is_empty());
        assert_eq!(
            only(
                &after(|e| e.merchant.as_mut().unwrap().name.clear()),
                "merchant.name"
            ),
            "required"
        );
        only(
            &after(|e| e.merchant.as_mut().unwrap().name = "店".repeat(257)),
            "merchant.name",
        );
        assert_eq!(
            only(
                &after(|e| e.merchant.as_mut().unwrap().uscc.clear()),
                "merchant.uscc"
            ),
            "required"
        );
        let v = after(|e| e.merchant.as_mut().unwrap().uscc = "91350100M000100Y44".into());
        assert!(only(&v, "merchant.uscc").contains("require '3'"), "{v}");
        let v = after(|e| e.merchant.as_mut().unwrap().category = 1000);
        assert_eq!(only(&v, "merchant.category"), "unknown value 1000");
    }

    #[test]
    fn related_and_corrected_event_ids_must_be_uuids() {
        let v = after(|e| e.related_event_ids.push("not-an-id".into()));
        assert_eq!(only(&v, "related_event_ids[2]"), "not a UUID");
        assert!(after(|e| e.related_event_ids.push(String::new())).is_empty());
        assert_eq!(
            only(
                &after(|e| e.corrects_event_id = "x".into()),
                "corrects_event_id"
            ),
            "not a UUID"
        );
        assert!(after(|e| e.corrects_event_id = uuid(9)).is_empty());
    }

    #[test]
    fn payload_event_references_must_be_uuids() {
        let cases = [
            (
                Payload::ComplaintRejected(ComplaintRejected {
                    complaint_event_id: "C-1".into(),
                    ..Default::default()
                }),
                "complaint_rejected.complaint_event_id",
            ),
            (
                Payload::ReportVerified(ReportVerified {
                    report_event_id: "R-1".into(),
                    ..Default::default()
                }),
                "report_verified.report_event_id",
            ),
            (
                Payload::ReconsiderationWithdrawn(ReconsiderationWithdrawn {
                    filed_event_id: "F".into(),
                }),
                "reconsideration_withdrawn.filed_event_id",
            ),
            (
                Payload::PetitionClosed(PetitionClosed {
                    received_event_id: "P".into(),
                    ..Default::default()
                }),
                "petition_closed.received_event_id",
            ),
            (
                Payload::TicketMerged(TicketMerged {
                    duplicate_of_event_id: "T".into(),
                    ..Default::default()
                }),
                "ticket_merged.duplicate_of_event_id",
            ),
        ];
        for (payload, field) in cases {
            let d = department_of(&payload);
            let v = validate_event(&event_with(d, payload), d, now(), &Limits::default());
            assert_eq!(only(&v, field), "not a UUID");
        }
    }

    #[test]
    fn amounts_and_counts_must_not_be_negative() {
        let cases = [
            (
                Payload::ComplaintReceived(ComplaintReceived {
                    amount_fen: -1,
                    ..Default::default()
                }),
                "complaint_received.amount_fen",
            ),
            (
                Payload::ComplaintReceived(ComplaintReceived {
                    quantity: -3,
                    ..Default::default()
                }),
                "complaint_received.quantity",
            ),
            (
                Payload::ComplaintReceived(ComplaintReceived {
                    claimed_fen: -3,
                    ..Default::default()
                }),
                "complaint_received.claimed_fen",
            ),
            (
                Payload::CompensationPaid(CompensationPaid {
                    amount_fen: -100,
                    ..Default::default()
                }),
                "compensation_paid.amount_fen",
            ),
            (
                Payload::PenaltyImposed(PenaltyImposed {
                    fine_fen: -100,
                    ..Default::default()
                }),
                "penalty_imposed.fine_fen",
            ),
            (
                Payload::ExtortionReported(ExtortionReported {
                    demanded_fen: -1,
                    ..Default::default()
                }),
                "extortion_reported.demanded_fen",
            ),
            (
                Payload::SecurityPenaltyImposed(SecurityPenaltyImposed {
                    detention_days: -5,
                    ..Default::default()
                }),
                "security_penalty_imposed.detention_days",
            ),
            (
                Payload::CivilClaimJudged(CivilClaimJudged {
                    awarded_fen: -1,
                    ..Default::default()
                }),
                "civil_claim_judged.awarded_fen",
            ),
            (
                Payload::CriminalJudged(CriminalJudged {
                    sentence_months: -6,
                    ..Default::default()
                }),
                "criminal_judged.sentence_months",
            ),
        ];
        for (payload, field) in cases {
            let d = department_of(&payload);
            let v = validate_event(&event_with(d, payload), d, now(), &Limits::default());
            assert_eq!(only(&v, field), "must not be negative");
        }
    }

    #[test]
    fn payload_enums_must_be_known_values() {
        let v = after(|e| {
            e.payload = Some(Payload::ComplaintReceived(ComplaintReceived {
                channel: 77,
                ..Default::default()
            }))
        });
        assert_eq!(only(&v, "complaint_received.channel"), "unknown value 77");
    }

    #[test]
    fn purchase_date_may_not_lie_in_the_future() {
        let p = Payload::ComplaintReceived(ComplaintReceived {
            purchased_at: ts(now() + Duration::from_secs(86_400)),
            ..Default::default()
        });
        let v = after(|e| e.payload = Some(p));
        assert!(only(&v, "complaint_received.purchased_at").starts_with("in the future"));
    }

    #[test]
    fn free_text_in_payloads_is_bounded() {
        let p = Payload::TicketCreated(TicketCreated {
            text: "字".repeat(4001),
            ..Default::default()
        });
        let v = validate_event(
            &event_with(Department::Hotline, p),
            Department::Hotline,
            now(),
            &Limits::default(),
        );
        assert_eq!(
            only(&v, "ticket_created.text"),
            "too long: 4001 characters > limit 4000"
        );
        let p = Payload::LeadReceived(LeadReceived {
            police_unit: "所".repeat(257),
            ..Default::default()
        });
        let v = validate_event(
            &event_with(Department::Police, p),
            Department::Police,
            now(),
            &Limits::default(),
        );
        only(&v, "lead_received.police_unit");
    }

    #[test]
    fn oversize_event_is_refused_with_its_size() {
        let limits = Limits {
            max_event_bytes: 300,
            ..Limits::default()
        };
        let e = event(Department::Market);
        let size = e.encoded_len();
        assert!(size > 300);
        let v = validate_event(&e, Department::Market, now(), &limits);
        assert_eq!(
            only(&v, "event"),
            format!("oversize: {size} bytes > limit 300")
        );
        let limits = Limits {
            max_event_bytes: size,
            ..Limits::default()
        };
        assert!(validate_event(&e, Department::Market, now(), &limits).is_empty());
    }

    #[test]
    fn violations_convert_to_field_violations_in_order() {
        let v = check(&CaseEvent::default());
        let n = v.len();
        let wire: Vec<FieldViolation> = v.clone().into();
        assert_eq!(wire.len(), n);
        assert_eq!(
            wire[0],
            FieldViolation {
                field: "source_id".into(),
                reason: "required".into()
            }
        );
        assert_eq!(v.get("department").unwrap().reason, "required");
        assert!(v
            .to_string()
            .starts_with("source_id: required; department: required"));
    }

    #[test]
    fn never_panics_on_mangled_events() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let valid: Vec<Vec<u8>> = ALL_DEPARTMENTS
            .iter()
            .map(|d| event(*d).encode_to_vec())
            .collect();
        let mut decoded = 0;
        for round in 0..20_000 {
            let mut bytes = valid[round % valid.len()].clone();
            for _ in 0..rng.random_range(1..6) {
                let i = rng.random_range(0..bytes.len());
                bytes[i] = rng.random();
            }
            if let Ok(e) = CaseEvent::decode(bytes.as_slice()) {
                decoded += 1;
                for d in ALL_DEPARTMENTS {
                    let _ = validate_event(&e, d, now(), &Limits::default());
                }
            }
        }
        assert!(decoded > 1000, "only {decoded} mangled events decoded");
        let extreme = CaseEvent {
            department: i32::MIN,
            occurred_at: Some(Timestamp {
                seconds: i64::MAX,
                nanos: i32::MAX,
            }),
            subject: Some(Person {
                id_number: "\u{0}".repeat(18),
                phone: "+".into(),
                ..Person::default()
            }),
            merchant: Some(Merchant {
                uscc: "统".repeat(18),
                category: -1,
                ..Merchant::default()
            }),
            ..CaseEvent::default()
        };
        assert!(!check(&extreme).is_empty());
        let at_the_end = validate_event(
            &event(Department::Market),
            Department::Market,
            SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 4),
            &Limits {
                future_tolerance: Duration::MAX,
                ..Limits::default()
            },
        );
        assert!(at_the_end.is_empty(), "{at_the_end}");
    }
}
