//! `Linkage.GetSituation`: the joint meeting's figures for a region prefix and a period.
//!
//! Kept by the fold ([`BatchCounters`], table `c` of [`crate::store`]): per (region, China day, counter) a u64, where
//! the counter is an event kind (by `occurred_at`), a screening rule raised or withdrawn (by the day the event that did
//! it was recorded, under the person's listing region), or an assessment metric ([`Metric`], by `occurred_at`), stored
//! one record per region and day. The fold adds up the increments between checkpoints in memory and writes
//! each touched record once per checkpoint ([`crate::states`]): exactly once like every projection, and rebuilt with
//! them.
//!
//! Answered ([`situation`]) from one range scan per region of the prefix over the period's days, the flagged list, the
//! referral projection judged on the injected clock, and, for the rates without flagged persons' matters, the timelines
//! of the flagged persons with records in the regions: their events in the period are classified with the same
//! [`metrics`] and subtracted. No per-person counters are kept (a flag raised today covers matters counted long ago,
//! and every person could be flagged one day); the cost is the flagged persons' events in the period, read at query
//! time only. Reads are not one snapshot: a batch folded while answering may make the two sides differ by its events.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use caselink_domain::{department_of_kind, kind_name, timestamp_micros};
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{
    AssessmentRates, AssessmentTarget, CaseEvent, DepartmentTotal, GetSituationRequest, KindCount,
    MediationOutcome, OverdueReferral, Rate, ReconsiderationOutcome, ReferralStateCount, RuleCount,
    Satisfaction, Situation,
};
use caselink_workflow::calendar::HolidayCalendar;
use caselink_workflow::referral::ReferralState;
use time::OffsetDateTime;
use tonic::Status;

use crate::referral::projection::Referrals;
use crate::store::{counter_key, CounterDay, CounterKey, Store, StoreError};

/// Counter tags under `c` ‖ region ‖ day.
const KIND: u8 = b'k';
const RAISED: u8 = b'r';
const WITHDRAWN: u8 = b'w';
const METRIC: u8 = b'm';

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// China Standard Time, UTC+8 (no daylight saving).
const CHINA_OFFSET_MICROS: i64 = 8 * 3_600_000_000;

/// The China day (days since 1970-01-01 in UTC+8) of an instant.
pub(crate) fn china_day(micros: i64) -> i32 {
    let day = micros
        .saturating_add(CHINA_OFFSET_MICROS)
        .div_euclid(MICROS_PER_DAY);
    i32::try_from(day).unwrap_or(if day < 0 { i32::MIN } else { i32::MAX })
}

/// What the assessment rates count (domain.md section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    ComplaintsReceived,
    /// `complaint.mediation_closed` or `complaint.rejected`.
    ComplaintsClosed,
    MediationClosed,
    MediationSuccess,
    /// `ticket.closed` / `petition.closed` with a rating (satisfied, basically satisfied, unsatisfied).
    Rated,
    /// Rated satisfied or basically satisfied.
    Satisfied,
    ReconsiderationDecided,
    /// Decided revoked, confirmed unlawful or ordered to act.
    ReconsiderationReversed,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::ComplaintsReceived,
        Metric::ComplaintsClosed,
        Metric::MediationClosed,
        Metric::MediationSuccess,
        Metric::Rated,
        Metric::Satisfied,
        Metric::ReconsiderationDecided,
        Metric::ReconsiderationReversed,
    ];

    /// The stored counter name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::ComplaintsReceived => "complaints_received",
            Metric::ComplaintsClosed => "complaints_closed",
            Metric::MediationClosed => "mediation_closed",
            Metric::MediationSuccess => "mediation_success",
            Metric::Rated => "rated",
            Metric::Satisfied => "satisfied",
            Metric::ReconsiderationDecided => "reconsideration_decided",
            Metric::ReconsiderationReversed => "reconsideration_reversed",
        }
    }

    fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The metrics an event counts towards (none for most kinds).
pub fn metrics(payload: &Payload, mut count: impl FnMut(Metric)) {
    match payload {
        Payload::ComplaintReceived(_) => count(Metric::ComplaintsReceived),
        Payload::ComplaintRejected(_) => count(Metric::ComplaintsClosed),
        Payload::ComplaintMediationClosed(m) => {
            count(Metric::ComplaintsClosed);
            count(Metric::MediationClosed);
            if m.outcome == MediationOutcome::Success as i32 {
                count(Metric::MediationSuccess);
            }
        }
        Payload::TicketClosed(t) => satisfaction(t.satisfaction, count),
        Payload::PetitionClosed(p) => satisfaction(p.satisfaction, count),
        Payload::ReconsiderationDecided(d) => {
            count(Metric::ReconsiderationDecided);
            let reversed = [
                ReconsiderationOutcome::Revoked,
                ReconsiderationOutcome::ConfirmedUnlawful,
                ReconsiderationOutcome::OrderedToAct,
            ];
            if reversed.iter().any(|o| *o as i32 == d.outcome) {
                count(Metric::ReconsiderationReversed);
            }
        }
        _ => {}
    }
}

fn satisfaction(value: i32, mut count: impl FnMut(Metric)) {
    let rated = [
        Satisfaction::Satisfied,
        Satisfaction::BasicallySatisfied,
        Satisfaction::Unsatisfied,
    ];
    if rated.iter().any(|s| *s as i32 == value) {
        count(Metric::Rated);
        if value != Satisfaction::Unsatisfied as i32 {
            count(Metric::Satisfied);
        }
    }
}

/// Counter increments since the fold's last checkpoint, by region and day, each record written once.
#[derive(Debug, Default)]
pub(crate) struct BatchCounters {
    /// (record, tag, name) → increment: one hash update per counted event, the records built at the checkpoint.
    adds: foldhash::HashMap<(CounterKey, u8, Cow<'static, str>), u64>,
}

impl BatchCounters {
    fn add(&mut self, region: &str, day: i32, tag: u8, name: Cow<'static, str>) {
        *self
            .adds
            .entry((counter_key(region, day), tag, name))
            .or_default() += 1;
    }

    /// Counts a newly folded event: its kind and metrics, on the China day it occurred, in its region.
    pub(crate) fn event(&mut self, event: &CaseEvent) {
        let Some(payload) = &event.payload else {
            return;
        };
        let day = china_day(crate::fold::occurred_micros(event));
        let region = event.region_code.as_str();
        self.add(region, day, KIND, Cow::Borrowed(kind_name(payload)));
        metrics(payload, |m| {
            self.add(region, day, METRIC, Cow::Borrowed(m.name()));
        });
    }

    /// Counts a flag raised or withdrawn, under the person's listing region, on the China day the event that caused
    /// it was recorded.
    pub(crate) fn flag(&mut self, region: &str, recorded_micros: i64, rule: &str, raised: bool) {
        let tag = if raised { RAISED } else { WITHDRAWN };
        self.add(
            region,
            china_day(recorded_micros),
            tag,
            Cow::Owned(rule.to_owned()),
        );
    }

    /// The increments, by region and day.
    pub(crate) fn into_adds(self) -> HashMap<CounterKey, CounterDay> {
        let mut days: HashMap<CounterKey, CounterDay> = HashMap::new();
        for ((key, tag, name), n) in self.adds {
            days.entry(key).or_default().add(tag, &name, n);
        }
        days
    }
}

/// The Changzhou work plan's targets for the 12315 platform's "five rates" 五率 (seed 002: 电话首次接通率95%以上，
/// 有效投诉调解成功率80%以上，办结率100%，消费者满意率95%以上; domain.md section 6): name, at least (percent), whether
/// caselink measures it. First-call connection is a telephony figure no department records here. The plan sets no
/// target for the reconsideration reversal rate.
pub const TARGETS: &[(&str, u32, bool)] = &[
    ("first_call_connection", 95, false),
    ("mediation_success", 80, true),
    ("completion", 100, true),
    ("satisfaction", 95, true),
];

fn target_of(name: &str) -> u32 {
    TARGETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or(0, |(_, t, _)| *t)
}

/// Why a situation could not be computed; mapped to gRPC status in [`SituationError::into_status`] only.
#[derive(Debug, thiserror::Error)]
pub enum SituationError {
    #[error("{field}: {why}")]
    InvalidArgument { field: &'static str, why: String },
    #[error("region_prefix: outside the regions of your token")]
    OutOfScope,
    #[error("the figures are not served here")]
    Unavailable,
    #[error("referral deadlines: {0}")]
    Calendar(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SituationError {
    /// The one mapping of situation errors to gRPC status.
    pub fn into_status(self) -> Status {
        match self {
            SituationError::InvalidArgument { .. } => Status::invalid_argument(self.to_string()),
            SituationError::OutOfScope => Status::permission_denied(self.to_string()),
            SituationError::Unavailable => Status::unavailable(self.to_string()),
            SituationError::Calendar(e) => {
                tracing::error!(error = %e, "holiday calendar failure computing a situation");
                Status::failed_precondition(format!("referral deadlines: {e}"))
            }
            SituationError::Store(e) => {
                tracing::error!(error = %e, "store failure computing a situation");
                Status::internal("storage failure")
            }
        }
    }
}

/// A period bound: midnight China time, as a China day.
fn day_bound(
    field: &'static str,
    ts: Option<&caselink_proto::Timestamp>,
) -> Result<Option<(i64, i32)>, SituationError> {
    let Some(ts) = ts else { return Ok(None) };
    let micros = timestamp_micros(ts);
    if ts.nanos != 0
        || micros
            .saturating_add(CHINA_OFFSET_MICROS)
            .rem_euclid(MICROS_PER_DAY)
            != 0
    {
        return Err(SituationError::InvalidArgument {
            field,
            why: "must be midnight China time (UTC+8), e.g. 2025-01-01T00:00:00+08:00: the figures are kept per day"
                .into(),
        });
    }
    Ok(Some((micros, china_day(micros))))
}

/// The metric sums of a set of counters.
type Sums = HashMap<Metric, u64>;

fn rates(sums: &Sums) -> AssessmentRates {
    let get = |m| sums.get(&m).copied().unwrap_or(0);
    let rate = |name: &str, numerator, denominator| Rate {
        name: name.to_owned(),
        numerator,
        denominator,
        target_percent: target_of(name),
    };
    AssessmentRates {
        mediation_success: Some(rate(
            "mediation_success",
            get(Metric::MediationSuccess),
            get(Metric::MediationClosed),
        )),
        completion: Some(rate(
            "completion",
            get(Metric::ComplaintsClosed),
            get(Metric::ComplaintsReceived),
        )),
        satisfaction: Some(rate(
            "satisfaction",
            get(Metric::Satisfied),
            get(Metric::Rated),
        )),
        reconsideration_reversal: Some(rate(
            "reconsideration_reversal",
            get(Metric::ReconsiderationReversed),
            get(Metric::ReconsiderationDecided),
        )),
    }
}

/// GetSituation, as a plain function over the case-event projections (`store`), the referral projection and the
/// holiday calendar, with referral deadlines judged at `now` (the referral workflow's injected clock). `regions` limits
/// a determiner to prefixes inside its token's regions.
pub fn situation(
    store: &Store,
    referrals: &Referrals,
    determinations: &crate::determination::projection::Determinations,
    calendar: &HolidayCalendar,
    now: OffsetDateTime,
    request: &GetSituationRequest,
    regions: Option<&[String]>,
) -> Result<Situation, SituationError> {
    let prefix = request.region_prefix.as_str();
    crate::alerts::check_region_prefix(prefix).map_err(|why| SituationError::InvalidArgument {
        field: "region_prefix",
        why,
    })?;
    if let Some(regions) = regions {
        if !regions.iter().any(|r| prefix.starts_with(r.as_str())) {
            return Err(SituationError::OutOfScope);
        }
    }
    let from = day_bound("from", request.from.as_ref())?;
    let to = day_bound("to", request.to.as_ref())?;
    if let (Some((f, _)), Some((t, _))) = (from, to) {
        if f >= t {
            return Err(SituationError::InvalidArgument {
                field: "to",
                why: "must be after from".into(),
            });
        }
    }
    let (from_us, from_day) = from.unwrap_or((i64::MIN, i32::MIN));
    let (to_us, to_day) = to.unwrap_or((i64::MAX, i32::MAX));

    // Totals, flag changes and metrics from the counters.
    let mut kinds: BTreeMap<(i32, String), u64> = BTreeMap::new();
    let mut raised: BTreeMap<String, u64> = BTreeMap::new();
    let mut withdrawn: BTreeMap<String, u64> = BTreeMap::new();
    let mut all: Sums = HashMap::new();
    for row in store.counters(prefix, from_day, to_day)? {
        match row.tag {
            KIND => {
                let department = department_of_kind(&row.name).map_or(0, |d| d as i32);
                *kinds.entry((department, row.name)).or_insert(0) += row.value;
            }
            RAISED => *raised.entry(row.name).or_insert(0) += row.value,
            WITHDRAWN => *withdrawn.entry(row.name).or_insert(0) += row.value,
            METRIC => {
                if let Some(m) = Metric::parse(&row.name) {
                    *all.entry(m).or_insert(0) += row.value;
                }
            }
            _ => {}
        }
    }
    let mut departments: BTreeMap<i32, u64> = BTreeMap::new();
    for ((department, _), n) in &kinds {
        *departments.entry(*department).or_insert(0) += n;
    }

    // Flagged persons now, listed in the regions.
    let mut flagged_persons = 0;
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    for item in store.flagged(prefix, None) {
        let (_, _, entry) = item?;
        if entry.rules.is_empty() {
            continue;
        }
        flagged_persons += 1;
        for rule in entry.rules {
            *by_rule.entry(rule).or_insert(0) += 1;
        }
    }

    // The flagged persons' matters in the regions and period: listed anywhere (a person listed under another region
    // may have records here), with records in the regions.
    let mut flagged = Vec::new();
    for item in store.flagged("", None) {
        let (_, key, entry) = item?;
        if !entry.rules.is_empty() {
            flagged.push(key);
        }
    }
    let (excluding_flagged, excluded_persons) =
        excluding(store, &all, flagged, prefix, from_us..to_us)?;

    // The abnormal list: persons on it now (listed by any bureau: their matters leave the rates), those listed by the
    // regions' bureaus, and the moves of the period.
    let mut listed = Vec::new();
    let mut listed_persons = 0;
    for item in determinations.listed("", None) {
        let (region, person, stored) = item?;
        if !stored.replay().is_some_and(|d| d.is_listed(now)) {
            continue;
        }
        if region.starts_with(prefix) {
            listed_persons += 1;
        }
        if let Ok(key) = caselink_domain::PersonKey::from_hex(&person) {
            listed.push(key);
        }
    }
    let (excluding_confirmed, excluded_confirmed_persons) =
        excluding(store, &all, listed, prefix, from_us..to_us)?;
    let mut moves = [0u64; 3];
    for item in determinations.scan() {
        let (_, stored) = item?;
        for event in &stored.events {
            let at = event
                .occurred_at
                .as_ref()
                .map_or(i64::MIN, caselink_domain::timestamp_micros);
            if !event.region_code.starts_with(prefix) || !(from_us..to_us).contains(&at) {
                continue;
            }
            use caselink_proto::v1::determination_event::Action;
            match event.action {
                Some(Action::Confirmed(_)) => moves[0] += 1,
                Some(Action::Cleared(_)) => moves[1] += 1,
                Some(Action::Revoked(_)) => moves[2] += 1,
                None => {}
            }
        }
    }

    // Referrals of the regions, by state now, and the overdue ones.
    let mut referral_count = 0;
    let mut states: BTreeMap<i32, u64> = BTreeMap::new();
    let mut overdue = Vec::new();
    for item in referrals.scan(None) {
        let (_, stored) = item?;
        let Some(referral) = stored.replay_first(usize::MAX) else {
            continue;
        };
        if !referral.region_code.starts_with(prefix) {
            continue;
        }
        referral_count += 1;
        *states.entry(referral.state.to_proto() as i32).or_insert(0) += 1;
        let due = referral
            .due(calendar)
            .map_err(|e| SituationError::Calendar(e.to_string()))?;
        if let Some(deadline) = due.filter(|d| d.has_passed(now)) {
            overdue.push(OverdueReferral {
                referral_id: referral.id.clone(),
                state: referral.state.to_proto() as i32,
                region_code: referral.region_code.clone(),
                agency: referral.agency.clone(),
                police_unit: referral.police_unit.clone().unwrap_or_default(),
                due_at: Some(timestamp_of(deadline.due_at)),
                due_basis: deadline.clock.basis.to_owned(),
            });
        }
    }
    overdue.sort_by(|a, b| {
        let at = |o: &OverdueReferral| o.due_at.map(|t| (t.seconds, t.nanos));
        at(a)
            .cmp(&at(b))
            .then_with(|| a.referral_id.cmp(&b.referral_id))
    });
    // Every state named, so a report shows the zeros too.
    let referral_states = ReferralState::ALL
        .into_iter()
        .map(|s| {
            let state = s.to_proto() as i32;
            ReferralStateCount {
                state,
                count: states.get(&state).copied().unwrap_or(0),
            }
        })
        .collect();

    let rule_counts = |m: BTreeMap<String, u64>| {
        m.into_iter()
            .map(|(rule, count)| RuleCount { rule, count })
            .collect::<Vec<_>>()
    };
    Ok(Situation {
        region_prefix: prefix.to_owned(),
        from: request.from,
        to: request.to,
        as_of: Some(timestamp_of(now)),
        events: kinds.values().sum(),
        departments: departments
            .into_iter()
            .map(|(department, count)| DepartmentTotal { department, count })
            .collect(),
        kinds: kinds
            .into_iter()
            .map(|((department, kind), count)| KindCount {
                department,
                kind,
                count,
            })
            .collect(),
        flags_raised: rule_counts(raised),
        flags_withdrawn: rule_counts(withdrawn),
        flagged_persons,
        flagged_by_rule: rule_counts(by_rule),
        referrals: referral_count,
        referral_states,
        overdue_referrals: overdue,
        rates_all: Some(rates(&all)),
        rates_excluding_flagged: Some(rates(&excluding_flagged)),
        excluded_persons,
        listed_persons,
        confirmed_in_period: moves[0],
        cleared_in_period: moves[1],
        revoked_in_period: moves[2],
        rates_excluding_confirmed: Some(rates(&excluding_confirmed)),
        excluded_confirmed_persons,
        targets: TARGETS
            .iter()
            .map(|(name, at_least, measured)| AssessmentTarget {
                name: (*name).to_owned(),
                at_least_percent: *at_least,
                measured: *measured,
            })
            .collect(),
    })
}

/// The metric sums `all` without the matters of `persons` in the regions of `prefix` and the period (µs), and how many
/// of them had such matters.
fn excluding(
    store: &Store,
    all: &Sums,
    persons: Vec<caselink_domain::PersonKey>,
    prefix: &str,
    period: std::ops::Range<i64>,
) -> Result<(Sums, u64), SituationError> {
    let mut theirs: Sums = HashMap::new();
    let mut excluded = 0;
    for key in persons {
        let Some(record) = store.person(&key)? else {
            continue;
        };
        let may_have = record.regions.len() >= crate::store::MAX_PERSON_REGIONS
            || record.regions.iter().any(|r| r.starts_with(prefix));
        if !may_have {
            continue;
        }
        let mut any = false;
        for row in store.timeline(&key, period.start, period.end, None) {
            let event = row?.event;
            if !event.region_code.starts_with(prefix) {
                continue;
            }
            any = true;
            if let Some(payload) = &event.payload {
                metrics(payload, |m| *theirs.entry(m).or_insert(0) += 1);
            }
        }
        if any {
            excluded += 1;
        }
    }
    let rest = Metric::ALL
        .into_iter()
        .map(|m| {
            let total = all.get(&m).copied().unwrap_or(0);
            (
                m,
                total.saturating_sub(theirs.get(&m).copied().unwrap_or(0)),
            )
        })
        .collect();
    Ok((rest, excluded))
}

fn timestamp_of(at: OffsetDateTime) -> caselink_proto::Timestamp {
    caselink_proto::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use caselink_proto::v1::{
        ComplaintMediationClosed, ComplaintReceived, Department, DisciplineReportNotified, Person,
        PetitionClosed, ReconsiderationDecided, TicketClosed,
    };
    use prost::Message;

    use super::*;
    use crate::determination::projection::Determinations;
    use crate::fold::{fold_batch, Folder};

    /// 2025-01-01T00:00:00+08:00, in seconds.
    const T2025: i64 = 1_735_660_800;
    const DAY: i64 = 86_400;

    fn event(n: u32, person: u8, region: &str, seconds: i64, payload: Payload) -> CaseEvent {
        let department = match &payload {
            Payload::TicketClosed(_) => Department::Hotline,
            Payload::PetitionClosed(_) => Department::Petition,
            Payload::ReconsiderationDecided(_) => Department::Justice,
            _ => Department::Market,
        };
        CaseEvent {
            event_id: uuid::Uuid::from_u128(u128::from(n)).to_string(),
            source_id: format!("S-{n}"),
            department: department as i32,
            occurred_at: Some(caselink_proto::Timestamp { seconds, nanos: 0 }),
            recorded_at: Some(caselink_proto::Timestamp {
                seconds: T2025 + 400 * DAY,
                nanos: 0,
            }),
            region_code: region.into(),
            subject: Some(Person {
                person_key: hex::encode([person; 32]),
                ..Person::default()
            }),
            payload: Some(payload),
            ..CaseEvent::default()
        }
    }

    fn fold(store: &Store, events: &[CaseEvent]) {
        let encoded: Vec<Vec<u8>> = events.iter().map(Message::encode_to_vec).collect();
        let position = store.position().unwrap();
        let messages: Vec<(u64, &[u8])> = encoded
            .iter()
            .enumerate()
            .map(|(i, e)| (position + 1 + i as u64, e.as_slice()))
            .collect();
        let folder = Folder {
            screener: Some(Arc::new(caselink_screening::Screener::new(
                caselink_screening::RuleSet::default(),
            ))),
            alerts: false,
        };
        fold_batch(store, &folder, &messages).unwrap();
    }

    fn ask(store: &Store, prefix: &str, from: Option<i64>, to: Option<i64>) -> Situation {
        let referrals = Referrals::open(store).unwrap();
        let determinations = Determinations::open(store).unwrap();
        let request = GetSituationRequest {
            region_prefix: prefix.into(),
            from: from.map(|seconds| caselink_proto::Timestamp { seconds, nanos: 0 }),
            to: to.map(|seconds| caselink_proto::Timestamp { seconds, nanos: 0 }),
        };
        situation(
            store,
            &referrals,
            &determinations,
            &HolidayCalendar::china(),
            OffsetDateTime::UNIX_EPOCH,
            &request,
            None,
        )
        .unwrap()
    }

    fn pair(rate: &Option<Rate>) -> (u64, u64) {
        let r = rate.as_ref().unwrap();
        (r.numerator, r.denominator)
    }

    fn ticket(satisfaction: Satisfaction) -> Payload {
        Payload::TicketClosed(TicketClosed {
            satisfaction: satisfaction as i32,
        })
    }

    fn decided(outcome: ReconsiderationOutcome) -> Payload {
        Payload::ReconsiderationDecided(ReconsiderationDecided {
            outcome: outcome as i32,
            ..ReconsiderationDecided::default()
        })
    }

    fn untrue_report() -> Payload {
        Payload::DisciplineReportNotified(DisciplineReportNotified {
            found_untrue: true,
            ..DisciplineReportNotified::default()
        })
    }

    #[test]
    fn china_days_start_at_midnight_utc_plus_8() {
        let midnight = T2025 * 1_000_000;
        assert_eq!(
            china_day(midnight),
            china_day(midnight + MICROS_PER_DAY - 1)
        );
        assert_eq!(
            china_day(midnight) + 1,
            china_day(midnight + MICROS_PER_DAY)
        );
        assert_eq!(china_day(midnight - 1) + 1, china_day(midnight));
        assert_eq!(china_day(0), 0);
        assert_eq!(china_day(-CHINA_OFFSET_MICROS - 1), -1);
        assert!(china_day(i64::MIN) < china_day(i64::MAX));
    }

    #[test]
    fn metrics_follow_the_assessment_definitions() {
        let of = |p: Payload| {
            let mut out = Vec::new();
            metrics(&p, |m| out.push(m));
            out
        };
        use Metric as M;
        assert_eq!(
            of(Payload::ComplaintReceived(ComplaintReceived::default())),
            [M::ComplaintsReceived]
        );
        assert_eq!(
            of(Payload::ComplaintMediationClosed(
                ComplaintMediationClosed {
                    outcome: MediationOutcome::Terminated as i32,
                    ..Default::default()
                }
            )),
            [M::ComplaintsClosed, M::MediationClosed]
        );
        assert_eq!(
            of(ticket(Satisfaction::BasicallySatisfied)),
            [M::Rated, M::Satisfied]
        );
        assert_eq!(of(ticket(Satisfaction::Unsatisfied)), [M::Rated]);
        assert!(of(ticket(Satisfaction::NotRated)).is_empty());
        assert!(of(ticket(Satisfaction::Unspecified)).is_empty());
        assert_eq!(
            of(Payload::PetitionClosed(PetitionClosed {
                satisfaction: Satisfaction::Satisfied as i32,
                ..Default::default()
            })),
            [M::Rated, M::Satisfied]
        );
        assert_eq!(
            of(decided(ReconsiderationOutcome::Upheld)),
            [M::ReconsiderationDecided]
        );
        for reversed in [
            ReconsiderationOutcome::Revoked,
            ReconsiderationOutcome::ConfirmedUnlawful,
            ReconsiderationOutcome::OrderedToAct,
        ] {
            assert_eq!(
                of(decided(reversed)),
                [M::ReconsiderationDecided, M::ReconsiderationReversed]
            );
        }
        assert!(of(untrue_report()).is_empty());
    }

    #[test]
    fn the_abnormal_list_counts_its_changes_and_its_persons_matters_leave_the_rates() {
        use caselink_proto::v1::determination_event::Action;
        use caselink_proto::v1::{
            DeterminationCleared, DeterminationConfirmed, DeterminationEvent, DeterminationRevoked,
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (listed, revoked, ordinary) = (3u8, 4u8, 5u8);
        fold(
            &store,
            &[
                event(
                    1,
                    listed,
                    "430602",
                    T2025,
                    ticket(Satisfaction::Unsatisfied),
                ),
                event(
                    2,
                    revoked,
                    "430602",
                    T2025,
                    ticket(Satisfaction::Unsatisfied),
                ),
                event(
                    3,
                    ordinary,
                    "430602",
                    T2025,
                    ticket(Satisfaction::Satisfied),
                ),
            ],
        );
        let at = |seconds| Some(caselink_proto::Timestamp { seconds, nanos: 0 });
        let move_of = |person: u8, version: u64, region: &str, day: i64, action: Action| {
            DeterminationEvent {
                person_key: hex::encode([person; 32]),
                version,
                occurred_at: at(T2025 + day * DAY),
                region_code: region.into(),
                action: Some(action),
                ..DeterminationEvent::default()
            }
            .encode_to_vec()
        };
        let confirmed = || {
            Action::Confirmed(DeterminationConfirmed {
                expires_at: at(T2025 + 365 * DAY),
                ..DeterminationConfirmed::default()
            })
        };
        let moves = [
            move_of(listed, 1, "430602", 1, confirmed()),
            move_of(revoked, 1, "430602", 1, confirmed()),
            move_of(
                revoked,
                2,
                "430602",
                2,
                Action::Revoked(DeterminationRevoked::default()),
            ),
            move_of(
                ordinary,
                1,
                "110105",
                1,
                Action::Cleared(DeterminationCleared::default()),
            ),
        ];
        let messages: Vec<(u64, &[u8])> = moves
            .iter()
            .enumerate()
            .map(|(i, m)| (i as u64 + 1, m.as_slice()))
            .collect();
        Determinations::open(&store)
            .unwrap()
            .fold(&messages)
            .unwrap();

        let s = ask(&store, "43", Some(T2025), Some(T2025 + 7 * DAY));
        assert_eq!(s.listed_persons, 1);
        assert_eq!(
            (
                s.confirmed_in_period,
                s.cleared_in_period,
                s.revoked_in_period
            ),
            (2, 0, 1)
        );
        assert_eq!(pair(&s.rates_all.as_ref().unwrap().satisfaction), (1, 3));
        // Only the listed person's matters leave; the revoked one's stay.
        let without = s.rates_excluding_confirmed.as_ref().unwrap();
        assert_eq!(pair(&without.satisfaction), (1, 2));
        assert_eq!(s.excluded_confirmed_persons, 1);
        // The period before the moves: none of them; the list is as it stands now.
        let before = ask(&store, "43", Some(T2025 - DAY), Some(T2025 + DAY));
        assert_eq!(before.confirmed_in_period, 0);
        assert_eq!(before.listed_persons, 1);
        // Another region's bureau: its clearing only.
        let beijing = ask(&store, "11", None, None);
        assert_eq!((beijing.listed_persons, beijing.cleared_in_period), (0, 1));
    }

    #[test]
    fn rates_with_and_without_the_flagged_persons_matters_over_days_and_regions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ordinary = 1u8;
        let claimant = 2u8;
        let events = vec![
            event(
                1,
                ordinary,
                "430602",
                T2025,
                ticket(Satisfaction::Satisfied),
            ),
            event(
                2,
                ordinary,
                "430602",
                T2025 + DAY,
                ticket(Satisfaction::Unsatisfied),
            ),
            event(
                3,
                ordinary,
                "430602",
                T2025 + DAY,
                ticket(Satisfaction::NotRated),
            ),
            event(
                4,
                ordinary,
                "430602",
                T2025 + 2 * DAY,
                decided(ReconsiderationOutcome::Revoked),
            ),
            // The claimant: unsatisfied twice, two upheld reconsiderations, two untrue reports (R5) — listed under
            // 430603, so the claimant's matters in 430602 must still be found.
            event(
                5,
                claimant,
                "430602",
                T2025,
                ticket(Satisfaction::Unsatisfied),
            ),
            event(
                6,
                claimant,
                "430602",
                T2025 + DAY,
                ticket(Satisfaction::Unsatisfied),
            ),
            event(
                7,
                claimant,
                "430602",
                T2025 + DAY,
                decided(ReconsiderationOutcome::Upheld),
            ),
            event(
                8,
                claimant,
                "430602",
                T2025 + 2 * DAY,
                decided(ReconsiderationOutcome::Upheld),
            ),
            event(9, claimant, "430603", T2025 + 3 * DAY, untrue_report()),
            event(10, claimant, "430603", T2025 + 3 * DAY, untrue_report()),
            // Outside the period (the day before) and outside the prefix.
            event(
                11,
                ordinary,
                "430602",
                T2025 - 1,
                ticket(Satisfaction::Satisfied),
            ),
            event(
                12,
                ordinary,
                "110105",
                T2025,
                ticket(Satisfaction::Satisfied),
            ),
        ];
        // Two batches, so counters are read back and added to.
        fold(&store, &events[..5]);
        fold(&store, &events[5..]);

        let s = ask(&store, "4306", Some(T2025), Some(T2025 + 7 * DAY));
        assert_eq!(s.events, 10);
        let kind = |name: &str| {
            s.kinds
                .iter()
                .find(|k| k.kind == name)
                .map_or(0, |k| k.count)
        };
        assert_eq!(kind("ticket.closed"), 5);
        assert_eq!(kind("reconsideration.decided"), 3);
        assert_eq!(kind("discipline.report_notified"), 2);
        assert_eq!(s.departments.len(), 3, "{:?}", s.departments);
        assert_eq!(s.flagged_persons, 1);
        assert_eq!(
            s.flags_raised,
            [],
            "raised on a recorded day outside the period"
        );
        let all = s.rates_all.as_ref().unwrap();
        assert_eq!(pair(&all.satisfaction), (1, 4));
        assert_eq!(all.satisfaction.as_ref().unwrap().target_percent, 95);
        assert_eq!(pair(&all.reconsideration_reversal), (1, 3));
        assert_eq!(
            all.reconsideration_reversal
                .as_ref()
                .unwrap()
                .target_percent,
            0
        );
        let without = s.rates_excluding_flagged.as_ref().unwrap();
        assert_eq!(pair(&without.satisfaction), (1, 2));
        assert_eq!(pair(&without.reconsideration_reversal), (1, 1));
        assert_eq!(s.excluded_persons, 1);

        // One day only: the first.
        let first = ask(&store, "430602", Some(T2025), Some(T2025 + DAY));
        assert_eq!(first.events, 2);
        assert_eq!(
            pair(&first.rates_all.as_ref().unwrap().satisfaction),
            (1, 2)
        );
        assert_eq!(
            pair(&first.rates_excluding_flagged.as_ref().unwrap().satisfaction),
            (1, 1)
        );
        // The claimant is listed under 430603: the flagged list of 430602 is empty, the exclusion still applies.
        assert_eq!(first.flagged_persons, 0);
        assert_eq!(first.excluded_persons, 1);
        // Unbounded: everything of the prefix, and the flag raised on its recorded day.
        let ever = ask(&store, "43", None, None);
        assert_eq!(ever.events, 11);
        assert_eq!(
            ever.flags_raised,
            [RuleCount {
                rule: "R5".into(),
                count: 1
            }]
        );
        let recorded_day = (T2025 + 400 * DAY) * 1_000_000;
        let that_day = ask(
            &store,
            "4306",
            Some(T2025 + 400 * DAY),
            Some(T2025 + 401 * DAY),
        );
        assert_eq!(china_day(recorded_day), china_day(T2025 * 1_000_000) + 400);
        assert_eq!(that_day.flags_raised.len(), 1);
        assert_eq!(that_day.events, 0);
        // Every region.
        assert_eq!(ask(&store, "", None, None).events, 12);
        assert_eq!(ask(&store, "11", None, None).events, 1);
        assert_eq!(ask(&store, "12", None, None).events, 0);
    }

    #[test]
    fn a_redelivered_batch_is_not_counted_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let events = vec![
            event(1, 1, "430602", T2025, ticket(Satisfaction::Satisfied)),
            event(2, 1, "430602", T2025, ticket(Satisfaction::Satisfied)),
        ];
        fold(&store, &events);
        // The same events again at new sequences (a replay past the bus's dedup window).
        fold(&store, &events);
        let s = ask(&store, "43", None, None);
        assert_eq!(s.events, 2);
        assert_eq!(pair(&s.rates_all.as_ref().unwrap().satisfaction), (2, 2));
    }

    #[test]
    fn bad_requests_name_the_field_and_a_determiner_stays_in_its_regions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let referrals = Referrals::open(&store).unwrap();
        let determinations = Determinations::open(&store).unwrap();
        let run = |prefix: &str, from: Option<i64>, to: Option<i64>, regions: Option<&[String]>| {
            let request = GetSituationRequest {
                region_prefix: prefix.into(),
                from: from.map(|seconds| caselink_proto::Timestamp { seconds, nanos: 0 }),
                to: to.map(|seconds| caselink_proto::Timestamp { seconds, nanos: 0 }),
            };
            situation(
                &store,
                &referrals,
                &determinations,
                &HolidayCalendar::china(),
                OffsetDateTime::UNIX_EPOCH,
                &request,
                regions,
            )
        };
        let field = |r: Result<Situation, SituationError>| match r {
            Err(SituationError::InvalidArgument { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(run("4306x", None, None, None)), "region_prefix");
        assert_eq!(field(run("4306021", None, None, None)), "region_prefix");
        assert_eq!(field(run("43", Some(T2025 + 1), None, None)), "from");
        assert_eq!(field(run("43", None, Some(T2025 + 3600), None)), "to");
        assert_eq!(field(run("43", Some(T2025), Some(T2025), None)), "to");
        let mine = ["4306".to_string()];
        assert!(run("430602", None, None, Some(&mine)).is_ok());
        assert!(matches!(
            run("43", None, None, Some(&mine)),
            Err(SituationError::OutOfScope)
        ));
        assert!(matches!(
            run("", None, None, Some(&mine)),
            Err(SituationError::OutOfScope)
        ));
    }
}
