//! The rules decided over one person's own records: one function per clause, each a predicate over the compact facts
//! of [`PersonScreening`], re-evaluated whenever a fact it reads arrives (so the result does not depend on the order
//! the departments' records arrive in). The cross-person rules (二(三), 二(四), 二(五)) live in `relations.rs`.

use std::collections::BTreeMap;

use caselink_proto::v1::MatterType;

use crate::rules::{RuleCode, RuleSet};
use crate::state::{Evidence, Figure, IntakeKind, Mark, PersonScreening};

/// Microseconds in a day.
pub(crate) const DAY_US: i64 = 86_400_000_000;

/// What a rule found: the window, the figures that crossed their thresholds, the evidence.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Assessment {
    pub(crate) from_us: i64,
    pub(crate) to_us: i64,
    pub(crate) figures: Vec<Figure>,
    pub(crate) evidence: Vec<Evidence>,
    /// Evidence events left out before `evidence` (then `evidence` is sorted, without duplicates, and holds the
    /// newest): the flag keeps only the newest `max_evidence` anyway.
    pub(crate) omitted: u64,
}

impl Assessment {
    /// Merges another finding of the same rule (e.g. from another relation) into this one.
    pub(crate) fn absorb(&mut self, other: Assessment) {
        debug_assert!(self.omitted == 0 && other.omitted == 0);
        if self.evidence.is_empty() && self.figures.is_empty() {
            *self = other;
            return;
        }
        self.from_us = self.from_us.min(other.from_us);
        self.to_us = self.to_us.max(other.to_us);
        for f in other.figures {
            match self.figures.iter_mut().find(|g| g.name == f.name) {
                Some(g) => g.value = g.value.max(f.value),
                None => self.figures.push(f),
            }
        }
        self.evidence.extend(other.evidence);
        self.evidence.sort();
        self.evidence.dedup();
    }
}

pub(crate) fn figure(name: &str, value: usize, threshold: u32) -> Figure {
    Figure {
        name: name.to_owned(),
        value: i64::try_from(value).unwrap_or(i64::MAX),
        threshold: i64::from(threshold),
    }
}

pub(crate) fn ev(occurred_us: i64, event_id: &[u8]) -> Evidence {
    Evidence {
        occurred_us,
        event_id: event_id.to_owned(),
    }
}

pub(crate) fn days(d: u32) -> i64 {
    i64::from(d) * DAY_US
}

/// A point for [`densest`]: when, which event, and what it counts as (points with the same unit count once).
pub(crate) struct Point<'a> {
    pub(crate) at: i64,
    pub(crate) event_id: &'a [u8],
    pub(crate) unit: &'a [u8],
}

/// The window of `window` µs holding the most distinct units; `None` if no window reaches `min`. Ties go to the
/// earliest window, so the answer depends only on the set of points.
pub(crate) fn densest(
    points: &mut [Point<'_>],
    window: i64,
    min: u32,
) -> Option<(usize, i64, i64, Vec<Evidence>)> {
    points.sort_by(|a, b| (a.at, a.event_id).cmp(&(b.at, b.event_id)));
    let mut counts: BTreeMap<&[u8], usize> = BTreeMap::new();
    let mut lo = 0;
    let mut best: Option<(usize, usize, usize)> = None;
    for hi in 0..points.len() {
        *counts.entry(points[hi].unit).or_default() += 1;
        while points[hi].at - points[lo].at >= window {
            let unit = points[lo].unit;
            if let Some(c) = counts.get_mut(unit) {
                *c -= 1;
                if *c == 0 {
                    counts.remove(unit);
                }
            }
            lo += 1;
        }
        if best.is_none_or(|(n, _, _)| counts.len() > n) {
            best = Some((counts.len(), lo, hi));
        }
    }
    let (n, lo, hi) = best?;
    if n < usize::try_from(min).unwrap_or(usize::MAX) {
        return None;
    }
    let evidence = points[lo..=hi]
        .iter()
        .map(|p| ev(p.at, p.event_id))
        .collect();
    Some((n, points[lo].at, points[hi].at, evidence))
}

/// Counts marks in the densest window, grouped: the best group wins.
fn densest_group(
    marks: &[Mark],
    group: impl Fn(&Mark) -> String,
    unit: impl Fn(&Mark) -> Vec<u8>,
    window: i64,
    min: u32,
) -> Option<(String, usize, i64, i64, Vec<Evidence>)> {
    let mut groups: BTreeMap<String, Vec<(&Mark, Vec<u8>)>> = BTreeMap::new();
    for m in marks {
        groups.entry(group(m)).or_default().push((m, unit(m)));
    }
    let mut best: Option<(String, usize, i64, i64, Vec<Evidence>)> = None;
    for (g, ms) in &groups {
        let mut points: Vec<Point<'_>> = ms
            .iter()
            .map(|(m, u)| Point {
                at: m.occurred_us,
                event_id: &m.event_id,
                unit: u,
            })
            .collect();
        if let Some((n, from, to, evidence)) = densest(&mut points, window, min) {
            if best.as_ref().is_none_or(|b| n > b.1) {
                best = Some((g.clone(), n, from, to, evidence));
            }
        }
    }
    best
}

/// 二(一): punitive compensation paid, then a new complaint on the same merchant (or goods category) within the window.
pub(crate) fn c1_repeat_after_compensation(
    rules: &RuleSet,
    p: &PersonScreening,
) -> Option<Assessment> {
    let r = &rules.rules.c1;
    let window = days(r.window_days);
    let mut out: Option<Assessment> = None;
    let mut most = 0;
    for paid in &p.punitive_payments {
        let repeats: Vec<_> = p
            .intakes
            .iter()
            .filter(|c| c.kind == IntakeKind::Complaint as i32)
            .filter(|c| {
                c.occurred_us > paid.occurred_us && c.occurred_us <= paid.occurred_us + window
            })
            .filter(|c| {
                (!c.merchant_uscc.is_empty() && c.merchant_uscc == paid.reference)
                    || (r.same_category && c.category != 0 && i64::from(c.category) == paid.value)
            })
            .collect();
        if repeats.len() < usize::try_from(r.min_repeats).unwrap_or(usize::MAX) {
            continue;
        }
        most = most.max(repeats.len());
        let mut a = Assessment {
            from_us: paid.occurred_us,
            to_us: repeats
                .iter()
                .map(|c| c.occurred_us)
                .max()
                .unwrap_or(paid.occurred_us),
            figures: vec![],
            evidence: vec![ev(paid.occurred_us, &paid.event_id)],
            omitted: 0,
        };
        a.evidence
            .extend(repeats.iter().map(|c| ev(c.occurred_us, &c.event_id)));
        match &mut out {
            Some(o) => o.absorb(a),
            None => out = Some(a),
        }
    }
    out.map(|mut a| {
        a.figures = vec![figure(
            "complaints_after_punitive_compensation",
            most,
            r.min_repeats,
        )];
        a
    })
}

/// 二(二): purchases above the unit limit or far above the category's usual amount.
pub(crate) fn c2_bulk_purchase(rules: &RuleSet, p: &PersonScreening) -> Option<Assessment> {
    let r = &rules.rules.c2;
    let n = p.bulk_purchases.len();
    if n == 0 || n < usize::try_from(r.min_purchases).unwrap_or(usize::MAX) {
        return None;
    }
    let most_units = p.bulk_purchases.iter().map(|m| m.code).max().unwrap_or(0);
    let mut figures = vec![figure("bulk_purchases", n, r.min_purchases)];
    if i64::from(most_units) > i64::from(r.max_units) {
        figures.push(figure(
            "most_units",
            usize::try_from(most_units).unwrap_or(0),
            r.max_units,
        ));
    }
    Some(Assessment {
        from_us: p
            .bulk_purchases
            .iter()
            .map(|m| m.occurred_us)
            .min()
            .unwrap_or(0),
        to_us: p
            .bulk_purchases
            .iter()
            .map(|m| m.occurred_us)
            .max()
            .unwrap_or(0),
        figures,
        evidence: p
            .bulk_purchases
            .iter()
            .map(|m| ev(m.occurred_us, &m.event_id))
            .collect(),
        omitted: 0,
    })
}

/// Whether one purchase is bulk under 二(二).
pub(crate) fn is_bulk(rules: &RuleSet, category: i32, quantity: i32, amount_fen: i64) -> bool {
    let r = &rules.rules.c2;
    if i64::from(quantity) > i64::from(r.max_units) {
        return true;
    }
    match r
        .category_median_fen
        .get(crate::rules::category_name(category))
    {
        Some(median) => amount_fen > median.saturating_mul(i64::from(r.amount_multiple)),
        None => false,
    }
}

/// 二(六): complaints and reports in a rolling window, each grievance counted once across platforms.
///
/// The matters are those the intakes lead (see [`crate::matters::mark_leaders`]); each is its own unit, so the densest
/// window is the one holding the most leading intakes (ties to the earliest).
pub(crate) fn c6_volume(rules: &RuleSet, p: &PersonScreening) -> Option<Assessment> {
    let r = &rules.rules.c6;
    let mut points: Vec<(i64, &[u8])> = p
        .intakes
        .iter()
        .filter(|i| i.leads)
        .map(|i| (i.occurred_us, i.event_id.as_slice()))
        .collect();
    if !points.is_sorted() {
        points.sort_unstable();
    }
    let window = days(r.window_days);
    let mut lo = 0;
    let mut best: Option<(usize, usize, usize)> = None;
    for hi in 0..points.len() {
        while points[hi].0 - points[lo].0 >= window {
            lo += 1;
        }
        let n = hi + 1 - lo;
        if best.is_none_or(|(b, _, _)| n > b) {
            best = Some((n, lo, hi));
        }
    }
    let (n, lo, hi) = best?;
    if n < usize::try_from(r.min_matters).unwrap_or(usize::MAX) {
        return None;
    }
    let keep = usize::try_from(rules.max_evidence).unwrap_or(usize::MAX);
    let start = lo.max((hi + 1).saturating_sub(keep));
    Some(Assessment {
        from_us: points[lo].0,
        to_us: points[hi].0,
        figures: vec![figure("matters_in_window", n, r.min_matters)],
        evidence: points[start..=hi]
            .iter()
            .map(|&(at, id)| ev(at, id))
            .collect(),
        omitted: (start - lo) as u64,
    })
}

/// 二(七): a complaint or report found fabricated, a 12345 ticket found untrue, or a police or court record of
/// fabrication.
pub(crate) fn c7_fabricated(rules: &RuleSet, p: &PersonScreening) -> Option<Assessment> {
    let r = &rules.rules.c7;
    let (_, n, from, to, evidence) = densest_group(
        &p.fabrications,
        |_| String::new(),
        |m| m.event_id.clone(),
        days(r.window_days),
        r.min_findings,
    )?;
    Some(Assessment {
        from_us: from,
        to_us: to,
        figures: vec![figure("findings_untrue_or_fabricated", n, r.min_findings)],
        evidence,
        omitted: 0,
    })
}

/// 三(一): a police case or penalty (or conviction) for planting, swapping, forging dates, fabricating facts or extortion.
/// Cases count once however many records they have (registration, penalty, closure).
pub(crate) fn r1_planted_or_extortion(rules: &RuleSet, p: &PersonScreening) -> Option<Assessment> {
    let r = &rules.rules.r1;
    let (_, n, from, to, evidence) = densest_group(
        &p.police_cases,
        |_| String::new(),
        |m| m.reference.as_bytes().to_vec(),
        days(r.window_days),
        r.min_cases,
    )?;
    Some(Assessment {
        from_us: from,
        to_us: to,
        figures: vec![figure("police_or_court_cases", n, r.min_cases)],
        evidence,
        omitted: 0,
    })
}

/// 三(二): reports of the same violation type found unsubstantiated, again and again.
pub(crate) fn r2_untrue_reports(rules: &RuleSet, p: &PersonScreening) -> Option<Assessment> {
    let r = &rules.rules.r2;
    let (_, n, from, to, evidence) = densest_group(
        &p.unsubstantiated,
        |m| m.code.to_string(),
        |m| m.event_id.clone(),
        days(r.window_days),
        r.min_unsubstantiated,
    )?;
    Some(Assessment {
        from_us: from,
        to_us: to,
        figures: vec![figure(
            "unsubstantiated_reports_of_one_type",
            n,
            r.min_unsubstantiated,
        )],
        evidence,
        omitted: 0,
    })
}

/// 三(三): reconsiderations or suits on report matters rejected or dismissed, then another one filed after them.
pub(crate) fn r3_repeated_appeals(rules: &RuleSet, p: &PersonScreening) -> Option<Assessment> {
    let r = &rules.rules.r3;
    let window = days(r.window_days);
    let counts =
        |matter_type: i32| !r.report_matters_only || matter_type == MatterType::Report as i32;
    let mut out: Option<Assessment> = None;
    let mut most = 0;
    for again in p
        .appeals
        .iter()
        .filter(|a| a.filed_us > 0 && counts(a.matter_type))
    {
        let priors: Vec<_> = p
            .appeals
            .iter()
            .filter(|a| a.filed_event_id != again.filed_event_id && counts(a.matter_type))
            .filter(|a| a.rejected_us > 0 && a.rejected_us < again.filed_us)
            .filter(|a| a.rejected_us >= again.filed_us - window)
            .collect();
        if priors.len() < usize::try_from(r.min_rejections).unwrap_or(usize::MAX) {
            continue;
        }
        most = most.max(priors.len());
        let mut evidence = vec![ev(again.filed_us, &again.filed_event_id)];
        for a in &priors {
            evidence.push(ev(a.filed_us, &a.filed_event_id));
            evidence.push(ev(a.rejected_us, &a.rejected_event_id));
        }
        let a = Assessment {
            from_us: priors
                .iter()
                .map(|a| a.filed_us)
                .min()
                .unwrap_or(again.filed_us),
            to_us: again.filed_us,
            figures: vec![],
            evidence,
            omitted: 0,
        };
        match &mut out {
            Some(o) => o.absorb(a),
            None => out = Some(a),
        }
    }
    out.map(|mut a| {
        a.evidence.sort();
        a.evidence.dedup();
        a.figures = vec![figure(
            "rejected_or_dismissed_before_again",
            most,
            r.min_rejections,
        )];
        a
    })
}

/// 三(四): disclosure requests on one matter decided not in scope, again and again.
pub(crate) fn r4_disclosure(rules: &RuleSet, p: &PersonScreening) -> Option<Assessment> {
    let r = &rules.rules.r4;
    let (_, n, from, to, evidence) = densest_group(
        &p.disclosures_refused,
        |m| m.reference.clone(),
        |m| m.event_id.clone(),
        days(r.window_days),
        r.min_not_in_scope,
    )?;
    Some(Assessment {
        from_us: from,
        to_us: to,
        figures: vec![figure(
            "requests_on_one_matter_not_in_scope",
            n,
            r.min_not_in_scope,
        )],
        evidence,
        omitted: 0,
    })
}

/// 三(五): reports to discipline inspection found untrue, again and again.
pub(crate) fn r5_discipline(rules: &RuleSet, p: &PersonScreening) -> Option<Assessment> {
    let r = &rules.rules.r5;
    let (_, n, from, to, evidence) = densest_group(
        &p.discipline_untrue,
        |_| String::new(),
        |m| m.event_id.clone(),
        days(r.window_days),
        r.min_untrue,
    )?;
    Some(Assessment {
        from_us: from,
        to_us: to,
        figures: vec![figure("discipline_reports_found_untrue", n, r.min_untrue)],
        evidence,
        omitted: 0,
    })
}

/// Evaluates one person-local rule.
pub(crate) fn evaluate(rules: &RuleSet, code: RuleCode, p: &PersonScreening) -> Option<Assessment> {
    match code {
        RuleCode::C1 => c1_repeat_after_compensation(rules, p),
        RuleCode::C2 => c2_bulk_purchase(rules, p),
        RuleCode::C6 => c6_volume(rules, p),
        RuleCode::C7 => c7_fabricated(rules, p),
        RuleCode::R1 => r1_planted_or_extortion(rules, p),
        RuleCode::R2 => r2_untrue_reports(rules, p),
        RuleCode::R3 => r3_repeated_appeals(rules, p),
        RuleCode::R4 => r4_disclosure(rules, p),
        RuleCode::R5 => r5_discipline(rules, p),
        RuleCode::C3 | RuleCode::C4 | RuleCode::C5 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn densest_counts_distinct_units_in_the_best_window() {
        let mut pts = vec![
            Point {
                at: 0,
                event_id: b"a",
                unit: b"x",
            },
            Point {
                at: 5,
                event_id: b"b",
                unit: b"x",
            },
            Point {
                at: 6,
                event_id: b"c",
                unit: b"y",
            },
            Point {
                at: 20,
                event_id: b"d",
                unit: b"z",
            },
        ];
        let (n, from, to, e) = densest(&mut pts, 10, 2).expect("two units within 10");
        assert_eq!((n, from, to, e.len()), (2, 0, 6, 3));
        assert!(densest(&mut pts, 10, 3).is_none());
    }
}
