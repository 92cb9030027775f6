//! Every rule as a specification: a minimal sequence that fires it, one just under its threshold that does not, and
//! that the flag cites its clause and evidence. Plus arrival-order independence, fair consumers, matters counted once,
//! link reasons and determinism.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use caselink_domain::PersonKey;
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::*;
use caselink_screening::{
    ContactKind, Flag, FlagChange, LinkReason, MemoryStore, RelationKey, RuleSet, Screener,
};
use prost::Message;

const DAY: i64 = 86_400;
const T0: i64 = 1_750_000_000;

fn key(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn pk(n: u8) -> PersonKey {
    PersonKey::from_hex(&key(n)).unwrap()
}

fn uscc(n: u8) -> String {
    format!("91430600MA{n:08}")
}

/// An event of person `who` on day `day`, with the given phone and address keys and merchant.
#[derive(Clone)]
struct E {
    e: CaseEvent,
}

fn ev(id: &str, who: u8, day: i64, payload: Payload) -> E {
    E {
        e: CaseEvent {
            event_id: id.to_owned(),
            department: Department::Market as i32,
            occurred_at: Some(caselink_proto::Timestamp {
                seconds: T0 + day * DAY,
                nanos: 0,
            }),
            case_ref: format!("REF-{id}"),
            subject: Some(Person {
                person_key: key(who),
                phone_key: format!("phone-of-{who}"),
                address_key: format!("address-of-{who}"),
                ..Person::default()
            }),
            payload: Some(payload),
            ..CaseEvent::default()
        },
    }
}

impl E {
    fn merchant(mut self, n: u8, category: GoodsCategory) -> E {
        self.e.merchant = Some(Merchant {
            name: format!("商户{n}"),
            uscc: uscc(n),
            category: category as i32,
        });
        self
    }
    fn phone(mut self, phone: &str) -> E {
        if let Some(s) = self.e.subject.as_mut() {
            s.phone_key = phone.to_owned();
        }
        self
    }
    fn address(mut self, address: &str) -> E {
        if let Some(s) = self.e.subject.as_mut() {
            s.address_key = address.to_owned();
        }
        self
    }
    fn summary(mut self, text: &str) -> E {
        self.e.summary = text.to_owned();
        self
    }
    fn related(mut self, id: &str) -> E {
        self.e.related_event_ids.push(id.to_owned());
        self
    }
    fn case_ref(mut self, r: &str) -> E {
        self.e.case_ref = r.to_owned();
        self
    }
}

fn complaint(id: &str, who: u8, day: i64, merchant: u8) -> E {
    ev(
        id,
        who,
        day,
        Payload::ComplaintReceived(ComplaintReceived {
            channel: Channel::Channel12315Phone as i32,
            amount_fen: 3_000,
            quantity: 1,
            claim_type: ClaimType::Refund as i32,
            claimed_fen: 3_000,
            ..ComplaintReceived::default()
        }),
    )
    .merchant(merchant, GoodsCategory::Food)
}

fn report(id: &str, who: u8, day: i64, merchant: u8) -> E {
    ev(
        id,
        who,
        day,
        Payload::ReportReceived(ReportReceived {
            channel: Channel::Channel12315Web as i32,
            alleged_violation: ViolationType::Labelling as i32,
            reward_requested: true,
        }),
    )
    .merchant(merchant, GoodsCategory::Food)
}

fn run(events: &[E]) -> (MemoryStore, Vec<FlagChange>) {
    let screener = Screener::new(RuleSet::default());
    let mut store = MemoryStore::new();
    let mut changes = Vec::new();
    for (i, e) in events.iter().enumerate() {
        changes.extend(screener.apply(&mut store, &e.e, i as u64 + 1).unwrap());
    }
    (store, changes)
}

fn flag(store: &MemoryStore, who: u8, rule: &str) -> Option<Flag> {
    store
        .get(&pk(who))?
        .flags
        .iter()
        .find(|f| f.rule == rule && f.active)
        .cloned()
}

fn rules_of(store: &MemoryStore, who: u8) -> Vec<String> {
    store
        .get(&pk(who))
        .map(|p| {
            p.flags
                .iter()
                .filter(|f| f.active)
                .map(|f| f.rule.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_flag(store: &MemoryStore, who: u8, rule: &str, clause: &str, evidence: &[&str]) -> Flag {
    let f = flag(store, who, rule)
        .unwrap_or_else(|| panic!("{rule} not raised on {who}: {:?}", rules_of(store, who)));
    assert_eq!(f.clause, clause);
    assert!(
        f.guideline.contains("岳市监〔2024〕16号"),
        "{}",
        f.guideline
    );
    let mut got = f.evidence.clone();
    got.sort();
    let mut want: Vec<String> = evidence.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(got, want, "{rule} evidence");
    assert_eq!(f.evidence_total as usize, evidence.len());
    assert!(
        !f.figures.is_empty() && f.figures.iter().all(|x| x.value >= x.threshold),
        "{:?}",
        f.figures
    );
    f
}

/// Deterministic permutations of a sequence.
fn permutations(events: &[E], n: u64) -> Vec<Vec<E>> {
    (0..n)
        .map(|k| {
            let mut v = events.to_vec();
            let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ k.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            for i in (1..v.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                v.swap(i, (state % (i as u64 + 1)) as usize);
            }
            v
        })
        .collect()
}

/// What a flag says, without the stream positions that depend on arrival order.
fn content(store: &MemoryStore) -> Vec<(String, String, Vec<String>, u64, i64, i64)> {
    let mut out = Vec::new();
    for (k, p) in &store.persons {
        for f in p.flags.iter().filter(|f| f.active) {
            let mut e = f.evidence.clone();
            e.sort();
            out.push((
                hex::encode(k),
                f.rule.clone(),
                e,
                f.evidence_total,
                f.window_from_us,
                f.window_to_us,
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------------

fn paid(id: &str, who: u8, day: i64, merchant: u8) -> E {
    ev(
        id,
        who,
        day,
        Payload::CompensationPaid(CompensationPaid {
            complaint_event_id: "c0".to_owned(),
            amount_fen: 100_000,
            punitive: true,
            basis: ClaimType::Punitive10x as i32,
        }),
    )
    .merchant(merchant, GoodsCategory::Food)
}

#[test]
fn c1_fires_on_a_complaint_after_punitive_compensation() {
    let (store, changes) = run(&[
        complaint("c0", 1, 0, 1),
        paid("p0", 1, 20, 1),
        complaint("c1", 1, 100, 1),
    ]);
    assert_flag(&store, 1, "C1", "二(一)", &["p0", "c1"]);
    assert!(
        matches!(&changes[..], [FlagChange::Raised { .. }]),
        "{changes:?}"
    );
}

#[test]
fn c1_does_not_fire_for_a_complaint_beyond_its_window_or_before_the_payment() {
    let (store, _) = run(&[
        complaint("c0", 1, 0, 1),
        paid("p0", 1, 20, 1),
        complaint("c1", 1, 20 + 366, 1),
    ]);
    assert_eq!(rules_of(&store, 1), Vec::<String>::new());
}

#[test]
fn c1_counts_the_same_category_at_another_merchant() {
    let (store, _) = run(&[paid("p0", 1, 20, 1), complaint("c1", 1, 100, 2)]);
    assert_flag(&store, 1, "C1", "二(一)", &["p0", "c1"]);
}

fn purchase(id: &str, who: u8, quantity: i32, amount_fen: i64) -> E {
    ev(
        id,
        who,
        0,
        Payload::ComplaintReceived(ComplaintReceived {
            quantity,
            amount_fen,
            claim_type: ClaimType::Punitive10x as i32,
            ..ComplaintReceived::default()
        }),
    )
    .merchant(1, GoodsCategory::Food)
}

#[test]
fn c2_fires_above_ten_units_or_twenty_times_the_category_median() {
    let (store, _) = run(&[
        purchase("a", 1, 11, 3_000),
        purchase("b", 2, 1, 3_000 * 20 + 1),
    ]);
    assert_flag(&store, 1, "C2", "二(二)", &["a"]);
    assert_flag(&store, 2, "C2", "二(二)", &["b"]);
}

#[test]
fn c2_does_not_fire_at_ten_units_and_twenty_times_the_median() {
    let (store, _) = run(&[purchase("a", 1, 10, 3_000 * 20)]);
    assert_eq!(rules_of(&store, 1), Vec::<String>::new());
}

/// Person 1 files with their own phone and address; records under person 2's ID number carry them too.
fn false_name(foreign: usize) -> Vec<E> {
    let mut v = Vec::new();
    for i in 0..5 {
        v.push(complaint(&format!("own{i}"), 1, i * 30, 10 + i as u8));
    }
    for i in 0..3 {
        v.push(complaint(&format!("v{i}"), 2, 5 + i * 40, 20 + i as u8));
    }
    for i in 0..foreign {
        v.push(
            complaint(&format!("f{i}"), 2, 200 + i as i64 * 20, 30 + i as u8)
                .phone("phone-of-1")
                .address("address-of-1"),
        );
    }
    v
}

#[test]
fn c3_flags_the_owner_of_the_contact_not_the_person_whose_id_was_borrowed() {
    let (store, _) = run(&false_name(2));
    assert_flag(&store, 1, "C3", "二(三)", &["f0", "f1"]);
    assert_eq!(rules_of(&store, 2), Vec::<String>::new());
    let link = store
        .get(&pk(1))
        .unwrap()
        .links
        .iter()
        .find(|l| l.other == pk(2).0)
        .cloned()
        .unwrap();
    assert_eq!(link.reason, LinkReason::FalseName as i32);
    assert!(link.evidence.contains(&caselink_screening::id_bytes("f0")));
}

#[test]
fn c3_does_not_fire_on_one_filing_under_another_id() {
    let (store, _) = run(&false_name(1));
    assert_eq!(rules_of(&store, 1), Vec::<String>::new());
    assert_eq!(rules_of(&store, 2), Vec::<String>::new());
}

#[test]
fn c3_fires_on_an_appeal_rejected_for_false_identity_with_the_owners_contact() {
    let mut v = false_name(0);
    v.push(
        ev(
            "rf",
            2,
            300,
            Payload::ReconsiderationRejected(ReconsiderationRejected {
                filed_event_id: "rx".to_owned(),
                reason: ReconsiderationRejectionReason::FalseIdentity as i32,
                detail: String::new(),
            }),
        )
        .phone("phone-of-1"),
    );
    let (store, _) = run(&v);
    assert_flag(&store, 1, "C3", "二(三)", &["rf"]);
}

/// Three persons complain about merchant 1, giving one organiser's phone.
fn ring(last_day: i64) -> Vec<E> {
    vec![
        complaint("r1", 1, 0, 1).phone("organiser"),
        complaint("r2", 2, 2, 1).phone("organiser"),
        complaint("r3", 3, last_day, 1).phone("organiser"),
    ]
}

#[test]
fn c4_the_third_ring_complaint_flags_all_three() {
    let (store, changes) = run(&ring(5));
    for who in 1..=3 {
        assert_flag(&store, who, "C4", "二(四)", &["r1", "r2", "r3"]);
        let p = store.get(&pk(who)).unwrap();
        assert!(p
            .links
            .iter()
            .any(|l| l.reason == LinkReason::Collusion as i32));
    }
    // Raised at the third complaint, on all three persons.
    let raised: Vec<_> = changes
        .iter()
        .filter(|c| matches!(c, FlagChange::Raised { .. }))
        .collect();
    assert_eq!(raised.len(), 3);
    let groups = caselink_screening::group_of(&mut store.clone(), &pk(1), 10).unwrap();
    assert_eq!(groups.len(), 3);
}

#[test]
fn c4_does_not_fire_when_the_third_complaint_is_outside_the_window() {
    let (store, _) = run(&ring(7));
    for who in 1..=3 {
        assert_eq!(rules_of(&store, who), Vec::<String>::new());
        // Still linked by the shared phone.
        let p = store.get(&pk(who)).unwrap();
        assert!(p
            .links
            .iter()
            .all(|l| l.reason == LinkReason::SharedPhone as i32));
        assert_eq!(p.links.len(), 2);
    }
}

#[test]
fn c4_near_identical_text_links_like_a_shared_contact() {
    let text = "本人近日在某店购买牛奶，发现过期，要求十倍赔偿。";
    let v = vec![
        complaint("t1", 1, 0, 1).summary(text),
        complaint("t2", 2, 1, 1).summary("本人近日在某店购买牛奶 发现过期 要求十倍赔偿"),
        complaint("t3", 3, 2, 1).summary(text),
    ];
    let (store, _) = run(&v);
    assert_flag(&store, 2, "C4", "二(四)", &["t1", "t2", "t3"]);
}

/// Three persons with their own phones each file some complaints with one agent's phone, over `merchants` merchants.
fn hired(merchants: u8) -> Vec<E> {
    let mut v = Vec::new();
    for who in 1..=3u8 {
        for i in 0..3 {
            v.push(complaint(
                &format!("own{who}-{i}"),
                who,
                i64::from(who) * 3 + i * 50,
                100 + who * 10 + i as u8,
            ));
        }
    }
    for k in 0..merchants {
        let who = 1 + k % 3;
        v.push(complaint(&format!("h{k}"), who, 10 + i64::from(k) * 20, 50 + k).phone("agent"));
    }
    v
}

#[test]
fn c5_flags_a_cluster_sharing_an_agents_phone_across_many_merchants() {
    let (store, _) = run(&hired(6));
    for who in 1..=3 {
        assert_flag(
            &store,
            who,
            "C5",
            "二(五)",
            &["h0", "h1", "h2", "h3", "h4", "h5"],
        );
        assert!(
            rules_of(&store, who) == ["C5"],
            "{:?}",
            rules_of(&store, who)
        );
    }
    let p = store.get(&pk(1)).unwrap();
    assert!(p
        .links
        .iter()
        .any(|l| l.reason == LinkReason::SharedAgent as i32));
}

#[test]
fn c5_does_not_fire_over_too_few_merchants() {
    let (store, _) = run(&hired(5));
    for who in 1..=3 {
        assert_eq!(rules_of(&store, who), Vec::<String>::new());
    }
}

/// A phone two persons use with many merchants: its uses are capped (`max_facts`), and the merchants no kept use names
/// leave with them, so the relation's state stays bounded by its uses while every kept use still names its merchant.
#[test]
fn a_relations_merchants_stay_bounded_by_its_uses() {
    let screener = Screener::new(RuleSet {
        max_facts: 10,
        ..RuleSet::default()
    });
    let mut store = MemoryStore::new();
    let phone = RelationKey::of_contact(ContactKind::Phone as i32, "shared").unwrap();
    for k in 0..120u8 {
        let e = complaint(&format!("u{k}"), 1 + k % 2, i64::from(k), k).phone("shared");
        screener.apply(&mut store, &e.e, u64::from(k) + 1).unwrap();
        let rel = &store.relations[&phone];
        assert!(
            rel.merchants.len() <= 2 * rel.uses.len(),
            "after use {k}: {} merchants for {} uses",
            rel.merchants.len(),
            rel.uses.len()
        );
        for u in &rel.uses {
            // Use d was on day d, with merchant d.
            let day = (u.occurred_us / 1_000_000 - T0) / DAY;
            assert_eq!(
                rel.merchant_of(u),
                uscc(day as u8),
                "after use {k}, day {day}"
            );
        }
    }
    assert_eq!(store.relations[&phone].uses.len(), 10);
}

fn volume(n: usize) -> Vec<E> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                complaint(&format!("c{i}"), 1, i as i64 * 15, i as u8)
            } else {
                report(&format!("c{i}"), 1, i as i64 * 15, i as u8)
            }
        })
        .collect()
}

#[test]
fn c6_fires_at_twenty_matters_in_365_days() {
    let v = volume(20);
    let ids: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (store, _) = run(&v);
    assert_flag(&store, 1, "C6", "二(六)", &ids);
}

#[test]
fn c6_does_not_fire_at_nineteen_or_when_spread_beyond_the_window() {
    let (store, _) = run(&volume(19));
    assert_eq!(rules_of(&store, 1), Vec::<String>::new());
    let spread: Vec<E> = (0..20)
        .map(|i| complaint(&format!("c{i}"), 1, i * 20, 1))
        .collect();
    let (store, _) = run(&spread);
    assert_eq!(
        rules_of(&store, 1),
        Vec::<String>::new(),
        "20 over 381 days"
    );
}

#[test]
fn c6_counts_one_grievance_on_12315_12345_and_a_merged_ticket_once() {
    let mut v = volume(18);
    // A 12345 ticket transferred into a complaint: one matter.
    let ticket = ev(
        "t-a",
        1,
        290,
        Payload::TicketCreated(TicketCreated {
            channel: TicketChannel::Phone as i32,
            category: "消费维权".to_owned(),
            text: String::new(),
        }),
    )
    .case_ref("12345-A");
    let transfer = complaint("c-a", 1, 291, 99).related("t-a");
    // The same grievance phoned in again and merged into the complaint by its file number: still one matter.
    let dup = ev(
        "t-b",
        1,
        292,
        Payload::TicketCreated(TicketCreated::default()),
    )
    .case_ref("12345-B");
    let merged = ev(
        "m-b",
        1,
        292,
        Payload::TicketMerged(TicketMerged {
            duplicate_of_case_ref: "REF-c-a".to_owned(),
            duplicate_of_event_id: String::new(),
        }),
    )
    .case_ref("12345-B");
    v.extend([ticket, transfer, dup, merged]);
    for order in permutations(&v, 5) {
        let (store, _) = run(&order);
        assert_eq!(
            rules_of(&store, 1),
            Vec::<String>::new(),
            "18 + one matter on four records"
        );
        let f = store.get(&pk(1)).unwrap().figures.clone().unwrap();
        assert_eq!(f.matters, 19);
        assert_eq!((f.complaints, f.reports, f.tickets), (10, 9, 2));
    }
    // One more distinct grievance crosses the threshold.
    v.push(complaint("c-x", 1, 295, 98));
    let (store, _) = run(&v);
    assert!(flag(&store, 1, "C6").is_some());
}

fn verified(
    id: &str,
    who: u8,
    day: i64,
    outcome: VerificationOutcome,
    fabricated: bool,
    v: ViolationType,
) -> E {
    ev(
        id,
        who,
        day,
        Payload::ReportVerified(ReportVerified {
            report_event_id: format!("r-{id}"),
            outcome: outcome as i32,
            case_filed: false,
            found_fabricated: fabricated,
            violation: v as i32,
        }),
    )
}

#[test]
fn c7_fires_on_a_report_found_fabricated_or_an_unfounded_ticket() {
    let (store, _) = run(&[
        verified(
            "v1",
            1,
            0,
            VerificationOutcome::Unsubstantiated,
            true,
            ViolationType::Expired,
        ),
        ev(
            "u1",
            2,
            0,
            Payload::TicketMarkedUnfounded(TicketMarkedUnfounded {
                reason: "不属实".to_owned(),
            }),
        ),
    ]);
    assert_flag(&store, 1, "C7", "二(七)", &["v1"]);
    assert_flag(&store, 2, "C7", "二(七)", &["u1"]);
}

#[test]
fn c7_does_not_fire_on_a_merely_unsubstantiated_report() {
    let (store, _) = run(&[verified(
        "v1",
        1,
        0,
        VerificationOutcome::Unsubstantiated,
        false,
        ViolationType::Expired,
    )]);
    assert_eq!(rules_of(&store, 1), Vec::<String>::new());
}

fn registered(id: &str, who: u8, offence: Offence) -> E {
    let mut e = ev(
        id,
        who,
        0,
        Payload::CaseRegistered(CaseRegistered {
            offence: offence as i32,
            referral_id: String::new(),
        }),
    );
    e.e.department = Department::Police as i32;
    e
}

#[test]
fn r1_fires_on_a_police_case_for_extortion_and_c7_also_on_planting() {
    let (store, _) = run(&[
        registered("x1", 1, Offence::Extortion),
        registered("x2", 2, Offence::Planting),
    ]);
    assert_flag(&store, 1, "R1", "三(一)", &["x1"]);
    assert_eq!(rules_of(&store, 1), ["R1"]);
    assert_flag(&store, 2, "R1", "三(一)", &["x2"]);
    assert_flag(&store, 2, "C7", "二(七)", &["x2"]);
}

#[test]
fn r1_does_not_fire_on_a_fraud_case_or_a_mere_extortion_report_by_a_merchant() {
    let (store, _) = run(&[
        registered("x1", 1, Offence::Fraud),
        ev(
            "x2",
            1,
            0,
            Payload::ExtortionReported(ExtortionReported {
                demanded_fen: 1,
                detail: String::new(),
            }),
        ),
    ]);
    assert_eq!(rules_of(&store, 1), Vec::<String>::new());
}

#[test]
fn r2_fires_on_three_untrue_reports_of_one_violation_type() {
    let u = VerificationOutcome::Unsubstantiated;
    let (store, _) = run(&[
        verified("a", 1, 0, u, false, ViolationType::Labelling),
        verified("b", 1, 100, u, false, ViolationType::Labelling),
        verified("c", 1, 400, u, false, ViolationType::Labelling),
    ]);
    assert_flag(&store, 1, "R2", "三(二)", &["a", "b", "c"]);
}

#[test]
fn r2_does_not_fire_on_two_of_one_type_and_one_of_another() {
    let u = VerificationOutcome::Unsubstantiated;
    let (store, _) = run(&[
        verified("a", 1, 0, u, false, ViolationType::Labelling),
        verified("b", 1, 100, u, false, ViolationType::Labelling),
        verified("c", 1, 200, u, false, ViolationType::Expired),
        verified(
            "d",
            1,
            300,
            VerificationOutcome::Substantiated,
            false,
            ViolationType::Labelling,
        ),
    ]);
    assert_eq!(rules_of(&store, 1), Vec::<String>::new());
}

fn recon(id: &str, who: u8, day: i64, matter: &str) -> E {
    let mut e = ev(
        id,
        who,
        day,
        Payload::ReconsiderationFiled(ReconsiderationFiled {
            respondent_agency: "市场监管局".to_owned(),
            underlying_matter: String::new(),
            matter_type: MatterType::Report as i32,
            matter_ref: matter.to_owned(),
        }),
    );
    e.e.department = Department::Justice as i32;
    e
}

fn recon_rejected(id: &str, who: u8, day: i64, filed: &str) -> E {
    ev(
        id,
        who,
        day,
        Payload::ReconsiderationRejected(ReconsiderationRejected {
            filed_event_id: filed.to_owned(),
            reason: ReconsiderationRejectionReason::NoLegalInterest as i32,
            detail: String::new(),
        }),
    )
}

fn suit(id: &str, who: u8, day: i64, matter: &str) -> E {
    ev(
        id,
        who,
        day,
        Payload::AdminSuitFiled(AdminSuitFiled {
            defendant_agency: "市场监管局".to_owned(),
            matter_type: MatterType::Report as i32,
            matter_ref: matter.to_owned(),
        }),
    )
}

fn dismissed(id: &str, who: u8, day: i64, filed: &str) -> E {
    ev(
        id,
        who,
        day,
        Payload::AdminSuitDismissed(AdminSuitDismissed {
            filed_event_id: filed.to_owned(),
            reason: SuitDismissalReason::NoStanding as i32,
            detail: String::new(),
        }),
    )
}

#[test]
fn r3_fires_on_a_new_appeal_after_two_rejections() {
    let v = [
        recon("rf1", 1, 0, "M1"),
        recon_rejected("rj1", 1, 5, "rf1"),
        suit("sf1", 1, 20, "M1"),
        dismissed("sd1", 1, 60, "sf1"),
        recon("rf2", 1, 100, "M2"),
    ];
    let (store, _) = run(&v);
    assert_flag(
        &store,
        1,
        "R3",
        "三(三)",
        &["rf1", "rj1", "sf1", "sd1", "rf2"],
    );
    // The rejection may arrive before its filing: same flag.
    for order in permutations(&v, 6) {
        let (s, _) = run(&order);
        assert_eq!(content(&s), content(&store));
    }
}

#[test]
fn r3_does_not_fire_on_an_escalation_chain_that_stops_after_two_rejections() {
    let (store, _) = run(&[
        recon("rf1", 1, 0, "M1"),
        recon_rejected("rj1", 1, 5, "rf1"),
        suit("sf1", 1, 20, "M1"),
        dismissed("sd1", 1, 60, "sf1"),
    ]);
    assert_eq!(rules_of(&store, 1), Vec::<String>::new());
}

fn not_in_scope(id: &str, who: u8, day: i64, matter: &str) -> E {
    ev(
        id,
        who,
        day,
        Payload::DisclosureDecided(DisclosureDecided {
            request_event_id: format!("q-{id}"),
            outcome: DisclosureOutcome::NotInScope as i32,
            matter_ref: matter.to_owned(),
        }),
    )
}

#[test]
fn r4_fires_on_three_requests_on_one_matter_not_in_scope() {
    let (store, _) = run(&[
        not_in_scope("d1", 1, 0, "M"),
        not_in_scope("d2", 1, 30, "M"),
        not_in_scope("d3", 1, 60, "M"),
    ]);
    assert_flag(&store, 1, "R4", "三(四)", &["d1", "d2", "d3"]);
}

#[test]
fn r4_does_not_fire_on_three_requests_over_two_matters() {
    let (store, _) = run(&[
        not_in_scope("d1", 1, 0, "M"),
        not_in_scope("d2", 1, 30, "M"),
        not_in_scope("d3", 1, 60, "N"),
    ]);
    assert_eq!(rules_of(&store, 1), Vec::<String>::new());
}

fn discipline(id: &str, who: u8, day: i64, untrue: bool) -> E {
    ev(
        id,
        who,
        day,
        Payload::DisciplineReportNotified(DisciplineReportNotified {
            target_agency: "市场监管局".to_owned(),
            found_untrue: untrue,
            matter_ref: "M".to_owned(),
        }),
    )
}

#[test]
fn r5_fires_on_two_discipline_reports_found_untrue() {
    let (store, _) = run(&[discipline("k1", 1, 0, true), discipline("k2", 1, 90, true)]);
    assert_flag(&store, 1, "R5", "三(五)", &["k1", "k2"]);
}

#[test]
fn r5_does_not_fire_on_one_untrue_and_one_partly_true() {
    let (store, _) = run(&[discipline("k1", 1, 0, true), discipline("k2", 1, 90, false)]);
    assert_eq!(rules_of(&store, 1), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------------------------------

#[test]
fn flags_grow_without_alert_storms() {
    let u = VerificationOutcome::Unsubstantiated;
    let screener = Screener::new(RuleSet::default());
    let mut store = MemoryStore::new();
    let mut all = Vec::new();
    for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
        let e = verified(id, 1, i as i64 * 10, u, false, ViolationType::Labelling);
        all.push(screener.apply(&mut store, &e.e, i as u64 + 1).unwrap());
    }
    // Same event again (a replay the fold would skip anyway): nothing new.
    let again = verified("d", 1, 30, u, false, ViolationType::Labelling);
    all.push(screener.apply(&mut store, &again.e, 9).unwrap());
    assert!(all[0].is_empty() && all[1].is_empty());
    assert!(matches!(&all[2][..], [FlagChange::Raised { .. }]));
    assert!(matches!(&all[3][..], [FlagChange::Grown { .. }]));
    assert!(all[4].is_empty(), "{:?}", all[4]);
    let f = flag(&store, 1, "R2").unwrap();
    assert_eq!(
        (f.raised_seq, f.updated_seq, f.revision, f.evidence_total),
        (3, 4, 2, 4)
    );
}

/// A person with a bit of everything.
fn busy_person() -> Vec<E> {
    let mut v = volume(22);
    v.extend(false_name(3));
    v.extend([
        complaint("cc0", 1, 0, 1),
        paid("pp0", 1, 20, 1),
        complaint("cc1", 1, 100, 1),
        recon("rf1", 1, 0, "M1"),
        recon_rejected("rj1", 1, 5, "rf1"),
        suit("sf1", 1, 20, "M1"),
        dismissed("sd1", 1, 60, "sf1"),
        recon("rf2", 1, 100, "M2"),
        not_in_scope("d1", 1, 0, "M"),
        not_in_scope("d2", 1, 30, "M"),
        not_in_scope("d3", 1, 60, "M"),
    ]);
    v.extend(ring(3).into_iter().map(|e| e.address("ring-address")));
    v
}

#[test]
fn arrival_order_does_not_change_the_flags() {
    let v = busy_person();
    let (reference, _) = run(&v);
    assert!(
        rules_of(&reference, 1).len() >= 5,
        "{:?}",
        rules_of(&reference, 1)
    );
    for order in permutations(&v, 12) {
        let (store, _) = run(&order);
        assert_eq!(content(&store), content(&reference));
    }
}

#[test]
fn same_input_order_gives_byte_identical_state() {
    let v = busy_person();
    let (a, ca) = run(&v);
    let (b, cb) = run(&v);
    assert_eq!(a.encoded(), b.encoded());
    assert_eq!(ca, cb);
    // And the encoded state decodes back to itself.
    let p = a.get(&pk(1)).unwrap();
    assert_eq!(
        &caselink_screening::PersonScreening::decode(p.encode_to_vec().as_slice()).unwrap(),
        p
    );
}

#[test]
fn fair_consumer_with_a_few_genuine_escalations_is_not_flagged() {
    let mut v = vec![
        complaint("c1", 1, 0, 1),
        complaint("c2", 1, 200, 2),
        report("r1", 1, 300, 3),
        verified(
            "v1",
            1,
            310,
            VerificationOutcome::Unsubstantiated,
            false,
            ViolationType::Labelling,
        ),
        recon("rf1", 1, 320, "M1"),
        recon_rejected("rj1", 1, 330, "rf1"),
        not_in_scope("d1", 1, 340, "M1"),
        discipline("k1", 1, 400, false),
        ev(
            "p1",
            1,
            420,
            Payload::PetitionReceived(PetitionReceived {
                matter: "反映处理不当".to_owned(),
                ..PetitionReceived::default()
            }),
        ),
    ];
    // A refund, not punitive, and a later complaint at the same merchant.
    v.push(
        ev(
            "pay",
            1,
            30,
            Payload::CompensationPaid(CompensationPaid {
                complaint_event_id: "c1".to_owned(),
                amount_fen: 3_000,
                punitive: false,
                basis: ClaimType::Refund as i32,
            }),
        )
        .merchant(1, GoodsCategory::Food),
    );
    v.push(complaint("c3", 1, 90, 1));
    let (store, changes) = run(&v);
    assert!(changes.is_empty(), "{changes:?}");
    let f = store.get(&pk(1)).unwrap().figures.clone().unwrap();
    assert_eq!(
        (
            f.matters,
            f.reconsiderations_or_suits(),
            f.disclosure_requests,
            f.discipline_reports,
            f.petitions
        ),
        (4, 1, 0, 1, 1)
    );
    assert_eq!(f.by_department[Department::Market as usize], 10);
    assert_eq!(f.by_department[Department::Justice as usize], 1);
}

#[test]
fn disabled_rule_never_raises() {
    let set = RuleSet::from_toml_str("[rules.R5]\nenabled = false\n").unwrap();
    let screener = Screener::new(set);
    let mut store = MemoryStore::new();
    for (i, e) in [discipline("k1", 1, 0, true), discipline("k2", 1, 90, true)]
        .iter()
        .enumerate()
    {
        assert!(screener
            .apply(&mut store, &e.e, i as u64)
            .unwrap()
            .is_empty());
    }
}
