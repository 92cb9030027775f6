//! The cross-person rules, decided over what several persons share: a phone, an address, or a near-identical
//! complaint text on one merchant. Each shared attribute is a relation ([`RelationState`]): who uses it and their
//! intake records with it. Whenever a record joins a relation (or a user's own records change who owns it), the
//! relation is evaluated again from what it holds, and its findings replace its earlier ones in every user's state.
//!
//! - 二(三) false name (C3): the contact is bound to one person (the owner: it is on nearly all of their own records,
//!   and clearly more so than for anyone else); records under other ID numbers carrying it are filings in another's
//!   name, unless they are a collusion campaign (another user filed on the same merchant within the C4 window: a ring
//!   organiser's phone on members' campaign complaints is collusion, not a false name). The flag goes to the owner.
//!   An appeal rejected for false identity carrying the owner's contact counts as enough on its own.
//! - 二(四) collusion (C4): at least `min_persons` distinct users filed on the same merchant within `window_days`.
//! - 二(五) hired (C5): a contact owned by none of its users (an agent's) and a minority contact of at least
//!   `min_persons` of them, on their records across at least `min_merchants` merchants, outside collusion campaigns.

use std::collections::{BTreeMap, BTreeSet};

use crate::criteria::{days, figure};
use crate::engine::RelationKey;
use crate::rules::{RuleCode, RuleSet};
use crate::state::{Figure, LinkReason, RelationState};

/// How much of a user's own intakes carry the contact: (intakes with it, intakes with any contact of its kind).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Share {
    pub(crate) with: u64,
    pub(crate) total: u64,
}

/// Why two users are linked, and some evidence (event ids of the relation's uses).
pub(crate) type PairLink<'r> = (LinkReason, Vec<&'r [u8]>);

/// Evidence kept per link: the greatest event ids (bytewise).
pub(crate) const LINK_EVIDENCE: usize = 10;

/// What a relation found about one user for one rule: the window, the figures, and the evidence as indices into the
/// relation's uses, ascending (the uses are sorted by (occurred, event id), so this is the evidence's order).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Found {
    pub(crate) from_us: i64,
    pub(crate) to_us: i64,
    pub(crate) figures: Vec<Figure>,
    pub(crate) uses: Vec<u32>,
}

/// What one evaluation of a relation found.
#[derive(Debug, Default)]
pub(crate) struct Outcome<'r> {
    /// (user index, rule, finding).
    pub(crate) findings: Vec<(usize, RuleCode, Found)>,
    /// (lower user index, higher user index) → reason and some evidence (event ids of the relation's uses).
    pub(crate) links: BTreeMap<(usize, usize), PairLink<'r>>,
}

/// The owner of a contact: the user it is bound to. Each user scores (intakes with the contact) × (their share of
/// own intakes carrying it): the owner has the top score, at least `owner_min_share_pct` of their own intakes carry
/// it, and their score leads the next user's by `owner_lead_pct`. A person whose ID number was borrowed for a few
/// filings scores low (few records, and their own contact on the rest); a ring member lending a phone for campaigns
/// too; an agent's phone has no owner among the hired (similar scores, none with a lead).
pub(crate) fn owner(rules: &RuleSet, shares: &[Share]) -> Option<usize> {
    let r = &rules.rules.c3;
    let mut scored: Vec<(u128, u64, usize)> = shares
        .iter()
        .enumerate()
        .filter(|(_, s)| s.total > 0)
        .map(|(i, s)| {
            let with = s.with.min(s.total);
            let score = u128::from(with) * u128::from(with) * 1_000 / u128::from(s.total);
            (score, with * 100 / s.total, i)
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
    let (top, pct, who) = *scored.first()?;
    let second = scored.get(1).map_or(0, |s| s.0);
    (pct >= u64::from(r.owner_min_share_pct)
        && top * 100 >= second * u128::from(r.owner_lead_pct)
        && top > second)
        .then_some(who)
}

fn link<'r>(out: &mut Outcome<'r>, a: usize, b: usize, reason: LinkReason, evidence: &[&'r [u8]]) {
    if a == b {
        return;
    }
    let k = (a.min(b), a.max(b));
    let e = out.links.entry(k).or_insert((reason, Vec::new()));
    if reason > e.0 {
        e.0 = reason;
    }
    e.1.extend_from_slice(evidence);
    // Only the greatest `LINK_EVIDENCE` ids are kept in the end, and those of a union are among those of its parts:
    // cutting down early keeps the same ones and bounds the work on a large ring.
    if e.1.len() > 8 * LINK_EVIDENCE {
        greatest(&mut e.1);
    }
}

/// Keeps the greatest `LINK_EVIDENCE` distinct ids, ascending. One pass that keeps the greatest so far in order:
/// most ids of a long list are not above the least of them and cost one comparison (an episode of a busy relation
/// holds hundreds of uses, and sorting them all on every evaluation grew with the relations).
fn greatest(e: &mut Vec<&[u8]>) {
    let mut top: [&[u8]; LINK_EVIDENCE] = [&[]; LINK_EVIDENCE];
    let mut n = 0;
    for &id in e.iter() {
        if n == LINK_EVIDENCE && id <= top[0] {
            continue;
        }
        let Err(at) = top[..n].binary_search(&id) else {
            continue;
        };
        if n < LINK_EVIDENCE {
            top.copy_within(at..n, at + 1);
            top[at] = id;
            n += 1;
        } else {
            // Full: the least goes, the new one takes its place in order.
            top.copy_within(1..at, 0);
            top[at - 1] = id;
        }
    }
    e.clear();
    e.extend_from_slice(&top[..n]);
}

/// The co-filing picture of a relation's uses on each merchant (C4's window): which uses were co-filed (another user
/// filed on the same merchant within the window, before or after) and the episodes (maximal chains of overlapping
/// windows, each starting at a use and holding `min_persons` distinct users): one sliding window per merchant.
struct Cofiling {
    cofiled: Vec<bool>,
    /// Each merchant's uses in time order.
    by_merchant: Vec<Vec<usize>>,
    /// (merchant, start, end): positions `start..end` of `by_merchant[merchant]`.
    episodes: Vec<(usize, usize, usize)>,
}

/// The relation's uses (indices) per merchant, each list in time order (uses are kept sorted), merchants in key order.
/// Grouped by the uses' merchant indices, then the merchants sorted by key: a map keyed by credit code cost a string
/// comparison per use and step, on every evaluation. Bounded by the uses, not by `merchants` (which keeps every
/// merchant the relation ever saw).
fn uses_by_merchant(rel: &RelationState) -> Vec<Vec<usize>> {
    let mut pairs: Vec<(u32, usize)> = rel
        .uses
        .iter()
        .enumerate()
        .filter_map(|(i, u)| u.merchant.checked_sub(1).map(|m| (m, i)))
        .collect();
    // By merchant index, each merchant's uses in time order.
    pairs.sort_unstable();
    let mut named: Vec<(&str, Vec<usize>)> = Vec::new();
    for group in pairs.chunk_by(|a, b| a.0 == b.0) {
        let name = rel
            .merchants
            .get(group[0].0 as usize)
            .map_or("", String::as_str);
        if !name.is_empty() {
            named.push((name, group.iter().map(|&(_, i)| i).collect()));
        }
    }
    named.sort_unstable_by(|a, b| a.0.cmp(b.0));
    // Each merchant is held once; should a state hold one twice, its uses are still one list.
    named.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            earlier.1.append(&mut later.1);
            earlier.1.sort_unstable();
        }
        same
    });
    named.into_iter().map(|(_, list)| list).collect()
}

fn cofiling(rel: &RelationState, window: i64, min_persons: usize) -> Cofiling {
    let uses = &rel.uses;
    let by_merchant = uses_by_merchant(rel);
    let mut out = Cofiling {
        cofiled: vec![false; uses.len()],
        by_merchant: Vec::new(),
        episodes: Vec::new(),
    };
    if window <= 0 {
        // Every window is empty: nothing is co-filed, no episode holds anyone.
        out.by_merchant = by_merchant;
        return out;
    }
    let slots = uses
        .iter()
        .map(|u| u.person as usize + 1)
        .max()
        .unwrap_or(0);
    let mut near = vec![0u32; slots];
    let mut ahead = vec![0u32; slots];
    for (m, idx) in by_merchant.iter().enumerate() {
        let at = |k: usize| uses[idx[k]].occurred_us;
        let who = |k: usize| uses[idx[k]].person as usize;
        let n = idx.len();
        // Co-filed: the uses within the window either side include another user's.
        let (mut lo, mut hi, mut inside) = (0, 0, 0u32);
        // Episodes: the window starting at each use, `a..b`, and its distinct users.
        let (mut b, mut distinct) = (0, 0usize);
        let mut current: Option<usize> = None;
        for k in 0..n {
            while hi < n && at(hi) - at(k) < window {
                near[who(hi)] += 1;
                inside += 1;
                hi += 1;
            }
            while at(k) - at(lo) >= window {
                near[who(lo)] -= 1;
                inside -= 1;
                lo += 1;
            }
            if inside > near[who(k)] {
                out.cofiled[idx[k]] = true;
            }
            while b < n && at(b) - at(k) < window {
                if ahead[who(b)] == 0 {
                    distinct += 1;
                }
                ahead[who(b)] += 1;
                b += 1;
            }
            if distinct >= min_persons && b > k {
                // Windows start in order and end in order: only the latest episode can overlap this one.
                match current.map(|e| &mut out.episodes[e]) {
                    Some(e) if k < e.2 => e.2 = e.2.max(b),
                    _ => {
                        current = Some(out.episodes.len());
                        out.episodes.push((m, k, b));
                    }
                }
            }
            ahead[who(k)] -= 1;
            if ahead[who(k)] == 0 {
                distinct -= 1;
            }
        }
        for k in lo..hi {
            near[who(k)] -= 1;
        }
        debug_assert!(ahead.iter().all(|&c| c == 0) && near.iter().all(|&c| c == 0));
    }
    out.by_merchant = by_merchant;
    out
}

/// Evaluates a relation. `shares[i]` is user `i`'s share (phones and addresses only).
pub(crate) fn evaluate<'r>(
    rules: &RuleSet,
    key: &RelationKey,
    rel: &'r RelationState,
    shares: &[Share],
) -> Outcome<'r> {
    let mut out = Outcome::default();
    let n_persons = rel.persons.len();
    if n_persons < 2 {
        return out;
    }
    let latest = rel.latest_us;
    let uses = &rel.uses;
    let c4 = &rules.rules.c4;
    let is_contact = !matches!(key, RelationKey::Text(_));
    let at = |j: usize| uses[j].occurred_us;
    let index = |j: usize| u32::try_from(j).unwrap_or(u32::MAX);

    let Cofiling {
        cofiled,
        by_merchant,
        episodes,
    } = cofiling(
        rel,
        days(c4.window_days),
        usize::try_from(c4.min_persons).unwrap_or(usize::MAX),
    );

    // 二(四) collusion.
    if c4.enabled && (is_contact || c4.match_text) {
        let mut per_person: BTreeMap<usize, Found> = BTreeMap::new();
        let mut persons: Vec<usize> = Vec::new();
        let mut ids: Vec<&[u8]> = Vec::new();
        for &(m, from, to) in &episodes {
            let e = &by_merchant[m][from..to];
            persons.clear();
            persons.extend(e.iter().map(|&j| uses[j].person as usize));
            persons.sort_unstable();
            persons.dedup();
            ids.clear();
            ids.extend(e.iter().map(|&j| uses[j].event_id.as_slice()));
            greatest(&mut ids);
            let (first, last) = (at(e[0]), at(e[e.len() - 1]));
            for &p in &persons {
                match per_person.get_mut(&p) {
                    None => {
                        per_person.insert(
                            p,
                            Found {
                                from_us: first,
                                to_us: last,
                                figures: vec![figure(
                                    "persons_on_one_merchant_in_window",
                                    persons.len(),
                                    c4.min_persons,
                                )],
                                uses: e.iter().map(|&j| index(j)).collect(),
                            },
                        );
                    }
                    Some(f) => {
                        f.from_us = f.from_us.min(first);
                        f.to_us = f.to_us.max(last);
                        for g in &mut f.figures {
                            g.value = g
                                .value
                                .max(i64::try_from(persons.len()).unwrap_or(i64::MAX));
                        }
                        f.uses.extend(e.iter().map(|&j| index(j)));
                    }
                }
                for &q in &persons {
                    if p < q {
                        link(&mut out, p, q, LinkReason::Collusion, &ids);
                    }
                }
            }
        }
        for (p, mut f) in per_person {
            // Episodes are disjoint: a sort puts several in order.
            if !f.uses.is_sorted() {
                f.uses.sort_unstable();
            }
            out.findings.push((p, RuleCode::C4, f));
        }
    }

    let base = match key {
        RelationKey::Phone(_) => LinkReason::SharedPhone,
        RelationKey::Address(_) => LinkReason::SharedAddress,
        RelationKey::Text(_) => LinkReason::SimilarText,
    };
    if is_contact {
        let owner = owner(rules, shares);
        // 二(三) false name.
        let c3 = &rules.rules.c3;
        if let (true, Some(o)) = (c3.enabled, owner) {
            let from = latest - days(c3.window_days);
            let foreign: Vec<usize> = (0..uses.len())
                .filter(|&j| uses[j].person as usize != o && uses[j].occurred_us >= from)
                .filter(|&j| uses[j].false_identity || !cofiled[j])
                .collect();
            let filings = foreign.iter().filter(|&&j| !uses[j].false_identity).count();
            let rejected = foreign.iter().any(|&j| uses[j].false_identity);
            let counted = if rejected {
                filings.max(usize::try_from(c3.min_foreign_filings).unwrap_or(usize::MAX))
            } else {
                filings
            };
            if !foreign.is_empty()
                && counted >= usize::try_from(c3.min_foreign_filings).unwrap_or(usize::MAX)
            {
                let mut others: Vec<u32> = foreign.iter().map(|&j| uses[j].person).collect();
                others.sort_unstable();
                others.dedup();
                let mut ids: Vec<Vec<&[u8]>> = vec![Vec::new(); others.len()];
                for &j in &foreign {
                    if let Ok(x) = others.binary_search(&uses[j].person) {
                        ids[x].push(uses[j].event_id.as_slice());
                    }
                }
                for (&q, ids) in others.iter().zip(&ids) {
                    link(&mut out, o, q as usize, LinkReason::FalseName, ids);
                }
                out.findings.push((
                    o,
                    RuleCode::C3,
                    Found {
                        from_us: foreign.iter().map(|&j| at(j)).min().unwrap_or(0),
                        to_us: foreign.iter().map(|&j| at(j)).max().unwrap_or(0),
                        figures: vec![
                            figure(
                                "filings_under_other_id_numbers",
                                counted,
                                c3.min_foreign_filings,
                            ),
                            figure("other_id_numbers", others.len(), 1),
                        ],
                        uses: foreign.iter().map(|&j| index(j)).collect(),
                    },
                ));
            }
        }
        // 二(五) hired.
        let c5 = &rules.rules.c5;
        if c5.enabled && owner.is_none() {
            let from = latest - days(c5.window_days);
            let spread: Vec<usize> = (0..uses.len())
                .filter(|&j| uses[j].occurred_us >= from && !cofiled[j] && uses[j].merchant != 0)
                .collect();
            let persons: BTreeSet<usize> =
                spread.iter().map(|&j| uses[j].person as usize).collect();
            let merchants: BTreeSet<&str> =
                spread.iter().map(|&j| rel.merchant_of(&uses[j])).collect();
            // An agent's contact is a minority of each hired person's own intakes (they have their own phone);
            // persons whose intakes mostly carry it are its owner or persons whose ID numbers were borrowed (二(三)).
            let minority = persons
                .iter()
                .filter(|&&p| {
                    shares.get(p).is_some_and(|s| {
                        s.total > 0
                            && s.with.min(s.total) * 100 / s.total
                                < u64::from(rules.rules.c3.owner_min_share_pct)
                    })
                })
                .count();
            if minority >= usize::try_from(c5.min_persons).unwrap_or(usize::MAX)
                && merchants.len() >= usize::try_from(c5.min_merchants).unwrap_or(usize::MAX)
            {
                let a = Found {
                    from_us: spread.iter().map(|&j| at(j)).min().unwrap_or(0),
                    to_us: spread.iter().map(|&j| at(j)).max().unwrap_or(0),
                    figures: vec![
                        figure("persons_sharing_contact", persons.len(), c5.min_persons),
                        figure("merchants", merchants.len(), c5.min_merchants),
                    ],
                    uses: spread.iter().map(|&j| index(j)).collect(),
                };
                // Each user's greatest ids among the spread: a pair's are among the union of both users'.
                let mut own: BTreeMap<usize, Vec<&[u8]>> = BTreeMap::new();
                for &j in &spread {
                    own.entry(uses[j].person as usize)
                        .or_default()
                        .push(uses[j].event_id.as_slice());
                }
                for ids in own.values_mut() {
                    greatest(ids);
                }
                let mut ids: Vec<&[u8]> = Vec::with_capacity(2 * LINK_EVIDENCE);
                for &p in &persons {
                    out.findings.push((p, RuleCode::C5, a.clone()));
                    for &q in &persons {
                        if p < q {
                            ids.clear();
                            for x in [p, q] {
                                if let Some(v) = own.get(&x) {
                                    ids.extend_from_slice(v);
                                }
                            }
                            link(&mut out, p, q, LinkReason::SharedAgent, &ids);
                        }
                    }
                }
            }
        }
    }

    // Plain sharing links between every pair of users. Their evidence (each one's latest records) is not kept with
    // the link: it is the relation's ([`sharing_evidence`]), read with it, so a new record on a shared contact does
    // not rewrite every co-user's state. A stronger link also shows both users' latest records, as before.
    let mut latest_ids: Vec<Vec<&[u8]>> = vec![Vec::new(); n_persons];
    for u in uses.iter().rev() {
        if let Some(l) = latest_ids.get_mut(u.person as usize) {
            if l.len() < SHARING_EVIDENCE {
                l.push(u.event_id.as_slice());
            }
        }
    }
    for a in 0..n_persons {
        for b in (a + 1)..n_persons {
            link(&mut out, a, b, base, &[]);
        }
    }
    for ((a, b), (reason, e)) in out.links.iter_mut() {
        if *reason == base {
            e.clear();
            continue;
        }
        e.extend_from_slice(&latest_ids[*a]);
        e.extend_from_slice(&latest_ids[*b]);
        greatest(e);
    }
    out
}

/// Records per user shown as a plain sharing link's evidence.
const SHARING_EVIDENCE: usize = 5;

/// The evidence of a plain sharing link between users `a` and `b` (person keys) of a relation: each one's latest
/// records carrying it (by occurrence, then event id), ascending by stored event id; empty if either is not a user.
pub fn sharing_evidence(rel: &RelationState, a: &[u8], b: &[u8]) -> Vec<Vec<u8>> {
    let index = |k: &[u8]| rel.persons.iter().position(|p| p.as_slice() == k);
    let (Some(a), Some(b)) = (index(a), index(b)) else {
        return Vec::new();
    };
    let mut ids: Vec<&[u8]> = Vec::with_capacity(2 * SHARING_EVIDENCE);
    for who in [a, b] {
        ids.extend(
            rel.uses
                .iter()
                .rev()
                .filter(|u| u.person as usize == who)
                .take(SHARING_EVIDENCE)
                .map(|u| u.event_id.as_slice()),
        );
    }
    greatest(&mut ids);
    ids.into_iter().map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::criteria::DAY_US;
    use crate::state::RelationUse;

    /// A xorshift generator of numbers below its argument, for the tests' random cases.
    fn numbers(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        }
    }

    #[test]
    fn greatest_keeps_the_greatest_distinct_ids_in_order() {
        // Against the obvious way (sort, deduplicate, keep the last ones) on lists long and short, with repeats.
        let pool: Vec<[u8; 2]> = (0..40u8).map(|i| [i / 7, i.wrapping_mul(37)]).collect();
        let mut next = numbers(0x2545_f491_4f6c_dd1d);
        for len in (0..60).chain([200, 500]) {
            let mut list: Vec<&[u8]> = (0..len)
                .map(|_| &pool[next(pool.len() as u64) as usize][..])
                .collect();
            let mut expected = list.clone();
            expected.sort_unstable();
            expected.dedup();
            let keep = expected.len().saturating_sub(LINK_EVIDENCE);
            expected.drain(..keep);
            greatest(&mut list);
            assert_eq!(list, expected, "a list of {len}");
        }
    }

    /// The co-filing picture worked out the direct way: the window of every use scanned, episodes as sets merged
    /// with the first they meet.
    fn direct(
        rel: &RelationState,
        window: i64,
        min_persons: usize,
    ) -> (Vec<bool>, Vec<Vec<usize>>) {
        let uses = &rel.uses;
        let mut cofiled = vec![false; uses.len()];
        let mut episodes: Vec<BTreeSet<usize>> = Vec::new();
        for idx in &uses_by_merchant(rel) {
            for (a, &i) in idx.iter().enumerate() {
                let window_of: Vec<usize> = idx[a..]
                    .iter()
                    .copied()
                    .take_while(|&j| uses[j].occurred_us - uses[i].occurred_us < window)
                    .collect();
                let persons: BTreeSet<u32> = window_of.iter().map(|&j| uses[j].person).collect();
                if idx[..a]
                    .iter()
                    .rev()
                    .take_while(|&&j| uses[i].occurred_us - uses[j].occurred_us < window)
                    .any(|&j| uses[j].person != uses[i].person)
                {
                    cofiled[i] = true;
                }
                if window_of.iter().any(|&j| uses[j].person != uses[i].person) {
                    for &j in &window_of {
                        cofiled[j] = true;
                    }
                }
                if persons.len() >= min_persons {
                    let set: BTreeSet<usize> = window_of.into_iter().collect();
                    match episodes
                        .iter_mut()
                        .find(|e| e.intersection(&set).next().is_some())
                    {
                        Some(e) => e.extend(set),
                        None => episodes.push(set),
                    }
                }
            }
        }
        let mut episodes: Vec<Vec<usize>> = episodes
            .into_iter()
            .filter(|e| !e.is_empty())
            .map(|e| e.into_iter().collect())
            .collect();
        episodes.sort();
        (cofiled, episodes)
    }

    #[test]
    fn uses_are_grouped_by_merchant_in_key_order() {
        // Against a map keyed by the merchant's credit code: names out of order, one held twice, an empty one, and
        // uses without a merchant or with an index past the list.
        let merchants: Vec<String> = ["m3", "m1", "", "m2", "m1"].map(String::from).to_vec();
        let mut next = numbers(0x9e37_79b9_7f4a_7c15);
        let uses: Vec<RelationUse> = (0..200)
            .map(|k| RelationUse {
                occurred_us: k,
                event_id: format!("e{k}").into_bytes(),
                person: 0,
                merchant: next(7) as u32,
                false_identity: false,
            })
            .collect();
        let rel = RelationState {
            latest_us: 199,
            persons: vec![vec![0; 32]],
            uses,
            saturated: false,
            merchants,
        };
        let mut expected: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, u) in rel.uses.iter().enumerate() {
            let m = rel.merchant_of(u);
            if !m.is_empty() {
                expected.entry(m).or_default().push(i);
            }
        }
        let expected: Vec<Vec<usize>> = expected.into_values().collect();
        assert_eq!(expected.len(), 3);
        assert_eq!(uses_by_merchant(&rel), expected);
    }

    #[test]
    fn sliding_window_cofiling_matches_the_direct_scan() {
        let mut next = numbers(0x2545_f491_4f6c_dd1d);
        for round in 0..300 {
            let persons = 2 + next(6) as u32;
            let merchants = 1 + next(3) as u32;
            let spread_days = 1 + next(40) as i64;
            let mut uses: Vec<RelationUse> = (0..next(60))
                .map(|k| RelationUse {
                    occurred_us: next(spread_days as u64 * 4) as i64 * DAY_US / 4,
                    event_id: format!("e{round}-{k}").into_bytes(),
                    person: next(u64::from(persons)) as u32,
                    merchant: next(u64::from(merchants) + 1) as u32,
                    false_identity: false,
                })
                .collect();
            uses.sort_by(|a, b| (a.occurred_us, &a.event_id).cmp(&(b.occurred_us, &b.event_id)));
            let rel = RelationState {
                latest_us: uses.last().map_or(0, |u| u.occurred_us),
                persons: (0..persons).map(|p| vec![p as u8; 32]).collect(),
                uses,
                saturated: false,
                merchants: (1..=merchants).map(|m| format!("m{m}")).collect(),
            };
            for (window_days, min_persons) in [(7, 3), (1, 2), (3, 1), (0, 0), (10, 4)] {
                let window = days(window_days);
                let got = cofiling(&rel, window, min_persons);
                let mut episodes: Vec<Vec<usize>> = got
                    .episodes
                    .iter()
                    .map(|&(m, s, e)| got.by_merchant[m][s..e].to_vec())
                    .collect();
                episodes.sort();
                assert_eq!(
                    (got.cofiled, episodes),
                    direct(&rel, window, min_persons),
                    "round {round}, window {window_days} days, min {min_persons}"
                );
            }
        }
    }
}
