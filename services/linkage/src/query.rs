//! The Linkage gRPC service: queries over the local sled projections.

use std::sync::Arc;

use caselink_domain::{
    kind_name, parse_id_number, person_key, timestamp_micros, KeySecret, PersonKey,
};
use caselink_proto::v1::linkage_server::Linkage;
use caselink_proto::v1::person_lookup::Lookup;
use caselink_proto::v1::{
    GetTimelineRequest, MaskedIdentity, PersonLookup, Timeline, TimelineEntry,
};
use tonic::{Request, Response, Status};

use crate::store::{Store, StoreError};

/// Default and largest timeline page.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Query errors; mapped to gRPC status in [`QueryError::into_status`] only.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{field}: {why}")]
    InvalidArgument { field: &'static str, why: String },
    #[error("no events recorded for this person")]
    NotFound,
    #[error("this person has no records in the regions of your token")]
    OutOfScope,
    #[error("the sealed identity could not be opened")]
    Sealed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl QueryError {
    fn invalid(field: &'static str, why: impl Into<String>) -> Self {
        QueryError::InvalidArgument {
            field,
            why: why.into(),
        }
    }

    /// The one mapping of query errors to gRPC codes.
    pub fn into_status(self) -> Status {
        match self {
            QueryError::InvalidArgument { .. } => Status::invalid_argument(self.to_string()),
            QueryError::NotFound => Status::not_found(self.to_string()),
            QueryError::OutOfScope => Status::permission_denied(self.to_string()),
            QueryError::Sealed => Status::internal(self.to_string()),
            QueryError::Store(e) => {
                tracing::error!(error = %e, "store failure answering a query");
                Status::internal("storage failure")
            }
        }
    }
}

/// Serves `Linkage` from a [`Store`].
pub struct LinkageService {
    store: Store,
    secret: Arc<KeySecret>,
    audit: Option<caselink_bus::audit::AuditLog>,
    /// Opens sealed identities for roles whose view is clear; `None` when no sealing key is configured here.
    keyring: Option<Arc<caselink_domain::Keyring>>,
}

impl LinkageService {
    pub fn new(
        store: Store,
        secret: Arc<KeySecret>,
        audit: caselink_bus::audit::AuditLog,
        keyring: Option<Arc<caselink_domain::Keyring>>,
    ) -> Self {
        LinkageService {
            store,
            secret,
            audit: Some(audit),
            keyring,
        }
    }

    /// A determiner may read only persons with records in its regions.
    fn check_region_scope(
        &self,
        caller: Option<&caselink_auth::Caller>,
        key: &PersonKey,
    ) -> Result<(), QueryError> {
        let Some(caller) = caller else { return Ok(()) };
        if caller.claims.role != caselink_auth::Role::Determiner {
            return Ok(());
        }
        let regions = self
            .store
            .person(key)?
            .map(|r| r.regions)
            .unwrap_or_default();
        if regions.iter().any(|r| caller.claims.covers_region(r)) {
            Ok(())
        } else {
            Err(QueryError::OutOfScope)
        }
    }

    /// The clear identity as the caller's role may see it (masking table: `caselink_auth::identity_view`).
    fn clear_identity(
        &self,
        caller: Option<&caselink_auth::Caller>,
        key: &PersonKey,
    ) -> Result<Option<caselink_proto::v1::ClearIdentity>, QueryError> {
        use caselink_auth::Visibility::Clear;
        let (Some(caller), Some(keyring)) = (caller, &self.keyring) else {
            return Ok(None);
        };
        let view = caselink_auth::identity_view(caller.claims.role);
        if !view.any_clear() {
            return Ok(None);
        }
        let Some(sealed) = self.store.sealed_identity(key)? else {
            return Ok(None);
        };
        let clear = keyring.open(&sealed, key).map_err(|e| {
            tracing::error!(error = %e, person_key = %key, "sealed identity cannot be opened");
            QueryError::Sealed
        })?;
        let pick = |v, s: String| if v == Clear { s } else { String::new() };
        Ok(Some(caselink_proto::v1::ClearIdentity {
            id_number: pick(view.id_number, clear.id_number),
            name: pick(view.name, clear.name),
            phone: pick(view.phone, clear.phone),
            address: pick(view.address, clear.address),
        }))
    }

    /// Records a person-level read; the answer waits for it (an act that cannot be audited is not done).
    async fn audit_read(
        &self,
        caller: Option<&caselink_auth::Caller>,
        rpc: &str,
        person_key: &str,
        outcome: &str,
        items: usize,
        clear_identity: bool,
    ) -> Result<(), Status> {
        let (Some(audit), Some(caller)) = (&self.audit, caller) else {
            return Ok(());
        };
        let record = caselink_proto::v1::AuditRecord {
            at: Some(caselink_domain::timestamp_from_system_time(
                std::time::SystemTime::now(),
            )),
            caller: caller.claims.sub.clone(),
            role: caller.claims.role.name().to_string(),
            department: caller.claims.department.clone().unwrap_or_default(),
            unit: caller.claims.unit.clone().unwrap_or_default(),
            rpc: rpc.to_string(),
            person_keys: vec![person_key.to_string()],
            purpose: caller.purpose.clone().unwrap_or_default(),
            outcome: outcome.to_string(),
            items: items as u32,
            clear_identity,
            ..caselink_proto::v1::AuditRecord::default()
        };
        audit.append(record).await.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, "audit record not written; refusing the read");
            Status::unavailable("the read could not be recorded in the audit trail; retry")
        })
    }

    /// Resolves a lookup to a person key; the clear ID number is hashed and dropped at once.
    pub fn resolve(&self, lookup: Option<&PersonLookup>) -> Result<PersonKey, QueryError> {
        match lookup.and_then(|l| l.lookup.as_ref()) {
            None => Err(QueryError::invalid(
                "person",
                "required: set id_number or person_key",
            )),
            Some(Lookup::IdNumber(raw)) => {
                let id = parse_id_number(raw)
                    .map_err(|e| QueryError::invalid("person.id_number", e.to_string()))?;
                Ok(person_key(&self.secret, &id))
            }
            Some(Lookup::PersonKey(hex)) => PersonKey::from_hex(hex)
                .map_err(|e| QueryError::invalid("person.person_key", e.to_string())),
        }
    }

    /// GetTimeline, as a plain function (the gRPC method wraps it).
    pub fn timeline(&self, request: &GetTimelineRequest) -> Result<Timeline, QueryError> {
        let key = self.resolve(request.person.as_ref())?;
        let from = request.from.as_ref().map_or(i64::MIN, timestamp_micros);
        let to = request.to.as_ref().map_or(i64::MAX, timestamp_micros);
        if from >= to {
            return Err(QueryError::invalid("to", "must be after from"));
        }
        let page_size = match request.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let after = if request.page_token.is_empty() {
            None
        } else {
            let bytes = hex::decode(&request.page_token)
                .ok()
                .filter(|b| b.len() == 24)
                .ok_or_else(|| {
                    QueryError::invalid("page_token", "not a token from a previous page")
                })?;
            Some(bytes)
        };
        for (i, d) in request.departments.iter().enumerate() {
            if !(1..=6).contains(d) {
                return Err(QueryError::InvalidArgument {
                    field: "departments",
                    why: format!("departments[{i}]: {d} is not a department"),
                });
            }
        }
        let record = self.store.person(&key)?.ok_or(QueryError::NotFound)?;
        let mut entries = Vec::with_capacity(page_size.min(record.events as usize));
        let mut next_page_token = String::new();
        let mut last_cursor: Option<Vec<u8>> = None;
        for row in self.store.timeline(&key, from, to, after.as_deref()) {
            let row = row?;
            if entries.len() == page_size {
                // There is more: the token points after the last returned entry.
                next_page_token = last_cursor.as_deref().map(hex::encode).unwrap_or_default();
                break;
            }
            last_cursor = Some(row.cursor().to_vec());
            if !request.departments.is_empty()
                && !request.departments.contains(&row.event.department)
            {
                continue;
            }
            let kind = row
                .event
                .payload
                .as_ref()
                .map_or("unknown", kind_name)
                .to_string();
            entries.push(TimelineEntry {
                kind,
                event: Some(row.event),
                stream_sequence: row.sequence,
            });
        }
        Ok(Timeline {
            person_key: key.to_hex(),
            identity: Some(MaskedIdentity {
                id_number_masked: record.id_number_masked,
                name_masked: record.name_masked,
                phone_masked: record.phone_masked,
            }),
            entries,
            next_page_token,
            clear_identity: None,
        })
    }
}

#[tonic::async_trait]
impl Linkage for LinkageService {
    async fn get_timeline(
        &self,
        request: Request<GetTimelineRequest>,
    ) -> Result<Response<Timeline>, Status> {
        let caller = request.extensions().get::<caselink_auth::Caller>().cloned();
        let request = request.into_inner();
        let service = LinkageService {
            store: self.store.clone(),
            secret: Arc::clone(&self.secret),
            audit: None,
            keyring: self.keyring.clone(),
        };
        let reader = caller.clone();
        // sled reads are blocking; keep them off the async workers.
        let (key, result) = tokio::task::spawn_blocking(move || {
            let key = service.resolve(request.person.as_ref())?;
            let result = service
                .check_region_scope(reader.as_ref(), &key)
                .and_then(|()| {
                    let mut timeline = service.timeline(&request)?;
                    timeline.clear_identity = service.clear_identity(reader.as_ref(), &key)?;
                    Ok(timeline)
                });
            Ok::<_, QueryError>((key.to_hex(), result))
        })
        .await
        .map_err(|e| Status::internal(format!("query task failed: {e}")))?
        .map_err(QueryError::into_status)?;
        const RPC: &str = "/caselink.v1.Linkage/GetTimeline";
        match result {
            Ok(timeline) => {
                let clear = timeline.clear_identity.is_some();
                self.audit_read(
                    caller.as_ref(),
                    RPC,
                    &key,
                    "OK",
                    timeline.entries.len(),
                    clear,
                )
                .await?;
                tracing::info!(person_key = %timeline.person_key, entries = timeline.entries.len(), clear, "timeline read");
                Ok(Response::new(timeline))
            }
            Err(e @ (QueryError::NotFound | QueryError::OutOfScope)) => {
                let outcome = if matches!(e, QueryError::NotFound) {
                    "NOT_FOUND"
                } else {
                    "PERMISSION_DENIED"
                };
                self.audit_read(caller.as_ref(), RPC, &key, outcome, 0, false)
                    .await?;
                Err(e.into_status())
            }
            Err(e) => Err(e.into_status()),
        }
    }
}
