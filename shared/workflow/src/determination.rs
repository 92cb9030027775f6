//! Determination 属地认定 and the abnormal list 异常名录 (spec domain.md section 6): one aggregate per person.
//!
//! Screening raises flags; only a determination puts someone on the list. The local bureau confirms (rules with their
//! clauses, a written basis, evidence), clears (the suspicion is not upheld, for the flags as they stood), or leaves the
//! flags pending; a confirmed entry is revoked, or expires at the end of its period. Every step is a
//! `caselink.v1.DeterminationEvent` with who decided, where and why; [`decide`] judges a move and returns its event,
//! [`evolve`] folds an event into the state. What the states allow:
//!
//! | now \ move | Confirm | Clear | Revoke |
//! | --- | --- | --- | --- |
//! | never determined | yes | yes | no |
//! | confirmed (listed) | no: revoke first | no: revoke | yes |
//! | confirmed, expired | yes (a new period) | yes | no |
//! | cleared | yes | yes (flags grown since) | no |
//! | revoked | yes | yes | no |
//!
//! The service resolves the rules to flags (clause, revision) from screening and checks that there is something to
//! clear; this module knows neither screening nor I/O, and `now` is always an argument.

use caselink_proto::v1::{
    determination_event::Action, AbnormalListFigures, DeterminationCleared, DeterminationConfirmed,
    DeterminationEvent, DeterminationRevoked, DeterminationState, DeterminationView,
    DeterminedFlag, FlagStatus,
};
use time::{Duration, OffsetDateTime};

use crate::referral::{from_timestamp, timestamp};

/// Longest basis or reason (characters).
pub const MAX_TEXT_CHARS: usize = 4000;
/// Most evidence events one determination names.
pub const MAX_EVIDENCE: usize = 1000;
/// Longest period a confirmation may list someone (days): five years.
pub const MAX_VALID_DAYS: u32 = 5 * 366;

/// Who decides: the token's subject and department, and the region (6 digits) of the bureau deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decider {
    pub subject: String,
    pub department: String,
    pub region_code: String,
}

/// A move, with what the service resolved for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Put the person on the list for `valid_days`.
    Confirm {
        flags: Vec<DeterminedFlag>,
        basis: String,
        evidence_event_ids: Vec<String>,
        valid_days: u32,
        figures: AbnormalListFigures,
    },
    /// The suspicion of these flags is not upheld.
    Clear {
        flags: Vec<DeterminedFlag>,
        reason: String,
    },
    /// Take a listed entry off the list.
    Revoke { reason: String },
}

impl Command {
    /// The move's name, as errors and logs say it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Confirm { .. } => "confirm",
            Command::Clear { .. } => "clear",
            Command::Revoke { .. } => "revoke",
        }
    }
}

/// Why a move is refused. [`MoveError::code`] is the gRPC status code it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    /// `ABORTED`: the caller's view is stale (someone else decided first); reread and retry.
    #[error(
        "stale expected_version {expected}: the person's determination is at version {actual}"
    )]
    StaleVersion { expected: u64, actual: u64 },
    /// `FAILED_PRECONDITION`: the current state does not allow the move.
    #[error("{action} is not allowed: {why}")]
    NotAllowed { action: &'static str, why: String },
    /// `INVALID_ARGUMENT`: `field` is the path in the request.
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
}

impl MoveError {
    /// The gRPC status code (the service's one mapping calls this).
    pub fn code(&self) -> tonic::Code {
        match self {
            MoveError::StaleVersion { .. } => tonic::Code::Aborted,
            MoveError::NotAllowed { .. } => tonic::Code::FailedPrecondition,
            MoveError::Invalid { .. } => tonic::Code::InvalidArgument,
        }
    }

    fn invalid(field: &str, why: impl Into<String>) -> MoveError {
        MoveError::Invalid {
            field: field.to_owned(),
            why: why.into(),
        }
    }
}

/// A person's determination as folded from its events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Determination {
    pub person_key: String,
    pub version: u64,
    /// Every event, oldest first.
    pub history: Vec<DeterminationEvent>,
}

impl Determination {
    /// The last event.
    fn last(&self) -> Option<&DeterminationEvent> {
        self.history.last()
    }

    /// The last confirmation in the history (whatever came after it), with its event: if the person was ever
    /// confirmed, with when.
    pub fn last_confirmation(&self) -> Option<(&DeterminationEvent, &DeterminationConfirmed)> {
        self.history.iter().rev().find_map(|e| match &e.action {
            Some(Action::Confirmed(c)) => Some((e, c)),
            _ => None,
        })
    }

    /// Where it stands at `now` (a confirmation past its `expires_at` has expired).
    pub fn state(&self, now: OffsetDateTime) -> DeterminationState {
        match self.last().and_then(|e| e.action.as_ref()) {
            None => DeterminationState::Unspecified,
            Some(Action::Confirmed(_)) => {
                if self.listed_until().is_none_or(|at| at <= now) {
                    DeterminationState::Expired
                } else {
                    DeterminationState::Confirmed
                }
            }
            Some(Action::Cleared(_)) => DeterminationState::Cleared,
            Some(Action::Revoked(_)) => DeterminationState::Revoked,
        }
    }

    /// Whether the person is on the abnormal list at `now`.
    pub fn is_listed(&self, now: OffsetDateTime) -> bool {
        self.state(now) == DeterminationState::Confirmed
    }

    /// The listed entry's confirmation, when the person is on the list at `now`.
    pub fn listing(&self, now: OffsetDateTime) -> Option<&DeterminationConfirmed> {
        if !self.is_listed(now) {
            return None;
        }
        self.last_confirmation().map(|(_, c)| c)
    }

    /// When the listing ends: the expiry of the last move when it is a confirmation (past for an expired one); `None`
    /// when the last move is not a confirmation.
    pub fn listed_until(&self) -> Option<OffsetDateTime> {
        match self.last().and_then(|e| e.action.as_ref()) {
            Some(Action::Confirmed(c)) => c.expires_at.as_ref().and_then(from_timestamp),
            _ => None,
        }
    }

    /// The status a screening flag of `rule` at `revision` has under this determination at `now`: confirmed while the
    /// person is listed under the rule; cleared when the last move cleared it at this revision or later (a flag that
    /// grew since is open again); otherwise open.
    pub fn flag_status(&self, rule: &str, revision: u64, now: OffsetDateTime) -> FlagStatus {
        match self.last().and_then(|e| e.action.as_ref()) {
            Some(Action::Confirmed(c))
                if self.is_listed(now) && c.flags.iter().any(|f| f.rule == rule) =>
            {
                FlagStatus::Confirmed
            }
            Some(Action::Cleared(c))
                if c.flags
                    .iter()
                    .any(|f| f.rule == rule && f.revision >= revision) =>
            {
                FlagStatus::Cleared
            }
            _ => FlagStatus::Open,
        }
    }

    /// The view at `now`; `with_history` adds every event.
    pub fn to_view(&self, now: OffsetDateTime, with_history: bool) -> DeterminationView {
        let mut view = DeterminationView {
            person_key: self.person_key.clone(),
            state: self.state(now) as i32,
            version: self.version,
            ..Default::default()
        };
        if let Some(last) = self.last() {
            view.region_code = last.region_code.clone();
            view.decided_at = last.occurred_at;
            view.decided_by = last.actor_subject.clone();
            match &last.action {
                Some(Action::Confirmed(c)) => {
                    view.flags = c.flags.clone();
                    view.basis = c.basis.clone();
                    view.evidence_event_ids = c.evidence_event_ids.clone();
                }
                Some(Action::Cleared(c)) => {
                    view.flags = c.flags.clone();
                    view.reason = c.reason.clone();
                }
                Some(Action::Revoked(r)) => view.reason = r.reason.clone(),
                None => {}
            }
        }
        if let Some((event, confirmed)) = self.last_confirmation() {
            view.confirmed_at = event.occurred_at;
            view.expires_at = confirmed.expires_at;
        }
        if with_history {
            view.history = self.history.clone();
        }
        view
    }
}

/// The optimistic-concurrency check: `expected` must be the current version (0 for a person never determined).
pub fn check_expected_version(
    current: Option<&Determination>,
    expected: u64,
) -> Result<(), MoveError> {
    let actual = current.map_or(0, |d| d.version);
    if actual == expected {
        Ok(())
    } else {
        Err(MoveError::StaleVersion { expected, actual })
    }
}

/// Folds one event into the state (events are facts: no check here).
pub fn evolve(current: Option<Determination>, event: &DeterminationEvent) -> Determination {
    let mut d = current.unwrap_or_else(|| Determination {
        person_key: event.person_key.clone(),
        ..Default::default()
    });
    d.version = event.version;
    d.history.push(event.clone());
    d
}

/// Folds a person's events, oldest first; `None` when there are none.
pub fn replay<'a>(
    events: impl IntoIterator<Item = &'a DeterminationEvent>,
) -> Option<Determination> {
    events.into_iter().fold(None, |d, e| Some(evolve(d, e)))
}

fn text(field: &str, value: &str) -> Result<String, MoveError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(MoveError::invalid(field, "required"));
    }
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(MoveError::invalid(
            field,
            format!("at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(value.to_owned())
}

fn flags_named(field: &str, flags: &[DeterminedFlag]) -> Result<(), MoveError> {
    if flags.is_empty() {
        return Err(MoveError::invalid(field, "name at least one rule"));
    }
    for (i, f) in flags.iter().enumerate() {
        if flags[..i].iter().any(|g| g.rule == f.rule) {
            return Err(MoveError::invalid(
                &format!("{field}[{i}]"),
                format!("{} is named twice", f.rule),
            ));
        }
    }
    Ok(())
}

/// Judges `command` on the person's determination `current` at `now`, for `decider`; returns the event to append.
pub fn decide(
    person_key: &str,
    current: Option<&Determination>,
    command: Command,
    decider: &Decider,
    now: OffsetDateTime,
) -> Result<DeterminationEvent, MoveError> {
    let state = current.map_or(DeterminationState::Unspecified, |d| d.state(now));
    let refuse = |why: String| MoveError::NotAllowed {
        action: command.name(),
        why,
    };
    let listed_until = || {
        current
            .and_then(|d| d.listing(now))
            .and_then(|c| c.expires_at.as_ref())
            .and_then(from_timestamp)
            .map_or_else(String::new, |at| format!(" until {at}"))
    };
    let action = match &command {
        Command::Confirm {
            flags,
            basis,
            evidence_event_ids,
            valid_days,
            figures,
        } => {
            if state == DeterminationState::Confirmed {
                return Err(refuse(format!(
                    "the person is already listed{}; revoke the entry first",
                    listed_until()
                )));
            }
            flags_named("rules", flags)?;
            let basis = text("basis", basis)?;
            if evidence_event_ids.is_empty() {
                return Err(MoveError::invalid(
                    "evidence_event_ids",
                    "a determination names the events it rests on",
                ));
            }
            if evidence_event_ids.len() > MAX_EVIDENCE {
                return Err(MoveError::invalid(
                    "evidence_event_ids",
                    format!("at most {MAX_EVIDENCE}"),
                ));
            }
            if !(1..=MAX_VALID_DAYS).contains(valid_days) {
                return Err(MoveError::invalid(
                    "valid_days",
                    format!("1 to {MAX_VALID_DAYS} days"),
                ));
            }
            Action::Confirmed(DeterminationConfirmed {
                flags: flags.clone(),
                basis,
                evidence_event_ids: evidence_event_ids.clone(),
                expires_at: Some(timestamp(now + Duration::days(i64::from(*valid_days)))),
                figures: Some(figures.clone()),
            })
        }
        Command::Clear { flags, reason } => {
            if state == DeterminationState::Confirmed {
                return Err(refuse(format!(
                    "the person is listed{}; a listed entry is revoked, not cleared",
                    listed_until()
                )));
            }
            flags_named("rules", flags)?;
            Action::Cleared(DeterminationCleared {
                flags: flags.clone(),
                reason: text("reason", reason)?,
            })
        }
        Command::Revoke { reason } => {
            if state != DeterminationState::Confirmed {
                return Err(refuse(match state {
                    DeterminationState::Expired => "the entry has already expired".to_owned(),
                    _ => "the person is not on the abnormal list".to_owned(),
                }));
            }
            Action::Revoked(DeterminationRevoked {
                reason: text("reason", reason)?,
            })
        }
    };
    Ok(DeterminationEvent {
        person_key: person_key.to_owned(),
        version: current.map_or(0, |d| d.version) + 1,
        occurred_at: Some(timestamp(now)),
        actor_subject: decider.subject.clone(),
        actor_department: decider.department.clone(),
        region_code: decider.region_code.clone(),
        action: Some(action),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-02 10:00 +8);

    fn decider() -> Decider {
        Decider {
            subject: "staff-1".into(),
            department: "market".into(),
            region_code: "430602".into(),
        }
    }

    fn flag(rule: &str, revision: u64) -> DeterminedFlag {
        DeterminedFlag {
            rule: rule.into(),
            clause: "二(一)".into(),
            revision,
        }
    }

    fn confirm(days: u32) -> Command {
        Command::Confirm {
            flags: vec![flag("C1", 2)],
            basis: "三次获惩罚性赔偿后继续投诉同一经营者".into(),
            evidence_event_ids: vec!["e-1".into()],
            valid_days: days,
            figures: AbnormalListFigures::default(),
        }
    }

    fn clear(rule: &str, revision: u64) -> Command {
        Command::Clear {
            flags: vec![flag(rule, revision)],
            reason: "正常维权".into(),
        }
    }

    fn revoke() -> Command {
        Command::Revoke {
            reason: "异议成立".into(),
        }
    }

    /// Applies `commands` in turn at `now`; returns the state after the last one that succeeded and the last result.
    fn run(
        commands: Vec<Command>,
        now: OffsetDateTime,
    ) -> (Option<Determination>, Result<(), MoveError>) {
        let mut d: Option<Determination> = None;
        let mut last = Ok(());
        for c in commands {
            last = decide("ab", d.as_ref(), c, &decider(), now).map(|e| {
                d = Some(evolve(d.take(), &e));
            });
        }
        (d, last)
    }

    fn code(r: Result<(), MoveError>) -> tonic::Code {
        r.err().map_or(tonic::Code::Ok, |e| e.code())
    }

    #[test]
    fn a_confirmation_lists_the_person_until_it_expires() {
        let (d, r) = run(vec![confirm(365)], NOW);
        r.unwrap();
        let d = d.unwrap();
        assert_eq!(d.version, 1);
        assert!(d.is_listed(NOW));
        assert!(d.is_listed(NOW + Duration::days(364)));
        assert_eq!(
            d.state(NOW + Duration::days(365)),
            DeterminationState::Expired
        );
        assert!(!d.is_listed(NOW + Duration::days(365)));
        let view = d.to_view(NOW, true);
        assert_eq!(view.state(), DeterminationState::Confirmed);
        assert_eq!(view.flags, vec![flag("C1", 2)]);
        assert_eq!(view.decided_by, "staff-1");
        assert_eq!(view.region_code, "430602");
        assert_eq!(view.history.len(), 1);
        assert_eq!(
            view.expires_at.and_then(|t| from_timestamp(&t)),
            Some(NOW + Duration::days(365))
        );
        assert_eq!(d.listed_until(), Some(NOW + Duration::days(365)));
    }

    #[test]
    fn the_table_of_states_and_moves_holds() {
        use tonic::Code::{FailedPrecondition as No, Ok as Yes};
        // (history before, move, expected)
        let cases: Vec<(Vec<Command>, Command, tonic::Code)> = vec![
            (vec![], confirm(30), Yes),
            (vec![], clear("C1", 1), Yes),
            (vec![], revoke(), No),
            (vec![confirm(30)], confirm(30), No),
            (vec![confirm(30)], clear("C1", 1), No),
            (vec![confirm(30)], revoke(), Yes),
            (vec![clear("C1", 1)], confirm(30), Yes),
            (vec![clear("C1", 1)], clear("C1", 2), Yes),
            (vec![clear("C1", 1)], revoke(), No),
            (vec![confirm(30), revoke()], confirm(30), Yes),
            (vec![confirm(30), revoke()], clear("C1", 1), Yes),
            (vec![confirm(30), revoke()], revoke(), No),
        ];
        for (i, (before, command, want)) in cases.into_iter().enumerate() {
            let n = before.len();
            let (d, r) = run(before, NOW);
            r.unwrap();
            let got = code(decide("ab", d.as_ref(), command, &decider(), NOW).map(|_| ()));
            assert_eq!(got, want, "case {i} (after {n} moves)");
        }
    }

    #[test]
    fn an_expired_entry_may_be_confirmed_again_or_cleared_but_not_revoked() {
        let (d, r) = run(vec![confirm(10)], NOW);
        r.unwrap();
        let later = NOW + Duration::days(11);
        for (command, want) in [
            (confirm(10), tonic::Code::Ok),
            (clear("C1", 3), tonic::Code::Ok),
            (revoke(), tonic::Code::FailedPrecondition),
        ] {
            let got = code(decide("ab", d.as_ref(), command, &decider(), later).map(|_| ()));
            assert_eq!(got, want);
        }
        let err = decide("ab", d.as_ref(), revoke(), &decider(), later).unwrap_err();
        assert!(err.to_string().contains("already expired"), "{err}");
    }

    #[test]
    fn bad_moves_name_the_field() {
        let cases = [
            (
                Command::Confirm {
                    flags: vec![],
                    basis: "b".into(),
                    evidence_event_ids: vec!["e".into()],
                    valid_days: 1,
                    figures: Default::default(),
                },
                "rules",
            ),
            (
                Command::Confirm {
                    flags: vec![flag("C1", 1), flag("C1", 1)],
                    basis: "b".into(),
                    evidence_event_ids: vec!["e".into()],
                    valid_days: 1,
                    figures: Default::default(),
                },
                "rules[1]",
            ),
            (
                Command::Confirm {
                    flags: vec![flag("C1", 1)],
                    basis: "  ".into(),
                    evidence_event_ids: vec!["e".into()],
                    valid_days: 1,
                    figures: Default::default(),
                },
                "basis",
            ),
            (
                Command::Confirm {
                    flags: vec![flag("C1", 1)],
                    basis: "b".into(),
                    evidence_event_ids: vec![],
                    valid_days: 1,
                    figures: Default::default(),
                },
                "evidence_event_ids",
            ),
            (
                Command::Confirm {
                    flags: vec![flag("C1", 1)],
                    basis: "b".into(),
                    evidence_event_ids: vec!["e".into()],
                    valid_days: MAX_VALID_DAYS + 1,
                    figures: Default::default(),
                },
                "valid_days",
            ),
            (
                Command::Clear {
                    flags: vec![flag("C1", 1)],
                    reason: String::new(),
                },
                "reason",
            ),
            (
                Command::Confirm {
                    flags: vec![flag("C1", 1)],
                    basis: "长".repeat(MAX_TEXT_CHARS + 1),
                    evidence_event_ids: vec!["e".into()],
                    valid_days: 1,
                    figures: Default::default(),
                },
                "basis",
            ),
        ];
        for (command, field) in cases {
            match decide("ab", None, command, &decider(), NOW) {
                Err(MoveError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_stale_version_is_aborted() {
        let (d, _) = run(vec![confirm(30)], NOW);
        assert_eq!(check_expected_version(d.as_ref(), 1), Ok(()));
        let e = check_expected_version(d.as_ref(), 0).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Aborted);
        assert_eq!(
            check_expected_version(None, 1).unwrap_err(),
            MoveError::StaleVersion {
                expected: 1,
                actual: 0
            }
        );
    }

    #[test]
    fn flag_statuses_follow_the_last_move() {
        let (d, _) = run(vec![confirm(30)], NOW);
        let d = d.unwrap();
        assert_eq!(d.flag_status("C1", 9, NOW), FlagStatus::Confirmed);
        // Rules the confirmation did not name stay open; so does everything once the entry expired.
        assert_eq!(d.flag_status("C6", 1, NOW), FlagStatus::Open);
        assert_eq!(
            d.flag_status("C1", 9, NOW + Duration::days(31)),
            FlagStatus::Open
        );
        let (d, _) = run(vec![clear("C6", 4)], NOW);
        let d = d.unwrap();
        assert_eq!(d.flag_status("C6", 4, NOW), FlagStatus::Cleared);
        // Grown since the clearing: open again.
        assert_eq!(d.flag_status("C6", 5, NOW), FlagStatus::Open);
        let (d, _) = run(vec![confirm(30), revoke()], NOW);
        let d = d.unwrap();
        assert_eq!(d.flag_status("C1", 2, NOW), FlagStatus::Open);
        // Only a confirmation as the last move has an end; an expired one's is in the past.
        assert_eq!(d.listed_until(), None);
        let (d, _) = run(vec![confirm(30)], NOW);
        assert_eq!(d.unwrap().listed_until(), Some(NOW + Duration::days(30)));
    }

    #[test]
    fn replay_is_the_fold_of_evolve() {
        let (d, _) = run(vec![clear("C6", 1), confirm(30), revoke()], NOW);
        let d = d.unwrap();
        assert_eq!(replay(d.history.iter()), Some(d.clone()));
        assert_eq!(d.version, 3);
        assert_eq!(d.state(NOW), DeterminationState::Revoked);
        let view = d.to_view(NOW, false);
        assert_eq!(view.reason, "异议成立");
        assert!(view.history.is_empty());
        assert!(view.confirmed_at.is_some(), "the last confirmation is kept");
        assert_eq!(replay(std::iter::empty()), None);
    }
}
