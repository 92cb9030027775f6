//! The `Determination` service: the local bureau's decision on a screened person, and the abnormal list 异常名录 (spec
//! domain.md section 6), event-sourced on the workflow stream like criminal referrals.
//!
//! A move (`Confirm`, `Clear`, `Revoke`) resolves the person, checks that the determiner's token covers the deciding
//! bureau's region and that the person has records there, resolves the rules to the person's flags (clause, revision,
//! evidence) from the screening state, loads the person's determination from the stream's truth, checks
//! `expected_version`, lets `caselink_workflow::determination::decide` judge it and appends the event to
//! `caselink.determination.<person key>` expecting the subject's last sequence (a rival's append → `ABORTED`). Reads
//! (`Check`, `ListAbnormal`, and the person view's determination) come from the projection ([`projection`]). Every
//! call is audited; errors map to gRPC status in [`DeterminationError::into_status`] only.

pub mod projection;

use std::collections::HashSet;
use std::sync::Arc;

use caselink_auth::{Caller, Role};
use caselink_bus::workflow::{self as bus, AppendError};
use caselink_domain::{Clock, KeySecret, Keyring, PersonKey};
use caselink_proto::v1::determination_server::Determination as DeterminationRpc;
use caselink_proto::v1::{
    AbnormalEntry, CheckRequest, CheckResponse, ClearRequest, ConfirmRequest,
    DeterminationMoveResponse, DeterminationState, DeterminedFlag, ListAbnormalRequest,
    ListAbnormalResponse, PersonLookup, RevokeRequest,
};
use caselink_screening::{PersonScreening, RuleCode, RuleSet};
use caselink_workflow::determination::{
    check_expected_version, decide, evolve, replay, Command, Decider, Determination, MoveError,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::audit_query::Outcome;
use crate::query::QueryError;
use crate::store::{PersonRecord, Store, StoreError};
use projection::Determinations;

/// Default and largest `ListAbnormal` page.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;
const RPC_PREFIX: &str = "/caselink.v1.Determination/";

/// Options of the determination workflow (the `[determination]` section of linkage's configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DeterminationOptions {
    /// How long a confirmed entry stays on the list when the determiner names no period (days); the Yueyang
    /// guideline itself was valid one year.
    pub valid_days: u32,
}

impl Default for DeterminationOptions {
    fn default() -> Self {
        DeterminationOptions { valid_days: 365 }
    }
}

impl DeterminationOptions {
    /// Refuses a period the workflow would refuse in every move.
    pub fn validate(&self) -> Result<(), String> {
        let max = caselink_workflow::determination::MAX_VALID_DAYS;
        if (1..=max).contains(&self.valid_days) {
            Ok(())
        } else {
            Err(format!(
                "determination.valid_days: {} is not within 1 to {max} days",
                self.valid_days
            ))
        }
    }
}

/// Why a determination request failed; mapped to gRPC status in [`DeterminationError::into_status`] only.
#[derive(Debug, thiserror::Error)]
pub enum DeterminationError {
    /// The state machine's verdict (carries its own code).
    #[error(transparent)]
    Move(#[from] MoveError),
    /// Someone else decided between our read and our append.
    #[error("the person's determination changed: reload and retry")]
    Conflict,
    /// Outside the caller's regions.
    #[error("{0}")]
    NotVisible(String),
    #[error("{0}")]
    NotFound(String),
    /// Nothing to clear.
    #[error("{0}")]
    Nothing(String),
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    #[error("the workflow stream is unavailable: {0}")]
    Unavailable(String),
    #[error("the audit trail could not record the request; retry")]
    Audit,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the workflow stream refused the event: {0}")]
    Refused(String),
    #[error("the sealed identity could not be opened")]
    Sealed,
}

impl DeterminationError {
    fn invalid(field: impl Into<String>, why: impl Into<String>) -> Self {
        DeterminationError::Invalid {
            field: field.into(),
            why: why.into(),
        }
    }

    /// The one mapping of determination errors to gRPC status.
    pub fn status(&self) -> Status {
        let message = self.to_string();
        match self {
            DeterminationError::Move(e) => Status::new(e.code(), message),
            DeterminationError::Conflict => Status::aborted(message),
            DeterminationError::NotVisible(_) => Status::permission_denied(message),
            DeterminationError::NotFound(_) => Status::not_found(message),
            DeterminationError::Nothing(_) => Status::failed_precondition(message),
            DeterminationError::Invalid { .. } => Status::invalid_argument(message),
            DeterminationError::Unavailable(_) | DeterminationError::Audit => {
                Status::unavailable(message)
            }
            DeterminationError::Store(_) => Status::internal("storage failure"),
            DeterminationError::Refused(_) => Status::internal(message),
            DeterminationError::Sealed => Status::internal(message),
        }
    }

    /// [`Self::status`], logging the cause of a failure of the store or the stream.
    pub fn into_status(self) -> Status {
        match &self {
            DeterminationError::Store(e) => {
                tracing::error!(error = %e, "store failure answering a determination request")
            }
            DeterminationError::Refused(e) => {
                tracing::error!(error = %e, "workflow stream refused a determination event")
            }
            _ => {}
        }
        self.status()
    }
}

impl From<AppendError> for DeterminationError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Conflict { .. } => DeterminationError::Conflict,
            AppendError::Unavailable(e) => DeterminationError::Unavailable(e),
            AppendError::Refused(e) => DeterminationError::Refused(e),
        }
    }
}

impl From<caselink_bus::BusError> for DeterminationError {
    fn from(e: caselink_bus::BusError) -> Self {
        match e {
            caselink_bus::BusError::Unavailable(e) => DeterminationError::Unavailable(e),
            caselink_bus::BusError::Refused(e) => DeterminationError::Refused(e),
        }
    }
}

impl From<QueryError> for DeterminationError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::InvalidArgument { field, why } => DeterminationError::invalid(field, why),
            QueryError::NotFound => DeterminationError::NotFound(e.to_string()),
            QueryError::OutOfScope => DeterminationError::NotVisible(e.to_string()),
            QueryError::Sealed => DeterminationError::Sealed,
            QueryError::Store(e) => DeterminationError::Store(e),
        }
    }
}

/// The part of a region code that a bureau of that region covers: a district `430602` itself, a city `430600` every
/// `4306…`, a province `430000` every `43…`.
pub fn bureau_prefix(region_code: &str) -> &str {
    let mut prefix = region_code;
    for _ in 0..2 {
        match prefix.strip_suffix("00") {
            Some(p) if !p.is_empty() => prefix = p,
            _ => break,
        }
    }
    prefix
}

/// What the service shares with the fold and the person view.
#[derive(Clone)]
pub struct Shared {
    pub js: async_nats::jetstream::Context,
    pub determinations: Determinations,
    pub clock: Arc<dyn Clock>,
}

impl Shared {
    /// Now, on the injected clock.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from(self.clock.now())
    }

    /// A person's determination as the projection holds it (reads; moves use [`Shared::load`]).
    pub fn current(&self, person_key: &str) -> Result<Option<Determination>, StoreError> {
        Ok(self
            .determinations
            .get(person_key)?
            .and_then(|stored| stored.replay()))
    }

    /// A person's determination as it stands on the stream, with the stream sequence of its last event (0: never
    /// determined). The projection answers when it holds the last event; otherwise the person's subject is read.
    pub async fn load(
        &self,
        person_key: &str,
    ) -> Result<(Option<Determination>, u64), DeterminationError> {
        let projected = self
            .determinations
            .get(person_key)?
            .map(|stored| (stored.last_sequence(), stored.replay()));
        Ok(bus::load_aggregate(
            &self.js,
            &bus::determination_subject(person_key),
            projected,
            |events: &[(u64, caselink_proto::v1::DeterminationEvent)]| {
                replay(events.iter().map(|(_, e)| e))
            },
        )
        .await?)
    }
}

/// What the service needs beside the stream: the store (persons, screening, sealed identities), the identity key, the
/// sealing keys (clear view), the rules (clauses) and the audit trail.
pub struct Parts {
    pub store: crate::Store,
    pub secret: Arc<KeySecret>,
    pub keyring: Option<Arc<Keyring>>,
    pub rules: Arc<RuleSet>,
    pub audit: caselink_bus::audit::AuditLog,
}

/// Starts the determination projection's fold (running beside the service until the cancel) and builds the service.
pub fn start(
    options: &DeterminationOptions,
    parts: Parts,
    js: &async_nats::jetstream::Context,
    clock: Arc<dyn Clock>,
    metrics: Arc<crate::metrics::WorkflowMetrics>,
    cancel: &caselink_runtime::Cancel,
) -> Result<(DeterminationService, crate::workflow_fold::FoldTask), crate::LinkageError> {
    options.validate().map_err(crate::LinkageError::Config)?;
    let determinations = Determinations::open(&parts.store)?;
    let shared = Shared {
        js: js.clone(),
        determinations: determinations.clone(),
        clock,
    };
    let fold =
        crate::workflow_fold::FoldTask::spawn(determinations, js.clone(), None, metrics, cancel);
    Ok((
        DeterminationService {
            shared,
            parts,
            valid_days: options.valid_days,
        },
        fold,
    ))
}

/// Drops the determination projection and replays the workflow stream into it.
pub async fn rebuild(
    store: &Store,
    js: &async_nats::jetstream::Context,
    cancel: caselink_runtime::Cancel,
) -> Result<u64, crate::consumer::FoldError> {
    crate::workflow_fold::rebuild(&Determinations::open(store)?, js, cancel).await
}

/// Serves `Determination`.
pub struct DeterminationService {
    shared: Shared,
    parts: Parts,
    valid_days: u32,
}

/// A request's rules, parsed: `rules[i]` names the offending entry.
fn parse_rules(rules: &[String]) -> Result<Vec<RuleCode>, DeterminationError> {
    let mut out: Vec<RuleCode> = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let code = RuleCode::parse(r).ok_or_else(|| {
            DeterminationError::invalid(
                format!("rules[{i}]"),
                format!("{r:?} is not a rule (C1 … C7, R1 … R5)"),
            )
        })?;
        if out.contains(&code) {
            return Err(DeterminationError::invalid(
                format!("rules[{i}]"),
                format!("{r} is named twice"),
            ));
        }
        out.push(code);
    }
    Ok(out)
}

/// The caller's view of a person's determination for `Check`: department writers learn yes or no only.
fn check_answer(
    caller: &Caller,
    current: Option<&Determination>,
    now: OffsetDateTime,
) -> CheckResponse {
    let listing = current.and_then(|d| d.listing(now));
    let mut answer = CheckResponse {
        listed: listing.is_some(),
        ..Default::default()
    };
    if caller.claims.role != Role::Writer {
        if let Some(confirmed) = listing {
            answer.clauses = confirmed.flags.iter().map(|f| f.clause.clone()).collect();
            answer.listed_until = confirmed.expires_at;
        }
    }
    answer
}

impl DeterminationService {
    /// What the person view needs to show determinations.
    pub fn shared(&self) -> Shared {
        self.shared.clone()
    }

    async fn audit(
        &self,
        caller: &Caller,
        rpc: &str,
        person_keys: Vec<String>,
        outcome: Outcome,
        items: usize,
        clear_identity: bool,
    ) -> Result<(), DeterminationError> {
        crate::audit_query::record(
            &self.parts.audit,
            caller,
            rpc,
            person_keys,
            outcome,
            items,
            clear_identity,
        )
        .await
        .map_err(|_| DeterminationError::Audit)
    }

    /// The deciding bureau's region: 6 digits, inside the caller's token.
    fn decider(&self, caller: &Caller, region_code: &str) -> Result<Decider, DeterminationError> {
        if region_code.len() != 6 || !region_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DeterminationError::invalid(
                "region_code",
                "the deciding bureau's region: 6 digits, e.g. \"430602\"",
            ));
        }
        if !caller.claims.covers_region(region_code) {
            return Err(DeterminationError::NotVisible(format!(
                "region_code: {region_code} is outside the regions of your token"
            )));
        }
        Ok(Decider {
            subject: caller.claims.sub.clone(),
            department: caller.claims.department.clone().unwrap_or_default(),
            region_code: region_code.to_owned(),
        })
    }

    /// The person's record and screening state, if they have records where the bureau of `region_code` decides.
    fn person_in_region(
        &self,
        key: &PersonKey,
        region_code: &str,
    ) -> Result<(PersonRecord, PersonScreening), DeterminationError> {
        let Some((record, screening)) = self.parts.store.person_row(key)? else {
            return Err(DeterminationError::NotFound(
                "person: no records of this person have been folded yet".into(),
            ));
        };
        let prefix = bureau_prefix(region_code);
        if !record.regions.iter().any(|r| r.starts_with(prefix)) {
            return Err(DeterminationError::NotVisible(format!(
                "region_code: the person has no records in {region_code}; the bureau of their region decides"
            )));
        }
        Ok((record, screening))
    }

    /// The determined flags of `codes`: each rule's clause (from the rules in force) and the person's flag of it, if
    /// active, with its revision.
    fn determined<'s>(
        &self,
        codes: &[RuleCode],
        screening: &'s PersonScreening,
    ) -> Vec<(DeterminedFlag, Option<&'s caselink_screening::Flag>)> {
        codes
            .iter()
            .map(|code| {
                let flag = screening
                    .flags
                    .iter()
                    .find(|f| f.active && f.rule == code.as_str());
                (
                    DeterminedFlag {
                        rule: code.as_str().to_owned(),
                        clause: self.parts.rules.meta(*code).clause.to_owned(),
                        revision: flag.map_or(0, |f| f.revision),
                    },
                    flag,
                )
            })
            .collect()
    }

    /// The evidence of a confirmation: the request's (each an event of the person's timeline), or else the evidence of
    /// the flags named (each rule must then have one).
    fn evidence(
        &self,
        key: &PersonKey,
        requested: &[String],
        flags: &[(DeterminedFlag, Option<&caselink_screening::Flag>)],
    ) -> Result<Vec<String>, DeterminationError> {
        if requested.is_empty() {
            let mut out: Vec<String> = Vec::new();
            for (i, (determined, flag)) in flags.iter().enumerate() {
                let Some(flag) = flag else {
                    return Err(DeterminationError::invalid(
                        format!("rules[{i}]"),
                        format!(
                            "the person has no open flag of {}: name the evidence_event_ids the determination rests on",
                            determined.rule
                        ),
                    ));
                };
                for id in &flag.evidence {
                    if !out.contains(id) {
                        out.push(id.clone());
                    }
                }
            }
            return Ok(out);
        }
        let mut timeline = HashSet::new();
        for row in self.parts.store.timeline(key, i64::MIN, i64::MAX, None) {
            timeline.insert(row?.event.event_id);
        }
        for (i, id) in requested.iter().enumerate() {
            if uuid::Uuid::parse_str(id).is_err() {
                return Err(DeterminationError::invalid(
                    format!("evidence_event_ids[{i}]"),
                    format!("{id:?} is not an event id (a UUID)"),
                ));
            }
            if !timeline.contains(id) {
                return Err(DeterminationError::invalid(
                    format!("evidence_event_ids[{i}]"),
                    format!("{id} is not an event of this person's timeline"),
                ));
            }
        }
        Ok(requested.to_vec())
    }

    /// One move: load the person's determination as the stream has it, check the version, let `command` make the
    /// move (and name who decides) from it, decide, append with the expected subject sequence.
    async fn apply(
        &self,
        key: &PersonKey,
        expected_version: u64,
        command: impl FnOnce(
            Option<&Determination>,
            OffsetDateTime,
        ) -> Result<(Decider, Command), DeterminationError>,
    ) -> Result<DeterminationMoveResponse, DeterminationError> {
        let person_key = key.to_hex();
        let (current, last_sequence) = self.shared.load(&person_key).await?;
        check_expected_version(current.as_ref(), expected_version)?;
        let now = self.shared.now();
        let (decider, command) = command(current.as_ref(), now)?;
        let action = command.name();
        let event = decide(&person_key, current.as_ref(), command, &decider, now)?;
        let sequence = bus::append_determination(&self.shared.js, last_sequence, &event).await?;
        let determination = evolve(current, &event);
        tracing::info!(
            person_key,
            action,
            version = event.version,
            sequence,
            region = decider.region_code,
            "determination recorded"
        );
        Ok(DeterminationMoveResponse {
            determination: Some(determination.to_view(now, true)),
            event: Some(event),
        })
    }

    async fn confirm(
        &self,
        caller: &Caller,
        request: ConfirmRequest,
    ) -> Result<DeterminationMoveResponse, DeterminationError> {
        let key = crate::query::resolve(&self.parts.secret, request.person.as_ref())?;
        let decider = self.decider(caller, &request.region_code)?;
        let (_, screening) = self.person_in_region(&key, &request.region_code)?;
        let codes = parse_rules(&request.rules)?;
        if codes.is_empty() {
            return Err(DeterminationError::invalid(
                "rules",
                "name at least one rule (C1 … C7, R1 … R5)",
            ));
        }
        let flags = self.determined(&codes, &screening);
        let evidence = self.evidence(&key, &request.evidence_event_ids, &flags)?;
        let figures = crate::query::abnormal_figures(
            screening.figures.as_ref().unwrap_or(&Default::default()),
        );
        let valid_days = match request.valid_days {
            0 => self.valid_days,
            n => n,
        };
        let flags = flags.into_iter().map(|(f, _)| f).collect();
        self.apply(&key, request.expected_version, |_, _| {
            Ok((
                decider,
                Command::Confirm {
                    flags,
                    basis: request.basis,
                    evidence_event_ids: evidence,
                    valid_days,
                    figures,
                },
            ))
        })
        .await
    }

    async fn clear(
        &self,
        caller: &Caller,
        request: ClearRequest,
    ) -> Result<DeterminationMoveResponse, DeterminationError> {
        let key = crate::query::resolve(&self.parts.secret, request.person.as_ref())?;
        let decider = self.decider(caller, &request.region_code)?;
        let (_, screening) = self.person_in_region(&key, &request.region_code)?;
        let codes = parse_rules(&request.rules)?;
        self.apply(&key, request.expected_version, move |current, now| {
            // The flags still open under the current determination (one cleared and not grown since is not).
            let open = |flag: &&caselink_screening::Flag| {
                flag.active
                    && current.is_none_or(|d| {
                        d.flag_status(&flag.rule, flag.revision, now)
                            == caselink_proto::v1::FlagStatus::Open
                    })
            };
            let chosen: Vec<&caselink_screening::Flag> = if codes.is_empty() {
                let all: Vec<_> = screening.flags.iter().filter(open).collect();
                if all.is_empty() {
                    return Err(DeterminationError::Nothing(
                        "the person has no open flags to clear".into(),
                    ));
                }
                all
            } else {
                let mut named = Vec::with_capacity(codes.len());
                for (i, code) in codes.iter().enumerate() {
                    let flag = screening
                        .flags
                        .iter()
                        .filter(open)
                        .find(|f| f.rule == code.as_str())
                        .ok_or_else(|| {
                            DeterminationError::Nothing(format!(
                                "rules[{i}]: the person has no open flag of {}",
                                code.as_str()
                            ))
                        })?;
                    named.push(flag);
                }
                named
            };
            let flags = chosen
                .into_iter()
                .map(|flag| DeterminedFlag {
                    rule: flag.rule.clone(),
                    clause: flag.clause.clone(),
                    revision: flag.revision,
                })
                .collect();
            Ok((
                decider,
                Command::Clear {
                    flags,
                    reason: request.reason,
                },
            ))
        })
        .await
    }

    async fn revoke(
        &self,
        caller: &Caller,
        request: RevokeRequest,
    ) -> Result<DeterminationMoveResponse, DeterminationError> {
        let key = crate::query::resolve(&self.parts.secret, request.person.as_ref())?;
        // Judged on the determination as the stream has it (the projection may not hold the last move yet): the
        // entry's region is the default deciding region, and one the token must cover.
        self.apply(&key, request.expected_version, |current, _| {
            let listed_region = current
                .and_then(|d| d.history.last())
                .map(|e| e.region_code.clone())
                .unwrap_or_default();
            let region = if request.region_code.is_empty() {
                &listed_region
            } else {
                &request.region_code
            };
            let decider = self.decider(caller, region)?;
            if !listed_region.is_empty() && !caller.claims.covers_region(&listed_region) {
                return Err(DeterminationError::NotVisible(format!(
                    "the entry was determined in {listed_region}, outside the regions of your token"
                )));
            }
            Ok((
                decider,
                Command::Revoke {
                    reason: request.reason,
                },
            ))
        })
        .await
    }

    fn list_abnormal(
        &self,
        caller: &Caller,
        request: &ListAbnormalRequest,
    ) -> Result<ListAbnormalResponse, DeterminationError> {
        crate::alerts::check_region_prefix(&request.region_prefix)
            .map_err(|why| DeterminationError::invalid("region_prefix", why))?;
        let page_size = match request.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(hex::decode(&request.page_token).ok().ok_or_else(|| {
                DeterminationError::invalid("page_token", "not a token from a previous page")
            })?)
        };
        let role = caller.claims.role;
        // A determiner lists inside its regions: a named prefix must lie inside one; none lists all of them.
        if role == Role::Determiner
            && !request.region_prefix.is_empty()
            && !caller
                .claims
                .regions
                .iter()
                .any(|r| request.region_prefix.starts_with(r.as_str()))
        {
            return Err(DeterminationError::NotVisible(format!(
                "region_prefix: {} is not inside the regions of your token",
                request.region_prefix
            )));
        }
        let expiring_before = request
            .expiring_before
            .as_ref()
            .map(|t| {
                caselink_domain::system_time_from_timestamp(t)
                    .map(OffsetDateTime::from)
                    .ok_or_else(|| {
                        DeterminationError::invalid(
                            "expiring_before",
                            "not a valid instant (nanos must be 0 to 999,999,999)",
                        )
                    })
            })
            .transpose()?;
        let now = self.shared.now();
        let mut entries = Vec::new();
        let mut next_page_token = String::new();
        let mut last_key = Vec::new();
        for item in self
            .shared
            .determinations
            .listed(&request.region_prefix, after.as_deref())
        {
            let (region, person, stored) = item?;
            // A determiner sees the entries of its own regions.
            if role == Role::Determiner && !caller.claims.covers_region(&region) {
                continue;
            }
            let Some(determination) = stored.replay() else {
                continue;
            };
            let state = determination.state(now);
            if state != DeterminationState::Confirmed
                && !(request.include_expired && state == DeterminationState::Expired)
            {
                continue;
            }
            if let Some(before) = expiring_before {
                if determination
                    .listed_until()
                    .is_none_or(|until| until >= before)
                {
                    continue;
                }
            }
            if entries.len() == page_size {
                next_page_token = hex::encode(&last_key);
                break;
            }
            last_key = projection::listed_key(&region, &person);
            entries.push(self.entry(role, &person, &determination, now)?);
        }
        Ok(ListAbnormalResponse {
            entries,
            next_page_token,
        })
    }

    /// One abnormal-list entry as `role` may see it.
    fn entry(
        &self,
        role: Role,
        person: &str,
        determination: &Determination,
        now: OffsetDateTime,
    ) -> Result<AbnormalEntry, DeterminationError> {
        let key = PersonKey::from_hex(person).map_err(|e| StoreError::Corrupt {
            table: "determination",
            why: e.to_string(),
        })?;
        let view = determination.to_view(now, false);
        let confirmation = determination.last_confirmation().map(|(_, c)| c);
        Ok(AbnormalEntry {
            person_key: person.to_owned(),
            identity: self
                .parts
                .store
                .person(&key)?
                .map(|r| crate::query::masked_identity(&r)),
            clear_identity: crate::query::clear_identity(
                &self.parts.store,
                self.parts.keyring.as_deref(),
                role,
                &key,
            )?,
            region_code: view.region_code,
            figures: confirmation.and_then(|c| c.figures.clone()),
            flags: view.flags,
            basis: view.basis,
            confirmed_at: view.confirmed_at,
            expires_at: view.expires_at,
            state: view.state,
            version: view.version,
        })
    }

    /// A move as an RPC: audited whatever its outcome.
    async fn rpc_move<T>(
        &self,
        request: Request<T>,
        rpc: &'static str,
        lookup: impl FnOnce(&T) -> Option<PersonLookup>,
        run: impl AsyncFnOnce(
            &Self,
            &Caller,
            T,
        ) -> Result<DeterminationMoveResponse, DeterminationError>,
    ) -> Result<Response<DeterminationMoveResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let request = request.into_inner();
        let lookup = lookup(&request);
        let result = run(self, &caller, request).await;
        let (outcome, keys) = match &result {
            Ok(r) => (
                Outcome::ok(),
                r.determination
                    .iter()
                    .map(|d| d.person_key.clone())
                    .collect(),
            ),
            Err(e) => (
                Outcome::of(&e.status()),
                crate::query::resolve(&self.parts.secret, lookup.as_ref())
                    .map(|k| vec![k.to_hex()])
                    .unwrap_or_default(),
            ),
        };
        if let Err(e) = self.audit(&caller, rpc, keys, outcome, 1, false).await {
            // The move itself is recorded (with its decider) on the workflow stream; do not hide its outcome.
            tracing::error!(error = %e, rpc, "determination move not audited");
        }
        result
            .map(Response::new)
            .map_err(DeterminationError::into_status)
    }
}

#[tonic::async_trait]
impl DeterminationRpc for DeterminationService {
    async fn confirm(
        &self,
        request: Request<ConfirmRequest>,
    ) -> Result<Response<DeterminationMoveResponse>, Status> {
        self.rpc_move(
            request,
            "/caselink.v1.Determination/Confirm",
            |r| r.person.clone(),
            async |s, c, r| s.confirm(c, r).await,
        )
        .await
    }

    async fn clear(
        &self,
        request: Request<ClearRequest>,
    ) -> Result<Response<DeterminationMoveResponse>, Status> {
        self.rpc_move(
            request,
            "/caselink.v1.Determination/Clear",
            |r| r.person.clone(),
            async |s, c, r| s.clear(c, r).await,
        )
        .await
    }

    async fn revoke(
        &self,
        request: Request<RevokeRequest>,
    ) -> Result<Response<DeterminationMoveResponse>, Status> {
        self.rpc_move(
            request,
            "/caselink.v1.Determination/Revoke",
            |r| r.person.clone(),
            async |s, c, r| s.revoke(c, r).await,
        )
        .await
    }

    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let request = request.into_inner();
        let result = crate::query::resolve(&self.parts.secret, request.person.as_ref())
            .map_err(DeterminationError::from)
            .and_then(|key| {
                let current = self.shared.current(&key.to_hex())?;
                Ok((
                    key,
                    check_answer(&caller, current.as_ref(), self.shared.now()),
                ))
            });
        let (outcome, keys) = match &result {
            Ok((key, answer)) => (
                Outcome::ok_saying(if answer.listed {
                    "listed"
                } else {
                    "not listed"
                }),
                vec![key.to_hex()],
            ),
            Err(e) => (Outcome::of(&e.status()), Vec::new()),
        };
        // A read is answered only once it is audited.
        self.audit(
            &caller,
            &format!("{RPC_PREFIX}Check"),
            keys,
            outcome,
            1,
            false,
        )
        .await
        .map_err(DeterminationError::into_status)?;
        result
            .map(|(_, answer)| Response::new(answer))
            .map_err(DeterminationError::into_status)
    }

    async fn list_abnormal(
        &self,
        request: Request<ListAbnormalRequest>,
    ) -> Result<Response<ListAbnormalResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let result = self.list_abnormal(&caller, request.get_ref());
        let (outcome, keys, items, clear) = match &result {
            Ok(r) => (
                Outcome::ok(),
                r.entries.iter().map(|e| e.person_key.clone()).collect(),
                r.entries.len(),
                r.entries.iter().any(|e| e.clear_identity.is_some()),
            ),
            Err(e) => (Outcome::of(&e.status()), Vec::new(), 0, false),
        };
        self.audit(
            &caller,
            &format!("{RPC_PREFIX}ListAbnormal"),
            keys,
            outcome,
            items,
            clear,
        )
        .await
        .map_err(DeterminationError::into_status)?;
        result
            .map(Response::new)
            .map_err(DeterminationError::into_status)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bureau_covers_its_district_city_or_province() {
        assert_eq!(bureau_prefix("430602"), "430602");
        assert_eq!(bureau_prefix("430600"), "4306");
        assert_eq!(bureau_prefix("430000"), "43");
        assert_eq!(bureau_prefix("000000"), "00");
    }

    #[test]
    fn rules_are_parsed_with_the_entry_that_is_wrong() {
        assert_eq!(
            parse_rules(&["C1".into(), "R2".into()]).unwrap(),
            [RuleCode::C1, RuleCode::R2]
        );
        for (rules, field) in [
            (vec!["C1".to_string(), "C9".to_string()], "rules[1]"),
            (vec!["C6".to_string(), "C6".to_string()], "rules[1]"),
        ] {
            match parse_rules(&rules) {
                Err(DeterminationError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{rules:?}: {other:?}"),
            }
        }
    }
}
