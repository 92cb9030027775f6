//! The generated population as a specification: valid, deterministic, realistic in its proportions, and true to its
//! truth file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use caselink_domain::{
    parse_id_number, validate_event, validate_uscc, Limits, Violations, ALL_DEPARTMENTS,
};
use caselink_ingest::DepartmentRules;
use caselink_population::{generate, GenError, GenParams, GroupKind, Label};
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{Channel, Department};

use support::*;

fn rules(d: Department) -> Box<dyn DepartmentRules> {
    match d {
        Department::Market => Box::new(caselink_market::Market),
        Department::Police => Box::new(caselink_police::Police),
        Department::Justice => Box::new(caselink_justice::Justice),
        Department::Court => Box::new(caselink_court::Court),
        Department::Petition => Box::new(caselink_petition::Petition),
        _ => Box::new(caselink_hotline::Hotline),
    }
}

/// The instant the end day closes in China time (the latest an event may carry).
fn end_instant(end: &str) -> i64 {
    let d = time::Date::parse(
        end,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap();
    let midnight_utc = d.midnight().assume_utc().unix_timestamp();
    midnight_utc + DAY - 8 * 3600
}

#[test]
fn every_id_number_and_uscc_is_valid_and_in_the_region() {
    let pop = small();
    let mut ids = 0;
    for (_, e) in &pop.events {
        if let Some(s) = &e.subject {
            let id = parse_id_number(&s.id_number).unwrap();
            assert!(s.id_number.starts_with("4306"), "{}", s.id_number);
            let age = 2026 - id.birth_date().year();
            assert!((17..=81).contains(&age), "age {age}");
            assert!(!s.name.is_empty() && s.name.chars().count() <= 3);
            assert!(
                s.phone.len() == 11 && s.phone.starts_with('1'),
                "{}",
                s.phone
            );
            assert!(s.address.starts_with("湖南省岳阳市"), "{}", s.address);
            ids += 1;
        }
        if let Some(m) = &e.merchant {
            validate_uscc(&m.uscc).unwrap();
            assert!(m.uscc[2..].starts_with("4306"), "{}", m.uscc);
        }
        assert!(e.region_code.starts_with("4306"), "{}", e.region_code);
    }
    assert!(ids > 10_000);
    for p in &pop.truth.persons {
        parse_id_number(&p.id_number).unwrap();
    }
    let distinct: BTreeSet<&str> = pop
        .truth
        .persons
        .iter()
        .map(|p| p.id_number.as_str())
        .collect();
    assert_eq!(distinct.len(), pop.truth.persons.len(), "ID numbers repeat");
}

#[test]
fn every_event_passes_validation_and_its_departments_checks() {
    let kinds = assert_every_event_valid(small());
    // Every kind of the catalogue appears, but for a couple a small population may lack.
    let all: BTreeSet<&str> = caselink_domain::all_kinds().collect();
    let missing: Vec<&&str> = all.difference(&kinds).collect();
    assert!(missing.len() <= 2, "kinds never generated: {missing:?}");
}

/// Validates every event as its department's ingest would at the end of the history + 1 day; returns the kinds seen.
fn assert_every_event_valid(pop: &Population) -> BTreeSet<&'static str> {
    let now = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(end_instant(&pop.params.end) + DAY).unwrap());
    let limits = Limits::default();
    let rules: Vec<Box<dyn DepartmentRules>> = ALL_DEPARTMENTS.iter().map(|d| rules(*d)).collect();
    let mut kinds = BTreeSet::new();
    for (d, e) in &pop.events {
        let department = ALL_DEPARTMENTS[*d];
        let mut v = validate_event(e, department, now, &limits);
        assert!(v.is_empty(), "{}: {v}", e.source_id);
        v = Violations::new();
        rules[*d].check(e, &mut v);
        assert!(v.is_empty(), "{}: {v}", e.source_id);
        kinds.insert(caselink_domain::kind_name(e.payload.as_ref().unwrap()));
    }
    kinds
}

#[test]
fn events_are_submittable_records_in_time_order() {
    assert_submittable_in_time_order(small());
}

fn assert_submittable_in_time_order(pop: &Population) {
    let prefixes =
        ["MK", "PO", "JU", "CO", "PE", "HL"].map(|p| format!("{p}-{}-", pop.params.seed));
    let first = end_instant(&pop.params.end) - i64::from(pop.params.years) * 366 * DAY;
    let latest = end_instant(&pop.params.end) - 1;
    let mut last_seen: BTreeMap<(usize, String), i64> = BTreeMap::new();
    for (d, e) in &pop.events {
        assert!(e.event_id.is_empty(), "event_id must be left to ingest");
        assert!(e.recorded_at.is_none());
        assert_eq!(e.department, ALL_DEPARTMENTS[*d] as i32);
        assert!(e.source_id.starts_with(&prefixes[*d]), "{}", e.source_id);
        assert!(
            !e.case_ref.is_empty() && !e.summary.is_empty()
                || matches!(e.payload, Some(Payload::TicketCreated(_)))
        );
        let t = at(e);
        assert!(
            t >= first && t <= latest,
            "{} at {t} outside the span",
            e.source_id
        );
        if let Some(s) = &e.subject {
            let key = (*d, s.id_number.clone());
            let before = last_seen.insert(key, t).unwrap_or(i64::MIN);
            assert!(
                before <= t,
                "{} out of time order for its person",
                e.source_id
            );
        }
        // Every reference names an earlier record of the population.
        let mut refs: Vec<&str> = e.related_event_ids.iter().map(String::as_str).collect();
        match e.payload.as_ref().unwrap() {
            Payload::ComplaintAccepted(x) => refs.push(&x.complaint_event_id),
            Payload::ComplaintRejected(x) => refs.push(&x.complaint_event_id),
            Payload::ComplaintMediationClosed(x) => refs.push(&x.complaint_event_id),
            Payload::CompensationPaid(x) => refs.push(&x.complaint_event_id),
            Payload::ReportVerified(x) => refs.push(&x.report_event_id),
            Payload::DisclosureDecided(x) => refs.push(&x.request_event_id),
            Payload::ReconsiderationRejected(x) => refs.push(&x.filed_event_id),
            Payload::ReconsiderationDecided(x) => refs.push(&x.filed_event_id),
            Payload::ReconsiderationWithdrawn(x) => refs.push(&x.filed_event_id),
            Payload::AdminSuitDismissed(x) => refs.push(&x.filed_event_id),
            Payload::AdminSuitJudged(x) => refs.push(&x.filed_event_id),
            Payload::CivilClaimJudged(x) => refs.push(&x.filed_event_id),
            Payload::PetitionClassified(x) => refs.push(&x.received_event_id),
            Payload::PetitionClosed(x) => refs.push(&x.received_event_id),
            Payload::TicketMerged(x) => refs.push(&x.duplicate_of_event_id),
            _ => {}
        }
        for r in refs {
            let target = pop.by_id.get(r).map(|i| &pop.events[*i].1);
            let target = target.unwrap_or_else(|| panic!("{} refers to unknown {r}", e.source_id));
            assert!(at(target) < t, "{} refers to a later record", e.source_id);
        }
    }
}

#[test]
fn same_seed_gives_byte_identical_files_and_another_seed_does_not() {
    let params = GenParams {
        seed: 42,
        people: 400,
        abuser_share: 0.02,
        ..GenParams::default()
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    generate(&params, a.path(), &mut |_| {}).unwrap();
    generate(&params, b.path(), &mut |_| {}).unwrap();
    generate(&GenParams { seed: 43, ..params }, c.path(), &mut |_| {}).unwrap();
    let (fa, fb, fc) = (
        read_dir_bytes(a.path()),
        read_dir_bytes(b.path()),
        read_dir_bytes(c.path()),
    );
    assert_eq!(fa.len(), 7);
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{name} differs between two runs with the same seed");
    }
    for ((name, x), (_, z)) in fa.iter().zip(&fc) {
        if name != "police.jsonl" && name != "court.jsonl" {
            assert!(x != z, "{name} is the same for another seed");
        }
    }
}

#[test]
fn planted_proportions_match_the_parameters_and_the_regional_mix() {
    let pop = typical();
    let persons = pop.truth.persons.len();
    assert_eq!(persons, pop.params.people);
    assert_eq!(pop.summary.persons as usize, persons);
    let abusers = pop
        .truth
        .persons
        .iter()
        .filter(|p| p.label == Label::Abusive)
        .count();
    assert_eq!(abusers as u64, pop.summary.abusers);
    let share = abusers as f64 / persons as f64;
    assert!(
        (share - pop.params.abuser_share).abs() < 0.002,
        "abuser share {share}"
    );

    // Kunming Wuhua 2018: 12315 complaints 58.1%, reports 8.86%, 12345 transfers 11.99%, national platform 17.3%.
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, e) in &pop.events {
        let class = match &e.payload {
            Some(Payload::ReportReceived(_)) => "report",
            Some(Payload::ComplaintReceived(c)) => match Channel::try_from(c.channel).unwrap() {
                Channel::Channel12315Phone | Channel::Channel12315Web => "12315",
                Channel::Channel12345Transfer => "12345",
                Channel::NationalPlatform => "national",
                _ => "other",
            },
            _ => continue,
        };
        *by.entry(class).or_default() += 1;
    }
    let total: usize = by.values().sum();
    let pct = |k: &str| 100.0 * by.get(k).copied().unwrap_or(0) as f64 / total as f64;
    for (class, expected) in [
        ("12315", 58.1),
        ("report", 8.86),
        ("12345", 11.99),
        ("national", 17.3),
        ("other", 3.75),
    ] {
        let got = pct(class);
        assert!(
            (got - expected).abs() <= 5.0,
            "{class}: {got:.1}% (expected {expected}%)"
        );
    }
    // Most 12345 transfers come with their ticket.
    let transfers = by["12345"];
    let tickets = pop
        .events
        .iter()
        .filter(|(_, e)| matches!(&e.payload, Some(Payload::TicketDispatched(t)) if t.to_department == Department::Market as i32))
        .count();
    assert!(
        tickets as f64 >= 0.8 * transfers as f64,
        "{tickets} tickets for {transfers} transfers"
    );

    // Most complaints that are mediated end in agreement, as the Changzhou target asks.
    let (mut ok, mut mediated) = (0, 0);
    for (_, e) in &pop.events {
        if let Some(Payload::ComplaintMediationClosed(m)) = &e.payload {
            mediated += 1;
            ok += usize::from(m.outcome == caselink_proto::v1::MediationOutcome::Success as i32);
        }
    }
    let rate = ok as f64 / mediated as f64;
    assert!((0.5..0.9).contains(&rate), "mediation success {rate}");
}

#[test]
fn abusers_are_a_small_share_of_persons_and_a_large_share_of_records() {
    let pop = typical();
    let abusive: BTreeSet<&str> = pop
        .truth
        .persons
        .iter()
        .filter(|p| p.label == Label::Abusive)
        .map(|p| p.id_number.as_str())
        .collect();
    let (mut theirs, mut all) = (0, 0);
    for (_, e) in &pop.events {
        if let Some(s) = &e.subject {
            all += 1;
            theirs += usize::from(abusive.contains(s.id_number.as_str()));
        }
    }
    let share = theirs as f64 / all as f64;
    assert!(share > 0.30, "abusers' share of records {share:.2}");
    assert!(share < 0.75, "abusers' share of records {share:.2}");
    // Ordinary persons: 0-3 grievances a year.
    for p in pop
        .truth
        .persons
        .iter()
        .filter(|p| p.label == Label::Ordinary && p.impersonated_by.is_none())
    {
        assert!(
            !p.matters.is_empty() && p.matters.len() <= 6,
            "{} matters",
            p.matters.len()
        );
    }
}

#[test]
fn every_group_really_shares_a_contact() {
    for pop in [small(), typical()] {
        assert!(!pop.truth.groups.is_empty());
        assert_eq!(
            pop.truth
                .groups
                .iter()
                .filter(|g| g.kind == GroupKind::Collusion)
                .count() as u64,
            pop.summary.rings
        );
        for g in &pop.truth.groups {
            assert!(
                g.shared_phone.is_some() || g.shared_address.is_some(),
                "{}",
                g.id
            );
            let mut merchants_by_member: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
            for id in &g.members {
                let person = pop
                    .truth
                    .persons
                    .iter()
                    .find(|p| &p.id_number == id)
                    .unwrap();
                assert_eq!(person.ring.as_deref(), Some(g.id.as_str()));
                let shared: Vec<_> = pop
                    .of(id)
                    .filter(|e| matches!(e.payload, Some(Payload::ComplaintReceived(_))))
                    .filter(|e| {
                        let s = e.subject.as_ref().unwrap();
                        g.shared_phone.as_deref() == Some(s.phone.as_str())
                            || g.shared_address.as_deref() == Some(s.address.as_str())
                    })
                    .collect();
                assert!(shared.len() >= 2, "{} of {} shares no contact", id, g.id);
                merchants_by_member.insert(
                    id,
                    shared
                        .iter()
                        .map(|e| e.merchant.as_ref().unwrap().uscc.clone())
                        .collect(),
                );
            }
            let all: BTreeSet<&String> = merchants_by_member.values().flatten().collect();
            match g.kind {
                // Every member took part in every campaign: the same merchants.
                GroupKind::Collusion => {
                    assert!(g.members.len() >= 3);
                    let first = merchants_by_member.values().next().unwrap();
                    assert!(merchants_by_member
                        .values()
                        .all(|m| m.is_superset(first) || first.is_superset(m)));
                }
                GroupKind::Hired => assert!(
                    all.len() >= 5,
                    "{} hired across {} merchants",
                    g.id,
                    all.len()
                ),
            }
        }
    }
}

fn has(p: &caselink_population::PersonTruth, c: &str) -> bool {
    p.criteria.iter().any(|x| x == c)
}

#[test]
fn every_criterion_is_planted_somewhere() {
    let pop = small();
    for c in [
        "C1", "C2", "C3", "C4", "C5", "C6", "C7", "R1", "R2", "R3", "R4", "R5",
    ] {
        assert!(
            pop.truth.persons.iter().any(|p| has(p, c)),
            "nobody planted with {c}"
        );
    }
    for p in &pop.truth.persons {
        match p.label {
            Label::Abusive => assert!(!p.criteria.is_empty() && p.criteria.len() <= 6),
            Label::Ordinary => assert!(p.criteria.is_empty() && p.ring.is_none()),
        }
    }
}

#[test]
fn truth_and_events_agree_on_every_criterion() {
    for pop in [small(), typical()] {
        assert_truth_agrees_with_events(pop);
    }
}

#[test]
fn truth_holds_for_short_and_long_histories() {
    for (seed, years, end) in [(21, 1, "2024-03-31"), (22, 3, "2026-06-30")] {
        let pop = Population::generate(GenParams {
            seed,
            people: 700,
            years,
            end: end.into(),
            abuser_share: 0.05,
            ..GenParams::default()
        });
        assert_truth_agrees_with_events(&pop);
        assert_every_event_valid(&pop);
        assert_submittable_in_time_order(&pop);
    }
}

fn assert_truth_agrees_with_events(pop: &Population) {
    let medians = medians(pop);
    let c4 = c4_flagged(pop);
    let c5 = c5_flagged(pop);
    for p in &pop.truth.persons {
        let id = p.id_number.as_str();
        let who = format!("{id} {:?} {:?}", p.label, p.criteria);
        assert_eq!(has(p, "C1"), c1(pop, id), "C1 {who}");
        assert_eq!(has(p, "C2"), c2(pop, &medians, id), "C2 {who}");
        let volume = c6_count(pop, id);
        if has(p, "C6") {
            assert!(volume >= 20, "C6 {who}: {volume}");
        } else {
            assert!(volume <= 16, "not C6 {who}: {volume}");
        }
        assert_eq!(has(p, "C7"), c7(pop, id), "C7 {who}");
        assert_eq!(has(p, "R1"), r1(pop, id), "R1 {who}");
        let r2 = r2_count(pop, id);
        assert!(
            if has(p, "R2") { r2 >= 4 } else { r2 <= 2 },
            "R2 {who}: {r2}"
        );
        assert_eq!(has(p, "R3"), r3(pop, id), "R3 {who}");
        if !has(p, "R3") {
            assert!(rejections(pop, id) <= 2, "not R3 {who}");
        }
        let r4 = r4_count(pop, id);
        assert!(
            if has(p, "R4") { r4 >= 4 } else { r4 <= 1 },
            "R4 {who}: {r4}"
        );
        let r5 = r5_count(pop, id);
        assert!(
            if has(p, "R5") { r5 >= 3 } else { r5 <= 1 },
            "R5 {who}: {r5}"
        );
        // Groups: a ring is found by the generic collusion screen, nobody else is.
        assert_eq!(has(p, "C4"), c4.contains(id), "C4 {who}");
        // The generic hired screen also sees rings sharing the organiser's phone, and false-name filers with the
        // persons whose ID numbers they borrow: they share one phone across many merchants too.
        if c5.contains(id) {
            assert!(
                has(p, "C4") || has(p, "C5") || has(p, "C3") || p.impersonated_by.is_some(),
                "C5 {who}"
            );
        }
        if has(p, "C5") {
            assert!(c5.contains(id), "C5 {who} not found by the generic screen");
        }
    }
}

#[test]
fn false_name_filings_carry_the_claimants_contacts() {
    for pop in [small(), typical()] {
        let persons: BTreeMap<&str, &caselink_population::PersonTruth> = pop
            .truth
            .persons
            .iter()
            .map(|p| (p.id_number.as_str(), p))
            .collect();
        let mut victims = 0;
        for p in pop.truth.persons.iter().filter(|p| has(p, "C3")) {
            let own_phone = pop.phone_of(&p.id_number).unwrap();
            let mine: Vec<&caselink_population::PersonTruth> = pop
                .truth
                .persons
                .iter()
                .filter(|v| v.impersonated_by.as_deref() == Some(p.id_number.as_str()))
                .collect();
            assert!(!mine.is_empty(), "C3 {} borrowed nobody's ID", p.id_number);
            for v in mine {
                victims += 1;
                assert_eq!(v.label, Label::Ordinary);
                let borrowed = pop
                    .of(&v.id_number)
                    .filter(|e| matches!(e.payload, Some(Payload::ComplaintReceived(_))))
                    .filter(|e| e.subject.as_ref().unwrap().phone == own_phone)
                    .count();
                assert!(
                    borrowed >= 3,
                    "{} filed {borrowed} complaints under {}",
                    p.id_number,
                    v.id_number
                );
            }
        }
        assert!(victims > 0);
        // Anyone else's events carry their own phone, unless it is a group's shared contact.
        let shared: BTreeSet<&str> = pop
            .truth
            .groups
            .iter()
            .filter_map(|g| g.shared_phone.as_deref())
            .collect();
        for (id, indices) in &pop.by_person {
            let p = persons[id.as_str()];
            let own = pop.phone_of(id).unwrap();
            for i in indices {
                let phone = &pop.events[*i].1.subject.as_ref().unwrap().phone;
                if phone != &own {
                    let by_impersonator = p
                        .impersonated_by
                        .as_deref()
                        .is_some_and(|a| pop.phone_of(a).as_deref() == Some(phone.as_str()));
                    assert!(
                        by_impersonator || shared.contains(phone.as_str()),
                        "{id} appears with a stranger's phone"
                    );
                }
            }
        }
    }
}

#[test]
fn ordinary_persons_escalate_at_most_once() {
    let pop = typical();
    let mut escalated = 0;
    for p in pop
        .truth
        .persons
        .iter()
        .filter(|p| p.label == Label::Ordinary)
    {
        let own = pop.phone_of(&p.id_number).unwrap();
        let n = pop
            .of(&p.id_number)
            .filter(|e| e.subject.as_ref().unwrap().phone == own)
            .filter(|e| {
                matches!(
                    e.payload,
                    Some(
                        Payload::DisclosureRequested(_)
                            | Payload::ReconsiderationFiled(_)
                            | Payload::AdminSuitFiled(_)
                            | Payload::PetitionReceived(_)
                            | Payload::DisciplineReportNotified(_)
                    )
                )
            })
            .count();
        assert!(n <= 1, "{} escalated {n} times", p.id_number);
        escalated += n;
    }
    assert!(escalated > 0, "no ordinary person ever escalates");
}

#[test]
fn matters_hold_every_record_once_and_link_platforms() {
    for pop in [small(), typical()] {
        let mut seen = BTreeSet::new();
        let mut multi = [0usize; 2];
        for p in &pop.truth.persons {
            for m in &p.matters {
                assert!(!m.records.is_empty());
                for r in &m.records {
                    assert!(seen.insert(r.clone()), "{r} in two matters");
                }
                if m.is_multi_platform() {
                    multi[usize::from(p.label == Label::Abusive)] += 1;
                }
            }
        }
        let all: BTreeSet<String> = pop
            .events
            .iter()
            .map(|(d, e)| {
                format!(
                    "{}/{}",
                    caselink_domain::department_code(ALL_DEPARTMENTS[*d]),
                    e.source_id
                )
            })
            .collect();
        assert_eq!(seen, all, "matters and events disagree");
        assert!(
            multi[0] > 0 && multi[1] > 0,
            "multi-platform matters: {multi:?}"
        );
    }
}

#[test]
fn merged_tickets_point_at_the_same_persons_12315_complaint() {
    let pop = small();
    let mut merged = 0;
    for (_, e) in &pop.events {
        if let Some(Payload::TicketMerged(t)) = &e.payload {
            let c = pop.event(&t.duplicate_of_event_id);
            assert!(matches!(c.payload, Some(Payload::ComplaintReceived(_))));
            assert_eq!(c.case_ref, t.duplicate_of_case_ref);
            assert_eq!(
                c.subject.as_ref().unwrap().id_number,
                e.subject.as_ref().unwrap().id_number
            );
            merged += 1;
        }
    }
    assert!(merged > 10);
}

#[test]
fn truth_counts_each_persons_events() {
    let pop = small();
    let mut total = 0;
    for p in &pop.truth.persons {
        let n = pop.by_person.get(&p.id_number).map_or(0, Vec::len) as u64;
        assert_eq!(p.events, n, "{}", p.id_number);
        total += n;
    }
    let with_subject = pop
        .events
        .iter()
        .filter(|(_, e)| e.subject.is_some())
        .count() as u64;
    assert_eq!(
        total, with_subject,
        "events about persons outside the truth"
    );
    assert_eq!(pop.summary.events, pop.events.len() as u64);
    assert_eq!(
        pop.summary.by_department.iter().sum::<u64>(),
        pop.summary.events
    );
    assert_eq!(pop.truth.params, pop.params);
}

#[test]
fn refuses_invalid_parameters_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(GenParams, &str); 7] = [
        (
            GenParams {
                people: 0,
                ..GenParams::default()
            },
            "people",
        ),
        (
            GenParams {
                years: 0,
                ..GenParams::default()
            },
            "years",
        ),
        (
            GenParams {
                region: "43".into(),
                ..GenParams::default()
            },
            "region",
        ),
        (
            GenParams {
                region: "9906".into(),
                ..GenParams::default()
            },
            "region",
        ),
        (
            GenParams {
                end: "2026-13-01".into(),
                ..GenParams::default()
            },
            "end",
        ),
        (
            GenParams {
                abuser_share: 0.9,
                ..GenParams::default()
            },
            "abuser_share",
        ),
        (
            GenParams {
                abuser_share: f64::NAN,
                ..GenParams::default()
            },
            "abuser_share",
        ),
    ];
    for (params, field) in cases {
        match generate(&params, dir.path(), &mut |_| {}) {
            Err(GenError::Invalid { field: f, why }) => {
                assert_eq!(f, field, "{why}");
                assert!(!why.is_empty());
            }
            other => panic!("{field}: expected Invalid, got {other:?}"),
        }
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "files written for invalid parameters"
    );
}

#[test]
fn a_county_prefix_keeps_everything_in_that_county_and_the_span() {
    let dir = tempfile::tempdir().unwrap();
    let params = GenParams {
        seed: 3,
        people: 300,
        years: 1,
        region: "530102".into(),
        end: "2019-12-31".into(),
        abuser_share: 0.03,
    };
    let s = generate(&params, dir.path(), &mut |_| {}).unwrap();
    assert!(s.events > 1_000);
    let latest = end_instant("2019-12-31") - 1;
    for (_, file) in caselink_population::DEPARTMENT_FILES {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        for line in text.lines() {
            let e: caselink_proto::v1::CaseEvent = serde_json::from_str(line).unwrap();
            assert_eq!(e.region_code, "530102");
            if let Some(s) = &e.subject {
                assert!(s.id_number.starts_with("530102"));
                assert!(s.address.starts_with("云南省昆明市五华区"), "{}", s.address);
            }
            let t = at(&e);
            assert!(
                t <= latest && t > latest - 366 * DAY,
                "{} outside 2019",
                e.source_id
            );
        }
    }
}

/// `cargo test --release -p caselink-population -- --ignored --nocapture a_million`
#[test]
#[ignore = "a benchmark: run in release mode"]
fn a_million_events_in_well_under_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let params = GenParams {
        people: 92_000,
        ..GenParams::default()
    };
    let started = std::time::Instant::now();
    let s = generate(&params, dir.path(), &mut |_| {}).unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} events, {} persons in {secs:.2} s: {:.0} events/s",
        s.events,
        s.persons,
        s.events as f64 / secs
    );
    assert!(s.events >= 950_000, "{} events", s.events);
    assert!(secs < 30.0);
}

/// `cargo test --release -p caselink-population -- --ignored many_seeds`
#[test]
#[ignore = "slow: a sweep over seeds and shapes"]
fn truth_holds_across_many_seeds() {
    for seed in 100..130u64 {
        let years = 1 + (seed % 4) as u32;
        let pop = Population::generate(GenParams {
            seed,
            people: 500 + 100 * (seed as usize % 7),
            years,
            region: ["4306", "430602", "3204", "6501"][seed as usize % 4].into(),
            abuser_share: [0.01, 0.03, 0.08, 0.2][seed as usize % 4],
            ..GenParams::default()
        });
        assert_truth_agrees_with_events(&pop);
        assert_every_event_valid(&pop);
        assert_submittable_in_time_order(&pop);
    }
}
