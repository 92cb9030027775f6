//! Specification of the referral aggregate: the graph, who may move, documents, versions, clocks, replay.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Barrier, Mutex};

use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::macros::datetime;
use time::Duration;

use super::*;

const UNIT_A: &str = "PSB-330106";
const UNIT_B: &str = "PSB-330108";
const ID: &str = "ref-0001";

fn cal() -> HolidayCalendar {
    HolidayCalendar::china()
}

/// Monday 10 March 2025, 09:00 in China: far from any holiday.
const T0: OffsetDateTime = datetime!(2025-03-10 09:00 +8);

fn staff() -> Actor {
    Actor::market_staff("market", "staff-1")
}
fn head() -> Actor {
    Actor::agency_head("market", "head-1")
}
fn police_a() -> Actor {
    Actor::police(UNIT_A, "officer-a")
}
fn police_b() -> Actor {
    Actor::police(UNIT_B, "officer-b")
}

fn draft_cmd() -> Command {
    Command::Draft(ReferralDrafted {
        case_report:
            "Bought goods, swapped in expired ones, demanded 10x compensation, threatened to report"
                .into(),
        evidence_list: vec!["purchase receipts".into(), "shop CCTV of 2025-02-14".into()],
        person_keys: vec!["0f".repeat(32)],
        evidence_event_ids: vec!["6f1c2a9e-3b4d-5e6f-8a9b-0c1d2e3f4a5b".into()],
        region_code: "330106".into(),
        offence: v1::Offence::Swapping.into(),
        case_ref: "杭西市监案〔2025〕12号".into(),
    })
}

/// A valid command of each kind (Close with outcome `other`, valid for every closing party).
fn cmd(kind: MoveKind) -> Command {
    match kind {
        K::Draft => draft_cmd(),
        K::Approve => Command::Approve(ReferralApproved {
            note: "agreed".into(),
        }),
        K::Refuse => Command::Refuse(ReferralRefused {
            reason: "the amount is below the prosecution standard".into(),
        }),
        K::Transfer => Command::Transfer(ReferralTransferred {
            police_unit: UNIT_A.into(),
            transfer_letter: "杭西市监移〔2025〕3号".into(),
            investigation_report: "report of the investigation".into(),
            seized_items: vec![SeizedItem {
                description: "expired milk powder".into(),
                quantity: 12,
                custody: "bureau store room 2".into(),
            }],
            inspection_results: vec!["inspection report 2025-031".into()],
            other_materials: vec![],
        }),
        K::Receive => Command::Receive(ReferralReceived {
            receipt: "receipt 88".into(),
        }),
        K::Forward => Command::Forward(ReferralForwarded {
            to_police_unit: UNIT_B.into(),
            reason: "the offence took place in the other district".into(),
        }),
        K::Register => Command::Register(ReferralRegistered {
            police_case_ref: "A3301062025000123".into(),
            offence: v1::Offence::Extortion.into(),
            note: String::new(),
        }),
        K::Decline => Command::Decline(ReferralDeclined {
            reason: v1::CaseDeclineReason::InsufficientEvidence.into(),
            detail: "no evidence of a demand".into(),
        }),
        K::RequestReconsideration => {
            Command::RequestReconsideration(ReferralReconsiderationRequested {
                grounds: "the chat records show the demand".into(),
            })
        }
        K::DecideReconsideration => decide_recon(false),
        K::RequestSupervision => Command::RequestSupervision(ReferralSupervisionRequested {
            procuratorate: "西湖区人民检察院".into(),
            grounds: "the decline ignores the chat records".into(),
        }),
        K::Close => Command::Close(ReferralClosed {
            outcome: v1::ReferralOutcome::Other.into(),
            detail: "closed".into(),
        }),
    }
}

fn decide_recon(register: bool) -> Command {
    Command::DecideReconsideration(ReferralReconsiderationDecided {
        register,
        reasons: "reviewed".into(),
        police_case_ref: if register { "A1".into() } else { String::new() },
    })
}

fn close(outcome: v1::ReferralOutcome) -> Command {
    Command::Close(ReferralClosed {
        outcome: outcome.into(),
        detail: "done".into(),
    })
}

fn apply(
    current: Option<Referral>,
    command: &Command,
    actor: &Actor,
    now: OffsetDateTime,
) -> Referral {
    let event = decide(ID, current.as_ref(), command, actor, now, &cal())
        .unwrap_or_else(|e| panic!("{:?} by {:?}: {e}", command.kind(), actor.role));
    evolve(current, &event)
}

/// A referral in `state`, reached by the shortest path, one hour per move from `T0`.
fn reach(state: ReferralState) -> Referral {
    reach_at(state, T0)
}

fn reach_at(state: ReferralState, start: OffsetDateTime) -> Referral {
    let path: Vec<(Command, Actor)> = match state {
        S::Drafted => vec![],
        S::Approved => vec![(cmd(K::Approve), head())],
        S::Refused => vec![(cmd(K::Refuse), head())],
        S::Transferred => vec![(cmd(K::Approve), head()), (cmd(K::Transfer), staff())],
        S::Received => vec![
            (cmd(K::Approve), head()),
            (cmd(K::Transfer), staff()),
            (cmd(K::Receive), police_a()),
        ],
        S::Forwarded => [path_to_received(), vec![(cmd(K::Forward), police_a())]].concat(),
        S::Registered => [path_to_received(), vec![(cmd(K::Register), police_a())]].concat(),
        S::Declined => [path_to_received(), vec![(cmd(K::Decline), police_a())]].concat(),
        S::ReconsiderationRequested => [
            path_to_received(),
            vec![
                (cmd(K::Decline), police_a()),
                (cmd(K::RequestReconsideration), staff()),
            ],
        ]
        .concat(),
        S::DeclineUpheld => [
            path_to_received(),
            vec![
                (cmd(K::Decline), police_a()),
                (cmd(K::RequestReconsideration), staff()),
                (decide_recon(false), police_a()),
            ],
        ]
        .concat(),
        S::SupervisionRequested => [
            path_to_received(),
            vec![
                (cmd(K::Decline), police_a()),
                (cmd(K::RequestSupervision), staff()),
            ],
        ]
        .concat(),
        S::Closed => [
            path_to_received(),
            vec![
                (cmd(K::Register), police_a()),
                (close(v1::ReferralOutcome::CriminalCase), police_a()),
            ],
        ]
        .concat(),
    };
    let mut now = start;
    let mut r = apply(None, &draft_cmd(), &staff(), now);
    for (command, actor) in path {
        now += Duration::hours(1);
        r = apply(Some(r), &command, &actor, now);
    }
    assert_eq!(r.state, state);
    r
}

fn path_to_received() -> Vec<(Command, Actor)> {
    vec![
        (cmd(K::Approve), head()),
        (cmd(K::Transfer), staff()),
        (cmd(K::Receive), police_a()),
    ]
}

/// The graph of spec/domain.md section 7 and Order 310, written out independently of `TRANSITIONS`.
const EXPECTED: &[(ReferralState, MoveKind, &[ReferralState])] = &[
    (S::Drafted, K::Approve, &[S::Approved]),
    (S::Drafted, K::Refuse, &[S::Refused]),
    (S::Approved, K::Transfer, &[S::Transferred]),
    (S::Transferred, K::Receive, &[S::Received]),
    (S::Forwarded, K::Receive, &[S::Received]),
    (S::Received, K::Forward, &[S::Forwarded]),
    (S::Received, K::Register, &[S::Registered]),
    (S::Received, K::Decline, &[S::Declined]),
    (
        S::Declined,
        K::RequestReconsideration,
        &[S::ReconsiderationRequested],
    ),
    (
        S::Declined,
        K::RequestSupervision,
        &[S::SupervisionRequested],
    ),
    (S::Declined, K::Close, &[S::Closed]),
    (
        S::ReconsiderationRequested,
        K::DecideReconsideration,
        &[S::Registered, S::DeclineUpheld],
    ),
    (
        S::DeclineUpheld,
        K::RequestSupervision,
        &[S::SupervisionRequested],
    ),
    (S::DeclineUpheld, K::Close, &[S::Closed]),
    (S::SupervisionRequested, K::Register, &[S::Registered]),
    (S::SupervisionRequested, K::Close, &[S::Closed]),
    (S::Registered, K::Close, &[S::Closed]),
];

fn expected_targets(state: ReferralState, kind: MoveKind) -> Option<&'static [ReferralState]> {
    EXPECTED
        .iter()
        .find(|(s, k, _)| *s == state && *k == kind)
        .map(|(_, _, to)| *to)
}

/// The party's actor for `r` (police: the unit holding it).
fn party_actor(party: Party, r: &Referral) -> Actor {
    match party {
        Party::CaseTeam => staff(),
        Party::AgencyHead => head(),
        Party::HoldingUnit => Actor::police(r.police_unit.as_deref().unwrap_or(UNIT_A), "officer"),
    }
}

/// The actor who would make `kind` in `r`'s state if it were allowed: the edge's party, or else the party of the
/// first edge of that kind, so the role check passes and the state check is what decides.
fn natural_actor(kind: MoveKind, r: &Referral) -> Actor {
    let edge = transition(Some(r.state), kind)
        .or_else(|| TRANSITIONS.iter().find(|t| t.kind == kind))
        .expect("every kind has an edge");
    party_actor(edge.by, r)
}

// ---------------------------------------------------------------------------------------------------------------------

#[test]
fn transitions_table_is_the_documented_graph() {
    for t in TRANSITIONS {
        match t.from {
            None => assert_eq!((t.kind, t.to), (K::Draft, S::Drafted)),
            Some(from) => {
                let to =
                    expected_targets(from, t.kind).unwrap_or_else(|| panic!("{t:?} not expected"));
                assert!(to.contains(&t.to), "{t:?}");
            }
        }
    }
    for (from, kind, to) in EXPECTED {
        for target in *to {
            assert!(
                TRANSITIONS
                    .iter()
                    .any(|t| t.from == Some(*from) && t.kind == *kind && t.to == *target),
                "{from} --{kind}--> {target} missing"
            );
        }
    }
    // A (state, move) pair has exactly one party.
    for t in TRANSITIONS {
        assert!(TRANSITIONS
            .iter()
            .filter(|u| u.from == t.from && u.kind == t.kind)
            .all(|u| u.by == t.by));
    }
    // Terminal states have no way out; every other state has one.
    for state in ReferralState::ALL {
        assert_eq!(
            allowed_moves(Some(state)).next().is_none(),
            state.is_terminal(),
            "{state}"
        );
    }
}

#[test]
fn whole_happy_path() {
    let calendar = cal();
    let mut now = T0;
    let r = apply(None, &draft_cmd(), &staff(), now);
    assert_eq!(
        (r.state, r.version, r.agency.as_str()),
        (S::Drafted, 1, "market")
    );
    assert_eq!(r.person_keys, vec!["0f".repeat(32)]);
    assert_eq!(r.offence, v1::Offence::Swapping);
    // Drafted Monday 10 March: the head has until the end of Thursday 13 March.
    assert_eq!(
        r.due(&calendar).unwrap().unwrap().due_at,
        datetime!(2025-03-14 00:00 +8)
    );

    now += Duration::hours(5);
    let r = apply(Some(r), &cmd(K::Approve), &head(), now);
    assert_eq!((r.state, r.version), (S::Approved, 2));
    assert_eq!(
        r.due(&calendar).unwrap().unwrap().due_at,
        now + Duration::hours(24)
    );

    now += Duration::hours(3);
    let r = apply(Some(r), &cmd(K::Transfer), &staff(), now);
    assert_eq!(
        (r.state, r.police_unit.as_deref()),
        (S::Transferred, Some(UNIT_A))
    );
    assert_eq!(r.handed_over_at, Some(now));
    assert_eq!(
        r.due(&calendar).unwrap().unwrap().due_at,
        datetime!(2025-03-14 00:00 +8)
    );

    now += Duration::hours(1);
    let r = apply(Some(r), &cmd(K::Receive), &police_a(), now);
    assert_eq!(r.state, S::Received);
    // The art. 8 clock still runs from the hand-over; the art. 7 forward clock from the receipt.
    let deadlines = r.deadlines(&calendar).unwrap();
    assert_eq!(deadlines.len(), 2);
    assert_eq!(deadlines[0].due_at, datetime!(2025-03-14 00:00 +8));
    assert_eq!(deadlines[1].clock.kind, ClockKind::Conditional);
    assert_eq!(deadlines[1].due_at, now + Duration::hours(24));

    now += Duration::days(1);
    let r = apply(Some(r), &cmd(K::Register), &police_a(), now);
    assert_eq!(
        (r.state, r.offence),
        (S::Registered, v1::Offence::Extortion)
    );
    assert_eq!(r.due(&calendar).unwrap(), None);

    now += Duration::days(30);
    let r = apply(
        Some(r),
        &close(v1::ReferralOutcome::CriminalCase),
        &police_a(),
        now,
    );
    assert_eq!((r.state, r.version), (S::Closed, 6));
    assert_eq!(r.outcome, Some(v1::ReferralOutcome::CriminalCase));
    assert!(!r.is_overdue(&calendar, now + Duration::days(365)).unwrap());
    assert_eq!(replay(&r.history).as_ref(), Some(&r));
}

#[test]
fn declined_reconsidered_supervised_path() {
    let mut now = T0;
    let mut r = reach(S::Received);
    let step = |r: Referral, c: Command, a: Actor, now: &mut OffsetDateTime| {
        *now += Duration::hours(2);
        apply(Some(r), &c, &a, *now)
    };
    r = step(r, cmd(K::Forward), police_a(), &mut now);
    assert_eq!(
        (r.state, r.police_unit.as_deref()),
        (S::Forwarded, Some(UNIT_B))
    );
    r = step(r, cmd(K::Receive), police_b(), &mut now);
    r = step(r, cmd(K::Decline), police_b(), &mut now);
    r = step(r, cmd(K::RequestReconsideration), staff(), &mut now);
    r = step(r, decide_recon(false), police_b(), &mut now);
    assert_eq!(r.state, S::DeclineUpheld);
    r = step(r, cmd(K::RequestSupervision), staff(), &mut now);
    r = step(r, cmd(K::Register), police_b(), &mut now);
    assert_eq!(r.state, S::Registered);
    r = step(
        r,
        close(v1::ReferralOutcome::SecurityPenalty),
        police_b(),
        &mut now,
    );
    assert_eq!(r.state, S::Closed);
    assert_eq!(r.version, 12);

    // Reconsideration leading to registration.
    let r = reach(S::ReconsiderationRequested);
    let r = apply(
        Some(r),
        &decide_recon(true),
        &police_a(),
        T0 + Duration::hours(12),
    );
    assert_eq!(r.state, S::Registered);

    // The agency closes a declined referral for administrative handling (art. 10).
    let r = reach(S::Declined);
    let r = apply(
        Some(r),
        &close(v1::ReferralOutcome::ReturnedForAdministrativeHandling),
        &staff(),
        T0 + Duration::hours(12),
    );
    assert_eq!(
        r.outcome,
        Some(v1::ReferralOutcome::ReturnedForAdministrativeHandling)
    );
}

#[test]
fn every_move_from_every_state_follows_the_graph() {
    let calendar = cal();
    let mut allowed = 0;
    let mut refused = 0;
    for state in ReferralState::ALL {
        let r = reach(state);
        let now = r.updated_at + Duration::minutes(1);
        for kind in MoveKind::ALL {
            let actor = natural_actor(kind, &r);
            let result = decide(ID, Some(&r), &cmd(kind), &actor, now, &calendar);
            match (kind, expected_targets(state, kind)) {
                (K::Draft, _) => assert!(
                    matches!(result, Err(MoveError::AlreadyExists { .. })),
                    "draft over {state}: {result:?}"
                ),
                (_, Some(targets)) => {
                    let event = result.unwrap_or_else(|e| panic!("{kind} from {state}: {e}"));
                    let next = evolve(Some(r.clone()), &event);
                    assert!(
                        targets.contains(&next.state),
                        "{kind} from {state} went to {}",
                        next.state
                    );
                    allowed += 1;
                }
                (_, None) => {
                    let error = result.expect_err("not in the graph");
                    assert_eq!(
                        error,
                        MoveError::NotAllowedInState {
                            state: Some(state),
                            kind
                        },
                        "{kind} from {state}"
                    );
                    assert_eq!(error.code(), tonic::Code::FailedPrecondition);
                    refused += 1;
                }
            }
        }
    }
    assert_eq!(allowed, EXPECTED.len());
    assert_eq!(refused, 12 * 11 - EXPECTED.len());
}

#[test]
fn moves_on_a_referral_never_drafted_are_not_found() {
    for kind in MoveKind::ALL {
        let actor = TRANSITIONS
            .iter()
            .find(|t| t.kind == kind)
            .map(|t| t.by.role())
            .expect("edge");
        let actor = Actor {
            role: actor,
            ..police_a()
        };
        let result = decide(ID, None, &cmd(kind), &actor, T0, &cal());
        if kind == K::Draft {
            assert!(decide(ID, None, &cmd(kind), &staff(), T0, &cal()).is_ok());
        } else {
            let error = result.expect_err("no referral");
            assert_eq!(error.code(), tonic::Code::NotFound, "{kind}");
        }
    }
}

#[test]
fn only_the_edges_party_may_move() {
    let calendar = cal();
    let pool = [
        staff(),
        head(),
        police_a(),
        police_b(),
        Actor::market_staff("tobacco", "other-staff"),
        Actor::agency_head("tobacco", "other-head"),
        Actor {
            unit: None,
            ..police_a()
        },
        Actor {
            role: ActorRole::Analyst,
            department: "market".into(),
            unit: None,
            subject: "analyst-1".into(),
        },
        Actor {
            role: ActorRole::Auditor,
            department: "market".into(),
            unit: None,
            subject: "auditor-1".into(),
        },
        Actor {
            subject: String::new(),
            ..staff()
        },
    ];
    let mut checked = 0;
    for edge in TRANSITIONS {
        let Some(from) = edge.from else { continue };
        let r = reach(from);
        let now = r.updated_at + Duration::minutes(1);
        for actor in &pool {
            let entitled = actor.role == edge.by.role()
                && !actor.subject.is_empty()
                && match edge.by {
                    Party::CaseTeam | Party::AgencyHead => actor.department == "market",
                    Party::HoldingUnit => actor.unit == r.police_unit,
                };
            let result = decide(ID, Some(&r), &cmd(edge.kind), actor, now, &calendar);
            if entitled {
                assert!(
                    result.is_ok(),
                    "{} from {from} by {actor:?}: {result:?}",
                    edge.kind
                );
            } else {
                let error = result.expect_err("not entitled");
                assert_eq!(
                    error.code(),
                    tonic::Code::PermissionDenied,
                    "{} from {from} by {actor:?}: {error}",
                    edge.kind
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, (TRANSITIONS.len() - 1) * pool.len());
    // Drafting: any agency's case team, nobody else.
    for actor in &pool {
        let result = decide(ID, None, &draft_cmd(), actor, T0, &calendar);
        let entitled = actor.role == ActorRole::MarketStaff && !actor.subject.is_empty();
        assert_eq!(result.is_ok(), entitled, "{actor:?}");
    }
}

#[test]
fn another_police_unit_cannot_receive_or_register_a_lead_not_sent_to_it() {
    let calendar = cal();
    let transferred = reach(S::Transferred);
    let now = transferred.updated_at + Duration::minutes(5);
    let error = decide(
        ID,
        Some(&transferred),
        &cmd(K::Receive),
        &police_b(),
        now,
        &calendar,
    )
    .expect_err("unit B");
    assert!(
        matches!(
            error,
            MoveError::NotPermitted {
                kind: K::Receive,
                ..
            }
        ),
        "{error}"
    );

    let received = reach(S::Received);
    for kind in [K::Register, K::Decline, K::Forward] {
        let error = decide(ID, Some(&received), &cmd(kind), &police_b(), now, &calendar)
            .expect_err("unit B");
        assert_eq!(error.code(), tonic::Code::PermissionDenied, "{kind}");
    }

    // After a forward to B, A has let go of it and B holds it.
    let forwarded = reach(S::Forwarded);
    let now = forwarded.updated_at + Duration::minutes(5);
    let error = decide(
        ID,
        Some(&forwarded),
        &cmd(K::Receive),
        &police_a(),
        now,
        &calendar,
    )
    .expect_err("unit A");
    assert_eq!(error.code(), tonic::Code::PermissionDenied);
    assert!(decide(
        ID,
        Some(&forwarded),
        &cmd(K::Receive),
        &police_b(),
        now,
        &calendar
    )
    .is_ok());

    // Another agency's head cannot approve this agency's referral.
    let drafted = reach(S::Drafted);
    let other_head = Actor::agency_head("tobacco", "h");
    let error = decide(
        ID,
        Some(&drafted),
        &cmd(K::Approve),
        &other_head,
        T0,
        &calendar,
    )
    .expect_err("other agency");
    assert_eq!(error.code(), tonic::Code::PermissionDenied);
}

#[test]
fn missing_or_malformed_documents_are_invalid_naming_the_field() {
    let calendar = cal();
    let invalid_field = |current: Option<&Referral>, command: Command, actor: &Actor| -> String {
        let now = current.map_or(T0, |r| r.updated_at + Duration::minutes(1));
        match decide(ID, current, &command, actor, now, &calendar) {
            Err(e @ MoveError::Invalid { .. }) => {
                assert_eq!(e.code(), tonic::Code::InvalidArgument);
                match e {
                    MoveError::Invalid { field, .. } => field,
                    _ => unreachable!(),
                }
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    };
    let Command::Draft(good) = draft_cmd() else {
        unreachable!()
    };
    let drafts: Vec<(ReferralDrafted, &str)> = vec![
        (
            ReferralDrafted {
                case_report: " ".into(),
                ..good.clone()
            },
            "drafted.case_report",
        ),
        (
            ReferralDrafted {
                evidence_list: vec![],
                ..good.clone()
            },
            "drafted.evidence_list",
        ),
        (
            ReferralDrafted {
                evidence_list: vec!["".into()],
                ..good.clone()
            },
            "drafted.evidence_list[0]",
        ),
        (
            ReferralDrafted {
                person_keys: vec![],
                ..good.clone()
            },
            "drafted.person_keys",
        ),
        // A clear ID number is not a person key.
        (
            ReferralDrafted {
                person_keys: vec!["11010519491231002X".into()],
                ..good.clone()
            },
            "drafted.person_keys[0]",
        ),
        (
            ReferralDrafted {
                evidence_event_ids: vec!["not-a-uuid".into()],
                ..good.clone()
            },
            "drafted.evidence_event_ids[0]",
        ),
        (
            ReferralDrafted {
                region_code: "3301".into(),
                ..good.clone()
            },
            "drafted.region_code",
        ),
        (
            ReferralDrafted {
                case_report: "x".repeat(MAX_TEXT_BYTES + 1),
                ..good.clone()
            },
            "drafted.case_report",
        ),
    ];
    for (drafted, field) in drafts {
        assert_eq!(
            invalid_field(None, Command::Draft(drafted), &staff()),
            field
        );
    }
    assert_eq!(
        decide("ref.1", None, &draft_cmd(), &staff(), T0, &calendar).map_err(|e| e.code()),
        Err(tonic::Code::InvalidArgument),
        "a dot would split the NATS subject"
    );

    let drafted = reach(S::Drafted);
    assert_eq!(
        invalid_field(
            Some(&drafted),
            Command::Refuse(ReferralRefused { reason: "".into() }),
            &head()
        ),
        "refused.reason"
    );

    let approved = reach(S::Approved);
    let Command::Transfer(t) = cmd(K::Transfer) else {
        unreachable!()
    };
    let transfers: Vec<(ReferralTransferred, &str)> = vec![
        (
            ReferralTransferred {
                transfer_letter: "".into(),
                ..t.clone()
            },
            "transferred.transfer_letter",
        ),
        (
            ReferralTransferred {
                investigation_report: "".into(),
                ..t.clone()
            },
            "transferred.investigation_report",
        ),
        (
            ReferralTransferred {
                police_unit: "".into(),
                ..t.clone()
            },
            "transferred.police_unit",
        ),
        (
            ReferralTransferred {
                police_unit: "PSB>1".into(),
                ..t.clone()
            },
            "transferred.police_unit",
        ),
        (
            ReferralTransferred {
                seized_items: vec![SeizedItem {
                    description: "milk".into(),
                    quantity: 0,
                    custody: "".into(),
                }],
                ..t.clone()
            },
            "transferred.seized_items[0].quantity",
        ),
    ];
    for (transfer, field) in transfers {
        assert_eq!(
            invalid_field(Some(&approved), Command::Transfer(transfer), &staff()),
            field
        );
    }

    let received = reach(S::Received);
    let to_self = Command::Forward(ReferralForwarded {
        to_police_unit: UNIT_A.into(),
        reason: "x".into(),
    });
    assert_eq!(
        invalid_field(Some(&received), to_self, &police_a()),
        "forwarded.to_police_unit"
    );
    let no_reason = Command::Forward(ReferralForwarded {
        to_police_unit: UNIT_B.into(),
        reason: "".into(),
    });
    assert_eq!(
        invalid_field(Some(&received), no_reason, &police_a()),
        "forwarded.reason"
    );
    for (reason, detail) in [
        (v1::CaseDeclineReason::Unspecified, "no crime"),
        (v1::CaseDeclineReason::NotJurisdiction, "elsewhere"),
        (v1::CaseDeclineReason::NoCrime, ""),
    ] {
        let decline = Command::Decline(ReferralDeclined {
            reason: reason.into(),
            detail: detail.into(),
        });
        assert!(invalid_field(Some(&received), decline, &police_a()).starts_with("declined."));
    }

    let declined = reach(S::Declined);
    let empty =
        Command::RequestReconsideration(ReferralReconsiderationRequested { grounds: "".into() });
    assert_eq!(
        invalid_field(Some(&declined), empty, &staff()),
        "reconsideration_requested.grounds"
    );
    let empty = Command::RequestSupervision(ReferralSupervisionRequested::default());
    assert_eq!(
        invalid_field(Some(&declined), empty, &staff()),
        "supervision_requested.grounds"
    );
    // The agency cannot close an unregistered referral as a criminal case.
    assert_eq!(
        invalid_field(
            Some(&declined),
            close(v1::ReferralOutcome::CriminalCase),
            &staff()
        ),
        "closed.outcome"
    );
    assert_eq!(
        invalid_field(
            Some(&declined),
            close(v1::ReferralOutcome::Unspecified),
            &staff()
        ),
        "closed.outcome"
    );

    let requested = reach(S::ReconsiderationRequested);
    let no_reasons = Command::DecideReconsideration(ReferralReconsiderationDecided::default());
    assert_eq!(
        invalid_field(Some(&requested), no_reasons, &police_a()),
        "reconsideration_decided.reasons"
    );
}

#[test]
fn stale_expected_version_is_aborted() {
    assert_eq!(check_expected_version(None, 0), Ok(()));
    let error = check_expected_version(None, 1).expect_err("nothing there");
    assert_eq!(error.code(), tonic::Code::Aborted);
    let r = reach(S::Received);
    assert_eq!(r.version, 4);
    assert_eq!(check_expected_version(Some(&r), 4), Ok(()));
    assert_eq!(
        check_expected_version(Some(&r), 3),
        Err(MoveError::StaleVersion {
            expected: 3,
            actual: 4
        })
    );
    assert_eq!(
        check_expected_version(Some(&r), 0).map_err(|e| e.code()),
        Err(tonic::Code::Aborted)
    );
}

/// What the service does with the bus: check the expected version and append only if nobody appended since. Here a
/// mutex stands in for `Nats-Expected-Last-Subject-Sequence`.
fn compare_and_append(
    store: &Mutex<Referral>,
    expected: u64,
    command: &Command,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<u64, MoveError> {
    // Decide on a snapshot, as the service does between reading and appending.
    let snapshot = store.lock().expect("not poisoned").clone();
    check_expected_version(Some(&snapshot), expected)?;
    let event = decide(ID, Some(&snapshot), command, actor, now, &cal())?;
    let mut current = store.lock().expect("not poisoned");
    check_expected_version(Some(&current), expected)?;
    *current = evolve(Some(current.clone()), &event);
    Ok(current.version)
}

#[test]
fn two_officers_deciding_at_once_exactly_one_wins() {
    for round in 0..20 {
        let received = reach(S::Received);
        let expected = received.version;
        let store = Arc::new(Mutex::new(received));
        let barrier = Arc::new(Barrier::new(4));
        let moves = [K::Register, K::Decline, K::Forward, K::Register];
        let handles: Vec<_> = moves
            .into_iter()
            .enumerate()
            .map(|(i, kind)| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let actor = Actor::police(UNIT_A, &format!("officer-{i}"));
                    compare_and_append(&store, expected, &cmd(kind), &actor, T0 + Duration::days(1))
                })
            })
            .collect();
        let results: Vec<Result<u64, MoveError>> = handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect();
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "round {round}: {results:?}");
        for loser in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(loser.code(), tonic::Code::Aborted, "round {round}: {loser}");
        }
        let end = store.lock().expect("not poisoned").clone();
        assert_eq!(end.version, expected + 1);
        assert_eq!(replay(&end.history).as_ref(), Some(&end));
    }
    // And with the versions right but the state already moved, the second decision is illegal anyway.
    let registered = reach(S::Registered);
    let error = decide(
        ID,
        Some(&registered),
        &cmd(K::Decline),
        &police_a(),
        T0,
        &cal(),
    )
    .expect_err("moved");
    assert_eq!(error.code(), tonic::Code::FailedPrecondition);
}

// --- deadlines -------------------------------------------------------------------------------------------------------

/// A referral drafted at `at` and driven through `moves`, each `gap` after the previous.
fn drive(at: OffsetDateTime, moves: &[(Command, Actor)], gap: Duration) -> Referral {
    let mut now = at;
    let mut r = apply(None, &draft_cmd(), &staff(), now);
    for (command, actor) in moves {
        now += gap;
        r = apply(Some(r), command, actor, now);
    }
    r
}

fn due_at(r: &Referral) -> Option<OffsetDateTime> {
    r.due(&cal()).expect("covered").map(|d| d.due_at)
}

#[test]
fn deadlines_per_state_across_holidays() {
    let calendar = cal();
    // Drafted Saturday 25 January 2025: day 3 (28 Jan) is in the Spring Festival holiday → end of Wed 5 Feb.
    let r = drive(datetime!(2025-01-25 10:00 +8), &[], Duration::ZERO);
    assert_eq!(due_at(&r), Some(datetime!(2025-02-06 00:00 +8)));
    assert!(!r
        .is_overdue(&calendar, datetime!(2025-02-05 23:59:59 +8))
        .unwrap());
    assert!(r
        .is_overdue(&calendar, datetime!(2025-02-06 00:00 +8))
        .unwrap());
    let view = r
        .to_view(&calendar, datetime!(2025-02-06 08:00 +8), false)
        .unwrap();
    assert!(view.overdue);
    assert_eq!(view.due_basis, "Order 310 art. 5(2)");

    // Approved on the eve of the holiday: 24 hours are 24 hours.
    let r = drive(
        datetime!(2025-01-27 10:00 +8),
        &[(cmd(K::Approve), head())],
        Duration::ZERO,
    );
    assert_eq!(due_at(&r), Some(datetime!(2025-01-28 10:00 +8)));

    // Transferred Sunday 28 September 2025 (an adjusted working day): day 3 is 1 October → end of Thu 9 October.
    let transfer = [(cmd(K::Approve), head()), (cmd(K::Transfer), staff())];
    let r = drive(
        datetime!(2025-09-28 08:00 +8),
        &transfer,
        Duration::hours(1),
    );
    assert_eq!(r.state, S::Transferred);
    assert_eq!(due_at(&r), Some(datetime!(2025-10-10 00:00 +8)));
    // Signed for on 9 October: the clock still runs from the hand-over.
    let r = apply(
        Some(r),
        &cmd(K::Receive),
        &police_a(),
        datetime!(2025-10-09 09:00 +8),
    );
    assert_eq!(due_at(&r), Some(datetime!(2025-10-10 00:00 +8)));
    // Forwarded Thu 9 October: the new unit's day 3 is Sunday 12 October → end of Monday 13 October.
    let r = apply(
        Some(r),
        &cmd(K::Forward),
        &police_a(),
        datetime!(2025-10-09 15:00 +8),
    );
    assert_eq!(due_at(&r), Some(datetime!(2025-10-14 00:00 +8)));

    // Declined Thursday 12 February 2026: day 3 is 15 Feb, Spring Festival → the window closes at the end of 24 Feb.
    let decline = [
        (cmd(K::Approve), head()),
        (cmd(K::Transfer), staff()),
        (cmd(K::Receive), police_a()),
        (cmd(K::Decline), police_a()),
    ];
    let r = drive(
        datetime!(2026-02-12 08:00 +8),
        &decline,
        Duration::minutes(30),
    );
    assert_eq!(r.state, S::Declined);
    assert_eq!(due_at(&r), Some(datetime!(2026-02-25 00:00 +8)));
    let late = datetime!(2026-02-25 00:00 +8);
    let in_time = datetime!(2026-02-24 17:00 +8);
    assert!(decide(
        ID,
        Some(&r),
        &cmd(K::RequestReconsideration),
        &staff(),
        in_time,
        &calendar
    )
    .is_ok());
    let error = decide(
        ID,
        Some(&r),
        &cmd(K::RequestReconsideration),
        &staff(),
        late,
        &calendar,
    )
    .expect_err("late");
    assert!(
        matches!(
            error,
            MoveError::WindowClosed {
                kind: K::RequestReconsideration,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.code(), tonic::Code::FailedPrecondition);
    assert!(r.is_overdue(&calendar, late).unwrap());
    // Supervision (art. 9(1) sets it no period) and closing remain open.
    assert!(decide(
        ID,
        Some(&r),
        &cmd(K::RequestSupervision),
        &staff(),
        late,
        &calendar
    )
    .is_ok());
    assert!(decide(ID, Some(&r), &cmd(K::Close), &staff(), late, &calendar).is_ok());

    // Reconsideration asked Monday 28 September 2026: day 3 is 1 October → end of Thursday 8 October.
    let r = apply(
        Some(r),
        &cmd(K::RequestReconsideration),
        &staff(),
        datetime!(2026-02-24 17:00 +8),
    );
    assert_eq!(due_at(&r), Some(datetime!(2026-02-28 00:00 +8)));
    let mut r2 = r.clone();
    r2.entered_at = datetime!(2026-09-28 10:00 +8);
    assert_eq!(due_at(&r2), Some(datetime!(2026-10-09 00:00 +8)));

    // Decline upheld Wednesday 7 October 2026: day 3 is Saturday 10 October, an adjusted working day → no extension.
    let r = apply(
        Some(r),
        &decide_recon(false),
        &police_a(),
        datetime!(2026-10-07 10:00 +8),
    );
    assert_eq!(r.state, S::DeclineUpheld);
    assert_eq!(due_at(&r), Some(datetime!(2026-10-11 00:00 +8)));
    let late = datetime!(2026-10-11 00:00 +8);
    let error = decide(
        ID,
        Some(&r),
        &cmd(K::RequestSupervision),
        &staff(),
        late,
        &calendar,
    )
    .expect_err("late");
    assert!(matches!(error, MoveError::WindowClosed { .. }));
    assert!(decide(
        ID,
        Some(&r),
        &cmd(K::RequestSupervision),
        &staff(),
        late - Duration::SECOND,
        &calendar
    )
    .is_ok());
    let closed = apply(
        Some(r),
        &close(v1::ReferralOutcome::ReturnedForAdministrativeHandling),
        &staff(),
        late,
    );
    assert_eq!(due_at(&closed), None);

    // No clock in Registered, SupervisionRequested, Refused, Closed.
    for state in [
        S::Registered,
        S::SupervisionRequested,
        S::Refused,
        S::Closed,
    ] {
        assert_eq!(due_at(&reach(state)), None, "{state}");
        assert!(!reach(state)
            .is_overdue(&calendar, T0 + Duration::days(400))
            .unwrap());
    }
}

#[test]
fn every_clocked_state_has_its_due_instant_and_basis() {
    let calendar = cal();
    for state in ReferralState::ALL {
        let r = reach(state);
        let due = r.due(&calendar).unwrap();
        let clocks: Vec<_> = CLOCKS.iter().filter(|c| c.state == state).collect();
        assert_eq!(due.is_some(), !clocks.is_empty(), "{state}");
        if let Some(due) = due {
            assert!(due.clock.basis.starts_with("Order 310 art."));
            assert!(due.due_at > due.started_at);
            assert!(!r
                .is_overdue(&calendar, due.due_at - Duration::SECOND)
                .unwrap());
            assert!(r.is_overdue(&calendar, due.due_at).unwrap());
        }
    }
}

#[test]
fn a_deadline_in_an_uncovered_year_is_reported_not_guessed() {
    let transfer = [(cmd(K::Approve), head()), (cmd(K::Transfer), staff())];
    let r = drive(
        datetime!(2026-12-30 08:00 +8),
        &transfer,
        Duration::hours(1),
    );
    let calendar = cal();
    assert_eq!(
        r.due(&calendar),
        Err(CalendarError::YearNotCovered { year: 2027 })
    );
    assert!(r
        .is_overdue(&calendar, datetime!(2027-01-10 00:00 +8))
        .is_err());
    assert!(r
        .to_view(&calendar, datetime!(2027-01-10 00:00 +8), true)
        .is_err());
}

// --- events ----------------------------------------------------------------------------------------------------------

#[test]
fn decide_then_evolve_round_trips_through_the_wire() {
    let r = reach(S::Closed);
    assert_eq!(r.history.len() as u64, r.version);
    for (i, event) in r.history.iter().enumerate() {
        assert_eq!(event.version, i as u64 + 1);
        assert_eq!(event.referral_id, ID);
        assert!(event.occurred_at.is_some());
    }
    let first = &r.history[0];
    assert_eq!(first.actor_role(), v1::ReferralRole::MarketStaff);
    assert_eq!(
        (
            first.actor_subject.as_str(),
            first.actor_department.as_str()
        ),
        ("staff-1", "market")
    );
    assert_eq!(r.history[3].actor_unit, UNIT_A);
    // Encoded and decoded (as the bus stores them), the events replay to the same referral.
    let decoded: Vec<ReferralEvent> = r
        .history
        .iter()
        .map(|e| ReferralEvent::decode(e.encode_to_vec().as_slice()).expect("decodes"))
        .collect();
    assert_eq!(replay(&decoded), Some(r.clone()));
    // Commands and actions convert both ways.
    for event in &r.history {
        let action = event.action.as_ref().expect("a move");
        assert_eq!(&Command::from_action(action).to_action(), action);
        assert_eq!(
            Command::from_action(action).kind(),
            MoveKind::of_action(action)
        );
    }
    // The leads: the transfer names unit A.
    let leads: Vec<&str> = r.history.iter().filter_map(lead_unit).collect();
    assert_eq!(leads, vec![UNIT_A]);
}

#[test]
fn view_shows_state_unit_and_history() {
    let r = reach(S::Forwarded);
    let calendar = cal();
    let view = r.to_view(&calendar, r.updated_at, true).unwrap();
    assert_eq!(view.state(), v1::ReferralState::Forwarded);
    assert_eq!(
        (view.version, view.police_unit.as_str()),
        (r.version, UNIT_B)
    );
    assert_eq!(view.history.len(), 5);
    assert!(view.due_at.is_some() && !view.overdue);
    assert_eq!(view.region_code, "330106");
    assert_eq!(
        r.to_view(&calendar, r.updated_at, false)
            .unwrap()
            .history
            .len(),
        0
    );
    for state in ReferralState::ALL {
        assert_eq!(ReferralState::from_proto(state.to_proto()), Some(state));
    }
    assert_eq!(
        ReferralState::from_proto(v1::ReferralState::Unspecified),
        None
    );
    for role in ActorRole::ALL {
        assert_eq!(ActorRole::from_proto(role.to_proto()), Some(role));
    }
    assert_eq!(
        ActorRole::from_token_role("determiner"),
        Some(ActorRole::MarketStaff)
    );
    assert_eq!(ActorRole::from_token_role("writer"), None);
}

#[test]
fn an_event_without_a_move_only_counts() {
    let r = reach(S::Received);
    let unknown = ReferralEvent {
        referral_id: ID.into(),
        version: r.version + 1,
        occurred_at: Some(timestamp(T0 + Duration::days(1))),
        action: None,
        ..Default::default()
    };
    let next = evolve(Some(r.clone()), &unknown);
    assert_eq!((next.state, next.version), (r.state, r.version + 1));
    assert_eq!(next.entered_at, r.entered_at);
}

// --- property: random histories --------------------------------------------------------------------------------------

fn random_actor(rng: &mut ChaCha8Rng) -> Actor {
    match rng.random_range(0..7) {
        0 => staff(),
        1 => head(),
        2 => police_a(),
        3 => police_b(),
        4 => Actor::police("PSB-330110", "officer-c"),
        5 => Actor::market_staff("tobacco", "other"),
        _ => Actor {
            role: ActorRole::Analyst,
            department: "market".into(),
            unit: None,
            subject: "analyst".into(),
        },
    }
}

fn random_command(rng: &mut ChaCha8Rng) -> Command {
    let kind = MoveKind::ALL[rng.random_range(0..MoveKind::ALL.len())];
    match (kind, rng.random_range(0..6)) {
        (K::DecideReconsideration, n) => decide_recon(n % 2 == 0),
        (K::Forward, 0) => Command::Forward(ReferralForwarded {
            to_police_unit: UNIT_A.into(),
            reason: "back".into(),
        }),
        (K::Forward, 1) => Command::Forward(ReferralForwarded {
            to_police_unit: "PSB-330110".into(),
            reason: "elsewhere".into(),
        }),
        (K::Close, 0) => close(v1::ReferralOutcome::CriminalCase),
        (K::Close, 1) => close(v1::ReferralOutcome::ReturnedForAdministrativeHandling),
        (K::Refuse, 0) => Command::Refuse(ReferralRefused::default()),
        (kind, _) => cmd(kind),
    }
}

#[test]
fn replaying_any_history_gives_the_same_state() {
    let calendar = cal();
    let mut moves_applied = 0;
    let mut states_seen = std::collections::BTreeSet::new();
    for seed in 0..300u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Start anywhere in 2025 or 2026 (so holidays are crossed), end before 2027.
        let mut now =
            datetime!(2025-01-01 00:00 +8) + Duration::hours(rng.random_range(0..(700 * 24)));
        let mut current: Option<Referral> = None;
        for _ in 0..40 {
            now += Duration::minutes(rng.random_range(0..(5 * 24 * 60)));
            // Mostly a move the graph allows, by its party; otherwise anything by anyone.
            let (command, actor) = if rng.random_bool(0.6) {
                let from = current.as_ref().map(|r| r.state);
                let kinds: Vec<MoveKind> = allowed_moves(from).collect();
                if kinds.is_empty() {
                    (random_command(&mut rng), random_actor(&mut rng))
                } else {
                    let kind = kinds[rng.random_range(0..kinds.len())];
                    let edge = transition(from, kind).expect("allowed");
                    let actor = match &current {
                        Some(r) => party_actor(edge.by, r),
                        None => staff(),
                    };
                    let command = match (kind, rng.random_range(0..3)) {
                        (K::DecideReconsideration, n) => decide_recon(n == 0),
                        (K::Forward, 0) => Command::Forward(ReferralForwarded {
                            to_police_unit: if actor.unit.as_deref() == Some(UNIT_B) {
                                UNIT_A
                            } else {
                                UNIT_B
                            }
                            .into(),
                            reason: "elsewhere".into(),
                        }),
                        _ => cmd(kind),
                    };
                    (command, actor)
                }
            } else {
                (random_command(&mut rng), random_actor(&mut rng))
            };
            let from = current.as_ref().map(|r| r.state);
            match decide(ID, current.as_ref(), &command, &actor, now, &calendar) {
                Ok(event) => {
                    let next = evolve(current.take(), &event);
                    // Only edges of the graph are ever taken, by their party.
                    let edge = TRANSITIONS
                        .iter()
                        .find(|t| t.from == from && t.kind == command.kind() && t.to == next.state)
                        .unwrap_or_else(|| {
                            panic!(
                                "{from:?} --{}--> {} not an edge",
                                command.kind(),
                                next.state
                            )
                        });
                    assert_eq!(edge.by.role(), actor.role);
                    assert_eq!(event.version, next.version);
                    states_seen.insert(next.state);
                    moves_applied += 1;
                    current = Some(next);
                }
                Err(error) => {
                    // A refusal changes nothing and maps to a status.
                    assert_ne!(error.code(), tonic::Code::Ok);
                    if from.is_some() && command.kind() != K::Draft {
                        let allowed = transition(from, command.kind()).is_some();
                        if !allowed && !matches!(error, MoveError::NotPermitted { .. }) {
                            assert!(
                                matches!(error, MoveError::NotAllowedInState { .. }),
                                "{error:?}"
                            );
                        }
                    }
                }
            }
            if let Some(r) = &current {
                assert_eq!(r.version as usize, r.history.len());
                assert_eq!(replay(&r.history).as_ref(), Some(r), "seed {seed}");
                let handed = !matches!(r.state, S::Drafted | S::Approved | S::Refused);
                assert_eq!(r.police_unit.is_some(), handed, "seed {seed}: {}", r.state);
            }
        }
        if let Some(r) = current {
            let bytes: Vec<Vec<u8>> = r.history.iter().map(Message::encode_to_vec).collect();
            let decoded: Vec<ReferralEvent> = bytes
                .iter()
                .map(|b| ReferralEvent::decode(b.as_slice()).expect("decodes"))
                .collect();
            assert_eq!(replay(&decoded), Some(r));
        }
    }
    assert!(moves_applied > 1_000, "{moves_applied}");
    assert_eq!(
        states_seen.len(),
        ReferralState::ALL.len(),
        "{states_seen:?}"
    );
}
