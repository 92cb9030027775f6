//! `caselink determination …`: the local bureau's decision on a screened person and the abnormal list 异常名录 —
//! confirm, clear or revoke (the market bureau's determiner), check whether a person is listed, list the entries.
//!
//! Without `--token`, each command uses the development token of the party that makes it: `determiner` (the market
//! bureau of 4306) for confirm/clear/revoke, `analyst` for check/list.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use caselink_proto::v1::determination_client::DeterminationClient;
use caselink_proto::v1::*;

use crate::referral::Common;
use crate::submit::status_error as status;
use crate::timeline::{format_time, PersonArg};

#[derive(clap::Args)]
pub(crate) struct DeterminationArgs {
    #[command(subcommand)]
    command: DeterminationCommand,
    #[command(flatten)]
    common: Common,
    /// Why you read or decide (sent with every call; recorded in the audit trail).
    #[arg(long, global = true, default_value = "abnormal-list determination")]
    purpose: String,
}

/// The person and the version the move expects.
#[derive(clap::Args)]
struct Target {
    #[command(flatten)]
    person: PersonArg,
    /// The person's determination version as you last saw it (the last move's answer or `caselink person`; 0 for a
    /// person never determined). A stale one is refused (ABORTED): reload and retry.
    #[arg(long)]
    expected_version: u64,
}

#[derive(clap::Subcommand)]
enum DeterminationCommand {
    /// Determiner: confirm that the person abuses the complaint system; lists them on the abnormal list.
    Confirm {
        #[command(flatten)]
        target: Target,
        /// A rule the determination rests on, C1 … C7 or R1 … R5 (repeat).
        #[arg(long = "rule", required = true)]
        rules: Vec<String>,
        /// The written basis 认定依据.
        #[arg(long)]
        basis: String,
        /// A case event (event id) the determination rests on (repeat; default: the evidence of the person's flags of
        /// those rules).
        #[arg(long = "evidence")]
        evidence: Vec<String>,
        /// The determining bureau's 6-digit region code, e.g. 430602.
        #[arg(long)]
        region: String,
        /// Days on the list (0: the configured period, by default 365).
        #[arg(long, default_value_t = 0)]
        days: u32,
    },
    /// Determiner: clear the person's open flags (of the rules named, or all): the suspicion is not upheld.
    Clear {
        #[command(flatten)]
        target: Target,
        /// A rule whose open flag is cleared (repeat; none: every open flag).
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// Why the suspicion is not upheld.
        #[arg(long)]
        reason: String,
        /// The deciding bureau's 6-digit region code.
        #[arg(long)]
        region: String,
    },
    /// Determiner: take a confirmed entry off the list before it expires, with the reason.
    Revoke {
        #[command(flatten)]
        target: Target,
        /// Why the entry comes off the list (e.g. a successful objection).
        #[arg(long)]
        reason: String,
        /// The deciding bureau's 6-digit region code (default: the entry's own).
        #[arg(long, default_value = "")]
        region: String,
    },
    /// Is the person on the abnormal list now?
    Check {
        #[command(flatten)]
        person: PersonArg,
    },
    /// The abnormal list: confirmed entries by region, one line each.
    List {
        /// Regions (of the determining bureau) whose code starts with this, e.g. 43 or 4306 (empty: all you may see).
        #[arg(long, default_value = "")]
        region_prefix: String,
        /// Also entries that expired (not revoked ones).
        #[arg(long)]
        include_expired: bool,
        /// Entries a page (0: the service's default, 50; at most 500).
        #[arg(long, default_value_t = 0)]
        page_size: u32,
        /// Start at this page (printed after a page when more follow).
        #[arg(long, default_value = "")]
        page_token: String,
        /// Every page, not just one.
        #[arg(long)]
        all: bool,
        /// Only entries whose period ends within this many days from now: the ones to review before they lapse.
        #[arg(long)]
        expiring_within_days: Option<u32>,
    },
}

pub(crate) async fn run(args: DeterminationArgs) -> anyhow::Result<ExitCode> {
    use DeterminationCommand as C;
    let common = &args.common;
    let key = match &args.command {
        C::Check { .. } | C::List { .. } => "analyst",
        C::Confirm { .. } | C::Clear { .. } | C::Revoke { .. } => "determiner",
    };
    let token = common.tokens.for_key(key)?;
    let channel = common
        .tokens
        .connect(&common.addr)
        .await
        .context("the linkage service")?;
    let mut client = DeterminationClient::with_interceptor(
        channel,
        crate::tokens::bearer(&token, Some(&args.purpose))?,
    );
    let moved = match args.command {
        C::Confirm {
            target,
            rules,
            basis,
            evidence,
            region,
            days,
        } => {
            client
                .confirm(ConfirmRequest {
                    person: Some(target.person.lookup()?),
                    expected_version: target.expected_version,
                    rules,
                    basis,
                    evidence_event_ids: evidence,
                    region_code: region,
                    valid_days: days,
                })
                .await
        }
        C::Clear {
            target,
            rules,
            reason,
            region,
        } => {
            client
                .clear(ClearRequest {
                    person: Some(target.person.lookup()?),
                    expected_version: target.expected_version,
                    rules,
                    reason,
                    region_code: region,
                })
                .await
        }
        C::Revoke {
            target,
            reason,
            region,
        } => {
            client
                .revoke(RevokeRequest {
                    person: Some(target.person.lookup()?),
                    expected_version: target.expected_version,
                    reason,
                    region_code: region,
                })
                .await
        }
        C::Check { person } => {
            let answer = client
                .check(CheckRequest {
                    person: Some(person.lookup()?),
                })
                .await
                .map_err(status)?
                .into_inner();
            if common.json {
                println!("{}", serde_json::to_string(&answer)?);
            } else {
                println!("{}", check_text(&answer));
            }
            return Ok(ExitCode::SUCCESS);
        }
        C::List {
            region_prefix,
            include_expired,
            page_size,
            page_token,
            all,
            expiring_within_days,
        } => {
            let expiring_before = expiring_within_days.map(|days| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                caselink_proto::Timestamp {
                    seconds: i64::try_from(now + u64::from(days) * 86_400).unwrap_or(i64::MAX),
                    nanos: 0,
                }
            });
            let mut request = ListAbnormalRequest {
                region_prefix,
                include_expired,
                page_size,
                page_token,
                expiring_before,
            };
            let mut count = 0usize;
            loop {
                let page = client
                    .list_abnormal(request.clone())
                    .await
                    .map_err(status)?
                    .into_inner();
                for entry in &page.entries {
                    count += 1;
                    if common.json {
                        println!("{}", serde_json::to_string(entry)?);
                    } else {
                        println!("{}", entry_line(entry));
                    }
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                if !all {
                    if !common.json {
                        println!(
                            "more entries follow: --page-token {} (or --all)",
                            page.next_page_token
                        );
                    }
                    break;
                }
                request.page_token = page.next_page_token;
            }
            if !common.json {
                println!("{count} entries");
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let moved = moved.map_err(status)?.into_inner();
    if common.json {
        println!("{}", serde_json::to_string(&moved)?);
    } else if let Some(view) = &moved.determination {
        print!("{}", view_text(view));
    }
    Ok(ExitCode::SUCCESS)
}

/// `confirmed`, `cleared`, `revoked`, `expired` (`none`: never determined).
pub(crate) fn state_name(state: DeterminationState) -> String {
    match state {
        DeterminationState::Unspecified => "none".to_string(),
        other => other
            .as_str_name()
            .trim_start_matches("DETERMINATION_STATE_")
            .to_ascii_lowercase(),
    }
}

/// Rules with their clauses: `R5 三(五), C1 二(一)`.
fn rules_text(flags: &[DeterminedFlag]) -> String {
    flags
        .iter()
        .map(|f| {
            if f.clause.is_empty() {
                f.rule.clone()
            } else {
                format!("{} {}", f.rule, f.clause)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A person's determination as it stands, one fact a line (a move's answer; `caselink person` shows it too).
pub(crate) fn view_text(view: &DeterminationView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "determination {}, version {} (the next move's --expected-version)",
        state_name(view.state()),
        view.version
    );
    if !view.person_key.is_empty() {
        let _ = writeln!(out, "  person    {}", view.person_key);
    }
    if !view.region_code.is_empty() {
        let _ = writeln!(out, "  region    {}", view.region_code);
    }
    if !view.flags.is_empty() {
        let _ = writeln!(out, "  rules     {}", rules_text(&view.flags));
    }
    if view.decided_at.is_some() || !view.decided_by.is_empty() {
        let mut line = format!("  decided   {}", format_time(view.decided_at.as_ref()));
        if !view.decided_by.is_empty() {
            let _ = write!(line, " by {}", view.decided_by);
        }
        let _ = writeln!(out, "{line}");
    }
    if view.confirmed_at.is_some() {
        let _ = writeln!(
            out,
            "  confirmed {}",
            format_time(view.confirmed_at.as_ref())
        );
    }
    if view.expires_at.is_some() {
        // The period of the last confirmation, which a later revocation or clearing ended.
        let verb = match view.state() {
            DeterminationState::Confirmed => "listed until then",
            DeterminationState::Expired => "expired; not listed",
            DeterminationState::Revoked => "revoked; not listed",
            _ => "not listed",
        };
        let _ = writeln!(
            out,
            "  expires   {} ({verb})",
            format_time(view.expires_at.as_ref())
        );
    }
    if !view.basis.is_empty() {
        let _ = writeln!(out, "  basis     {}", view.basis);
    }
    if !view.reason.is_empty() {
        let _ = writeln!(out, "  reason    {}", view.reason);
    }
    if !view.evidence_event_ids.is_empty() {
        let _ = writeln!(
            out,
            "  evidence  {} events: {}",
            view.evidence_event_ids.len(),
            view.evidence_event_ids.join(" ")
        );
    }
    out
}

/// `listed until <time> (clauses …)`, `listed` (a department writer learns yes or no only) or `not listed`.
fn check_text(answer: &CheckResponse) -> String {
    if !answer.listed {
        return "not listed".to_string();
    }
    let mut text = "listed".to_string();
    if answer.listed_until.is_some() {
        let _ = write!(text, " until {}", format_time(answer.listed_until.as_ref()));
    }
    if !answer.clauses.is_empty() {
        let _ = write!(text, " (clauses {})", answer.clauses.join(", "));
    }
    text
}

/// One abnormal-list entry on one line: who (clear when the answer carries it, else masked), region, rules, dates,
/// figures.
fn entry_line(entry: &AbnormalEntry) -> String {
    let key = entry.person_key.get(..16).unwrap_or(&entry.person_key);
    let who = match (&entry.clear_identity, &entry.identity) {
        (Some(clear), _) => format!("{} {}", clear.id_number, clear.name),
        (None, Some(masked)) => format!("{} {}", masked.id_number_masked, masked.name_masked),
        (None, None) => "-".to_string(),
    };
    let f = entry.figures.clone().unwrap_or_default();
    let mut line = format!(
        "{key}…  {who}  region {}  {}  confirmed {}  expires {}  complaints+reports {}, disclosure {}, reconsiderations/suits {}, discipline reports {}",
        entry.region_code,
        rules_text(&entry.flags),
        format_time(entry.confirmed_at.as_ref()),
        format_time(entry.expires_at.as_ref()),
        f.complaints_and_reports,
        f.disclosure_requests,
        f.reconsiderations_and_suits,
        f.discipline_reports,
    );
    if entry.state() != DeterminationState::Confirmed {
        let _ = write!(line, "  [{}]", state_name(entry.state()));
    }
    line
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use caselink_proto::Timestamp;

    /// 2026-03-01T10:00:00+08:00.
    const MARCH_1: i64 = 1_772_330_400;

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    fn r5() -> DeterminedFlag {
        DeterminedFlag {
            rule: "R5".into(),
            clause: "三(五)".into(),
            revision: 2,
        }
    }

    #[test]
    fn a_confirmation_shows_state_next_version_rules_basis_and_expiry_in_china_time() {
        let view = DeterminationView {
            person_key: "ab".repeat(32),
            state: DeterminationState::Confirmed as i32,
            version: 1,
            region_code: "430602".into(),
            flags: vec![r5()],
            basis: "两次举报经查均不属实".into(),
            evidence_event_ids: vec!["e-1".into(), "e-2".into()],
            decided_at: at(MARCH_1),
            decided_by: "staff-1".into(),
            confirmed_at: at(MARCH_1),
            expires_at: at(MARCH_1 + 365 * 86_400),
            ..DeterminationView::default()
        };
        let text = view_text(&view);
        assert!(
            text.contains("determination confirmed, version 1"),
            "{text}"
        );
        assert!(text.contains("--expected-version"), "{text}");
        assert!(text.contains("region    430602"), "{text}");
        assert!(text.contains("R5 三(五)"), "{text}");
        assert!(text.contains("basis     两次举报经查均不属实"), "{text}");
        assert!(
            text.contains("decided   2026-03-01T10:00:00+08:00 by staff-1"),
            "{text}"
        );
        assert!(
            text.contains("expires   2027-03-01T10:00:00+08:00 (listed until then)"),
            "{text}"
        );
        assert!(text.contains("2 events: e-1 e-2"), "{text}");
        assert!(!text.contains("reason"), "{text}");
    }

    #[test]
    fn a_revocation_shows_its_reason_and_the_period_it_cut_short() {
        let view = DeterminationView {
            state: DeterminationState::Revoked as i32,
            version: 2,
            reason: "异议成立".into(),
            confirmed_at: at(MARCH_1),
            expires_at: at(MARCH_1 + 365 * 86_400),
            ..DeterminationView::default()
        };
        let text = view_text(&view);
        assert!(text.contains("determination revoked, version 2"), "{text}");
        assert!(text.contains("reason    异议成立"), "{text}");
        assert!(text.contains("(revoked; not listed)"), "{text}");
        assert!(!text.contains("basis"), "{text}");
        assert_eq!(state_name(DeterminationState::Unspecified), "none");
        assert_eq!(state_name(DeterminationState::Cleared), "cleared");
    }

    #[test]
    fn check_answers_listed_with_clauses_and_until_when_or_not_listed() {
        assert_eq!(check_text(&CheckResponse::default()), "not listed");
        let listed = CheckResponse {
            listed: true,
            clauses: vec!["三(五)".into(), "二(一)".into()],
            listed_until: at(MARCH_1),
        };
        assert_eq!(
            check_text(&listed),
            "listed until 2026-03-01T10:00:00+08:00 (clauses 三(五), 二(一))"
        );
        // A department writer learns yes or no only.
        let bare = CheckResponse {
            listed: true,
            ..CheckResponse::default()
        };
        assert_eq!(check_text(&bare), "listed");
    }

    #[test]
    fn an_entry_line_shows_who_region_rules_dates_and_figures() {
        let mut entry = AbnormalEntry {
            person_key: "0123456789abcdef".repeat(4),
            identity: Some(MaskedIdentity {
                id_number_masked: "430602********1237".into(),
                name_masked: "张*".into(),
                phone_masked: "138****5678".into(),
            }),
            region_code: "430602".into(),
            figures: Some(AbnormalListFigures {
                complaints_and_reports: 12,
                disclosure_requests: 3,
                reconsiderations_and_suits: 2,
                discipline_reports: 2,
                ..AbnormalListFigures::default()
            }),
            flags: vec![r5()],
            confirmed_at: at(MARCH_1),
            expires_at: at(MARCH_1 + 365 * 86_400),
            state: DeterminationState::Confirmed as i32,
            version: 1,
            ..AbnormalEntry::default()
        };
        let line = entry_line(&entry);
        assert!(line.starts_with("0123456789abcdef…  "), "{line}");
        assert!(line.contains("430602********1237 张*"), "{line}");
        assert!(line.contains("region 430602  R5 三(五)"), "{line}");
        assert!(
            line.contains("confirmed 2026-03-01T10:00:00+08:00  expires 2027-03-01T10:00:00+08:00"),
            "{line}"
        );
        assert!(
            line.contains("complaints+reports 12, disclosure 3, reconsiderations/suits 2, discipline reports 2"),
            "{line}"
        );
        assert!(!line.contains('['), "a listed entry needs no state: {line}");

        // A clear view (determiners, police) shows the clear identity; an expired entry says so.
        entry.clear_identity = Some(ClearIdentity {
            id_number: "430602198503121237".into(),
            name: "张三".into(),
            ..ClearIdentity::default()
        });
        entry.state = DeterminationState::Expired as i32;
        let line = entry_line(&entry);
        assert!(line.contains("430602198503121237 张三"), "{line}");
        assert!(line.ends_with("[expired]"), "{line}");
    }
}
