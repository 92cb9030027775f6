//! 12345 tickets: created and dispatched to the market bureau (a transfer), merged into the 12315 complaint they
//! duplicate, closed with the caller's satisfaction, or marked unfounded.

use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{
    Department, Satisfaction, TicketChannel, TicketClosed, TicketCreated, TicketDispatched,
    TicketMarkedUnfounded, TicketMerged,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::intake::Purchase;
use super::market::Filed;
use crate::calendar::{minutes_after, office_after_days, office_after_working_days};
use crate::merchants::CATEGORIES;
use crate::text;
use crate::unit::{FileKind, Filer, MatterIdx, Ref, Thread, Unit};

fn ticket_channel(rng: &mut ChaCha8Rng) -> TicketChannel {
    match rng.random_range(0..100) {
        0..70 => TicketChannel::Phone,
        70..80 => TicketChannel::App,
        80..92 => TicketChannel::Wechat,
        _ => TicketChannel::Web,
    }
}

/// An open 12345 ticket.
pub(crate) struct Ticket {
    pub(crate) created: Ref,
    pub(crate) case_ref: String,
    pub(crate) last: i64,
}

/// A consumer ticket created at `t0` about a purchase, dispatched to the market bureau of the merchant's county.
pub(crate) fn ticket_to_market(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    t0: i64,
    merchant: usize,
    purchase: Option<&Purchase>,
) -> Ticket {
    let world = u.world;
    let m = &world.merchants.all[merchant];
    let case_ref = u.file_number(FileKind::Ticket, filer.county, t0);
    let region = &world.regions.counties[filer.county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &case_ref,
        merchant: Some(&m.merchant),
    };
    let cat = &CATEGORIES[m.category];
    let (goods, problem) = match purchase {
        Some(p) => (
            cat.goods[p.goods % cat.goods.len()].0,
            cat.problems[p.problem % cat.problems.len()],
        ),
        None => (
            cat.goods[u.rng.random_range(0..cat.goods.len())].0,
            cat.problems[u.rng.random_range(0..cat.problems.len())],
        ),
    };
    let words = text::ticket(&mut u.rng, &m.merchant.name, goods, problem);
    let channel = ticket_channel(&mut u.rng);
    let created = u.emit(
        &thread,
        t0,
        String::new(),
        vec![],
        Payload::TicketCreated(TicketCreated {
            channel: channel as i32,
            category: "消费维权".to_owned(),
            text: words,
        }),
    );
    let dispatched = minutes_after(&mut u.rng, t0, 20, 240);
    let bureau = world.regions.market_bureau(m.county);
    u.emit(
        &thread,
        dispatched,
        format!("派发至{bureau}办理。"),
        vec![created.id.clone()],
        Payload::TicketDispatched(TicketDispatched {
            to_department: Department::Market as i32,
            to_unit: bureau,
        }),
    );
    Ticket {
        created,
        case_ref,
        last: dispatched,
    }
}

/// Closes a ticket after the department's answer at `after`.
pub(crate) fn close_ticket(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    ticket: &Ticket,
    after: i64,
    satisfied: bool,
) {
    let world = u.world;
    let region = &world.regions.counties[filer.county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &ticket.case_ref,
        merchant: None,
    };
    let satisfaction = if satisfied {
        if u.rng.random_bool(0.8) {
            Satisfaction::Satisfied
        } else {
            Satisfaction::BasicallySatisfied
        }
    } else if u.rng.random_bool(0.7) {
        Satisfaction::Unsatisfied
    } else {
        Satisfaction::NotRated
    };
    let t = office_after_days(&mut u.rng, after, 1, 5);
    u.emit(
        &thread,
        t,
        "承办单位已答复，回访后办结。".to_owned(),
        vec![ticket.created.id.clone()],
        Payload::TicketClosed(TicketClosed {
            satisfaction: satisfaction as i32,
        }),
    );
}

/// The same grievance phoned in to 12345 after a 12315 complaint: the centre merges the ticket into the complaint.
pub(crate) fn duplicate_ticket(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    t0: i64,
    complaint: &Filed,
) {
    let world = u.world;
    let m = &world.merchants.all[complaint.merchant];
    let case_ref = u.file_number(FileKind::Ticket, filer.county, t0);
    let region = &world.regions.counties[filer.county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &case_ref,
        merchant: Some(&m.merchant),
    };
    let cat = &CATEGORIES[m.category];
    let goods = cat.goods[u.rng.random_range(0..cat.goods.len())].0;
    let problem = cat.problems[u.rng.random_range(0..cat.problems.len())];
    let words = text::ticket(&mut u.rng, &m.merchant.name, goods, problem);
    let channel = ticket_channel(&mut u.rng);
    let created = u.emit(
        &thread,
        t0,
        String::new(),
        vec![],
        Payload::TicketCreated(TicketCreated {
            channel: channel as i32,
            category: "消费维权".to_owned(),
            text: words,
        }),
    );
    let merged_at = minutes_after(&mut u.rng, t0, 30, 600);
    let merged = u.emit(
        &thread,
        merged_at,
        format!("与12315投诉{}系同一诉求，合并办理。", complaint.case_ref),
        vec![created.id.clone()],
        Payload::TicketMerged(TicketMerged {
            duplicate_of_case_ref: complaint.case_ref.clone(),
            duplicate_of_event_id: complaint.received.id.clone(),
        }),
    );
    if u.rng.random_bool(0.6) {
        let t = office_after_days(&mut u.rng, merged_at.max(complaint.last), 1, 5);
        u.emit(
            &thread,
            t,
            "已并入12315投诉办理，办结。".to_owned(),
            vec![created.id.clone(), merged.id],
            Payload::TicketClosed(TicketClosed {
                satisfaction: Satisfaction::NotRated as i32,
            }),
        );
    }
}

/// A ticket the centre finds untrue (不属实件) after the department's check.
pub(crate) fn unfounded_ticket(
    u: &mut Unit<'_>,
    matter: MatterIdx,
    filer: &Filer,
    t0: i64,
    merchant: usize,
) {
    let ticket = ticket_to_market(u, matter, filer, t0, merchant, None);
    let world = u.world;
    let region = &world.regions.counties[filer.county].code;
    let thread = Thread {
        matter,
        filer,
        region,
        case_ref: &ticket.case_ref,
        merchant: None,
    };
    let t = office_after_working_days(&mut u.rng, ticket.last, 3, 10);
    u.emit(
        &thread,
        t,
        "经承办单位现场核查，反映情况不属实。".to_owned(),
        vec![ticket.created.id.clone()],
        Payload::TicketMarkedUnfounded(TicketMarkedUnfounded {
            reason: "经市场监管部门现场核查，所反映商品问题不存在，来电人提供的照片系他处拍摄"
                .to_owned(),
        }),
    );
}
