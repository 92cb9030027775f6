//! The rule set: the twelve criteria of the Yueyang guideline (岳市监〔2024〕16号, sections 二 and 三) as data.
//!
//! Every rule carries its clause, its titles, the guideline it comes from, whether it is enabled, and its thresholds
//! and windows. The defaults are domain.md section 5, tuned on the synthetic population; they are also shipped as
//! `rules.toml` beside this crate (embedded as [`DEFAULT_RULES_TOML`], and tested to equal [`RuleSet::default`]).
//! Loading validates every value and names the field path of each problem; unknown fields are refused.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The default rule set as a TOML file (the same values as [`RuleSet::default`]).
pub const DEFAULT_RULES_TOML: &str = include_str!("../rules.toml");

/// The guideline the default rules come from.
pub const YUEYANG_2024: &str =
    "岳市监〔2024〕16号《关于加强部门协作机制 规范投诉举报处置的指导意见》(岳阳市, 2024)";

/// One of the twelve criteria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleCode {
    /// 二(一) repeat claims after punitive compensation.
    C1,
    /// 二(二) bulk purchase.
    C2,
    /// 二(三) false name.
    C3,
    /// 二(四) collusion.
    C4,
    /// 二(五) hired complainants.
    C5,
    /// 二(六) volume.
    C6,
    /// 二(七) fabricated disputes.
    C7,
    /// 三(一) planting, swapping, forging dates, fabricating facts, extortion.
    R1,
    /// 三(二) repeated untrue reports of one violation type.
    R2,
    /// 三(三) repeated appeals on report matters.
    R3,
    /// 三(四) repeated disclosure requests out of scope.
    R4,
    /// 三(五) repeated untrue reports to discipline inspection.
    R5,
}

impl RuleCode {
    /// Every rule, in guideline order.
    pub const ALL: [RuleCode; 12] = [
        RuleCode::C1,
        RuleCode::C2,
        RuleCode::C3,
        RuleCode::C4,
        RuleCode::C5,
        RuleCode::C6,
        RuleCode::C7,
        RuleCode::R1,
        RuleCode::R2,
        RuleCode::R3,
        RuleCode::R4,
        RuleCode::R5,
    ];

    /// `"C1"` … `"R5"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleCode::C1 => "C1",
            RuleCode::C2 => "C2",
            RuleCode::C3 => "C3",
            RuleCode::C4 => "C4",
            RuleCode::C5 => "C5",
            RuleCode::C6 => "C6",
            RuleCode::C7 => "C7",
            RuleCode::R1 => "R1",
            RuleCode::R2 => "R2",
            RuleCode::R3 => "R3",
            RuleCode::R4 => "R4",
            RuleCode::R5 => "R5",
        }
    }

    /// Parses `"C1"` … `"R5"`.
    pub fn parse(s: &str) -> Option<RuleCode> {
        RuleCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the rule is decided over what several persons share (a phone, an address, a text) rather than over
    /// one person's own records. Such a flag can be withdrawn when later records change the picture (e.g. who owns a
    /// phone); flags of the other rules only grow.
    pub fn is_cross_person(self) -> bool {
        matches!(self, RuleCode::C3 | RuleCode::C4 | RuleCode::C5)
    }
}

impl fmt::Display for RuleCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a rule comes from and whether it runs: the part every rule has.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleMeta<'a> {
    pub code: RuleCode,
    /// E.g. `二(三)`.
    pub clause: &'a str,
    pub title_zh: &'a str,
    pub title_en: &'a str,
    /// The guideline (document and version) the clause is quoted from.
    pub guideline: &'a str,
    pub enabled: bool,
}

macro_rules! rule_struct {
    (
        $(#[$doc:meta])*
        $name:ident, $code:ident, $clause:literal, $zh:literal, $en:literal,
        { $( $(#[$fdoc:meta])* $field:ident : $ty:ty = $default:expr ),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// The clause of the guideline, e.g. `二(三)`.
            pub clause: String,
            /// The clause's title in Chinese.
            pub title_zh: String,
            /// The clause's title in English.
            pub title_en: String,
            /// The guideline (document and version) the clause comes from.
            pub guideline: String,
            /// A disabled rule never raises a flag.
            pub enabled: bool,
            $( $(#[$fdoc])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> $name {
                $name {
                    clause: $clause.to_owned(),
                    title_zh: $zh.to_owned(),
                    title_en: $en.to_owned(),
                    guideline: YUEYANG_2024.to_owned(),
                    enabled: true,
                    $( $field: $default, )*
                }
            }
        }

        impl $name {
            /// Code, clause, titles, guideline and switch.
            pub fn meta(&self) -> RuleMeta<'_> {
                RuleMeta {
                    code: RuleCode::$code,
                    clause: &self.clause,
                    title_zh: &self.title_zh,
                    title_en: &self.title_en,
                    guideline: &self.guideline,
                    enabled: self.enabled,
                }
            }
        }
    };
}

rule_struct!(
    /// C1 二(一): punitive compensation paid, then a new complaint on the same merchant or the same goods category.
    C1Rule, C1, "二(一)", "获得惩罚性赔偿后继续购买再投诉", "repeat claims after punitive compensation",
    {
        /// How long after the payment a new complaint counts.
        window_days: u32 = 365,
        /// New complaints needed after one payment.
        min_repeats: u32 = 1,
        /// Whether a complaint on another merchant of the same goods category counts.
        same_category: bool = true,
    }
);

rule_struct!(
    /// C2 二(二): purchases far above reasonable living needs.
    C2Rule, C2, "二(二)", "超出合理生活消费需要大量购买", "bulk purchase",
    {
        /// More units than this in one purchase is bulk.
        max_units: u32 = 10,
        /// An amount above this multiple of the category's usual amount is bulk.
        amount_multiple: u32 = 20,
        /// Bulk purchases needed.
        min_purchases: u32 = 1,
        /// The usual amount of one purchase per goods category (fen), keyed by the category's snake-case name
        /// (`food`, `health_food`, … `other`); a category missing here is judged by units only.
        category_median_fen: BTreeMap<String, i64> = default_medians(),
    }
);

rule_struct!(
    /// C3 二(三): complaints under one ID number with a phone or address bound to another ID number, or an appeal
    /// rejected for false identity. The flag goes to the owner of the contact (who borrowed the ID number), never to
    /// the person whose ID number was borrowed.
    C3Rule, C3, "二(三)", "冒用他人名义进行投诉", "false name",
    {
        /// Filings under other ID numbers counted within this many days.
        window_days: u32 = 1095,
        /// A contact is bound to a person only if it is on at least this share (percent) of their own intakes …
        owner_min_share_pct: u32 = 60,
        /// … and their score (intakes with it × that share) is at least this percent of any other user's.
        owner_lead_pct: u32 = 150,
        /// Filings under other ID numbers with the owner's contact needed (an appeal rejected for false identity
        /// counts as many).
        min_foreign_filings: u32 = 2,
    }
);

rule_struct!(
    /// C4 二(四): several persons complain about the same merchant within a short window and share a contact or a
    /// near-identical text.
    C4Rule, C4, "二(四)", "不同投诉人通谋分别消费后分别投诉同一经营者", "collusion",
    {
        /// The window in which the complaints fall.
        window_days: u32 = 7,
        /// Distinct persons needed.
        min_persons: u32 = 3,
        /// Whether a near-identical complaint text (same merchant) links persons like a shared contact.
        match_text: bool = true,
    }
);

rule_struct!(
    /// C5 二(五): a cluster of persons sharing one contact that none of them owns (an agent's), across many merchants.
    C5Rule, C5, "二(五)", "投诉人受雇于他人进行投诉", "hired complainants",
    {
        /// The window in which the cluster's filings are counted.
        window_days: u32 = 1095,
        /// Distinct persons sharing the contact.
        min_persons: u32 = 3,
        /// Distinct merchants their filings with the contact name.
        min_merchants: u32 = 6,
    }
);

rule_struct!(
    /// C6 二(六): complaints and reports (each grievance counted once across platforms) far above the population.
    C6Rule, C6, "二(六)", "投诉数量和频次明显超出正常范围", "volume",
    {
        /// The rolling window.
        window_days: u32 = 365,
        /// Matters in the window that flag.
        min_matters: u32 = 20,
    }
);

rule_struct!(
    /// C7 二(七): a complaint or report found untrue or fabricated, or a police or court outcome establishing
    /// fabrication.
    C7Rule, C7, "二(七)", "恶意制造虚假事实或虚构消费争议", "fabricated disputes",
    {
        /// Findings counted within this many days.
        window_days: u32 = 1095,
        /// Findings needed.
        min_findings: u32 = 1,
    }
);

rule_struct!(
    /// R1 三(一): a police case or penalty for planting, swapping, forging dates, fabricating facts or extortion.
    R1Rule, R1, "三(一)", "夹带、掉包、造假、篡改生产日期、捏造事实骗取赔偿或敲诈勒索", "planted or swapped goods, extortion",
    {
        /// Police or court records counted within this many days.
        window_days: u32 = 1095,
        /// Cases needed.
        min_cases: u32 = 1,
    }
);

rule_struct!(
    /// R2 三(二): reports of the same violation type found unsubstantiated, again and again.
    R2Rule, R2, "三(二)", "多次举报同类违法行为经调查不属实", "repeated untrue reports",
    {
        window_days: u32 = 1095,
        /// Unsubstantiated reports of one violation type needed.
        min_unsubstantiated: u32 = 3,
    }
);

rule_struct!(
    /// R3 三(三): reconsiderations or suits on report matters rejected or dismissed, then a similar one again.
    R3Rule, R3, "三(三)", "多次就举报事项复议诉讼被驳回后又以类似事项提出", "repeated appeals",
    {
        window_days: u32 = 1095,
        /// Rejections or dismissals before the new appeal.
        min_rejections: u32 = 2,
        /// Count only appeals on report matters (the clause's wording); off counts every matter.
        report_matters_only: bool = true,
    }
);

rule_struct!(
    /// R4 三(四): disclosure requests on the same matter decided not in scope, again and again.
    R4Rule, R4, "三(四)", "多次就同类事项申请政府信息公开被认定不属于公开范围", "repeated disclosure requests",
    {
        window_days: u32 = 1095,
        /// Requests on one matter decided not in scope.
        min_not_in_scope: u32 = 3,
    }
);

rule_struct!(
    /// R5 三(五): reports to discipline inspection found untrue, again and again.
    R5Rule, R5, "三(五)", "多次向纪检监察部门举报经查证不属实", "repeated untrue discipline reports",
    {
        window_days: u32 = 1095,
        /// Untrue discipline reports needed.
        min_untrue: u32 = 2,
    }
);

/// The twelve rules, by code.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    #[serde(rename = "C1")]
    pub c1: C1Rule,
    #[serde(rename = "C2")]
    pub c2: C2Rule,
    #[serde(rename = "C3")]
    pub c3: C3Rule,
    #[serde(rename = "C4")]
    pub c4: C4Rule,
    #[serde(rename = "C5")]
    pub c5: C5Rule,
    #[serde(rename = "C6")]
    pub c6: C6Rule,
    #[serde(rename = "C7")]
    pub c7: C7Rule,
    #[serde(rename = "R1")]
    pub r1: R1Rule,
    #[serde(rename = "R2")]
    pub r2: R2Rule,
    #[serde(rename = "R3")]
    pub r3: R3Rule,
    #[serde(rename = "R4")]
    pub r4: R4Rule,
    #[serde(rename = "R5")]
    pub r5: R5Rule,
}

/// Everything the screener is configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleSet {
    /// Facts older than this many days before a person's (or relation's) newest record are dropped. Must cover the
    /// longest window plus how late records may arrive: a result does not depend on arrival order as long as a
    /// person's records arrive within `retain_days` minus the longest window of each other.
    pub retain_days: u32,
    /// Evidence event ids kept per flag (the most recent), beside the total count.
    pub max_evidence: u32,
    /// Facts kept per list in a person's or a relation's state (the most recent).
    pub max_facts: u32,
    /// Persons tracked per shared phone, address or text; beyond it the relation stops growing (a contact shared by
    /// that many persons is a public number, not a personal one).
    pub max_relation_persons: u32,
    pub rules: Rules,
}

impl Default for RuleSet {
    fn default() -> RuleSet {
        RuleSet {
            retain_days: 1460,
            max_evidence: 100,
            max_facts: 1000,
            max_relation_persons: 64,
            rules: Rules::default(),
        }
    }
}

fn default_medians() -> BTreeMap<String, i64> {
    [
        ("food", 3_000),
        ("catering", 15_000),
        ("health_food", 25_000),
        ("cosmetics", 18_000),
        ("drugs", 6_000),
        ("medical_devices", 60_000),
        ("electronics", 180_000),
        ("clothing", 30_000),
        ("household", 12_000),
        ("alcohol_tobacco", 40_000),
        ("education", 600_000),
        ("telecom", 12_000),
        ("travel", 350_000),
        ("real_estate", 2_000_000),
        ("vehicles", 800_000),
        ("other", 10_000),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The snake-case name of a goods category, as `category_median_fen` keys it.
pub fn category_name(category: i32) -> &'static str {
    use caselink_proto::v1::GoodsCategory as G;
    match G::try_from(category).unwrap_or(G::Unspecified) {
        G::Unspecified => "unspecified",
        G::Food => "food",
        G::HealthFood => "health_food",
        G::Cosmetics => "cosmetics",
        G::Drugs => "drugs",
        G::MedicalDevices => "medical_devices",
        G::Electronics => "electronics",
        G::Clothing => "clothing",
        G::Household => "household",
        G::AlcoholTobacco => "alcohol_tobacco",
        G::Catering => "catering",
        G::Education => "education",
        G::Telecom => "telecom",
        G::Travel => "travel",
        G::RealEstate => "real_estate",
        G::Vehicles => "vehicles",
        G::Other => "other",
    }
}

/// One problem found when loading a rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    /// E.g. `rules.C4.window_days`.
    pub path: String,
    /// E.g. `must be between 1 and 365, got 0`.
    pub why: String,
}

impl fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.why)
    }
}

/// Why a rule set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuleSetError {
    /// Not TOML, a wrong type, or an unknown field (the message names it).
    #[error("rule set is not valid TOML for this schema: {0}")]
    Parse(String),
    /// Values out of range, each with its field path.
    #[error("invalid rule set: {}", .0.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<RuleViolation>),
}

struct Checker {
    found: Vec<RuleViolation>,
}

impl Checker {
    fn range(&mut self, path: &str, value: u32, lo: u32, hi: u32) {
        if value < lo || value > hi {
            self.found.push(RuleViolation {
                path: path.to_owned(),
                why: format!("must be between {lo} and {hi}, got {value}"),
            });
        }
    }

    fn text(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.found.push(RuleViolation {
                path: path.to_owned(),
                why: "must not be empty".to_owned(),
            });
        }
    }

    fn meta(&mut self, code: &str, m: &RuleMeta<'_>) {
        self.text(&format!("rules.{code}.clause"), m.clause);
        self.text(&format!("rules.{code}.title_zh"), m.title_zh);
        self.text(&format!("rules.{code}.title_en"), m.title_en);
        self.text(&format!("rules.{code}.guideline"), m.guideline);
    }
}

impl RuleSet {
    /// Parses and validates a rule set. Fields left out take their defaults; unknown fields are refused.
    pub fn from_toml_str(text: &str) -> Result<RuleSet, RuleSetError> {
        let set: RuleSet = toml::from_str(text).map_err(|e| RuleSetError::Parse(e.to_string()))?;
        set.validate()?;
        Ok(set)
    }

    /// Renders the rule set as TOML (what [`RuleSet::from_toml_str`] reads back).
    pub fn to_toml_string(&self) -> Result<String, RuleSetError> {
        toml::to_string(self).map_err(|e| RuleSetError::Parse(e.to_string()))
    }

    /// The longest window of any enabled rule, in days.
    pub fn longest_window_days(&self) -> u32 {
        let r = &self.rules;
        [
            r.c1.window_days,
            r.c3.window_days,
            r.c4.window_days,
            r.c5.window_days,
            r.c6.window_days,
            r.c7.window_days,
            r.r1.window_days,
            r.r2.window_days,
            r.r3.window_days,
            r.r4.window_days,
            r.r5.window_days,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    /// Checks every value; each problem names its field path.
    pub fn validate(&self) -> Result<(), RuleSetError> {
        let mut c = Checker { found: Vec::new() };
        let r = &self.rules;
        for m in self.metas() {
            c.meta(m.code.as_str(), &m);
        }
        let long = 3660;
        c.range("rules.C1.window_days", r.c1.window_days, 1, long);
        c.range("rules.C1.min_repeats", r.c1.min_repeats, 1, 1000);
        c.range("rules.C2.max_units", r.c2.max_units, 1, 1_000_000);
        c.range(
            "rules.C2.amount_multiple",
            r.c2.amount_multiple,
            2,
            1_000_000,
        );
        c.range("rules.C2.min_purchases", r.c2.min_purchases, 1, 1000);
        for (k, v) in &r.c2.category_median_fen {
            let path = format!("rules.C2.category_median_fen.{k}");
            if !(1..=i64::MAX / 1_000_000).contains(v) {
                c.found.push(RuleViolation {
                    path: path.clone(),
                    why: format!("must be a positive amount in fen, got {v}"),
                });
            }
            if !(1..=16).chain([99]).any(|n| category_name(n) == k) {
                c.found.push(RuleViolation {
                    path,
                    why: "is not a goods category (food, health_food, cosmetics, drugs, medical_devices, electronics, clothing, household, alcohol_tobacco, catering, education, telecom, travel, real_estate, vehicles, other)".to_owned(),
                });
            }
        }
        c.range("rules.C3.window_days", r.c3.window_days, 1, long);
        c.range(
            "rules.C3.owner_min_share_pct",
            r.c3.owner_min_share_pct,
            51,
            100,
        );
        c.range("rules.C3.owner_lead_pct", r.c3.owner_lead_pct, 101, 100_000);
        c.range(
            "rules.C3.min_foreign_filings",
            r.c3.min_foreign_filings,
            1,
            1000,
        );
        c.range("rules.C4.window_days", r.c4.window_days, 1, 365);
        c.range("rules.C4.min_persons", r.c4.min_persons, 2, 1000);
        c.range("rules.C5.window_days", r.c5.window_days, 1, long);
        c.range("rules.C5.min_persons", r.c5.min_persons, 2, 1000);
        c.range("rules.C5.min_merchants", r.c5.min_merchants, 1, 100_000);
        c.range("rules.C6.window_days", r.c6.window_days, 1, long);
        c.range("rules.C6.min_matters", r.c6.min_matters, 1, 1_000_000);
        c.range("rules.C7.window_days", r.c7.window_days, 1, long);
        c.range("rules.C7.min_findings", r.c7.min_findings, 1, 1000);
        c.range("rules.R1.window_days", r.r1.window_days, 1, long);
        c.range("rules.R1.min_cases", r.r1.min_cases, 1, 1000);
        c.range("rules.R2.window_days", r.r2.window_days, 1, long);
        c.range(
            "rules.R2.min_unsubstantiated",
            r.r2.min_unsubstantiated,
            1,
            1000,
        );
        c.range("rules.R3.window_days", r.r3.window_days, 1, long);
        c.range("rules.R3.min_rejections", r.r3.min_rejections, 1, 1000);
        c.range("rules.R4.window_days", r.r4.window_days, 1, long);
        c.range("rules.R4.min_not_in_scope", r.r4.min_not_in_scope, 1, 1000);
        c.range("rules.R5.window_days", r.r5.window_days, 1, long);
        c.range("rules.R5.min_untrue", r.r5.min_untrue, 1, 1000);
        c.range("max_evidence", self.max_evidence, 1, 10_000);
        c.range("max_facts", self.max_facts, 10, 100_000);
        c.range("max_relation_persons", self.max_relation_persons, 2, 10_000);
        let longest = self.longest_window_days();
        if self.retain_days < longest || self.retain_days > 36_600 {
            c.found.push(RuleViolation {
                path: "retain_days".to_owned(),
                why: format!(
                    "must be between the longest window ({longest}) and 36600, got {}",
                    self.retain_days
                ),
            });
        }
        if c.found.is_empty() {
            Ok(())
        } else {
            Err(RuleSetError::Invalid(c.found))
        }
    }

    /// Code, clause, titles, guideline and switch of every rule, in guideline order.
    pub fn metas(&self) -> [RuleMeta<'_>; 12] {
        let r = &self.rules;
        [
            r.c1.meta(),
            r.c2.meta(),
            r.c3.meta(),
            r.c4.meta(),
            r.c5.meta(),
            r.c6.meta(),
            r.c7.meta(),
            r.r1.meta(),
            r.r2.meta(),
            r.r3.meta(),
            r.r4.meta(),
            r.r5.meta(),
        ]
    }

    /// Code, clause, titles, guideline and switch of one rule.
    pub fn meta(&self, code: RuleCode) -> RuleMeta<'_> {
        let r = &self.rules;
        match code {
            RuleCode::C1 => r.c1.meta(),
            RuleCode::C2 => r.c2.meta(),
            RuleCode::C3 => r.c3.meta(),
            RuleCode::C4 => r.c4.meta(),
            RuleCode::C5 => r.c5.meta(),
            RuleCode::C6 => r.c6.meta(),
            RuleCode::C7 => r.c7.meta(),
            RuleCode::R1 => r.r1.meta(),
            RuleCode::R2 => r.r2.meta(),
            RuleCode::R3 => r.r3.meta(),
            RuleCode::R4 => r.r4.meta(),
            RuleCode::R5 => r.r5.meta(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn shipped_rules_toml_equals_the_default() {
        let shipped = RuleSet::from_toml_str(DEFAULT_RULES_TOML).unwrap();
        assert_eq!(shipped, RuleSet::default());
    }

    #[test]
    fn default_round_trips_through_toml() {
        let text = RuleSet::default().to_toml_string().unwrap();
        assert_eq!(RuleSet::from_toml_str(&text).unwrap(), RuleSet::default());
    }

    #[test]
    fn out_of_range_window_names_the_field_path() {
        let err = RuleSet::from_toml_str("[rules.C4]\nwindow_days = 0\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid rule set: rules.C4.window_days: must be between 1 and 365, got 0"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = RuleSet::from_toml_str("[rules.C4]\nwindow_dayz = 3\n").unwrap_err();
        assert!(matches!(err, RuleSetError::Parse(_)));
        assert!(err.to_string().contains("window_dayz"), "{err}");
        let err = RuleSet::from_toml_str("[rules.C9]\n").unwrap_err();
        assert!(err.to_string().contains("C9"), "{err}");
    }

    #[test]
    fn partial_file_overrides_only_what_it_names() {
        let set =
            RuleSet::from_toml_str("[rules.C6]\nmin_matters = 30\nenabled = false\n").unwrap();
        assert_eq!(set.rules.c6.min_matters, 30);
        assert!(!set.rules.c6.enabled);
        assert_eq!(set.rules.c6.window_days, 365);
        assert_eq!(set.rules.c1, C1Rule::default());
    }

    #[test]
    fn retention_shorter_than_a_window_is_refused() {
        let err = RuleSet::from_toml_str("retain_days = 100\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("retain_days: must be between the longest window (1095)"),
            "{err}"
        );
    }

    #[test]
    fn unknown_category_and_empty_clause_are_reported_together() {
        let err = RuleSet::from_toml_str(
            "[rules.C2.category_median_fen]\nspaceships = 5\n[rules.R1]\nclause = \" \"\n",
        )
        .unwrap_err();
        let RuleSetError::Invalid(v) = err else {
            panic!("expected Invalid")
        };
        let paths: Vec<&str> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            ["rules.R1.clause", "rules.C2.category_median_fen.spaceships"]
        );
    }
}
