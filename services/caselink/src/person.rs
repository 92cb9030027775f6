//! `caselink person` (the joint view of one person, readably) and `caselink alerts` (follow screening alerts live).

use std::process::ExitCode;

use caselink_proto::v1::{
    Alert, AlertKind, DeterminationView, Flag, FlagStatus, GetPersonViewRequest, PersonView,
    WatchAlertsRequest,
};
use futures::StreamExt;

use crate::submit::code_name;
use crate::timeline::{format_time, PersonArg};

#[derive(clap::Args)]
pub(crate) struct PersonArgs {
    #[command(flatten)]
    person: PersonArg,
    /// Print the view as proto3 JSON.
    #[arg(long)]
    json: bool,
    /// Why you read this person's data (required; recorded in the audit trail).
    #[arg(long)]
    purpose: String,
    #[command(flatten)]
    tokens: crate::tokens::TokenArgs,
    /// The linkage service address.
    #[arg(long, default_value = "http://127.0.0.1:50050")]
    addr: String,
}

pub(crate) async fn person(args: PersonArgs) -> anyhow::Result<ExitCode> {
    let lookup = args.person.lookup()?;
    let mut client = args.tokens.linkage(&args.addr, Some(&args.purpose)).await?;
    let view = client
        .get_person_view(GetPersonViewRequest {
            person: Some(lookup),
        })
        .await
        .map_err(crate::submit::status_error)?
        .into_inner();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print_view(&view);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_view(view: &PersonView) {
    let id = view.identity.clone().unwrap_or_default();
    println!("person    {}", view.person_key);
    println!(
        "identity  {}  {}  {}",
        id.id_number_masked, id.name_masked, id.phone_masked
    );
    if let Some(clear) = &view.clear_identity {
        println!(
            "clear     {}  {}  {}  {}",
            clear.id_number, clear.name, clear.phone, clear.address
        );
    }
    println!(
        "records   {} events, {} to {}, regions {}",
        view.events,
        format_time(view.first_occurred_at.as_ref()),
        format_time(view.last_occurred_at.as_ref()),
        view.regions.join(" ")
    );
    if let Some(f) = &view.figures {
        println!();
        println!("abnormal-list figures (one grievance counted once across platforms)");
        println!(
            "  complaints and reports {:>5}   matters {:>5}",
            f.complaints_and_reports, f.matters
        );
        println!(
            "  disclosure requests    {:>5}   reconsiderations and suits {:>5}   discipline reports {:>5}",
            f.disclosure_requests, f.reconsiderations_and_suits, f.discipline_reports
        );
        if !f.main_issues.is_empty() {
            println!("  main issues            {}", f.main_issues.join(", "));
        }
        if !f.categories.is_empty() {
            println!("  categories             {}", f.categories.join(", "));
        }
    }
    println!();
    println!("by department and kind");
    for c in &view.counts {
        let department = caselink_domain::department_code(c.department());
        println!("  {department:<9} {:<32} {:>5}", c.kind, c.count);
    }
    println!();
    if view.flags.is_empty() {
        println!("flags     none");
    }
    for flag in &view.flags {
        print_flag(flag);
    }
    println!();
    print!("{}", determination_text(view.determination.as_ref()));
    print!("{}", referrals_text(&view.referrals));
    if !view.links.is_empty() {
        println!();
        println!(
            "linked persons (group {}, {} members)",
            view.group_id, view.group_size
        );
        for link in &view.links {
            let id = link.identity.clone().unwrap_or_default();
            println!(
                "  {}…  {:<20} {:<20} {} ({} evidence events)",
                link.person_key.get(..16).unwrap_or(&link.person_key),
                id.id_number_masked,
                link.reason,
                link.detail,
                link.evidence_event_ids.len()
            );
        }
    }
}

/// The criminal referrals naming the person, one line each (`caselink referral get` shows one's history).
fn referrals_text(referrals: &[caselink_proto::v1::ReferralView]) -> String {
    if referrals.is_empty() {
        return "referrals none\n".to_owned();
    }
    let mut text = format!("referrals {}\n", referrals.len());
    for referral in referrals {
        text.push_str(&format!("  {}\n", crate::referral::summary(referral)));
    }
    text
}

/// Where the person's determination stands (`caselink determination` moves it).
fn determination_text(determination: Option<&DeterminationView>) -> String {
    match determination {
        Some(d) => crate::determination::view_text(d),
        None => {
            "determination none (never determined; open flags await the bureau's determination)\n"
                .to_string()
        }
    }
}

fn status_name(status: FlagStatus) -> &'static str {
    match status {
        FlagStatus::Open => "open",
        FlagStatus::Confirmed => "confirmed",
        FlagStatus::Cleared => "cleared",
        FlagStatus::Withdrawn => "withdrawn",
        FlagStatus::Unspecified => "-",
    }
}

/// A flag's heading: rule, clause, titles, and where it stands.
fn flag_heading(flag: &Flag) -> String {
    format!(
        "flag {} {} {} / {}  [{}, revision {}]",
        flag.rule,
        flag.clause,
        flag.title_zh,
        flag.title,
        status_name(flag.status()),
        flag.revision
    )
}

fn print_flag(flag: &Flag) {
    println!("{}", flag_heading(flag));
    println!("  guideline {}", flag.guideline);
    println!(
        "  window    {} to {}",
        format_time(flag.window_from.as_ref()),
        format_time(flag.window_to.as_ref())
    );
    for figure in &flag.figures {
        println!(
            "  figure    {} = {} (threshold {})",
            figure.name, figure.value, figure.threshold
        );
    }
    println!(
        "  evidence  {} events: {}",
        flag.evidence_total,
        flag.evidence_event_ids.join(" ")
    );
}

#[derive(clap::Args)]
pub(crate) struct AlertsArgs {
    /// Region code prefix to follow, e.g. 43 or 4306 (empty: every region your token may see).
    #[arg(long, default_value = "")]
    region: String,
    /// Resume after this cursor (printed with every alert); 0 = from now on.
    #[arg(long, default_value_t = 0)]
    cursor: u64,
    /// Print proto3 JSON, one alert a line.
    #[arg(long)]
    json: bool,
    /// Why you follow alerts (recorded in the audit trail).
    #[arg(long, default_value = "joint-meeting alert duty")]
    purpose: String,
    #[command(flatten)]
    tokens: crate::tokens::TokenArgs,
    /// The linkage service address.
    #[arg(long, default_value = "http://127.0.0.1:50050")]
    addr: String,
}

pub(crate) async fn alerts(args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let mut cursor = args.cursor;
    loop {
        let mut client = args.tokens.linkage(&args.addr, Some(&args.purpose)).await?;
        let mut stream = match client
            .watch_alerts(WatchAlertsRequest {
                region_prefix: args.region.clone(),
                cursor,
            })
            .await
        {
            Ok(s) => s.into_inner(),
            Err(s) if s.code() == tonic::Code::Unavailable => {
                eprintln!("linkage unavailable ({}); retrying in 2 s", s.message());
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                continue;
            }
            Err(s) => anyhow::bail!("{}: {}", code_name(s.code()), s.message()),
        };
        eprintln!(
            "following alerts of region {:?} after cursor {cursor} (Ctrl-C to stop)",
            args.region
        );
        while let Some(item) = stream.next().await {
            match item {
                Ok(alert) => {
                    cursor = alert.cursor;
                    if args.json {
                        println!("{}", serde_json::to_string(&alert)?);
                    } else {
                        print_alert(&alert);
                    }
                }
                Err(s) => {
                    eprintln!(
                        "alert stream interrupted ({}); resuming after cursor {cursor}",
                        s.message()
                    );
                    break;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

fn print_alert(alert: &Alert) {
    let kind = match alert.kind() {
        AlertKind::Raised => "RAISED",
        AlertKind::Grew => "GREW",
        AlertKind::Withdrawn => "WITHDRAWN",
        AlertKind::Unspecified => "-",
    };
    let flag = alert.flag.clone().unwrap_or_default();
    let id = alert.identity.clone().unwrap_or_default();
    println!(
        "[{}] {} {kind:<9} {} {} {}  {}  {} evidence  person {}",
        alert.cursor,
        format_time(alert.at.as_ref()),
        flag.rule,
        flag.clause,
        alert.region_code,
        id.id_number_masked,
        flag.evidence_total,
        alert.person_key.get(..16).unwrap_or(&alert.person_key)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use caselink_proto::v1::{DeterminationState, DeterminedFlag};

    #[test]
    fn a_flag_heading_says_where_the_flag_stands() {
        let mut flag = Flag {
            rule: "R5".into(),
            clause: "三(五)".into(),
            title_zh: "举报不实".into(),
            title: "untrue reports".into(),
            revision: 2,
            status: FlagStatus::Open as i32,
            ..Flag::default()
        };
        assert_eq!(
            flag_heading(&flag),
            "flag R5 三(五) 举报不实 / untrue reports  [open, revision 2]"
        );
        for (status, name) in [
            (FlagStatus::Confirmed, "[confirmed,"),
            (FlagStatus::Cleared, "[cleared,"),
            (FlagStatus::Withdrawn, "[withdrawn,"),
        ] {
            flag.status = status as i32;
            assert!(flag_heading(&flag).contains(name), "{status:?}");
        }
    }

    #[test]
    fn the_view_lists_the_persons_referrals() {
        assert_eq!(referrals_text(&[]), "referrals none\n");
        let referral = caselink_proto::v1::ReferralView {
            referral_id: "R-2026-001".into(),
            version: 3,
            state: caselink_proto::v1::ReferralState::Transferred as i32,
            police_unit: "gaj-430602".into(),
            overdue: true,
            ..Default::default()
        };
        let text = referrals_text(&[referral]);
        assert!(text.starts_with("referrals 1\n"), "{text}");
        assert!(
            text.contains("R-2026-001 v3 transferred with gaj-430602"),
            "{text}"
        );
        assert!(text.contains("OVERDUE"), "{text}");
    }

    #[test]
    fn the_view_shows_the_determination_or_that_there_is_none() {
        let none = determination_text(None);
        assert!(none.starts_with("determination none"), "{none}");
        let cleared = DeterminationView {
            state: DeterminationState::Cleared as i32,
            version: 3,
            region_code: "430602".into(),
            flags: vec![DeterminedFlag {
                rule: "C1".into(),
                clause: "二(一)".into(),
                revision: 4,
            }],
            reason: "投诉均有实际消费".into(),
            ..DeterminationView::default()
        };
        let text = determination_text(Some(&cleared));
        assert!(text.contains("determination cleared, version 3"), "{text}");
        assert!(text.contains("region    430602"), "{text}");
        assert!(text.contains("rules     C1 二(一)"), "{text}");
        assert!(text.contains("reason    投诉均有实际消费"), "{text}");
    }
}
