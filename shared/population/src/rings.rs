//! Groups of claimants (clauses 二(四) and 二(五)).
//!
//! A collusion ring (C4) is 3-10 claimants who, campaign after campaign, each buy at the same merchant and complain
//! within four days of each other (the default screen looks for 3+ within 7), giving the organiser's phone or address
//! as their contact, and sometimes one near-identical text.
//!
//! A hired cluster (C5) is 3-12 persons complaining for one agent, whose phone (and sometimes office address) is the
//! contact on every hired complaint, spread over many merchants: the cluster's complaints go round a list of up to 40
//! targets in time order, so no merchant hears from three of them within a week (that would look like C4).

use caselink_proto::v1::{ComplaintRejectionReason, MediationOutcome};
use rand::Rng;

use crate::abusive::{claimant_complaint, claimant_decision, target_merchant};
use crate::proceedings::{bought, normal_purchase, Decision, Payment};
use crate::text;
use crate::truth::{GroupKind, GroupTruth};
use crate::unit::{PersonIdx, Unit};

/// A ring campaign complaint is seen through: rejected as not for living consumption or as a duplicate, or mediation
/// ends without payment.
fn campaign_decision(u: &mut Unit<'_>) -> Decision {
    match u.rng.random_range(0..100) {
        0..35 => Decision::Reject(ComplaintRejectionReason::NotForLivingConsumption),
        35..50 => Decision::Reject(ComplaintRejectionReason::Duplicate),
        50..75 => Decision::Mediate {
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

/// Plays out a collusion ring's campaigns for `members` (already persons of the unit, labelled with C4).
pub(crate) fn collusion_campaigns(u: &mut Unit<'_>, members: &[PersonIdx]) -> GroupTruth {
    let world = u.world;
    let span = world.span;
    u.counters.rings += 1;
    let id = format!("RING-{:04}", u.counters.rings);
    let organiser = u.persons[members[0]].identity.person.clone();
    let share_phone = u.rng.random_bool(0.6);
    let share_address = !share_phone || u.rng.random_bool(0.4);
    let share_text = u.rng.random_bool(0.5);
    for m in members {
        u.persons[*m].ring = Some(id.clone());
    }
    let campaigns = u.rng.random_range(2..=5);
    let mut merchants = Vec::new();
    let mut texts = false;
    for _ in 0..campaigns {
        let merchant = target_merchant(u);
        let m = &world.merchants.all[merchant];
        merchants.push(m.merchant.uscc.clone());
        let day0 = span.start_for(&mut u.rng, 30);
        let template = normal_purchase(&mut u.rng, m, merchant, day0);
        let shared_text = text::ring_complaint(&bought(m, &template));
        for member in members {
            let day = day0 + u.rng.random_range(0..=3);
            let mut filer = u.own(*member);
            if share_phone {
                filer.subject.phone.clone_from(&organiser.phone);
            }
            if share_address {
                filer.subject.address.clone_from(&organiser.address);
            }
            let mut purchase = normal_purchase(&mut u.rng, m, merchant, day);
            purchase.goods = template.goods;
            purchase.problem = template.problem;
            let decision = campaign_decision(u);
            let matter = u.matter(*member);
            let summary = share_text.then(|| shared_text.clone());
            texts |= share_text;
            claimant_complaint(u, matter, &filer, day, purchase, decision, summary);
        }
    }
    GroupTruth {
        id,
        kind: GroupKind::Collusion,
        members: members
            .iter()
            .map(|m| u.persons[*m].identity.person.id_number.clone())
            .collect(),
        shared_phone: share_phone.then(|| organiser.phone.clone()),
        shared_address: share_address.then(|| organiser.address.clone()),
        shared_text: texts,
        merchants,
    }
}

/// Plays out a hired cluster's complaints for `members` (already persons of the unit, labelled with C5).
pub(crate) fn hired_complaints(u: &mut Unit<'_>, members: &[PersonIdx]) -> GroupTruth {
    let world = u.world;
    let span = world.span;
    u.counters.hired += 1;
    let id = format!("HIRED-{:04}", u.counters.hired);
    for m in members {
        u.persons[*m].ring = Some(id.clone());
    }
    let agent_phone = u.counters.identities.phone(&mut u.rng);
    let agent_county = u.persons[members[0]].identity.county;
    let agent_address = u.rng.random_bool(0.5).then(|| {
        u.counters
            .identities
            .address(&mut u.rng, &world.regions, agent_county)
    });
    // The agent's list of targets: distinct merchants.
    let mut targets: Vec<usize> = Vec::new();
    for _ in 0..200 {
        if targets.len() >= 40 {
            break;
        }
        let t = target_merchant(u);
        if !targets.contains(&t) {
            targets.push(t);
        }
    }
    let years = (span.days() / 365).max(1);
    let slice = span.days() / years;
    let mut jobs: Vec<(i64, PersonIdx)> = Vec::new();
    for member in members {
        for y in 0..years {
            let first = span.first + y * slice;
            for _ in 0..u.rng.random_range(3..=5) {
                let day = span.day_between(&mut u.rng, first, first + slice - 1);
                jobs.push((day, *member));
            }
        }
    }
    jobs.sort_unstable();
    for (k, (day, member)) in jobs.into_iter().enumerate() {
        let merchant = targets[k % targets.len()];
        let mut filer = u.own(member);
        filer.subject.phone.clone_from(&agent_phone);
        if let Some(a) = &agent_address {
            filer.subject.address.clone_from(a);
        }
        let purchase = normal_purchase(&mut u.rng, &world.merchants.all[merchant], merchant, day);
        let decision = claimant_decision(u);
        let matter = u.matter(member);
        claimant_complaint(u, matter, &filer, day, purchase, decision, None);
    }
    GroupTruth {
        id,
        kind: GroupKind::Hired,
        members: members
            .iter()
            .map(|m| u.persons[*m].identity.person.id_number.clone())
            .collect(),
        shared_phone: Some(agent_phone),
        shared_address: agent_address,
        shared_text: false,
        merchants: targets
            .iter()
            .map(|t| world.merchants.all[*t].merchant.uscc.clone())
            .collect(),
    }
}
