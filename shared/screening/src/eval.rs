//! Detection quality: compares flags with the truth of a generated population (`truth.json`), per rule and overall.
//!
//! Takes plain inputs so it serves any caller: the truth as [`TruthRow`]s and the flagged rules per person, both keyed
//! by the same person string (an ID number, or a person key in hex).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::rules::RuleCode;

/// One person of the truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthRow {
    /// How the person is keyed in `flagged` (ID number or person key hex).
    pub person: String,
    /// What the report shows for a misclassified person (e.g. the ID number; may equal `person`).
    pub display: String,
    pub abusive: bool,
    /// The criteria the person meets (`"C1"` … `"R5"`).
    pub criteria: Vec<String>,
}

/// Counts and ratios of one rule.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleScore {
    /// Flagged and meeting the criterion.
    pub true_positives: u64,
    /// Flagged without meeting it.
    pub false_positives: u64,
    /// Meeting it without the flag.
    pub false_negatives: u64,
}

impl RuleScore {
    /// `None` when nothing was flagged.
    pub fn precision(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// `None` when nobody meets the criterion.
    pub fn recall(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// A person the screen got wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misclassified {
    pub display: String,
    pub abusive: bool,
    pub expected: Vec<String>,
    pub got: Vec<String>,
}

/// The evaluation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvalReport {
    pub persons: u64,
    pub abusive: u64,
    pub ordinary: u64,
    /// Abusive persons with at least one flag.
    pub abusive_flagged: u64,
    /// Ordinary persons with at least one flag.
    pub ordinary_flagged: u64,
    /// Per rule, in guideline order.
    pub rules: BTreeMap<RuleCode, RuleScore>,
    /// Abusive persons without any flag, and ordinary persons with one.
    pub misclassified: Vec<Misclassified>,
    /// Persons flagged but absent from the truth.
    pub unknown_flagged: u64,
}

impl EvalReport {
    /// Share of abusive persons flagged by some rule.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.abusive_flagged, self.abusive)
    }

    /// Share of flagged persons who are abusive.
    pub fn precision(&self) -> Option<f64> {
        ratio(
            self.abusive_flagged,
            self.abusive_flagged + self.ordinary_flagged + self.unknown_flagged,
        )
    }

    /// Share of ordinary persons flagged.
    pub fn ordinary_flagged_share(&self) -> Option<f64> {
        ratio(self.ordinary_flagged, self.ordinary)
    }
}

/// Scores `flagged` (person → rules with an active flag) against the truth.
pub fn compare(
    truth: impl IntoIterator<Item = TruthRow>,
    flagged: &BTreeMap<String, BTreeSet<RuleCode>>,
) -> EvalReport {
    let mut r = EvalReport::default();
    for code in RuleCode::ALL {
        r.rules.insert(code, RuleScore::default());
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let empty = BTreeSet::new();
    for row in truth {
        r.persons += 1;
        let got = flagged.get(&row.person).unwrap_or(&empty);
        seen.insert(row.person.clone());
        let expected: BTreeSet<RuleCode> = row
            .criteria
            .iter()
            .filter_map(|c| RuleCode::parse(c))
            .collect();
        if row.abusive {
            r.abusive += 1;
            if !got.is_empty() {
                r.abusive_flagged += 1;
            }
        } else {
            r.ordinary += 1;
            if !got.is_empty() {
                r.ordinary_flagged += 1;
            }
        }
        for code in RuleCode::ALL {
            let s = r.rules.entry(code).or_default();
            match (expected.contains(&code), got.contains(&code)) {
                (true, true) => s.true_positives += 1,
                (false, true) => s.false_positives += 1,
                (true, false) => s.false_negatives += 1,
                (false, false) => {}
            }
        }
        if row.abusive == got.is_empty() {
            r.misclassified.push(Misclassified {
                display: row.display,
                abusive: row.abusive,
                expected: expected.iter().map(|c| c.as_str().to_owned()).collect(),
                got: got.iter().map(|c| c.as_str().to_owned()).collect(),
            });
        }
    }
    r.unknown_flagged = flagged
        .iter()
        .filter(|(k, v)| !v.is_empty() && !seen.contains(*k))
        .count() as u64;
    r
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rule  precision  recall     tp    fp    fn")?;
        for (code, s) in &self.rules {
            writeln!(
                f,
                "{:<5} {:>9}  {:>6}  {:>5} {:>5} {:>5}",
                code.as_str(),
                pct(s.precision()),
                pct(s.recall()),
                s.true_positives,
                s.false_positives,
                s.false_negatives
            )?;
        }
        writeln!(
            f,
            "all   {:>9}  {:>6}  persons {}, abusive {} (flagged {}), ordinary {} (flagged {}, {})",
            pct(self.precision()),
            pct(self.recall()),
            self.persons,
            self.abusive,
            self.abusive_flagged,
            self.ordinary,
            self.ordinary_flagged,
            self.ordinary_flagged_share()
                .map_or_else(|| "-".to_owned(), |v| format!("{:.3}%", v * 100.0)),
        )?;
        if self.unknown_flagged > 0 {
            writeln!(f, "flagged but not in the truth: {}", self.unknown_flagged)?;
        }
        if !self.misclassified.is_empty() {
            writeln!(f, "misclassified:")?;
            for m in &self.misclassified {
                writeln!(
                    f,
                    "  {} {}: expected [{}], got [{}]",
                    m.display,
                    if m.abusive {
                        "abusive, missed"
                    } else {
                        "ordinary, flagged"
                    },
                    m.expected.join(" "),
                    m.got.join(" ")
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(p: &str, abusive: bool, criteria: &[&str]) -> TruthRow {
        TruthRow {
            person: p.to_owned(),
            display: p.to_owned(),
            abusive,
            criteria: criteria.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn scores_per_rule_and_overall() {
        let truth = vec![
            row("a", true, &["C6", "C1"]),
            row("b", true, &["R2"]),
            row("c", false, &[]),
            row("d", false, &[]),
        ];
        let mut flagged = BTreeMap::new();
        flagged.insert("a".to_owned(), BTreeSet::from([RuleCode::C6]));
        flagged.insert("c".to_owned(), BTreeSet::from([RuleCode::C4]));
        let r = compare(truth, &flagged);
        assert_eq!(r.recall(), Some(0.5));
        assert_eq!(r.precision(), Some(0.5));
        assert_eq!(r.ordinary_flagged_share(), Some(0.5));
        assert_eq!(r.rules[&RuleCode::C6].recall(), Some(1.0));
        assert_eq!(r.rules[&RuleCode::C1].recall(), Some(0.0));
        assert_eq!(r.rules[&RuleCode::C4].precision(), Some(0.0));
        assert_eq!(r.misclassified.len(), 2);
        let table = r.to_string();
        assert!(
            table.contains("b abusive, missed: expected [R2], got []"),
            "{table}"
        );
        assert!(
            table.contains("c ordinary, flagged: expected [], got [C4]"),
            "{table}"
        );
    }
}
