//! `caselink referral …` and `caselink leads`: criminal referral 行刑衔接 for both sides — the market case team and
//! head move a referral, the police receive, forward, register or decline it and follow their unit's leads live.
//!
//! Without `--token`, each command uses the development token of the party that makes it: `determiner` for the case
//! team, `agency_head` for approve/refuse, `police` for police moves and leads, `analyst` for get/list.

use std::process::ExitCode;

use anyhow::{bail, Context};
use caselink_proto::v1::referral_client::ReferralClient;
use caselink_proto::v1::*;
use caselink_proto::Timestamp;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::submit::code_name;
use crate::submit::status_error as status;

/// China Standard Time, in which deadlines are written.
const CST: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

#[derive(clap::Args)]
pub(crate) struct ReferralArgs {
    #[command(subcommand)]
    command: ReferralCommand,
    #[command(flatten)]
    common: Common,
}

/// The options every workflow command shares (`referral`, `leads`, `determination`).
#[derive(clap::Args, Clone)]
pub(crate) struct Common {
    /// Print proto3 JSON instead of readable lines.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) tokens: crate::tokens::TokenArgs,
    /// The linkage service address.
    #[arg(long, global = true, default_value = "http://127.0.0.1:50050")]
    pub(crate) addr: String,
}

/// The referral and the version the move expects (from the last answer or `get`).
#[derive(clap::Args)]
struct Target {
    /// The referral id.
    #[arg(long)]
    id: String,
    /// The referral's version as you last saw it; a stale one is refused (ABORTED): reload and retry.
    #[arg(long)]
    expected_version: u64,
}

#[derive(clap::Subcommand)]
enum ReferralCommand {
    /// Case team: the written report of a suspected crime (creates the referral).
    Draft {
        /// A new referral id (letters, digits, '-', '_'), e.g. the agency's file number.
        #[arg(long)]
        id: String,
        /// The written report: facts, suspected offence, why it meets the prosecution standard.
        #[arg(long)]
        report: String,
        /// One evidence-list item (repeat).
        #[arg(long = "evidence", required = true)]
        evidence: Vec<String>,
        /// A suspect's person key (repeat; never a clear ID number).
        #[arg(long = "person-key", required = true)]
        person_keys: Vec<String>,
        /// A case event the referral rests on (repeat).
        #[arg(long = "event-id")]
        event_ids: Vec<String>,
        /// The agency's 6-digit region code.
        #[arg(long)]
        region: String,
        /// The agency's file number.
        #[arg(long, default_value = "")]
        case_ref: String,
    },
    /// Agency head: approve the transfer.
    Approve {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Agency head: refuse the transfer, with the reason.
    Refuse {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        reason: String,
    },
    /// Case team: hand the case to a police unit with the documents of art. 6.
    Transfer {
        #[command(flatten)]
        target: Target,
        /// The police unit code.
        #[arg(long)]
        unit: String,
        /// The transfer letter (number or text).
        #[arg(long)]
        letter: String,
        /// The investigation report.
        #[arg(long)]
        investigation_report: String,
        /// An inspection report or expert conclusion (repeat).
        #[arg(long = "inspection")]
        inspections: Vec<String>,
        /// Other material (repeat).
        #[arg(long = "material")]
        materials: Vec<String>,
    },
    /// Police: sign the receipt.
    Receive {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value = "")]
        receipt: String,
    },
    /// Police: not your jurisdiction — forward to the competent unit.
    Forward {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        to_unit: String,
        #[arg(long)]
        reason: String,
    },
    /// Police: register the case 立案.
    Register {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value = "")]
        police_case_ref: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Police: decline to register 不予立案, with reasons.
    Decline {
        #[command(flatten)]
        target: Target,
        /// no-crime, insufficient-evidence or other.
        #[arg(long)]
        reason: String,
        #[arg(long)]
        detail: String,
    },
    /// Case team: ask the police to reconsider a decline.
    RequestReconsideration {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        grounds: String,
    },
    /// Police: answer a reconsideration (--register, or the decline is upheld).
    DecideReconsideration {
        #[command(flatten)]
        target: Target,
        /// Register the case now (without it the decline is upheld).
        #[arg(long)]
        register: bool,
        #[arg(long)]
        reasons: String,
        #[arg(long, default_value = "")]
        police_case_ref: String,
    },
    /// Case team: ask the procuratorate for supervision.
    RequestSupervision {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        grounds: String,
        #[arg(long, default_value = "")]
        procuratorate: String,
    },
    /// Close with an outcome (police after registration; the case team after a final decline, with --as-agency).
    Close {
        #[command(flatten)]
        target: Target,
        /// criminal-case, security-penalty, returned or other.
        #[arg(long)]
        outcome: String,
        #[arg(long)]
        detail: String,
        /// Close as the agency's case team (default: as the police unit).
        #[arg(long)]
        as_agency: bool,
    },
    /// One referral with its history.
    Get {
        #[arg(long)]
        id: String,
    },
    /// Referrals by state, police unit, overdue, region.
    List {
        /// A state (repeat), e.g. transferred, received, declined.
        #[arg(long = "state")]
        states: Vec<String>,
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long)]
        overdue: bool,
        #[arg(long, default_value = "")]
        region: String,
    },
}

#[derive(clap::Args)]
pub(crate) struct LeadsArgs {
    /// Your police unit code.
    #[arg(long)]
    unit: String,
    /// Resume after this cursor (printed with every lead); 0 = from the unit's first lead.
    #[arg(long, default_value_t = 0)]
    cursor: u64,
    #[command(flatten)]
    common: Common,
}

/// The purpose sent with referral requests (recorded in the audit trail).
const PURPOSE: &str = "criminal referral";

fn parse_enum<T>(
    field: &str,
    text: &str,
    prefix: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> anyhow::Result<T> {
    let name = format!("{prefix}{}", text.replace('-', "_").to_ascii_uppercase());
    parse(&name).with_context(|| format!("{field}: unknown value {text:?}"))
}

pub(crate) async fn run(args: ReferralArgs) -> anyhow::Result<ExitCode> {
    use ReferralCommand as C;
    let common = &args.common;
    let key = match &args.command {
        C::Approve { .. } | C::Refuse { .. } => "agency_head",
        C::Receive { .. }
        | C::Forward { .. }
        | C::Register { .. }
        | C::Decline { .. }
        | C::DecideReconsideration { .. } => "police",
        C::Close {
            as_agency: false, ..
        } => "police",
        C::Get { .. } | C::List { .. } => "analyst",
        _ => "determiner",
    };
    let token = common.tokens.for_key(key)?;
    let channel = common
        .tokens
        .connect(&common.addr)
        .await
        .context("the linkage service")?;
    let mut client =
        ReferralClient::with_interceptor(channel, crate::tokens::bearer(&token, Some(PURPOSE))?);
    let moved = match args.command {
        C::Draft {
            id,
            report,
            evidence,
            person_keys,
            event_ids,
            region,
            case_ref,
        } => {
            client
                .draft(DraftReferralRequest {
                    referral_id: id,
                    expected_version: 0,
                    drafted: Some(ReferralDrafted {
                        case_report: report,
                        evidence_list: evidence,
                        person_keys,
                        evidence_event_ids: event_ids,
                        region_code: region,
                        case_ref,
                        ..Default::default()
                    }),
                })
                .await
        }
        C::Approve { target, note } => {
            client
                .approve(ApproveReferralRequest {
                    referral_id: target.id,
                    expected_version: target.expected_version,
                    approved: Some(ReferralApproved { note }),
                })
                .await
        }
        C::Refuse { target, reason } => {
            client
                .refuse(RefuseReferralRequest {
                    referral_id: target.id,
                    expected_version: target.expected_version,
                    refused: Some(ReferralRefused { reason }),
                })
                .await
        }
        C::Transfer {
            target,
            unit,
            letter,
            investigation_report,
            inspections,
            materials,
        } => {
            client
                .transfer(TransferReferralRequest {
                    referral_id: target.id,
                    expected_version: target.expected_version,
                    transferred: Some(ReferralTransferred {
                        police_unit: unit,
                        transfer_letter: letter,
                        investigation_report,
                        seized_items: Vec::new(),
                        inspection_results: inspections,
                        other_materials: materials,
                    }),
                })
                .await
        }
        C::Receive { target, receipt } => {
            client
                .receive(ReceiveReferralRequest {
                    referral_id: target.id,
                    expected_version: target.expected_version,
                    received: Some(ReferralReceived { receipt }),
                })
                .await
        }
        C::Forward {
            target,
            to_unit,
            reason,
        } => {
            client
                .forward(ForwardReferralRequest {
                    referral_id: target.id,
                    expected_version: target.expected_version,
                    forwarded: Some(ReferralForwarded {
                        to_police_unit: to_unit,
                        reason,
                    }),
                })
                .await
        }
        C::Register {
            target,
            police_case_ref,
            note,
        } => {
            client
                .register(RegisterReferralRequest {
                    referral_id: target.id,
                    expected_version: target.expected_version,
                    registered: Some(ReferralRegistered {
                        police_case_ref,
                        note,
                        ..Default::default()
                    }),
                })
                .await
        }
        C::Decline {
            target,
            reason,
            detail,
        } => {
            let reason = parse_enum(
                "--reason",
                &reason,
                "CASE_DECLINE_REASON_",
                CaseDeclineReason::from_str_name,
            )?;
            client
                .decline(DeclineReferralRequest {
                    referral_id: target.id,
                    expected_version: target.expected_version,
                    declined: Some(ReferralDeclined {
                        reason: reason as i32,
                        detail,
                    }),
                })
                .await
        }
        C::RequestReconsideration { target, grounds } => {
            client
                .request_reconsideration(RequestReconsiderationRequest {
                    referral_id: target.id,
                    expected_version: target.expected_version,
                    reconsideration_requested: Some(ReferralReconsiderationRequested { grounds }),
                })
                .await
        }
        C::DecideReconsideration {
            target,
            register,
            reasons,
            police_case_ref,
        } => {
            client
                .decide_reconsideration(DecideReconsiderationRequest {
                    referral_id: target.id,
                    expected_version: target.expected_version,
                    reconsideration_decided: Some(ReferralReconsiderationDecided {
                        register,
                        reasons,
                        police_case_ref,
                    }),
                })
                .await
        }
        C::RequestSupervision {
            target,
            grounds,
            procuratorate,
        } => {
            client
                .request_supervision(RequestSupervisionRequest {
                    referral_id: target.id,
                    expected_version: target.expected_version,
                    supervision_requested: Some(ReferralSupervisionRequested {
                        procuratorate,
                        grounds,
                    }),
                })
                .await
        }
        C::Close {
            target,
            outcome,
            detail,
            ..
        } => {
            let outcome = match outcome.as_str() {
                "returned" => ReferralOutcome::ReturnedForAdministrativeHandling,
                other => parse_enum(
                    "--outcome",
                    other,
                    "REFERRAL_OUTCOME_",
                    ReferralOutcome::from_str_name,
                )?,
            };
            client
                .close(CloseReferralRequest {
                    referral_id: target.id,
                    expected_version: target.expected_version,
                    closed: Some(ReferralClosed {
                        outcome: outcome as i32,
                        detail,
                    }),
                })
                .await
        }
        C::Get { id } => {
            let view = client
                .get(GetReferralRequest { referral_id: id })
                .await
                .map_err(status)?
                .into_inner();
            if common.json {
                println!("{}", serde_json::to_string(&view)?);
            } else {
                print_view(&view);
                for event in &view.history {
                    println!("  {}", describe_event(event));
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        C::List {
            states,
            unit,
            overdue,
            region,
        } => {
            let mut request = ListReferralsRequest {
                police_unit: unit,
                overdue_only: overdue,
                region_prefix: region,
                page_size: 1000,
                ..Default::default()
            };
            for s in &states {
                let state = parse_enum(
                    "--state",
                    s,
                    "REFERRAL_STATE_",
                    ReferralState::from_str_name,
                )?;
                request.states.push(state as i32);
            }
            let mut count = 0usize;
            loop {
                let page = client
                    .list(request.clone())
                    .await
                    .map_err(status)?
                    .into_inner();
                for view in &page.referrals {
                    count += 1;
                    if common.json {
                        println!("{}", serde_json::to_string(view)?);
                    } else {
                        print_view(view);
                    }
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                request.page_token = page.next_page_token;
            }
            if !common.json {
                println!("{count} referrals");
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let moved = moved.map_err(status)?.into_inner();
    if common.json {
        println!("{}", serde_json::to_string(&moved)?);
    } else if let Some(view) = &moved.referral {
        print_view(view);
    }
    Ok(ExitCode::SUCCESS)
}

/// `caselink leads --unit U`: follows the unit's leads live, one line each, with its cursor.
pub(crate) async fn leads(args: LeadsArgs) -> anyhow::Result<ExitCode> {
    let token = args.common.tokens.for_key("police")?;
    let channel = args
        .common
        .tokens
        .connect(&args.common.addr)
        .await
        .context("the linkage service")?;
    let mut client =
        ReferralClient::with_interceptor(channel, crate::tokens::bearer(&token, Some(PURPOSE))?);
    let mut stream = client
        .watch_leads(WatchLeadsRequest {
            police_unit: args.unit.clone(),
            cursor: args.cursor,
        })
        .await
        .map_err(status)?
        .into_inner();
    if !args.common.json {
        eprintln!(
            "following the leads of police unit {} after cursor {} (Ctrl-C stops; resume with --cursor)",
            args.unit, args.cursor
        );
    }
    let mut cursor = args.cursor;
    loop {
        match stream.message().await {
            Ok(Some(lead)) => {
                cursor = lead.cursor;
                if args.common.json {
                    println!("{}", serde_json::to_string(&lead)?);
                } else {
                    let event = lead.event.as_ref().map(describe_event).unwrap_or_default();
                    let state = lead.referral.as_ref().map(summary).unwrap_or_default();
                    println!("cursor {:<8} {event}  →  {state}", lead.cursor);
                }
            }
            Ok(None) => bail!("the lead stream ended; resume with --cursor {cursor}"),
            Err(s) => bail!(
                "{}: {} (resume with --cursor {cursor})",
                code_name(s.code()),
                s.message()
            ),
        }
    }
}

fn when(ts: Option<&Timestamp>) -> String {
    ts.and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .map(|t| t.to_offset(CST))
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn state_name(view: &ReferralView) -> String {
    view.state()
        .as_str_name()
        .trim_start_matches("REFERRAL_STATE_")
        .to_ascii_lowercase()
}

pub(crate) fn summary(view: &ReferralView) -> String {
    let mut text = format!(
        "{} v{} {}",
        view.referral_id,
        view.version,
        state_name(view)
    );
    if !view.police_unit.is_empty() {
        text.push_str(&format!(" with {}", view.police_unit));
    }
    if view.due_at.is_some() {
        text.push_str(&format!(
            ", due {} ({})",
            when(view.due_at.as_ref()),
            view.due_basis
        ));
    }
    if view.overdue {
        text.push_str(" OVERDUE");
    }
    text
}

fn print_view(view: &ReferralView) {
    println!("{}  [{} {}]", summary(view), view.agency, view.region_code);
}

fn describe_event(event: &ReferralEvent) -> String {
    use caselink_proto::v1::referral_event::Action;
    let action = match &event.action {
        Some(Action::Drafted(_)) => "drafted".to_string(),
        Some(Action::Approved(_)) => "approved".to_string(),
        Some(Action::Refused(r)) => format!("refused: {}", r.reason),
        Some(Action::Transferred(t)) => format!("transferred to {}", t.police_unit),
        Some(Action::Received(_)) => "received".to_string(),
        Some(Action::Forwarded(f)) => format!("forwarded to {}: {}", f.to_police_unit, f.reason),
        Some(Action::Registered(r)) => format!("registered {}", r.police_case_ref),
        Some(Action::Declined(d)) => format!("declined: {}", d.detail),
        Some(Action::ReconsiderationRequested(_)) => "reconsideration requested".to_string(),
        Some(Action::ReconsiderationDecided(d)) if d.register => {
            "reconsidered: registered".to_string()
        }
        Some(Action::ReconsiderationDecided(_)) => "reconsidered: decline upheld".to_string(),
        Some(Action::SupervisionRequested(_)) => "supervision requested".to_string(),
        Some(Action::Closed(c)) => format!(
            "closed ({})",
            c.outcome()
                .as_str_name()
                .trim_start_matches("REFERRAL_OUTCOME_")
                .to_ascii_lowercase()
        ),
        None => "(unknown move)".to_string(),
    };
    let by = if event.actor_unit.is_empty() {
        event.actor_subject.clone()
    } else {
        format!("{} of {}", event.actor_subject, event.actor_unit)
    };
    format!(
        "{} v{} {} {action} by {by}",
        when(event.occurred_at.as_ref()),
        event.version,
        event.referral_id
    )
}
