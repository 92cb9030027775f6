//! Police cases against a claimant (clause 三(一)) and the criminal judgments that follow.

use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{
    CaseClosed, CaseRegistered, CriminalJudged, ExtortionReported, LeadReceived, Offence,
    PoliceCaseOutcome, SecurityPenaltyImposed, SecurityPenaltyKind,
};
use rand::Rng;

use crate::calendar::office_after_days;
use crate::text;
use crate::unit::{FileKind, Filer, MatterIdx, Thread, Unit};

/// How a police case against a claimant ends (clause 三(一)).
#[derive(Debug, Clone, Copy)]
pub(crate) enum PoliceEnding {
    /// An administrative penalty under the Public Security Administration Punishments Law.
    SecurityPenalty(SecurityPenaltyKind),
    /// Transferred for prosecution and judged.
    Prosecution,
}

/// A police case for `offence` against the filer, opened at `t0` by the merchant's report (extortion) or by the
/// market bureau's referral (planting, swapping, forged dates, fabricated facts). Returns when it ended.
pub(crate) fn police_case(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    t0: i64,
    merchant: usize,
    offence: Offence,
    ending: PoliceEnding,
) -> i64 {
    let world = u.world;
    let m = &world.merchants.all[merchant];
    let case_ref = u.file_number(FileKind::Police, m.county, t0);
    let region = &world.regions.counties[m.county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &case_ref,
        merchant: Some(&m.merchant),
    };
    let county_name = &world.regions.counties[m.county].name;
    let (opened, referral) = if offence == Offence::Extortion {
        let demanded = u.rng.random_range(5..=50) * 100_000;
        let r = u.emit(
            &thread,
            t0,
            format!(
                "{}报案称，嫌疑人以向市场监管部门投诉举报、曝光为由索要{}元。",
                m.merchant.name,
                text::yuan(demanded)
            ),
            vec![],
            Payload::ExtortionReported(ExtortionReported {
                demanded_fen: demanded,
                detail: "以投诉举报相要挟，多次索要钱财".to_owned(),
            }),
        );
        (r, String::new())
    } else {
        let referral = format!(
            "{}市监移〔{}〕{}号",
            county_name,
            crate::calendar::year_of(t0),
            u.rng.random_range(1..200)
        );
        let r = u.emit(
            &thread,
            t0,
            format!(
                "收到{}移送的涉嫌违法犯罪线索。",
                world.regions.market_bureau(m.county)
            ),
            vec![],
            Payload::LeadReceived(LeadReceived {
                referral_id: referral.clone(),
                from_agency: world.regions.market_bureau(m.county),
                police_unit: format!("{county_name}公安局经侦大队"),
            }),
        );
        (r, referral)
    };
    let offence_name = match offence {
        Offence::Extortion => "敲诈勒索",
        Offence::Planting => "夹带商品骗取赔偿",
        Offence::Swapping => "掉包商品骗取赔偿",
        Offence::ForgingDates => "篡改商品生产日期骗取赔偿",
        Offence::FabricatingFacts => "捏造事实骗取赔偿",
        _ => "诈骗",
    };
    let registered_at = office_after_days(&mut u.rng, t0, 1, 3);
    let registered = u.emit(
        &thread,
        registered_at,
        format!("经审查，嫌疑人涉嫌{offence_name}，决定立案侦查。"),
        vec![opened.id],
        Payload::CaseRegistered(CaseRegistered {
            offence: offence as i32,
            referral_id: referral,
        }),
    );
    match ending {
        PoliceEnding::SecurityPenalty(kind) => {
            let t = office_after_days(&mut u.rng, registered_at, 5, 30);
            let (fine, days, what) = match kind {
                SecurityPenaltyKind::Detention => {
                    let d = u.rng.random_range(5..=15);
                    (0, d, format!("行政拘留{d}日"))
                }
                SecurityPenaltyKind::Fine => {
                    let f = u.rng.random_range(2..=10) * 10_000;
                    (f, 0, format!("罚款{}元", text::yuan(f)))
                }
                _ => (0, 0, "警告".to_owned()),
            };
            let penalty = u.emit(
                &thread,
                t,
                format!("依据《中华人民共和国治安管理处罚法》，对违法行为人{offence_name}的行为处以{what}。"),
                vec![registered.id],
                Payload::SecurityPenaltyImposed(SecurityPenaltyImposed {
                    offence: offence as i32,
                    penalty: kind as i32,
                    fine_fen: fine,
                    detention_days: days,
                }),
            );
            let closed = office_after_days(&mut u.rng, t, 1, 5);
            u.emit(
                &thread,
                closed,
                "已作出治安管理处罚，结案。".to_owned(),
                vec![penalty.id],
                Payload::CaseClosed(CaseClosed {
                    outcome: PoliceCaseOutcome::SecurityPenalty as i32,
                    offence: offence as i32,
                }),
            );
            closed
        }
        PoliceEnding::Prosecution => {
            let t = office_after_days(&mut u.rng, registered_at, 30, 90);
            let closed = u.emit(
                &thread,
                t,
                "侦查终结，移送人民检察院审查起诉。".to_owned(),
                vec![registered.id],
                Payload::CaseClosed(CaseClosed {
                    outcome: PoliceCaseOutcome::ProsecutionRecommended as i32,
                    offence: offence as i32,
                }),
            );
            let judged = office_after_days(&mut u.rng, t, 60, 150);
            let court_ref = u.file_number(FileKind::CriminalCase, m.county, judged);
            let court_thread = Thread {
                case_ref: &court_ref,
                ..thread
            };
            let months = u.rng.random_range(6..=36);
            u.emit(
                &court_thread,
                judged,
                format!("被告人以{offence_name}方式非法获取财物，判处有期徒刑{months}个月。"),
                vec![closed.id],
                Payload::CriminalJudged(CriminalJudged {
                    offence: offence as i32,
                    convicted: true,
                    sentence_months: months,
                }),
            );
            judged
        }
    }
}
