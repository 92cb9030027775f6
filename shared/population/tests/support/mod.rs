//! Reading a generated population back, and an independent reading of the criteria of domain.md section 5 over the
//! events (by ID number), to hold the truth against.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use caselink_domain::{derive_event_id, ALL_DEPARTMENTS};
use caselink_population::{generate, read_truth, GenParams, GenSummary, Truth, DEPARTMENT_FILES};
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{
    CaseEvent, DisclosureOutcome, GoodsCategory, MatterType, Offence, VerificationOutcome,
};

pub(crate) const DAY: i64 = 86_400;

/// A generated population, read back.
pub(crate) struct Population {
    pub(crate) params: GenParams,
    pub(crate) summary: GenSummary,
    pub(crate) truth: Truth,
    /// Every event with its department index, in file order per department.
    pub(crate) events: Vec<(usize, CaseEvent)>,
    /// Event index by derived event id.
    pub(crate) by_id: BTreeMap<String, usize>,
    /// Event indices by subject ID number.
    pub(crate) by_person: BTreeMap<String, Vec<usize>>,
    /// Index into `truth.persons` by ID number.
    pub(crate) person_index: BTreeMap<String, usize>,
}

impl Population {
    pub(crate) fn generate(params: GenParams) -> Population {
        // Read back into memory; the files go with the temporary directory.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut calls = 0;
        let summary = generate(&params, dir, &mut |_| calls += 1).unwrap();
        assert!(calls >= 1, "progress was never reported");
        let truth = read_truth(&dir.join("truth.json")).unwrap();
        let mut events = Vec::new();
        for (d, (_, file)) in DEPARTMENT_FILES.iter().enumerate() {
            let text = fs::read_to_string(dir.join(file)).unwrap();
            for line in text.lines() {
                let e: CaseEvent = serde_json::from_str(line).unwrap();
                events.push((d, e));
            }
        }
        let mut by_id = BTreeMap::new();
        let mut by_person: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, (d, e)) in events.iter().enumerate() {
            let id = derive_event_id(ALL_DEPARTMENTS[*d], &e.source_id).to_string();
            assert!(
                by_id.insert(id, i).is_none(),
                "duplicate source id {}",
                e.source_id
            );
            if let Some(s) = &e.subject {
                by_person.entry(s.id_number.clone()).or_default().push(i);
            }
        }
        // Within a person, by time (files are per department).
        for list in by_person.values_mut() {
            list.sort_by_key(|i| (at(&events[*i].1), *i));
        }
        let person_index = truth
            .persons
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id_number.clone(), i))
            .collect();
        Population {
            person_index,
            params,
            summary,
            truth,
            events,
            by_id,
            by_person,
        }
    }

    pub(crate) fn event(&self, id: &str) -> &CaseEvent {
        &self.events[self.by_id[id]].1
    }

    pub(crate) fn of(&self, id_number: &str) -> impl Iterator<Item = &CaseEvent> {
        self.by_person
            .get(id_number)
            .into_iter()
            .flatten()
            .map(|i| &self.events[*i].1)
    }

    /// A person's own phone, from the truth.
    pub(crate) fn phone_of(&self, id_number: &str) -> Option<String> {
        self.person_index
            .get(id_number)
            .map(|i| self.truth.persons[*i].phone.clone())
    }
}

/// The small population most tests read: 2,000 persons, 3% abusive so every criterion shows up.
pub(crate) fn small() -> &'static Population {
    static P: OnceLock<Population> = OnceLock::new();
    P.get_or_init(|| {
        Population::generate(GenParams {
            seed: 7,
            people: 2_000,
            abuser_share: 0.03,
            ..GenParams::default()
        })
    })
}

/// A population at the default share of abusers, for proportions.
pub(crate) fn typical() -> &'static Population {
    static P: OnceLock<Population> = OnceLock::new();
    P.get_or_init(|| {
        Population::generate(GenParams {
            seed: 11,
            people: 6_000,
            ..GenParams::default()
        })
    })
}

pub(crate) fn at(e: &CaseEvent) -> i64 {
    e.occurred_at.as_ref().unwrap().seconds
}

pub(crate) fn read_dir_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

// ---------------------------------------------------------------------------------------------------------------------
// an independent screen, by ID number, with the default thresholds

fn is_intake(e: &CaseEvent) -> bool {
    matches!(
        e.payload,
        Some(Payload::ComplaintReceived(_) | Payload::ReportReceived(_))
    )
}

/// C1: punitive compensation paid, then a complaint on the same merchant or category within 365 days.
pub(crate) fn c1(pop: &Population, id: &str) -> bool {
    let events: Vec<&CaseEvent> = pop.of(id).collect();
    events.iter().any(|paid| {
        let Some(Payload::CompensationPaid(c)) = &paid.payload else {
            return false;
        };
        if !c.punitive {
            return false;
        }
        let complaint = pop.event(&c.complaint_event_id);
        let m = complaint.merchant.as_ref().unwrap();
        events.iter().any(|e| {
            matches!(e.payload, Some(Payload::ComplaintReceived(_)))
                && at(e) > at(paid)
                && at(e) - at(paid) <= 365 * DAY
                && e.merchant
                    .as_ref()
                    .is_some_and(|x| x.uscc == m.uscc || x.category == m.category)
        })
    })
}

/// Median complaint amount per category.
pub(crate) fn medians(pop: &Population) -> BTreeMap<i32, i64> {
    let mut amounts: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (_, e) in &pop.events {
        if let Some(Payload::ComplaintReceived(c)) = &e.payload {
            amounts
                .entry(e.merchant.as_ref().unwrap().category)
                .or_default()
                .push(c.amount_fen);
        }
    }
    amounts
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_unstable();
            (k, v[v.len() / 2])
        })
        .collect()
}

const FOOD: [GoodsCategory; 4] = [
    GoodsCategory::Food,
    GoodsCategory::HealthFood,
    GoodsCategory::AlcoholTobacco,
    GoodsCategory::Catering,
];

/// C2: over 10 units of a food item, or over 20 times the category's median amount.
pub(crate) fn c2(pop: &Population, medians: &BTreeMap<i32, i64>, id: &str) -> bool {
    pop.of(id).any(|e| {
        let Some(Payload::ComplaintReceived(c)) = &e.payload else {
            return false;
        };
        let category = e.merchant.as_ref().unwrap().category;
        let food = FOOD.iter().any(|f| *f as i32 == category);
        (food && c.quantity > 10) || c.amount_fen > 20 * medians[&category]
    })
}

/// C6: the most complaints and reports in any 365 days.
pub(crate) fn c6_count(pop: &Population, id: &str) -> usize {
    let days: Vec<i64> = pop
        .of(id)
        .filter(|e| is_intake(e))
        .map(|e| at(e) / DAY)
        .collect();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..days.len() {
        while days[hi] - days[lo] >= 365 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// C7: a report found fabricated, a ticket found untrue, or a police case for fabrication.
pub(crate) fn c7(pop: &Population, id: &str) -> bool {
    pop.of(id).any(|e| match &e.payload {
        Some(Payload::ReportVerified(r)) => r.found_fabricated,
        Some(Payload::TicketMarkedUnfounded(_)) => true,
        Some(Payload::CaseRegistered(c)) => c.offence != Offence::Extortion as i32,
        _ => false,
    })
}

/// R1: a police case or penalty, or a conviction.
pub(crate) fn r1(pop: &Population, id: &str) -> bool {
    pop.of(id).any(|e| match &e.payload {
        Some(Payload::CaseRegistered(_) | Payload::SecurityPenaltyImposed(_)) => true,
        Some(Payload::CriminalJudged(c)) => c.convicted,
        _ => false,
    })
}

/// R2: the most unsubstantiated reports of one violation type.
pub(crate) fn r2_count(pop: &Population, id: &str) -> usize {
    let mut by_type: BTreeMap<i32, usize> = BTreeMap::new();
    for e in pop.of(id) {
        if let Some(Payload::ReportVerified(r)) = &e.payload {
            if r.outcome == VerificationOutcome::Unsubstantiated as i32 {
                *by_type.entry(r.violation).or_default() += 1;
            }
        }
    }
    by_type.into_values().max().unwrap_or(0)
}

/// R3: a reconsideration or suit on a report matter filed after two or more such were rejected or dismissed.
pub(crate) fn r3(pop: &Population, id: &str) -> bool {
    let mut rejected = 0;
    let report = MatterType::Report as i32;
    for e in pop.of(id) {
        let on_report = match &e.payload {
            Some(Payload::ReconsiderationFiled(f)) => {
                if f.matter_type == report && rejected >= 2 {
                    return true;
                }
                false
            }
            Some(Payload::AdminSuitFiled(f)) => {
                if f.matter_type == report && rejected >= 2 {
                    return true;
                }
                false
            }
            Some(Payload::ReconsiderationRejected(r)) => matches!(
                &pop.event(&r.filed_event_id).payload,
                Some(Payload::ReconsiderationFiled(f)) if f.matter_type == report
            ),
            Some(Payload::AdminSuitDismissed(r)) => matches!(
                &pop.event(&r.filed_event_id).payload,
                Some(Payload::AdminSuitFiled(f)) if f.matter_type == report
            ),
            _ => false,
        };
        rejected += usize::from(on_report);
    }
    false
}

/// Reconsiderations rejected and suits dismissed, any matter.
pub(crate) fn rejections(pop: &Population, id: &str) -> usize {
    pop.of(id)
        .filter(|e| {
            matches!(
                e.payload,
                Some(Payload::ReconsiderationRejected(_) | Payload::AdminSuitDismissed(_))
            )
        })
        .count()
}

/// R4: the most "not in scope" disclosure decisions on one matter.
pub(crate) fn r4_count(pop: &Population, id: &str) -> usize {
    let mut by_ref: BTreeMap<String, usize> = BTreeMap::new();
    for e in pop.of(id) {
        if let Some(Payload::DisclosureDecided(d)) = &e.payload {
            if d.outcome == DisclosureOutcome::NotInScope as i32 {
                *by_ref.entry(d.matter_ref.clone()).or_default() += 1;
            }
        }
    }
    by_ref.into_values().max().unwrap_or(0)
}

/// R5: discipline reports found untrue.
pub(crate) fn r5_count(pop: &Population, id: &str) -> usize {
    pop.of(id)
        .filter(
            |e| matches!(&e.payload, Some(Payload::DisciplineReportNotified(d)) if d.found_untrue),
        )
        .count()
}

/// C4 (generic): ID numbers that complained about one merchant with 2 others within 7 days, all giving one phone or
/// one address.
pub(crate) fn c4_flagged(pop: &Population) -> BTreeSet<String> {
    let mut by_key: BTreeMap<(String, String), Vec<(i64, String)>> = BTreeMap::new();
    for (_, e) in &pop.events {
        if let Some(Payload::ComplaintReceived(_)) = e.payload {
            let s = e.subject.as_ref().unwrap();
            let m = e.merchant.as_ref().unwrap();
            for contact in [format!("p:{}", s.phone), format!("a:{}", s.address)] {
                by_key
                    .entry((m.uscc.clone(), contact))
                    .or_default()
                    .push((at(e), s.id_number.clone()));
            }
        }
    }
    let mut flagged = BTreeSet::new();
    for mut list in by_key.into_values() {
        list.sort();
        for (i, (t, _)) in list.iter().enumerate() {
            let window: BTreeSet<&String> = list[i..]
                .iter()
                .take_while(|(t2, _)| t2 - t < 7 * DAY)
                .map(|(_, id)| id)
                .collect();
            if window.len() >= 3 {
                flagged.extend(window.into_iter().cloned());
            }
        }
    }
    flagged
}

/// C5 (generic): ID numbers sharing one phone with 2 or more others across 5 or more merchants.
pub(crate) fn c5_flagged(pop: &Population) -> BTreeSet<String> {
    let mut by_phone: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for (_, e) in &pop.events {
        if let Some(Payload::ComplaintReceived(_)) = e.payload {
            let s = e.subject.as_ref().unwrap();
            let entry = by_phone.entry(s.phone.clone()).or_default();
            entry.0.insert(s.id_number.clone());
            entry.1.insert(e.merchant.as_ref().unwrap().uscc.clone());
        }
    }
    by_phone
        .into_values()
        .filter(|(ids, merchants)| ids.len() >= 3 && merchants.len() >= 5)
        .flat_map(|(ids, _)| ids)
        .collect()
}
