//! The criminal referral 行刑衔接: an event-sourced aggregate under State Council Order No. 310
//! (《行政执法机关移送涉嫌犯罪案件的规定》, 2001, revised 2020), spec/domain.md section 7.
//!
//! A referral is the stream of its [`ReferralEvent`]s (the generated `caselink.v1` type, so the service publishes what
//! [`decide`] returns as is). [`decide`] judges a [`Command`] against the current [`Referral`] and the caller's
//! [`Actor`], and returns the one event that records the move, or a [`MoveError`]; [`evolve`] folds an event into the
//! state; [`replay`] folds a whole history. Version checking ([`check_expected_version`]) is done by the service before
//! `decide`, and enforced by the bus (`Nats-Expected-Last-Subject-Sequence` on the referral's own subject), so of two
//! officers deciding at once exactly one wins and the other gets `ABORTED`.
//!
//! # The state graph
//!
//! Parties: *case team* = [`ActorRole::MarketStaff`] of the drafting agency; *head* = [`ActorRole::AgencyHead`] of the
//! drafting agency; *holding unit* = [`ActorRole::Police`] whose unit is the one the referral was last transferred or
//! forwarded to. Every move not in this table is [`MoveError::NotAllowedInState`] (`FAILED_PRECONDITION`); a move in
//! it by anyone but its party is [`MoveError::NotPermitted`] (`PERMISSION_DENIED`). The table is [`TRANSITIONS`].
//!
//! | from | move | by | to | Order 310 |
//! | --- | --- | --- | --- | --- |
//! | (none) | `Draft` | case team (its department becomes the referral's agency) | `Drafted` | art. 5(1) |
//! | `Drafted` | `Approve` | head | `Approved` | art. 5(2) |
//! | `Drafted` | `Refuse` (reason) | head | `Refused` (terminal) | art. 5(2) |
//! | `Approved` | `Transfer` (letter, report, items, inspections) | case team | `Transferred` | art. 5(2), 6 |
//! | `Transferred` | `Receive` (receipt) | holding unit | `Received` | art. 7 |
//! | `Forwarded` | `Receive` (receipt) | holding unit (the new one) | `Received` | art. 7 |
//! | `Received` | `Forward` (target, reason) | holding unit | `Forwarded` | art. 7 |
//! | `Received` | `Register` | holding unit | `Registered` | art. 8 |
//! | `Received` | `Decline` (reasons) | holding unit | `Declined` | art. 8 |
//! | `Declined` | `RequestReconsideration` (within its window) | case team | `ReconsiderationRequested` | art. 9(1) |
//! | `Declined` | `RequestSupervision` | case team | `SupervisionRequested` | art. 9(1) |
//! | `Declined` | `Close` (administrative handling / other) | case team | `Closed` | art. 10 |
//! | `ReconsiderationRequested` | `DecideReconsideration` (register) | holding unit | `Registered` | art. 9(2) |
//! | `ReconsiderationRequested` | `DecideReconsideration` (uphold) | holding unit | `DeclineUpheld` | art. 9(2) |
//! | `DeclineUpheld` | `RequestSupervision` (within its window) | case team | `SupervisionRequested` | art. 9(2) |
//! | `DeclineUpheld` | `Close` (administrative handling / other) | case team | `Closed` | art. 10 |
//! | `SupervisionRequested` | `Register` | holding unit | `Registered` | art. 9(3) |
//! | `SupervisionRequested` | `Close` (administrative handling / other) | case team | `Closed` | art. 10 |
//! | `Registered` | `Close` (any outcome) | holding unit | `Closed` (terminal) | art. 8, 13 |
//!
//! # The clocks
//!
//! Each state's statutory clock is data ([`CLOCKS`]), with its period, what starts it and its article:
//!
//! | state | period | from | kind | duty |
//! | --- | --- | --- | --- | --- |
//! | `Drafted` | 3 days | the report | duty of the head | approve or refuse (art. 5(2)) |
//! | `Approved` | 24 hours | the approval | duty of the case team | transfer (art. 5(2)) |
//! | `Transferred`, `Received`, `Forwarded` | 3 days | the hand-over to the current unit | duty of the unit | sign and register or decline (art. 7, 8) |
//! | `Received` | 24 hours | the receipt | only if not its jurisdiction (never makes it overdue) | forward (art. 7) |
//! | `Declined` | 3 days | the decline | window of the case team: reconsideration refused after it | ask reconsideration, or ask supervision or close (art. 9(1)) |
//! | `ReconsiderationRequested` | 3 days | the request | duty of the unit | answer (art. 9(2)) |
//! | `DeclineUpheld` | 3 days | the answer | window of the case team: supervision refused after it | ask supervision or close (art. 9(2)) |
//!
//! Art. 8's 3 days run "from accepting the case"; the police accept it by signing the receipt on the transfer letter
//! when it is handed over (art. 7), so the count starts at the hand-over: a lead never signed for does not escape it.
//! `Registered`, `SupervisionRequested` and the terminal states have no clock in Order 310. A referral is overdue when
//! the current state's duty or window clock has run out ([`Referral::is_overdue`]).

use std::fmt;

use caselink_proto::v1;
use caselink_proto::Timestamp;
use time::OffsetDateTime;

use crate::calendar::{deadline, CalendarError, HolidayCalendar, Period};
// Short names for the tables below.
use MoveKind as K;
use Party as P;
use ReferralState as S;

pub use caselink_proto::v1::referral_event::Action;
pub use caselink_proto::v1::{
    ReferralApproved, ReferralClosed, ReferralDeclined, ReferralDrafted, ReferralEvent,
    ReferralForwarded, ReferralReceived, ReferralReconsiderationDecided,
    ReferralReconsiderationRequested, ReferralRefused, ReferralRegistered,
    ReferralSupervisionRequested, ReferralTransferred, ReferralView, SeizedItem,
};

/// Longest accepted free text (bytes) in any document field.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Most entries accepted in any list field.
pub const MAX_ITEMS: usize = 1_000;
/// Longest referral id or police unit code; both become NATS subject tokens.
pub const MAX_CODE_LEN: usize = 64;

// ---------------------------------------------------------------------------------------------------------------------
// states, moves, roles

/// Where a referral stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReferralState {
    Drafted,
    Approved,
    /// Terminal.
    Refused,
    Transferred,
    Received,
    Forwarded,
    Registered,
    Declined,
    ReconsiderationRequested,
    /// The reconsideration upheld the decline.
    DeclineUpheld,
    SupervisionRequested,
    /// Terminal.
    Closed,
}

impl ReferralState {
    /// Every state, in graph order.
    pub const ALL: [ReferralState; 12] = [
        ReferralState::Drafted,
        ReferralState::Approved,
        ReferralState::Refused,
        ReferralState::Transferred,
        ReferralState::Received,
        ReferralState::Forwarded,
        ReferralState::Registered,
        ReferralState::Declined,
        ReferralState::ReconsiderationRequested,
        ReferralState::DeclineUpheld,
        ReferralState::SupervisionRequested,
        ReferralState::Closed,
    ];

    /// No move leaves it.
    pub fn is_terminal(self) -> bool {
        matches!(self, ReferralState::Refused | ReferralState::Closed)
    }

    /// The snake_case name, for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            ReferralState::Drafted => "drafted",
            ReferralState::Approved => "approved",
            ReferralState::Refused => "refused",
            ReferralState::Transferred => "transferred",
            ReferralState::Received => "received",
            ReferralState::Forwarded => "forwarded",
            ReferralState::Registered => "registered",
            ReferralState::Declined => "declined",
            ReferralState::ReconsiderationRequested => "reconsideration_requested",
            ReferralState::DeclineUpheld => "decline_upheld",
            ReferralState::SupervisionRequested => "supervision_requested",
            ReferralState::Closed => "closed",
        }
    }

    /// The wire enum.
    pub fn to_proto(self) -> v1::ReferralState {
        match self {
            ReferralState::Drafted => v1::ReferralState::Drafted,
            ReferralState::Approved => v1::ReferralState::Approved,
            ReferralState::Refused => v1::ReferralState::Refused,
            ReferralState::Transferred => v1::ReferralState::Transferred,
            ReferralState::Received => v1::ReferralState::Received,
            ReferralState::Forwarded => v1::ReferralState::Forwarded,
            ReferralState::Registered => v1::ReferralState::Registered,
            ReferralState::Declined => v1::ReferralState::Declined,
            ReferralState::ReconsiderationRequested => v1::ReferralState::ReconsiderationRequested,
            ReferralState::DeclineUpheld => v1::ReferralState::DeclineUpheld,
            ReferralState::SupervisionRequested => v1::ReferralState::SupervisionRequested,
            ReferralState::Closed => v1::ReferralState::Closed,
        }
    }

    /// From the wire enum; `None` for `UNSPECIFIED`.
    pub fn from_proto(state: v1::ReferralState) -> Option<ReferralState> {
        ReferralState::ALL
            .into_iter()
            .find(|s| s.to_proto() == state)
    }
}

impl fmt::Display for ReferralState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kinds of move, one per RPC of the `Referral` service that changes a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MoveKind {
    Draft,
    Approve,
    Refuse,
    Transfer,
    Receive,
    Forward,
    Register,
    Decline,
    RequestReconsideration,
    DecideReconsideration,
    RequestSupervision,
    Close,
}

impl MoveKind {
    /// Every move.
    pub const ALL: [MoveKind; 12] = [
        MoveKind::Draft,
        MoveKind::Approve,
        MoveKind::Refuse,
        MoveKind::Transfer,
        MoveKind::Receive,
        MoveKind::Forward,
        MoveKind::Register,
        MoveKind::Decline,
        MoveKind::RequestReconsideration,
        MoveKind::DecideReconsideration,
        MoveKind::RequestSupervision,
        MoveKind::Close,
    ];

    /// The RPC name.
    pub fn name(self) -> &'static str {
        match self {
            MoveKind::Draft => "Draft",
            MoveKind::Approve => "Approve",
            MoveKind::Refuse => "Refuse",
            MoveKind::Transfer => "Transfer",
            MoveKind::Receive => "Receive",
            MoveKind::Forward => "Forward",
            MoveKind::Register => "Register",
            MoveKind::Decline => "Decline",
            MoveKind::RequestReconsideration => "RequestReconsideration",
            MoveKind::DecideReconsideration => "DecideReconsideration",
            MoveKind::RequestSupervision => "RequestSupervision",
            MoveKind::Close => "Close",
        }
    }

    /// The kind of move an event's `action` records.
    pub fn of_action(action: &Action) -> MoveKind {
        match action {
            Action::Drafted(_) => MoveKind::Draft,
            Action::Approved(_) => MoveKind::Approve,
            Action::Refused(_) => MoveKind::Refuse,
            Action::Transferred(_) => MoveKind::Transfer,
            Action::Received(_) => MoveKind::Receive,
            Action::Forwarded(_) => MoveKind::Forward,
            Action::Registered(_) => MoveKind::Register,
            Action::Declined(_) => MoveKind::Decline,
            Action::ReconsiderationRequested(_) => MoveKind::RequestReconsideration,
            Action::ReconsiderationDecided(_) => MoveKind::DecideReconsideration,
            Action::SupervisionRequested(_) => MoveKind::RequestSupervision,
            Action::Closed(_) => MoveKind::Close,
        }
    }
}

impl fmt::Display for MoveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The caller's role, as far as referrals care (the service maps caselink-auth's token role onto it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorRole {
    /// The agency's case team 专案组 (token role `determiner`): drafts, transfers, asks reconsideration and
    /// supervision, closes after a final decline.
    MarketStaff,
    /// The agency's head 正职负责人: approves or refuses.
    AgencyHead,
    /// A police unit: receives, forwards, registers, declines, answers reconsideration, closes registered cases.
    Police,
    /// Joint-meeting staff: reads only.
    Analyst,
    /// Reads the audit trail only.
    Auditor,
}

impl ActorRole {
    /// Every role.
    pub const ALL: [ActorRole; 5] = [
        ActorRole::MarketStaff,
        ActorRole::AgencyHead,
        ActorRole::Police,
        ActorRole::Analyst,
        ActorRole::Auditor,
    ];

    /// From a caselink-auth token role name (`determiner`, `agency_head`, `police`, `analyst`, `auditor`). A
    /// department `writer` (a system submitting case events) makes no referral moves: `None`.
    pub fn from_token_role(name: &str) -> Option<ActorRole> {
        match name {
            "determiner" => Some(ActorRole::MarketStaff),
            "agency_head" => Some(ActorRole::AgencyHead),
            "police" => Some(ActorRole::Police),
            "analyst" => Some(ActorRole::Analyst),
            "auditor" => Some(ActorRole::Auditor),
            _ => None,
        }
    }

    /// The wire enum.
    pub fn to_proto(self) -> v1::ReferralRole {
        match self {
            ActorRole::MarketStaff => v1::ReferralRole::MarketStaff,
            ActorRole::AgencyHead => v1::ReferralRole::AgencyHead,
            ActorRole::Police => v1::ReferralRole::Police,
            ActorRole::Analyst => v1::ReferralRole::Analyst,
            ActorRole::Auditor => v1::ReferralRole::Auditor,
        }
    }

    /// From the wire enum; `None` for `UNSPECIFIED`.
    pub fn from_proto(role: v1::ReferralRole) -> Option<ActorRole> {
        ActorRole::ALL.into_iter().find(|r| r.to_proto() == role)
    }
}

/// Who is making a move (from the verified token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub role: ActorRole,
    /// Department code (`market`, `police`, …).
    pub department: String,
    /// Police: the unit code.
    pub unit: Option<String>,
    /// The token subject (staff id), recorded in the event.
    pub subject: String,
}

impl Actor {
    /// A case-team member of `department`.
    pub fn market_staff(department: &str, subject: &str) -> Actor {
        Actor {
            role: ActorRole::MarketStaff,
            department: department.to_owned(),
            unit: None,
            subject: subject.to_owned(),
        }
    }

    /// The head of `department`.
    pub fn agency_head(department: &str, subject: &str) -> Actor {
        Actor {
            role: ActorRole::AgencyHead,
            department: department.to_owned(),
            unit: None,
            subject: subject.to_owned(),
        }
    }

    /// An officer of police unit `unit`.
    pub fn police(unit: &str, subject: &str) -> Actor {
        Actor {
            role: ActorRole::Police,
            department: "police".to_owned(),
            unit: Some(unit.to_owned()),
            subject: subject.to_owned(),
        }
    }
}

/// Who may make a move in a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    /// Market staff of the drafting agency.
    CaseTeam,
    /// The head of the drafting agency.
    AgencyHead,
    /// The police unit the referral was last transferred or forwarded to.
    HoldingUnit,
}

impl Party {
    /// The role the party acts in.
    pub fn role(self) -> ActorRole {
        match self {
            Party::CaseTeam => ActorRole::MarketStaff,
            Party::AgencyHead => ActorRole::AgencyHead,
            Party::HoldingUnit => ActorRole::Police,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Party::CaseTeam => "the drafting agency's case team",
            Party::AgencyHead => "the drafting agency's head",
            Party::HoldingUnit => "the police unit the referral is with",
        }
    }
}

/// One edge of the state graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// `None`: the referral does not exist yet.
    pub from: Option<ReferralState>,
    pub kind: MoveKind,
    pub by: Party,
    pub to: ReferralState,
    /// The article of Order 310 the move rests on.
    pub basis: &'static str,
}

const fn edge(
    from: Option<ReferralState>,
    kind: MoveKind,
    by: Party,
    to: ReferralState,
    basis: &'static str,
) -> Transition {
    Transition {
        from,
        kind,
        by,
        to,
        basis,
    }
}

/// The state graph (the table in the module docs). A `(from, kind)` pair has one party; `DecideReconsideration` has two
/// rows because its target depends on the answer.
pub const TRANSITIONS: &[Transition] = &[
    edge(
        None,
        K::Draft,
        P::CaseTeam,
        S::Drafted,
        "Order 310 art. 5(1)",
    ),
    edge(
        Some(S::Drafted),
        K::Approve,
        P::AgencyHead,
        S::Approved,
        "Order 310 art. 5(2)",
    ),
    edge(
        Some(S::Drafted),
        K::Refuse,
        P::AgencyHead,
        S::Refused,
        "Order 310 art. 5(2)",
    ),
    edge(
        Some(S::Approved),
        K::Transfer,
        P::CaseTeam,
        S::Transferred,
        "Order 310 art. 5(2), 6",
    ),
    edge(
        Some(S::Transferred),
        K::Receive,
        P::HoldingUnit,
        S::Received,
        "Order 310 art. 7",
    ),
    edge(
        Some(S::Forwarded),
        K::Receive,
        P::HoldingUnit,
        S::Received,
        "Order 310 art. 7",
    ),
    edge(
        Some(S::Received),
        K::Forward,
        P::HoldingUnit,
        S::Forwarded,
        "Order 310 art. 7",
    ),
    edge(
        Some(S::Received),
        K::Register,
        P::HoldingUnit,
        S::Registered,
        "Order 310 art. 8",
    ),
    edge(
        Some(S::Received),
        K::Decline,
        P::HoldingUnit,
        S::Declined,
        "Order 310 art. 8",
    ),
    edge(
        Some(S::Declined),
        K::RequestReconsideration,
        P::CaseTeam,
        S::ReconsiderationRequested,
        "Order 310 art. 9(1)",
    ),
    edge(
        Some(S::Declined),
        K::RequestSupervision,
        P::CaseTeam,
        S::SupervisionRequested,
        "Order 310 art. 9(1)",
    ),
    edge(
        Some(S::Declined),
        K::Close,
        P::CaseTeam,
        S::Closed,
        "Order 310 art. 10",
    ),
    edge(
        Some(S::ReconsiderationRequested),
        K::DecideReconsideration,
        P::HoldingUnit,
        S::Registered,
        "Order 310 art. 9(2)",
    ),
    edge(
        Some(S::ReconsiderationRequested),
        K::DecideReconsideration,
        P::HoldingUnit,
        S::DeclineUpheld,
        "Order 310 art. 9(2)",
    ),
    edge(
        Some(S::DeclineUpheld),
        K::RequestSupervision,
        P::CaseTeam,
        S::SupervisionRequested,
        "Order 310 art. 9(2)",
    ),
    edge(
        Some(S::DeclineUpheld),
        K::Close,
        P::CaseTeam,
        S::Closed,
        "Order 310 art. 10",
    ),
    edge(
        Some(S::SupervisionRequested),
        K::Register,
        P::HoldingUnit,
        S::Registered,
        "Order 310 art. 9(3)",
    ),
    edge(
        Some(S::SupervisionRequested),
        K::Close,
        P::CaseTeam,
        S::Closed,
        "Order 310 art. 10",
    ),
    edge(
        Some(S::Registered),
        K::Close,
        P::HoldingUnit,
        S::Closed,
        "Order 310 art. 8, 13",
    ),
];

/// The edge for `kind` from `from`, if the graph has one.
pub fn transition(from: Option<ReferralState>, kind: MoveKind) -> Option<&'static Transition> {
    TRANSITIONS
        .iter()
        .find(|t| t.from == from && t.kind == kind)
}

/// The moves allowed in `from` (to someone).
pub fn allowed_moves(from: Option<ReferralState>) -> impl Iterator<Item = MoveKind> {
    let mut kinds: Vec<MoveKind> = TRANSITIONS
        .iter()
        .filter(|t| t.from == from)
        .map(|t| t.kind)
        .collect();
    kinds.dedup();
    kinds.into_iter()
}

// ---------------------------------------------------------------------------------------------------------------------
// clocks

/// What a clock's due instant means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockKind {
    /// The party must move before it; after it the referral is overdue (the move is still accepted, late).
    Duty,
    /// The party may make `limits` only before it; after it that move is refused and the referral is overdue until
    /// the party takes one of the remaining moves (close, or supervision).
    Window { limits: MoveKind },
    /// Applies only in some cases (forward when not the unit's jurisdiction); shown, never makes the referral overdue.
    Conditional,
}

/// What starts a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockStart {
    /// The event that entered the current state.
    StateEntered,
    /// The transfer or forward that handed the referral to the current police unit.
    HandedOver,
}

/// A statutory clock of a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub state: ReferralState,
    pub period: Period,
    pub starts: ClockStart,
    pub kind: ClockKind,
    /// Who must (or may) act.
    pub party: Party,
    /// What must happen, in words.
    pub duty: &'static str,
    /// The article, with the words that set the period.
    pub basis: &'static str,
}

/// Every state's clocks (the table in the module docs). The first non-conditional clock of a state is its due clock.
pub const CLOCKS: &[Clock] = &[
    Clock {
        state: S::Drafted,
        period: Period::Days(3),
        starts: ClockStart::StateEntered,
        kind: ClockKind::Duty,
        party: P::AgencyHead,
        duty: "approve or refuse the transfer",
        // 正职负责人或者主持工作的负责人应当自接到报告之日起3日内作出批准移送或者不批准移送的决定
        basis: "Order 310 art. 5(2)",
    },
    Clock {
        state: S::Approved,
        period: Period::Hours(24),
        starts: ClockStart::StateEntered,
        kind: ClockKind::Duty,
        party: P::CaseTeam,
        duty: "transfer the case to the police",
        // 决定批准的，应当在24小时内向同级公安机关移送
        basis: "Order 310 art. 5(2)",
    },
    Clock {
        state: S::Transferred,
        period: Period::Days(3),
        starts: ClockStart::HandedOver,
        kind: ClockKind::Duty,
        party: P::HoldingUnit,
        duty: "sign the receipt, then register or decline",
        // 公安机关应当自接受行政执法机关移送的涉嫌犯罪案件之日起3日内……进行审查
        basis: "Order 310 art. 7, 8",
    },
    Clock {
        state: S::Received,
        period: Period::Days(3),
        starts: ClockStart::HandedOver,
        kind: ClockKind::Duty,
        party: P::HoldingUnit,
        duty: "register or decline",
        basis: "Order 310 art. 8",
    },
    Clock {
        state: S::Received,
        period: Period::Hours(24),
        starts: ClockStart::StateEntered,
        kind: ClockKind::Conditional,
        party: P::HoldingUnit,
        duty: "forward to the competent unit if not this unit's jurisdiction",
        // 不属于本机关管辖的，应当在24小时内转送有管辖权的机关，并书面告知移送案件的行政执法机关
        basis: "Order 310 art. 7",
    },
    Clock {
        state: S::Forwarded,
        period: Period::Days(3),
        starts: ClockStart::HandedOver,
        kind: ClockKind::Duty,
        party: P::HoldingUnit,
        duty: "sign the receipt, then register or decline",
        basis: "Order 310 art. 7, 8",
    },
    Clock {
        state: S::Declined,
        period: Period::Days(3),
        starts: ClockStart::StateEntered,
        kind: ClockKind::Window {
            limits: K::RequestReconsideration,
        },
        party: P::CaseTeam,
        duty: "ask the police to reconsider, or ask the procuratorate for supervision, or close",
        // 可以自接到不予立案通知书之日起3日内，提请作出不予立案决定的公安机关复议，也可以建议人民检察院依法进行立案监督
        basis: "Order 310 art. 9(1)",
    },
    Clock {
        state: S::ReconsiderationRequested,
        period: Period::Days(3),
        starts: ClockStart::StateEntered,
        kind: ClockKind::Duty,
        party: P::HoldingUnit,
        duty: "answer the reconsideration: register or uphold the decline",
        // 应当自收到行政执法机关提请复议的文件之日起3日内作出立案或者不予立案的决定
        basis: "Order 310 art. 9(2)",
    },
    Clock {
        state: S::DeclineUpheld,
        period: Period::Days(3),
        starts: ClockStart::StateEntered,
        kind: ClockKind::Window {
            limits: K::RequestSupervision,
        },
        party: P::CaseTeam,
        duty: "ask the procuratorate for supervision, or close",
        // 对公安机关不予立案的复议决定仍有异议的，应当自收到复议决定通知书之日起3日内建议人民检察院依法进行立案监督
        basis: "Order 310 art. 9(2)",
    },
];

/// A running clock of a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub clock: &'static Clock,
    pub started_at: OffsetDateTime,
    /// When it runs out (China time): a move at or after it is late.
    pub due_at: OffsetDateTime,
}

impl Deadline {
    /// Whether it has run out at `now`.
    pub fn has_passed(&self, now: OffsetDateTime) -> bool {
        now >= self.due_at
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// commands and errors

/// A requested move with its documents (the payload of the move's request).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Draft(ReferralDrafted),
    Approve(ReferralApproved),
    Refuse(ReferralRefused),
    Transfer(ReferralTransferred),
    Receive(ReferralReceived),
    Forward(ReferralForwarded),
    Register(ReferralRegistered),
    Decline(ReferralDeclined),
    RequestReconsideration(ReferralReconsiderationRequested),
    DecideReconsideration(ReferralReconsiderationDecided),
    RequestSupervision(ReferralSupervisionRequested),
    Close(ReferralClosed),
}

impl Command {
    /// Which move.
    pub fn kind(&self) -> MoveKind {
        match self {
            Command::Draft(_) => K::Draft,
            Command::Approve(_) => K::Approve,
            Command::Refuse(_) => K::Refuse,
            Command::Transfer(_) => K::Transfer,
            Command::Receive(_) => K::Receive,
            Command::Forward(_) => K::Forward,
            Command::Register(_) => K::Register,
            Command::Decline(_) => K::Decline,
            Command::RequestReconsideration(_) => K::RequestReconsideration,
            Command::DecideReconsideration(_) => K::DecideReconsideration,
            Command::RequestSupervision(_) => K::RequestSupervision,
            Command::Close(_) => K::Close,
        }
    }

    /// The event's `action` recording this move.
    pub fn to_action(&self) -> Action {
        match self.clone() {
            Command::Draft(m) => Action::Drafted(m),
            Command::Approve(m) => Action::Approved(m),
            Command::Refuse(m) => Action::Refused(m),
            Command::Transfer(m) => Action::Transferred(m),
            Command::Receive(m) => Action::Received(m),
            Command::Forward(m) => Action::Forwarded(m),
            Command::Register(m) => Action::Registered(m),
            Command::Decline(m) => Action::Declined(m),
            Command::RequestReconsideration(m) => Action::ReconsiderationRequested(m),
            Command::DecideReconsideration(m) => Action::ReconsiderationDecided(m),
            Command::RequestSupervision(m) => Action::SupervisionRequested(m),
            Command::Close(m) => Action::Closed(m),
        }
    }

    /// The command an event's `action` records.
    pub fn from_action(action: &Action) -> Command {
        match action.clone() {
            Action::Drafted(m) => Command::Draft(m),
            Action::Approved(m) => Command::Approve(m),
            Action::Refused(m) => Command::Refuse(m),
            Action::Transferred(m) => Command::Transfer(m),
            Action::Received(m) => Command::Receive(m),
            Action::Forwarded(m) => Command::Forward(m),
            Action::Registered(m) => Command::Register(m),
            Action::Declined(m) => Command::Decline(m),
            Action::ReconsiderationRequested(m) => Command::RequestReconsideration(m),
            Action::ReconsiderationDecided(m) => Command::DecideReconsideration(m),
            Action::SupervisionRequested(m) => Command::RequestSupervision(m),
            Action::Closed(m) => Command::Close(m),
        }
    }
}

/// Why a move is refused. [`MoveError::code`] is the gRPC status code it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    /// `NOT_FOUND`: a move on a referral that was never drafted.
    #[error("referral {referral_id} not found")]
    NotFound { referral_id: String },
    /// `ALREADY_EXISTS`: a draft under an id already used.
    #[error("referral {referral_id} already exists")]
    AlreadyExists { referral_id: String },
    /// `ABORTED`: the caller's view is stale (someone else moved first); reread and retry.
    #[error("stale expected_version {expected}: the referral is at version {actual}")]
    StaleVersion { expected: u64, actual: u64 },
    /// `FAILED_PRECONDITION`: the graph has no such move from the current state.
    #[error("{kind} is not allowed when the referral is {}", state.map_or("not yet drafted", ReferralState::name))]
    NotAllowedInState {
        state: Option<ReferralState>,
        kind: MoveKind,
    },
    /// `FAILED_PRECONDITION`: the window for this move has closed.
    #[error("{kind} is no longer allowed: its window ({basis}) closed at {due_at}")]
    WindowClosed {
        kind: MoveKind,
        due_at: OffsetDateTime,
        basis: &'static str,
    },
    /// `PERMISSION_DENIED`: the caller's role, agency or unit may not make this move.
    #[error("{kind} is not permitted to this caller: {why}")]
    NotPermitted { kind: MoveKind, why: String },
    /// `INVALID_ARGUMENT`: a document is missing or malformed; `field` is its path in the request.
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    /// `FAILED_PRECONDITION`: a deadline could not be computed (e.g. the holiday calendar lacks the year).
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

impl MoveError {
    /// The gRPC status code (the service's one mapping calls this).
    pub fn code(&self) -> tonic::Code {
        match self {
            MoveError::NotFound { .. } => tonic::Code::NotFound,
            MoveError::AlreadyExists { .. } => tonic::Code::AlreadyExists,
            MoveError::StaleVersion { .. } => tonic::Code::Aborted,
            MoveError::NotAllowedInState { .. }
            | MoveError::WindowClosed { .. }
            | MoveError::Calendar(_) => tonic::Code::FailedPrecondition,
            MoveError::NotPermitted { .. } => tonic::Code::PermissionDenied,
            MoveError::Invalid { .. } => tonic::Code::InvalidArgument,
        }
    }
}

/// The optimistic-concurrency check: `expected` must be the current version (0 when the referral does not exist).
///
/// The service calls it before [`decide`], and publishes the event with `Nats-Expected-Last-Subject-Sequence` set to
/// the stream sequence of the referral's event number `expected` (0 for a new referral), so a race between two
/// callers that both pass this check is still decided by the bus: one append wins, the other is `ABORTED`.
pub fn check_expected_version(current: Option<&Referral>, expected: u64) -> Result<(), MoveError> {
    let actual = current.map_or(0, |r| r.version);
    if actual == expected {
        Ok(())
    } else {
        Err(MoveError::StaleVersion { expected, actual })
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// the aggregate

/// A referral as folded from its events.
#[derive(Debug, Clone, PartialEq)]
pub struct Referral {
    pub id: String,
    pub state: ReferralState,
    /// Number of events applied.
    pub version: u64,
    /// The drafting agency's department code.
    pub agency: String,
    pub region_code: String,
    pub case_ref: String,
    pub person_keys: Vec<String>,
    pub evidence_event_ids: Vec<String>,
    pub offence: v1::Offence,
    /// The police unit it was last transferred or forwarded to.
    pub police_unit: Option<String>,
    pub outcome: Option<v1::ReferralOutcome>,
    pub drafted_at: OffsetDateTime,
    /// When the current state was entered.
    pub entered_at: OffsetDateTime,
    /// When it was handed to the current police unit.
    pub handed_over_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
    /// Every event, oldest first.
    pub history: Vec<ReferralEvent>,
}

impl Referral {
    fn new(id: &str, at: OffsetDateTime) -> Referral {
        Referral {
            id: id.to_owned(),
            state: ReferralState::Drafted,
            version: 0,
            agency: String::new(),
            region_code: String::new(),
            case_ref: String::new(),
            person_keys: Vec::new(),
            evidence_event_ids: Vec::new(),
            offence: v1::Offence::Unspecified,
            police_unit: None,
            outcome: None,
            drafted_at: at,
            entered_at: at,
            handed_over_at: None,
            updated_at: at,
            history: Vec::new(),
        }
    }

    /// The clocks of the current state (see [`CLOCKS`]).
    pub fn clocks(&self) -> impl Iterator<Item = &'static Clock> + '_ {
        CLOCKS.iter().filter(move |c| c.state == self.state)
    }

    fn deadline_of(
        &self,
        clock: &'static Clock,
        calendar: &HolidayCalendar,
    ) -> Result<Deadline, CalendarError> {
        let started_at = match clock.starts {
            ClockStart::StateEntered => self.entered_at,
            ClockStart::HandedOver => self.handed_over_at.unwrap_or(self.entered_at),
        };
        Ok(Deadline {
            clock,
            started_at,
            due_at: deadline(calendar, started_at, clock.period)?,
        })
    }

    /// Every running clock of the current state with its due instant.
    pub fn deadlines(&self, calendar: &HolidayCalendar) -> Result<Vec<Deadline>, CalendarError> {
        self.clocks()
            .map(|c| self.deadline_of(c, calendar))
            .collect()
    }

    /// The current state's due clock (its duty or window), `None` when the state has none.
    pub fn due(&self, calendar: &HolidayCalendar) -> Result<Option<Deadline>, CalendarError> {
        self.clocks()
            .find(|c| c.kind != ClockKind::Conditional)
            .map(|c| self.deadline_of(c, calendar))
            .transpose()
    }

    /// Whether the current state's due clock has run out at `now`.
    pub fn is_overdue(
        &self,
        calendar: &HolidayCalendar,
        now: OffsetDateTime,
    ) -> Result<bool, CalendarError> {
        Ok(self.due(calendar)?.is_some_and(|d| d.has_passed(now)))
    }

    /// The wire view at `now`; `with_history` includes every event (Get) or none (List).
    pub fn to_view(
        &self,
        calendar: &HolidayCalendar,
        now: OffsetDateTime,
        with_history: bool,
    ) -> Result<ReferralView, CalendarError> {
        let due = self.due(calendar)?;
        Ok(ReferralView {
            referral_id: self.id.clone(),
            state: self.state.to_proto().into(),
            version: self.version,
            agency: self.agency.clone(),
            region_code: self.region_code.clone(),
            police_unit: self.police_unit.clone().unwrap_or_default(),
            due_at: due.map(|d| timestamp(d.due_at)),
            overdue: due.is_some_and(|d| d.has_passed(now)),
            due_basis: due.map(|d| d.clock.basis.to_owned()).unwrap_or_default(),
            person_keys: self.person_keys.clone(),
            evidence_event_ids: self.evidence_event_ids.clone(),
            offence: self.offence.into(),
            outcome: self
                .outcome
                .unwrap_or(v1::ReferralOutcome::Unspecified)
                .into(),
            drafted_at: Some(timestamp(self.drafted_at)),
            updated_at: Some(timestamp(self.updated_at)),
            history: if with_history {
                self.history.clone()
            } else {
                Vec::new()
            },
        })
    }
}

/// The state an event's move leads to.
pub fn target_state(action: &Action) -> ReferralState {
    match action {
        Action::Drafted(_) => S::Drafted,
        Action::Approved(_) => S::Approved,
        Action::Refused(_) => S::Refused,
        Action::Transferred(_) => S::Transferred,
        Action::Received(_) => S::Received,
        Action::Forwarded(_) => S::Forwarded,
        Action::Registered(_) => S::Registered,
        Action::Declined(_) => S::Declined,
        Action::ReconsiderationRequested(_) => S::ReconsiderationRequested,
        Action::ReconsiderationDecided(d) if d.register => S::Registered,
        Action::ReconsiderationDecided(_) => S::DeclineUpheld,
        Action::SupervisionRequested(_) => S::SupervisionRequested,
        Action::Closed(_) => S::Closed,
    }
}

/// The police unit an event hands the referral to (a transfer or a forward): a new lead for that unit.
pub fn lead_unit(event: &ReferralEvent) -> Option<&str> {
    match &event.action {
        Some(Action::Transferred(t)) => Some(&t.police_unit),
        Some(Action::Forwarded(f)) => Some(&f.to_police_unit),
        _ => None,
    }
}

/// Folds one event into the state. Total: events are facts already decided, so every event applies; an event
/// without a move (from a newer writer) only counts towards the version and the history.
pub fn evolve(current: Option<Referral>, event: &ReferralEvent) -> Referral {
    let at = event.occurred_at.as_ref().and_then(from_timestamp);
    let mut r = current.unwrap_or_else(|| {
        Referral::new(&event.referral_id, at.unwrap_or(OffsetDateTime::UNIX_EPOCH))
    });
    let at = at.unwrap_or(r.updated_at);
    r.version += 1;
    r.updated_at = at;
    r.history.push(event.clone());
    let Some(action) = &event.action else {
        return r;
    };
    r.state = target_state(action);
    r.entered_at = at;
    match action {
        Action::Drafted(d) => {
            r.agency = event.actor_department.clone();
            r.region_code = d.region_code.clone();
            r.case_ref = d.case_ref.clone();
            r.person_keys = d.person_keys.clone();
            r.evidence_event_ids = d.evidence_event_ids.clone();
            r.offence = d.offence();
            r.drafted_at = at;
        }
        Action::Transferred(t) => {
            r.police_unit = Some(t.police_unit.clone());
            r.handed_over_at = Some(at);
        }
        Action::Forwarded(f) => {
            r.police_unit = Some(f.to_police_unit.clone());
            r.handed_over_at = Some(at);
        }
        Action::Registered(reg) if reg.offence() != v1::Offence::Unspecified => {
            r.offence = reg.offence();
        }
        Action::Closed(c) => r.outcome = Some(c.outcome()),
        _ => {}
    }
    r
}

/// Folds a whole history; `None` for an empty one.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a ReferralEvent>) -> Option<Referral> {
    events
        .into_iter()
        .fold(None, |state, event| Some(evolve(state, event)))
}

/// Judges a move: the event recording it, or why it is refused. Pure: `now` and the calendar come from the caller.
///
/// Checks, in order: the referral exists (or, for a draft, does not); the caller's role ever makes this move
/// (`PERMISSION_DENIED`); the graph allows it from the current state (`FAILED_PRECONDITION`); the caller is the party
/// of that edge, i.e. the same agency or the unit holding the referral (`PERMISSION_DENIED`); the documents
/// (`INVALID_ARGUMENT`); a closed window (`FAILED_PRECONDITION`). The expected version is the service's check
/// ([`check_expected_version`]), made before this.
pub fn decide(
    referral_id: &str,
    current: Option<&Referral>,
    command: &Command,
    actor: &Actor,
    now: OffsetDateTime,
    calendar: &HolidayCalendar,
) -> Result<ReferralEvent, MoveError> {
    let kind = command.kind();
    code_field("referral_id", referral_id)?;
    let state = match (current, kind) {
        (None, K::Draft) => None,
        (None, _) => {
            return Err(MoveError::NotFound {
                referral_id: referral_id.to_owned(),
            })
        }
        (Some(_), K::Draft) => {
            return Err(MoveError::AlreadyExists {
                referral_id: referral_id.to_owned(),
            })
        }
        (Some(r), _) if r.id != referral_id => {
            return Err(invalid("referral_id", "does not match the referral given"));
        }
        (Some(r), _) => Some(r.state),
    };
    if actor.subject.trim().is_empty() {
        return Err(MoveError::NotPermitted {
            kind,
            why: "the caller has no subject".to_owned(),
        });
    }
    if !TRANSITIONS
        .iter()
        .any(|t| t.kind == kind && t.by.role() == actor.role)
    {
        let mut parties: Vec<&str> = TRANSITIONS
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.by.describe())
            .collect();
        parties.dedup();
        return Err(MoveError::NotPermitted {
            kind,
            why: format!("only {} may make it", parties.join(" or ")),
        });
    }
    let edge = transition(state, kind).ok_or(MoveError::NotAllowedInState { state, kind })?;
    check_party(edge.by, kind, current, actor)?;
    validate(command, current, edge.by)?;
    if let Some(r) = current {
        for clock in r.clocks() {
            if clock.kind == (ClockKind::Window { limits: kind }) {
                let due = r.deadline_of(clock, calendar)?;
                if due.has_passed(now) {
                    return Err(MoveError::WindowClosed {
                        kind,
                        due_at: due.due_at,
                        basis: clock.basis,
                    });
                }
            }
        }
    }
    Ok(ReferralEvent {
        referral_id: referral_id.to_owned(),
        version: current.map_or(0, |r| r.version) + 1,
        occurred_at: Some(timestamp(now)),
        actor_subject: actor.subject.clone(),
        actor_role: actor.role.to_proto().into(),
        actor_department: actor.department.clone(),
        actor_unit: actor.unit.clone().unwrap_or_default(),
        action: Some(command.to_action()),
    })
}

fn check_party(
    party: Party,
    kind: MoveKind,
    current: Option<&Referral>,
    actor: &Actor,
) -> Result<(), MoveError> {
    let denied = |why: String| Err(MoveError::NotPermitted { kind, why });
    if actor.role != party.role() {
        return denied(format!(
            "in this state only {} may make it",
            party.describe()
        ));
    }
    match party {
        Party::CaseTeam | Party::AgencyHead => {
            if actor.department.trim().is_empty() {
                return denied("the caller has no department".to_owned());
            }
            if let Some(r) = current {
                if r.agency != actor.department {
                    return denied(format!(
                        "the referral belongs to agency {}, the caller is of {}",
                        r.agency, actor.department
                    ));
                }
            }
            Ok(())
        }
        Party::HoldingUnit => {
            let holding = current.and_then(|r| r.police_unit.as_deref());
            match (actor.unit.as_deref(), holding) {
                (Some(unit), Some(holding)) if unit == holding => Ok(()),
                (None, _) => denied("the caller has no police unit".to_owned()),
                (Some(unit), _) => denied(format!("the referral is not with police unit {unit}")),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// documents

fn invalid(field: impl Into<String>, why: impl Into<String>) -> MoveError {
    MoveError::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

/// Free text: required or not, at most [`MAX_TEXT_BYTES`].
fn text(field: &str, value: &str, required: bool) -> Result<(), MoveError> {
    if required && value.trim().is_empty() {
        return Err(invalid(field, "required"));
    }
    if value.len() > MAX_TEXT_BYTES {
        return Err(invalid(
            field,
            format!("longer than {MAX_TEXT_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A list of at least `min` entries, at most [`MAX_ITEMS`], each checked by `each`.
fn list<T>(
    field: &str,
    items: &[T],
    min: usize,
    each: impl Fn(&str, &T) -> Result<(), MoveError>,
) -> Result<(), MoveError> {
    if items.len() < min {
        return Err(invalid(field, format!("at least {min} required")));
    }
    if items.len() > MAX_ITEMS {
        return Err(invalid(field, format!("more than {MAX_ITEMS} entries")));
    }
    for (i, item) in items.iter().enumerate() {
        each(&format!("{field}[{i}]"), item)?;
    }
    Ok(())
}

/// A code that becomes a NATS subject token: 1..=64 of `A-Z a-z 0-9 - _`.
fn code_field(field: &str, value: &str) -> Result<(), MoveError> {
    if value.is_empty() {
        return Err(invalid(field, "required"));
    }
    if value.len() > MAX_CODE_LEN
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            field,
            format!("must be 1 to {MAX_CODE_LEN} characters of A-Z, a-z, 0-9, '-' and '_'"),
        ));
    }
    Ok(())
}

/// A person key: lowercase hex HMAC-SHA-256 (64 characters). Never a clear ID number.
fn person_key(field: &str, value: &str) -> Result<(), MoveError> {
    if value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(invalid(
            field,
            "not a person key (64 lowercase hex characters)",
        ))
    }
}

/// A case event id: a UUID in its hyphenated form.
fn event_id(field: &str, value: &str) -> Result<(), MoveError> {
    let b = value.as_bytes();
    let shaped = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if shaped {
        Ok(())
    } else {
        Err(invalid(field, "not a case event id (a UUID)"))
    }
}

fn required_text(field: &str, value: &str) -> Result<(), MoveError> {
    text(field, value, true)
}

fn validate(command: &Command, current: Option<&Referral>, by: Party) -> Result<(), MoveError> {
    match command {
        Command::Draft(d) => {
            text("drafted.case_report", &d.case_report, true)?;
            list(
                "drafted.evidence_list",
                &d.evidence_list,
                1,
                |f, v: &String| required_text(f, v),
            )?;
            list("drafted.person_keys", &d.person_keys, 1, |f, v: &String| {
                person_key(f, v)
            })?;
            list(
                "drafted.evidence_event_ids",
                &d.evidence_event_ids,
                0,
                |f, v: &String| event_id(f, v),
            )?;
            if d.region_code.len() != 6 || !d.region_code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    "drafted.region_code",
                    "must be a 6-digit administrative division code",
                ));
            }
            text("drafted.case_ref", &d.case_ref, false)
        }
        Command::Approve(a) => text("approved.note", &a.note, false),
        Command::Refuse(r) => text("refused.reason", &r.reason, true),
        Command::Transfer(t) => {
            code_field("transferred.police_unit", &t.police_unit)?;
            text("transferred.transfer_letter", &t.transfer_letter, true)?;
            text(
                "transferred.investigation_report",
                &t.investigation_report,
                true,
            )?;
            list(
                "transferred.seized_items",
                &t.seized_items,
                0,
                |field, item: &SeizedItem| {
                    text(&format!("{field}.description"), &item.description, true)?;
                    text(&format!("{field}.custody"), &item.custody, false)?;
                    if item.quantity == 0 {
                        return Err(invalid(format!("{field}.quantity"), "must be at least 1"));
                    }
                    Ok(())
                },
            )?;
            list(
                "transferred.inspection_results",
                &t.inspection_results,
                0,
                |f, v: &String| required_text(f, v),
            )?;
            list(
                "transferred.other_materials",
                &t.other_materials,
                0,
                |f, v: &String| required_text(f, v),
            )
        }
        Command::Receive(r) => text("received.receipt", &r.receipt, false),
        Command::Forward(f) => {
            code_field("forwarded.to_police_unit", &f.to_police_unit)?;
            if current.and_then(|r| r.police_unit.as_deref()) == Some(f.to_police_unit.as_str()) {
                return Err(invalid(
                    "forwarded.to_police_unit",
                    "is the forwarding unit itself",
                ));
            }
            text("forwarded.reason", &f.reason, true)
        }
        Command::Register(r) => {
            text("registered.police_case_ref", &r.police_case_ref, false)?;
            text("registered.note", &r.note, false)
        }
        Command::Decline(d) => {
            match d.reason() {
                v1::CaseDeclineReason::Unspecified => return Err(invalid("declined.reason", "required")),
                v1::CaseDeclineReason::NotJurisdiction => {
                    return Err(invalid(
                        "declined.reason",
                        "not this unit's jurisdiction: forward it to the competent unit instead (Order 310 art. 7)",
                    ))
                }
                _ => {}
            }
            text("declined.detail", &d.detail, true)
        }
        Command::RequestReconsideration(r) => {
            text("reconsideration_requested.grounds", &r.grounds, true)
        }
        Command::DecideReconsideration(d) => {
            text("reconsideration_decided.reasons", &d.reasons, true)?;
            text(
                "reconsideration_decided.police_case_ref",
                &d.police_case_ref,
                false,
            )
        }
        Command::RequestSupervision(s) => {
            text(
                "supervision_requested.procuratorate",
                &s.procuratorate,
                false,
            )?;
            text("supervision_requested.grounds", &s.grounds, true)
        }
        Command::Close(c) => {
            match (c.outcome(), by) {
                (v1::ReferralOutcome::Unspecified, _) => return Err(invalid("closed.outcome", "required")),
                (v1::ReferralOutcome::CriminalCase | v1::ReferralOutcome::SecurityPenalty, Party::CaseTeam) => {
                    return Err(invalid(
                        "closed.outcome",
                        "the agency closes an unregistered referral only as returned for administrative handling or other",
                    ))
                }
                _ => {}
            }
            text("closed.detail", &c.detail, true)
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// time on the wire

/// An instant as a protobuf `Timestamp`.
pub fn timestamp(at: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).expect("nanoseconds are below 10^9"),
    }
}

/// A protobuf `Timestamp` as an instant (UTC); `None` when out of range.
pub fn from_timestamp(ts: &Timestamp) -> Option<OffsetDateTime> {
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

#[cfg(test)]
mod tests;
