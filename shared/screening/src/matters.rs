//! Matters: one grievance filed on several platforms (12315, 12345, the petition office) is one matter, counted once
//! in every figure.
//!
//! The references that tie records of one grievance together, as the departments record them: a 12345 transfer's
//! complaint names the ticket in `related_event_ids`; `ticket.merged` names the complaint it duplicates
//! (`duplicate_of_event_id`, `duplicate_of_case_ref`) and the ticket by its own file number and `related_event_ids`;
//! an intake is known by its event id and its file number. Matters are the connected components over those
//! references, computed from the facts held (so arrival order does not matter).

use std::collections::BTreeMap;

use crate::state::{Intake, MatterLink};

/// One grievance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matter {
    /// When its first intake happened.
    pub(crate) first_us: i64,
    /// The event id of its first intake.
    pub(crate) first_event_id: String,
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller index wins: deterministic roots.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi] = lo;
        }
    }
}

/// The matters the intakes form, ordered by first occurrence.
pub(crate) fn matters(intakes: &[Intake], links: &[MatterLink]) -> Vec<Matter> {
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    fn intern<'a>(s: &'a str, ids: &mut BTreeMap<&'a str, usize>) -> Option<usize> {
        if s.is_empty() {
            return None;
        }
        let n = ids.len();
        Some(*ids.entry(s).or_insert(n))
    }
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut roots: Vec<usize> = Vec::with_capacity(intakes.len());
    for i in intakes {
        let a = intern(i.event_id.as_str(), &mut ids).unwrap_or(usize::MAX);
        if let Some(b) = intern(i.case_ref.as_str(), &mut ids) {
            pairs.push((a, b));
        }
        roots.push(a);
    }
    for l in links {
        if let (Some(a), Some(b)) = (intern(&l.a, &mut ids), intern(&l.b, &mut ids)) {
            pairs.push((a, b));
        }
    }
    let mut uf = UnionFind {
        parent: (0..ids.len()).collect(),
    };
    for (a, b) in pairs {
        if a != usize::MAX {
            uf.union(a, b);
        }
    }
    let mut by_root: BTreeMap<usize, Matter> = BTreeMap::new();
    for (i, a) in intakes.iter().zip(roots) {
        if a == usize::MAX {
            continue;
        }
        let root = uf.find(a);
        let m = by_root.entry(root).or_insert_with(|| Matter {
            first_us: i.occurred_us,
            first_event_id: i.event_id.clone(),
        });
        if (i.occurred_us, &i.event_id) < (m.first_us, &m.first_event_id) {
            m.first_us = i.occurred_us;
            m.first_event_id.clone_from(&i.event_id);
        }
    }
    let mut out: Vec<Matter> = by_root.into_values().collect();
    out.sort_by(|a, b| (a.first_us, &a.first_event_id).cmp(&(b.first_us, &b.first_event_id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::IntakeKind;

    fn intake(id: &str, at: i64, kind: IntakeKind, case_ref: &str) -> Intake {
        Intake {
            event_id: id.to_owned(),
            occurred_us: at,
            kind: kind as i32,
            case_ref: case_ref.to_owned(),
            ..Intake::default()
        }
    }

    fn link(a: &str, b: &str) -> MatterLink {
        MatterLink {
            a: a.to_owned(),
            b: b.to_owned(),
            occurred_us: 0,
        }
    }

    #[test]
    fn transfer_and_merged_ticket_are_one_matter_each() {
        let intakes = vec![
            intake("t1", 1, IntakeKind::Ticket, "12345-1"),
            intake("c1", 2, IntakeKind::Complaint, "MK-1"),
            intake("c2", 3, IntakeKind::Complaint, "MK-2"),
            intake("t2", 4, IntakeKind::Ticket, "12345-2"),
            intake("r1", 5, IntakeKind::Report, "MJ-1"),
        ];
        // c1 is the transfer of t1; t2 was merged into c2 (by file number only).
        let links = vec![link("c1", "t1"), link("12345-2", "MK-2")];
        let ms = matters(&intakes, &links);
        assert_eq!(ms.len(), 3);
        assert_eq!(ms[0].first_event_id, "t1");
        assert_eq!(ms[1].first_event_id, "c2");
        // Any order of facts gives the same matters.
        let mut rev = intakes.clone();
        rev.reverse();
        assert_eq!(matters(&rev, &links), ms);
    }
}
