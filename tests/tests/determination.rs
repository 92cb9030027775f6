//! Determination and the abnormal list through the gRPC API: a screened person confirmed, looked up by every
//! department, listed with what the guideline lists, shown in the joint view and the flagged list, revoked, cleared and
//! reopened by new evidence; bad requests naming their field; two determiners at once; a rebuild from the stream; an
//! entry's period ending on an injected clock. (The state × move table is unit-tested in `caselink-workflow`.)

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use caselink_auth::Role;
use caselink_domain::{ManualClock, SystemClock};
use caselink_e2e::*;
use caselink_proto::v1::determination_client::DeterminationClient;
use caselink_proto::v1::*;
use caselink_proto::Timestamp;
use tonic::Code;

type Client = DeterminationClient<Authed>;

async fn determiner(c: &Cluster, sub: &str, regions: &[&str]) -> Client {
    c.determination_client(|k| {
        k.role = Role::Determiner;
        k.sub = sub.into();
        k.department = Some("market".into());
        k.regions = regions.iter().map(|r| r.to_string()).collect();
    })
    .await
}

async fn analyst(c: &Cluster) -> Client {
    c.determination_client(|k| {
        k.role = Role::Analyst;
        k.department = None;
        k.regions = Vec::new();
    })
    .await
}

/// A writer of the police department: it may only ask whether someone is listed.
async fn police_writer(c: &Cluster) -> Client {
    c.determination_client(|k| k.department = Some("police".into()))
        .await
}

/// A person with an R5 flag (two discipline reports found untrue); returns the ID number and the flag.
async fn flagged_person(c: &mut Cluster, sequence: u16) -> (String, Flag) {
    let id = id_number("19800101", sequence);
    c.submit_market(vec![
        discipline_report(&format!("JW-{sequence}-1"), &id, T2025, true),
        discipline_report(&format!("JW-{sequence}-2"), &id, T2025 + DAY, true),
    ])
    .await
    .unwrap();
    let view = view_with_flag(c, &id, "R5", 2).await;
    let flag = view.flags.into_iter().find(|f| f.rule == "R5").unwrap();
    (id, flag)
}

fn confirm_r5(id: &str, expected_version: u64) -> ConfirmRequest {
    ConfirmRequest {
        person: by_id(id),
        expected_version,
        rules: vec!["R5".into()],
        basis: "两次向纪检监察机关举报工作人员，经查均不属实".into(),
        region_code: "430602".into(),
        ..ConfirmRequest::default()
    }
}

fn code<T>(r: Result<T, tonic::Status>) -> Code {
    r.err().map_or(Code::Ok, |s| s.code())
}

/// Polls `Check` until it answers `listed`.
async fn check_until(client: &mut Client, id: &str, listed: bool) -> CheckResponse {
    let mut last = None;
    for _ in 0..400 {
        let answer = client
            .check(CheckRequest { person: by_id(id) })
            .await
            .unwrap()
            .into_inner();
        if answer.listed == listed {
            return answer;
        }
        last = Some(answer);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("Check never answered listed = {listed}: {last:?}");
}

/// Polls the joint view until the flag of `rule` has `status`.
async fn view_with_status(c: &mut Cluster, id: &str, rule: &str, status: FlagStatus) -> PersonView {
    let mut last = None;
    for _ in 0..400 {
        let view = c
            .linkage
            .get_person_view(GetPersonViewRequest { person: by_id(id) })
            .await
            .unwrap()
            .into_inner();
        if view
            .flags
            .iter()
            .any(|f| f.rule == rule && f.status() == status)
        {
            return view;
        }
        last = Some(view);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no {rule} flag of status {status:?}: {last:#?}");
}

async fn flagged_with_status(c: &mut Cluster, status: FlagStatus) -> Vec<String> {
    c.linkage
        .list_flagged(ListFlaggedRequest {
            status: status as i32,
            ..ListFlaggedRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .persons
        .into_iter()
        .map(|p| p.person_key)
        .collect()
}

#[tokio::test]
async fn a_confirmed_person_is_listed_looked_up_and_shown_until_revoked_then_cleared() {
    let mut c = Cluster::start().await;
    let (id, flag) = flagged_person(&mut c, 301).await;
    let mut staff = determiner(&c, "staff-1", &["4306"]).await;
    let mut writer = police_writer(&c).await;
    let mut joint = analyst(&c).await;
    assert!(!check_until(&mut writer, &id, false).await.listed);

    // Confirm: the rule with its clause, the flag's evidence, a year on the list.
    let moved = staff
        .confirm(confirm_r5(&id, 0))
        .await
        .unwrap()
        .into_inner();
    let view = moved.determination.unwrap();
    assert_eq!(view.state(), DeterminationState::Confirmed);
    assert_eq!(view.version, 1);
    assert_eq!(view.decided_by, "staff-1");
    assert_eq!(
        view.flags,
        [DeterminedFlag {
            rule: "R5".into(),
            clause: "三(五)".into(),
            revision: flag.revision,
        }]
    );
    assert_eq!(view.evidence_event_ids, flag.evidence_event_ids);
    let year = view.expires_at.unwrap().seconds - view.decided_at.unwrap().seconds;
    assert_eq!(year, 365 * DAY);
    assert_eq!(view.history.len(), 1);
    let person_key = view.person_key.clone();

    // A second confirmation from the same version loses; from the new one the state refuses it.
    assert_eq!(code(staff.confirm(confirm_r5(&id, 0)).await), Code::Aborted);
    let again = staff.confirm(confirm_r5(&id, 1)).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(
        again.message().contains("already listed"),
        "{}",
        again.message()
    );
    // On the audit trail: the code each caller received, a refusal's message, and what a check answered.
    let audited = c.audited("/caselink.v1.Determination/").await;
    let confirms: Vec<(&str, &str)> = audited
        .iter()
        .filter(|(method, _, _)| method == "Confirm")
        .map(|(_, outcome, detail)| (outcome.as_str(), detail.as_str()))
        .collect();
    assert_eq!(confirms.len(), 3, "{audited:?}");
    assert_eq!(confirms[0], ("OK", ""));
    assert_eq!(confirms[1].0, "ABORTED");
    assert_eq!(confirms[2], ("FAILED_PRECONDITION", again.message()));
    assert!(
        audited.contains(&("Check".into(), "OK".into(), "not listed".into())),
        "{audited:?}"
    );

    // Every department's handling learns yes or no; joint-meeting staff also see the clause and until when.
    let answer = check_until(&mut writer, &id, true).await;
    assert!(answer.clauses.is_empty() && answer.listed_until.is_none());
    let answer = check_until(&mut joint, &id, true).await;
    assert_eq!(answer.clauses, ["三(五)"]);
    assert_eq!(answer.listed_until, view.expires_at);
    assert!(
        c.audited("/caselink.v1.Determination/").await.contains(&(
            "Check".into(),
            "OK".into(),
            "listed".into()
        )),
        "a check's answer is on the audit trail"
    );

    // The list: what the guideline lists, in clear for the determiner, masked for the analyst.
    let list = staff
        .list_abnormal(ListAbnormalRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.entries.len(), 1);
    let entry = &list.entries[0];
    assert_eq!(entry.person_key, person_key);
    assert_eq!(entry.region_code, "430602");
    let clear = entry.clear_identity.as_ref().unwrap();
    assert_eq!(clear.id_number, id);
    assert_eq!(clear.name, "张三");
    assert!(!clear.phone.is_empty() && !clear.address.is_empty());
    assert_eq!(entry.figures.as_ref().unwrap().discipline_reports, 2);
    assert_eq!(entry.basis, "两次向纪检监察机关举报工作人员，经查均不属实");
    let masked = joint
        .list_abnormal(ListAbnormalRequest {
            region_prefix: "43".into(),
            ..ListAbnormalRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(masked.entries[0].clear_identity.is_none());
    assert!(masked.entries[0]
        .identity
        .as_ref()
        .unwrap()
        .id_number_masked
        .contains('*'));
    let elsewhere = joint
        .list_abnormal(ListAbnormalRequest {
            region_prefix: "11".into(),
            ..ListAbnormalRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(elsewhere.entries.is_empty());

    // The joint view and the flagged list show the determination.
    let shown = view_with_status(&mut c, &id, "R5", FlagStatus::Confirmed).await;
    assert_eq!(
        shown.determination.as_ref().unwrap().state(),
        DeterminationState::Confirmed
    );
    assert!(shown.determination.unwrap().history.is_empty());
    assert_eq!(
        flagged_with_status(&mut c, FlagStatus::Confirmed).await,
        std::slice::from_ref(&person_key)
    );
    assert!(flagged_with_status(&mut c, FlagStatus::Open)
        .await
        .is_empty());

    // Revoked: off the list, the flag open again.
    let revoked = staff
        .revoke(RevokeRequest {
            person: by_id(&id),
            expected_version: 1,
            reason: "异议成立：举报事项部分属实".into(),
            region_code: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        revoked.determination.unwrap().state(),
        DeterminationState::Revoked
    );
    check_until(&mut writer, &id, false).await;
    view_with_status(&mut c, &id, "R5", FlagStatus::Open).await;
    let list = staff
        .list_abnormal(ListAbnormalRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(list.entries.is_empty());

    // Cleared: every open flag, at its revision.
    let cleared = staff
        .clear(ClearRequest {
            person: by_id(&id),
            expected_version: 2,
            rules: Vec::new(),
            reason: "经复核属正常维权".into(),
            region_code: "430600".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let view = cleared.determination.unwrap();
    assert_eq!(view.state(), DeterminationState::Cleared);
    assert_eq!(view.flags[0].rule, "R5");
    assert_eq!(view.history.len(), 3);
    view_with_status(&mut c, &id, "R5", FlagStatus::Cleared).await;
    assert_eq!(
        flagged_with_status(&mut c, FlagStatus::Cleared).await,
        std::slice::from_ref(&person_key)
    );
    // Nothing is left to clear.
    let nothing = staff
        .clear(ClearRequest {
            person: by_id(&id),
            expected_version: 3,
            reason: "再次复核".into(),
            region_code: "430602".into(),
            ..ClearRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(nothing.code(), Code::FailedPrecondition);

    // A third untrue report grows the flag: open again, awaiting a new determination.
    c.submit_market(vec![discipline_report(
        "JW-301-3",
        &id,
        T2025 + 2 * DAY,
        true,
    )])
    .await
    .unwrap();
    view_with_status(&mut c, &id, "R5", FlagStatus::Open).await;

    // Rebuilt from the stream, the determination is the same.
    c.stop_linkage().await;
    caselink_linkage::rebuild(c.linkage_options())
        .await
        .unwrap();
    c.start_linkage().await;
    let mut staff = determiner(&c, "staff-1", &["4306"]).await;
    let view = view_with_status(&mut c, &id, "R5", FlagStatus::Open).await;
    let determination = view.determination.unwrap();
    assert_eq!(determination.version, 3);
    assert_eq!(determination.state(), DeterminationState::Cleared);
    // And the next move continues from it.
    let moved = staff
        .confirm(confirm_r5(&id, 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.determination.unwrap().version, 4);
}

#[tokio::test]
async fn bad_requests_name_the_field_and_determiners_stay_in_their_regions() {
    let mut c = Cluster::start().await;
    let (id, _) = flagged_person(&mut c, 302).await;
    let timeline = c.timeline_with(&id, 2).await;
    let own_event = timeline.entries[0].event.as_ref().unwrap().event_id.clone();
    let mut staff = determiner(&c, "staff-1", &["4306"]).await;
    let invalid = |edit: fn(&mut ConfirmRequest)| {
        let mut request = confirm_r5(&id, 0);
        edit(&mut request);
        request
    };
    let cases: Vec<(ConfirmRequest, Code, &str)> = vec![
        (
            invalid(|r| r.rules = vec!["R5".into(), "C9".into()]),
            Code::InvalidArgument,
            "rules[1]",
        ),
        (invalid(|r| r.rules.clear()), Code::InvalidArgument, "rules"),
        (
            invalid(|r| r.basis = " ".into()),
            Code::InvalidArgument,
            "basis",
        ),
        (
            invalid(|r| r.region_code = "4306".into()),
            Code::InvalidArgument,
            "region_code",
        ),
        (
            invalid(|r| r.valid_days = 100_000),
            Code::InvalidArgument,
            "valid_days",
        ),
        (
            invalid(|r| r.evidence_event_ids = vec!["not-an-id".into()]),
            Code::InvalidArgument,
            "evidence_event_ids[0]",
        ),
        (
            invalid(|r| r.evidence_event_ids = vec!["6f1c1a52-8a7e-4f5e-9a57-2b1c3d4e5f60".into()]),
            Code::InvalidArgument,
            "not an event of this person",
        ),
        // No flag of R1 and no evidence named.
        (
            invalid(|r| r.rules = vec!["R1".into()]),
            Code::InvalidArgument,
            "no open flag of R1",
        ),
        (
            ConfirmRequest {
                person: None,
                ..confirm_r5(&id, 0)
            },
            Code::InvalidArgument,
            "person",
        ),
        // Outside the token's regions, or where the person has no records.
        (
            invalid(|r| r.region_code = "110101".into()),
            Code::PermissionDenied,
            "region_code",
        ),
    ];
    for (request, want, says) in cases {
        let status = staff.confirm(request.clone()).await.unwrap_err();
        assert_eq!(status.code(), want, "{request:?}: {status:?}");
        assert!(
            status.message().contains(says),
            "{says}: {}",
            status.message()
        );
    }
    let mut beijing = determiner(&c, "staff-bj", &["11"]).await;
    let status = beijing
        .confirm(ConfirmRequest {
            region_code: "110101".into(),
            ..confirm_r5(&id, 0)
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("no records in 110101"),
        "{}",
        status.message()
    );
    let status = beijing
        .list_abnormal(ListAbnormalRequest {
            region_prefix: "43".into(),
            ..ListAbnormalRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = staff
        .list_abnormal(ListAbnormalRequest {
            expiring_before: Some(Timestamp {
                seconds: 0,
                nanos: -1,
            }),
            ..ListAbnormalRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("expiring_before"),
        "{}",
        status.message()
    );
    // Nothing above was recorded: the first good move is version 1. A rule without a flag rests on named evidence.
    let moved = staff
        .confirm(ConfirmRequest {
            rules: vec!["R1".into()],
            evidence_event_ids: vec![own_event.clone()],
            valid_days: 30,
            ..confirm_r5(&id, 0)
        })
        .await
        .unwrap()
        .into_inner();
    let view = moved.determination.unwrap();
    assert_eq!(view.version, 1);
    assert_eq!(view.flags[0].clause, "三(一)");
    assert_eq!(view.flags[0].revision, 0);
    assert_eq!(view.evidence_event_ids, [own_event]);
    // The Beijing bureau cannot revoke what Yueyang decided.
    let status = beijing
        .revoke(RevokeRequest {
            person: by_id(&id),
            expected_version: 1,
            reason: "x".into(),
            region_code: "110101".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // A revocation needs its reason.
    let status = staff
        .revoke(RevokeRequest {
            person: by_id(&id),
            expected_version: 1,
            ..RevokeRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("reason"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn of_two_determiners_deciding_at_once_exactly_one_wins() {
    let mut c = Cluster::start().await;
    let (id, _) = flagged_person(&mut c, 303).await;
    let mut a = determiner(&c, "staff-a", &["4306"]).await;
    let mut b = determiner(&c, "staff-b", &["43"]).await;
    let clear = ClearRequest {
        person: by_id(&id),
        expected_version: 0,
        reason: "正常维权".into(),
        region_code: "430602".into(),
        ..ClearRequest::default()
    };
    let (ra, rb) = tokio::join!(a.confirm(confirm_r5(&id, 0)), b.clear(clear));
    let codes = [code(ra), code(rb)];
    assert!(
        codes.contains(&Code::Ok) && codes.contains(&Code::Aborted),
        "{codes:?}"
    );
}

#[tokio::test]
async fn an_entry_leaves_the_list_when_its_period_ends_on_the_injected_clock() {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let mut c = Cluster::start_ingest_only(Arc::new(SystemClock)).await;
    c.start_linkage_with_clock(clock.clone()).await;
    let (id, _) = flagged_person(&mut c, 304).await;
    let mut staff = determiner(&c, "staff-1", &["4306"]).await;
    let mut writer = police_writer(&c).await;
    let moved = staff
        .confirm(ConfirmRequest {
            valid_days: 30,
            ..confirm_r5(&id, 0)
        })
        .await
        .unwrap()
        .into_inner();
    let expires = moved.determination.unwrap().expires_at.unwrap();
    check_until(&mut writer, &id, true).await;
    // Entries to review before they lapse: this one ends within 31 days, not within 29.
    let expiring = |seconds: i64| ListAbnormalRequest {
        expiring_before: Some(Timestamp {
            seconds: expires.seconds + seconds,
            nanos: expires.nanos,
        }),
        ..ListAbnormalRequest::default()
    };
    let soon = staff.list_abnormal(expiring(1)).await.unwrap().into_inner();
    assert_eq!(soon.entries.len(), 1, "{soon:?}");
    assert_eq!(soon.entries[0].expires_at, Some(expires));
    let later = staff
        .list_abnormal(expiring(-86_400))
        .await
        .unwrap()
        .into_inner();
    assert!(later.entries.is_empty(), "{later:?}");

    // A day past the period: off the list, shown as expired only when asked for.
    clock.advance(Duration::from_secs(31 * 86_400));
    check_until(&mut writer, &id, false).await;
    let list = |include_expired| ListAbnormalRequest {
        include_expired,
        ..ListAbnormalRequest::default()
    };
    let listed = staff.list_abnormal(list(false)).await.unwrap().into_inner();
    assert!(listed.entries.is_empty(), "{listed:?}");
    let all = staff.list_abnormal(list(true)).await.unwrap().into_inner();
    assert_eq!(all.entries.len(), 1);
    assert_eq!(all.entries[0].state(), DeterminationState::Expired);
    assert_eq!(all.entries[0].expires_at, Some(expires));
    view_with_status(&mut c, &id, "R5", FlagStatus::Open).await;
    // An expired entry is not revoked; it may be confirmed for a new period.
    let status = staff
        .revoke(RevokeRequest {
            person: by_id(&id),
            expected_version: 1,
            reason: "已过期".into(),
            region_code: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("expired"), "{}", status.message());
    let again = staff
        .confirm(confirm_r5(&id, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.determination.unwrap().state(),
        DeterminationState::Confirmed
    );
    check_until(&mut writer, &id, true).await;
}
