//! Who may call what: every RPC × every role × in and out of scope gives the expected code, and tokens that are
//! missing, expired or forged are refused.

#![allow(clippy::unwrap_used)]

use caselink_auth::{Role, Rpc};
use caselink_e2e::*;
use caselink_proto::v1::ingest_client::IngestClient;
use caselink_proto::v1::linkage_client::LinkageClient;
use caselink_proto::v1::*;
use tonic::Code;

struct Case {
    label: String,
    token: Option<String>,
    purpose: Option<&'static str>,
    rpc: Rpc,
    expected: Code,
}

async fn call(c: &Cluster, case: &Case, id: &str) -> (Code, String) {
    let bearer = |purpose| Bearer::new(case.token.as_deref().unwrap_or(""), purpose);
    let result = match case.rpc {
        Rpc::IngestSubmit | Rpc::IngestSubmitStream => {
            let channel = channel(&c.market_addr).await;
            let event = complaint(&format!("MK-{}", case.label), id, T2025);
            match (&case.token, case.rpc) {
                (None, Rpc::IngestSubmit) => IngestClient::new(channel)
                    .submit(SubmitRequest {
                        events: vec![event],
                    })
                    .await
                    .map(|_| ()),
                (None, _) => IngestClient::new(channel)
                    .submit_stream(tokio_stream::iter(vec![event]))
                    .await
                    .map(|_| ()),
                (Some(_), Rpc::IngestSubmit) => {
                    IngestClient::with_interceptor(channel, bearer(None))
                        .submit(SubmitRequest {
                            events: vec![event],
                        })
                        .await
                        .map(|_| ())
                }
                (Some(_), _) => IngestClient::with_interceptor(channel, bearer(None))
                    .submit_stream(tokio_stream::iter(vec![event]))
                    .await
                    .map(|_| ()),
            }
        }
        Rpc::AuditList => {
            let channel = channel(&c.linkage_addr).await;
            let request = ListAuditRequest::default();
            match &case.token {
                None => caselink_proto::v1::audit_client::AuditClient::new(channel)
                    .list(request)
                    .await
                    .map(|_| ()),
                Some(_) => caselink_proto::v1::audit_client::AuditClient::with_interceptor(
                    channel,
                    bearer(case.purpose),
                )
                .list(request)
                .await
                .map(|_| ()),
            }
        }
        // Referral moves on a referral that does not exist: past the door, NOT_FOUND (a draft expecting version 1:
        // ABORTED); Get NOT_FOUND; List and WatchLeads of the token's own unit OK.
        Rpc::ReferralDraft
        | Rpc::ReferralApprove
        | Rpc::ReferralRefuse
        | Rpc::ReferralTransfer
        | Rpc::ReferralReceive
        | Rpc::ReferralForward
        | Rpc::ReferralRegister
        | Rpc::ReferralDecline
        | Rpc::ReferralRequestReconsideration
        | Rpc::ReferralDecideReconsideration
        | Rpc::ReferralRequestSupervision
        | Rpc::ReferralClose
        | Rpc::ReferralGet
        | Rpc::ReferralList
        | Rpc::ReferralWatchLeads => {
            let channel = channel(&c.linkage_addr).await;
            let token = case.token.as_deref().unwrap_or("");
            let mut client = caselink_proto::v1::referral_client::ReferralClient::with_interceptor(
                channel,
                Bearer::new(token, case.purpose),
            );
            let id = || "matrix-none".to_string();
            match case.rpc {
                Rpc::ReferralDraft => client
                    .draft(DraftReferralRequest {
                        referral_id: id(),
                        expected_version: 1,
                        drafted: Some(ReferralDrafted::default()),
                    })
                    .await
                    .map(|_| ()),
                Rpc::ReferralApprove => client
                    .approve(ApproveReferralRequest {
                        referral_id: id(),
                        expected_version: 0,
                        approved: Some(ReferralApproved::default()),
                    })
                    .await
                    .map(|_| ()),
                Rpc::ReferralRefuse => client
                    .refuse(RefuseReferralRequest {
                        referral_id: id(),
                        expected_version: 0,
                        refused: Some(ReferralRefused::default()),
                    })
                    .await
                    .map(|_| ()),
                Rpc::ReferralTransfer => client
                    .transfer(TransferReferralRequest {
                        referral_id: id(),
                        expected_version: 0,
                        transferred: Some(ReferralTransferred::default()),
                    })
                    .await
                    .map(|_| ()),
                Rpc::ReferralReceive => client
                    .receive(ReceiveReferralRequest {
                        referral_id: id(),
                        expected_version: 0,
                        received: Some(ReferralReceived::default()),
                    })
                    .await
                    .map(|_| ()),
                Rpc::ReferralForward => client
                    .forward(ForwardReferralRequest {
                        referral_id: id(),
                        expected_version: 0,
                        forwarded: Some(ReferralForwarded::default()),
                    })
                    .await
                    .map(|_| ()),
                Rpc::ReferralRegister => client
                    .register(RegisterReferralRequest {
                        referral_id: id(),
                        expected_version: 0,
                        registered: Some(ReferralRegistered::default()),
                    })
                    .await
                    .map(|_| ()),
                Rpc::ReferralDecline => client
                    .decline(DeclineReferralRequest {
                        referral_id: id(),
                        expected_version: 0,
                        declined: Some(ReferralDeclined::default()),
                    })
                    .await
                    .map(|_| ()),
                Rpc::ReferralRequestReconsideration => {
                    client
                        .request_reconsideration(RequestReconsiderationRequest {
                            referral_id: id(),
                            expected_version: 0,
                            reconsideration_requested: Some(
                                ReferralReconsiderationRequested::default(),
                            ),
                        })
                        .await
                        .map(|_| ())
                }
                Rpc::ReferralDecideReconsideration => client
                    .decide_reconsideration(DecideReconsiderationRequest {
                        referral_id: id(),
                        expected_version: 0,
                        reconsideration_decided: Some(ReferralReconsiderationDecided::default()),
                    })
                    .await
                    .map(|_| ()),
                Rpc::ReferralRequestSupervision => client
                    .request_supervision(RequestSupervisionRequest {
                        referral_id: id(),
                        expected_version: 0,
                        supervision_requested: Some(ReferralSupervisionRequested::default()),
                    })
                    .await
                    .map(|_| ()),
                Rpc::ReferralClose => client
                    .close(CloseReferralRequest {
                        referral_id: id(),
                        expected_version: 0,
                        closed: Some(ReferralClosed::default()),
                    })
                    .await
                    .map(|_| ()),
                Rpc::ReferralGet => client
                    .get(GetReferralRequest { referral_id: id() })
                    .await
                    .map(|_| ()),
                Rpc::ReferralList => client
                    .list(ListReferralsRequest::default())
                    .await
                    .map(|_| ()),
                _ => client
                    .watch_leads(WatchLeadsRequest {
                        police_unit: "430602".into(),
                        cursor: 0,
                    })
                    .await
                    .map(|_| ()),
            }
        }
        // Determination moves on a person with one complaint and no flags: past the door, a confirmation without
        // evidence INVALID_ARGUMENT, nothing to clear or revoke FAILED_PRECONDITION; Check and ListAbnormal OK.
        Rpc::DeterminationConfirm
        | Rpc::DeterminationClear
        | Rpc::DeterminationRevoke
        | Rpc::DeterminationCheck
        | Rpc::DeterminationListAbnormal => {
            let channel = channel(&c.linkage_addr).await;
            let token = case.token.as_deref().unwrap_or("");
            let mut client =
                caselink_proto::v1::determination_client::DeterminationClient::with_interceptor(
                    channel,
                    Bearer::new(token, case.purpose),
                );
            match case.rpc {
                Rpc::DeterminationConfirm => client
                    .confirm(ConfirmRequest {
                        person: by_id(id),
                        rules: vec!["C1".into()],
                        basis: "role matrix".into(),
                        region_code: "430602".into(),
                        ..ConfirmRequest::default()
                    })
                    .await
                    .map(|_| ()),
                Rpc::DeterminationClear => client
                    .clear(ClearRequest {
                        person: by_id(id),
                        reason: "role matrix".into(),
                        region_code: "430602".into(),
                        ..ClearRequest::default()
                    })
                    .await
                    .map(|_| ()),
                Rpc::DeterminationRevoke => client
                    .revoke(RevokeRequest {
                        person: by_id(id),
                        reason: "role matrix".into(),
                        region_code: "430602".into(),
                        ..RevokeRequest::default()
                    })
                    .await
                    .map(|_| ()),
                Rpc::DeterminationCheck => client
                    .check(CheckRequest { person: by_id(id) })
                    .await
                    .map(|_| ()),
                _ => client
                    .list_abnormal(ListAbnormalRequest {
                        region_prefix: "4306".into(),
                        ..ListAbnormalRequest::default()
                    })
                    .await
                    .map(|_| ()),
            }
        }
        Rpc::LinkageGetTimeline
        | Rpc::LinkageGetPersonView
        | Rpc::LinkageListFlagged
        | Rpc::LinkageWatchAlerts
        | Rpc::LinkageGetSituation => {
            let channel = channel(&c.linkage_addr).await;
            let token = case.token.as_deref().unwrap_or("");
            let mut client =
                LinkageClient::with_interceptor(channel, Bearer::new(token, case.purpose));
            match case.rpc {
                Rpc::LinkageGetTimeline => client
                    .get_timeline(GetTimelineRequest {
                        person: by_id(id),
                        ..GetTimelineRequest::default()
                    })
                    .await
                    .map(|_| ()),
                Rpc::LinkageGetPersonView => client
                    .get_person_view(GetPersonViewRequest { person: by_id(id) })
                    .await
                    .map(|_| ()),
                Rpc::LinkageListFlagged => client
                    .list_flagged(ListFlaggedRequest {
                        region_prefix: "4306".into(),
                        ..ListFlaggedRequest::default()
                    })
                    .await
                    .map(|_| ()),
                Rpc::LinkageGetSituation => client
                    .get_situation(GetSituationRequest {
                        region_prefix: "4306".into(),
                        ..GetSituationRequest::default()
                    })
                    .await
                    .map(|_| ()),
                _ => client
                    .watch_alerts(WatchAlertsRequest {
                        region_prefix: "4306".into(),
                        cursor: 0,
                    })
                    .await
                    .map(|_| ()),
            }
        }
    };
    result.err().map_or((Code::Ok, String::new()), |s| {
        (s.code(), s.message().to_string())
    })
}

fn expected_for(role: Role, rpc: Rpc) -> Code {
    match (role, rpc) {
        (Role::Writer, Rpc::IngestSubmit | Rpc::IngestSubmitStream) => Code::Ok,
        (
            Role::Analyst | Role::Determiner,
            Rpc::LinkageGetTimeline
            | Rpc::LinkageGetPersonView
            | Rpc::LinkageListFlagged
            | Rpc::LinkageWatchAlerts,
        ) => Code::Ok,
        (Role::Analyst | Role::Determiner, Rpc::LinkageGetSituation) => Code::Ok,
        (Role::Auditor, Rpc::AuditList) => Code::Ok,
        (Role::Determiner, Rpc::ReferralDraft) => Code::Aborted,
        (
            Role::Determiner,
            Rpc::ReferralTransfer
            | Rpc::ReferralRequestReconsideration
            | Rpc::ReferralRequestSupervision
            | Rpc::ReferralClose,
        ) => Code::NotFound,
        (Role::AgencyHead, Rpc::ReferralApprove | Rpc::ReferralRefuse) => Code::NotFound,
        (
            Role::Police,
            Rpc::ReferralReceive
            | Rpc::ReferralForward
            | Rpc::ReferralRegister
            | Rpc::ReferralDecline
            | Rpc::ReferralDecideReconsideration
            | Rpc::ReferralClose,
        ) => Code::NotFound,
        (Role::Police, Rpc::ReferralWatchLeads) => Code::Ok,
        (Role::Analyst | Role::Determiner | Role::AgencyHead | Role::Police, Rpc::ReferralGet) => {
            Code::NotFound
        }
        (Role::Analyst | Role::Determiner | Role::AgencyHead | Role::Police, Rpc::ReferralList) => {
            Code::Ok
        }
        (Role::Determiner, Rpc::DeterminationConfirm) => Code::InvalidArgument,
        (Role::Determiner, Rpc::DeterminationClear | Rpc::DeterminationRevoke) => {
            Code::FailedPrecondition
        }
        (role, Rpc::DeterminationCheck) if role != Role::Auditor => Code::Ok,
        (
            Role::Analyst | Role::Determiner | Role::Police | Role::AgencyHead,
            Rpc::DeterminationListAbnormal,
        ) => Code::Ok,
        _ => Code::PermissionDenied,
    }
}

#[tokio::test]
async fn every_rpc_for_every_role_in_and_out_of_scope() {
    let mut c = Cluster::start().await;
    let id = id_number("19850312", 123);
    c.submit_market(vec![complaint("MK-seed", &id, T2025)])
        .await
        .unwrap();
    c.timeline_with(&id, 1).await;

    let mut cases = Vec::new();
    for rpc in Rpc::ALL {
        // In scope: the market service for writers; region 43 covers the events; police of a unit, etc.
        for role in Role::ALL {
            let token = c.token(|claims| {
                claims.role = role;
                if role != Role::Writer {
                    claims.department = None;
                    claims.regions = Vec::new();
                }
                if role == Role::Police {
                    claims.unit = Some("430602".into());
                }
                if role == Role::Determiner {
                    claims.regions = vec!["4306".into()];
                }
            });
            cases.push(Case {
                label: format!("{}-{:?}-in", role.name(), rpc),
                token: Some(token),
                purpose: Some("role matrix"),
                rpc,
                expected: expected_for(role, rpc),
            });
        }
        // Out of scope: a writer of another department on the market service (every department looks the abnormal
        // list up).
        let police_writer = c.token(|claims| claims.department = Some("police".into()));
        cases.push(Case {
            label: format!("writer-police-{rpc:?}"),
            token: Some(police_writer),
            purpose: Some("role matrix"),
            rpc,
            expected: if rpc == Rpc::DeterminationCheck {
                Code::Ok
            } else {
                Code::PermissionDenied
            },
        });
        // A writer whose token names no regions.
        let no_regions = c.token(|claims| claims.regions = Vec::new());
        cases.push(Case {
            label: format!("writer-noregion-{rpc:?}"),
            token: Some(no_regions),
            purpose: Some("role matrix"),
            rpc,
            expected: Code::PermissionDenied,
        });
        // Not authenticated at all, an expired token, a token of another deployment's key.
        let expired = c.token(|claims| {
            claims.iat -= 7200;
            claims.exp = claims.iat + 60;
        });
        let other_keys = caselink_auth::generate_keys().unwrap();
        let forged = token_with(&other_keys, |claims| claims.role = Role::Analyst);
        for (label, token) in [
            ("none", None),
            ("expired", Some(expired)),
            ("forged", Some(forged)),
        ] {
            cases.push(Case {
                label: format!("{label}-{rpc:?}"),
                token,
                purpose: Some("role matrix"),
                rpc,
                expected: Code::Unauthenticated,
            });
        }
    }
    for rpc in Rpc::ALL.into_iter().filter(|r| r.person_level()) {
        // A determiner of another region reading a person of 430602 or the flags and alerts of 4306.
        cases.push(Case {
            label: format!("determiner-other-region-{rpc:?}"),
            token: Some(c.token(|claims| {
                claims.role = Role::Determiner;
                claims.department = None;
                claims.regions = vec!["11".into()];
            })),
            purpose: Some("role matrix"),
            rpc,
            expected: Code::PermissionDenied,
        });
        // A read of persons' data without a stated purpose.
        cases.push(Case {
            label: format!("analyst-no-purpose-{rpc:?}"),
            token: Some(c.token(|claims| claims.role = Role::Analyst)),
            purpose: None,
            rpc,
            expected: Code::InvalidArgument,
        });
    }

    let mut wrong = Vec::new();
    for case in &cases {
        let (got, message) = call(&c, case, &id).await;
        if got != case.expected {
            wrong.push(format!(
                "{}: expected {:?}, got {got:?} ({message})",
                case.label, case.expected
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    assert!(cases.len() >= Rpc::ALL.len() * (Role::ALL.len() + 5));
}

#[tokio::test]
async fn a_writer_cannot_write_outside_its_regions() {
    let c = Cluster::start().await;
    let token = c.token(|claims| claims.regions = vec!["11".into()]);
    let mut client =
        IngestClient::with_interceptor(channel(&c.market_addr).await, Bearer::new(&token, None));
    let id = id_number("19850312", 123);
    let receipts = client
        .submit(SubmitRequest {
            events: vec![complaint("MK-1", &id, T2025)],
        })
        .await
        .unwrap()
        .into_inner()
        .receipts;
    assert_eq!(statuses(&receipts), [ReceiptStatus::Rejected]);
    assert_eq!(receipts[0].violations[0].field, "region_code");
    assert!(
        receipts[0].violations[0]
            .reason
            .contains("outside the regions"),
        "{:?}",
        receipts[0].violations
    );
}
