//! The workflow stream against a real nats-server: expected-sequence appends give exactly one winner, a retried append
//! is recognised, and a referral's history reads back in order.

#![allow(clippy::unwrap_used)]

use caselink_bus::workflow::{append, history, last_sequence, AppendError};
use caselink_proto::v1::{
    referral_event::Action, ReferralApproved, ReferralEvent, ReferralRefused,
};
use caselink_testkit::NatsServer;

fn event(referral_id: &str, version: u64, action: Action) -> ReferralEvent {
    ReferralEvent {
        referral_id: referral_id.into(),
        version,
        actor_subject: format!("officer-{version}"),
        action: Some(action),
        ..Default::default()
    }
}

fn approve(note: &str) -> Action {
    Action::Approved(ReferralApproved { note: note.into() })
}

async fn jetstream(server: &NatsServer) -> async_nats::jetstream::Context {
    let client = async_nats::connect(server.url()).await.expect("connect");
    async_nats::jetstream::new(client)
}

#[tokio::test]
async fn first_append_needs_an_empty_subject_and_history_reads_back_in_order() {
    let server = NatsServer::start().expect("nats-server");
    let js = jetstream(&server).await;
    assert_eq!(last_sequence(&js, "r-1").await.unwrap(), 0);
    let s1 = append(&js, 0, &event("r-1", 1, approve("one")))
        .await
        .unwrap();
    let s2 = append(&js, s1, &event("r-1", 2, approve("two")))
        .await
        .unwrap();
    // Another referral's events do not move r-1's subject.
    append(&js, 0, &event("r-2", 1, approve("other")))
        .await
        .unwrap();
    assert!(matches!(
        append(&js, 0, &event("r-1", 1, approve("again, new"))).await,
        Err(AppendError::Conflict { expected: 0 })
    ));
    assert_eq!(last_sequence(&js, "r-1").await.unwrap(), s2);
    let events = history(&js, "r-1").await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|(s, e)| (*s, e.version))
            .collect::<Vec<_>>(),
        [(s1, 1), (s2, 2)]
    );
}

#[tokio::test]
async fn a_retried_append_is_recognised_and_a_rival_of_the_same_version_is_a_conflict() {
    let server = NatsServer::start().expect("nats-server");
    let js = jetstream(&server).await;
    let first = event("r-9", 1, approve("mine"));
    let s1 = append(&js, 0, &first).await.unwrap();
    // The same event again (a client retry after a lost answer): the same sequence, stored once.
    assert_eq!(append(&js, 0, &first).await.unwrap(), s1);
    // A different event claiming the same version: not stored.
    let rival = event(
        "r-9",
        1,
        Action::Refused(ReferralRefused {
            reason: "no".into(),
        }),
    );
    assert!(matches!(
        append(&js, 0, &rival).await,
        Err(AppendError::Conflict { .. })
    ));
    assert_eq!(history(&js, "r-9").await.unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_moves_from_one_version_have_exactly_one_winner() {
    let server = NatsServer::start().expect("nats-server");
    let js = jetstream(&server).await;
    let s1 = append(&js, 0, &event("race", 1, approve("draft")))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let js = js.clone();
        tasks.push(tokio::spawn(async move {
            append(&js, s1, &event("race", 2, approve(&format!("officer {i}")))).await
        }));
    }
    let mut won = 0;
    let mut lost = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(AppendError::Conflict { .. }) => lost += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((won, lost), (1, 15));
    assert_eq!(history(&js, "race").await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_stream_made_before_determinations_gains_their_subjects_and_keeps_its_referrals() {
    use caselink_bus::workflow::{
        append_determination, determination_history, ensure_workflow_stream,
        workflow_stream_config, WORKFLOW_STREAM,
    };
    let server = NatsServer::start().expect("nats-server");
    let js = jetstream(&server).await;
    // The stream as an older release made it: referral subjects only.
    let mut old = workflow_stream_config(1);
    old.subjects = vec!["caselink.referral.>".into()];
    js.create_stream(old).await.unwrap();
    let s1 = append(&js, 0, &event("r-1", 1, approve("one")))
        .await
        .unwrap();
    ensure_workflow_stream(&js, 1).await.unwrap();
    let info = js.get_stream(WORKFLOW_STREAM).await.unwrap();
    assert_eq!(
        info.cached_info().config.subjects,
        ["caselink.referral.>", "caselink.determination.>"]
    );
    assert!(info.cached_info().config.deny_purge, "other settings kept");
    let key = "ab".repeat(32);
    let determination = caselink_proto::v1::DeterminationEvent {
        person_key: key.clone(),
        version: 1,
        actor_subject: "staff-1".into(),
        ..Default::default()
    };
    let s2 = append_determination(&js, 0, &determination).await.unwrap();
    assert!(s2 > s1);
    assert_eq!(
        determination_history(&js, &key).await.unwrap(),
        [(s2, determination)]
    );
    assert_eq!(history(&js, "r-1").await.unwrap().len(), 1);
}
