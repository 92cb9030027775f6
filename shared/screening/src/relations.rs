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

use crate::criteria::{days, ev, figure, Assessment};
use crate::engine::RelationKey;
use crate::rules::{RuleCode, RuleSet};
use crate::state::{LinkReason, RelationState};

/// How much of a user's own intakes carry the contact: (intakes with it, intakes with any contact of its kind).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Share {
    pub(crate) with: u64,
    pub(crate) total: u64,
}

/// Why two users are linked, and some evidence (event ids of the relation's uses).
pub(crate) type PairLink<'r> = (LinkReason, Vec<&'r [u8]>);

/// What one evaluation of a relation found.
#[derive(Debug, Default)]
pub(crate) struct Outcome<'r> {
    /// (user index, rule, finding).
    pub(crate) findings: Vec<(usize, RuleCode, Assessment)>,
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
    // Sorted and deduplicated once, at the end of `evaluate`: sorting here made a large ring quadratic.
    e.1.extend_from_slice(evidence);
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
    let c4_window = days(c4.window_days);
    let is_contact = !matches!(key, RelationKey::Text(_));

    // Uses by merchant, in time order (uses are kept sorted).
    let mut by_merchant: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, u) in uses.iter().enumerate() {
        let m = rel.merchant_of(u);
        if !m.is_empty() {
            by_merchant.entry(m).or_default().push(i);
        }
    }
    // Co-filed: another user filed on the same merchant within the C4 window. Episodes: windows with enough users.
    let mut cofiled = vec![false; uses.len()];
    let mut episodes: Vec<BTreeSet<usize>> = Vec::new();
    let mut window: Vec<usize> = Vec::new();
    let mut persons: Vec<u32> = Vec::new();
    for idx in by_merchant.values() {
        for (a, &i) in idx.iter().enumerate() {
            window.clear();
            persons.clear();
            for &j in &idx[a..] {
                if uses[j].occurred_us - uses[i].occurred_us >= c4_window {
                    break;
                }
                window.push(j);
                persons.push(uses[j].person);
            }
            persons.sort_unstable();
            persons.dedup();
            for &j in idx[..a].iter().rev() {
                if uses[i].occurred_us - uses[j].occurred_us >= c4_window {
                    break;
                }
                if uses[j].person != uses[i].person {
                    cofiled[i] = true;
                    break;
                }
            }
            if window.iter().any(|&j| uses[j].person != uses[i].person) {
                for &j in &window {
                    cofiled[j] = true;
                }
            }
            if persons.len() >= usize::try_from(c4.min_persons).unwrap_or(usize::MAX) {
                let set: BTreeSet<usize> = window.iter().copied().collect();
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

    // 二(四) collusion.
    if c4.enabled && (is_contact || c4.match_text) {
        let mut per_person: BTreeMap<usize, Assessment> = BTreeMap::new();
        for e in &episodes {
            let persons: BTreeSet<usize> = e.iter().map(|&j| uses[j].person as usize).collect();
            let evidence: Vec<_> = e
                .iter()
                .map(|&j| ev(uses[j].occurred_us, &uses[j].event_id))
                .collect();
            let ids: Vec<&[u8]> = e.iter().map(|&j| uses[j].event_id.as_slice()).collect();
            let a = Assessment {
                from_us: e.iter().map(|&j| uses[j].occurred_us).min().unwrap_or(0),
                to_us: e.iter().map(|&j| uses[j].occurred_us).max().unwrap_or(0),
                figures: vec![figure(
                    "persons_on_one_merchant_in_window",
                    persons.len(),
                    c4.min_persons,
                )],
                evidence,
                omitted: 0,
            };
            for &p in &persons {
                per_person.entry(p).or_default().absorb(a.clone());
                for &q in &persons {
                    if p < q {
                        link(&mut out, p, q, LinkReason::Collusion, &ids);
                    }
                }
            }
        }
        for (p, a) in per_person {
            out.findings.push((p, RuleCode::C4, a));
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
                let others: BTreeSet<u32> = foreign.iter().map(|&j| uses[j].person).collect();
                let evidence: Vec<_> = foreign
                    .iter()
                    .map(|&j| ev(uses[j].occurred_us, &uses[j].event_id))
                    .collect();
                for &q in &others {
                    let ids: Vec<&[u8]> = foreign
                        .iter()
                        .filter(|&&j| uses[j].person == q)
                        .map(|&j| uses[j].event_id.as_slice())
                        .collect();
                    link(&mut out, o, q as usize, LinkReason::FalseName, &ids);
                }
                out.findings.push((
                    o,
                    RuleCode::C3,
                    Assessment {
                        from_us: foreign
                            .iter()
                            .map(|&j| uses[j].occurred_us)
                            .min()
                            .unwrap_or(0),
                        to_us: foreign
                            .iter()
                            .map(|&j| uses[j].occurred_us)
                            .max()
                            .unwrap_or(0),
                        figures: vec![
                            figure(
                                "filings_under_other_id_numbers",
                                counted,
                                c3.min_foreign_filings,
                            ),
                            figure("other_id_numbers", others.len(), 1),
                        ],
                        evidence,
                        omitted: 0,
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
                let evidence: Vec<_> = spread
                    .iter()
                    .map(|&j| ev(uses[j].occurred_us, &uses[j].event_id))
                    .collect();
                let a = Assessment {
                    from_us: spread
                        .iter()
                        .map(|&j| uses[j].occurred_us)
                        .min()
                        .unwrap_or(0),
                    to_us: spread
                        .iter()
                        .map(|&j| uses[j].occurred_us)
                        .max()
                        .unwrap_or(0),
                    figures: vec![
                        figure("persons_sharing_contact", persons.len(), c5.min_persons),
                        figure("merchants", merchants.len(), c5.min_merchants),
                    ],
                    evidence,
                    omitted: 0,
                };
                for &p in &persons {
                    out.findings.push((p, RuleCode::C5, a.clone()));
                    for &q in &persons {
                        if p < q {
                            let ids: Vec<&[u8]> = spread
                                .iter()
                                .filter(|&&j| {
                                    uses[j].person as usize == p || uses[j].person as usize == q
                                })
                                .map(|&j| uses[j].event_id.as_slice())
                                .collect();
                            link(&mut out, p, q, LinkReason::SharedAgent, &ids);
                        }
                    }
                }
            }
        }
    }

    // Plain sharing links between every pair of users, with each one's latest records as evidence.
    let mut latest_ids: Vec<Vec<&[u8]>> = vec![Vec::new(); n_persons];
    for u in uses.iter().rev() {
        if let Some(l) = latest_ids.get_mut(u.person as usize) {
            if l.len() < 5 {
                l.push(u.event_id.as_slice());
            }
        }
    }
    let mut ids: Vec<&[u8]> = Vec::with_capacity(10);
    for a in 0..n_persons {
        for b in (a + 1)..n_persons {
            ids.clear();
            ids.extend_from_slice(&latest_ids[a]);
            ids.extend_from_slice(&latest_ids[b]);
            link(&mut out, a, b, base, &ids);
        }
    }
    for (_, (_, e)) in out.links.iter_mut() {
        e.sort_unstable();
        e.dedup();
        if e.len() > 10 {
            e.drain(..e.len() - 10);
        }
    }
    out
}
