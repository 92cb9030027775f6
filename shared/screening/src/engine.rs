//! The incremental screener: folds one event at a time into the states behind a [`ScreeningStore`] and reports the
//! flags it raised, grew or withdrew.

use std::collections::BTreeSet;

use caselink_domain::{kind_name, timestamp_micros, PersonKey};
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{
    CaseEvent, DisclosureOutcome, Offence, PoliceCaseOutcome, ReconsiderationRejectionReason,
    SuitDismissalReason, VerificationOutcome,
};
use sha2::{Digest, Sha256};

use crate::criteria::{self, days, Assessment};
use crate::ids::{hex_lower, id_bytes, id_is, id_string, ref_bytes, ref_of_id};
use crate::matters::{mark_leaders, mark_leaders_from, same};
use crate::relations::{self, Found, Share};
use crate::rules::{category_name, RuleCode, RuleSet};
use crate::state::{
    Appeal, Contact, ContactKind, Count, Evidence, Figures, FindingKind, Flag, Intake, IntakeKind,
    Link, LinkReason, Mark, MatterLink, PersonScreening, RelationFinding, RelationState,
    RelationUse,
};

/// Where the screener keeps its states. The aggregator implements it over a batch-local cache of sled; tests use
/// [`crate::MemoryStore`]. Both calls hand out a default state when there is none yet.
pub trait ScreeningStore {
    type Error;
    /// The person's state, default-initialised if absent; the store may take it as changed.
    fn person(&mut self, key: &PersonKey) -> Result<&mut PersonScreening, Self::Error>;
    /// The person's state for reading only: a store that writes back what changed need not write it. (A relation's
    /// evaluation reads every user's state and changes few.)
    fn person_ref(&mut self, key: &PersonKey) -> Result<&PersonScreening, Self::Error> {
        self.person(key).map(|p| &*p)
    }
    /// The relation's state, default-initialised if absent.
    fn relation(&mut self, key: &RelationKey) -> Result<&mut RelationState, Self::Error>;
}

/// A shared attribute that relates persons.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RelationKey {
    /// A phone key (hex HMAC, as on `subject.phone_key`).
    Phone(String),
    /// An address key (hex HMAC, as on `subject.address_key`).
    Address(String),
    /// A fingerprint (hex) of a complaint text on one merchant: see [`text_fingerprint`].
    Text(String),
}

impl RelationKey {
    /// The relation of a person's contact (a phone or address key of [`ContactKind`]); none for an empty key or
    /// another kind.
    pub fn of_contact(kind: i32, key: &str) -> Option<RelationKey> {
        if key.is_empty() {
            None
        } else if kind == ContactKind::Phone as i32 {
            Some(RelationKey::Phone(key.to_owned()))
        } else if kind == ContactKind::Address as i32 {
            Some(RelationKey::Address(key.to_owned()))
        } else {
            None
        }
    }

    /// The key as bytes for a sled key: one tag byte and the key. A key in lowercase hex (every key the ingest
    /// derives: HMAC outputs, and the text fingerprints) is kept as the bytes it spells, under `P`, `A` or `X`: half
    /// the size in sled's leaves, in person states' links and in the fold's cache. Any other key is kept as its text,
    /// under `p`, `a` or `x`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (tag, s) = match self {
            RelationKey::Phone(s) => (b'p', s),
            RelationKey::Address(s) => (b'a', s),
            RelationKey::Text(s) => (b'x', s),
        };
        let mut out = Vec::with_capacity(1 + s.len());
        match crate::ids::lower_hex_bytes(s) {
            Some(raw) => {
                out.push(tag.to_ascii_uppercase());
                out.extend_from_slice(&raw);
            }
            None => {
                out.push(tag);
                out.extend_from_slice(s.as_bytes());
            }
        }
        out
    }

    /// Reads back [`RelationKey::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Option<RelationKey> {
        let (tag, rest) = bytes.split_first()?;
        let s = if tag.is_ascii_uppercase() {
            crate::ids::hex_lower(rest)
        } else {
            std::str::from_utf8(rest).ok()?.to_owned()
        };
        match tag.to_ascii_lowercase() {
            b'p' => Some(RelationKey::Phone(s)),
            b'a' => Some(RelationKey::Address(s)),
            b'x' => Some(RelationKey::Text(s)),
            _ => None,
        }
    }

    /// E.g. `phone 3fa2…` (keys are hashes: safe to show).
    pub fn label(&self) -> String {
        let (what, s) = match self {
            RelationKey::Phone(s) => ("phone", s),
            RelationKey::Address(s) => ("address", s),
            RelationKey::Text(s) => ("text", s),
        };
        format!("{what} {}", s.chars().take(12).collect::<String>())
    }
}

/// The fingerprint of a complaint text on a merchant: SHA-256 (first 16 bytes, hex) of the credit code and the text
/// with whitespace and punctuation removed, so copies that differ only in spacing or punctuation match.
pub fn text_fingerprint(merchant_uscc: &str, text: &str) -> String {
    let mut h = Sha256::new();
    h.update(merchant_uscc.as_bytes());
    h.update([0]);
    // The kept characters' UTF-8, fed in runs (no copy of the text): the same bytes as hashing the filtered string.
    let mut run = 0..0;
    for (at, c) in text.char_indices() {
        if c.is_alphanumeric() {
            if run.end != at {
                h.update(&text.as_bytes()[run.clone()]);
                run = at..at;
            }
            run.end = at + c.len_utf8();
        }
    }
    h.update(&text.as_bytes()[run]);
    let digest = h.finalize();
    hex_lower(&digest[..16])
}

/// What changed about a flag.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagChange {
    /// First raised (or raised again after a withdrawal).
    Raised { person: PersonKey, flag: Flag },
    /// More evidence.
    Grown { person: PersonKey, flag: Flag },
    /// A cross-person flag (C3-C5) that no longer holds, e.g. when later records showed who owns a phone.
    Withdrawn { person: PersonKey, flag: Flag },
}

impl FlagChange {
    pub fn person(&self) -> &PersonKey {
        match self {
            FlagChange::Raised { person, .. }
            | FlagChange::Grown { person, .. }
            | FlagChange::Withdrawn { person, .. } => person,
        }
    }

    pub fn flag(&self) -> &Flag {
        match self {
            FlagChange::Raised { flag, .. }
            | FlagChange::Grown { flag, .. }
            | FlagChange::Withdrawn { flag, .. } => flag,
        }
    }
}

/// The screening engine: a rule set and the fold.
#[derive(Debug, Clone)]
pub struct Screener {
    rules: RuleSet,
}

impl Screener {
    /// The complaint-text relation a record joins, if any: a complaint (`complaint`) on a merchant with a text, when
    /// the rules compare texts (C4). The fold's preload asks it too, to read the relation before the record is folded.
    pub fn text_relation(
        &self,
        complaint: bool,
        merchant_uscc: &str,
        summary: &str,
    ) -> Option<RelationKey> {
        (complaint
            && self.rules.rules.c4.match_text
            && !merchant_uscc.is_empty()
            && !summary.trim().is_empty())
        .then(|| RelationKey::Text(text_fingerprint(merchant_uscc, summary)))
    }
}

/// Which person-local rules an event's facts touch.
#[derive(Default)]
struct Touched(Vec<RuleCode>);

impl Touched {
    fn add(&mut self, c: RuleCode) {
        if !self.0.contains(&c) {
            self.0.push(c);
        }
    }
}

/// A record joining a relation.
struct NewUse {
    key: RelationKey,
    occurred_us: i64,
    event_id: Vec<u8>,
    merchant_uscc: String,
    false_identity: bool,
}

impl Screener {
    /// A screener with a (validated) rule set.
    pub fn new(rules: RuleSet) -> Screener {
        Screener { rules }
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Folds one event (already pseudonymised). `sequence` is its stream sequence, recorded on flags. Events without a
    /// subject (a penalty on a merchant) change nothing. Returns every flag raised, grown or withdrawn, on any person.
    pub fn apply<S: ScreeningStore>(
        &self,
        store: &mut S,
        event: &CaseEvent,
        sequence: u64,
    ) -> Result<Vec<FlagChange>, S::Error> {
        let mut changes = Vec::new();
        let Some(subject) = event.subject.as_ref() else {
            return Ok(changes);
        };
        let Ok(person_key) = PersonKey::from_hex(&subject.person_key) else {
            return Ok(changes);
        };
        let Some(payload) = event.payload.as_ref() else {
            return Ok(changes);
        };
        let at = event.occurred_at.as_ref().map_or(0, timestamp_micros);

        let person = store.person(&person_key)?;
        let (touched, new_uses) = self.record(person, event, subject, payload, at);
        for code in touched.0 {
            let found = criteria::evaluate(&self.rules, code, person);
            if code == RuleCode::C6 {
                let ms = person.intakes.iter().filter(|i| i.leads).count() as u64;
                figures(person).matters = person.matters_before_horizon + ms;
            }
            self.settle(person, &person_key, code, found, sequence, &mut changes);
        }
        // Relations this person shares whose ownership may have moved with this record's contacts.
        let mut recheck: Vec<RelationKey> = Vec::new();
        let counted = new_uses
            .iter()
            .any(|u| !matches!(u.key, RelationKey::Text(_)) && !u.false_identity);
        if counted {
            for c in person.contacts.iter().filter(|c| c.shared) {
                let Some(key) = RelationKey::of_contact(c.kind, &c.key) else {
                    continue;
                };
                if !new_uses.iter().any(|u| u.key == key) {
                    recheck.push(key);
                }
            }
        }
        for u in new_uses {
            let key = u.key.clone();
            self.touch_relation(
                store,
                &key,
                Some((&person_key.0, u)),
                sequence,
                &mut changes,
            )?;
        }
        for key in recheck {
            self.touch_relation(store, &key, None, sequence, &mut changes)?;
        }
        Ok(changes)
    }

    /// Records the event's facts in the person's state; returns the rules to re-evaluate and the relation uses.
    fn record(
        &self,
        p: &mut PersonScreening,
        event: &CaseEvent,
        subject: &caselink_proto::v1::Person,
        payload: &Payload,
        at: i64,
    ) -> (Touched, Vec<NewUse>) {
        let mut touched = Touched::default();
        let mut uses = Vec::new();
        let id = event.event_id.as_str();
        let eid = id_bytes(id);
        let uid = ref_of_id(&eid).into_owned();
        let (uscc, category) = event
            .merchant
            .as_ref()
            .map_or(("", 0), |m| (m.uscc.as_str(), m.category));
        p.latest_us = p.latest_us.max(at);

        // Figures.
        let f = figures(p);
        let d = usize::try_from(event.department).unwrap_or(0).min(6);
        if f.by_department.len() < 7 {
            f.by_department.resize(7, 0);
        }
        f.by_department[d] += 1;
        bump(&mut f.by_kind, kind_name(payload));

        let intake = |p: &mut PersonScreening, kind: IntakeKind, uses: &mut Vec<NewUse>| {
            // One pass: a duplicate, and whether the intake shares a reference with anything held (then matters are
            // worked out again; otherwise it is a matter of its own).
            let case_ref = ref_bytes(&event.case_ref);
            let case_ref = case_ref.as_slice();
            let mut joins = !event.related_event_ids.is_empty();
            for i in &p.intakes {
                if same(&i.event_id, &eid) {
                    return;
                }
                joins = joins
                    || (!id.is_empty() && same(&i.case_ref, &uid))
                    || (!case_ref.is_empty()
                        && (same(&ref_of_id(&i.event_id), case_ref)
                            || same(&i.case_ref, case_ref)));
            }
            joins = joins
                || p.matter_links.iter().any(|l| {
                    (!id.is_empty() && (same(&l.a, &uid) || same(&l.b, &uid)))
                        || (!case_ref.is_empty() && (same(&l.a, case_ref) || same(&l.b, case_ref)))
                });
            count_contacts(p, subject);
            let pos = p
                .intakes
                .partition_point(|i| (i.occurred_us, i.event_id.as_slice()) < (at, &eid));
            p.intakes.insert(
                pos,
                Intake {
                    event_id: eid.clone(),
                    occurred_us: at,
                    kind: kind as i32,
                    merchant_uscc: uscc.to_owned(),
                    category,
                    case_ref: case_ref.to_owned(),
                    leads: !joins && !id.is_empty(),
                },
            );
            for r in &event.related_event_ids {
                p.matter_links.push(MatterLink {
                    a: uid.clone(),
                    b: ref_bytes(r),
                    occurred_us: at,
                });
            }
            if joins {
                mark_leaders_from(&mut p.intakes, &p.matter_links, &[&uid]);
            }
            if category != 0 {
                bump(&mut figures(p).categories, category_name(category));
            }
            for (k, key) in [
                (
                    RelationKey::Phone(subject.phone_key.clone()),
                    &subject.phone_key,
                ),
                (
                    RelationKey::Address(subject.address_key.clone()),
                    &subject.address_key,
                ),
            ] {
                if !key.is_empty() {
                    uses.push(NewUse {
                        key: k,
                        occurred_us: at,
                        event_id: eid.clone(),
                        merchant_uscc: uscc.to_owned(),
                        false_identity: false,
                    });
                }
            }
        };
        let mark = |list: &mut Vec<Mark>, code: i32, reference: &str, value: i64| {
            if !list.iter().any(|m| same(&m.event_id, &eid)) {
                list.push(Mark {
                    event_id: eid.clone(),
                    occurred_us: at,
                    code,
                    reference: reference.to_owned(),
                    value,
                });
            }
        };

        match payload {
            Payload::ComplaintReceived(c) => {
                intake(p, IntakeKind::Complaint, &mut uses);
                let f = figures(p);
                f.complaints += 1;
                bump(&mut f.claim_types, claim_name(c.claim_type));
                if criteria::is_bulk(&self.rules, category, c.quantity, c.amount_fen) {
                    mark(&mut p.bulk_purchases, c.quantity, uscc, c.amount_fen);
                    touched.add(RuleCode::C2);
                }
                touched.add(RuleCode::C1);
                touched.add(RuleCode::C6);
                if let Some(key) = self.text_relation(true, uscc, &event.summary) {
                    uses.push(NewUse {
                        key,
                        occurred_us: at,
                        event_id: eid.clone(),
                        merchant_uscc: uscc.to_owned(),
                        false_identity: false,
                    });
                }
            }
            Payload::ReportReceived(r) => {
                intake(p, IntakeKind::Report, &mut uses);
                let f = figures(p);
                f.reports += 1;
                bump(&mut f.violations, violation_name(r.alleged_violation));
                touched.add(RuleCode::C6);
            }
            Payload::TicketCreated(_) => {
                intake(p, IntakeKind::Ticket, &mut uses);
                figures(p).tickets += 1;
                touched.add(RuleCode::C6);
            }
            Payload::TicketMerged(m) => {
                let mut refs: Vec<Vec<u8>> = vec![ref_bytes(&event.case_ref)];
                refs.extend(event.related_event_ids.iter().map(|r| ref_bytes(r)));
                refs.retain(|s| !s.is_empty());
                for a in &refs {
                    for b in [&m.duplicate_of_event_id, &m.duplicate_of_case_ref] {
                        if !b.is_empty() {
                            p.matter_links.push(MatterLink {
                                a: a.clone(),
                                b: ref_bytes(b),
                                occurred_us: at,
                            });
                        }
                    }
                }
                if !refs.is_empty() {
                    let seeds: Vec<&[u8]> = refs.iter().map(Vec::as_slice).collect();
                    mark_leaders_from(&mut p.intakes, &p.matter_links, &seeds);
                }
                touched.add(RuleCode::C6);
            }
            Payload::CompensationPaid(c) if c.punitive => {
                mark(&mut p.punitive_payments, 0, uscc, i64::from(category));
                touched.add(RuleCode::C1);
            }
            Payload::ReportVerified(v) => {
                if v.outcome == VerificationOutcome::Unsubstantiated as i32 {
                    mark(&mut p.unsubstantiated, v.violation, "", 0);
                    touched.add(RuleCode::R2);
                }
                if v.found_fabricated {
                    mark(
                        &mut p.fabrications,
                        FindingKind::ReportFabricated as i32,
                        "",
                        0,
                    );
                    touched.add(RuleCode::C7);
                }
            }
            Payload::TicketMarkedUnfounded(_) => {
                mark(
                    &mut p.fabrications,
                    FindingKind::TicketUnfounded as i32,
                    "",
                    0,
                );
                touched.add(RuleCode::C7);
            }
            Payload::CaseRegistered(c) => {
                self.police(p, c.offence, &event.case_ref, &eid, at, &mut touched)
            }
            Payload::SecurityPenaltyImposed(c) => {
                self.police(p, c.offence, &event.case_ref, &eid, at, &mut touched)
            }
            Payload::CaseClosed(c) if c.outcome != PoliceCaseOutcome::Dropped as i32 => {
                self.police(p, c.offence, &event.case_ref, &eid, at, &mut touched)
            }
            Payload::CriminalJudged(c) if c.convicted => {
                self.police(p, c.offence, &event.case_ref, &eid, at, &mut touched)
            }
            Payload::DisclosureRequested(_) => figures(p).disclosure_requests += 1,
            Payload::DisclosureDecided(d) if d.outcome == DisclosureOutcome::NotInScope as i32 => {
                mark(&mut p.disclosures_refused, 0, &d.matter_ref, 0);
                touched.add(RuleCode::R4);
            }
            Payload::DisciplineReportNotified(d) => {
                figures(p).discipline_reports += 1;
                if d.found_untrue {
                    mark(&mut p.discipline_untrue, 0, &d.matter_ref, 0);
                    touched.add(RuleCode::R5);
                }
            }
            Payload::ReconsiderationFiled(r) => {
                figures(p).reconsiderations += 1;
                appeal_filed(p, &eid, at, r.matter_type, &r.matter_ref);
                touched.add(RuleCode::R3);
            }
            Payload::AdminSuitFiled(s) => {
                figures(p).admin_suits += 1;
                appeal_filed(p, &eid, at, s.matter_type, &s.matter_ref);
                touched.add(RuleCode::R3);
            }
            Payload::ReconsiderationRejected(r) => {
                appeal_rejected(p, &r.filed_event_id, &eid, at);
                touched.add(RuleCode::R3);
                if r.reason == ReconsiderationRejectionReason::FalseIdentity as i32 {
                    false_identity(subject, &eid, at, &mut uses);
                }
            }
            Payload::AdminSuitDismissed(s) => {
                appeal_rejected(p, &s.filed_event_id, &eid, at);
                touched.add(RuleCode::R3);
                if s.reason == SuitDismissalReason::FalseIdentity as i32 {
                    false_identity(subject, &eid, at, &mut uses);
                }
            }
            Payload::CivilClaimFiled(_) => figures(p).civil_claims += 1,
            Payload::PetitionReceived(_) => figures(p).petitions += 1,
            _ => {}
        }
        self.prune_person(p);
        (touched, uses)
    }

    /// A police or court record: 三(一) for the offences it names, and 二(七) when it establishes fabrication.
    fn police(
        &self,
        p: &mut PersonScreening,
        offence: i32,
        case_ref: &str,
        eid: &[u8],
        at: i64,
        touched: &mut Touched,
    ) {
        let o = Offence::try_from(offence).unwrap_or(Offence::Unspecified);
        let fabrication = matches!(
            o,
            Offence::Planting
                | Offence::Swapping
                | Offence::ForgingDates
                | Offence::FabricatingFacts
        );
        if !(fabrication || o == Offence::Extortion) {
            return;
        }
        let reference = if case_ref.is_empty() {
            id_string(eid)
        } else {
            case_ref.to_owned()
        };
        let m = Mark {
            event_id: eid.to_owned(),
            occurred_us: at,
            code: offence,
            reference,
            value: 0,
        };
        if !p.police_cases.iter().any(|x| same(&x.event_id, eid)) {
            p.police_cases.push(m.clone());
        }
        touched.add(RuleCode::R1);
        if fabrication {
            if !p.fabrications.iter().any(|x| same(&x.event_id, eid)) {
                p.fabrications.push(Mark {
                    code: FindingKind::PoliceFabrication as i32,
                    ..m
                });
            }
            touched.add(RuleCode::C7);
        }
    }

    /// Drops facts beyond the retention horizon and beyond `max_facts`, keeping the all-time matter count.
    fn prune_person(&self, p: &mut PersonScreening) {
        let horizon = p.latest_us - days(self.rules.retain_days);
        let cap = usize::try_from(self.rules.max_facts).unwrap_or(usize::MAX);
        // Intakes are sorted by (occurred, event id): the stale ones are a prefix.
        let stale_intakes =
            p.intakes.first().is_some_and(|i| i.occurred_us < horizon) || p.intakes.len() > cap;
        if stale_intakes {
            let before = p.intakes.iter().filter(|i| i.leads).count();
            let old = p.intakes.partition_point(|i| i.occurred_us < horizon);
            let cut = old.max(p.intakes.len().saturating_sub(cap));
            let dropped: Vec<Intake> = p.intakes.drain(..cut).collect();
            let links = p.matter_links.len();
            p.matter_links.retain(|l| l.occurred_us >= horizon);
            // Matters of the rest change only if a dropped intake or link shared a reference with them.
            let shared = |r: &[u8]| {
                !r.is_empty()
                    && (p
                        .intakes
                        .iter()
                        .any(|i| same(&ref_of_id(&i.event_id), r) || same(&i.case_ref, r))
                        || p.matter_links
                            .iter()
                            .any(|l| same(&l.a, r) || same(&l.b, r)))
            };
            if p.matter_links.len() != links
                || dropped
                    .iter()
                    .any(|d| shared(&ref_of_id(&d.event_id)) || shared(&d.case_ref))
            {
                mark_leaders(&mut p.intakes, &p.matter_links);
            }
            let after = p.intakes.iter().filter(|i| i.leads).count();
            p.matters_before_horizon += before.saturating_sub(after) as u64;
        }
        if p.matter_links.len() > cap {
            p.matter_links
                .sort_by(|x, y| (x.occurred_us, &x.a).cmp(&(y.occurred_us, &y.a)));
            let extra = p.matter_links.len() - cap;
            p.matter_links.drain(..extra);
            mark_leaders(&mut p.intakes, &p.matter_links);
        }
        for list in [
            &mut p.punitive_payments,
            &mut p.bulk_purchases,
            &mut p.fabrications,
            &mut p.police_cases,
            &mut p.unsubstantiated,
            &mut p.disclosures_refused,
            &mut p.discipline_untrue,
        ] {
            list.retain(|m| m.occurred_us >= horizon);
            keep_newest(list, cap, |m| (m.occurred_us, m.event_id.as_slice()));
        }
        p.appeals
            .retain(|a| a.filed_us.max(a.rejected_us) >= horizon);
        keep_newest(&mut p.appeals, cap, |a| {
            (a.filed_us.max(a.rejected_us), a.filed_event_id.as_slice())
        });
    }

    /// Adds a use to a relation (if any), evaluates it, and hands its findings and links to every user.
    fn touch_relation<S: ScreeningStore>(
        &self,
        store: &mut S,
        key: &RelationKey,
        new_use: Option<(&[u8; 32], NewUse)>,
        sequence: u64,
        changes: &mut Vec<FlagChange>,
    ) -> Result<(), S::Error> {
        let rel = store.relation(key)?;
        if let Some((me, u)) = new_use {
            let idx = match rel.persons.iter().position(|p| p.as_slice() == me) {
                Some(i) => Some(i),
                None if rel.persons.len()
                    < usize::try_from(self.rules.max_relation_persons).unwrap_or(usize::MAX) =>
                {
                    rel.persons.push(me.to_vec());
                    Some(rel.persons.len() - 1)
                }
                None => {
                    rel.saturated = true;
                    None
                }
            };
            if let Some(i) = idx {
                let merchant = if u.merchant_uscc.is_empty() {
                    0
                } else {
                    match rel.merchants.iter().position(|m| *m == u.merchant_uscc) {
                        Some(m) => m + 1,
                        None => {
                            rel.merchants.push(u.merchant_uscc);
                            rel.merchants.len()
                        }
                    }
                };
                let new = RelationUse {
                    occurred_us: u.occurred_us,
                    event_id: u.event_id,
                    person: u32::try_from(i).unwrap_or(u32::MAX),
                    merchant: u32::try_from(merchant).unwrap_or(u32::MAX),
                    false_identity: u.false_identity,
                };
                if !rel.uses.iter().any(|x| same(&x.event_id, &new.event_id)) {
                    let pos = rel.uses.partition_point(|x| {
                        (x.occurred_us, &x.event_id) < (new.occurred_us, &new.event_id)
                    });
                    rel.uses.insert(pos, new);
                    rel.latest_us = rel.latest_us.max(u.occurred_us);
                    let horizon = rel.latest_us - days(self.rules.retain_days);
                    rel.uses.retain(|x| x.occurred_us >= horizon);
                    let cap = usize::try_from(self.rules.max_facts).unwrap_or(usize::MAX);
                    if rel.uses.len() > cap {
                        let extra = rel.uses.len() - cap;
                        rel.uses.drain(..extra);
                    }
                    prune_merchants(rel);
                }
            }
        }
        if rel.persons.len() < 2 {
            return Ok(());
        }
        // Taken out while the users' states are updated, put back at the end.
        let snapshot = std::mem::take(rel);
        let relation_bytes = key.to_bytes();
        let (kind, contact) = match key {
            RelationKey::Phone(k) => (ContactKind::Phone as i32, Some(k)),
            RelationKey::Address(k) => (ContactKind::Address as i32, Some(k)),
            RelationKey::Text(_) => (ContactKind::Unspecified as i32, None),
        };
        let mut keys = Vec::with_capacity(snapshot.persons.len());
        let mut shares = Vec::with_capacity(snapshot.persons.len());
        for bytes in &snapshot.persons {
            let Ok(pk) = <[u8; 32]>::try_from(bytes.as_slice()).map(PersonKey) else {
                keys.push(None);
                shares.push(Share::default());
                continue;
            };
            let ps = store.person_ref(&pk)?;
            let mut share = Share::default();
            if let Some(k) = contact {
                let held = ps
                    .contacts
                    .iter()
                    .position(|c| c.kind == kind && &c.key == k);
                share.total = if kind == ContactKind::Phone as i32 {
                    ps.phone_records
                } else {
                    ps.address_records
                };
                if let Some(i) = held {
                    share.with = ps.contacts[i].records;
                    if !ps.contacts[i].shared {
                        store.person(&pk)?.contacts[i].shared = true;
                    }
                }
            }
            keys.push(Some(pk));
            shares.push(share);
        }
        let outcome = relations::evaluate(&self.rules, key, &snapshot, &shares);
        let uses = &snapshot.uses;
        let max_links = 64;
        let keep = usize::try_from(self.rules.max_evidence).unwrap_or(usize::MAX);
        // Each user's links from this relation, in one pass over the pairs.
        type Held<'e> = Vec<(usize, i32, &'e [&'e [u8]])>;
        let mut per_person: Vec<Held<'_>> = vec![Vec::new(); keys.len()];
        for ((a, b), (reason, evidence)) in &outcome.links {
            if let Some(l) = per_person.get_mut(*a) {
                l.push((*b, *reason as i32, evidence));
            }
            if let Some(l) = per_person.get_mut(*b) {
                l.push((*a, *reason as i32, evidence));
            }
        }
        // Each user's findings from this relation, in rule order.
        let mut found_of: Vec<Vec<(RuleCode, &Found)>> = vec![Vec::new(); keys.len()];
        for (who, code, f) in &outcome.findings {
            if let Some(m) = found_of.get_mut(*who) {
                m.push((*code, f));
            }
        }
        for (i, pk) in keys.iter().enumerate() {
            let Some(pk) = pk else { continue };
            let mine = &mut found_of[i];
            mine.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            let mut new_links = std::mem::take(&mut per_person[i]);
            new_links.sort_by(|x, y| snapshot.persons[x.0].cmp(&snapshot.persons[y.0]));
            let ps = store.person_ref(pk)?;
            let unchanged = {
                let held: Vec<&RelationFinding> = ps
                    .findings
                    .iter()
                    .filter(|f| f.relation == relation_bytes)
                    .collect();
                held.len() == mine.len()
                    && held
                        .iter()
                        .zip(mine.iter())
                        .all(|(h, (code, f))| same_finding(h, *code, f, uses))
            };
            // The same links as held: nothing to redo (held ones are sorted by other, one per other).
            let same_links = {
                let held: Vec<&Link> = ps
                    .links
                    .iter()
                    .filter(|l| l.relation == relation_bytes)
                    .collect();
                held.len() == new_links.len()
                    && held.iter().zip(&new_links).all(|(l, (o, reason, ev))| {
                        l.other == snapshot.persons[*o]
                            && l.reason == *reason
                            && l.evidence.len() == ev.len()
                            && l.evidence
                                .iter()
                                .zip(ev.iter())
                                .all(|(s, b)| s.as_slice() == *b)
                    })
            };
            if same_links && unchanged {
                continue;
            }
            let ps = store.person(pk)?;
            if !same_links {
                // The links from this relation are replaced; those that stay as they were are kept as they are.
                let (held, rest): (Vec<Link>, Vec<Link>) = std::mem::take(&mut ps.links)
                    .into_iter()
                    .partition(|l| l.relation == relation_bytes);
                ps.links = rest;
                let mut held: Vec<Option<Link>> = held.into_iter().map(Some).collect();
                for (o, reason, ev) in new_links {
                    let kept = held.iter_mut().find_map(|h| {
                        h.take_if(|l| {
                            l.other == snapshot.persons[o]
                                && l.reason == reason
                                && l.evidence.len() == ev.len()
                                && l.evidence
                                    .iter()
                                    .zip(ev.iter())
                                    .all(|(s, b)| s.as_slice() == *b)
                        })
                    });
                    ps.links.push(kept.unwrap_or_else(|| Link {
                        other: snapshot.persons[o].clone(),
                        reason,
                        relation: relation_bytes.clone(),
                        evidence: ev.iter().map(|e| e.to_vec()).collect(),
                    }));
                }
                ps.links
                    .sort_by(|a, b| (&a.other, &a.relation).cmp(&(&b.other, &b.relation)));
                if ps.links.len() > max_links {
                    // Keep the strongest reasons.
                    ps.links.sort_by(|a, b| {
                        b.reason
                            .cmp(&a.reason)
                            .then_with(|| (&a.other, &a.relation).cmp(&(&b.other, &b.relation)))
                    });
                    ps.links.truncate(max_links);
                    ps.links
                        .sort_by(|a, b| (&a.other, &a.relation).cmp(&(&b.other, &b.relation)));
                }
            }
            if unchanged {
                continue;
            }
            // The findings are kept sorted by (rule, relation), one per pair: replaced in place, their evidence
            // entries reused where they stay.
            for code in [RuleCode::C3, RuleCode::C4, RuleCode::C5] {
                let found = mine.iter().find(|(c, _)| *c == code).map(|(_, f)| *f);
                let pos = ps
                    .findings
                    .iter()
                    .position(|f| f.rule == code.as_str() && f.relation == relation_bytes);
                match (pos, found) {
                    (Some(p), Some(f)) => {
                        let h = &mut ps.findings[p];
                        h.window_from_us = f.from_us;
                        h.window_to_us = f.to_us;
                        h.figures.clone_from(&f.figures);
                        refill(&mut h.evidence, uses, &f.uses);
                    }
                    (Some(p), None) => {
                        ps.findings.remove(p);
                    }
                    (None, Some(f)) => {
                        let at = ps.findings.partition_point(|x| {
                            (x.rule.as_str(), x.relation.as_slice())
                                < (code.as_str(), relation_bytes.as_slice())
                        });
                        let mut evidence = Vec::new();
                        refill(&mut evidence, uses, &f.uses);
                        ps.findings.insert(
                            at,
                            RelationFinding {
                                rule: code.as_str().to_owned(),
                                relation: relation_bytes.clone(),
                                window_from_us: f.from_us,
                                window_to_us: f.to_us,
                                figures: f.figures.clone(),
                                evidence,
                            },
                        );
                    }
                    (None, None) => {}
                }
            }
            for code in [RuleCode::C3, RuleCode::C4, RuleCode::C5] {
                let merged = merged_findings(&ps.findings, code, keep);
                self.settle(ps, pk, code, merged, sequence, changes);
            }
        }
        *store.relation(key)? = snapshot;
        Ok(())
    }

    /// Raises, grows or withdraws the person's flag of one rule from what the rule found now.
    fn settle(
        &self,
        p: &mut PersonScreening,
        person: &PersonKey,
        code: RuleCode,
        found: Option<Assessment>,
        sequence: u64,
        changes: &mut Vec<FlagChange>,
    ) {
        let meta = self.rules.meta(code);
        let found = if meta.enabled { found } else { None };
        let pos = p.flags.iter().position(|f| f.rule == code.as_str());
        let Some(mut a) = found else {
            if let (true, Some(i)) = (code.is_cross_person(), pos) {
                let f = &mut p.flags[i];
                if f.active {
                    f.active = false;
                    f.revision += 1;
                    f.updated_seq = sequence;
                    changes.push(FlagChange::Withdrawn {
                        person: *person,
                        flag: f.clone(),
                    });
                }
            }
            return;
        };
        a.evidence.sort();
        a.evidence.dedup();
        let total = a.omitted + a.evidence.len() as u64;
        let keep = usize::try_from(self.rules.max_evidence).unwrap_or(usize::MAX);
        let skip = a.evidence.len().saturating_sub(keep);
        let ids: Vec<Vec<u8>> = a
            .evidence
            .into_iter()
            .skip(skip)
            .map(|e: Evidence| e.event_id)
            .collect();
        match pos {
            None => {
                let flag = Flag {
                    rule: code.as_str().to_owned(),
                    clause: meta.clause.to_owned(),
                    title_zh: meta.title_zh.to_owned(),
                    title_en: meta.title_en.to_owned(),
                    guideline: meta.guideline.to_owned(),
                    window_from_us: a.from_us,
                    window_to_us: a.to_us,
                    figures: a.figures,
                    evidence: ids.iter().map(|e| id_string(e)).collect(),
                    evidence_total: total,
                    raised_seq: sequence,
                    updated_seq: sequence,
                    revision: 1,
                    active: true,
                };
                let at = p
                    .flags
                    .iter()
                    .position(|f| RuleCode::parse(&f.rule).is_some_and(|c| c > code))
                    .unwrap_or(p.flags.len());
                p.flags.insert(at, flag.clone());
                changes.push(FlagChange::Raised {
                    person: *person,
                    flag,
                });
            }
            Some(i) => {
                let f = &mut p.flags[i];
                let reraised = !f.active;
                let same = f.window_from_us == a.from_us
                    && f.window_to_us == a.to_us
                    && f.figures == a.figures
                    && f.evidence.len() == ids.len()
                    && f.evidence.iter().zip(&ids).all(|(s, b)| id_is(b, s))
                    && f.evidence_total == total;
                if same && !reraised {
                    return;
                }
                let ids: Vec<String> = ids.iter().map(|e| id_string(e)).collect();
                let grew = total > f.evidence_total || {
                    let mut held: Vec<&str> = f.evidence.iter().map(String::as_str).collect();
                    held.sort_unstable();
                    ids.iter()
                        .any(|id| held.binary_search(&id.as_str()).is_err())
                };
                if !grew && !reraised && !code.is_cross_person() {
                    // A person-local flag never shrinks (pruned facts leave the raised evidence standing).
                    return;
                }
                f.window_from_us = a.from_us;
                f.window_to_us = a.to_us;
                f.figures = a.figures;
                f.evidence = ids;
                f.evidence_total = total;
                if grew || reraised {
                    f.revision += 1;
                    f.updated_seq = sequence;
                    f.active = true;
                    let flag = f.clone();
                    changes.push(if reraised {
                        FlagChange::Raised {
                            person: *person,
                            flag,
                        }
                    } else {
                        FlagChange::Grown {
                            person: *person,
                            flag,
                        }
                    });
                }
            }
        }
    }
}

/// Evidence order, (occurred, event id), with 16-byte ids (UUIDs) compared as integers: this is on the hot path of
/// large relations, where most comparisons are between equal entries.
#[inline]
fn evidence_cmp(at_a: i64, a: &[u8], at_b: i64, b: &[u8]) -> std::cmp::Ordering {
    at_a.cmp(&at_b).then_with(|| {
        match (a.first_chunk::<16>(), b.first_chunk::<16>()) {
            // The same order as the slices': equal prefixes leave the rest to decide.
            (Some(x), Some(y)) => u128::from_be_bytes(*x)
                .cmp(&u128::from_be_bytes(*y))
                .then_with(|| {
                    if a.len() == 16 && b.len() == 16 {
                        std::cmp::Ordering::Equal
                    } else {
                        a[16..].cmp(&b[16..])
                    }
                }),
            _ => a.cmp(b),
        }
    })
}

#[inline]
fn ev_cmp(a: &Evidence, b: &Evidence) -> std::cmp::Ordering {
    evidence_cmp(a.occurred_us, &a.event_id, b.occurred_us, &b.event_id)
}

/// Whether a held finding is what the relation found now.
fn same_finding(h: &RelationFinding, code: RuleCode, f: &Found, uses: &[RelationUse]) -> bool {
    h.rule == code.as_str()
        && h.window_from_us == f.from_us
        && h.window_to_us == f.to_us
        && h.figures == f.figures
        && h.evidence.len() == f.uses.len()
        && h.evidence.iter().zip(&f.uses).all(|(e, &j)| {
            uses.get(j as usize).is_some_and(|u| {
                evidence_cmp(u.occurred_us, &u.event_id, e.occurred_us, &e.event_id).is_eq()
            })
        })
}

/// Sets `evidence` to the uses `idx` (ascending), reusing the entries it holds already (both are sorted by (occurred,
/// event id)): a growing finding allocates only for its new evidence.
fn refill(evidence: &mut Vec<Evidence>, uses: &[RelationUse], idx: &[u32]) {
    let old = std::mem::replace(evidence, Vec::with_capacity(idx.len()));
    let mut old = old.into_iter().peekable();
    for u in idx.iter().filter_map(|&j| uses.get(j as usize)) {
        let order =
            |o: &Evidence| evidence_cmp(o.occurred_us, &o.event_id, u.occurred_us, &u.event_id);
        while old.next_if(|o| order(o).is_lt()).is_some() {}
        match old.next_if(|o| order(o).is_eq()) {
            Some(o) => evidence.push(o),
            None => evidence.push(Evidence {
                occurred_us: u.occurred_us,
                event_id: u.event_id.clone(),
            }),
        }
    }
}

/// A person's findings of one rule over all their relations, merged as one assessment: the widest window, each
/// figure's highest value, and the union of the evidence, of which only the newest `keep` are listed (the rest are
/// `omitted`: the flag lists no more). Each finding's evidence is sorted without duplicates.
fn merged_findings(
    findings: &[RelationFinding],
    code: RuleCode,
    keep: usize,
) -> Option<Assessment> {
    let of: Vec<&RelationFinding> = findings
        .iter()
        .filter(|f| f.rule == code.as_str())
        .collect();
    let first = of.first()?;
    let mut a = Assessment {
        from_us: first.window_from_us,
        to_us: first.window_to_us,
        figures: first.figures.clone(),
        evidence: Vec::new(),
        omitted: 0,
    };
    for f in &of[1..] {
        a.from_us = a.from_us.min(f.window_from_us);
        a.to_us = a.to_us.max(f.window_to_us);
        for x in &f.figures {
            match a.figures.iter_mut().find(|g| g.name == x.name) {
                Some(g) => g.value = g.value.max(x.value),
                None => a.figures.push(x.clone()),
            }
        }
    }
    // The union from its newest end: a merge of the sorted lists.
    let mut ends: Vec<usize> = of.iter().map(|f| f.evidence.len()).collect();
    let mut newest: Vec<&Evidence> = Vec::with_capacity(keep.min(1024));
    let mut total = 0u64;
    loop {
        let mut best: Option<&Evidence> = None;
        for (f, &end) in of.iter().zip(&ends) {
            if let Some(e) = end.checked_sub(1).map(|k| &f.evidence[k]) {
                if best.is_none_or(|b| ev_cmp(e, b).is_gt()) {
                    best = Some(e);
                }
            }
        }
        let Some(b) = best else { break };
        for (f, end) in of.iter().zip(ends.iter_mut()) {
            while *end > 0 && ev_cmp(&f.evidence[*end - 1], b).is_eq() {
                *end -= 1;
            }
        }
        total += 1;
        if newest.len() < keep {
            newest.push(b);
        } else if of.len() == 1 {
            // One list: the rest are all distinct.
            total += ends[0] as u64;
            break;
        }
    }
    a.omitted = total - newest.len() as u64;
    a.evidence = newest.into_iter().rev().cloned().collect();
    Some(a)
}

/// Counts the intake's phone and address in the person's contacts (what ownership of a contact is judged on).
fn count_contacts(p: &mut PersonScreening, subject: &caselink_proto::v1::Person) {
    for (kind, key) in [
        (ContactKind::Phone, &subject.phone_key),
        (ContactKind::Address, &subject.address_key),
    ] {
        if key.is_empty() {
            continue;
        }
        match kind {
            ContactKind::Phone => p.phone_records += 1,
            _ => p.address_records += 1,
        }
        match p
            .contacts
            .iter_mut()
            .find(|c| c.kind == kind as i32 && &c.key == key)
        {
            Some(c) => c.records += 1,
            None => p.contacts.push(Contact {
                kind: kind as i32,
                key: key.clone(),
                records: 1,
                shared: false,
            }),
        }
    }
    if p.contacts.len() > 16 {
        // Keep the most used (ties by key): a contact on few intakes binds nothing.
        p.contacts.sort_by(|a, b| {
            b.records
                .cmp(&a.records)
                .then_with(|| (a.kind, &a.key).cmp(&(b.kind, &b.key)))
        });
        p.contacts.truncate(16);
    }
}

fn figures(p: &mut PersonScreening) -> &mut Figures {
    p.figures.get_or_insert_with(|| Figures {
        by_department: vec![0; 7],
        ..Figures::default()
    })
}

fn bump(counts: &mut Vec<Count>, name: &str) {
    match counts.binary_search_by(|c| c.name.as_str().cmp(name)) {
        Ok(i) => counts[i].count += 1,
        Err(i) => counts.insert(
            i,
            Count {
                name: name.to_owned(),
                count: 1,
            },
        ),
    }
    // Bounded: enum-valued names only, at most a few dozen.
}

fn keep_newest<T>(list: &mut Vec<T>, cap: usize, key: impl for<'a> Fn(&'a T) -> (i64, &'a [u8])) {
    if list.len() > cap {
        list.sort_by(|x, y| key(x).cmp(&key(y)));
        let extra = list.len() - cap;
        list.drain(..extra);
    }
}

fn appeal_filed(p: &mut PersonScreening, id: &[u8], at: i64, matter_type: i32, matter_ref: &str) {
    match p.appeals.iter_mut().find(|a| a.filed_event_id == id) {
        Some(a) => {
            a.filed_us = at;
            a.matter_type = matter_type;
            a.matter_ref = matter_ref.to_owned();
        }
        None => p.appeals.push(Appeal {
            filed_event_id: id.to_owned(),
            filed_us: at,
            matter_type,
            matter_ref: matter_ref.to_owned(),
            ..Appeal::default()
        }),
    }
}

fn appeal_rejected(p: &mut PersonScreening, filed_id: &str, id: &[u8], at: i64) {
    if filed_id.is_empty() {
        return;
    }
    let filed_id = id_bytes(filed_id);
    match p.appeals.iter_mut().find(|a| a.filed_event_id == filed_id) {
        Some(a) => {
            a.rejected_us = at;
            a.rejected_event_id = id.to_owned();
        }
        None => p.appeals.push(Appeal {
            filed_event_id: filed_id,
            rejected_us: at,
            rejected_event_id: id.to_owned(),
            ..Appeal::default()
        }),
    }
}

/// An appeal rejected for false identity joins the relations of the contacts it carries (二(三)).
fn false_identity(
    subject: &caselink_proto::v1::Person,
    id: &[u8],
    at: i64,
    uses: &mut Vec<NewUse>,
) {
    for key in [
        (!subject.phone_key.is_empty()).then(|| RelationKey::Phone(subject.phone_key.clone())),
        (!subject.address_key.is_empty())
            .then(|| RelationKey::Address(subject.address_key.clone())),
    ]
    .into_iter()
    .flatten()
    {
        uses.push(NewUse {
            key,
            occurred_us: at,
            event_id: id.to_owned(),
            merchant_uscc: String::new(),
            false_identity: true,
        });
    }
}

fn claim_name(c: i32) -> &'static str {
    use caselink_proto::v1::ClaimType as C;
    match C::try_from(c).unwrap_or(C::Unspecified) {
        C::Unspecified => "unspecified",
        C::Refund => "refund",
        C::Replacement => "replacement",
        C::Repair => "repair",
        C::Compensation => "compensation",
        C::Punitive10x => "punitive_10x",
        C::Punitive3x => "punitive_3x",
        C::Other => "other",
    }
}

fn violation_name(v: i32) -> &'static str {
    use caselink_proto::v1::ViolationType as V;
    match V::try_from(v).unwrap_or(V::Unspecified) {
        V::Unspecified => "unspecified",
        V::Expired => "expired",
        V::Labelling => "labelling",
        V::NoChineseLabel => "no_chinese_label",
        V::FalseAdvertising => "false_advertising",
        V::Unlicensed => "unlicensed",
        V::Quality => "quality",
        V::Price => "price",
        V::FoodSafety => "food_safety",
        V::Other => "other",
    }
}

/// The persons connected to `start` through links (any reason), breadth first, at most `max` (including `start`),
/// in key order: the ring or cluster the person view shows. Reads states through the store; bounded by `max`.
pub fn group_of<S: ScreeningStore>(
    store: &mut S,
    start: &PersonKey,
    max: usize,
) -> Result<Vec<PersonKey>, S::Error> {
    let mut seen: BTreeSet<[u8; 32]> = BTreeSet::new();
    seen.insert(start.0);
    let mut queue = vec![*start];
    while let Some(pk) = queue.pop() {
        if seen.len() >= max {
            break;
        }
        let others: Vec<[u8; 32]> = store
            .person(&pk)?
            .links
            .iter()
            .filter_map(|l| <[u8; 32]>::try_from(l.other.as_slice()).ok())
            .collect();
        for o in others {
            if seen.len() >= max {
                break;
            }
            if seen.insert(o) {
                queue.push(PersonKey(o));
            }
        }
    }
    Ok(seen.into_iter().map(PersonKey).collect())
}

/// Why two persons are linked, in words for the person view.
pub fn link_reason_text(reason: i32) -> &'static str {
    match LinkReason::try_from(reason).unwrap_or(LinkReason::Unspecified) {
        LinkReason::Unspecified => "linked",
        LinkReason::SharedPhone => "same phone",
        LinkReason::SharedAddress => "same address",
        LinkReason::SimilarText => "near-identical complaint text on the same merchant",
        LinkReason::Collusion => "complained about the same merchant together (二(四))",
        LinkReason::SharedAgent => "share an agent's contact across many merchants (二(五))",
        LinkReason::FalseName => "records under one's ID number carry the other's contact (二(三))",
    }
}

/// Drops the merchants no use names any more (uses leave with the retention horizon and the `max_facts` cap) once
/// they are more than those still named, renumbering the uses' references: a relation's merchants stay within twice
/// its uses (an agent's phone used across merchants for years would otherwise keep every credit code it ever saw, in
/// a state read and written with every use). Order is kept: evaluation sorts merchants by key anyway.
fn prune_merchants(rel: &mut RelationState) {
    let mut named = vec![false; rel.merchants.len()];
    for u in &rel.uses {
        if let Some(seen) = u
            .merchant
            .checked_sub(1)
            .and_then(|i| named.get_mut(i as usize))
        {
            *seen = true;
        }
    }
    let kept = named.iter().filter(|n| **n).count();
    if rel.merchants.len() <= 2 * kept {
        return;
    }
    // New reference (1 + index) of each old index; 0 for a merchant dropped.
    let mut renumbered = vec![0u32; rel.merchants.len()];
    let mut next = 0u32;
    for (new, was_named) in renumbered.iter_mut().zip(&named) {
        if *was_named {
            next += 1;
            *new = next;
        }
    }
    let mut named = named.into_iter();
    rel.merchants.retain(|_| named.next().unwrap_or(false));
    for u in &mut rel.uses {
        if let Some(i) = u.merchant.checked_sub(1) {
            u.merchant = renumbered.get(i as usize).copied().unwrap_or(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Figure;

    #[test]
    fn a_hex_relation_key_is_kept_as_its_bytes_and_any_other_as_its_text() {
        let phone = RelationKey::Phone("0f".repeat(32));
        let bytes = phone.to_bytes();
        assert_eq!(bytes.len(), 33);
        assert_eq!(bytes[0], b'P');
        assert_eq!(RelationKey::from_bytes(&bytes), Some(phone));
        let text = RelationKey::Text(text_fingerprint("91430600MA4L000001", "过期"));
        assert_eq!(text.to_bytes().len(), 17);
        assert_eq!(RelationKey::from_bytes(&text.to_bytes()), Some(text));
        // Upper-case hex, odd length, empty or not hex at all: the text itself, so it reads back exactly.
        for odd in ["0F0F", "abc", "", "not hex", "地址"] {
            let address = RelationKey::Address(odd.to_string());
            let bytes = address.to_bytes();
            assert_eq!(bytes, [b"a".as_slice(), odd.as_bytes()].concat());
            assert_eq!(RelationKey::from_bytes(&bytes), Some(address));
        }
        assert_eq!(RelationKey::from_bytes(b"q0f"), None);
    }

    #[test]
    fn a_text_fingerprint_hashes_the_text_without_spacing_and_punctuation() {
        for text in [
            "",
            "，。",
            "商品过期，要求十倍赔偿！",
            " 商品 过期,要求 十倍 赔偿 ",
            "abc-123 ДЕФ ½ 🙂x",
            "x",
        ] {
            let mut h = Sha256::new();
            h.update(b"91430600MA4L000001");
            h.update([0]);
            let kept: String = text.chars().filter(|c| c.is_alphanumeric()).collect();
            h.update(kept.as_bytes());
            assert_eq!(
                text_fingerprint("91430600MA4L000001", text),
                hex_lower(&h.finalize()[..16]),
                "{text:?}"
            );
        }
        assert_eq!(
            text_fingerprint("m", "商品过期，要求十倍赔偿！"),
            text_fingerprint("m", " 商品 过期,要求 十倍 赔偿 ")
        );
    }

    #[test]
    fn evidence_order_is_the_tuple_order() {
        let ids: Vec<Vec<u8>> = vec![
            vec![],
            b"c1".to_vec(),
            vec![7; 16],
            vec![7; 17],
            [vec![7; 16], vec![0]].concat(),
            vec![8; 15],
            vec![6; 16],
        ];
        for a in &ids {
            for b in &ids {
                for (x, y) in [(0, 0), (0, 1), (1, 0)] {
                    assert_eq!(
                        evidence_cmp(x, a, y, b),
                        (x, a.as_slice()).cmp(&(y, b.as_slice())),
                        "{a:?} {b:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn merged_findings_are_the_union_newest_last() {
        let e = |at: i64| Evidence {
            occurred_us: at,
            event_id: vec![at as u8; 16],
        };
        let finding = |relation: u8, from: i64, ats: &[i64], persons: i64| RelationFinding {
            rule: "C4".to_owned(),
            relation: vec![relation],
            window_from_us: from,
            window_to_us: *ats.last().unwrap_or(&0),
            figures: vec![Figure {
                name: "persons".to_owned(),
                value: persons,
                threshold: 3,
            }],
            evidence: ats.iter().map(|&at| e(at)).collect(),
        };
        let findings = vec![
            finding(1, 1, &[1, 2, 3, 5, 8], 3),
            finding(2, 0, &[0, 2, 3, 4, 9], 5),
            finding(3, 2, &[2, 3], 4),
        ];
        for keep in [0, 1, 3, 8, 100] {
            let a = merged_findings(&findings, RuleCode::C4, keep).expect("C4 findings");
            let all: Vec<i64> = vec![0, 1, 2, 3, 4, 5, 8, 9];
            let newest: Vec<Evidence> = all[all.len().saturating_sub(keep)..]
                .iter()
                .map(|&at| e(at))
                .collect();
            assert_eq!(a.evidence, newest);
            assert_eq!(a.omitted + a.evidence.len() as u64, all.len() as u64);
            assert_eq!((a.from_us, a.to_us, a.figures[0].value), (0, 9, 5));
        }
        assert!(merged_findings(&findings, RuleCode::C3, 10).is_none());
        let one = merged_findings(&findings[..1], RuleCode::C4, 2).expect("one C4 finding");
        assert_eq!((one.evidence.len(), one.omitted), (2, 3));
    }
}
