//! Matters: one grievance filed on several platforms (12315, 12345, the petition office) is one matter, counted once
//! in every figure.
//!
//! The references that tie records of one grievance together, as the departments record them: a 12345 transfer's
//! complaint names the ticket in `related_event_ids`; `ticket.merged` names the complaint it duplicates
//! (`duplicate_of_event_id`, `duplicate_of_case_ref`) and the ticket by its own file number and `related_event_ids`;
//! an intake is known by its event id and its file number. Matters are the connected components over those
//! references, computed from the facts held (so arrival order does not matter).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use crate::ids::ref_of_id;
use crate::state::{Intake, MatterLink};

/// One grievance.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matter {
    /// When its first intake happened.
    pub(crate) first_us: i64,
    /// The event id of its first intake.
    pub(crate) first_event_id: Vec<u8>,
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

/// Marks each intake that is the first (by occurrence, then event id) of its matter: [`Intake::leads`]. The screener
/// keeps these marks up to date incrementally (a new intake sharing no reference with anything held leads a matter of
/// its own) and calls this whenever references may join or split matters.
pub(crate) fn mark_leaders(intakes: &mut [Intake], links: &[MatterLink]) {
    let firsts: Vec<usize> = {
        let roots = components(intakes, links);
        let mut first: BTreeMap<usize, usize> = BTreeMap::new();
        for (k, root) in roots.iter().enumerate() {
            let Some(root) = *root else { continue };
            let i = &intakes[k];
            let f = first.entry(root).or_insert(k);
            let cur = &intakes[*f];
            if (i.occurred_us, &i.event_id) < (cur.occurred_us, &cur.event_id) {
                *f = k;
            }
        }
        first.into_values().collect()
    };
    for i in intakes.iter_mut() {
        i.leads = false;
    }
    for k in firsts {
        intakes[k].leads = true;
    }
}

/// Re-marks the leaders of the matters that hold any of `seeds` (references: event ids or file numbers), after
/// intakes or links joined them. Matters not reachable from the seeds are untouched (they cannot have changed). Walks
/// the references outward from the seeds: one pass over the facts per reference of the joined matters.
pub(crate) fn mark_leaders_from(intakes: &mut [Intake], links: &[MatterLink], seeds: &[&[u8]]) {
    let add = |refs: &mut Vec<Vec<u8>>, r: &[u8]| {
        if !r.is_empty() && !refs.iter().any(|x| x == r) {
            refs.push(r.to_owned());
        }
    };
    // One walk per matter: the references already reached by an earlier seed's walk are skipped.
    let mut reached: Vec<Vec<u8>> = Vec::new();
    for seed in seeds {
        if seed.is_empty() || reached.iter().any(|x| x == seed) {
            continue;
        }
        let mut refs: Vec<Vec<u8>> = vec![(*seed).to_owned()];
        let mut member = vec![false; intakes.len()];
        let mut used = vec![false; links.len()];
        let mut k = 0;
        while k < refs.len() {
            let r = refs[k].clone();
            for (x, i) in intakes.iter().enumerate() {
                if !member[x]
                    && !i.event_id.is_empty()
                    && (same(&ref_of_id(&i.event_id), &r) || same(&i.case_ref, &r))
                {
                    member[x] = true;
                    add(&mut refs, &ref_of_id(&i.event_id));
                    add(&mut refs, &i.case_ref);
                }
            }
            for (x, l) in links.iter().enumerate() {
                if !used[x]
                    && !l.a.is_empty()
                    && !l.b.is_empty()
                    && (same(&l.a, &r) || same(&l.b, &r))
                {
                    used[x] = true;
                    add(&mut refs, &l.a);
                    add(&mut refs, &l.b);
                }
            }
            k += 1;
        }
        let mut first: Option<usize> = None;
        for (x, i) in intakes.iter().enumerate() {
            if member[x]
                && first.is_none_or(|f| {
                    (i.occurred_us, &i.event_id) < (intakes[f].occurred_us, &intakes[f].event_id)
                })
            {
                first = Some(x);
            }
        }
        for (x, i) in intakes.iter_mut().enumerate() {
            if member[x] {
                i.leads = Some(x) == first;
            }
        }
        reached.extend(refs);
    }
}

/// Equality of ids or references, quick to refuse: they mostly differ in their first bytes.
#[inline]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if let (Some(x), Some(y)) = (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        if x != y {
            return false;
        }
    }
    a == b
}

/// The component (root) of each intake; `None` for an intake without an event id.
fn components(intakes: &[Intake], links: &[MatterLink]) -> Vec<Option<usize>> {
    let mut ids: HashMap<Cow<'_, [u8]>, usize> = HashMap::with_capacity(intakes.len() * 2);
    fn intern<'a>(s: Cow<'a, [u8]>, ids: &mut HashMap<Cow<'a, [u8]>, usize>) -> Option<usize> {
        if s.is_empty() {
            return None;
        }
        let n = ids.len();
        Some(*ids.entry(s).or_insert(n))
    }
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut roots: Vec<usize> = Vec::with_capacity(intakes.len());
    for i in intakes {
        let a = intern(ref_of_id(&i.event_id), &mut ids).unwrap_or(usize::MAX);
        if let Some(b) = intern(Cow::Borrowed(&i.case_ref), &mut ids) {
            pairs.push((a, b));
        }
        roots.push(a);
    }
    for l in links {
        if let (Some(a), Some(b)) = (
            intern(Cow::Borrowed(&l.a), &mut ids),
            intern(Cow::Borrowed(&l.b), &mut ids),
        ) {
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
    roots
        .into_iter()
        .map(|a| (a != usize::MAX).then(|| uf.find(a)))
        .collect()
}

/// The matters the intakes form, ordered by first occurrence.
#[cfg(test)]
pub(crate) fn matters(intakes: &[Intake], links: &[MatterLink]) -> Vec<Matter> {
    let mut ids: BTreeMap<&[u8], usize> = BTreeMap::new();
    fn intern<'a>(s: &'a [u8], ids: &mut BTreeMap<&'a [u8], usize>) -> Option<usize> {
        if s.is_empty() {
            return None;
        }
        let n = ids.len();
        Some(*ids.entry(s).or_insert(n))
    }
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut roots: Vec<usize> = Vec::with_capacity(intakes.len());
    for i in intakes {
        let a = intern(&i.event_id, &mut ids).unwrap_or(usize::MAX);
        if let Some(b) = intern(&i.case_ref, &mut ids) {
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
            event_id: crate::ids::id_bytes(id),
            occurred_us: at,
            kind: kind as i32,
            case_ref: crate::ids::ref_bytes(case_ref),
            ..Intake::default()
        }
    }

    fn link(a: &str, b: &str) -> MatterLink {
        MatterLink {
            a: crate::ids::ref_bytes(a),
            b: crate::ids::ref_bytes(b),
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
        assert_eq!(ms[0].first_event_id, b"t1");
        assert_eq!(ms[1].first_event_id, b"c2");
        // Any order of facts gives the same matters.
        let mut rev = intakes.clone();
        rev.reverse();
        assert_eq!(matters(&rev, &links), ms);
        // The leaders are the matters' first intakes, however they were worked out.
        let mut all = intakes.clone();
        mark_leaders(&mut all, &links);
        let leaders: Vec<&[u8]> = all
            .iter()
            .filter(|i| i.leads)
            .map(|i| i.event_id.as_slice())
            .collect();
        assert_eq!(leaders, [b"t1".as_slice(), b"c2", b"r1"]);
        let mut step = intakes.clone();
        for i in step.iter_mut() {
            i.leads = true;
        }
        mark_leaders_from(&mut step, &links, &[b"c1", b"12345-2"]);
        assert_eq!(step, all);
    }
}
