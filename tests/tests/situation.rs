//! `Linkage.GetSituation` through the real pipeline: totals by department and kind in a period and a region prefix
//! (other regions and days left out), flags raised counted on the day they were recorded, the flagged persons now, the
//! assessment rates with and without the flagged person's matters, referral states and an overdue referral on the
//! injected clock, the determiner's scope and the errors that name the field.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caselink_auth::Role;
use caselink_domain::{ManualClock, SystemClock};
use caselink_e2e::*;
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::linkage_client::LinkageClient;
use caselink_proto::v1::*;
use tonic::Code;

fn mediation_closed(source_id: &str, id: &str, occurred: i64, success: bool) -> CaseEvent {
    let mut event = complaint(source_id, id, occurred);
    event.payload = Some(Payload::ComplaintMediationClosed(
        ComplaintMediationClosed {
            outcome: if success {
                MediationOutcome::Success
            } else {
                MediationOutcome::Failed
            } as i32,
            amount_fen: if success { 12_800 } else { 0 },
            ..ComplaintMediationClosed::default()
        },
    ));
    event
}

fn rejected(source_id: &str, id: &str, occurred: i64) -> CaseEvent {
    let mut event = complaint(source_id, id, occurred);
    event.payload = Some(Payload::ComplaintRejected(ComplaintRejected {
        reason: ComplaintRejectionReason::NotForLivingConsumption as i32,
        ..ComplaintRejected::default()
    }));
    event
}

/// Gives each person their own phone, address, merchant and words, so that no cross-person rule (C3-C5) links them.
fn own(mut events: Vec<CaseEvent>, n: u32) -> Vec<CaseEvent> {
    for event in &mut events {
        let subject = event.subject.as_mut().unwrap();
        subject.phone = format!("1390000{n:04}");
        subject.address = format!("湖南省岳阳市岳阳楼区某路{n}号");
        if let Some(merchant) = event.merchant.as_mut() {
            merchant.uscc = uscc(&format!("MA4L{n:05}"));
        }
        event.summary = format!("{} (第{n}人)", event.summary);
    }
    events
}

fn in_region(mut event: CaseEvent, region: &str) -> CaseEvent {
    event.region_code = region.into();
    event
}

fn period(prefix: &str, from: i64, to: i64) -> GetSituationRequest {
    GetSituationRequest {
        region_prefix: prefix.into(),
        from: at(from),
        to: at(to),
    }
}

fn kind(s: &Situation, name: &str) -> u64 {
    s.kinds
        .iter()
        .find(|k| k.kind == name)
        .map_or(0, |k| k.count)
}

fn rule(counts: &[RuleCount], rule: &str) -> u64 {
    counts
        .iter()
        .find(|c| c.rule == rule)
        .map_or(0, |c| c.count)
}

fn ratio(rate: &Option<Rate>) -> (u64, u64) {
    let r = rate.as_ref().unwrap();
    (r.numerator, r.denominator)
}

/// Midnight China time of the day `t` falls on.
fn china_midnight(t: SystemTime) -> i64 {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    (secs + 8 * 3600).div_euclid(DAY) * DAY - 8 * 3600
}

async fn situation_with(
    client: &mut LinkageClient<Authed>,
    request: GetSituationRequest,
    done: impl Fn(&Situation) -> bool,
) -> Situation {
    let mut last = None;
    for _ in 0..600 {
        let s = client
            .get_situation(request.clone())
            .await
            .unwrap()
            .into_inner();
        if done(&s) {
            return s;
        }
        last = Some(s);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the situation never got there: {last:#?}");
}

#[tokio::test]
async fn joint_meeting_figures_by_period_region_flags_rates_and_referrals() {
    // Referral deadlines are judged on a manual clock: Monday 2025-03-03 10:00 China time.
    let clock = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_740_967_200),
    ));
    let mut c = Cluster::start_ingest_only(Arc::new(SystemClock)).await;
    c.start_linkage_with_clock(clock.clone()).await;

    let ordinary = id_number("19850312", 101);
    let claimant = id_number("19800101", 202);
    let elsewhere = id_number("19900505", 303);
    let mut events = own(
        vec![
            // The ordinary consumer: two complaints, one mediated successfully, one rejected.
            complaint("S-A1", &ordinary, T2025 + DAY),
            complaint("S-A2", &ordinary, T2025 + 2 * DAY),
            mediation_closed("S-A3", &ordinary, T2025 + 3 * DAY, true),
            rejected("S-A4", &ordinary, T2025 + 4 * DAY),
            // Before the period.
            complaint("S-A0", &ordinary, T2025 - 10 * DAY),
        ],
        1,
    );
    // The claimant: a complaint whose mediation fails, and two untrue discipline reports (R5).
    events.extend(own(
        vec![
            complaint("S-B1", &claimant, T2025 + 5 * DAY),
            discipline_report("S-B2", &claimant, T2025 + 5 * DAY, true),
            discipline_report("S-B3", &claimant, T2025 + 6 * DAY, true),
            mediation_closed("S-B4", &claimant, T2025 + 7 * DAY, false),
        ],
        2,
    ));
    // Another prefecture (4307): outside the prefix 4306.
    events.extend(own(
        vec![
            in_region(complaint("S-C1", &elsewhere, T2025 + DAY), "430702"),
            in_region(
                mediation_closed("S-C2", &elsewhere, T2025 + 2 * DAY, true),
                "430702",
            ),
        ],
        3,
    ));
    let receipts = c.submit_market(events).await.unwrap();
    assert!(
        statuses(&receipts)
            .iter()
            .all(|s| *s == ReceiptStatus::Accepted),
        "{receipts:?}"
    );
    c.timeline_with(&claimant, 4).await;
    c.timeline_with(&elsewhere, 2).await;

    let january = period("4306", T2025, T2025 + 31 * DAY);
    let s = situation_with(&mut c.linkage, january.clone(), |s| {
        s.events == 8 && s.flagged_persons == 1
    })
    .await;
    // Totals in the period and prefix.
    assert_eq!(kind(&s, "complaint.received"), 3);
    assert_eq!(kind(&s, "complaint.mediation_closed"), 2);
    assert_eq!(kind(&s, "complaint.rejected"), 1);
    assert_eq!(kind(&s, "discipline.report_notified"), 2);
    assert_eq!(
        s.departments,
        vec![DepartmentTotal {
            department: Department::Market as i32,
            count: 8
        }]
    );
    // Flags are counted on the day the raising event was recorded (today), not in January 2025.
    assert!(s.flags_raised.is_empty(), "{:?}", s.flags_raised);
    // The flagged list now.
    assert_eq!(rule(&s.flagged_by_rule, "R5"), 1);
    // Rates over every matter: mediation 1 of 2, completion 3 closed of 3 received.
    let all = s.rates_all.as_ref().unwrap();
    assert_eq!(ratio(&all.mediation_success), (1, 2));
    assert_eq!(all.mediation_success.as_ref().unwrap().target_percent, 80);
    assert_eq!(ratio(&all.completion), (3, 3));
    assert_eq!(all.completion.as_ref().unwrap().target_percent, 100);
    assert_eq!(ratio(&all.satisfaction), (0, 0));
    // Without the flagged claimant's matters: mediation 1 of 1, completion 2 of 2.
    let without = s.rates_excluding_flagged.as_ref().unwrap();
    assert_eq!(ratio(&without.mediation_success), (1, 1));
    assert_eq!(ratio(&without.completion), (2, 2));
    assert_eq!(s.excluded_persons, 1);
    assert!(s
        .targets
        .iter()
        .any(|t| t.name == "first_call_connection" && t.at_least_percent == 95 && !t.measured));

    // The whole of Hunan (43) has the other prefecture too; Beijing (11) nothing.
    let hunan = situation_with(&mut c.linkage, period("43", T2025, T2025 + 31 * DAY), |s| {
        s.events == 10
    })
    .await;
    assert_eq!(kind(&hunan, "complaint.received"), 4);
    assert_eq!(
        ratio(&hunan.rates_all.as_ref().unwrap().mediation_success),
        (2, 3)
    );
    let beijing = c
        .linkage
        .get_situation(period("11", T2025, T2025 + 31 * DAY))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((beijing.events, beijing.flagged_persons), (0, 0));
    // Unbounded: the complaint before the period counts too.
    let ever = c
        .linkage
        .get_situation(GetSituationRequest {
            region_prefix: "4306".into(),
            ..GetSituationRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ever.events, 9);
    assert_eq!(rule(&ever.flags_raised, "R5"), 1);

    // Flags raised today: in a period around today, with no January events.
    let today = china_midnight(SystemTime::now());
    let now = c
        .linkage
        .get_situation(period("4306", today - DAY, today + 2 * DAY))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rule(&now.flags_raised, "R5"), 1, "{:?}", now.flags_raised);
    assert_eq!(now.events, 0);

    // Referrals: one left drafted (its head's 3 days run out), one refused (terminal, never overdue).
    let staff = c
        .referral_client(|k| {
            k.role = Role::Determiner;
            k.department = Some("market".into());
            k.regions = vec!["43".into()];
        })
        .await;
    let head = c
        .referral_client(|k| {
            k.role = Role::AgencyHead;
            k.department = Some("market".into());
            k.regions = Vec::new();
        })
        .await;
    for id in ["sit-late", "sit-refused"] {
        staff
            .clone()
            .draft(DraftReferralRequest {
                referral_id: id.into(),
                expected_version: 0,
                drafted: Some(ReferralDrafted {
                    case_report: "以夹带过期商品方式敲诈经营者，涉嫌敲诈勒索".into(),
                    evidence_list: vec!["购物小票".into()],
                    person_keys: vec!["ab".repeat(32)],
                    region_code: "430602".into(),
                    offence: Offence::Planting as i32,
                    case_ref: format!("岳市监-{id}"),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    head.clone()
        .refuse(RefuseReferralRequest {
            referral_id: "sit-refused".into(),
            expected_version: 1,
            refused: Some(ReferralRefused {
                reason: "证据不足".into(),
            }),
        })
        .await
        .unwrap();
    let state = |s: &Situation, state: ReferralState| {
        s.referral_states
            .iter()
            .find(|c| c.state == state as i32)
            .map_or(0, |c| c.count)
    };
    let s = situation_with(&mut c.linkage, january.clone(), |s| {
        s.referrals == 2 && state(s, ReferralState::Refused) == 1
    })
    .await;
    assert_eq!(state(&s, ReferralState::Drafted), 1);
    assert!(s.overdue_referrals.is_empty(), "not due yet");

    clock.advance(Duration::from_secs(4 * DAY as u64));
    let s = c
        .linkage
        .get_situation(january.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.overdue_referrals.len(), 1, "{:?}", s.overdue_referrals);
    let late = &s.overdue_referrals[0];
    assert_eq!(late.referral_id, "sit-late");
    assert_eq!(late.state, ReferralState::Drafted as i32);
    assert_eq!(late.region_code, "430602");
    // The deadline the referral workflow shows: the head's 3 days from Monday 2025-03-03.
    let view = staff
        .clone()
        .get(GetReferralRequest {
            referral_id: "sit-late".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(view.overdue);
    assert_eq!(late.due_at, view.due_at);
    assert_eq!(late.due_basis, view.due_basis);
    assert!(!late.due_basis.is_empty());
    // Another prefecture has none of them.
    let changde = c
        .linkage
        .get_situation(period("4307", T2025, T2025 + 31 * DAY))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((changde.referrals, changde.overdue_referrals.len()), (0, 0));
}

#[tokio::test]
async fn a_determiner_sees_its_regions_only_and_bad_requests_name_the_field() {
    let mut c = Cluster::start().await;
    let id = id_number("19850312", 404);
    c.submit_market(vec![complaint("S-D1", &id, T2025)])
        .await
        .unwrap();
    c.timeline_with(&id, 1).await;

    let determiner = |regions: &[&str]| {
        c.token(|k| {
            k.role = Role::Determiner;
            k.department = Some("market".into());
            k.regions = regions.iter().map(|r| (*r).into()).collect();
        })
    };
    // No purpose needed: the figures name no person.
    let mut inside = LinkageClient::with_interceptor(
        channel(&c.linkage_addr).await,
        Bearer::new(&determiner(&["4306"]), None),
    );
    let s = inside
        .get_situation(period("430602", T2025, T2025 + DAY))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.events, 1);
    for prefix in ["43", "4307", ""] {
        let denied = inside
            .get_situation(period(prefix, T2025, T2025 + DAY))
            .await
            .unwrap_err();
        assert_eq!(
            denied.code(),
            Code::PermissionDenied,
            "{prefix:?}: {denied:?}"
        );
        assert!(denied.message().contains("region_prefix"), "{denied:?}");
    }

    let bad = |request: GetSituationRequest| {
        let mut client = c.linkage.clone();
        async move { client.get_situation(request).await.unwrap_err() }
    };
    let e = bad(period("43x", T2025, T2025 + DAY)).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("region_prefix:"), "{e:?}");
    let e = bad(period("43", T2025 + 3600, T2025 + DAY)).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("from:"), "{e:?}");
    assert!(e.message().contains("midnight China time"), "{e:?}");
    let e = bad(period("43", T2025, T2025 + DAY + 1)).await;
    assert!(e.message().starts_with("to:"), "{e:?}");
    let e = bad(period("43", T2025 + DAY, T2025)).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("to: must be after from"), "{e:?}");
}
