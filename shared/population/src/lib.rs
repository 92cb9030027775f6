//! A seeded synthetic population: realistic department records of ordinary consumers and abusive claimants, with the
//! truth about who is who, for tests, demos, benchmarks and measuring detection quality.
//!
//! Owns: the generator behind `caselink gen` — valid identities (GB 11643 ID numbers, names, phones, addresses) and
//! merchants (GB 32100 credit codes) under a region prefix; ordinary consumers through the Kunming Wuhua channel mix
//! (domain.md section 8); abusive claimants planted with the Yueyang guideline's behaviours (C1-C7, R1-R5 of domain.md
//! section 5) with margins over the default thresholds, in collusion rings and hired clusters too; the same grievance
//! on several platforms; and `truth.json` saying who meets which criterion, who borrowed whose ID number, and which
//! records are one grievance.
//!
//! Never: the wall clock, unordered iteration or anything else that would make two runs differ (same seed and
//! parameters, byte-identical files); holding the whole population in memory (it streams unit by unit); labels inside
//! the event files; real personal data (every ID number, name, phone and address is made up).
//!
//! Every event is a `CaseEvent` as a department would submit it to `caselink submit`: empty `event_id` (ingest
//! derives it from the department and `source_id`), clear subject, references to earlier records by the ids ingest will
//! derive, and it passes `caselink_domain::validate_event` and its department's own checks.
//!
//! ```no_run
//! use caselink_population::{generate, read_truth, GenParams, Label};
//!
//! let out = std::path::Path::new("/tmp/population");
//! let summary = generate(&GenParams { people: 2_000, ..GenParams::default() }, out, &mut |_| {}).unwrap();
//! println!("{} events, {} abusive of {} persons", summary.events, summary.abusers, summary.persons);
//! let truth = read_truth(&out.join("truth.json")).unwrap();
//! assert_eq!(truth.persons.iter().filter(|p| p.label == Label::Abusive).count() as u64, summary.abusers);
//! ```

mod abusive;
mod calendar;
mod criteria;
mod identity;
mod merchants;
mod ordinary;
mod plan;
mod proceedings;
mod regions;
mod rings;
mod text;
mod truth;
mod unit;
mod writer;

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use truth::{read_truth, GroupKind, GroupTruth, Label, MatterTruth, PersonTruth, Truth};

use crate::calendar::{day_of_date, parse_date, years_before, Span};
use crate::identity::IdentityFactory;
use crate::merchants::MerchantPool;
use crate::plan::{AbuserUnit, Plan};
use crate::regions::{check_prefix, Regions};
use crate::truth::GroupKind as Kind;
use crate::unit::{Counters, Unit, World};
use crate::writer::Output;

/// The department files, in `ALL_DEPARTMENTS` order: (department code, file name).
pub const DEPARTMENT_FILES: [(&str, &str); 6] = [
    ("market", "market.jsonl"),
    ("police", "police.jsonl"),
    ("justice", "justice.jsonl"),
    ("court", "court.jsonl"),
    ("petition", "petition.jsonl"),
    ("hotline", "hotline.jsonl"),
];

/// The labels' file name.
pub const TRUTH_FILE: &str = "truth.json";

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenParams {
    /// Same seed and parameters give byte-identical output.
    pub seed: u64,
    /// Persons in the population.
    pub people: usize,
    /// Years of history, ending at `end`.
    pub years: u32,
    /// A 4-digit city prefix (`"4306"`, Yueyang) or a 6-digit county code (`"430602"`): every region code, ID number
    /// birthplace and credit-code division falls under it.
    pub region: String,
    /// The last day of the history, `YYYY-MM-DD`, China time. No event happens after it.
    pub end: String,
    /// Share of persons who are abusive claimants.
    pub abuser_share: f64,
}

impl Default for GenParams {
    /// Seed 1, 1,000 persons, 2 years up to 2026-06-30, Yueyang (4306), 1% abusive.
    fn default() -> GenParams {
        GenParams {
            seed: 1,
            people: 1_000,
            years: 2,
            region: "4306".to_owned(),
            end: "2026-06-30".to_owned(),
            abuser_share: 0.01,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct GenSummary {
    /// Events written, all departments.
    pub events: u64,
    /// Events per department, in [`DEPARTMENT_FILES`] order.
    pub by_department: [u64; 6],
    pub persons: u64,
    /// Persons labelled abusive.
    pub abusers: u64,
    /// Collusion rings.
    pub rings: u64,
    /// Hired-complainant clusters.
    pub hired_clusters: u64,
    /// The seven files written (six department files, then the truth).
    pub files: Vec<PathBuf>,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// A parameter is out of range.
    #[error("invalid {field}: {why}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A truth file could not be parsed.
    #[error("{} is not a truth file: {source}", path.display())]
    Truth {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn invalid(field: &'static str, why: impl Into<String>) -> GenError {
    GenError::Invalid {
        field,
        why: why.into(),
    }
}

/// Largest population accepted.
pub const MAX_PEOPLE: usize = 100_000_000;
/// Longest history accepted, in years.
pub const MAX_YEARS: u32 = 30;

/// The span of days the parameters describe, after checking every parameter.
fn check(params: &GenParams) -> Result<Span, GenError> {
    if params.people == 0 || params.people > MAX_PEOPLE {
        return Err(invalid(
            "people",
            format!("must be 1 to {MAX_PEOPLE}, found {}", params.people),
        ));
    }
    if params.years == 0 || params.years > MAX_YEARS {
        return Err(invalid(
            "years",
            format!("must be 1 to {MAX_YEARS}, found {}", params.years),
        ));
    }
    check_prefix(&params.region).map_err(|why| invalid("region", why))?;
    let end = parse_date(&params.end).ok_or_else(|| {
        invalid(
            "end",
            format!(
                "must be a date YYYY-MM-DD, found {:?}",
                params.end.chars().take(32).collect::<String>()
            ),
        )
    })?;
    if !(2000..=2100).contains(&end.year()) {
        return Err(invalid(
            "end",
            format!("must lie in 2000-2100, found {}", end.year()),
        ));
    }
    if !params.abuser_share.is_finite() || !(0.0..=0.5).contains(&params.abuser_share) {
        return Err(invalid(
            "abuser_share",
            format!("must be 0 to 0.5, found {}", params.abuser_share),
        ));
    }
    let years = i32::try_from(params.years).unwrap_or(1);
    let first = years_before(end, years).map_or(0, day_of_date) + 1;
    Ok(Span {
        first,
        last: day_of_date(end),
    })
}

/// How often (in events) `progress` hears about it.
const PROGRESS_EVERY: u64 = 25_000;

/// Generates the population of `params` into `out` (created if missing): `market.jsonl`, `police.jsonl`,
/// `justice.jsonl`, `court.jsonl`, `petition.jsonl`, `hotline.jsonl` and `truth.json`, replacing earlier ones.
/// `progress` is called now and then with the number of events written so far.
pub fn generate(
    params: &GenParams,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<GenSummary, GenError> {
    let span = check(params)?;
    let regions = Regions::for_prefix(&params.region);
    // Stream 0 shapes the world; unit k draws from stream k + 1, so units do not disturb each other's draws.
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let merchants = MerchantPool::new(&mut rng, &regions, params.people);
    let plan = Plan::new(&mut rng, params.people, params.abuser_share);
    let identities = IdentityFactory::new(&regions, span.last, params.people);
    let world = World {
        seed: params.seed,
        span,
        regions,
        merchants,
    };
    let mut counters = Counters::new(identities);
    let mut output = Output::create(out, params)?;
    let mut groups = Vec::new();
    let mut events = 0u64;
    let mut persons = 0u64;
    let mut reported = 0u64;
    let mut next = plan.abuser_units.iter().peekable();
    for k in 0..plan.units {
        let mut unit_rng = ChaCha8Rng::seed_from_u64(params.seed);
        unit_rng.set_stream(k + 1);
        let mut u = Unit::new(&world, &mut counters, unit_rng);
        match next.next_if(|(at, _)| *at == k) {
            Some((_, plan)) => {
                if let Some(group) = abuser_unit(&mut u, plan) {
                    groups.push(group);
                }
            }
            None => {
                let p = u.person(Label::Ordinary);
                ordinary::ordinary_life(&mut u, p);
            }
        }
        persons += u.persons.len() as u64;
        events += u.write(&mut output)?;
        if events - reported >= PROGRESS_EVERY {
            reported = events;
            progress(events);
        }
    }
    let by_department = output.by_department;
    let files = output.finish(&groups)?;
    progress(events);
    Ok(GenSummary {
        events,
        by_department,
        persons,
        abusers: plan.abusers,
        rings: counters.rings,
        hired_clusters: counters.hired,
        files,
    })
}

/// Generates one abuser unit: its persons (abusers and the persons whose ID numbers they borrow), its group's
/// campaigns, then each abuser's own history.
fn abuser_unit(u: &mut Unit<'_>, plan: &AbuserUnit) -> Option<truth::GroupTruth> {
    let (kind, members) = match plan {
        AbuserUnit::Solo(a) => (None, std::slice::from_ref(a)),
        AbuserUnit::Group(kind, members) => (Some(*kind), members.as_slice()),
    };
    let mut abusers = Vec::new();
    for a in members {
        let p = u.person(Label::Abusive);
        u.persons[p].criteria = a.criteria;
        let mut victims = Vec::new();
        for _ in 0..a.victims {
            let v = u.person(Label::Ordinary);
            u.persons[v].impersonated_by = Some(u.persons[p].identity.person.id_number.clone());
            ordinary::ordinary_life(u, v);
            victims.push(v);
        }
        abusers.push((p, victims));
    }
    let ids: Vec<usize> = abusers.iter().map(|(p, _)| *p).collect();
    let group = match kind {
        Some(Kind::Collusion) => Some(rings::collusion_campaigns(u, &ids)),
        Some(Kind::Hired) => Some(rings::hired_complaints(u, &ids)),
        None => None,
    };
    for (p, victims) in &abusers {
        abusive::abusive_life(u, *p, victims);
    }
    group
}
