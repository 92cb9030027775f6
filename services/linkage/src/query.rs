//! The Linkage gRPC service: queries over the local sled projections.

use std::sync::Arc;

use caselink_domain::{parse_id_number, person_key, timestamp_micros, KeySecret, PersonKey};
use caselink_proto::v1::linkage_server::Linkage;
use caselink_proto::v1::person_lookup::Lookup;
use caselink_proto::v1::{
    AbnormalListFigures, Figure, Flag, FlagStatus, FlaggedPerson, GetPersonViewRequest,
    GetTimelineRequest, KindCount, ListFlaggedRequest, ListFlaggedResponse, MaskedIdentity,
    PersonLink, PersonLookup, PersonView, Timeline, WatchAlertsRequest,
};
use prost::Message;
use std::collections::HashMap;
use tonic::{Request, Response, Status};

use crate::audit_query::Outcome;
use crate::store::{PersonRecord, Store, StoreError};

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
    pub(crate) fn invalid(field: &'static str, why: impl Into<String>) -> Self {
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

/// A stored timeline event that does not decode.
fn corrupt_timeline(e: prost::DecodeError) -> QueryError {
    QueryError::Store(StoreError::Corrupt {
        table: "timeline",
        why: e.to_string(),
    })
}

/// Serves `Linkage` from a [`Store`].
pub struct LinkageService {
    store: Store,
    secret: Arc<KeySecret>,
    audit: Option<caselink_bus::audit::AuditLog>,
    /// Opens sealed identities for roles whose view is clear; `None` when no sealing key is configured here.
    keyring: Option<Arc<caselink_domain::Keyring>>,
    /// Follows the alert stream for `WatchAlerts`.
    js: Option<async_nats::jetstream::Context>,
    /// Shows a person's criminal referrals in the joint view.
    referrals: Option<crate::referral::Shared>,
    /// Shows a person's determination, and the flags' statuses under it.
    determinations: Option<crate::determination::Shared>,
    /// Events the bus holds that the fold has not applied yet, shown in timelines ([`crate::tail`]).
    tail: Option<Arc<crate::tail::Tail>>,
}

impl LinkageService {
    pub fn new(
        store: Store,
        secret: Arc<KeySecret>,
        audit: caselink_bus::audit::AuditLog,
        keyring: Option<Arc<caselink_domain::Keyring>>,
        js: async_nats::jetstream::Context,
    ) -> Self {
        LinkageService {
            store,
            secret,
            audit: Some(audit),
            keyring,
            js: Some(js),
            referrals: None,
            determinations: None,
            tail: None,
        }
    }

    /// Shows in timelines the events the bus holds beyond the fold ([`crate::tail`]).
    pub fn with_tail(mut self, tail: Arc<crate::tail::Tail>) -> Self {
        self.tail = Some(tail);
        self
    }

    /// Shows referrals (from the referral projection) in person views.
    pub fn with_referrals(mut self, referrals: crate::referral::Shared) -> Self {
        self.referrals = Some(referrals);
        self
    }

    /// Shows determinations (from the determination projection) in person views and flag statuses.
    pub fn with_determinations(mut self, determinations: crate::determination::Shared) -> Self {
        self.determinations = Some(determinations);
        self
    }

    /// The person's determination as the projection holds it, and now (on the workflow's clock).
    fn determination_of(
        &self,
        key: &PersonKey,
    ) -> Result<
        Option<(
            caselink_workflow::determination::Determination,
            time::OffsetDateTime,
        )>,
        QueryError,
    > {
        let Some(shared) = &self.determinations else {
            return Ok(None);
        };
        Ok(shared.current(&key.to_hex())?.map(|d| (d, shared.now())))
    }

    /// A determiner may read only persons with records in its regions: checked on the record the answer is built
    /// from (one read). A person with no record at all is out of a determiner's scope too, so that a refusal does not
    /// tell whether someone outside its regions exists.
    fn check_region_scope(
        caller: Option<&caselink_auth::Caller>,
        record: Option<&PersonRecord>,
    ) -> Result<(), QueryError> {
        let Some(caller) = caller else { return Ok(()) };
        if caller.claims.role != caselink_auth::Role::Determiner {
            return Ok(());
        }
        let regions = record.map(|r| r.regions.as_slice()).unwrap_or_default();
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
        let Some(caller) = caller else {
            return Ok(None);
        };
        clear_identity(
            &self.store,
            self.keyring.as_deref(),
            caller.claims.role,
            key,
        )
    }

    /// Records a person-level read; the answer waits for it (an act that cannot be audited is not done).
    async fn audit_read(
        &self,
        caller: Option<&caselink_auth::Caller>,
        rpc: &str,
        person_keys: Vec<String>,
        outcome: Outcome,
        items: usize,
        clear_identity: bool,
    ) -> Result<(), Status> {
        let (Some(audit), Some(caller)) = (&self.audit, caller) else {
            return Ok(());
        };
        crate::audit_query::record(
            audit,
            caller,
            rpc,
            person_keys,
            outcome,
            items,
            clear_identity,
        )
        .await
        .map_err(|_| {
            Status::unavailable("the read could not be recorded in the audit trail; retry")
        })
    }

    /// Resolves a lookup to a person key; the clear ID number is hashed and dropped at once.
    pub fn resolve(&self, lookup: Option<&PersonLookup>) -> Result<PersonKey, QueryError> {
        resolve(&self.secret, lookup)
    }

    /// The person's record; for a person first seen since the fold's last checkpoint (whose record is not written yet:
    /// [`crate::states`]), the same record made from their timeline and the events of theirs the fold has not applied
    /// yet (decoding only the fields it needs); `None` for a person with no events.
    fn person_or_timeline(&self, key: &PersonKey) -> Result<Option<PersonRecord>, QueryError> {
        if let Some(record) = self.store.person(key)? {
            return Ok(Some(record));
        }
        let unfolded = self.unfolded(key, i64::MIN, i64::MAX, None)?;
        let mut record = PersonRecord::default();
        let stored = self.store.timeline_raw(key, i64::MIN, i64::MAX, None);
        let unfolded = unfolded.into_iter().map(|u| Ok(u.event));
        for event in stored.map(|row| row.map(|r| r.event)).chain(unfolded) {
            // What the record is made of: department (3), occurred_at (4), region (6), subject (8).
            let event = crate::wire::decode_fields(&event?, |tag| matches!(tag, 3 | 4 | 6 | 8))
                .map_err(corrupt_timeline)?;
            crate::fold::update_person(&mut record, &event, crate::fold::occurred_micros(&event));
        }
        Ok((record.events > 0).then_some(record))
    }

    /// The person's events in the range (and after `after`) that the bus holds and the fold has not applied yet
    /// ([`crate::tail`]), in place order, without those whose id the person's timeline holds already (applied since,
    /// or a duplicate the fold will skip). Read before the stored timeline: an event applied in between is then in
    /// both (the stored one is shown), never in neither.
    fn unfolded(
        &self,
        key: &PersonKey,
        from: i64,
        to: i64,
        after: Option<&[u8]>,
    ) -> Result<Vec<crate::tail::Unfolded>, QueryError> {
        let Some(tail) = &self.tail else {
            return Ok(Vec::new());
        };
        let mut unfolded = tail.unfolded(key, from, to, after);
        if !unfolded.is_empty() {
            let ids: Vec<uuid::Uuid> = unfolded.iter().map(|u| u.event_id).collect();
            let held = self.store.timeline_sequences(key, &ids)?;
            unfolded.retain(|u| !held.contains_key(&u.event_id));
        }
        Ok(unfolded)
    }

    /// GetTimeline, as a plain function: [`LinkageService::timeline_encoded`], decoded.
    pub fn timeline(&self, request: &GetTimelineRequest) -> Result<Timeline, QueryError> {
        let encoded = self.timeline_encoded(request, None, |_| Ok(()))?;
        Timeline::decode(encoded.encode_to_vec().as_slice()).map_err(corrupt_timeline)
    }

    /// GetTimeline with every entry's event as the bytes stored in the timeline's event log, copied
    /// into the answer as they are; only each event's department and payload are read (for the filter and the kind).
    /// `caller`'s region scope is checked on the person's record. `counted` is told how many entries the page holds
    /// as soon as that is known: before the events' bytes are read when no department filter is asked for (the
    /// timeline's index tells), after them otherwise; its error ends the read.
    pub fn timeline_encoded(
        &self,
        request: &GetTimelineRequest,
        caller: Option<&caselink_auth::Caller>,
        counted: impl FnOnce(usize) -> Result<(), QueryError>,
    ) -> Result<crate::wire::EncodedTimeline, QueryError> {
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
        // The unfolded events first, then the stored timeline (see `unfolded`).
        let unfolded = self.unfolded(&key, from, to, after.as_deref())?;
        let record = self.person_or_timeline(&key)?;
        Self::check_region_scope(caller, record.as_ref())?;
        let record = record.ok_or(QueryError::NotFound)?;
        let stored = self
            .store
            .timeline_entries(&key, from, to, after.as_deref())?;
        let mut listed = merge_unfolded(stored, unfolded);
        let mut counted = Some(counted);
        if request.departments.is_empty() {
            // Every listed entry is shown: the page is the first page_size of them, and one more tells there is more.
            listed.truncate(page_size + 1);
            if let Some(counted) = counted.take() {
                counted(listed.len().min(page_size))?;
            }
        }
        let mut entries = Vec::with_capacity(page_size.min(listed.len()));
        let mut next_page_token = String::new();
        let mut last_cursor: Option<Vec<u8>> = None;
        for row in self.listed_rows(listed) {
            let row = row?;
            if entries.len() == page_size {
                // There is more: the token points after the last returned entry.
                next_page_token = last_cursor.as_deref().map(hex::encode).unwrap_or_default();
                break;
            }
            let (department, kind) =
                crate::wire::event_head(&row.event).map_err(corrupt_timeline)?;
            last_cursor = Some(row.cursor);
            if !request.departments.is_empty() && !request.departments.contains(&department) {
                continue;
            }
            entries.push(crate::wire::EncodedEntry {
                kind: kind.to_string(),
                event: Some(row.event),
                stream_sequence: row.sequence,
            });
        }
        if let Some(counted) = counted.take() {
            counted(entries.len())?;
        }
        Ok(crate::wire::EncodedTimeline {
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

/// An entry of a timeline page: stored in sled, or held by the unfolded tail ([`crate::tail`]).
enum Listed {
    Stored(crate::store::TimelineEntry),
    Unfolded(crate::tail::Unfolded),
}

/// The stored entries and the unfolded ones (each in place order) in place order; an event in both (applied while
/// it was read) once, as stored.
fn merge_unfolded(
    stored: Vec<crate::store::TimelineEntry>,
    unfolded: Vec<crate::tail::Unfolded>,
) -> Vec<Listed> {
    if unfolded.is_empty() {
        return stored.into_iter().map(Listed::Stored).collect();
    }
    let mut merged = Vec::with_capacity(stored.len() + unfolded.len());
    let mut unfolded = unfolded.into_iter().peekable();
    for entry in stored {
        while let Some(u) = unfolded.next_if(|u| u.place < *entry.place()) {
            merged.push(Listed::Unfolded(u));
        }
        unfolded.next_if(|u| u.place == *entry.place());
        merged.push(Listed::Stored(entry));
    }
    merged.extend(unfolded.map(Listed::Unfolded));
    merged
}

impl LinkageService {
    /// The rows of a page's listed entries, in order: the stored ones' bytes read from the event log as the iterator
    /// reaches them ([`Store::timeline_rows`]: after an error, nothing more), the unfolded ones' from memory.
    fn listed_rows(
        &self,
        listed: Vec<Listed>,
    ) -> impl Iterator<Item = Result<crate::store::RawTimelineRow, StoreError>> + '_ {
        let stored = listed
            .iter()
            .filter_map(|l| match l {
                Listed::Stored(entry) => Some(*entry),
                Listed::Unfolded(_) => None,
            })
            .collect();
        let mut rows = self.store.timeline_rows(stored);
        let mut failed = false;
        listed.into_iter().map_while(move |l| {
            if failed {
                return None;
            }
            let row = match l {
                Listed::Stored(_) => rows.next()?,
                Listed::Unfolded(u) => Ok(crate::store::RawTimelineRow {
                    sequence: u.sequence,
                    event: u.event,
                    cursor: u.place.to_vec(),
                }),
            };
            failed = row.is_err();
            Some(row)
        })
    }
}

/// Resolves a lookup to a person key; the clear ID number is hashed and dropped at once.
pub fn resolve(secret: &KeySecret, lookup: Option<&PersonLookup>) -> Result<PersonKey, QueryError> {
    match lookup.and_then(|l| l.lookup.as_ref()) {
        None => Err(QueryError::invalid(
            "person",
            "required: set id_number or person_key",
        )),
        Some(Lookup::IdNumber(raw)) => {
            let id = parse_id_number(raw)
                .map_err(|e| QueryError::invalid("person.id_number", e.to_string()))?;
            Ok(person_key(secret, &id))
        }
        Some(Lookup::PersonKey(hex)) => PersonKey::from_hex(hex)
            .map_err(|e| QueryError::invalid("person.person_key", e.to_string())),
    }
}

/// A person's clear identity as `role` may see it (masking table: `caselink_auth::identity_view`): `None` when the role
/// sees nothing in clear, no sealing key is configured here, or no identity is stored.
pub(crate) fn clear_identity(
    store: &Store,
    keyring: Option<&caselink_domain::Keyring>,
    role: caselink_auth::Role,
    key: &PersonKey,
) -> Result<Option<caselink_proto::v1::ClearIdentity>, QueryError> {
    use caselink_auth::Visibility::Clear;
    let Some(keyring) = keyring else {
        return Ok(None);
    };
    let view = caselink_auth::identity_view(role);
    if !view.any_clear() {
        return Ok(None);
    }
    let Some(sealed) = store.sealed_identity(key)? else {
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

/// The abnormal-list figures of a person's screening state (spec domain.md section 6).
pub(crate) fn abnormal_figures(figures: &caselink_screening::Figures) -> AbnormalListFigures {
    AbnormalListFigures {
        complaints_and_reports: figures.complaints + figures.reports,
        disclosure_requests: figures.disclosure_requests,
        reconsiderations_and_suits: figures.reconsiderations_or_suits(),
        discipline_reports: figures.discipline_reports,
        main_issues: figures.main_issues(5).into_iter().map(|c| c.name).collect(),
        categories: figures
            .main_categories(5)
            .into_iter()
            .map(|c| c.name)
            .collect(),
        matters: figures.matters,
    }
}

/// Default and largest flagged-list page.
const DEFAULT_FLAGGED_PAGE: usize = 50;
const MAX_FLAGGED_PAGE: usize = 500;
/// Linked persons shown in a view, and the group size explored.
const MAX_LINKS_SHOWN: usize = 50;
const MAX_GROUP: usize = 200;

/// What may be shown of a person's identity to everyone: the masks.
pub(crate) fn masked_identity(record: &PersonRecord) -> MaskedIdentity {
    MaskedIdentity {
        id_number_masked: record.id_number_masked.clone(),
        name_masked: record.name_masked.clone(),
        phone_masked: record.phone_masked.clone(),
    }
}

fn timestamp(micros: i64) -> Option<caselink_proto::Timestamp> {
    let micros = micros.max(0) as u64;
    Some(caselink_domain::timestamp_from_system_time(
        std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros),
    ))
}

/// A screening flag as the API shows it.
pub(crate) fn flag_to_proto(flag: &caselink_screening::Flag) -> Flag {
    Flag {
        rule: flag.rule.clone(),
        title: flag.title_en.clone(),
        title_zh: flag.title_zh.clone(),
        clause: flag.clause.clone(),
        guideline: flag.guideline.clone(),
        window_from: timestamp(flag.window_from_us),
        window_to: timestamp(flag.window_to_us),
        figures: flag
            .figures
            .iter()
            .map(|f| Figure {
                name: f.name.clone(),
                value: f.value,
                threshold: f.threshold,
            })
            .collect(),
        evidence_event_ids: flag.evidence.clone(),
        evidence_total: flag.evidence_total,
        raised_sequence: flag.raised_seq,
        updated_sequence: flag.updated_seq,
        revision: flag.revision,
        status: if flag.active {
            FlagStatus::Open
        } else {
            FlagStatus::Withdrawn
        } as i32,
    }
}

/// Reads the store as the screener's state (for walking the link graph in a query).
struct ReadOnly<'s> {
    store: &'s Store,
    persons: HashMap<PersonKey, caselink_screening::PersonScreening>,
    relations: HashMap<caselink_screening::RelationKey, caselink_screening::RelationState>,
}

impl caselink_screening::ScreeningStore for ReadOnly<'_> {
    type Error = StoreError;

    fn person(
        &mut self,
        key: &PersonKey,
    ) -> Result<&mut caselink_screening::PersonScreening, StoreError> {
        if !self.persons.contains_key(key) {
            let loaded = self.store.screening(key)?.unwrap_or_default();
            self.persons.insert(*key, loaded);
        }
        Ok(self.persons.get_mut(key).expect("inserted above"))
    }

    fn relation(
        &mut self,
        key: &caselink_screening::RelationKey,
    ) -> Result<&mut caselink_screening::RelationState, StoreError> {
        if !self.relations.contains_key(key) {
            let loaded = self.store.relation(&key.to_bytes())?.unwrap_or_default();
            self.relations.insert(key.clone(), loaded);
        }
        Ok(self.relations.get_mut(key).expect("inserted above"))
    }
}

impl LinkageService {
    /// GetPersonView, as a plain function: everything but the clear identity; `caller`'s region scope is checked on
    /// the person's record.
    pub fn person_view(
        &self,
        key: &PersonKey,
        caller: Option<&caselink_auth::Caller>,
    ) -> Result<PersonView, QueryError> {
        self.person_view_counted(key, caller, |_| Ok(()))
    }

    /// [`LinkageService::person_view`], telling `counted` how many flags the view shows as soon as the person's
    /// record is read and in scope, before the links, group and referrals are read; its error ends the read.
    fn person_view_counted(
        &self,
        key: &PersonKey,
        caller: Option<&caselink_auth::Caller>,
        counted: impl FnOnce(usize) -> Result<(), QueryError>,
    ) -> Result<PersonView, QueryError> {
        let row = match self.store.person_row(key)? {
            Some(row) => Some(row),
            // First seen since the fold's last checkpoint: no screening state yet.
            None => self
                .person_or_timeline(key)?
                .map(|record| (record, Default::default())),
        };
        Self::check_region_scope(caller, row.as_ref().map(|(record, _)| record))?;
        let (record, screening) = row.ok_or(QueryError::NotFound)?;
        counted(screening.flags.len())?;
        let figures = screening.figures.clone().unwrap_or_default();
        let determination = self.determination_of(key)?;
        let mut counts: Vec<KindCount> = figures
            .by_kind
            .iter()
            .map(|c| KindCount {
                department: caselink_domain::department_of_kind(&c.name).map_or(0, |d| d as i32),
                kind: c.name.clone(),
                count: c.count,
            })
            .collect();
        counts.sort_by(|a, b| a.department.cmp(&b.department).then(a.kind.cmp(&b.kind)));
        // Reads the linked persons' states and the relations (a plain sharing link's evidence is its relation's),
        // each once per call.
        let mut reader = ReadOnly {
            store: &self.store,
            persons: HashMap::new(),
            relations: HashMap::new(),
        };
        let mut links = Vec::new();
        for link in screening.links.iter().take(MAX_LINKS_SHOWN) {
            let Ok(other) = <[u8; 32]>::try_from(link.other.as_slice()).map(PersonKey) else {
                continue;
            };
            let identity = self.store.person(&other)?.map(|r| masked_identity(&r));
            let reason = caselink_screening::LinkReason::try_from(link.reason)
                .unwrap_or(caselink_screening::LinkReason::Unspecified);
            let relation = caselink_screening::RelationKey::from_bytes(&link.relation);
            let shared;
            let evidence = match &relation {
                Some(relation) if link.evidence.is_empty() => {
                    let state =
                        caselink_screening::ScreeningStore::relation(&mut reader, relation)?;
                    shared = caselink_screening::sharing_evidence(state, &key.0, &other.0);
                    &shared
                }
                _ => &link.evidence,
            };
            links.push(PersonLink {
                person_key: other.to_hex(),
                identity,
                reason: link_reason_code(reason).to_string(),
                detail: match &relation {
                    Some(relation) => format!(
                        "{} ({})",
                        caselink_screening::link_reason_text(link.reason),
                        relation.label()
                    ),
                    None => caselink_screening::link_reason_text(link.reason).to_string(),
                },
                evidence_event_ids: evidence
                    .iter()
                    .map(|e| caselink_screening::id_string(e))
                    .collect(),
            });
        }
        let (group_id, group_size) = if screening.links.is_empty() {
            (String::new(), 0)
        } else {
            let group = caselink_screening::group_of(&mut reader, key, MAX_GROUP)?;
            // The group is named after its smallest member key: the same name from every member's view.
            let name = group
                .iter()
                .map(PersonKey::to_hex)
                .min()
                .map(|k| format!("G-{}", &k[..12]))
                .unwrap_or_default();
            (name, group.len() as u32)
        };
        Ok(PersonView {
            person_key: key.to_hex(),
            identity: Some(masked_identity(&record)),
            clear_identity: None,
            events: record.events,
            first_occurred_at: timestamp(record.first_occurred_micros),
            last_occurred_at: timestamp(record.last_occurred_micros),
            regions: record.regions.clone(),
            counts,
            figures: Some(abnormal_figures(&figures)),
            flags: screening
                .flags
                .iter()
                .map(|flag| {
                    let mut shown = flag_to_proto(flag);
                    if let (true, Some((d, now))) = (flag.active, &determination) {
                        shown.status = d.flag_status(&flag.rule, flag.revision, *now) as i32;
                    }
                    shown
                })
                .collect(),
            links,
            group_id,
            group_size,
            referrals: self.referrals_of(key)?,
            determination: determination.map(|(d, now)| d.to_view(now, false)),
        })
    }

    /// The referrals naming the person, as they stand now.
    fn referrals_of(
        &self,
        key: &PersonKey,
    ) -> Result<Vec<caselink_proto::v1::ReferralView>, QueryError> {
        let Some(shared) = &self.referrals else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for id in shared.referrals.of_person(&key.to_hex())? {
            let Some(referral) = shared
                .referrals
                .get(&id)?
                .and_then(|stored| stored.replay_first(usize::MAX))
            else {
                continue;
            };
            match shared.view(&referral, false) {
                Ok(view) => out.push(view),
                Err(e) => {
                    tracing::warn!(referral_id = %id, error = %e, "referral not shown in the person view")
                }
            }
        }
        Ok(out)
    }

    /// ListFlagged, as a plain function. `regions` limits the listing to a determiner's regions.
    pub fn list_flagged(
        &self,
        request: &ListFlaggedRequest,
        regions: Option<&[String]>,
    ) -> Result<ListFlaggedResponse, QueryError> {
        crate::alerts::check_region_prefix(&request.region_prefix)
            .map_err(|why| QueryError::invalid("region_prefix", why))?;
        let rule = if request.rule.is_empty() {
            None
        } else {
            Some(
                caselink_screening::RuleCode::parse(&request.rule)
                    .ok_or_else(|| {
                        QueryError::invalid(
                            "rule",
                            format!("{:?} is not a rule (C1 … C7, R1 … R5)", request.rule),
                        )
                    })?
                    .as_str(),
            )
        };
        let status = FlagStatus::try_from(request.status)
            .map_err(|_| QueryError::invalid("status", "not a FlagStatus"))?;
        if let Some(regions) = regions {
            let inside = regions
                .iter()
                .any(|r| request.region_prefix.starts_with(r.as_str()));
            if !inside {
                return Err(QueryError::OutOfScope);
            }
        }
        let page_size = match request.page_size as usize {
            0 => DEFAULT_FLAGGED_PAGE,
            n => n.min(MAX_FLAGGED_PAGE),
        };
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(
                hex::decode(&request.page_token)
                    .ok()
                    .filter(|b| b.len() == 39)
                    .ok_or_else(|| {
                        QueryError::invalid("page_token", "not a token from a previous page")
                    })?,
            )
        };
        let mut persons = Vec::new();
        let mut next_page_token = String::new();
        for item in self.store.flagged(&request.region_prefix, after.as_deref()) {
            let (region, key, entry) = item?;
            let with_status;
            let rules: &[String] = match status {
                FlagStatus::Withdrawn => &entry.withdrawn,
                FlagStatus::Unspecified => &entry.rules,
                wanted => {
                    with_status = self.rules_with_status(&key, &entry.rules, wanted)?;
                    &with_status
                }
            };
            let wanted = match rule {
                Some(r) => rules.iter().any(|x| x == r),
                None => !rules.is_empty(),
            };
            if !wanted {
                continue;
            }
            if persons.len() == page_size {
                next_page_token = persons
                    .last()
                    .map(|p: &FlaggedPerson| {
                        let key = PersonKey::from_hex(&p.person_key).unwrap_or(PersonKey([0; 32]));
                        hex::encode(crate::store::flagged_key(&p.region_code, &key))
                    })
                    .unwrap_or_default();
                break;
            }
            let identity = self.store.person(&key)?.map(|r| masked_identity(&r));
            persons.push(FlaggedPerson {
                person_key: key.to_hex(),
                identity,
                region_code: region,
                rules: rules.to_vec(),
                updated_at: timestamp(entry.updated_us),
                updated_sequence: entry.updated_seq,
            });
        }
        Ok(ListFlaggedResponse {
            persons,
            next_page_token,
        })
    }

    /// Which of a person's active flags (`rules`) have `wanted` status (open, confirmed, cleared) under their
    /// determination.
    fn rules_with_status(
        &self,
        key: &PersonKey,
        rules: &[String],
        wanted: FlagStatus,
    ) -> Result<Vec<String>, QueryError> {
        let Some((determination, now)) = self.determination_of(key)? else {
            // Never determined: every active flag is open.
            return Ok(if wanted == FlagStatus::Open {
                rules.to_vec()
            } else {
                Vec::new()
            });
        };
        let screening = self.store.screening(key)?.unwrap_or_default();
        Ok(rules
            .iter()
            .filter(|rule| {
                let revision = screening
                    .flags
                    .iter()
                    .find(|f| f.active && &f.rule == *rule)
                    .map_or(0, |f| f.revision);
                determination.flag_status(rule, revision, now) == wanted
            })
            .cloned()
            .collect())
    }

    /// A copy for a blocking task (no audit handle: the async side audits).
    fn reader(&self) -> LinkageService {
        LinkageService {
            store: self.store.clone(),
            secret: Arc::clone(&self.secret),
            audit: None,
            keyring: self.keyring.clone(),
            js: None,
            referrals: self.referrals.clone(),
            determinations: self.determinations.clone(),
            tail: self.tail.clone(),
        }
    }

    /// The common shape of a person-level read: resolve the person, build the answer off the async workers (sled
    /// reads block; the builder checks the caller's region scope on the record it reads), and audit the outcome
    /// before answering. The builder tells the outcome ([`Told::ok`]) as soon as it knows it, and the audit record is
    /// stored while the rest of the answer is read; should the read then fail, a second record says how.
    async fn read_person<T: Send + 'static>(
        &self,
        caller: Option<caselink_auth::Caller>,
        rpc: &'static str,
        lookup: Option<PersonLookup>,
        build: impl FnOnce(
                &LinkageService,
                &PersonKey,
                Option<&caselink_auth::Caller>,
                &mut Told,
            ) -> Result<T, QueryError>
            + Send
            + 'static,
    ) -> Result<T, Status> {
        let key = self
            .resolve(lookup.as_ref())
            .map_err(QueryError::into_status)?;
        let service = self.reader();
        let reader = caller.clone();
        let started = std::time::Instant::now();
        let (tell, told) = tokio::sync::oneshot::channel();
        let task = tokio::task::spawn_blocking(move || {
            build(&service, &key, reader.as_ref(), &mut Told(Some(tell)))
        });
        let person = key.to_hex();
        // Told the outcome, or the builder ended without telling it (the sender dropped).
        let outcome = told.await.ok();
        let told_after = started.elapsed();
        let built = async {
            let answer = task.await;
            (answer, started.elapsed())
        };
        let (recorded, (answer, built)) = match outcome {
            Some((items, clear)) => {
                let record = async {
                    let recorded = self
                        .audit_read(
                            caller.as_ref(),
                            rpc,
                            vec![person.clone()],
                            Outcome::ok(),
                            items,
                            clear,
                        )
                        .await;
                    (recorded, started.elapsed())
                };
                let (recorded, built) = tokio::join!(record, built);
                (Some(recorded), built)
            }
            None => (None, built.await),
        };
        let mut stored = built;
        if let Some((recorded, at)) = recorded {
            recorded?;
            stored = at;
        }
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                // The builder panicked: a read already recorded as answered is recorded again as failed.
                let status = Status::internal(format!("query task failed: {e}"));
                if outcome.is_some() {
                    let failed = Outcome::of(&status);
                    self.audit_read(caller.as_ref(), rpc, vec![person], failed, 0, false)
                        .await?;
                }
                return Err(status);
            }
        };
        match (answer, outcome) {
            (Ok(answer), Some((items, clear))) => {
                tracing::info!(
                    person_key = %person,
                    rpc,
                    items,
                    clear,
                    // From the call's start: outcome told, answer built; then the record's own time from told.
                    told_us = told_after.as_micros() as u64,
                    build_us = built.as_micros() as u64,
                    audit_us = stored.saturating_sub(told_after).as_micros() as u64,
                    "person read"
                );
                Ok(answer)
            }
            (Ok(_), None) => Err(Status::internal(format!(
                "{rpc}: the answer was built without telling its outcome for the audit trail"
            ))),
            (Err(e), outcome) => {
                // Not found and out of scope are on the record; so is a read already recorded as answered that then
                // failed (the store): the trail says so.
                let recorded =
                    matches!(e, QueryError::NotFound | QueryError::OutOfScope) || outcome.is_some();
                tracing::debug!(rpc, build_us = built.as_micros() as u64, error = %e, "person read failed");
                let status = e.into_status();
                if recorded {
                    let failed = Outcome::of(&status);
                    self.audit_read(caller.as_ref(), rpc, vec![person], failed, 0, false)
                        .await?;
                }
                Err(status)
            }
        }
    }
}

impl LinkageService {
    /// Tells a person read's outcome once the answer's count is known: `items`, and whether the clear identity
    /// (returned) is shown to `caller`.
    fn tell(
        &self,
        caller: Option<&caselink_auth::Caller>,
        key: &PersonKey,
        told: &mut Told,
        items: usize,
    ) -> Result<Option<caselink_proto::v1::ClearIdentity>, QueryError> {
        let clear = self.clear_identity(caller, key)?;
        told.ok(items, clear.is_some());
        Ok(clear)
    }
}

/// How a person-level read's builder tells its outcome for the audit record: the entries or events the answer shows
/// and whether clear identity is in it. Told once, as soon as known; the answer must then be exactly that.
pub(crate) struct Told(Option<tokio::sync::oneshot::Sender<(usize, bool)>>);

impl Told {
    /// The answer will show `items` entries (events), with clear identity if `clear`.
    pub(crate) fn ok(&mut self, items: usize, clear: bool) {
        if let Some(tell) = self.0.take() {
            // The receiver is gone only if the call was dropped: nothing to record then.
            let _ = tell.send((items, clear));
        }
    }
}

impl LinkageService {
    /// `GetTimeline` as served ([`crate::wire::LinkageRoutes`]): the answer keeps the stored event bytes.
    pub async fn get_timeline_encoded(
        &self,
        request: Request<GetTimelineRequest>,
    ) -> Result<Response<crate::wire::EncodedTimeline>, Status> {
        let caller = request.extensions().get::<caselink_auth::Caller>().cloned();
        let request = request.into_inner();
        let lookup = request.person.clone();
        let timeline = self
            .read_person(
                caller,
                "/caselink.v1.Linkage/GetTimeline",
                lookup,
                move |service, key, reader, told| {
                    let mut clear = None;
                    let mut timeline = service.timeline_encoded(&request, reader, |items| {
                        clear = service.tell(reader, key, told, items)?;
                        Ok(())
                    })?;
                    timeline.clear_identity = clear;
                    Ok(timeline)
                },
            )
            .await?;
        Ok(Response::new(timeline))
    }
}

/// The API's name of a link reason.
fn link_reason_code(reason: caselink_screening::LinkReason) -> &'static str {
    use caselink_screening::LinkReason as R;
    match reason {
        R::Unspecified => "linked",
        R::SharedPhone => "shared_phone",
        R::SharedAddress => "shared_address",
        R::SimilarText => "similar_text",
        R::Collusion => "same_merchant_window",
        R::SharedAgent => "shared_contact",
        R::FalseName => "false_name",
    }
}

#[tonic::async_trait]
impl Linkage for LinkageService {
    async fn get_timeline(
        &self,
        request: Request<GetTimelineRequest>,
    ) -> Result<Response<Timeline>, Status> {
        // Served over gRPC by `wire::LinkageRoutes` from the stored bytes; this is the same answer decoded (same access
        // check, same audit record), for callers of the trait.
        let encoded = self.get_timeline_encoded(request).await?.into_inner();
        Timeline::decode(encoded.encode_to_vec().as_slice())
            .map(Response::new)
            .map_err(|e| Status::internal(format!("a stored timeline entry does not decode: {e}")))
    }

    async fn get_person_view(
        &self,
        request: Request<GetPersonViewRequest>,
    ) -> Result<Response<PersonView>, Status> {
        let caller = request.extensions().get::<caselink_auth::Caller>().cloned();
        let lookup = request.into_inner().person;
        let view = self
            .read_person(
                caller,
                "/caselink.v1.Linkage/GetPersonView",
                lookup,
                |service, key, reader, told| {
                    let mut clear = None;
                    let mut view = service.person_view_counted(key, reader, |flags| {
                        clear = service.tell(reader, key, told, flags)?;
                        Ok(())
                    })?;
                    view.clear_identity = clear;
                    Ok(view)
                },
            )
            .await?;
        Ok(Response::new(view))
    }

    async fn list_flagged(
        &self,
        request: Request<ListFlaggedRequest>,
    ) -> Result<Response<ListFlaggedResponse>, Status> {
        let caller = request.extensions().get::<caselink_auth::Caller>().cloned();
        let request = request.into_inner();
        let service = self.reader();
        let regions = caller
            .as_ref()
            .filter(|c| c.claims.role == caselink_auth::Role::Determiner)
            .map(|c| c.claims.regions.clone());
        let result =
            tokio::task::spawn_blocking(move || service.list_flagged(&request, regions.as_deref()))
                .await
                .map_err(|e| Status::internal(format!("query task failed: {e}")))?;
        const RPC: &str = "/caselink.v1.Linkage/ListFlagged";
        match result {
            Ok(page) => {
                let keys = page.persons.iter().map(|p| p.person_key.clone()).collect();
                let items = page.persons.len();
                self.audit_read(caller.as_ref(), RPC, keys, Outcome::ok(), items, false)
                    .await?;
                Ok(Response::new(page))
            }
            Err(QueryError::OutOfScope) => {
                let status =
                    Status::permission_denied("region_prefix: outside the regions of your token");
                let refused = Outcome::of(&status);
                self.audit_read(caller.as_ref(), RPC, Vec::new(), refused, 0, false)
                    .await?;
                Err(status)
            }
            Err(e) => Err(e.into_status()),
        }
    }

    type WatchAlertsStream = crate::alerts::AlertStream;

    async fn watch_alerts(
        &self,
        request: Request<WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        let caller = request.extensions().get::<caselink_auth::Caller>().cloned();
        let request = request.into_inner();
        crate::alerts::validate_region_prefix("region_prefix", &request.region_prefix)?;
        if let Some(c) = caller
            .as_ref()
            .filter(|c| c.claims.role == caselink_auth::Role::Determiner)
        {
            if !c
                .claims
                .regions
                .iter()
                .any(|r| request.region_prefix.starts_with(r.as_str()))
            {
                return Err(Status::permission_denied(
                    "region_prefix: a determiner watches regions within its token's regions",
                ));
            }
        }
        let js = self
            .js
            .as_ref()
            .ok_or_else(|| Status::unavailable("alerts are not served here"))?;
        let stream =
            crate::alerts::watch(js, request.region_prefix.clone(), request.cursor).await?;
        self.audit_read(
            caller.as_ref(),
            "/caselink.v1.Linkage/WatchAlerts",
            Vec::new(),
            Outcome::ok_saying(format!(
                "region {:?} from cursor {}",
                request.region_prefix, request.cursor
            )),
            0,
            false,
        )
        .await?;
        tracing::info!(region_prefix = %request.region_prefix, cursor = request.cursor, "alert watch opened");
        Ok(Response::new(stream))
    }

    async fn get_situation(
        &self,
        request: Request<caselink_proto::v1::GetSituationRequest>,
    ) -> Result<Response<caselink_proto::v1::Situation>, Status> {
        use crate::situation::{situation, SituationError};
        const RPC: &str = "/caselink.v1.Linkage/GetSituation";
        let caller = request.extensions().get::<caselink_auth::Caller>().cloned();
        let request = request.into_inner();
        let regions = caller
            .as_ref()
            .filter(|c| c.claims.role == caselink_auth::Role::Determiner)
            .map(|c| c.claims.regions.clone());
        let store = self.store.clone();
        let shared = self.referrals.clone();
        let determinations = self.determinations.clone();
        let result = tokio::task::spawn_blocking(move || {
            let shared = shared.ok_or(SituationError::Unavailable)?;
            let determinations = determinations.ok_or(SituationError::Unavailable)?;
            situation(
                &store,
                &shared.referrals,
                &determinations.determinations,
                &shared.calendar,
                shared.now(),
                &request,
                regions.as_deref(),
            )
        })
        .await
        .map_err(|e| Status::internal(format!("query task failed: {e}")))?;
        // An aggregate: no person is named, so the audit record names none.
        // Answered and refused (out of scope) are on the record; a failure read nothing.
        let result = result.map_err(SituationError::into_status);
        let outcome = match &result {
            Ok(_) => Outcome::ok(),
            Err(status) if status.code() == tonic::Code::PermissionDenied => Outcome::of(status),
            Err(_) => return result.map(Response::new),
        };
        self.audit_read(caller.as_ref(), RPC, Vec::new(), outcome, 0, false)
            .await?;
        result.map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use caselink_proto::v1::case_event::Payload;
    use caselink_proto::v1::{
        CaseEvent, ComplaintReceived, Department, Merchant, Person, TicketCreated, TimelineEntry,
    };

    fn service(store: Store) -> LinkageService {
        LinkageService {
            store,
            secret: Arc::new(KeySecret::from_bytes([9u8; 64]).unwrap()),
            audit: None,
            keyring: None,
            js: None,
            referrals: None,
            determinations: None,
            tail: None,
        }
    }

    /// A store with one person's timeline written as the fold writes it (`seq ‖ CaseEvent`), events of two
    /// departments, some at the same instant, one without a payload.
    fn store_with_timeline(key: &PersonKey) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let record = PersonRecord {
            id_number_masked: "4306**********123X".into(),
            name_masked: "张*".into(),
            phone_masked: "138****0000".into(),
            events: 40,
            ..PersonRecord::default()
        };
        let mut writes = crate::store::Writes::appending_at(store.log_end());
        let number = writes.number_for_test(key);
        writes.insert(
            &crate::store::row_key(number)[..],
            crate::store::encode_person_row(&record, &Default::default()),
        );
        for i in 0..40u64 {
            let micros = 1_700_000_000_000_000 + (i / 3) as i64 * 1_000_000;
            let id = uuid::Uuid::from_u128(0xabc0_0000 + u128::from(i));
            let (department, payload) = match i % 4 {
                0 => (
                    Department::Market,
                    Some(Payload::ComplaintReceived(ComplaintReceived::default())),
                ),
                1 => (
                    Department::Hotline,
                    Some(Payload::TicketCreated(TicketCreated::default())),
                ),
                2 => (Department::Market, None),
                _ => (
                    Department::Hotline,
                    Some(Payload::TicketCreated(TicketCreated::default())),
                ),
            };
            let event = CaseEvent {
                event_id: id.to_string(),
                source_id: format!("src-{i}"),
                department: department as i32,
                occurred_at: Some(caselink_proto::Timestamp {
                    seconds: micros / 1_000_000,
                    nanos: 0,
                }),
                region_code: "430602".into(),
                subject: Some(Person {
                    name_masked: "张*".into(),
                    ..Person::default()
                }),
                merchant: Some(Merchant::default()),
                summary: format!("第 {i} 件：投诉内容"),
                related_event_ids: vec!["x".into(); (i % 3) as usize],
                payload,
                ..CaseEvent::default()
            };
            writes.timeline(number, micros, &id, 1_000 + i, |out| {
                event.encode(out).unwrap()
            });
        }
        store.apply(writes).unwrap();
        (dir, store)
    }

    #[test]
    fn a_person_without_a_record_yet_is_answered_from_the_timeline() {
        // Under a backlog the fold writes person records only at checkpoints: a person first seen since the last one
        // has timeline entries and no record. Their timeline, view and region scope come from the timeline then.
        let key = PersonKey([7; 32]);
        let (_dir, store) = store_with_timeline(&key);
        store
            .tree()
            .remove(crate::store::row_key(store.number(&key).unwrap().unwrap()))
            .unwrap();
        let service = service(store.clone());
        let request = whole_timeline(&key, vec![]);
        let timeline = service.timeline(&request).unwrap();
        assert_eq!(timeline.entries.len(), 40);
        assert_eq!(timeline.identity.unwrap().name_masked, "张*");
        let view = service.person_view(&key, None).unwrap();
        assert_eq!(view.identity.unwrap().name_masked, "张*");
        // The record made from the fields it needs is the one the whole events make.
        let mut whole = PersonRecord::default();
        for row in store.timeline(&key, i64::MIN, i64::MAX, None) {
            let event = row.unwrap().event;
            crate::fold::update_person(&mut whole, &event, crate::fold::occurred_micros(&event));
        }
        assert_eq!(whole.events, 40);
        assert_eq!(service.person_or_timeline(&key).unwrap(), Some(whole));

        let determiner = |region: &str| caselink_auth::Caller {
            claims: caselink_auth::Claims {
                sub: "staff-1".into(),
                role: caselink_auth::Role::Determiner,
                department: None,
                regions: vec![region.into()],
                unit: None,
                iss: "test".into(),
                iat: 0,
                exp: u64::MAX,
                jti: "t".into(),
            },
            purpose: None,
        };
        let inside = determiner("4306");
        let outside = determiner("11");
        assert!(service
            .timeline_encoded(&request, Some(&inside), |_| Ok(()))
            .is_ok());
        assert!(service.person_view(&key, Some(&inside)).is_ok());
        assert!(matches!(
            service.timeline_encoded(&request, Some(&outside), |_| Ok(())),
            Err(QueryError::OutOfScope)
        ));
        assert!(matches!(
            service.person_view(&key, Some(&outside)),
            Err(QueryError::OutOfScope)
        ));
        // Nobody with neither record nor timeline: not found, but for a determiner out of scope like anyone outside
        // its regions (a refusal does not tell who exists).
        let other = PersonKey([8; 32]);
        assert!(matches!(
            service.person_view(&other, None),
            Err(QueryError::NotFound)
        ));
        assert!(matches!(
            service.person_view(&other, Some(&inside)),
            Err(QueryError::OutOfScope)
        ));
    }

    /// A bus event of `key`'s at `micros`, as a department submits it (sealed identity included).
    fn bus_event(key: &PersonKey, id: u128, micros: i64, department: Department) -> Vec<u8> {
        CaseEvent {
            event_id: uuid::Uuid::from_u128(id).to_string(),
            source_id: format!("live-{id}"),
            department: department as i32,
            occurred_at: Some(caselink_proto::Timestamp {
                seconds: micros / 1_000_000,
                nanos: (micros % 1_000_000) as i32 * 1_000,
            }),
            region_code: "430602".into(),
            subject: Some(Person {
                person_key: key.to_hex(),
                name_masked: "李*".into(),
                sealed: Some(caselink_proto::v1::SealedIdentity {
                    ciphertext: vec![1; 32],
                    ..Default::default()
                }),
                ..Person::default()
            }),
            payload: Some(Payload::ComplaintReceived(ComplaintReceived::default())),
            ..CaseEvent::default()
        }
        .encode_to_vec()
    }

    /// A tail that read `key`'s bus events (sequence, id, occurred µs, department), in that order.
    fn holding(key: &PersonKey, events: &[(u64, u128, i64, Department)]) -> crate::tail::Tail {
        let tail = crate::tail::Tail::new(Default::default(), 0);
        for &(sequence, id, micros, department) in events {
            tail.read(sequence, &bus_event(key, id, micros, department));
        }
        tail
    }

    fn sequences_of(timeline: &Timeline) -> Vec<u64> {
        timeline.entries.iter().map(|e| e.stream_sequence).collect()
    }

    #[test]
    fn events_the_fold_has_not_applied_are_shown_in_their_place_once() {
        let key = PersonKey([7; 32]);
        let (_dir, store) = store_with_timeline(&key);
        let base = 1_700_000_000_000_000;
        // Between stored events (the stored ones at this second have sequences 1012-1014), after them all, a
        // redelivered copy of a stored event (the fold applied it: held by sled), and a duplicate of a stored event's
        // id under another instant (the fold will skip it).
        let tail = Arc::new(holding(
            &key,
            &[
                (1_005, 0xabc0_0005, base + 1_000_000, Department::Hotline),
                (2001, 1, base + 4_500_000, Department::Market),
                (2002, 2, base + 99_000_000, Department::Hotline),
                (2003, 0xabc0_0007, base + 50_000_000, Department::Market),
            ],
        ));
        let mut service = service(store.clone());
        service.tail = Some(Arc::clone(&tail));
        let timeline = service.timeline(&whole_timeline(&key, vec![])).unwrap();
        let sequences = sequences_of(&timeline);
        assert_eq!(tail.len(), 4);
        assert_eq!(sequences.len(), 42, "{sequences:?}");
        let at = |s: u64| sequences.iter().position(|&x| x == s).unwrap();
        assert_eq!(
            at(2001),
            at(1014) + 1,
            "after the stored events of its second: {sequences:?}"
        );
        assert_eq!(at(2001) + 1, at(1015));
        assert_eq!(*sequences.last().unwrap(), 2002);
        let live = &timeline.entries[at(2001)];
        assert_eq!(live.kind, "complaint.received");
        let event = live.event.as_ref().unwrap();
        assert!(
            event.subject.as_ref().unwrap().sealed.is_none(),
            "no sealed identity shown"
        );
        // Paged: the same entries in the same order, across stored and unfolded ones.
        let mut request = whole_timeline(&key, vec![]);
        request.page_size = 7;
        let mut paged = Vec::new();
        loop {
            let page = service.timeline(&request).unwrap();
            paged.extend(sequences_of(&page));
            if page.next_page_token.is_empty() {
                break;
            }
            request.page_token = page.next_page_token;
        }
        assert_eq!(paged, sequences);
        // A department filter and a time range apply to them as to the stored ones.
        let market = service
            .timeline(&whole_timeline(&key, vec![Department::Market as i32]))
            .unwrap();
        assert!(sequences_of(&market).contains(&2001));
        assert!(!sequences_of(&market).contains(&2002));
        let mut late = whole_timeline(&key, vec![]);
        late.from = Some(caselink_proto::Timestamp {
            seconds: (base + 20_000_000) / 1_000_000,
            nanos: 0,
        });
        assert_eq!(sequences_of(&service.timeline(&late).unwrap()), vec![2002]);
        // Once the fold applied them, the tail holds nothing and sled answers alone.
        tail.folded_through(2003);
        assert!(tail.is_empty());
        assert_eq!(
            service
                .timeline(&whole_timeline(&key, vec![]))
                .unwrap()
                .entries
                .len(),
            40
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timeline_shows_an_event_the_fold_cannot_apply_yet_and_once_after_it_did() {
        use crate::consumer::{run_fold, FoldOptions, Until};
        let nats = caselink_testkit::NatsServer::start().unwrap();
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        caselink_bus::streams::ensure_events_stream(&js, &Default::default())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tail = Arc::new(crate::tail::Tail::new(Default::default(), 0));
        let fold = FoldOptions {
            folder: crate::fold::Folder::plain(),
            tail: Some(Arc::clone(&tail)),
            ..FoldOptions::default()
        };
        let cancel = caselink_runtime::Cancel::new();
        let folding = tokio::spawn(run_fold(
            store.clone(),
            js.clone(),
            fold.clone(),
            Until::Cancelled,
            cancel.clone(),
        ));
        let following = tokio::spawn(crate::tail::follow(
            Arc::clone(&tail),
            js.clone(),
            caselink_bus::subjects::partition_filters(fold.partitions.clone()),
            cancel.clone(),
        ));
        let key = PersonKey([7; 32]);
        let publish = |id: u128, seconds: i64| {
            let js = js.clone();
            let subject =
                caselink_bus::subjects::event_subject(key.partition(), Department::Market);
            let event = bus_event(&key, id, seconds * 1_000_000, Department::Market);
            async move {
                js.publish(subject, event.into())
                    .await
                    .unwrap()
                    .await
                    .unwrap()
                    .sequence
            }
        };
        let mut service = service(store.clone());
        service.tail = Some(Arc::clone(&tail));
        let shown = |service: &LinkageService| {
            service
                .timeline(&whole_timeline(&key, vec![]))
                .map(|t| sequences_of(&t))
        };
        let first = publish(1, 1_700_000_000).await;
        crate::testing::until("the first applied", || {
            store.position().unwrap() >= first && tail.is_empty()
        })
        .await;
        assert_eq!(shown(&service).unwrap(), vec![first]);

        // The fold cannot apply the next one (sled's writer is held): the timeline shows it from the tail.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (locked, writer) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let store = store.clone();
            std::thread::spawn(move || {
                store.exclusive(|| -> Result<(), ()> {
                    locked.send(()).unwrap();
                    held.recv().unwrap();
                    Ok(())
                })
            })
        };
        writer.recv().unwrap();
        let second = publish(2, 1_600_000_000).await;
        crate::testing::until("the second held", || tail.len() == 1).await;
        assert_eq!(
            shown(&service).unwrap(),
            vec![second, first],
            "in occurred order"
        );
        assert!(
            store.position().unwrap() < second,
            "not applied: shown from the tail"
        );

        // Once applied, sled shows it, once, and the tail holds nothing.
        release.send(()).unwrap();
        blocker.join().unwrap().unwrap();
        crate::testing::until("the second applied", || {
            store.position().unwrap() >= second && tail.is_empty()
        })
        .await;
        assert_eq!(shown(&service).unwrap(), vec![second, first]);
        cancel.cancel();
        folding.await.unwrap().unwrap();
        following.await.unwrap();
    }

    #[test]
    fn a_person_the_fold_has_not_met_yet_is_found_by_their_unfolded_events() {
        let (_dir, store) = store_with_timeline(&PersonKey([7; 32]));
        let key = PersonKey([9; 32]);
        let mut service = service(store);
        assert!(matches!(
            service.timeline(&whole_timeline(&key, vec![])),
            Err(QueryError::NotFound)
        ));
        let event = (5, 1, 1_700_000_000_000_000, Department::Market);
        service.tail = Some(Arc::new(holding(&key, &[event])));
        let timeline = service.timeline(&whole_timeline(&key, vec![])).unwrap();
        assert_eq!(sequences_of(&timeline), vec![5]);
        assert_eq!(timeline.identity.unwrap().name_masked, "李*");
        assert_eq!(service.person_or_timeline(&key).unwrap().unwrap().events, 1);
    }

    #[test]
    fn an_event_applied_while_it_was_read_is_listed_once_as_stored() {
        let key = PersonKey([7; 32]);
        let (_dir, store) = store_with_timeline(&key);
        let stored = store
            .timeline_entries(&key, i64::MIN, i64::MAX, None)
            .unwrap();
        // The stored event 0xabc0_0004 (second 1) as the tail held it, and one more at that second after it.
        let second = 1_700_000_000_000_000 + 1_000_000;
        let tail = holding(
            &key,
            &[
                (1_004, 0xabc0_0004, second, Department::Market),
                (3_000, 0xabc1_0000, second, Department::Market),
            ],
        );
        let unfolded = tail.unfolded(&key, i64::MIN, i64::MAX, None);
        let merged = merge_unfolded(stored, unfolded);
        assert_eq!(merged.len(), 41);
        let kinds: Vec<(bool, u64)> = merged
            .iter()
            .map(|l| match l {
                Listed::Stored(e) => (true, e.sequence()),
                Listed::Unfolded(u) => (false, u.sequence),
            })
            .collect();
        assert_eq!(kinds.iter().filter(|(_, s)| *s == 1_004).count(), 1);
        assert!(kinds.contains(&(true, 1_004)), "shown as stored");
        let at = kinds.iter().position(|k| *k == (false, 3_000)).unwrap();
        assert_eq!(
            kinds[at - 1],
            (true, 1_005),
            "in place: after the stored events of its second"
        );
    }

    #[test]
    fn a_link_of_a_shared_phone_shows_both_persons_latest_records_on_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (PersonKey([0xa1; 32]), PersonKey([0xb2; 32]));
        use crate::testing::complaint;
        let shared = "ab".repeat(32);
        // A files 7 complaints with the shared phone, B 1 (and 2 with a phone of their own): one filing under
        // another ID number is not 二(三) (at least 2), so theirs is a plain sharing link.
        let mut events: Vec<CaseEvent> = (0..7).map(|n| complaint(n, &a, &shared)).collect();
        events.push(complaint(7, &b, &"cd".repeat(32)));
        events.push(complaint(8, &b, &"cd".repeat(32)));
        events.push(complaint(9, &b, &shared));
        let bytes: Vec<Vec<u8>> = events.iter().map(Message::encode_to_vec).collect();
        let messages = crate::testing::numbered(&bytes, 1);
        crate::fold::fold_batch(&store, &crate::testing::screening(), &messages).unwrap();
        let view = service(store).person_view(&a, None).unwrap();
        let link = view
            .links
            .iter()
            .find(|l| l.person_key == b.to_hex())
            .expect("A is linked to B");
        assert_eq!(link.reason, "shared_phone", "{link:?}");
        // A's latest five records with the phone and B's one, in event-id order.
        let mut expected: Vec<String> = [2u128, 3, 4, 5, 6, 9]
            .iter()
            .map(|n| uuid::Uuid::from_u128(0x5000 + n).to_string())
            .collect();
        expected.sort();
        assert_eq!(link.evidence_event_ids, expected);
    }

    /// The answer as the decoding store iterator gives it: the oracle for the encoded path.
    fn decoded_page(
        store: &Store,
        key: &PersonKey,
        request: &GetTimelineRequest,
    ) -> (Vec<TimelineEntry>, String) {
        let page = request.page_size as usize;
        let after =
            (!request.page_token.is_empty()).then(|| hex::decode(&request.page_token).unwrap());
        let mut out = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        for row in store.timeline(key, i64::MIN, i64::MAX, after.as_deref()) {
            let row = row.unwrap();
            if out.len() == page {
                return (out, last.map(hex::encode).unwrap_or_default());
            }
            last = Some(row.cursor().to_vec());
            if !request.departments.is_empty()
                && !request.departments.contains(&row.event.department)
            {
                continue;
            }
            out.push(TimelineEntry {
                kind: row
                    .event
                    .payload
                    .as_ref()
                    .map_or("unknown", caselink_domain::kind_name)
                    .to_string(),
                event: Some(row.event),
                stream_sequence: row.sequence,
            });
        }
        (out, String::new())
    }

    #[test]
    fn encoded_timeline_is_the_decoded_timeline_on_the_wire() {
        let key = PersonKey([7; 32]);
        let (_dir, store) = store_with_timeline(&key);
        let service = service(store.clone());
        for departments in [vec![], vec![Department::Hotline as i32], vec![1, 6]] {
            for page_size in [7u32, 40, 1000] {
                let mut request = GetTimelineRequest {
                    person: Some(PersonLookup {
                        lookup: Some(Lookup::PersonKey(key.to_hex())),
                    }),
                    page_size,
                    departments: departments.clone(),
                    ..GetTimelineRequest::default()
                };
                let mut pages = 0;
                loop {
                    let mut counted = Vec::new();
                    let encoded = service
                        .timeline_encoded(&request, None, |n| {
                            counted.push(n);
                            Ok(())
                        })
                        .unwrap();
                    // Told once, the page's entry count: what the audit record of the read says.
                    assert_eq!(counted, [encoded.entries.len()]);
                    let wire = encoded.encode_to_vec();
                    let timeline = Timeline::decode(wire.as_slice()).unwrap();
                    let (entries, next) = decoded_page(&store, &key, &request);
                    assert_eq!(timeline.entries, entries, "{departments:?} {page_size}");
                    assert_eq!(timeline.next_page_token, next);
                    assert_eq!(timeline.person_key, key.to_hex());
                    assert_eq!(
                        timeline.identity.as_ref().unwrap().name_masked,
                        "张*".to_string()
                    );
                    // Byte for byte what prost writes for the decoded answer.
                    assert_eq!(wire, timeline.encode_to_vec());
                    assert_eq!(service.timeline(&request).unwrap(), timeline);
                    pages += 1;
                    if next.is_empty() {
                        break;
                    }
                    request.page_token = next;
                }
                assert!(pages >= 40usize.div_ceil(page_size as usize).min(2));
            }
        }
    }

    /// Overwrites the store's event log with bytes that match no entry's checksum.
    fn spoil_event_log(dir: &std::path::Path) {
        let path = dir.join(crate::eventlog::FILE_NAME);
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        std::fs::write(&path, vec![0x5a; len]).unwrap();
    }

    fn whole_timeline(key: &PersonKey, departments: Vec<i32>) -> GetTimelineRequest {
        GetTimelineRequest {
            person: Some(PersonLookup {
                lookup: Some(Lookup::PersonKey(key.to_hex())),
            }),
            page_size: 1000,
            departments,
            ..GetTimelineRequest::default()
        }
    }

    #[test]
    fn without_a_department_filter_the_page_is_counted_from_the_index_before_any_event_is_read() {
        let key = PersonKey([7; 32]);
        let (dir, store) = store_with_timeline(&key);
        let service = service(store);
        spoil_event_log(dir.path());
        let mut counted = Vec::new();
        let read = service.timeline_encoded(&whole_timeline(&key, vec![]), None, |n| {
            counted.push(n);
            Ok(())
        });
        assert!(matches!(read, Err(QueryError::Store(_))), "{read:?}");
        assert_eq!(counted, [40], "counted before the bytes failed to read");
        // A page of 7 of the 40: told 7.
        let mut request = whole_timeline(&key, vec![]);
        request.page_size = 7;
        counted.clear();
        let _ = service.timeline_encoded(&request, None, |n| {
            counted.push(n);
            Ok(())
        });
        assert_eq!(counted, [7]);
        // With a filter the count needs each event's department: nothing is told when they cannot be read.
        counted.clear();
        let read = service.timeline_encoded(
            &whole_timeline(&key, vec![Department::Hotline as i32]),
            None,
            |n| {
                counted.push(n);
                Ok(())
            },
        );
        assert!(matches!(read, Err(QueryError::Store(_))), "{read:?}");
        assert!(counted.is_empty());
        // An error of the counter ends the read with it.
        let read = service.timeline_encoded(&whole_timeline(&key, vec![]), None, |_| {
            Err(QueryError::Sealed)
        });
        assert!(matches!(read, Err(QueryError::Sealed)), "{read:?}");
    }

    #[tokio::test]
    async fn a_read_recorded_before_its_answer_and_then_failing_is_recorded_again_as_failed() {
        let nats = caselink_testkit::NatsServer::start().unwrap();
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let key = PersonKey([7; 32]);
        let (dir, store) = store_with_timeline(&key);
        let audit = caselink_bus::audit::AuditLog::spawn(js.clone(), "linkage-test", 1);
        let service = LinkageService::new(
            store,
            Arc::new(KeySecret::from_bytes([9u8; 64]).unwrap()),
            audit,
            None,
            js.clone(),
        );
        let analyst = caselink_auth::Caller {
            claims: caselink_auth::Claims {
                sub: "analyst-1".into(),
                role: caselink_auth::Role::Analyst,
                department: None,
                regions: vec![],
                unit: None,
                iss: "test".into(),
                iat: 0,
                exp: u64::MAX,
                jti: "t".into(),
            },
            purpose: Some("joint meeting".into()),
        };
        let read = |departments: Vec<i32>| {
            let mut request = Request::new(whole_timeline(&key, departments));
            request.extensions_mut().insert(analyst.clone());
            service.get_timeline_encoded(request)
        };
        let shown = read(vec![Department::Hotline as i32])
            .await
            .unwrap()
            .into_inner();
        assert_eq!(shown.entries.len(), 20);
        let shown = read(vec![]).await.unwrap().into_inner();
        assert_eq!(shown.entries.len(), 40);
        let mut request = Request::new(GetPersonViewRequest {
            person: whole_timeline(&key, vec![]).person,
        });
        request.extensions_mut().insert(analyst.clone());
        let view = service.get_person_view(request).await.unwrap().into_inner();
        assert!(view.flags.is_empty());
        spoil_event_log(dir.path());
        let failed = read(vec![]).await.unwrap_err();
        assert_eq!(failed.code(), tonic::Code::Internal);
        // A builder that dies after telling its outcome: recorded again as failed too.
        let died = service
            .read_person(
                Some(analyst.clone()),
                "/caselink.v1.Linkage/GetTimeline",
                whole_timeline(&key, vec![]).person,
                |_, _, _, told| -> Result<(), QueryError> {
                    told.ok(3, false);
                    panic!("the builder dies after telling")
                },
            )
            .await
            .unwrap_err();
        assert_eq!(died.code(), tonic::Code::Internal);

        let records = caselink_bus::audit::read_all(&js).await.unwrap();
        let trail: Vec<(&str, u32, &str)> = records
            .iter()
            .map(|(_, r)| (r.outcome.as_str(), r.items, r.caller.as_str()))
            .collect();
        assert_eq!(
            trail,
            [
                ("OK", 20, "analyst-1"),
                ("OK", 40, "analyst-1"),
                // The person view counts the flags it shows.
                ("OK", 0, "analyst-1"),
                // Recorded as answered while the events were read; their bytes then failed their checksums.
                ("OK", 40, "analyst-1"),
                ("INTERNAL", 0, "analyst-1"),
                ("OK", 3, "analyst-1"),
                ("INTERNAL", 0, "analyst-1"),
            ]
        );
        assert!(records.iter().all(|(_, r)| r.person_keys == [key.to_hex()]));
    }

    #[test]
    fn event_head_matches_a_whole_decode() {
        let event = CaseEvent {
            department: Department::Police as i32,
            summary: "s".repeat(300),
            payload: Some(Payload::TicketCreated(TicketCreated::default())),
            ..CaseEvent::default()
        };
        let bytes = event.encode_to_vec();
        assert_eq!(
            crate::wire::event_head(&bytes).unwrap(),
            (Department::Police as i32, "ticket.created")
        );
        let none = CaseEvent::default().encode_to_vec();
        assert_eq!(crate::wire::event_head(&none).unwrap(), (0, "unknown"));
        assert!(crate::wire::event_head(&[0xff]).is_err());
        // Every field number after the event's fields, alone and then twice with another department and payload after
        // it (the last wins), against the whole decode: every kind of the catalogue is named, unknown fields skipped.
        let head = |bytes: &[u8]| {
            let whole = CaseEvent::decode(bytes).unwrap();
            let kind = whole
                .payload
                .as_ref()
                .map_or("unknown", caselink_domain::kind_name);
            (whole.department, kind)
        };
        let field = |tag: u32, out: &mut Vec<u8>| {
            prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, out);
            out.push(0);
        };
        let mut named = std::collections::HashSet::new();
        for tag in 9..1_000 {
            let mut bytes = event.encode_to_vec();
            field(tag, &mut bytes);
            if CaseEvent::decode(bytes.as_slice()).is_err() {
                continue;
            }
            let (department, kind) = crate::wire::event_head(&bytes).unwrap();
            assert_eq!((department, kind), head(&bytes), "field {tag}");
            named.insert(kind);
            CaseEvent {
                department: Department::Court as i32,
                ..CaseEvent::default()
            }
            .encode(&mut bytes)
            .unwrap();
            field(101, &mut bytes);
            assert_eq!(
                crate::wire::event_head(&bytes).unwrap(),
                head(&bytes),
                "field {tag}, then more"
            );
        }
        for kind in caselink_domain::all_kinds() {
            assert!(named.contains(kind), "{kind} is never named");
        }
    }
}
