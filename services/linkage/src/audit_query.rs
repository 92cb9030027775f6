//! The `Audit` gRPC service: the audit trail for auditors, read from the audit stream.

use async_nats::jetstream;
use caselink_bus::audit::{AuditLog, AUDIT_STREAM};
use caselink_domain::{timestamp_from_system_time, timestamp_micros};
use caselink_proto::v1::audit_server::Audit;
use caselink_proto::v1::{AuditRecord, ListAuditRequest, ListAuditResponse};
use futures::StreamExt;
use prost::Message;
use tonic::{Request, Response, Status};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Serves `Audit.List`.
pub struct AuditService {
    js: jetstream::Context,
    audit: AuditLog,
}

impl AuditService {
    pub fn new(js: jetstream::Context, audit: AuditLog) -> Self {
        AuditService { js, audit }
    }
}

fn matches(record: &AuditRecord, request: &ListAuditRequest) -> bool {
    let at = record.at.as_ref().map_or(0, timestamp_micros);
    (request.person_key.is_empty() || record.person_keys.contains(&request.person_key))
        && (request.caller.is_empty() || record.caller == request.caller)
        && request
            .from
            .as_ref()
            .is_none_or(|from| at >= timestamp_micros(from))
        && request
            .to
            .as_ref()
            .is_none_or(|to| at < timestamp_micros(to))
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn list(
        &self,
        request: Request<ListAuditRequest>,
    ) -> Result<Response<ListAuditResponse>, Status> {
        let caller = request.extensions().get::<caselink_auth::Caller>().cloned();
        let request = request.into_inner();
        let page_size = match request.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let start: u64 = if request.page_token.is_empty() {
            1
        } else {
            request.page_token.parse().map_err(|_| {
                Status::invalid_argument("page_token: not a token from a previous page")
            })?
        };
        let unavailable =
            |e: &dyn std::fmt::Display| Status::unavailable(format!("audit stream: {e}"));
        let mut response = ListAuditResponse::default();
        if let Ok(mut stream) = self.js.get_stream(AUDIT_STREAM).await {
            let last = stream
                .info()
                .await
                .map_err(|e| unavailable(&e))?
                .state
                .last_sequence;
            if start <= last {
                let config = jetstream::consumer::pull::OrderedConfig {
                    deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: start,
                    },
                    ..Default::default()
                };
                let consumer = stream
                    .create_consumer(config)
                    .await
                    .map_err(|e| unavailable(&e))?;
                let mut messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
                while let Some(message) = messages.next().await {
                    let message = message.map_err(|e| unavailable(&e))?;
                    let sequence = message.info().map_err(|e| unavailable(&e))?.stream_sequence;
                    if let Ok(record) = AuditRecord::decode(message.payload.as_ref()) {
                        if matches(&record, &request) {
                            if response.records.len() == page_size {
                                response.next_page_token = sequence.to_string();
                                break;
                            }
                            response.records.push(record);
                        }
                    }
                    if sequence >= last {
                        break;
                    }
                }
            }
        }
        // The auditor's read is itself on the record.
        if let Some(caller) = caller {
            let mut person_keys: Vec<String> = Vec::new();
            if !request.person_key.is_empty() {
                person_keys.push(request.person_key.clone());
            }
            record(
                &self.audit,
                &caller,
                "/caselink.v1.Audit/List",
                person_keys,
                Outcome::ok(),
                response.records.len(),
                false,
            )
            .await
            .map_err(|_| {
                Status::unavailable("the read could not be recorded in the audit trail; retry")
            })?;
        }
        Ok(Response::new(response))
    }
}

/// What an audited call came to, as every RPC of linkage records it: the gRPC code its caller received and, for a
/// refusal, why (the message the caller received), or for a few answers what they said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: tonic::Code,
    pub detail: String,
}

impl Outcome {
    /// Answered.
    pub fn ok() -> Outcome {
        Outcome::new(tonic::Code::Ok, "")
    }

    /// Answered, saying `detail` (`listed`).
    pub fn ok_saying(detail: impl Into<String>) -> Outcome {
        Outcome::new(tonic::Code::Ok, detail)
    }

    /// Ended with `code`, for the reason `detail`.
    pub fn new(code: tonic::Code, detail: impl Into<String>) -> Outcome {
        Outcome {
            code,
            detail: detail.into(),
        }
    }

    /// Refused or failed as `status` tells its caller.
    pub fn of(status: &Status) -> Outcome {
        Outcome::new(status.code(), status.message())
    }
}

/// Appends the audit record of a call by `caller` ([`audit_record`]) and waits until it is stored; a failure is logged
/// here, and the caller refuses the read (or reports the move's outcome anyway).
pub async fn record(
    log: &caselink_bus::audit::AuditLog,
    caller: &caselink_auth::Caller,
    rpc: &str,
    person_keys: Vec<String>,
    outcome: Outcome,
    items: usize,
    clear_identity: bool,
) -> Result<(), caselink_bus::BusError> {
    log.append(audit_record(
        caller,
        rpc,
        person_keys,
        outcome,
        items,
        clear_identity,
    ))
    .await
    .map(|_| ())
    .inspect_err(|e| tracing::error!(error = %e, rpc, "audit record not written"))
}

/// The audit record of a call by `caller` (who, role, scope, stated purpose, RPC, persons concerned, outcome): the one
/// shape every read and workflow move of linkage writes.
fn audit_record(
    caller: &caselink_auth::Caller,
    rpc: &str,
    person_keys: Vec<String>,
    outcome: Outcome,
    items: usize,
    clear_identity: bool,
) -> AuditRecord {
    AuditRecord {
        at: Some(timestamp_from_system_time(std::time::SystemTime::now())),
        caller: caller.claims.sub.clone(),
        role: caller.claims.role.name().to_string(),
        department: caller.claims.department.clone().unwrap_or_default(),
        unit: caller.claims.unit.clone().unwrap_or_default(),
        rpc: rpc.to_string(),
        person_keys,
        purpose: caller.purpose.clone().unwrap_or_default(),
        outcome: caselink_runtime::metrics::code_name(outcome.code).to_string(),
        detail: outcome.detail,
        items: u32::try_from(items).unwrap_or(u32::MAX),
        clear_identity,
        ..AuditRecord::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn officer() -> caselink_auth::Caller {
        caselink_auth::Caller {
            claims: caselink_auth::Claims {
                sub: "officer-7".into(),
                role: caselink_auth::Role::Police,
                department: Some("police".into()),
                regions: Vec::new(),
                unit: Some("gaj-430602".into()),
                iss: "caselink".into(),
                iat: 0,
                exp: 0,
                jti: "t-1".into(),
            },
            purpose: Some("lead 2026-118".into()),
        }
    }

    #[test]
    fn a_record_names_the_code_its_caller_received_and_a_refusals_message() {
        let refused = Status::aborted("the referral is at version 4, not 3: reload it and retry");
        let record = audit_record(
            &officer(),
            "/caselink.v1.Referral/Receive",
            vec!["k1".into()],
            Outcome::of(&refused),
            1,
            false,
        );
        assert_eq!(record.outcome, "ABORTED");
        assert_eq!(record.detail, refused.message());
        assert_eq!(
            (
                record.caller.as_str(),
                record.role.as_str(),
                record.unit.as_str()
            ),
            ("officer-7", "police", "gaj-430602")
        );
        assert_eq!(record.purpose, "lead 2026-118");

        let answered = audit_record(&officer(), "/x", Vec::new(), Outcome::ok(), 3, true);
        assert_eq!(
            (answered.outcome.as_str(), answered.detail.as_str()),
            ("OK", "")
        );
        assert_eq!((answered.items, answered.clear_identity), (3, true));
        let said = audit_record(
            &officer(),
            "/x",
            Vec::new(),
            Outcome::ok_saying("listed"),
            1,
            false,
        );
        assert_eq!(
            (said.outcome.as_str(), said.detail.as_str()),
            ("OK", "listed")
        );
    }
}
