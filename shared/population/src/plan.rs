//! The shape of the population, decided before any record is written: how many abusive claimants, which of them form
//! collusion rings and hired clusters, which criteria each gets, how many persons' ID numbers they borrow, and where
//! their units fall among the ordinary persons' (spread evenly, so every stretch of the files looks alike).
//!
//! Memory is proportional to the number of abusers (a small share), never to the population.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::abusive::{victims_of, SOLO_WEIGHTS};
use crate::criteria::{Criteria, Criterion};
use crate::truth::GroupKind;

/// Share of abusive claimants in collusion rings, and in hired clusters.
const RING_SHARE: f64 = 0.2;
const HIRED_SHARE: f64 = 0.12;
/// Share of abusive claimants planted with volume (C6).
const VOLUME_SHARE: f64 = 0.7;

/// One abusive claimant to be.
#[derive(Debug, Clone)]
pub(crate) struct AbuserPlan {
    pub(crate) criteria: Criteria,
    /// Ordinary persons whose ID numbers they file under (C3).
    pub(crate) victims: u8,
}

/// One unit of abusers.
#[derive(Debug, Clone)]
pub(crate) enum AbuserUnit {
    Solo(AbuserPlan),
    Group(GroupKind, Vec<AbuserPlan>),
}

/// The population's shape.
pub(crate) struct Plan {
    /// Units in all: ordinary persons on their own plus abuser units.
    pub(crate) units: u64,
    /// Abuser units with the unit number they come at, ascending.
    pub(crate) abuser_units: Vec<(u64, AbuserUnit)>,
    pub(crate) abusers: u64,
}

/// Splits `total` into groups of 3 to 10 (none if fewer than 3).
fn group_sizes(rng: &mut ChaCha8Rng, total: usize, max: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut left = total;
    while left >= 3 {
        let size = if left <= max.min(5) {
            left
        } else {
            // Small groups are commoner.
            let u: f64 = rng.random();
            let hi = max.min(left - 3);
            3 + ((u * u) * (hi - 2) as f64) as usize
        };
        sizes.push(size.min(left));
        left -= size.min(left);
    }
    sizes
}

/// 1-4 criteria in all.
fn criteria_count(rng: &mut ChaCha8Rng) -> u32 {
    match rng.random_range(0..100) {
        0..30 => 1,
        30..65 => 2,
        65..90 => 3,
        _ => 4,
    }
}

fn abuser(rng: &mut ChaCha8Rng, group: Option<GroupKind>, victims_left: &mut usize) -> AbuserPlan {
    let mut criteria = Criteria::default();
    match group {
        Some(GroupKind::Collusion) => criteria.add(Criterion::C4),
        Some(GroupKind::Hired) => criteria.add(Criterion::C5),
        None => {}
    }
    if rng.random_bool(VOLUME_SHARE) {
        criteria.add(Criterion::C6);
    }
    let want = criteria_count(rng);
    while criteria.len() < want {
        let open: Vec<(Criterion, u32)> = SOLO_WEIGHTS
            .iter()
            .copied()
            .filter(|(c, _)| !criteria.has(*c) && (*c != Criterion::C3 || *victims_left > 0))
            .collect();
        let total: u32 = open.iter().map(|(_, w)| w).sum();
        if total == 0 {
            break;
        }
        let mut n = rng.random_range(0..total);
        for (c, w) in open {
            if n < w {
                criteria.add(c);
                break;
            }
            n -= w;
        }
    }
    let victims = if criteria.has(Criterion::C3) {
        let v = victims_of(rng).min(u8::try_from(*victims_left).unwrap_or(u8::MAX));
        *victims_left -= usize::from(v);
        v
    } else {
        0
    };
    AbuserPlan { criteria, victims }
}

impl Plan {
    pub(crate) fn new(rng: &mut ChaCha8Rng, people: usize, abuser_share: f64) -> Plan {
        let abusers = ((people as f64 * abuser_share).round() as usize).min(people);
        // Victims of false-name filing are ordinary persons of the population; keep most persons on their own.
        let mut victims_left = (people - abusers) / 4;
        let ring_members = if abusers >= 6 {
            ((abusers as f64 * RING_SHARE).round() as usize).max(3)
        } else {
            0
        };
        let hired_members = if abusers >= 10 {
            ((abusers as f64 * HIRED_SHARE).round() as usize).max(3)
        } else {
            0
        };
        let mut units = Vec::new();
        let mut placed = 0;
        for size in group_sizes(rng, ring_members, 10) {
            let members = (0..size)
                .map(|_| abuser(rng, Some(GroupKind::Collusion), &mut victims_left))
                .collect();
            units.push(AbuserUnit::Group(GroupKind::Collusion, members));
            placed += size;
        }
        for size in group_sizes(rng, hired_members, 12) {
            let members = (0..size)
                .map(|_| abuser(rng, Some(GroupKind::Hired), &mut victims_left))
                .collect();
            units.push(AbuserUnit::Group(GroupKind::Hired, members));
            placed += size;
        }
        for _ in placed..abusers {
            units.push(AbuserUnit::Solo(abuser(rng, None, &mut victims_left)));
        }
        // Shuffle groups among solos so that early and late parts of the files look alike.
        for i in (1..units.len()).rev() {
            let j = rng.random_range(0..=i);
            units.swap(i, j);
        }
        let victims: usize = units
            .iter()
            .map(|unit| match unit {
                AbuserUnit::Solo(a) => usize::from(a.victims),
                AbuserUnit::Group(_, m) => m.iter().map(|a| usize::from(a.victims)).sum(),
            })
            .sum();
        let singles = (people - abusers - victims) as u64;
        let total = singles + units.len() as u64;
        let n = units.len() as u64;
        let abuser_units = units
            .into_iter()
            .enumerate()
            .map(|(j, unit)| ((2 * j as u64 + 1) * total / (2 * n), unit))
            .collect();
        Plan {
            units: total,
            abuser_units,
            abusers: abusers as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn plans_exactly_the_persons_asked_for() {
        for (people, share) in [
            (1_000, 0.01),
            (2_000, 0.02),
            (10, 0.5),
            (50_000, 0.01),
            (3, 0.0),
        ] {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let plan = Plan::new(&mut rng, people, share);
            let mut persons = plan.units as usize;
            let mut abusers = 0;
            for (_, unit) in &plan.abuser_units {
                persons -= 1;
                let members = match unit {
                    AbuserUnit::Solo(a) => vec![a.clone()],
                    AbuserUnit::Group(_, m) => {
                        assert!((3..=12).contains(&m.len()), "{}", m.len());
                        m.clone()
                    }
                };
                for a in members {
                    abusers += 1;
                    persons += 1 + usize::from(a.victims);
                    assert!((1..=4).contains(&a.criteria.len()));
                    assert_eq!(a.criteria.has(Criterion::C3), a.victims > 0);
                }
            }
            assert_eq!(persons, people, "{people} {share}");
            assert_eq!(abusers as u64, plan.abusers);
            let positions: Vec<u64> = plan.abuser_units.iter().map(|(p, _)| *p).collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]));
            assert!(positions.iter().all(|p| *p < plan.units));
        }
    }
}
