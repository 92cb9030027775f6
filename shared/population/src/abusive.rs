//! Abusive claimants (职业索赔人): each planted with the behaviours of their criteria, with margins over the default
//! thresholds of domain.md section 5, and kept clear of every criterion they are not labelled with.
//!
//! | criterion | planted as | kept clear as |
//! | --- | --- | --- |
//! | C1 二(一) | punitive compensation paid, then 2-4 complaints on the same merchant or category 20-180 days later | no punitive payment ever |
//! | C2 二(二) | 2-4 purchases of 20-300 units of a food item, or 30x+ the category's usual amount | at most 6 units, at most 5x the usual amount |
//! | C3 二(三) | 3-6 complaints under each of 1-3 other persons' ID numbers with the claimant's phone and address; sometimes a reconsideration rejected for false identity | own ID number only |
//! | C4 二(四) | see rings.rs | no group |
//! | C5 二(五) | see rings.rs | no group |
//! | C6 二(六) | 25-200 complaints and reports a year | at most 15 in any 365 days |
//! | C7 二(七) | 2-3 reports found fabricated, sometimes a 12345 ticket found untrue; or a police case for planting, swapping, forged dates or fabricated facts | nothing found fabricated or untrue |
//! | R1 三(一) | a police case (registered, then a security penalty or a conviction) | no police record |
//! | R2 三(二) | 4-6 reports of one violation type found unsubstantiated | at most 2 per type |
//! | R3 三(三) | reconsideration and suit on a report rejected and dismissed, a similar report appealed again and rejected, then a suit on it | at most 2 rejections or dismissals |
//! | R4 三(四) | 4-5 disclosure requests on one matter, all not in scope | at most 1 per matter |
//! | R5 三(五) | 3-4 reports to discipline inspection found untrue | at most 1 |
//!
//! On top comes background activity (complaints and reports through the region's channel mix, often also phoned in to
//! 12345) and, for half of them, one escalation chain on one matter: disclosure → reconsideration → administrative
//! suit → petition → discipline report, rejected and dismissed along the way (no legal interest, no standing).

use caselink_proto::v1::{
    Channel, ClaimType, ComplaintRejectionReason, DisclosureOutcome, GoodsCategory,
    JudgmentOutcome, MatterType, MediationOutcome, Offence, PetitionClass,
    ReconsiderationRejectionReason, Satisfaction, SecurityPenaltyKind, SuitDismissalReason,
    ViolationType,
};
use rand::Rng;

use crate::calendar::{day_of, office_after_days, waking};
use crate::criteria::thresholds::{C6_OTHERS_MAX, C6_PLANTED_MIN, C6_WINDOW_DAYS, R2_OTHERS_MAX};
use crate::criteria::Criterion;
use crate::merchants::CATEGORIES;
use crate::proceedings::{
    admin_suit, bought, bulk_purchase, civil_claim, close_ticket, complaint, discipline,
    disclosure, draw_complaint_intake, draw_intake, duplicate_ticket, normal_purchase, petition,
    police_case, punitive_claim, reconsideration, report, report_channel, ticket_to_market,
    unfounded_ticket, Appeal, CivilClaim, Complaint, Decision, Filed, Intake, Payment,
    PoliceEnding, Report, Suit, Underlying, Verdict,
};
use crate::text;
use crate::unit::{Filer, MatterIdx, PersonIdx, Unit};

/// Categories professional claimants go after (food and what falls under the Food Safety Law above all).
const TARGETS: [GoodsCategory; 9] = [
    GoodsCategory::Food,
    GoodsCategory::Food,
    GoodsCategory::Food,
    GoodsCategory::HealthFood,
    GoodsCategory::Cosmetics,
    GoodsCategory::AlcoholTobacco,
    GoodsCategory::Catering,
    GoodsCategory::Drugs,
    GoodsCategory::Electronics,
];

/// A merchant a claimant targets.
pub(crate) fn target_merchant(u: &mut Unit<'_>) -> usize {
    let c = TARGETS[u.rng.random_range(0..TARGETS.len())];
    u.world.merchants.of_categories(&mut u.rng, &[c])
}

/// A merchant selling food (ten-times claims).
fn food_merchant(u: &mut Unit<'_>) -> usize {
    u.world.merchants.of_categories(
        &mut u.rng,
        &[
            GoodsCategory::Food,
            GoodsCategory::HealthFood,
            GoodsCategory::AlcoholTobacco,
        ],
    )
}

/// Matters a background escalation chain could be about.
type Candidates = Vec<(MatterIdx, Underlying)>;

/// Generates an abusive claimant's own history (their group's campaigns, if any, are already generated): the
/// behaviours of their criteria, then background volume, then perhaps one escalation chain.
pub(crate) fn abusive_life(u: &mut Unit<'_>, p: PersonIdx, victims: &[PersonIdx]) {
    let criteria = u.persons[p].criteria;
    let mut cands: Candidates = Vec::new();
    if criteria.has(Criterion::R2) {
        r2_untrue_reports(u, p);
    }
    if criteria.has(Criterion::C1) {
        c1_repeat_after_compensation(u, p, &mut cands);
    }
    if criteria.has(Criterion::C2) {
        c2_bulk_purchases(u, p);
    }
    if criteria.has(Criterion::C3) {
        for v in victims {
            c3_false_name(u, p, *v);
        }
    }
    if criteria.has(Criterion::C7) {
        c7_fabricated(u, p);
    }
    if criteria.has(Criterion::R1) {
        r1_police_case(u, p);
    }
    if criteria.has(Criterion::R3) {
        r3_repeated_appeals(u, p);
    }
    if criteria.has(Criterion::R4) {
        r4_disclosures(u, p, &mut cands);
    }
    if criteria.has(Criterion::R5) {
        r5_discipline(u, p, &mut cands);
    }
    background(u, p, &mut cands);
    if u.rng.random_bool(0.5) {
        escalation_chain(u, p, &cands);
    }
}

/// The most `days` falling in any `window` consecutive days.
pub(crate) fn max_in_window(days: &[i64], window: i64) -> usize {
    let mut d = days.to_vec();
    d.sort_unstable();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..d.len() {
        while d[hi] - d[lo] >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// Background complaints and reports. A volume claimant (C6) files 25-200 a year; anyone else is kept at or below 15
/// in any 365 days. If the planted behaviours alone already exceed that, the claimant does meet C6 and gets its volume.
fn background(u: &mut Unit<'_>, p: PersonIdx, cands: &mut Candidates) {
    let span = u.world.span;
    let years = (span.days() / 365).max(1);
    let slice = span.days() / years;
    if !u.persons[p].criteria.has(Criterion::C6)
        && max_in_window(&u.persons[p].intake_days, C6_WINDOW_DAYS) > C6_OTHERS_MAX
    {
        u.persons[p].criteria.add(Criterion::C6);
    }
    if u.persons[p].criteria.has(Criterion::C6) {
        for y in 0..years {
            // 25-200 a year, the lower end likelier.
            let x: f64 = u.rng.random();
            let n = C6_PLANTED_MIN + (175.0 * x * x) as u32;
            let first = span.first + y * slice;
            for _ in 0..n.max(C6_PLANTED_MIN) {
                let day = span.day_between(&mut u.rng, first, first + slice - 1);
                claimant_grievance(u, p, day, cands);
            }
        }
    } else {
        for y in 0..years {
            let n = u.rng.random_range(2..=7);
            let first = span.first + y * slice;
            for _ in 0..n {
                let day = span.day_between(&mut u.rng, first, first + slice - 1);
                let near = u.persons[p]
                    .intake_days
                    .iter()
                    .filter(|d| (**d - day).abs() < C6_WINDOW_DAYS)
                    .count();
                if near < C6_OTHERS_MAX - 1 {
                    claimant_grievance(u, p, day, cands);
                }
            }
        }
    }
}

/// How a claimant's complaint usually ends: often rejected or terminated as not for living consumption, rarely a
/// refund, never a punitive payment.
pub(crate) fn claimant_decision(u: &mut Unit<'_>) -> Decision {
    if u.rng.random_bool(0.25) {
        let reason = match u.rng.random_range(0..100) {
            0..45 => ComplaintRejectionReason::NotForLivingConsumption,
            45..75 => ComplaintRejectionReason::NoEvidence,
            _ => ComplaintRejectionReason::Duplicate,
        };
        return Decision::Reject(reason);
    }
    match u.rng.random_range(0..100) {
        0..30 => Decision::Mediate {
            outcome: MediationOutcome::Success,
            not_for_living: false,
            payment: if u.rng.random_bool(0.6) {
                Payment::Refund
            } else {
                Payment::None
            },
        },
        30..75 => Decision::Mediate {
            outcome: MediationOutcome::Failed,
            not_for_living: false,
            payment: Payment::None,
        },
        _ => Decision::Mediate {
            outcome: MediationOutcome::Terminated,
            not_for_living: u.rng.random_bool(0.8),
            payment: Payment::None,
        },
    }
}

/// A violation type for an unsubstantiated report that keeps a person off R2 unless they are labelled with it.
fn report_verdict(u: &mut Unit<'_>, p: PersonIdx, violation: ViolationType) -> Verdict {
    let r2 = u.persons[p].criteria.has(Criterion::R2);
    let count = u.persons[p].unsubstantiated[(violation as usize).min(99)];
    if (r2 || count < R2_OTHERS_MAX) && u.rng.random_bool(0.5) {
        Verdict::Unsubstantiated { fabricated: false }
    } else {
        Verdict::Substantiated {
            penalty: u.rng.random_bool(0.4),
        }
    }
}

/// One background grievance of a claimant on `day`.
fn claimant_grievance(u: &mut Unit<'_>, p: PersonIdx, day: i64, cands: &mut Candidates) {
    let world = u.world;
    let matter = u.matter(p);
    let filer = u.own(p);
    let t0 = waking(&mut u.rng, day);
    let merchant = target_merchant(u);
    let m = &world.merchants.all[merchant];
    match draw_intake(&mut u.rng) {
        Intake::Report(channel) => {
            let cat = &CATEGORIES[m.category];
            let violation = cat.violations[u.rng.random_range(0..cat.violations.len())];
            let verdict = report_verdict(u, p, violation);
            let reward = u.rng.random_bool(0.85);
            let filed = report(
                u,
                matter,
                &filer,
                t0,
                Report {
                    channel,
                    merchant,
                    violation,
                    reward,
                },
                verdict,
            );
            cands.push((matter, Underlying::of(&filed, MatterType::Report)));
        }
        intake => {
            let purchase = normal_purchase(&mut u.rng, m, merchant, day);
            let claim = if u.rng.random_bool(0.75) {
                punitive_claim(m)
            } else {
                ClaimType::Refund
            };
            let summary =
                text::claimant_complaint(u.persons[p].style, &bought(m, &purchase), claim);
            let decision = claimant_decision(u);
            let c = Complaint {
                channel: match intake {
                    Intake::Complaint(ch) => ch,
                    _ => Channel::Channel12345Transfer,
                },
                purchase,
                claim,
                summary,
            };
            let filed = if intake == Intake::Transfer {
                let ticket = ticket_to_market(u, matter, &filer, t0, merchant, Some(&c.purchase));
                let at = crate::calendar::office_after_working_days(&mut u.rng, ticket.last, 1, 2);
                let filed = complaint(
                    u,
                    matter,
                    &filer,
                    at,
                    c,
                    decision,
                    vec![ticket.created.id.clone()],
                );
                close_ticket(u, matter, &filer, &ticket, filed.last, filed.satisfied);
                filed
            } else {
                let filed = complaint(u, matter, &filer, t0, c, decision, vec![]);
                // Claimants press on every platform: the same grievance phoned in to 12345 as well.
                if u.rng.random_bool(0.2) {
                    let t = office_after_days(&mut u.rng, t0, 1, 7);
                    duplicate_ticket(u, matter, &filer, t, &filed);
                }
                filed
            };
            if !filed.satisfied && u.rng.random_bool(0.03) {
                let und = Underlying::of(&filed, MatterType::Complaint);
                let t = office_after_days(&mut u.rng, filed.last, 3, 30);
                petition(
                    u,
                    matter,
                    &filer,
                    t,
                    &und,
                    PetitionClass::Repeat,
                    Satisfaction::Unsatisfied,
                );
            }
            cands.push((matter, Underlying::of(&filed, MatterType::Complaint)));
        }
    }
}

/// A claimant's complaint on `day` with a given purchase and decision, through the region's complaint channels (a
/// 12345 transfer comes with its ticket). `summary` replaces the claimant's own boilerplate (a ring's shared text).
pub(crate) fn claimant_complaint(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    day: i64,
    purchase: crate::proceedings::Purchase,
    decision: Decision,
    summary: Option<String>,
) -> Filed {
    let world = u.world;
    let merchant = purchase.merchant;
    let m = &world.merchants.all[merchant];
    let claim = punitive_claim(m);
    let style = u.persons[filer.actor].style;
    let summary =
        summary.unwrap_or_else(|| text::claimant_complaint(style, &bought(m, &purchase), claim));
    let t0 = waking(&mut u.rng, day);
    match draw_complaint_intake(&mut u.rng) {
        Intake::Complaint(channel) => complaint(
            u,
            matter,
            filer,
            t0,
            Complaint {
                channel,
                purchase,
                claim,
                summary,
            },
            decision,
            vec![],
        ),
        _ => {
            let ticket = ticket_to_market(u, matter, filer, t0, merchant, Some(&purchase));
            let at = crate::calendar::office_after_working_days(&mut u.rng, ticket.last, 1, 2);
            let filed = complaint(
                u,
                matter,
                filer,
                at,
                Complaint {
                    channel: Channel::Channel12345Transfer,
                    purchase,
                    claim,
                    summary,
                },
                decision,
                vec![ticket.created.id.clone()],
            );
            close_ticket(u, matter, filer, &ticket, filed.last, filed.satisfied);
            filed
        }
    }
}

/// What happens to complaints the bureau sees through: rejected or terminated as not for living consumption.
pub(crate) fn not_for_living(u: &mut Unit<'_>) -> Decision {
    match u.rng.random_range(0..100) {
        0..50 => Decision::Reject(ComplaintRejectionReason::NotForLivingConsumption),
        50..80 => Decision::Mediate {
            outcome: MediationOutcome::Terminated,
            not_for_living: true,
            payment: Payment::None,
        },
        _ => Decision::Mediate {
            outcome: MediationOutcome::Failed,
            not_for_living: false,
            payment: Payment::None,
        },
    }
}

/// C1 二(一): punitive compensation paid, then more complaints on the same merchant or the same category within a year.
fn c1_repeat_after_compensation(u: &mut Unit<'_>, p: PersonIdx, cands: &mut Candidates) {
    let span = u.world.span;
    let episodes = u.rng.random_range(1..=2);
    for _ in 0..episodes {
        let world = u.world;
        let day = span.start_for(&mut u.rng, 240);
        let merchant = food_merchant(u);
        let matter = u.matter(p);
        let filer = u.own(p);
        let purchase = normal_purchase(&mut u.rng, &world.merchants.all[merchant], merchant, day);
        let paid = claimant_complaint(
            u,
            matter,
            &filer,
            day,
            purchase,
            Decision::Mediate {
                outcome: MediationOutcome::Success,
                not_for_living: false,
                payment: Payment::Punitive,
            },
            None,
        );
        let follow_ups = u.rng.random_range(2..=4);
        for _ in 0..follow_ups {
            let again = day_of(paid.last) + u.rng.random_range(20..=180);
            let target = if u.rng.random_bool(0.7) {
                merchant
            } else {
                world.merchants.same_category(&mut u.rng, merchant)
            };
            let matter = u.matter(p);
            let purchase = normal_purchase(&mut u.rng, &world.merchants.all[target], target, again);
            let decision = not_for_living(u);
            let filed = claimant_complaint(u, matter, &filer, again, purchase, decision, None);
            if u.rng.random_bool(0.25) {
                let m = &world.merchants.all[target];
                let claim = punitive_claim(m);
                let claimed = crate::proceedings::claimed_fen(claim, 20_000);
                let won = u.rng.random_bool(0.4);
                let t = office_after_days(&mut u.rng, filed.last, 10, 60);
                civil_claim(
                    u,
                    matter,
                    &filer,
                    t,
                    CivilClaim {
                        merchant: target,
                        claim,
                        claimed,
                        won,
                    },
                );
            }
            cands.push((matter, Underlying::of(&filed, MatterType::Complaint)));
        }
    }
}

/// C2 二(二): purchases far beyond living needs.
fn c2_bulk_purchases(u: &mut Unit<'_>, p: PersonIdx) {
    let world = u.world;
    let span = u.world.span;
    let n = u.rng.random_range(2..=4);
    for _ in 0..n {
        let day = span.start_for(&mut u.rng, 60);
        let merchant = if u.rng.random_bool(0.7) {
            food_merchant(u)
        } else {
            target_merchant(u)
        };
        let matter = u.matter(p);
        let filer = u.own(p);
        let purchase = bulk_purchase(&mut u.rng, &world.merchants.all[merchant], merchant, day);
        let decision = not_for_living(u);
        claimant_complaint(u, matter, &filer, day, purchase, decision, None);
    }
}

/// C3 二(三): complaints under another person's ID number, with the claimant's own phone and address.
fn c3_false_name(u: &mut Unit<'_>, p: PersonIdx, victim: PersonIdx) {
    let world = u.world;
    let span = u.world.span;
    let own = &u.persons[p].identity.person;
    let v = &u.persons[victim].identity;
    let borrowed = Filer {
        actor: p,
        subject: caselink_proto::v1::Person {
            id_number: v.person.id_number.clone(),
            name: v.person.name.clone(),
            phone: own.phone.clone(),
            address: own.address.clone(),
            ..Default::default()
        },
        county: u.persons[p].identity.county,
    };
    let n = u.rng.random_range(3..=6);
    let mut last: Option<(MatterIdx, Filed)> = None;
    for _ in 0..n {
        let day = span.start_for(&mut u.rng, 60);
        let merchant = target_merchant(u);
        let matter = u.matter(p);
        let purchase = normal_purchase(&mut u.rng, &world.merchants.all[merchant], merchant, day);
        let decision = claimant_decision(u);
        let filed = claimant_complaint(u, matter, &borrowed, day, purchase, decision, None);
        last = Some((matter, filed));
    }
    if let Some((matter, filed)) = last {
        if u.rng.random_bool(0.4) {
            let und = Underlying::of(&filed, MatterType::Complaint);
            let t = office_after_days(&mut u.rng, filed.last, 5, 30);
            reconsideration(
                u,
                matter,
                &borrowed,
                t,
                &und,
                Appeal::Rejected(ReconsiderationRejectionReason::FalseIdentity),
            );
        }
    }
}

/// C7 二(七): reports found fabricated, and sometimes a 12345 ticket found untrue.
fn c7_fabricated(u: &mut Unit<'_>, p: PersonIdx) {
    let world = u.world;
    let span = u.world.span;
    let n = u.rng.random_range(2..=3);
    let r2 = u.persons[p].criteria.has(Criterion::R2);
    for _ in 0..n {
        let day = span.start_for(&mut u.rng, 60);
        let merchant = target_merchant(u);
        let cat = &CATEGORIES[world.merchants.all[merchant].category];
        // Fabricated reports are unsubstantiated too: keep them off R2 unless the claimant has it.
        let Some(violation) =
            cat.violations.iter().copied().find(|v| {
                r2 || u.persons[p].unsubstantiated[(*v as usize).min(99)] < R2_OTHERS_MAX
            })
        else {
            continue;
        };
        let matter = u.matter(p);
        let filer = u.own(p);
        let t0 = waking(&mut u.rng, day);
        let channel = report_channel(&mut u.rng);
        report(
            u,
            matter,
            &filer,
            t0,
            Report {
                channel,
                merchant,
                violation,
                reward: true,
            },
            Verdict::Unsubstantiated { fabricated: true },
        );
    }
    if u.rng.random_bool(0.5) {
        let day = span.start_for(&mut u.rng, 30);
        let merchant = target_merchant(u);
        let matter = u.matter(p);
        let filer = u.own(p);
        let t0 = waking(&mut u.rng, day);
        unfounded_ticket(u, matter, &filer, t0, merchant);
    }
}

/// R1 三(一): a complaint pressed into extortion or built on planted, swapped or back-dated goods, and the police case
/// that follows. A police outcome establishing fabrication (anything but plain extortion) also meets C7.
fn r1_police_case(u: &mut Unit<'_>, p: PersonIdx) {
    let world = u.world;
    let span = u.world.span;
    let day = span.start_for(&mut u.rng, 280);
    let merchant = food_merchant(u);
    let matter = u.matter(p);
    let filer = u.own(p);
    let purchase = normal_purchase(&mut u.rng, &world.merchants.all[merchant], merchant, day);
    let filed = claimant_complaint(
        u,
        matter,
        &filer,
        day,
        purchase,
        Decision::Mediate {
            outcome: MediationOutcome::Failed,
            not_for_living: false,
            payment: Payment::None,
        },
        None,
    );
    let offence = match u.rng.random_range(0..100) {
        0..50 => Offence::Extortion,
        50..62 => Offence::Planting,
        62..72 => Offence::Swapping,
        72..86 => Offence::ForgingDates,
        _ => Offence::FabricatingFacts,
    };
    if offence != Offence::Extortion {
        u.persons[p].criteria.add(Criterion::C7);
    }
    let ending = match u.rng.random_range(0..100) {
        0..35 => PoliceEnding::SecurityPenalty(SecurityPenaltyKind::Detention),
        35..60 => PoliceEnding::SecurityPenalty(SecurityPenaltyKind::Fine),
        _ => PoliceEnding::Prosecution,
    };
    let t = office_after_days(&mut u.rng, filed.last, 3, 20);
    police_case(u, matter, &filer, t, merchant, offence, ending);
}

/// R2 三(二): reports of one violation type, again and again, found unsubstantiated.
fn r2_untrue_reports(u: &mut Unit<'_>, p: PersonIdx) {
    let span = u.world.span;
    let violation = match u.rng.random_range(0..4) {
        0 => ViolationType::Labelling,
        1 => ViolationType::Expired,
        2 => ViolationType::NoChineseLabel,
        _ => ViolationType::FalseAdvertising,
    };
    let n = u.rng.random_range(4..=6);
    for _ in 0..n {
        let day = span.start_for(&mut u.rng, 60);
        let merchant = target_merchant(u);
        let matter = u.matter(p);
        let filer = u.own(p);
        let t0 = waking(&mut u.rng, day);
        let channel = report_channel(&mut u.rng);
        report(
            u,
            matter,
            &filer,
            t0,
            Report {
                channel,
                merchant,
                violation,
                reward: true,
            },
            Verdict::Unsubstantiated { fabricated: false },
        );
    }
}

/// A report of the claimant's that later proceedings can be about.
fn own_report(u: &mut Unit<'_>, p: PersonIdx, day: i64) -> (MatterIdx, Filed) {
    let world = u.world;
    let merchant = target_merchant(u);
    let cat = &CATEGORIES[world.merchants.all[merchant].category];
    let violation = cat.violations[u.rng.random_range(0..cat.violations.len())];
    let verdict = report_verdict(u, p, violation);
    let matter = u.matter(p);
    let filer = u.own(p);
    let t0 = waking(&mut u.rng, day);
    let channel = report_channel(&mut u.rng);
    let filed = report(
        u,
        matter,
        &filer,
        t0,
        Report {
            channel,
            merchant,
            violation,
            reward: true,
        },
        verdict,
    );
    (matter, filed)
}

/// R3 三(三): reconsideration and suit on a report matter rejected and dismissed, and then the same again on a similar
/// report.
fn r3_repeated_appeals(u: &mut Unit<'_>, p: PersonIdx) {
    let span = u.world.span;
    let filer = u.own(p);
    let day = span.start_for(&mut u.rng, 290);
    let (matter, first) = own_report(u, p, day);
    let und = Underlying::of(&first, MatterType::Report);
    let t = office_after_days(&mut u.rng, first.last, 5, 30);
    let (filed, rejected) = reconsideration(
        u,
        matter,
        &filer,
        t,
        &und,
        Appeal::Rejected(ReconsiderationRejectionReason::NoLegalInterest),
    );
    let t = office_after_days(&mut u.rng, rejected, 3, 15);
    let dismissed = admin_suit(
        u,
        matter,
        &filer,
        t,
        &und,
        Suit::Dismissed(SuitDismissalReason::NoStanding),
        vec![filed.id],
    );
    let again = day_of(dismissed) + u.rng.random_range(10..=50);
    let (matter, second) = own_report(u, p, again);
    let und = Underlying::of(&second, MatterType::Report);
    let t = office_after_days(&mut u.rng, second.last, 5, 30);
    let (filed, rejected) = reconsideration(
        u,
        matter,
        &filer,
        t,
        &und,
        Appeal::Rejected(ReconsiderationRejectionReason::NoLegalInterest),
    );
    let t = office_after_days(&mut u.rng, rejected, 3, 15);
    let fate = if u.rng.random_bool(0.5) {
        Suit::Dismissed(SuitDismissalReason::NoStanding)
    } else {
        Suit::Pending
    };
    admin_suit(u, matter, &filer, t, &und, fate, vec![filed.id]);
}

/// R4 三(四): one matter, disclosure request after disclosure request, each decided not in scope.
fn r4_disclosures(u: &mut Unit<'_>, p: PersonIdx, cands: &mut Candidates) {
    let span = u.world.span;
    let filer = u.own(p);
    let day = span.start_for(&mut u.rng, 300);
    let (matter, filed) = own_report(u, p, day);
    let und = Underlying::of(&filed, MatterType::Report);
    let n = u.rng.random_range(4..=5);
    let mut t = filed.last;
    for _ in 0..n {
        let asked = office_after_days(&mut u.rng, t, 7, 25);
        t = disclosure(
            u,
            matter,
            &filer,
            asked,
            &und,
            DisclosureOutcome::NotInScope,
        );
    }
    cands.push((matter, und));
}

/// R5 三(五): reports about the bureau's staff to discipline inspection, found untrue.
fn r5_discipline(u: &mut Unit<'_>, p: PersonIdx, cands: &mut Candidates) {
    let span = u.world.span;
    let filer = u.own(p);
    let n: i64 = if span.days() >= 600 {
        u.rng.random_range(3..=4)
    } else {
        3
    };
    let day = span.start_for(&mut u.rng, n * 100 + 30);
    let (matter, filed) = own_report(u, p, day);
    let und = Underlying::of(&filed, MatterType::Report);
    let mut t = filed.last;
    for _ in 0..n {
        let reported = office_after_days(&mut u.rng, t, 10, 40);
        t = discipline(u, matter, &filer, reported, &und, true);
    }
    cands.push((matter, und));
}

/// One escalation chain on one of the claimant's matters: disclosure (not in scope) → reconsideration (no legal
/// interest) → administrative suit (no standing) → petition (legal proceedings) → discipline report (untrue). Safe for
/// every criterion: one request on the matter, two rejections with nothing after, one untrue discipline report.
fn escalation_chain(u: &mut Unit<'_>, p: PersonIdx, cands: &Candidates) {
    if cands.is_empty() {
        return;
    }
    let (matter, und) = cands[u.rng.random_range(0..cands.len())].clone();
    let filer = u.own(p);
    let t = office_after_days(&mut u.rng, und.last, 5, 30);
    let t = disclosure(u, matter, &filer, t, &und, DisclosureOutcome::NotInScope);
    if !u.rng.random_bool(0.85) {
        return;
    }
    let t = office_after_days(&mut u.rng, t, 10, 50);
    let (filed, t) = reconsideration(
        u,
        matter,
        &filer,
        t,
        &und,
        Appeal::Rejected(ReconsiderationRejectionReason::NoLegalInterest),
    );
    if !u.rng.random_bool(0.85) {
        return;
    }
    let t = office_after_days(&mut u.rng, t, 5, 15);
    let fate = if u.rng.random_bool(0.7) {
        Suit::Dismissed(SuitDismissalReason::NoStanding)
    } else {
        Suit::Judged(JudgmentOutcome::Lost)
    };
    let t = admin_suit(u, matter, &filer, t, &und, fate, vec![filed.id]);
    if !u.rng.random_bool(0.85) {
        return;
    }
    let t = office_after_days(&mut u.rng, t, 5, 30);
    let t = petition(
        u,
        matter,
        &filer,
        t,
        &und,
        PetitionClass::LegalProceedings,
        Satisfaction::Unsatisfied,
    );
    if !u.rng.random_bool(0.85) {
        return;
    }
    let t = office_after_days(&mut u.rng, t, 10, 40);
    discipline(u, matter, &filer, t, &und, true);
}

/// The criteria an abuser may be planted with on their own (C4 and C5 come from their group), and how often.
pub(crate) const SOLO_WEIGHTS: [(Criterion, u32); 9] = [
    (Criterion::C1, 25),
    (Criterion::C2, 18),
    (Criterion::C3, 10),
    (Criterion::C7, 14),
    (Criterion::R1, 8),
    (Criterion::R2, 14),
    (Criterion::R3, 10),
    (Criterion::R4, 14),
    (Criterion::R5, 9),
];

/// How many persons of a unit a C3 claimant borrows ID numbers from.
pub(crate) fn victims_of(rng: &mut rand_chacha::ChaCha8Rng) -> u8 {
    rng.random_range(1..=3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_the_densest_365_days() {
        assert_eq!(max_in_window(&[], 365), 0);
        assert_eq!(max_in_window(&[0, 364, 365, 800], 365), 2);
        assert_eq!(max_in_window(&[10, 0, 5, 400, 401, 402, 403], 365), 4);
    }
}
