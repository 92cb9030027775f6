//! Ordinary consumers, the vast majority: 0-3 grievances a year through the region's channel mix, mostly mediated
//! successfully, some rejected for ordinary reasons; sometimes the same grievance also phoned in to 12345; at most one
//! escalation in a lifetime (a disclosure request, a reconsideration or a petition). By construction an ordinary person
//! meets no criterion: no punitive compensation, normal quantities, their own ID and contacts only, no shared
//! contacts, few filings, nothing found untrue or fabricated, no police, at most two unsubstantiated reports of a
//! violation type, one escalation at most.

use caselink_proto::v1::{
    ClaimType, ComplaintRejectionReason, DisclosureOutcome, MatterType, MediationOutcome,
    PetitionClass, ReconsiderationOutcome, ReconsiderationRejectionReason, Satisfaction,
};
use rand::Rng;

use crate::calendar::{office_after_days, office_after_working_days, waking};
use crate::criteria::thresholds::R2_OTHERS_MAX;
use crate::merchants::CATEGORIES;
use crate::proceedings::{
    close_ticket, complaint, disclosure, draw_intake, duplicate_ticket, normal_purchase, petition,
    reconsideration, report, ticket_to_market, Appeal, Complaint, Decision, Filed, Intake, Payment,
    Report, Underlying, Verdict,
};
use crate::text;
use crate::unit::{PersonIdx, Unit};

/// Share of ordinary persons' unhappy outcomes they escalate (once at most).
const ESCALATE: f64 = 0.2;

/// Generates an ordinary person's whole history.
pub(crate) fn ordinary_life(u: &mut Unit<'_>, p: PersonIdx) {
    let span = u.world.span;
    let years = (span.days() / 365).max(1);
    let slice = span.days() / years;
    let mut days = Vec::new();
    for y in 0..years {
        let n = match u.rng.random_range(0..100) {
            0..45 => 0,
            45..80 => 1,
            80..94 => 2,
            _ => 3,
        };
        for _ in 0..n {
            let first = span.first + y * slice;
            days.push(span.day_between(&mut u.rng, first, first + slice - 1));
        }
    }
    if days.is_empty() {
        days.push(span.day_between(&mut u.rng, span.first, span.last));
    }
    days.sort_unstable();
    for day in days {
        grievance(u, p, day);
    }
}

/// One grievance of an ordinary consumer, starting on `day`.
pub(crate) fn grievance(u: &mut Unit<'_>, p: PersonIdx, day: i64) {
    let world = u.world;
    let matter = u.matter(p);
    let filer = u.own(p);
    let t0 = waking(&mut u.rng, day);
    match draw_intake(&mut u.rng) {
        Intake::Report(channel) => {
            let merchant = world.merchants.popular(&mut u.rng);
            let cat = &CATEGORIES[world.merchants.all[merchant].category];
            let violation = cat.violations[u.rng.random_range(0..cat.violations.len())];
            let allowed_unsub =
                u.persons[p].unsubstantiated[(violation as usize).min(99)] < R2_OTHERS_MAX;
            let verdict = if !allowed_unsub || u.rng.random_bool(0.45) {
                Verdict::Substantiated {
                    penalty: u.rng.random_bool(0.5),
                }
            } else {
                Verdict::Unsubstantiated { fabricated: false }
            };
            let reward = u.rng.random_bool(0.15);
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
            maybe_escalate(u, p, matter, &filed, MatterType::Report);
        }
        Intake::Complaint(channel) => {
            let merchant = world.merchants.popular(&mut u.rng);
            let m = &world.merchants.all[merchant];
            let purchase = normal_purchase(&mut u.rng, m, merchant, day);
            let claim = ordinary_claim(u, CATEGORIES[m.category].food_law);
            let summary = text::ordinary_complaint(
                &mut u.rng,
                &crate::proceedings::bought(m, &purchase),
                claim,
            );
            let decision = ordinary_decision(u);
            let filed = complaint(
                u,
                matter,
                &filer,
                t0,
                Complaint {
                    channel,
                    purchase,
                    claim,
                    summary,
                },
                decision,
                vec![],
            );
            // Some call 12345 about it as well; the centre merges the ticket into the 12315 complaint.
            if u.rng.random_bool(0.06) {
                let t = office_after_days(&mut u.rng, t0, 2, 10);
                duplicate_ticket(u, matter, &filer, t, &filed);
            }
            maybe_escalate(u, p, matter, &filed, MatterType::Complaint);
        }
        Intake::Transfer => {
            let merchant = world.merchants.popular(&mut u.rng);
            let m = &world.merchants.all[merchant];
            let purchase = normal_purchase(&mut u.rng, m, merchant, day);
            let claim = ordinary_claim(u, CATEGORIES[m.category].food_law);
            let summary = text::ordinary_complaint(
                &mut u.rng,
                &crate::proceedings::bought(m, &purchase),
                claim,
            );
            let decision = ordinary_decision(u);
            // Nearly every transfer has its ticket on record; a few reach the bureau by other means.
            let ticket = if u.rng.random_bool(0.92) {
                Some(ticket_to_market(
                    u,
                    matter,
                    &filer,
                    t0,
                    merchant,
                    Some(&purchase),
                ))
            } else {
                None
            };
            let at = match &ticket {
                Some(t) => office_after_working_days(&mut u.rng, t.last, 1, 2),
                None => t0,
            };
            let related = ticket
                .as_ref()
                .map(|t| vec![t.created.id.clone()])
                .unwrap_or_default();
            let filed = complaint(
                u,
                matter,
                &filer,
                at,
                Complaint {
                    channel: caselink_proto::v1::Channel::Channel12345Transfer,
                    purchase,
                    claim,
                    summary,
                },
                decision,
                related,
            );
            if let Some(t) = &ticket {
                close_ticket(u, matter, &filer, t, filed.last, filed.satisfied);
            }
            maybe_escalate(u, p, matter, &filed, MatterType::Complaint);
        }
    }
}

fn ordinary_claim(u: &mut Unit<'_>, food_law: bool) -> ClaimType {
    match u.rng.random_range(0..100) {
        0..45 => ClaimType::Refund,
        45..60 => ClaimType::Replacement,
        60..70 => ClaimType::Repair,
        70..92 => ClaimType::Compensation,
        92..97 if food_law => ClaimType::Punitive10x,
        92..97 => ClaimType::Punitive3x,
        _ => ClaimType::Other,
    }
}

/// Most complaints are accepted and mediated successfully (the Changzhou target is 80%+); some are rejected for
/// ordinary reasons. Payment, when there is one, is never punitive.
fn ordinary_decision(u: &mut Unit<'_>) -> Decision {
    if u.rng.random_bool(0.12) {
        let reason = match u.rng.random_range(0..100) {
            0..35 => ComplaintRejectionReason::NoJurisdiction,
            35..70 => ComplaintRejectionReason::NoEvidence,
            70..80 => ComplaintRejectionReason::Duplicate,
            80..90 => ComplaintRejectionReason::AlreadyInLitigation,
            _ => ComplaintRejectionReason::Other,
        };
        return Decision::Reject(reason);
    }
    let outcome = match u.rng.random_range(0..100) {
        0..80 => MediationOutcome::Success,
        80..95 => MediationOutcome::Failed,
        _ => MediationOutcome::Terminated,
    };
    Decision::Mediate {
        outcome,
        not_for_living: false,
        payment: if u.rng.random_bool(0.5) {
            Payment::Refund
        } else {
            Payment::None
        },
    }
}

/// After an unhappy outcome, now and then, the one escalation of a lifetime.
fn maybe_escalate(
    u: &mut Unit<'_>,
    p: PersonIdx,
    matter: usize,
    filed: &Filed,
    matter_type: MatterType,
) {
    if filed.satisfied || u.persons[p].escalations > 0 || !u.rng.random_bool(ESCALATE) {
        return;
    }
    let filer = u.own(p);
    let und = Underlying::of(filed, matter_type);
    let t = office_after_days(&mut u.rng, filed.last, 3, 45);
    match u.rng.random_range(0..100) {
        0..35 => {
            let outcome = match u.rng.random_range(0..100) {
                0..55 => DisclosureOutcome::Disclosed,
                55..75 => DisclosureOutcome::PartiallyDisclosed,
                75..90 => DisclosureOutcome::NotInScope,
                _ => DisclosureOutcome::DoesNotExist,
            };
            disclosure(u, matter, &filer, t, &und, outcome);
        }
        35..65 => {
            let fate = match u.rng.random_range(0..100) {
                0..45 => Appeal::Rejected(ReconsiderationRejectionReason::OutOfScope),
                45..85 => Appeal::Decided(ReconsiderationOutcome::Upheld),
                85..90 => Appeal::Decided(ReconsiderationOutcome::OrderedToAct),
                _ => Appeal::Withdrawn,
            };
            reconsideration(u, matter, &filer, t, &und, fate);
        }
        _ => {
            let satisfaction = match u.rng.random_range(0..100) {
                0..50 => Satisfaction::Satisfied,
                50..75 => Satisfaction::BasicallySatisfied,
                _ => Satisfaction::Unsatisfied,
            };
            petition(
                u,
                matter,
                &filer,
                t,
                &und,
                PetitionClass::Grievance,
                satisfaction,
            );
        }
    }
}
