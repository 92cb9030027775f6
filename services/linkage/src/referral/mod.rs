//! The `Referral` service: criminal referral 行刑衔接 (Order 310), event-sourced on the workflow stream.
//!
//! A move loads the referral from the stream's truth (the projection when it is current for that referral, else the
//! referral's own subject), checks `expected_version`, lets `caselink_workflow::referral::decide` judge it for the
//! caller's [`Actor`] and appends the event with `Nats-Expected-Last-Subject-Sequence` = the sequence of the referral's
//! last event, so two officers deciding at once cannot both win (the loser gets `ABORTED`). Reads (`Get`, `List`) come
//! from the projection ([`projection`]); `WatchLeads` follows the stream ([`leads`]); overdue referrals raise an alert
//! on their own ([`overdue`]). Every move and read is audited. Errors map to gRPC status in
//! [`ReferralError::into_status`] only.

pub mod leads;
pub mod overdue;
pub mod projection;
pub mod timeline;

use std::path::PathBuf;
use std::sync::Arc;

use caselink_auth::{Caller, Role};
use caselink_bus::workflow::{self as bus, AppendError};
use caselink_domain::Clock;
use caselink_proto::v1::referral_server::Referral as ReferralRpc;
use caselink_proto::v1::{
    ApproveReferralRequest, CloseReferralRequest, DecideReconsiderationRequest,
    DeclineReferralRequest, DraftReferralRequest, ForwardReferralRequest, GetReferralRequest,
    ListReferralsRequest, ListReferralsResponse, ReceiveReferralRequest, ReferralMoveResponse,
    ReferralView, RefuseReferralRequest, RegisterReferralRequest, RequestReconsiderationRequest,
    RequestSupervisionRequest, TransferReferralRequest, WatchLeadsRequest,
};
use caselink_workflow::calendar::HolidayCalendar;
use caselink_workflow::referral::{
    check_expected_version, decide, evolve, replay, Actor, ActorRole, Command, MoveError, Referral,
    ReferralState, MAX_CODE_LEN,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::audit_query::Outcome;
use crate::store::StoreError;
use projection::Referrals;

/// Default and largest `List` page.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Options of the referral workflow (the `[referral]` section of linkage's configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ReferralOptions {
    /// A holiday calendar file (TOML, the format of `shared/workflow/calendars/cn.toml`) adding years to the shipped
    /// Chinese calendar; unset = the shipped calendar only.
    pub calendar_file: Option<PathBuf>,
    /// How often overdue referrals are looked for (milliseconds).
    pub overdue_scan_ms: u64,
}

impl Default for ReferralOptions {
    fn default() -> Self {
        ReferralOptions {
            calendar_file: None,
            overdue_scan_ms: 1_000,
        }
    }
}

impl ReferralOptions {
    /// The holiday calendar in force: the shipped one, joined with the configured file's years.
    pub fn calendar(&self) -> Result<HolidayCalendar, String> {
        let china = HolidayCalendar::china();
        let Some(path) = &self.calendar_file else {
            return Ok(china);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "referral.calendar_file: cannot read {}: {e}",
                path.display()
            )
        })?;
        let extra = HolidayCalendar::from_toml_str(&text)
            .map_err(|e| format!("referral.calendar_file {}: {e}", path.display()))?;
        china
            .with(extra)
            .map_err(|e| format!("referral.calendar_file {}: {e}", path.display()))
    }
}

/// Why a referral request failed; mapped to gRPC status in [`ReferralError::into_status`] only.
#[derive(Debug, thiserror::Error)]
pub enum ReferralError {
    /// The state machine's verdict (carries its own code).
    #[error(transparent)]
    Move(#[from] MoveError),
    /// Someone else moved the referral between our read and our append.
    #[error("referral changed: reload and retry")]
    Conflict,
    /// The caller may not see this referral or unit.
    #[error("{0}")]
    NotVisible(String),
    #[error("{field}: {why}")]
    Invalid { field: &'static str, why: String },
    #[error("the workflow stream is unavailable: {0}")]
    Unavailable(String),
    #[error("the audit trail could not record the request; retry")]
    Audit,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the workflow stream refused the event: {0}")]
    Refused(String),
}

impl ReferralError {
    /// The one mapping of referral errors to gRPC status.
    pub fn status(&self) -> Status {
        let message = self.to_string();
        match self {
            ReferralError::Move(e) => Status::new(e.code(), message),
            ReferralError::Conflict => Status::aborted(message),
            ReferralError::NotVisible(_) => Status::permission_denied(message),
            ReferralError::Invalid { .. } => Status::invalid_argument(message),
            ReferralError::Unavailable(_) | ReferralError::Audit => Status::unavailable(message),
            ReferralError::Store(_) => Status::internal("storage failure"),
            ReferralError::Refused(_) => Status::internal(message),
        }
    }

    /// [`Self::status`], logging the cause of a failure of the store or the stream.
    pub fn into_status(self) -> Status {
        match &self {
            ReferralError::Store(e) => {
                tracing::error!(error = %e, "store failure answering a referral request")
            }
            ReferralError::Refused(e) => {
                tracing::error!(error = %e, "workflow stream refused an event")
            }
            _ => {}
        }
        self.status()
    }
}

impl From<AppendError> for ReferralError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Conflict { .. } => ReferralError::Conflict,
            AppendError::Unavailable(e) => ReferralError::Unavailable(e),
            AppendError::Refused(e) => ReferralError::Refused(e),
        }
    }
}

impl From<caselink_bus::BusError> for ReferralError {
    fn from(e: caselink_bus::BusError) -> Self {
        match e {
            caselink_bus::BusError::Unavailable(e) => ReferralError::Unavailable(e),
            caselink_bus::BusError::Refused(e) => ReferralError::Refused(e),
        }
    }
}

/// The referral-move actor of a verified token: market case team (`determiner`), agency head, police with its unit.
pub fn actor_of(caller: &Caller) -> Result<Actor, ReferralError> {
    let claims = &caller.claims;
    let role = ActorRole::from_token_role(claims.role.name()).ok_or_else(|| {
        ReferralError::NotVisible(format!(
            "role {} makes no referral moves",
            claims.role.name()
        ))
    })?;
    let department = match role {
        ActorRole::Police => "police".to_owned(),
        _ => claims.department.clone().unwrap_or_default(),
    };
    Ok(Actor {
        role,
        department,
        unit: claims.unit.clone().filter(|u| !u.is_empty()),
        subject: claims.sub.clone(),
    })
}

/// Whether `caller` may read `referral`: analysts all; police the referrals handed to their unit (now or before);
/// the drafting agency's case team (in its regions) and head.
fn may_read(caller: &Caller, referral: &Referral) -> bool {
    let claims = &caller.claims;
    match claims.role {
        Role::Analyst => true,
        Role::Police => claims.unit.as_deref().is_some_and(|unit| {
            referral
                .history
                .iter()
                .any(|e| caselink_workflow::referral::lead_unit(e) == Some(unit))
        }),
        Role::Determiner => {
            claims.department.as_deref() == Some(referral.agency.as_str())
                && claims.covers_region(&referral.region_code)
        }
        Role::AgencyHead => claims.department.as_deref() == Some(referral.agency.as_str()),
        Role::Writer | Role::Auditor => false,
    }
}

/// A referral id or unit code that becomes a subject token.
fn code(field: &'static str, value: &str) -> Result<(), ReferralError> {
    if value.is_empty()
        || value.len() > MAX_CODE_LEN
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ReferralError::Invalid {
            field,
            why: format!("must be 1 to {MAX_CODE_LEN} characters of A-Z, a-z, 0-9, '-' and '_'"),
        });
    }
    Ok(())
}

/// What the service shares with its tasks.
#[derive(Clone)]
pub struct Shared {
    pub js: async_nats::jetstream::Context,
    pub referrals: Referrals,
    pub calendar: Arc<HolidayCalendar>,
    pub clock: Arc<dyn Clock>,
}

impl Shared {
    /// Now, on the injected clock.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from(self.clock.now())
    }

    /// A referral as it stands on the stream, with the stream sequence of its last event (0: no such referral). The
    /// projection answers when it holds the referral's last event; otherwise the referral's subject is read.
    pub async fn load(&self, id: &str) -> Result<(Option<Referral>, u64), ReferralError> {
        let projected = self
            .referrals
            .get(id)?
            .map(|stored| (stored.last_sequence(), stored.replay_first(usize::MAX)));
        Ok(bus::load_aggregate(
            &self.js,
            &bus::referral_subject(id),
            projected,
            |events: &[(u64, caselink_proto::v1::ReferralEvent)]| {
                replay(events.iter().map(|(_, e)| e))
            },
        )
        .await?)
    }

    /// The view of `referral` now.
    pub fn view(
        &self,
        referral: &Referral,
        with_history: bool,
    ) -> Result<ReferralView, ReferralError> {
        referral
            .to_view(&self.calendar, self.now(), with_history)
            .map_err(|e| ReferralError::Move(MoveError::Calendar(e)))
    }
}

/// The referral projection's fold and the overdue scan, running beside the service.
pub struct Tasks {
    fold: crate::workflow_fold::FoldTask,
    overdue: tokio::task::JoinHandle<()>,
}

impl Tasks {
    /// Waits for both to stop (after the cancel).
    pub async fn stopped(self) -> Result<(), crate::LinkageError> {
        let _ = self.overdue.await;
        self.fold.stopped().await
    }
}

/// Starts the referral projection's fold (which also publishes police moves to the timeline) and the overdue scan,
/// and builds the service.
pub fn start(
    options: &ReferralOptions,
    store: &crate::Store,
    js: &async_nats::jetstream::Context,
    clock: Arc<dyn Clock>,
    audit: caselink_bus::audit::AuditLog,
    metrics: Arc<crate::metrics::WorkflowMetrics>,
    cancel: &caselink_runtime::Cancel,
) -> Result<(ReferralService, Tasks), crate::LinkageError> {
    let calendar = options.calendar().map_err(crate::LinkageError::Config)?;
    let referrals = Referrals::open(store)?;
    let shared = Shared {
        js: js.clone(),
        referrals: referrals.clone(),
        calendar: Arc::new(calendar),
        clock,
    };
    let publish_js = js.clone();
    let on_applied: projection::OnApplied = Arc::new(move |applied| {
        let js = publish_js.clone();
        Box::pin(async move { timeline::publish(&js, &applied).await.map(|_| ()) })
    });
    let fold = crate::workflow_fold::FoldTask::spawn(
        referrals,
        js.clone(),
        Some(on_applied),
        metrics,
        cancel,
    );
    let overdue = tokio::spawn(overdue::run(
        shared.clone(),
        std::time::Duration::from_millis(options.overdue_scan_ms),
        cancel.clone(),
    ));
    Ok((ReferralService::new(shared, audit), Tasks { fold, overdue }))
}

/// Serves `Referral`.
pub struct ReferralService {
    shared: Shared,
    audit: caselink_bus::audit::AuditLog,
}

impl ReferralService {
    pub fn new(shared: Shared, audit: caselink_bus::audit::AuditLog) -> Self {
        ReferralService { shared, audit }
    }

    /// What the other services need to show referrals (the projection, calendar and clock).
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
    ) -> Result<(), ReferralError> {
        crate::audit_query::record(&self.audit, caller, rpc, person_keys, outcome, items, false)
            .await
            .map_err(|_| ReferralError::Audit)
    }

    /// One move: load, check the version, decide, append with the expected subject sequence.
    async fn apply(
        &self,
        caller: &Caller,
        referral_id: &str,
        expected_version: u64,
        command: Command,
    ) -> Result<ReferralMoveResponse, ReferralError> {
        code("referral_id", referral_id)?;
        let actor = actor_of(caller)?;
        let (current, last_sequence) = self.shared.load(referral_id).await?;
        check_expected_version(current.as_ref(), expected_version)?;
        let now = self.shared.now();
        let event = decide(
            referral_id,
            current.as_ref(),
            &command,
            &actor,
            now,
            &self.shared.calendar,
        )?;
        let sequence = bus::append(&self.shared.js, last_sequence, &event).await?;
        let referral = evolve(current, &event);
        tracing::info!(
            referral_id,
            version = event.version,
            sequence,
            state = referral.state.name(),
            role = actor.role.to_proto().as_str_name(),
            "referral moved"
        );
        Ok(ReferralMoveResponse {
            referral: Some(self.shared.view(&referral, true)?),
            event: Some(event),
        })
    }

    /// A move as an RPC: audited whatever its outcome.
    async fn rpc_move<T>(
        &self,
        request: Request<T>,
        rpc: &'static str,
        parts: impl FnOnce(T) -> Result<(String, u64, Command), ReferralError>,
    ) -> Result<Response<ReferralMoveResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let result = match parts(request.into_inner()) {
            Ok((id, expected, command)) => self.apply(&caller, &id, expected, command).await,
            Err(e) => Err(e),
        };
        let (outcome, keys) = match &result {
            Ok(r) => (
                Outcome::ok(),
                r.referral
                    .as_ref()
                    .map(|v| v.person_keys.clone())
                    .unwrap_or_default(),
            ),
            Err(e) => (Outcome::of(&e.status()), Vec::new()),
        };
        if let Err(e) = self.audit(&caller, rpc, keys, outcome, 1).await {
            // The move itself is recorded (with its actor) on the workflow stream; do not hide its outcome.
            tracing::error!(error = %e, rpc, "move not audited");
        }
        result
            .map(Response::new)
            .map_err(ReferralError::into_status)
    }

    fn get(
        &self,
        caller: &Caller,
        referral: Option<Referral>,
        id: &str,
    ) -> Result<ReferralView, ReferralError> {
        let Some(referral) = referral else {
            return Err(MoveError::NotFound {
                referral_id: id.to_owned(),
            }
            .into());
        };
        if !may_read(caller, &referral) {
            return Err(ReferralError::NotVisible(format!(
                "referral {id} is not visible to this caller"
            )));
        }
        self.shared.view(&referral, true)
    }

    fn list(
        &self,
        caller: &Caller,
        request: &ListReferralsRequest,
    ) -> Result<ListReferralsResponse, ReferralError> {
        let mut states = Vec::new();
        for (i, s) in request.states.iter().enumerate() {
            let state = caselink_proto::v1::ReferralState::try_from(*s)
                .ok()
                .and_then(ReferralState::from_proto)
                .ok_or_else(|| ReferralError::Invalid {
                    field: "states",
                    why: format!("entry {i} ({s}) is not a referral state"),
                })?;
            states.push(state);
        }
        crate::alerts::check_region_prefix(&request.region_prefix).map_err(|why| {
            ReferralError::Invalid {
                field: "region_prefix",
                why,
            }
        })?;
        if !request.police_unit.is_empty() {
            code("police_unit", &request.police_unit)?;
        }
        // Police list only what is with their own unit.
        let unit_filter = if caller.claims.role == Role::Police {
            let own = caller.claims.unit.clone().unwrap_or_default();
            if !request.police_unit.is_empty() && request.police_unit != own {
                return Err(ReferralError::NotVisible(format!(
                    "police_unit: a police caller lists only its own unit ({own})"
                )));
            }
            own
        } else {
            request.police_unit.clone()
        };
        let page_size = match request.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let after = (!request.page_token.is_empty()).then_some(request.page_token.as_str());
        let now = self.shared.now();
        let mut out = Vec::new();
        let mut next_page_token = String::new();
        for item in self.shared.referrals.scan(after) {
            let (id, stored) = item?;
            let Some(referral) = stored.replay_first(usize::MAX) else {
                continue;
            };
            if !states.is_empty() && !states.contains(&referral.state) {
                continue;
            }
            if !unit_filter.is_empty()
                && referral.police_unit.as_deref() != Some(unit_filter.as_str())
            {
                continue;
            }
            if !referral.region_code.starts_with(&request.region_prefix) {
                continue;
            }
            if !may_read(caller, &referral) {
                continue;
            }
            let view = referral
                .to_view(&self.shared.calendar, now, false)
                .map_err(|e| ReferralError::Move(MoveError::Calendar(e)))?;
            if request.overdue_only && !view.overdue {
                continue;
            }
            if out.len() == page_size {
                next_page_token = out
                    .last()
                    .map(|v: &ReferralView| v.referral_id.clone())
                    .unwrap_or_default();
                break;
            }
            let _ = id;
            out.push(view);
        }
        Ok(ListReferralsResponse {
            referrals: out,
            next_page_token,
        })
    }
}

const RPC_PREFIX: &str = "/caselink.v1.Referral/";

/// The `Referral` impl: one method per move (all alike: the document is required, then [`ReferralService::apply`]),
/// then `rest`. A macro emitting the whole impl, so `async_trait` sees the expanded methods.
macro_rules! referral_impl {
    (moves { $($method:ident, $req:ty, $rpc:literal, $field:ident, $command:ident;)* } rest { $($rest:tt)* }) => {
        #[tonic::async_trait]
        impl ReferralRpc for ReferralService {
            $(
                async fn $method(
                    &self,
                    request: Request<$req>,
                ) -> Result<Response<ReferralMoveResponse>, Status> {
                    self.rpc_move(request, concat!("/caselink.v1.Referral/", $rpc), |r| {
                        let document = r.$field.ok_or(ReferralError::Invalid {
                            field: stringify!($field),
                            why: "required".into(),
                        })?;
                        Ok((r.referral_id, r.expected_version, Command::$command(document)))
                    })
                    .await
                }
            )*
            $($rest)*
        }
    };
}

referral_impl! {
    moves {
        draft, DraftReferralRequest, "Draft", drafted, Draft;
        approve, ApproveReferralRequest, "Approve", approved, Approve;
        refuse, RefuseReferralRequest, "Refuse", refused, Refuse;
        transfer, TransferReferralRequest, "Transfer", transferred, Transfer;
        receive, ReceiveReferralRequest, "Receive", received, Receive;
        forward, ForwardReferralRequest, "Forward", forwarded, Forward;
        register, RegisterReferralRequest, "Register", registered, Register;
        decline, DeclineReferralRequest, "Decline", declined, Decline;
        request_reconsideration, RequestReconsiderationRequest, "RequestReconsideration", reconsideration_requested, RequestReconsideration;
        decide_reconsideration, DecideReconsiderationRequest, "DecideReconsideration", reconsideration_decided, DecideReconsideration;
        request_supervision, RequestSupervisionRequest, "RequestSupervision", supervision_requested, RequestSupervision;
        close, CloseReferralRequest, "Close", closed, Close;
    }
    rest {
    async fn get(
        &self,
        request: Request<GetReferralRequest>,
    ) -> Result<Response<ReferralView>, Status> {
        let caller = Caller::of(&request)?.clone();
        let id = request.into_inner().referral_id;
        let rpc = format!("{RPC_PREFIX}Get");
        let result = match code("referral_id", &id) {
            Ok(()) => match self.shared.load(&id).await {
                Ok((referral, _)) => self.get(&caller, referral, &id),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let (outcome, keys) = match &result {
            Ok(v) => (Outcome::ok(), v.person_keys.clone()),
            Err(e) => (Outcome::of(&e.status()), Vec::new()),
        };
        // A read is answered only once it is audited.
        self.audit(&caller, &rpc, keys, outcome, usize::from(result.is_ok()))
            .await
            .map_err(ReferralError::into_status)?;
        result.map(Response::new).map_err(ReferralError::into_status)
    }

    async fn list(
        &self,
        request: Request<ListReferralsRequest>,
    ) -> Result<Response<ListReferralsResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let result = self.list(&caller, request.get_ref());
        let (outcome, keys, items) = match &result {
            Ok(r) => (
                Outcome::ok(),
                r.referrals
                    .iter()
                    .flat_map(|v| v.person_keys.iter().cloned())
                    .collect(),
                r.referrals.len(),
            ),
            Err(e) => (Outcome::of(&e.status()), Vec::new(), 0),
        };
        self.audit(&caller, &format!("{RPC_PREFIX}List"), keys, outcome, items)
            .await
            .map_err(ReferralError::into_status)?;
        result.map(Response::new).map_err(ReferralError::into_status)
    }

    type WatchLeadsStream = leads::LeadStream;

    async fn watch_leads(
        &self,
        request: Request<WatchLeadsRequest>,
    ) -> Result<Response<Self::WatchLeadsStream>, Status> {
        let caller = Caller::of(&request)?.clone();
        let request = request.into_inner();
        let checked = leads::check_watcher(&caller, &request.police_unit);
        let outcome = match &checked {
            Ok(()) => Outcome::ok_saying(format!(
                "unit {:?} from cursor {}",
                request.police_unit, request.cursor
            )),
            Err(e) => Outcome::of(&e.status()),
        };
        self.audit(&caller, &format!("{RPC_PREFIX}WatchLeads"), Vec::new(), outcome, 0)
            .await
            .map_err(ReferralError::into_status)?;
        checked.map_err(ReferralError::into_status)?;
        leads::watch(self.shared.clone(), request.police_unit, request.cursor)
            .await
            .map(Response::new)
            .map_err(ReferralError::into_status)
    }
}
}
