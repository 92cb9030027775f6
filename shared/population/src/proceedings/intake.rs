//! How a complaint or report reaches the market bureau (the regional channel mix) and what was bought: normal
//! purchases, bulk purchases, claims.

use caselink_proto::v1::{Channel, ClaimType};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::calendar::waking;
use crate::merchants::{MerchantInfo, CATEGORIES};
use crate::text;

/// How a complaint or report reaches the market bureau.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intake {
    /// A complaint through a channel other than a 12345 transfer.
    Complaint(Channel),
    /// A report (举报) through 12315.
    Report(Channel),
    /// A 12345 ticket transferred to the market bureau, which records it as a complaint.
    Transfer,
}

/// The Kunming Wuhua 2018 mix (domain.md section 8), per 10,000 complaints and reports: 12315 complaints 58.1%,
/// 12315 reports 8.86%, 12345 transfers 11.99%, 12365 0.85%, 12331 1.16%, national internet platform 17.3%, letters
/// and visits the rest.
const MIX: [(u32, Intake); 9] = [
    (3_200, Intake::Complaint(Channel::Channel12315Phone)),
    (2_610, Intake::Complaint(Channel::Channel12315Web)),
    (886, Intake::Report(Channel::Channel12315Web)),
    (1_199, Intake::Transfer),
    (85, Intake::Complaint(Channel::Channel12365)),
    (116, Intake::Complaint(Channel::Channel12331)),
    (1_730, Intake::Complaint(Channel::NationalPlatform)),
    (104, Intake::Complaint(Channel::Letter)),
    (70, Intake::Complaint(Channel::Visit)),
];

/// A complaint or report, by the regional mix.
pub(crate) fn draw_intake(rng: &mut ChaCha8Rng) -> Intake {
    let mut n = rng.random_range(0..10_000u32);
    for (w, intake) in MIX {
        if n < w {
            return if let Intake::Report(_) = intake {
                // Reports come by phone about as often as online.
                Intake::Report(if rng.random_bool(0.45) {
                    Channel::Channel12315Phone
                } else {
                    Channel::Channel12315Web
                })
            } else {
                intake
            };
        }
        n -= w;
    }
    Intake::Complaint(Channel::Channel12315Phone)
}

/// A complaint (never a report), by the regional mix.
pub(crate) fn draw_complaint_intake(rng: &mut ChaCha8Rng) -> Intake {
    loop {
        let i = draw_intake(rng);
        if !matches!(i, Intake::Report(_)) {
            return i;
        }
    }
}

/// A report channel.
pub(crate) fn report_channel(rng: &mut ChaCha8Rng) -> Channel {
    if rng.random_bool(0.45) {
        Channel::Channel12315Phone
    } else {
        Channel::Channel12315Web
    }
}

/// What was bought, where, when.
#[derive(Debug, Clone)]
pub(crate) struct Purchase {
    pub(crate) merchant: usize,
    /// Index into the category's goods.
    pub(crate) goods: usize,
    pub(crate) quantity: i32,
    pub(crate) amount_fen: i64,
    pub(crate) purchased_at: i64,
    /// Index into the category's problems.
    pub(crate) problem: usize,
}

/// A purchase within normal habits: at most 6 units, at most 5 times the category's usual amount (far from rule C2's
/// 10 units and 20 times the median).
pub(crate) fn normal_purchase(
    rng: &mut ChaCha8Rng,
    m: &MerchantInfo,
    merchant: usize,
    day: i64,
) -> Purchase {
    let c = &CATEGORIES[m.category];
    // Skewed to the right around the median, within 0.2x..5x. Only + and x (correctly rounded everywhere): no libm
    // function whose last bit could differ between machines and break byte-identical output.
    let z: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
    let root = 1.0 + 0.5 * z;
    let factor = (root * root).clamp(0.2, 5.0);
    let amount = ((c.median_fen as f64) * factor) as i64;
    let amount = (amount / 10).max(50) * 10;
    let quantity = if c.food_law && amount < 3 * c.median_fen {
        rng.random_range(1..=6)
    } else if amount < c.median_fen {
        rng.random_range(1..=3)
    } else {
        1
    };
    Purchase {
        merchant,
        goods: rng.random_range(0..c.goods.len()),
        quantity,
        amount_fen: amount,
        purchased_at: {
            let before = rng.random_range(0..=20);
            waking(rng, day - before)
        },
        problem: rng.random_range(0..c.problems.len()),
    }
}

/// A bulk purchase (clause 二(二)): over 20 units of a food item, or over 30 times the category's usual amount.
pub(crate) fn bulk_purchase(
    rng: &mut ChaCha8Rng,
    m: &MerchantInfo,
    merchant: usize,
    day: i64,
) -> Purchase {
    let c = &CATEGORIES[m.category];
    let (quantity, amount) = if c.food_law {
        let quantity = rng.random_range(20..=300);
        let unit = (c.median_fen as f64 * rng.random_range(0.4..1.5)) as i64;
        (quantity, unit * i64::from(quantity))
    } else {
        let quantity = rng.random_range(30..=100);
        let unit = (c.median_fen as f64 * rng.random_range(1.0..1.6)) as i64;
        (quantity, unit * i64::from(quantity))
    };
    Purchase {
        merchant,
        goods: rng.random_range(0..c.goods.len()),
        quantity,
        amount_fen: (amount / 10).max(50) * 10,
        purchased_at: {
            let before = rng.random_range(0..=10);
            waking(rng, day - before)
        },
        problem: rng.random_range(0..c.problems.len()),
    }
}

/// What is claimed for a purchase: punitive claims name their statutory minimum (1,000 yuan under the Food Safety
/// Law, 500 under the Consumer Rights Protection Law).
pub(crate) fn claimed_fen(claim: ClaimType, amount: i64) -> i64 {
    match claim {
        ClaimType::Punitive10x => (amount * 10).max(100_000),
        ClaimType::Punitive3x => (amount * 3).max(50_000),
        ClaimType::Compensation => amount + amount / 2,
        _ => amount,
    }
}

/// The punitive claim a purchase allows: ten times the price for food, three times otherwise.
pub(crate) fn punitive_claim(m: &MerchantInfo) -> ClaimType {
    if CATEGORIES[m.category].food_law {
        ClaimType::Punitive10x
    } else {
        ClaimType::Punitive3x
    }
}

/// The words a complaint's texts use about its purchase.
pub(crate) fn bought<'a>(m: &'a MerchantInfo, p: &Purchase) -> text::Bought<'a> {
    let c = &CATEGORIES[m.category];
    let (goods, unit) = c.goods[p.goods % c.goods.len()];
    text::Bought {
        merchant: &m.merchant.name,
        goods,
        unit,
        quantity: p.quantity,
        amount_fen: p.amount_fen,
        purchased_at: p.purchased_at,
        problem: c.problems[p.problem % c.problems.len()],
    }
}
