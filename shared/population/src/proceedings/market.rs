//! The market bureau's records of a complaint (received, accepted or rejected within 7 working days, mediated,
//! paid) and of a report (received, verified, the penalty on the merchant).

use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{
    Channel, ClaimType, CompensationPaid, ComplaintAccepted, ComplaintMediationClosed,
    ComplaintReceived, ComplaintRejected, ComplaintRejectionReason, MediationOutcome,
    PenaltyImposed, ReportReceived, ReportVerified, VerificationOutcome, ViolationType,
};
use rand::Rng;

use super::intake::{claimed_fen, Purchase};
use crate::calendar::{office_after_days, office_after_working_days, timestamp};
use crate::merchants::CATEGORIES;
use crate::text;
use crate::unit::{FileKind, Filer, MatterIdx, Ref, Thread, Unit};

/// How a complaint ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Decision {
    /// Not accepted (within 7 working days).
    Reject(ComplaintRejectionReason),
    /// Accepted and mediated.
    Mediate {
        outcome: MediationOutcome,
        /// Mediation terminated because the purchase was not for living consumption (clause 二, 终止调解).
        not_for_living: bool,
        payment: Payment,
    },
}

/// What the merchant pays after a successful mediation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payment {
    None,
    /// The price back, or the loss (non-punitive).
    Refund,
    /// The punitive amount claimed (10x or 3x).
    Punitive,
}

/// A complaint to file.
pub(crate) struct Complaint {
    pub(crate) channel: Channel,
    pub(crate) purchase: Purchase,
    pub(crate) claim: ClaimType,
    pub(crate) summary: String,
}

/// A filed complaint or report: what later records refer to.
#[derive(Debug, Clone)]
pub(crate) struct Filed {
    pub(crate) received: Ref,
    pub(crate) case_ref: String,
    /// County of the market bureau that handles it (the merchant's).
    pub(crate) county: usize,
    /// When its last record happened.
    pub(crate) last: i64,
    /// Whether the person got what they asked for.
    pub(crate) satisfied: bool,
    pub(crate) merchant: usize,
}

/// Files a complaint at `t0` and plays out its decision.
pub(crate) fn complaint(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    t0: i64,
    c: Complaint,
    decision: Decision,
    related: Vec<String>,
) -> Filed {
    let world = u.world;
    let m = &world.merchants.all[c.purchase.merchant];
    let county = m.county;
    let case_ref = u.file_number(FileKind::Complaint, county, t0);
    let region = &world.regions.counties[county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &case_ref,
        merchant: Some(&m.merchant),
    };
    let cat = &CATEGORIES[m.category];
    let goods = cat.goods[c.purchase.goods % cat.goods.len()].0;
    let claimed = claimed_fen(c.claim, c.purchase.amount_fen);
    let received = u.emit(
        &thread,
        t0,
        c.summary,
        related,
        Payload::ComplaintReceived(ComplaintReceived {
            channel: c.channel as i32,
            amount_fen: c.purchase.amount_fen,
            quantity: c.purchase.quantity,
            claim_type: c.claim as i32,
            claimed_fen: claimed,
            goods: goods.to_owned(),
            purchased_at: Some(timestamp(c.purchase.purchased_at.min(t0 - 3600))),
        }),
    );
    let decided = office_after_working_days(&mut u.rng, t0, 1, 5);
    match decision {
        Decision::Reject(reason) => {
            let detail = text::rejection_detail(reason);
            u.emit(
                &thread,
                decided,
                format!("决定不予受理：{detail}。"),
                vec![],
                Payload::ComplaintRejected(ComplaintRejected {
                    complaint_event_id: received.id.clone(),
                    reason: reason as i32,
                    detail: detail.to_owned(),
                }),
            );
            Filed {
                received,
                case_ref,
                county,
                last: decided,
                satisfied: false,
                merchant: c.purchase.merchant,
            }
        }
        Decision::Mediate {
            outcome,
            not_for_living,
            payment,
        } => {
            u.emit(
                &thread,
                decided,
                "符合受理条件，决定受理，组织双方调解。".to_owned(),
                vec![],
                Payload::ComplaintAccepted(ComplaintAccepted {
                    complaint_event_id: received.id.clone(),
                }),
            );
            let closed = office_after_days(&mut u.rng, decided, 3, 40);
            let agreed = match (outcome, payment) {
                (MediationOutcome::Success, Payment::Punitive) => claimed,
                (MediationOutcome::Success, _) => {
                    let share = u.rng.random_range(5..=10);
                    c.purchase.amount_fen * share / 10
                }
                _ => 0,
            };
            let (summary, detail) = match outcome {
                MediationOutcome::Success => (
                    format!("经调解双方达成一致，经营者同意支付{}元。", text::yuan(agreed)),
                    "调解成功",
                ),
                MediationOutcome::Failed => (
                    "经调解双方未能达成一致，告知投诉人可通过民事诉讼等途径解决。".to_owned(),
                    "调解不成",
                ),
                _ if not_for_living => (
                    "经综合判断，投诉人不属于为生活消费需要购买商品，依据《市场监督管理投诉举报处理暂行办法》第二十一条终止调解。"
                        .to_owned(),
                    "非生活消费需要，终止调解",
                ),
                _ => (
                    "投诉人撤回投诉，终止调解。".to_owned(),
                    "投诉人撤回投诉",
                ),
            };
            let mediation = u.emit(
                &thread,
                closed,
                summary,
                vec![],
                Payload::ComplaintMediationClosed(ComplaintMediationClosed {
                    complaint_event_id: received.id.clone(),
                    outcome: outcome as i32,
                    amount_fen: agreed,
                    not_for_living_consumption: not_for_living,
                    detail: detail.to_owned(),
                }),
            );
            let mut last = closed;
            if outcome == MediationOutcome::Success && payment != Payment::None && agreed > 0 {
                let punitive = payment == Payment::Punitive;
                let basis = if punitive {
                    c.claim
                } else if c.claim == ClaimType::Compensation {
                    ClaimType::Compensation
                } else {
                    ClaimType::Refund
                };
                last = office_after_days(&mut u.rng, closed, 1, 10);
                u.emit(
                    &thread,
                    last,
                    if punitive {
                        format!("经营者已按调解协议支付惩罚性赔偿{}元。", text::yuan(agreed))
                    } else {
                        format!("经营者已按调解协议退款{}元。", text::yuan(agreed))
                    },
                    vec![mediation.id],
                    Payload::CompensationPaid(CompensationPaid {
                        complaint_event_id: received.id.clone(),
                        amount_fen: agreed,
                        punitive,
                        basis: basis as i32,
                    }),
                );
            }
            Filed {
                received,
                case_ref,
                county,
                last,
                satisfied: outcome == MediationOutcome::Success,
                merchant: c.purchase.merchant,
            }
        }
    }
}

/// How a report's verification ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verdict {
    Substantiated { penalty: bool },
    Unsubstantiated { fabricated: bool },
}

/// A report to file.
pub(crate) struct Report {
    pub(crate) channel: Channel,
    pub(crate) merchant: usize,
    pub(crate) violation: ViolationType,
    pub(crate) reward: bool,
}

/// Files a report at `t0` and plays out its verification (and the penalty on the merchant, if any).
pub(crate) fn report(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    t0: i64,
    r: Report,
    verdict: Verdict,
) -> Filed {
    let world = u.world;
    let m = &world.merchants.all[r.merchant];
    let county = m.county;
    let case_ref = u.file_number(FileKind::Report, county, t0);
    let region = &world.regions.counties[county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &case_ref,
        merchant: Some(&m.merchant),
    };
    let cat = &CATEGORIES[m.category];
    let goods = cat.goods[u.rng.random_range(0..cat.goods.len())].0;
    let summary = text::report(&mut u.rng, &m.merchant.name, goods, r.violation, r.reward);
    let received = u.emit(
        &thread,
        t0,
        summary,
        vec![],
        Payload::ReportReceived(ReportReceived {
            channel: r.channel as i32,
            alleged_violation: r.violation as i32,
            reward_requested: r.reward,
        }),
    );
    let verified = office_after_working_days(&mut u.rng, t0, 5, 15);
    let (outcome, case_filed, fabricated, summary) = match verdict {
        Verdict::Substantiated { penalty } => (
            VerificationOutcome::Substantiated,
            penalty,
            false,
            if penalty {
                "经核查，举报情况属实，已立案调查。"
            } else {
                "经核查，举报情况基本属实，已责令经营者改正，情节轻微不予立案。"
            },
        ),
        Verdict::Unsubstantiated { fabricated: true } => (
            VerificationOutcome::Unsubstantiated,
            false,
            true,
            "经核查，举报所称违法行为不存在，系举报人故意捏造，不予立案。",
        ),
        Verdict::Unsubstantiated { fabricated: false } => (
            VerificationOutcome::Unsubstantiated,
            false,
            false,
            "经核查，举报所称违法行为不属实，不予立案。",
        ),
    };
    if outcome == VerificationOutcome::Unsubstantiated {
        let id = &filer.subject.id_number;
        if let Some(p) = u
            .persons
            .iter_mut()
            .find(|p| &p.identity.person.id_number == id)
        {
            p.unsubstantiated[(r.violation as usize).min(99)] += 1;
        }
    }
    let verification = u.emit(
        &thread,
        verified,
        summary.to_owned(),
        vec![],
        Payload::ReportVerified(ReportVerified {
            report_event_id: received.id.clone(),
            outcome: outcome as i32,
            case_filed,
            found_fabricated: fabricated,
            violation: r.violation as i32,
        }),
    );
    let mut last = verified;
    if case_filed {
        last = office_after_days(&mut u.rng, verified, 20, 90);
        let decision = u.file_number(FileKind::Penalty, county, last);
        let fine = u.rng.random_range(50..=2_000) * 10_000;
        let penalty_thread = Thread {
            case_ref: &decision,
            ..thread
        };
        u.emit_on_merchant(
            &penalty_thread,
            last,
            format!(
                "对{}{}的违法行为作出行政处罚，罚款{}元。",
                m.merchant.name,
                text::violation_name(r.violation),
                text::yuan(fine)
            ),
            vec![verification.id],
            Payload::PenaltyImposed(PenaltyImposed {
                violation: r.violation as i32,
                fine_fen: fine,
                decision_ref: decision.clone(),
            }),
        );
    }
    Filed {
        received,
        case_ref,
        county,
        last,
        satisfied: matches!(verdict, Verdict::Substantiated { .. }),
        merchant: r.merchant,
    }
}
