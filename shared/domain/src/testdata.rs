//! Valid events of every department, for the unit tests of this crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::*;

use crate::clock::timestamp_from_system_time;
use crate::event_id::derive_event_id;

/// A valid ID number (the GB 11643 standard's own example).
pub(crate) const ID: &str = "11010519491231002X";

/// 2026-11-23T10:00:00+08:00.
pub(crate) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_399_200)
}

pub(crate) fn ts(t: SystemTime) -> Option<caselink_proto::Timestamp> {
    Some(timestamp_from_system_time(t))
}

pub(crate) fn uuid(n: u128) -> String {
    uuid::Uuid::from_u128(0x0190_abcd_ef00_7000_8000_0000_0000_0000 + n).to_string()
}

pub(crate) fn person() -> Person {
    Person {
        id_number: ID.into(),
        name: "张三".into(),
        phone: "+86 138-1234-5678".into(),
        address: "北京市朝阳区建国路 1 号".into(),
        ..Person::default()
    }
}

pub(crate) fn merchant() -> Merchant {
    Merchant {
        name: "某某食品商行".into(),
        uscc: "91350100M000100Y43".into(),
        category: GoodsCategory::Food as i32,
    }
}

/// A payload of the department with every field filled with something valid.
pub(crate) fn rich_payload(d: Department) -> Payload {
    match d {
        Department::Unspecified | Department::Market => {
            Payload::ComplaintReceived(ComplaintReceived {
                channel: Channel::Channel12315Phone as i32,
                amount_fen: 12_800,
                quantity: 20,
                claim_type: ClaimType::Punitive10x as i32,
                claimed_fen: 128_000,
                goods: "进口奶粉".into(),
                purchased_at: ts(now() - Duration::from_secs(3 * 86_400)),
            })
        }
        Department::Police => Payload::CaseRegistered(CaseRegistered {
            offence: Offence::Extortion as i32,
            referral_id: "R-2026-0001".into(),
        }),
        Department::Justice => Payload::ReconsiderationRejected(ReconsiderationRejected {
            filed_event_id: uuid(7),
            reason: ReconsiderationRejectionReason::NoLegalInterest as i32,
            detail: "申请人与被申请行为无利害关系".into(),
        }),
        Department::Court => Payload::CivilClaimJudged(CivilClaimJudged {
            filed_event_id: uuid(8),
            outcome: JudgmentOutcome::Lost as i32,
            awarded_fen: 0,
        }),
        Department::Petition => Payload::PetitionReceived(PetitionReceived {
            matter: "对举报处理结果不满".into(),
            target_agency: "某区市场监督管理局".into(),
            form: PetitionForm::Visit as i32,
            matter_type: MatterType::Report as i32,
            matter_ref: "JB-2026-17".into(),
        }),
        Department::Hotline => Payload::TicketCreated(TicketCreated {
            channel: TicketChannel::Phone as i32,
            category: "食品安全".into(),
            text: "来电人反映某商行销售过期奶粉，要求十倍赔偿。".into(),
        }),
    }
}

/// A valid event of department `d` carrying `payload`, occurred an hour before [`now`].
pub(crate) fn event_with(d: Department, payload: Payload) -> CaseEvent {
    CaseEvent {
        event_id: derive_event_id(d, "SRC-2026-0001").to_string(),
        source_id: "SRC-2026-0001".into(),
        department: d as i32,
        occurred_at: ts(now() - Duration::from_secs(3600)),
        recorded_at: None,
        region_code: "330106".into(),
        case_ref: "（2026）西市监投字第12号".into(),
        subject: Some(person()),
        merchant: Some(merchant()),
        summary: "消费者投诉购买的奶粉已过期。".into(),
        related_event_ids: vec![uuid(1), uuid(2)],
        corrects_event_id: String::new(),
        payload: Some(payload),
    }
}

pub(crate) fn event(d: Department) -> CaseEvent {
    event_with(d, rich_payload(d))
}
