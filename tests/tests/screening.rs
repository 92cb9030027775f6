//! Screening through the real pipeline: a rule fires on submitted events and the joint view explains it (rule, clause,
//! evidence), the flagged list finds the person, alerts arrive live and after a reconnect with the cursor without loss
//! or duplicates, and a rebuild gives identical flags.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use caselink_e2e::*;
use caselink_proto::v1::linkage_client::LinkageClient;
use caselink_proto::v1::*;
use futures::StreamExt;

async fn analyst_client(
    c: &Cluster,
) -> LinkageClient<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>>
{
    let token = c.token(|claims| {
        claims.role = caselink_auth::Role::Analyst;
        claims.department = None;
        claims.regions = Vec::new();
    });
    LinkageClient::with_interceptor(
        channel(&c.linkage_addr).await,
        Bearer::new(&token, Some(TEST_PURPOSE)),
    )
}

#[tokio::test]
async fn a_rule_fires_with_its_clause_and_evidence_and_the_flagged_list_finds_the_person() {
    let mut c = Cluster::start().await;
    let id = id_number("19800101", 55);
    // One untrue report is under the threshold (2): no flag.
    let first = c
        .submit_market(vec![discipline_report("JW-1", &id, T2025, true)])
        .await
        .unwrap();
    c.timeline_with(&id, 1).await;
    let view = c
        .linkage
        .get_person_view(GetPersonViewRequest { person: by_id(&id) })
        .await
        .unwrap()
        .into_inner();
    assert!(
        view.flags.iter().all(|f| f.rule != "R5"),
        "{:?}",
        view.flags
    );
    assert_eq!(view.figures.as_ref().unwrap().discipline_reports, 1);

    let second = c
        .submit_market(vec![discipline_report("JW-2", &id, T2025 + 30 * DAY, true)])
        .await
        .unwrap();
    let view = view_with_flag(&mut c, &id, "R5", 2).await;
    let flag = view.flags.iter().find(|f| f.rule == "R5").unwrap();
    assert_eq!(flag.clause, "三(五)");
    assert!(!flag.guideline.is_empty());
    assert_eq!(flag.status, FlagStatus::Open as i32);
    let mut evidence = flag.evidence_event_ids.clone();
    evidence.sort();
    let mut expected = vec![first[0].event_id.clone(), second[0].event_id.clone()];
    expected.sort();
    assert_eq!(evidence, expected, "the evidence is the two untrue reports");
    assert!(
        flag.figures
            .iter()
            .any(|f| f.value >= f.threshold && f.value == 2),
        "{:?}",
        flag.figures
    );
    // The view never carries the clear ID number for an analyst.
    assert!(view.clear_identity.is_none());
    assert!(view.identity.unwrap().id_number_masked.contains('*'));

    let listed = c
        .linkage
        .list_flagged(ListFlaggedRequest {
            region_prefix: "4306".into(),
            rule: "R5".into(),
            ..ListFlaggedRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.persons.len(), 1);
    assert_eq!(listed.persons[0].person_key, view.person_key);
    assert_eq!(listed.persons[0].region_code, "430602");
    let elsewhere = c
        .linkage
        .list_flagged(ListFlaggedRequest {
            region_prefix: "11".into(),
            ..ListFlaggedRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(elsewhere.persons.is_empty());
    let bad = c
        .linkage
        .list_flagged(ListFlaggedRequest {
            rule: "C9".into(),
            ..ListFlaggedRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().starts_with("rule:"), "{}", bad.message());
}

#[tokio::test]
async fn alerts_arrive_live_and_after_a_reconnect_with_the_cursor_without_loss_or_duplicates() {
    let mut c = Cluster::start().await;
    let id = id_number("19800101", 66);
    let mut watcher = analyst_client(&c).await;
    let mut live = watcher
        .watch_alerts(WatchAlertsRequest {
            region_prefix: "4306".into(),
            cursor: 0,
        })
        .await
        .unwrap()
        .into_inner();
    c.submit_market(vec![
        discipline_report("JW-1", &id, T2025, true),
        discipline_report("JW-2", &id, T2025 + DAY, true),
    ])
    .await
    .unwrap();
    let raised = tokio::time::timeout(Duration::from_secs(30), live.next())
        .await
        .expect("an alert within 30 s")
        .unwrap()
        .unwrap();
    assert_eq!(raised.kind, AlertKind::Raised as i32);
    assert_eq!(raised.flag.as_ref().unwrap().rule, "R5");
    assert_eq!(raised.region_code, "430602");
    assert!(raised.cursor > 0);
    drop(live);

    // While nobody watches, the flag grows twice: to 3 (not announced: growth is announced as the evidence doubles) and
    // to 4 (announced).
    c.submit_market(vec![discipline_report("JW-3", &id, T2025 + 2 * DAY, true)])
        .await
        .unwrap();
    c.submit_market(vec![discipline_report("JW-4", &id, T2025 + 3 * DAY, true)])
        .await
        .unwrap();
    view_with_flag(&mut c, &id, "R5", 4).await;

    let mut resumed = watcher
        .watch_alerts(WatchAlertsRequest {
            region_prefix: "4306".into(),
            cursor: raised.cursor,
        })
        .await
        .unwrap()
        .into_inner();
    let grew = tokio::time::timeout(Duration::from_secs(30), resumed.next())
        .await
        .expect("the missed alert after reconnecting")
        .unwrap()
        .unwrap();
    assert_eq!(grew.kind, AlertKind::Grew as i32);
    assert!(grew.cursor > raised.cursor);
    let flag = grew.flag.unwrap();
    assert_eq!(flag.evidence_total, 4);
    assert!(flag.revision > raised.flag.as_ref().unwrap().revision);
    // Nothing else: no duplicate of the raised alert or of the growths.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), resumed.next())
            .await
            .is_err(),
        "no further alerts"
    );
    // A watcher of another region hears nothing of 4306.
    let mut other = watcher
        .watch_alerts(WatchAlertsRequest {
            region_prefix: "11".into(),
            cursor: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), other.next())
            .await
            .is_err()
    );
    let bad = watcher
        .watch_alerts(WatchAlertsRequest {
            region_prefix: "43x".into(),
            cursor: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn rebuild_gives_identical_flags_and_announces_nothing_again() {
    let mut c = Cluster::start().await;
    let id = id_number("19800101", 77);
    c.submit_market(vec![
        discipline_report("JW-1", &id, T2025, true),
        discipline_report("JW-2", &id, T2025 + DAY, true),
        discipline_report("JW-3", &id, T2025 + 2 * DAY, false),
        complaint("MK-1", &id, T2025 + 3 * DAY),
    ])
    .await
    .unwrap();
    c.timeline_with(&id, 4).await;
    let before = view_with_flag(&mut c, &id, "R5", 2).await;
    c.stop_linkage().await;
    let folded = caselink_linkage::rebuild(c.linkage_options())
        .await
        .unwrap();
    assert_eq!(folded, 4);
    c.start_linkage().await;
    let after = view_with_flag(&mut c, &id, "R5", 2).await;
    assert_eq!(before.flags, after.flags);
    assert_eq!(before.figures, after.figures);
    assert_eq!(before.counts, after.counts);
    // The derived stream holds the one alert of the live fold, not a second from the rebuild.
    let client = async_nats::connect(c.nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(caselink_bus::derived::DERIVED_STREAM)
        .await
        .unwrap();
    let messages = stream.info().await.unwrap().state.messages;
    assert_eq!(messages, 1, "one alert: R5 raised once");
}

#[tokio::test]
async fn the_flagged_list_pages_without_overlap_or_loss() {
    let mut c = Cluster::start().await;
    let ids: Vec<String> = (0..3).map(|i| id_number("19800101", 80 + i)).collect();
    for (i, id) in ids.iter().enumerate() {
        c.submit_market(vec![
            discipline_report(&format!("JW-{i}-1"), id, T2025, true),
            discipline_report(&format!("JW-{i}-2"), id, T2025 + DAY, true),
        ])
        .await
        .unwrap();
    }
    for id in &ids {
        view_with_flag(&mut c, id, "R5", 2).await;
    }
    let mut seen = Vec::new();
    let mut request = ListFlaggedRequest {
        region_prefix: "43".into(),
        rule: "R5".into(),
        page_size: 2,
        ..ListFlaggedRequest::default()
    };
    let mut pages = 0;
    loop {
        let page = c
            .linkage
            .list_flagged(request.clone())
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.persons.len() <= 2);
        seen.extend(page.persons.into_iter().map(|p| p.person_key));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(pages, 2);
    let mut distinct = seen.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{seen:?}");
    assert_eq!(seen.len(), 3);
    let bad = c
        .linkage
        .list_flagged(ListFlaggedRequest {
            page_token: "zz".into(),
            ..ListFlaggedRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(
        bad.message().starts_with("page_token:"),
        "{}",
        bad.message()
    );
}
