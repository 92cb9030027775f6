//! `caselink timeline`: a person's cross-agency history, readably (or as proto3 JSON).

use std::process::ExitCode;

use anyhow::{bail, Context};
use caselink_domain::department_from_code;
use caselink_proto::v1::person_lookup::Lookup;
use caselink_proto::v1::{GetTimelineRequest, PersonLookup, TimelineEntry};
use caselink_proto::Timestamp;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

#[derive(clap::Args)]
pub(crate) struct TimelineArgs {
    #[command(flatten)]
    person: PersonArg,
    /// Only events on or after this date or time (2024-01-31 or RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Only events before this date or time.
    #[arg(long)]
    to: Option<String>,
    /// Only these departments (repeat the flag).
    #[arg(long = "department")]
    departments: Vec<String>,
    /// Print proto3 JSON, one entry a line.
    #[arg(long)]
    json: bool,
    /// Why you read this person's data (required; recorded in the audit trail), e.g. "joint meeting case review".
    #[arg(long)]
    purpose: String,
    #[command(flatten)]
    tokens: crate::tokens::TokenArgs,
    /// The linkage service address.
    #[arg(long, default_value = "http://127.0.0.1:50050")]
    addr: String,
}

/// China Standard Time, in which the agencies' dates are written.
const CST: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

pub(crate) async fn run(args: TimelineArgs) -> anyhow::Result<ExitCode> {
    let lookup = args.person.lookup()?;
    let mut departments = Vec::new();
    for d in &args.departments {
        let dep = department_from_code(d)
            .with_context(|| format!("--department: unknown department {d:?}"))?;
        departments.push(dep as i32);
    }
    let mut request = GetTimelineRequest {
        person: Some(lookup),
        from: args
            .from
            .as_deref()
            .map(|s| parse_time(s, "--from"))
            .transpose()?,
        to: args
            .to
            .as_deref()
            .map(|s| parse_time(s, "--to"))
            .transpose()?,
        departments,
        page_size: 1000,
        page_token: String::new(),
    };
    let mut client = args.tokens.linkage(&args.addr, Some(&args.purpose)).await?;
    let mut first = true;
    let mut count = 0usize;
    loop {
        let page = client
            .get_timeline(request.clone())
            .await
            .map_err(crate::submit::status_error)?
            .into_inner();
        if first && !args.json {
            let id = page.identity.clone().unwrap_or_default();
            println!("person   {}", page.person_key);
            println!(
                "identity {}  {}  {}",
                id.id_number_masked, id.name_masked, id.phone_masked
            );
            println!();
            println!(
                "{:<25} {:<9} {:<28} {:<7} {:<16} details",
                "occurred (CST)", "dept", "kind", "region", "case_ref"
            );
            first = false;
        }
        for entry in &page.entries {
            count += 1;
            if args.json {
                println!("{}", serde_json::to_string(entry)?);
            } else {
                print_entry(entry);
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    if !args.json {
        println!("\n{count} events");
    }
    Ok(ExitCode::SUCCESS)
}

/// The person a command is about: exactly one of `--id-number` (alias `--id`) or `--person-key`.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct PersonArg {
    /// The person's 18-character ID number (hashed by the service, never stored).
    #[arg(long, visible_alias = "id")]
    id_number: Option<String>,
    /// The person's pseudonymous key (64 hex characters).
    #[arg(long)]
    person_key: Option<String>,
}

impl PersonArg {
    /// The lookup the services take.
    pub(crate) fn lookup(&self) -> anyhow::Result<PersonLookup> {
        let lookup = match (&self.id_number, &self.person_key) {
            (Some(id), _) => Lookup::IdNumber(id.clone()),
            (None, Some(key)) => Lookup::PersonKey(key.clone()),
            (None, None) => bail!("give --id-number or --person-key"),
        };
        Ok(PersonLookup {
            lookup: Some(lookup),
        })
    }
}

/// A timestamp in China Standard Time, RFC 3339 (empty when unset).
pub(crate) fn format_time(t: Option<&Timestamp>) -> String {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .map(|t| t.to_offset(CST))
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn print_entry(entry: &TimelineEntry) {
    let Some(event) = &entry.event else { return };
    let when = format_time(event.occurred_at.as_ref());
    let department = caselink_domain::department_code(event.department());
    let merchant = event
        .merchant
        .as_ref()
        .map(|m| m.name.as_str())
        .unwrap_or("");
    let mut details = String::new();
    if !merchant.is_empty() {
        details.push_str(merchant);
    }
    if !event.summary.is_empty() {
        if !details.is_empty() {
            details.push_str(" — ");
        }
        details.extend(event.summary.chars().take(60));
    }
    println!(
        "{:<25} {:<9} {:<28} {:<7} {:<16} {}",
        when, department, entry.kind, event.region_code, event.case_ref, details
    );
}

pub(crate) fn parse_time(text: &str, flag: &str) -> anyhow::Result<Timestamp> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).or_else(|_| {
        let date = time::Date::parse(
            text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )?;
        Ok::<_, time::error::Parse>(date.midnight().assume_offset(CST))
    });
    let t = parsed.map_err(|_| {
        anyhow::anyhow!("{flag}: {text:?} is neither a date (2024-01-31) nor RFC 3339")
    })?;
    Ok(Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    })
}
