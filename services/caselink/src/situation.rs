//! `caselink situation`: the joint meeting's figures for a region and a period, readably (or as proto3 JSON).

use std::process::ExitCode;

use caselink_proto::v1::{
    AssessmentRates, GetSituationRequest, Rate, ReferralState, RuleCount, Situation,
};

use crate::timeline::{format_time, parse_time};

#[derive(clap::Args)]
pub(crate) struct SituationArgs {
    /// Regions whose code starts with this, e.g. 43 or 4306 (empty: every region).
    #[arg(long, default_value = "")]
    region: String,
    /// First day of the period (2025-01-01, China time; or RFC 3339 at midnight China time).
    #[arg(long)]
    from: Option<String>,
    /// Day after the period (exclusive), e.g. 2026-01-01.
    #[arg(long)]
    to: Option<String>,
    /// Print proto3 JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    tokens: crate::tokens::TokenArgs,
    /// The linkage service address.
    #[arg(long, default_value = "http://127.0.0.1:50050")]
    addr: String,
}

pub(crate) async fn run(args: SituationArgs) -> anyhow::Result<ExitCode> {
    let request = GetSituationRequest {
        region_prefix: args.region.clone(),
        from: args
            .from
            .as_deref()
            .map(|t| parse_time(t, "--from"))
            .transpose()?,
        to: args
            .to
            .as_deref()
            .map(|t| parse_time(t, "--to"))
            .transpose()?,
    };
    // The figures name no person: no purpose is asked for.
    let mut client = args.tokens.linkage(&args.addr, None).await?;
    let situation = client
        .get_situation(request)
        .await
        .map_err(crate::submit::status_error)?
        .into_inner();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&situation)?);
    } else {
        print!("{}", report(&situation));
    }
    Ok(ExitCode::SUCCESS)
}

fn or_all(text: String, all: &str) -> String {
    if text.is_empty() {
        all.to_owned()
    } else {
        text
    }
}

fn state_name(state: i32) -> String {
    ReferralState::try_from(state)
        .unwrap_or(ReferralState::Unspecified)
        .as_str_name()
        .trim_start_matches("REFERRAL_STATE_")
        .to_ascii_lowercase()
}

fn rules(counts: &[RuleCount]) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|c| format!("{} {}", c.rule, c.count))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `80.0% (4/5)`, `—` without a denominator.
fn percent(rate: Option<&Rate>) -> String {
    match rate {
        Some(r) if r.denominator > 0 => format!(
            "{:.1}% ({}/{})",
            r.numerator as f64 * 100.0 / r.denominator as f64,
            r.numerator,
            r.denominator
        ),
        Some(_) => "— (0/0)".into(),
        None => "—".into(),
    }
}

fn target(rate: Option<&Rate>) -> String {
    match rate.map_or(0, |r| r.target_percent) {
        0 => String::new(),
        t => format!("≥{t}%"),
    }
}

/// Whether a rate meets its target (blank without a target or a denominator).
fn verdict(rate: Option<&Rate>) -> &'static str {
    match rate {
        Some(r) if r.target_percent > 0 && r.denominator > 0 => {
            if r.numerator * 100 >= u64::from(r.target_percent) * r.denominator {
                "met"
            } else {
                "below"
            }
        }
        _ => "",
    }
}

/// Picks one rate of a set.
type Pick = fn(&AssessmentRates) -> Option<&Rate>;

/// The readable report.
pub(crate) fn report(s: &Situation) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "situation  regions {}  period {} … {}  (as of {})",
        or_all(s.region_prefix.clone(), "all"),
        or_all(format_time(s.from.as_ref()), "the beginning"),
        or_all(format_time(s.to.as_ref()), "now"),
        format_time(s.as_of.as_ref())
    );
    let _ = writeln!(out, "\nrecords    {}", s.events);
    for d in &s.departments {
        let department = caselink_domain::department_code(d.department());
        let _ = writeln!(out, "  {department:<10} {:>8}", d.count);
        for k in s.kinds.iter().filter(|k| k.department == d.department) {
            let _ = writeln!(out, "    {:<30} {:>8}", k.kind, k.count);
        }
    }
    let _ = writeln!(out, "\nscreening");
    let _ = writeln!(out, "  flags raised      {}", rules(&s.flags_raised));
    let _ = writeln!(out, "  flags withdrawn   {}", rules(&s.flags_withdrawn));
    let _ = writeln!(
        out,
        "  flagged now       {} persons ({})",
        s.flagged_persons,
        rules(&s.flagged_by_rule)
    );
    let _ = writeln!(
        out,
        "\nabnormal list (异常名录)  {} listed now; this period {} confirmed, {} cleared, {} revoked",
        s.listed_persons, s.confirmed_in_period, s.cleared_in_period, s.revoked_in_period
    );
    let _ = writeln!(out, "\nreferrals  {}", s.referrals);
    for c in s.referral_states.iter().filter(|c| c.count > 0) {
        let _ = writeln!(out, "  {:<26} {:>6}", state_name(c.state), c.count);
    }
    let _ = writeln!(out, "  overdue {}", s.overdue_referrals.len());
    for o in &s.overdue_referrals {
        let _ = writeln!(
            out,
            "    {:<20} {:<26} due {}  {} {}",
            o.referral_id,
            state_name(o.state),
            format_time(o.due_at.as_ref()),
            o.region_code,
            o.police_unit
        );
    }
    let _ = writeln!(
        out,
        "\nassessment (考核)            all matters               without listed persons' ({:<3}) without flagged persons' ({:<3}) target",
        s.excluded_confirmed_persons, s.excluded_persons
    );
    let all = s.rates_all.clone().unwrap_or_default();
    let confirmed = s.rates_excluding_confirmed.clone().unwrap_or_default();
    let flagged = s.rates_excluding_flagged.clone().unwrap_or_default();
    let rows: [(&str, Pick); 4] = [
        ("mediation success", |r| r.mediation_success.as_ref()),
        ("completion", |r| r.completion.as_ref()),
        ("satisfaction", |r| r.satisfaction.as_ref()),
        ("reconsideration reversal", |r| {
            r.reconsideration_reversal.as_ref()
        }),
    ];
    for (name, pick) in rows {
        let _ = writeln!(
            out,
            "  {name:<26} {:<18} {:<6} {:<18} {:<12} {:<18} {:<12} {}",
            percent(pick(&all)),
            verdict(pick(&all)),
            percent(pick(&confirmed)),
            verdict(pick(&confirmed)),
            percent(pick(&flagged)),
            verdict(pick(&flagged)),
            target(pick(&all))
        );
    }
    for t in s.targets.iter().filter(|t| !t.measured) {
        let _ = writeln!(
            out,
            "  {:<26} not recorded here{:>38}≥{}%",
            t.name.replace('_', " "),
            "",
            t.at_least_percent
        );
    }
    let _ = writeln!(
        out,
        "  (listed: confirmed abusive by a determination and on the list now; flagged: an open screening flag now)"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use caselink_proto::v1::{AssessmentTarget, DepartmentTotal, KindCount, OverdueReferral};

    #[test]
    fn the_report_shows_totals_referrals_and_rates_against_targets() {
        let rate = |name: &str, n, d, t| Rate {
            name: name.into(),
            numerator: n,
            denominator: d,
            target_percent: t,
        };
        let s = Situation {
            region_prefix: "4306".into(),
            events: 3,
            departments: vec![DepartmentTotal {
                department: 1,
                count: 3,
            }],
            kinds: vec![KindCount {
                department: 1,
                kind: "complaint.received".into(),
                count: 3,
            }],
            overdue_referrals: vec![OverdueReferral {
                referral_id: "ref-1".into(),
                state: ReferralState::Drafted as i32,
                ..OverdueReferral::default()
            }],
            rates_all: Some(AssessmentRates {
                mediation_success: Some(rate("mediation_success", 1, 2, 80)),
                ..AssessmentRates::default()
            }),
            rates_excluding_flagged: Some(AssessmentRates {
                mediation_success: Some(rate("mediation_success", 1, 1, 80)),
                ..AssessmentRates::default()
            }),
            rates_excluding_confirmed: Some(AssessmentRates {
                mediation_success: Some(rate("mediation_success", 2, 3, 80)),
                ..AssessmentRates::default()
            }),
            listed_persons: 7,
            revoked_in_period: 2,
            targets: vec![AssessmentTarget {
                name: "first_call_connection".into(),
                at_least_percent: 95,
                measured: false,
            }],
            ..Situation::default()
        };
        let text = report(&s);
        assert!(text.contains("regions 4306"), "{text}");
        assert!(text.contains("complaint.received"), "{text}");
        assert!(text.contains("ref-1"), "{text}");
        assert!(text.contains("drafted"), "{text}");
        assert!(text.contains("50.0% (1/2)"), "{text}");
        assert!(text.contains("below"), "{text}");
        assert!(text.contains("100.0% (1/1)"), "{text}");
        assert!(text.contains("≥80%"), "{text}");
        assert!(text.contains("first call connection"), "{text}");
        assert!(text.contains("66.7% (2/3)"), "{text}");
        assert!(text.contains("7 listed now"), "{text}");
        assert!(text.contains("2 revoked"), "{text}");
    }
}
