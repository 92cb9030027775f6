//! What a person does after the bureau's answer: disclosure requests, reconsideration, administrative suits,
//! petitions, reports to discipline inspection, and civil claims against the merchant.

use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{
    AdminSuitDismissed, AdminSuitFiled, AdminSuitJudged, CivilClaimFiled, CivilClaimJudged,
    ClaimType, DisciplineReportNotified, DisclosureDecided, DisclosureOutcome, DisclosureRequested,
    JudgmentOutcome, MatterType, PetitionClass, PetitionClassified, PetitionClosed, PetitionForm,
    PetitionReceived, ReconsiderationDecided, ReconsiderationFiled, ReconsiderationOutcome,
    ReconsiderationRejected, ReconsiderationRejectionReason, ReconsiderationWithdrawn,
    Satisfaction, SuitDismissalReason,
};
use rand::Rng;

use super::market::Filed;
use crate::calendar::{office_after_days, office_after_working_days};
use crate::text;
use crate::unit::{FileKind, Filer, MatterIdx, Ref, Thread, Unit};

/// The matter an escalation is about.
#[derive(Debug, Clone)]
pub(crate) struct Underlying {
    pub(crate) matter_type: MatterType,
    /// The market bureau's file number of the complaint or report.
    pub(crate) matter_ref: String,
    /// County of the bureau that handled it.
    pub(crate) county: usize,
    /// When it was last acted on.
    pub(crate) last: i64,
}

impl Underlying {
    pub(crate) fn of(filed: &Filed, matter_type: MatterType) -> Underlying {
        Underlying {
            matter_type,
            matter_ref: filed.case_ref.clone(),
            county: filed.county,
            last: filed.last,
        }
    }

    fn what(&self) -> &'static str {
        match self.matter_type {
            MatterType::Report => "举报",
            MatterType::Complaint => "投诉",
            _ => "事项",
        }
    }
}

/// Counts an escalation the actor made in their own name.
fn note_escalation(u: &mut Unit<'_>, filer: &Filer) {
    let p = &mut u.persons[filer.actor];
    if p.identity.person.id_number == filer.subject.id_number {
        p.escalations += 1;
    }
}

/// A government-information disclosure request at `t0`, decided within 20 working days. Returns when it was decided.
pub(crate) fn disclosure(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    t0: i64,
    und: &Underlying,
    outcome: DisclosureOutcome,
) -> i64 {
    note_escalation(u, filer);
    let world = u.world;
    let case_ref = u.file_number(FileKind::Disclosure, und.county, t0);
    let region = &world.regions.counties[und.county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &case_ref,
        merchant: None,
    };
    let asked = format!(
        "申请公开{}{}的调查处理过程、执法人员名单及内部审批材料",
        und.what(),
        und.matter_ref
    );
    let requested = u.emit(
        &thread,
        t0,
        format!("申请人{asked}。"),
        vec![],
        Payload::DisclosureRequested(DisclosureRequested {
            matter: asked,
            matter_ref: und.matter_ref.clone(),
        }),
    );
    let decided = office_after_working_days(&mut u.rng, t0, 5, 20);
    let summary = match outcome {
        DisclosureOutcome::Disclosed => "依申请予以公开。",
        DisclosureOutcome::PartiallyDisclosed => "部分公开，涉及第三方个人信息的部分不予公开。",
        DisclosureOutcome::NotInScope => {
            "所申请内容属于内部事务信息和过程性信息，不属于政府信息公开范围。"
        }
        DisclosureOutcome::DoesNotExist => "经检索，所申请公开的政府信息不存在。",
        _ => "不予公开。",
    };
    u.emit(
        &thread,
        decided,
        summary.to_owned(),
        vec![],
        Payload::DisclosureDecided(DisclosureDecided {
            request_event_id: requested.id,
            outcome: outcome as i32,
            matter_ref: und.matter_ref.clone(),
        }),
    );
    decided
}

/// How a reconsideration ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Appeal {
    Rejected(ReconsiderationRejectionReason),
    Decided(ReconsiderationOutcome),
    Withdrawn,
}

/// An application for administrative reconsideration at `t0` against the market bureau. Returns when it ended.
pub(crate) fn reconsideration(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    t0: i64,
    und: &Underlying,
    fate: Appeal,
) -> (Ref, i64) {
    note_escalation(u, filer);
    let world = u.world;
    let case_ref = u.file_number(FileKind::Reconsideration, filer.county, t0);
    let region = &world.regions.counties[filer.county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &case_ref,
        merchant: None,
    };
    let bureau = world.regions.market_bureau(und.county);
    let underlying = format!("不服{bureau}对{}{}的处理", und.what(), und.matter_ref);
    let filed = u.emit(
        &thread,
        t0,
        format!("申请人{underlying}，申请行政复议。"),
        vec![],
        Payload::ReconsiderationFiled(ReconsiderationFiled {
            respondent_agency: bureau,
            underlying_matter: underlying,
            matter_type: und.matter_type as i32,
            matter_ref: und.matter_ref.clone(),
        }),
    );
    let (t, summary, payload) = match fate {
        Appeal::Rejected(reason) => {
            let t = office_after_working_days(&mut u.rng, t0, 2, 5);
            let detail = match reason {
                ReconsiderationRejectionReason::NoLegalInterest => {
                    "申请人并非基于保护自身合法权益申请复议，与被申请行为不具有利害关系"
                }
                ReconsiderationRejectionReason::OutOfScope => {
                    "对行政机关就民事纠纷作出的调解不服，不属于行政复议范围"
                }
                ReconsiderationRejectionReason::FalseIdentity => {
                    "经审查申请人身份信息，申请系冒用他人名义提出"
                }
                ReconsiderationRejectionReason::OutOfTime => "超过法定申请期限",
                _ => "不符合受理条件",
            };
            (
                t,
                format!("决定不予受理：{detail}。"),
                Payload::ReconsiderationRejected(ReconsiderationRejected {
                    filed_event_id: filed.id.clone(),
                    reason: reason as i32,
                    detail: detail.to_owned(),
                }),
            )
        }
        Appeal::Decided(outcome) => {
            let t = office_after_days(&mut u.rng, t0, 30, 60);
            let summary = match outcome {
                ReconsiderationOutcome::Upheld => "经审理，维持被申请人的处理决定。",
                ReconsiderationOutcome::OrderedToAct => "经审理，责令被申请人重新处理。",
                ReconsiderationOutcome::Revoked => "经审理，撤销被申请人的处理决定。",
                _ => "经审理，确认被申请人的行为违法。",
            };
            (
                t,
                summary.to_owned(),
                Payload::ReconsiderationDecided(ReconsiderationDecided {
                    filed_event_id: filed.id.clone(),
                    outcome: outcome as i32,
                }),
            )
        }
        Appeal::Withdrawn => {
            let t = office_after_days(&mut u.rng, t0, 5, 30);
            (
                t,
                "申请人撤回行政复议申请。".to_owned(),
                Payload::ReconsiderationWithdrawn(ReconsiderationWithdrawn {
                    filed_event_id: filed.id.clone(),
                }),
            )
        }
    };
    u.emit(&thread, t, summary, vec![], payload);
    (filed, t)
}

/// How an administrative suit ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Suit {
    Dismissed(SuitDismissalReason),
    Judged(JudgmentOutcome),
    Pending,
}

/// An administrative suit at `t0` against the market bureau. Returns when it ended.
pub(crate) fn admin_suit(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    t0: i64,
    und: &Underlying,
    fate: Suit,
    related: Vec<String>,
) -> i64 {
    note_escalation(u, filer);
    let world = u.world;
    let case_ref = u.file_number(FileKind::AdminSuit, und.county, t0);
    let region = &world.regions.counties[und.county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &case_ref,
        merchant: None,
    };
    let bureau = world.regions.market_bureau(und.county);
    let filed = u.emit(
        &thread,
        t0,
        format!(
            "原告不服被告{bureau}对{}{}的处理，提起行政诉讼。",
            und.what(),
            und.matter_ref
        ),
        related,
        Payload::AdminSuitFiled(AdminSuitFiled {
            defendant_agency: bureau,
            matter_type: und.matter_type as i32,
            matter_ref: und.matter_ref.clone(),
        }),
    );
    match fate {
        Suit::Dismissed(reason) => {
            let t = office_after_days(&mut u.rng, t0, 20, 60);
            let detail = match reason {
                SuitDismissalReason::NoStanding => {
                    "原告与被诉行政行为不具有利害关系，不具备原告主体资格"
                }
                SuitDismissalReason::FalseIdentity => "起诉系冒用他人名义提出",
                SuitDismissalReason::OutOfTime => "超过法定起诉期限",
                _ => "不属于人民法院行政诉讼受案范围",
            };
            u.emit(
                &thread,
                t,
                format!("裁定驳回起诉：{detail}。"),
                vec![],
                Payload::AdminSuitDismissed(AdminSuitDismissed {
                    filed_event_id: filed.id,
                    reason: reason as i32,
                    detail: detail.to_owned(),
                }),
            );
            t
        }
        Suit::Judged(outcome) => {
            let t = office_after_days(&mut u.rng, t0, 60, 150);
            u.emit(
                &thread,
                t,
                if outcome == JudgmentOutcome::Lost {
                    "判决驳回原告诉讼请求。".to_owned()
                } else {
                    "判决支持原告部分诉讼请求。".to_owned()
                },
                vec![],
                Payload::AdminSuitJudged(AdminSuitJudged {
                    filed_event_id: filed.id,
                    outcome: outcome as i32,
                }),
            );
            t
        }
        Suit::Pending => t0,
    }
}

/// A petition (信访) at `t0` about the matter, classified and closed. Returns when it was closed.
pub(crate) fn petition(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    t0: i64,
    und: &Underlying,
    class: PetitionClass,
    satisfaction: Satisfaction,
) -> i64 {
    note_escalation(u, filer);
    let world = u.world;
    let case_ref = u.file_number(FileKind::Petition, filer.county, t0);
    let region = &world.regions.counties[filer.county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &case_ref,
        merchant: None,
    };
    let bureau = world.regions.market_bureau(und.county);
    let form = match u.rng.random_range(0..100) {
        0..30 => PetitionForm::Letter,
        30..55 => PetitionForm::Visit,
        55..90 => PetitionForm::Online,
        _ => PetitionForm::Phone,
    };
    let what = format!("反映{bureau}对其{}{}处理不当", und.what(), und.matter_ref);
    let received = u.emit(
        &thread,
        t0,
        format!("信访人{what}，要求重新处理。"),
        vec![],
        Payload::PetitionReceived(PetitionReceived {
            matter: what,
            target_agency: bureau,
            form: form as i32,
            matter_type: und.matter_type as i32,
            matter_ref: und.matter_ref.clone(),
        }),
    );
    let classified = office_after_working_days(&mut u.rng, t0, 3, 15);
    u.emit(
        &thread,
        classified,
        match class {
            PetitionClass::LegalProceedings => "属涉法涉诉事项，引导通过法定途径解决。",
            PetitionClass::Repeat => "属重复信访事项。",
            _ => "按信访程序转交责任单位办理。",
        }
        .to_owned(),
        vec![],
        Payload::PetitionClassified(PetitionClassified {
            received_event_id: received.id.clone(),
            class: class as i32,
        }),
    );
    let closed = office_after_days(&mut u.rng, classified, 15, 60);
    u.emit(
        &thread,
        closed,
        "信访事项办结，已书面答复信访人。".to_owned(),
        vec![],
        Payload::PetitionClosed(PetitionClosed {
            received_event_id: received.id,
            satisfaction: satisfaction as i32,
        }),
    );
    closed
}

/// A report about the bureau's staff to discipline inspection, notified to the market bureau with its finding.
pub(crate) fn discipline(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    t0: i64,
    und: &Underlying,
    found_untrue: bool,
) -> i64 {
    note_escalation(u, filer);
    let world = u.world;
    let case_ref = u.file_number(FileKind::Discipline, und.county, t0);
    let region = &world.regions.counties[und.county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &case_ref,
        merchant: None,
    };
    let bureau = world.regions.market_bureau(und.county);
    let t = office_after_days(&mut u.rng, t0, 20, 60);
    u.emit(
        &thread,
        t,
        if found_untrue {
            format!(
                "举报人反映{bureau}工作人员在办理{}{}中不作为、包庇经营者，经纪检监察部门查证不属实。",
                und.what(),
                und.matter_ref
            )
        } else {
            format!(
                "举报人反映{bureau}工作人员办理{}{}超期，经查部分属实，已责令整改。",
                und.what(),
                und.matter_ref
            )
        },
        vec![],
        Payload::DisciplineReportNotified(DisciplineReportNotified {
            target_agency: bureau,
            found_untrue,
            matter_ref: und.matter_ref.clone(),
        }),
    );
    t
}

/// A civil claim for punitive damages against a merchant.
pub(crate) struct CivilClaim {
    pub(crate) merchant: usize,
    pub(crate) claim: ClaimType,
    pub(crate) claimed: i64,
    pub(crate) won: bool,
}

/// Files a civil claim at `t0` and its judgment. Returns when it was judged.
pub(crate) fn civil_claim(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    t0: i64,
    c: CivilClaim,
) -> i64 {
    let CivilClaim {
        merchant,
        claim,
        claimed,
        won,
    } = c;
    let world = u.world;
    let m = &world.merchants.all[merchant];
    let case_ref = u.file_number(FileKind::CivilSuit, m.county, t0);
    let region = &world.regions.counties[m.county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &case_ref,
        merchant: Some(&m.merchant),
    };
    let filed = u.emit(
        &thread,
        t0,
        format!(
            "原告诉请被告{}支付惩罚性赔偿金{}元。",
            m.merchant.name,
            text::yuan(claimed)
        ),
        vec![],
        Payload::CivilClaimFiled(CivilClaimFiled {
            claimed_fen: claimed,
            claim_type: claim as i32,
        }),
    );
    let t = office_after_days(&mut u.rng, t0, 45, 120);
    let (outcome, awarded, summary) = if won {
        (
            JudgmentOutcome::Won,
            claimed,
            "判决被告支付原告惩罚性赔偿金。",
        )
    } else {
        (
            JudgmentOutcome::Lost,
            0,
            "原告明知商品存在问题仍大量购买，不属于为生活消费需要，判决驳回原告诉讼请求。",
        )
    };
    u.emit(
        &thread,
        t,
        summary.to_owned(),
        vec![],
        Payload::CivilClaimJudged(CivilClaimJudged {
            filed_event_id: filed.id,
            outcome: outcome as i32,
            awarded_fen: awarded,
        }),
    );
    t
}
