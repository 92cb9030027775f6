//! Criminal referral 行刑衔接 through the gRPC API: the happy path, illegal moves and their codes, concurrent moves,
//! overdue alerts on an injected clock, a police unit's live leads across a reconnect, unit isolation, and police moves
//! in the person's timeline. (The exhaustive state × move table and the deadline tables are unit-tested in
//! `caselink-workflow`.)

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use caselink_auth::Role;
use caselink_domain::{ManualClock, SystemClock};
use caselink_e2e::*;
use caselink_proto::v1::referral_client::ReferralClient;
use caselink_proto::v1::*;
use tokio_stream::StreamExt;
use tonic::Code;

type Client = ReferralClient<Authed>;

const UNIT_A: &str = "gaj-430602";
const UNIT_B: &str = "gaj-430603";

struct Parties {
    staff: Client,
    head: Client,
    police_a: Client,
    police_b: Client,
    analyst: Client,
}

async fn parties(c: &Cluster) -> Parties {
    Parties {
        staff: c
            .referral_client(|k| {
                k.role = Role::Determiner;
                k.sub = "staff-1".into();
                k.department = Some("market".into());
                k.regions = vec!["43".into()];
            })
            .await,
        head: c
            .referral_client(|k| {
                k.role = Role::AgencyHead;
                k.sub = "head-1".into();
                k.department = Some("market".into());
                k.regions = Vec::new();
            })
            .await,
        police_a: police(c, UNIT_A).await,
        police_b: police(c, UNIT_B).await,
        analyst: c
            .referral_client(|k| {
                k.role = Role::Analyst;
                k.department = None;
                k.regions = Vec::new();
            })
            .await,
    }
}

async fn police(c: &Cluster, unit: &str) -> Client {
    c.referral_client(|k| {
        k.role = Role::Police;
        k.sub = format!("officer-{unit}");
        k.department = None;
        k.regions = Vec::new();
        k.unit = Some(unit.into());
    })
    .await
}

fn person_key() -> String {
    "ab".repeat(32)
}

fn drafted(person_keys: Vec<String>) -> ReferralDrafted {
    ReferralDrafted {
        case_report: "以夹带过期商品方式敲诈经营者，涉嫌敲诈勒索".into(),
        evidence_list: vec!["购物小票".into(), "监控录像".into()],
        person_keys,
        region_code: "430602".into(),
        offence: Offence::Planting as i32,
        case_ref: "岳市监(2025)12号".into(),
        ..Default::default()
    }
}

fn transferred(unit: &str) -> ReferralTransferred {
    ReferralTransferred {
        police_unit: unit.into(),
        transfer_letter: "岳市监移〔2025〕3号".into(),
        investigation_report: "调查报告".into(),
        ..Default::default()
    }
}

fn version_of(r: &Result<tonic::Response<ReferralMoveResponse>, tonic::Status>) -> u64 {
    r.as_ref()
        .unwrap()
        .get_ref()
        .referral
        .as_ref()
        .unwrap()
        .version
}

fn state_of(r: &ReferralMoveResponse) -> ReferralState {
    r.referral.as_ref().unwrap().state()
}

fn code<T>(r: Result<T, tonic::Status>) -> Code {
    r.err().map_or(Code::Ok, |s| s.code())
}

/// Drafts, approves and transfers `id` to `unit`; returns the version (3).
async fn to_transferred(p: &mut Parties, id: &str, keys: Vec<String>, unit: &str) -> u64 {
    let r = p
        .staff
        .draft(DraftReferralRequest {
            referral_id: id.into(),
            expected_version: 0,
            drafted: Some(drafted(keys)),
        })
        .await;
    let v = version_of(&r);
    let r = p
        .head
        .approve(ApproveReferralRequest {
            referral_id: id.into(),
            expected_version: v,
            approved: Some(ReferralApproved::default()),
        })
        .await;
    let v = version_of(&r);
    let r = p
        .staff
        .transfer(TransferReferralRequest {
            referral_id: id.into(),
            expected_version: v,
            transferred: Some(transferred(unit)),
        })
        .await;
    version_of(&r)
}

async fn receive(
    p: &mut Client,
    id: &str,
    v: u64,
) -> Result<tonic::Response<ReferralMoveResponse>, tonic::Status> {
    p.receive(ReceiveReferralRequest {
        referral_id: id.into(),
        expected_version: v,
        received: Some(ReferralReceived {
            receipt: "回执 1".into(),
        }),
    })
    .await
}

#[tokio::test]
async fn the_happy_path_ends_closed_with_full_history_and_the_police_moves_in_the_timeline() {
    let mut c = Cluster::start().await;
    let id_number = id_number("19850312", 123);
    c.submit_market(vec![complaint("MK-1", &id_number, T2025)])
        .await
        .unwrap();
    let timeline = c.timeline_with(&id_number, 1).await;
    let key = timeline.person_key.clone();
    let mut p = parties(&c).await;

    let draft = p
        .staff
        .draft(DraftReferralRequest {
            referral_id: "ref-happy".into(),
            expected_version: 0,
            drafted: Some(drafted(vec![key.clone()])),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&draft), ReferralState::Drafted);
    assert_eq!(draft.event.as_ref().unwrap().version, 1);
    let view = draft.referral.unwrap();
    assert_eq!((view.version, view.agency.as_str()), (1, "market"));
    assert!(view.due_at.is_some(), "the head's 3 days run");
    assert_eq!(view.due_basis, "Order 310 art. 5(2)");

    let approved = p
        .head
        .approve(ApproveReferralRequest {
            referral_id: "ref-happy".into(),
            expected_version: 1,
            approved: Some(ReferralApproved {
                note: "同意".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&approved), ReferralState::Approved);
    let moved = p
        .staff
        .transfer(TransferReferralRequest {
            referral_id: "ref-happy".into(),
            expected_version: 2,
            transferred: Some(transferred(UNIT_A)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&moved), ReferralState::Transferred);
    assert_eq!(moved.referral.as_ref().unwrap().police_unit, UNIT_A);
    let received = receive(&mut p.police_a, "ref-happy", 3)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&received), ReferralState::Received);
    let registered = p
        .police_a
        .register(RegisterReferralRequest {
            referral_id: "ref-happy".into(),
            expected_version: 4,
            registered: Some(ReferralRegistered {
                police_case_ref: "岳公刑立字〔2025〕88号".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&registered), ReferralState::Registered);
    let closed = p
        .police_a
        .close(CloseReferralRequest {
            referral_id: "ref-happy".into(),
            expected_version: 5,
            closed: Some(ReferralClosed {
                outcome: ReferralOutcome::CriminalCase as i32,
                detail: "移送审查起诉".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&closed), ReferralState::Closed);

    let view = p
        .analyst
        .get(GetReferralRequest {
            referral_id: "ref-happy".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.state(), ReferralState::Closed);
    assert_eq!(view.outcome(), ReferralOutcome::CriminalCase);
    assert_eq!(view.version, 6);
    assert!(view.due_at.is_none() && !view.overdue);
    assert_eq!(
        view.history.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(view.history[3].actor_unit, UNIT_A);
    assert_eq!(view.history[1].actor_subject, "head-1");

    // The police moves in the person's timeline, as police case events.
    let timeline = c.timeline_with(&id_number, 4).await;
    let kinds: Vec<&str> = timeline.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "complaint.received",
            "lead.received",
            "case.registered",
            "case.closed"
        ]
    );

    // List: by state and unit, with the projection caught up.
    let mut listed = Vec::new();
    for _ in 0..200 {
        listed = p
            .analyst
            .list(ListReferralsRequest {
                states: vec![ReferralState::Closed as i32],
                police_unit: UNIT_A.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .referrals;
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed.len(), 1);
    assert!(listed[0].history.is_empty(), "List leaves history to Get");

    // The joint view of the person shows the referral as it stands.
    let person = c
        .linkage
        .get_person_view(GetPersonViewRequest {
            person: by_id(&id_number),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(person.referrals.len(), 1, "{:?}", person.referrals);
    assert_eq!(person.referrals[0].referral_id, listed[0].referral_id);
    assert_eq!(person.referrals[0].state, ReferralState::Closed as i32);
    assert!(person.referrals[0].history.is_empty());
}

#[tokio::test]
async fn illegal_moves_get_the_right_codes() {
    let c = Cluster::start().await;
    let mut p = parties(&c).await;
    let keys = vec![person_key()];
    let r = p
        .staff
        .draft(DraftReferralRequest {
            referral_id: "ref-x".into(),
            expected_version: 0,
            drafted: Some(drafted(keys.clone())),
        })
        .await;
    assert_eq!(version_of(&r), 1);

    // Stale version: ABORTED.
    let stale = p
        .head
        .approve(ApproveReferralRequest {
            referral_id: "ref-x".into(),
            expected_version: 0,
            approved: Some(ReferralApproved::default()),
        })
        .await;
    assert_eq!(code(stale), Code::Aborted);
    // A second draft under the same id.
    let again = p
        .staff
        .draft(DraftReferralRequest {
            referral_id: "ref-x".into(),
            expected_version: 0,
            drafted: Some(drafted(keys.clone())),
        })
        .await;
    assert_eq!(code(again), Code::Aborted);
    // Not allowed in the state: FAILED_PRECONDITION.
    let early = p
        .staff
        .transfer(TransferReferralRequest {
            referral_id: "ref-x".into(),
            expected_version: 1,
            transferred: Some(transferred(UNIT_A)),
        })
        .await;
    assert_eq!(code(early), Code::FailedPrecondition);
    let register = p
        .police_a
        .register(RegisterReferralRequest {
            referral_id: "ref-x".into(),
            expected_version: 1,
            registered: Some(ReferralRegistered::default()),
        })
        .await;
    assert_eq!(code(register), Code::FailedPrecondition);
    // Wrong role (at the door) and wrong agency (in the handler): PERMISSION_DENIED.
    let by_staff = p
        .staff
        .approve(ApproveReferralRequest {
            referral_id: "ref-x".into(),
            expected_version: 1,
            approved: Some(ReferralApproved::default()),
        })
        .await;
    assert_eq!(code(by_staff), Code::PermissionDenied);
    let mut other_head = c
        .referral_client(|k| {
            k.role = Role::AgencyHead;
            k.department = Some("justice".into());
        })
        .await;
    let other = other_head
        .approve(ApproveReferralRequest {
            referral_id: "ref-x".into(),
            expected_version: 1,
            approved: Some(ReferralApproved::default()),
        })
        .await;
    assert_eq!(code(other), Code::PermissionDenied);
    // A missing document: INVALID_ARGUMENT naming the field.
    let refuse = p
        .head
        .refuse(RefuseReferralRequest {
            referral_id: "ref-x".into(),
            expected_version: 1,
            refused: Some(ReferralRefused::default()),
        })
        .await
        .unwrap_err();
    assert_eq!(refuse.code(), Code::InvalidArgument);
    assert!(
        refuse.message().contains("refused.reason"),
        "{}",
        refuse.message()
    );
    let no_document = p
        .head
        .approve(ApproveReferralRequest {
            referral_id: "ref-x".into(),
            expected_version: 1,
            approved: None,
        })
        .await
        .unwrap_err();
    assert_eq!(no_document.code(), Code::InvalidArgument);
    assert!(no_document.message().contains("approved"));
    let bad_id = p
        .head
        .approve(ApproveReferralRequest {
            referral_id: "ref.*".into(),
            expected_version: 1,
            approved: Some(ReferralApproved::default()),
        })
        .await;
    assert_eq!(code(bad_id), Code::InvalidArgument);
    // Unknown referral: NOT_FOUND.
    let missing = p
        .head
        .approve(ApproveReferralRequest {
            referral_id: "ref-none".into(),
            expected_version: 0,
            approved: Some(ReferralApproved::default()),
        })
        .await;
    assert_eq!(code(missing), Code::NotFound);

    // Each move is on the audit trail with the code its caller received and, refused, the message it received.
    let audited = c.audited("/caselink.v1.Referral/").await;
    let of = |method: &str| -> Vec<(&str, &str)> {
        audited
            .iter()
            .filter(|(m, _, _)| m == method)
            .map(|(_, outcome, detail)| (outcome.as_str(), detail.as_str()))
            .collect()
    };
    assert_eq!(of("Draft")[0], ("OK", ""), "{audited:?}");
    assert_eq!(of("Draft")[1].0, "ABORTED", "{audited:?}");
    assert!(!of("Draft")[1].1.is_empty(), "{audited:?}");
    assert!(
        of("Refuse").contains(&("INVALID_ARGUMENT", refuse.message())),
        "{audited:?}"
    );
    let approvals: Vec<&str> = of("Approve").iter().map(|(o, _)| *o).collect();
    assert_eq!(
        approvals,
        [
            "ABORTED",
            "PERMISSION_DENIED",
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "NOT_FOUND"
        ],
        "{audited:?}"
    );
    assert_eq!(of("Transfer")[0].0, "FAILED_PRECONDITION", "{audited:?}");

    // Transferred to unit A: unit B may neither receive nor see it.
    let v = to_transferred(&mut p, "ref-y", keys.clone(), UNIT_A).await;
    assert_eq!(
        code(receive(&mut p.police_b, "ref-y", v).await),
        Code::PermissionDenied
    );
    let get_b = p
        .police_b
        .get(GetReferralRequest {
            referral_id: "ref-y".into(),
        })
        .await;
    assert_eq!(code(get_b), Code::PermissionDenied);
    let list_b = p
        .police_b
        .list(ListReferralsRequest {
            police_unit: UNIT_A.into(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(list_b), Code::PermissionDenied);
    let get_a = p
        .police_a
        .get(GetReferralRequest {
            referral_id: "ref-y".into(),
        })
        .await;
    assert_eq!(code(get_a), Code::Ok);

    // The decline path: reconsideration upheld, supervision, closed by the agency.
    let v = version_of(&receive(&mut p.police_a, "ref-y", v).await);
    let declined = p
        .police_a
        .decline(DeclineReferralRequest {
            referral_id: "ref-y".into(),
            expected_version: v,
            declined: Some(ReferralDeclined {
                reason: CaseDeclineReason::InsufficientEvidence as i32,
                detail: "证据不足".into(),
            }),
        })
        .await;
    let v = version_of(&declined);
    let asked = p
        .staff
        .request_reconsideration(RequestReconsiderationRequest {
            referral_id: "ref-y".into(),
            expected_version: v,
            reconsideration_requested: Some(ReferralReconsiderationRequested {
                grounds: "已补充证据".into(),
            }),
        })
        .await;
    let v = version_of(&asked);
    let upheld = p
        .police_a
        .decide_reconsideration(DecideReconsiderationRequest {
            referral_id: "ref-y".into(),
            expected_version: v,
            reconsideration_decided: Some(ReferralReconsiderationDecided {
                register: false,
                reasons: "维持不予立案".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&upheld), ReferralState::DeclineUpheld);
    // The police may not close an unregistered referral; the agency may.
    let police_close = p
        .police_a
        .close(CloseReferralRequest {
            referral_id: "ref-y".into(),
            expected_version: v + 1,
            closed: Some(ReferralClosed {
                outcome: ReferralOutcome::ReturnedForAdministrativeHandling as i32,
                detail: "退回".into(),
            }),
        })
        .await;
    assert_eq!(code(police_close), Code::PermissionDenied);
    let supervision = p
        .staff
        .request_supervision(RequestSupervisionRequest {
            referral_id: "ref-y".into(),
            expected_version: v + 1,
            supervision_requested: Some(ReferralSupervisionRequested {
                procuratorate: "岳阳楼区人民检察院".into(),
                grounds: "应当立案".into(),
            }),
        })
        .await;
    let v = version_of(&supervision);
    let closed = p
        .staff
        .close(CloseReferralRequest {
            referral_id: "ref-y".into(),
            expected_version: v,
            closed: Some(ReferralClosed {
                outcome: ReferralOutcome::ReturnedForAdministrativeHandling as i32,
                detail: "依法作行政处理".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&closed), ReferralState::Closed);
    // Nothing moves a closed referral.
    let after = p
        .staff
        .request_supervision(RequestSupervisionRequest {
            referral_id: "ref-y".into(),
            expected_version: v + 1,
            supervision_requested: Some(ReferralSupervisionRequested {
                procuratorate: String::new(),
                grounds: "再次".into(),
            }),
        })
        .await;
    assert_eq!(code(after), Code::FailedPrecondition);
}

#[tokio::test]
async fn concurrent_moves_from_one_version_have_exactly_one_winner() {
    let c = Cluster::start().await;
    let mut p = parties(&c).await;
    let v = to_transferred(&mut p, "ref-race", vec![person_key()], UNIT_A).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut officer = c
            .referral_client(|k| {
                k.role = Role::Police;
                k.sub = format!("officer-{i}");
                k.department = None;
                k.unit = Some(UNIT_A.into());
            })
            .await;
        tasks.push(tokio::spawn(async move {
            code(receive(&mut officer, "ref-race", v).await)
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(
        codes.iter().filter(|c| **c == Code::Ok).count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes.iter().all(|c| matches!(c, Code::Ok | Code::Aborted)),
        "{codes:?}"
    );
    let view = p
        .analyst
        .get(GetReferralRequest {
            referral_id: "ref-race".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.version, v + 1, "exactly one receipt stored");
}

#[tokio::test]
async fn an_overdue_referral_raises_one_alert_on_the_injected_clock() {
    // Monday 2025-03-03 10:00 China time: the head's 3 days end with Thursday 2025-03-06.
    let start = UNIX_EPOCH + Duration::from_secs(1_740_967_200);
    let clock = Arc::new(ManualClock::new(start));
    let mut c = Cluster::start_ingest_only(Arc::new(SystemClock)).await;
    c.start_linkage_with_clock(clock.clone()).await;
    let mut p = parties(&c).await;
    let nats = async_nats::connect(c.nats.url()).await.unwrap();
    let mut alerts = nats.subscribe("caselink.overdue.>").await.unwrap();
    let r = p
        .staff
        .draft(DraftReferralRequest {
            referral_id: "ref-late".into(),
            expected_version: 0,
            drafted: Some(drafted(vec![person_key()])),
        })
        .await;
    assert_eq!(version_of(&r), 1);
    let overdue = |p: &mut Parties| {
        let mut analyst = p.analyst.clone();
        async move {
            analyst
                .list(ListReferralsRequest {
                    overdue_only: true,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .referrals
        }
    };
    // Not yet due: nothing overdue, no alert.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(overdue(&mut p).await.is_empty());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), alerts.next())
            .await
            .is_err(),
        "no alert before the deadline"
    );

    clock.advance(Duration::from_secs(4 * 86_400));
    let alert = tokio::time::timeout(Duration::from_secs(10), alerts.next())
        .await
        .expect("an overdue alert")
        .unwrap();
    assert_eq!(alert.subject.as_str(), "caselink.overdue.43.4306.430602");
    let view = <ReferralView as prost::Message>::decode(alert.payload.as_ref()).unwrap();
    assert_eq!(
        (view.referral_id.as_str(), view.state(), view.overdue),
        ("ref-late", ReferralState::Drafted, true)
    );
    let listed = overdue(&mut p).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].overdue);
    // Raised once, though the scan keeps running.
    assert!(
        tokio::time::timeout(Duration::from_millis(800), alerts.next())
            .await
            .is_err(),
        "the alert is raised once"
    );
}

/// Reads `n` leads (or fails after 20 s).
async fn leads(stream: &mut tonic::Streaming<Lead>, n: usize) -> Vec<Lead> {
    let mut out = Vec::new();
    while out.len() < n {
        let lead = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("a lead in time")
            .expect("the stream is open")
            .expect("a lead");
        out.push(lead);
    }
    out
}

fn describe(lead: &Lead) -> (String, u64) {
    let e = lead.event.as_ref().unwrap();
    (e.referral_id.clone(), e.version)
}

#[tokio::test]
async fn watch_leads_resumes_after_a_reconnect_without_loss_or_duplicates_and_only_for_its_unit() {
    let c = Cluster::start().await;
    let mut p = parties(&c).await;
    let mut stream = p
        .police_a
        .watch_leads(WatchLeadsRequest {
            police_unit: UNIT_A.into(),
            cursor: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let v1 = to_transferred(&mut p, "lead-1", vec![person_key()], UNIT_A).await;
    let first = leads(&mut stream, 1).await;
    assert_eq!(describe(&first[0]), ("lead-1".into(), 3));
    assert_eq!(
        first[0].referral.as_ref().unwrap().state(),
        ReferralState::Transferred
    );
    let cursor = first[0].cursor;
    assert!(cursor > 0);
    drop(stream);

    // While disconnected: unit A receives lead-1; lead-2 goes to unit B; lead-3 to unit A and is forwarded to B.
    receive(&mut p.police_a, "lead-1", v1).await.unwrap();
    to_transferred(&mut p, "lead-2", vec![person_key()], UNIT_B).await;
    let v3 = to_transferred(&mut p, "lead-3", vec![person_key()], UNIT_A).await;
    let v3 = version_of(&receive(&mut p.police_a, "lead-3", v3).await);
    p.police_a
        .forward(ForwardReferralRequest {
            referral_id: "lead-3".into(),
            expected_version: v3,
            forwarded: Some(ReferralForwarded {
                to_police_unit: UNIT_B.into(),
                reason: "不属本单位管辖".into(),
            }),
        })
        .await
        .unwrap();
    // After the forward, unit B's receipt of lead-3 is no longer unit A's business.
    receive(&mut p.police_b, "lead-3", v3 + 1).await.unwrap();

    let mut resumed = p
        .police_a
        .watch_leads(WatchLeadsRequest {
            police_unit: UNIT_A.into(),
            cursor,
        })
        .await
        .unwrap()
        .into_inner();
    let got = leads(&mut resumed, 4).await;
    assert_eq!(
        got.iter().map(describe).collect::<Vec<_>>(),
        [
            ("lead-1".into(), 4),
            ("lead-3".into(), 3),
            ("lead-3".into(), 4),
            ("lead-3".into(), 5),
        ]
    );
    assert!(got.windows(2).all(|w| w[0].cursor < w[1].cursor));
    assert!(got[0].cursor > cursor, "nothing seen twice");
    assert!(
        tokio::time::timeout(Duration::from_millis(800), resumed.next())
            .await
            .is_err(),
        "nothing of unit B's"
    );

    // Unit B from the beginning: lead-2's transfer and lead-3's forward and receipt, nothing of lead-1.
    let mut b = p
        .police_b
        .watch_leads(WatchLeadsRequest {
            police_unit: UNIT_B.into(),
            cursor: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let got = leads(&mut b, 3).await;
    assert_eq!(
        got.iter().map(describe).collect::<Vec<_>>(),
        [
            ("lead-2".into(), 3),
            ("lead-3".into(), 5),
            ("lead-3".into(), 6)
        ]
    );

    // Nobody watches another unit's leads.
    let other = p
        .police_b
        .watch_leads(WatchLeadsRequest {
            police_unit: UNIT_A.into(),
            cursor: 0,
        })
        .await;
    assert_eq!(code(other), Code::PermissionDenied);
    let analyst = p
        .analyst
        .watch_leads(WatchLeadsRequest {
            police_unit: UNIT_A.into(),
            cursor: 0,
        })
        .await;
    assert_eq!(code(analyst), Code::PermissionDenied);
}
