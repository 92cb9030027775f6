use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use caselink_bus::streams::{ensure_events_stream, EventsStreamOptions};
use caselink_bus::subjects::event_subject;
use caselink_bus::{EventPublisher, OutgoingEvent, PublishOutcome, PublisherOptions};
use caselink_domain::{
    department_code, derive_event_id, kind_name, pseudonymise, validate_event, Clock, IdentityKeys,
    Limits, SystemClock, Violations, PARTITIONS,
};
use caselink_proto::v1::ingest_server::{Ingest, IngestServer};
use caselink_proto::v1::{
    CaseEvent, FieldViolation, Receipt, ReceiptStatus, SubmitRequest, SubmitResponse,
};
use caselink_proto::Timestamp;
use caselink_runtime::metrics::{Counter, Family, Metrics};
use caselink_runtime::Cancel as CancellationToken;
use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};
use prost::Message;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status, Streaming};

use crate::{DepartmentRules, IngestError, IngestOptions};

/// An event that passed the door, ready to publish.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub event_id: String,
    pub source_id: String,
    pub recorded_at: Timestamp,
    pub outgoing: OutgoingEvent,
}

/// The Ingest gRPC service of one department.
pub struct IngestService<R: DepartmentRules> {
    inner: Arc<Inner<R>>,
}

struct Inner<R> {
    rules: R,
    keys: IdentityKeys,
    limits: Limits,
    clock: Arc<dyn Clock>,
    publisher: EventPublisher,
    ready: Arc<AtomicBool>,
    max_events: usize,
    /// Receipts by status (registered for `GET /metrics` by [`IngestService::with_metrics`]).
    receipts: Family<ReceiptLabel, Counter>,
}

/// A receipt's status, as metrics label it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ReceiptLabel {
    status: &'static str,
}

/// Events of one SubmitStream gathered before they go to the publisher together.
const STREAM_CHUNK: usize = 500;
/// Chunks of one SubmitStream in flight at once (their acks are awaited in order).
const STREAM_IN_FLIGHT: usize = 8;

impl<R: DepartmentRules> IngestService<R> {
    /// A service publishing through `publisher`; `ready` tells whether the events stream exists.
    pub fn new(
        rules: R,
        keys: IdentityKeys,
        limits: Limits,
        clock: Arc<dyn Clock>,
        publisher: EventPublisher,
        ready: Arc<AtomicBool>,
        max_events: usize,
    ) -> Self {
        IngestService {
            inner: Arc::new(Inner {
                rules,
                keys,
                limits,
                clock,
                publisher,
                ready,
                max_events,
                receipts: Family::default(),
            }),
        }
    }

    /// Counts the receipts in `metrics` (`caselink_ingest_receipts_total{status}`).
    pub fn with_metrics(self, metrics: &Metrics) -> Self {
        metrics.register(
            "ingest_receipts",
            "receipts answered, by status (accepted, duplicate, rejected)",
            self.inner.receipts.clone(),
        );
        self
    }

    /// Validates and prepares one event: `Err` is its rejected receipt. `regions`: the caller's region scope, if any.
    pub fn prepare(
        &self,
        event: CaseEvent,
        index: u64,
        regions: Option<&[String]>,
    ) -> Result<Prepared, Receipt> {
        self.inner.prepare(event, index, regions)
    }
}

impl<R: DepartmentRules> Inner<R> {
    fn prepare(
        &self,
        mut event: CaseEvent,
        index: u64,
        regions: Option<&[String]>,
    ) -> Result<Prepared, Receipt> {
        let department = self.rules.department();
        let now = self.clock.now();
        let mut violations = validate_event(&event, department, now, &self.limits);
        if violations.is_empty() {
            self.rules.check(&event, &mut violations);
        }
        if let Some(regions) = regions {
            if violations.is_empty()
                && !regions
                    .iter()
                    .any(|p| event.region_code.starts_with(p.as_str()))
            {
                violations.push(
                    "region_code",
                    format!(
                        "{} is outside the regions your token may write for ({})",
                        event.region_code,
                        regions.join(", ")
                    ),
                );
            }
        }
        if !violations.is_empty() {
            return Err(rejected(index, &event, violations));
        }
        if event.event_id.is_empty() {
            event.event_id = derive_event_id(department, &event.source_id).to_string();
        } else {
            // Canonical form, so the same id written differently is still the same Nats-Msg-Id.
            event.event_id = uuid::Uuid::parse_str(&event.event_id)
                .map(|u| u.to_string())
                .unwrap_or(event.event_id);
        }
        let recorded_at = caselink_domain::timestamp_from_system_time(now);
        event.recorded_at = Some(recorded_at);
        let person_key = match pseudonymise(&mut event, &self.keys) {
            Ok(key) => key,
            Err(e) => {
                let mut v = Violations::default();
                v.push("subject.id_number", e.to_string());
                return Err(rejected(index, &event, v));
            }
        };
        let partition = match person_key {
            Some(key) => key.partition(),
            None => {
                let id = uuid::Uuid::parse_str(&event.event_id)
                    .map(|u| u.into_bytes())
                    .unwrap_or_default();
                u16::from_be_bytes([id[0], id[1]]) % PARTITIONS
            }
        };
        tracing::debug!(
            event_id = %event.event_id,
            kind = event.payload.as_ref().map(kind_name).unwrap_or("none"),
            partition,
            "event accepted at the door"
        );
        Ok(Prepared {
            event_id: event.event_id.clone(),
            source_id: event.source_id.clone(),
            recorded_at,
            outgoing: OutgoingEvent {
                msg_id: event.event_id.clone(),
                subject: event_subject(partition, department),
                payload: Bytes::from(event.encode_to_vec()),
            },
        })
    }

    /// Validates, publishes and answers a group of events; one receipt each, in order.
    async fn submit(
        &self,
        events: Vec<CaseEvent>,
        first_index: u64,
        regions: &[String],
    ) -> Result<Vec<Receipt>, IngestError> {
        if !self.ready.load(Ordering::Acquire) {
            return Err(IngestError::NotReady);
        }
        let mut receipts: Vec<Option<Receipt>> = Vec::with_capacity(events.len());
        let mut prepared = Vec::new();
        let mut slots = Vec::new();
        for (i, event) in events.into_iter().enumerate() {
            match self.prepare(event, first_index + i as u64, Some(regions)) {
                Ok(p) => {
                    slots.push(i);
                    prepared.push(p);
                    receipts.push(None);
                }
                Err(receipt) => receipts.push(Some(receipt)),
            }
        }
        let outgoing = prepared.iter().map(|p| p.outgoing.clone()).collect();
        let outcomes = self.publisher.publish(outgoing).await?;
        for ((slot, p), outcome) in slots.into_iter().zip(prepared).zip(outcomes) {
            let (status, sequence) = match outcome {
                PublishOutcome::Stored { sequence } => (ReceiptStatus::Accepted, sequence),
                PublishOutcome::Duplicate { sequence } => (ReceiptStatus::Duplicate, sequence),
            };
            receipts[slot] = Some(Receipt {
                index: first_index + slot as u64,
                event_id: p.event_id,
                source_id: p.source_id,
                status: status as i32,
                violations: Vec::new(),
                stream_sequence: sequence,
                recorded_at: (status == ReceiptStatus::Accepted).then_some(p.recorded_at),
            });
        }
        Ok(receipts.into_iter().flatten().collect())
    }
}

fn rejected(index: u64, event: &CaseEvent, violations: Violations) -> Receipt {
    Receipt {
        index,
        event_id: event.event_id.clone(),
        source_id: event.source_id.clone(),
        status: ReceiptStatus::Rejected as i32,
        violations: Vec::<FieldViolation>::from(violations),
        stream_sequence: 0,
        recorded_at: None,
    }
}

type ReceiptStream = Pin<Box<dyn Stream<Item = Result<Receipt, Status>> + Send>>;

#[tonic::async_trait]
impl<R: DepartmentRules> Ingest for IngestService<R> {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let regions = caselink_auth::Caller::of(&request)?.claims.regions.clone();
        let events = request.into_inner().events;
        if events.len() > self.inner.max_events {
            return Err(IngestError::TooMany {
                field: "events",
                count: events.len(),
                limit: self.inner.max_events,
            }
            .into_status());
        }
        let count = events.len();
        let receipts = self
            .inner
            .submit(events, 0, &regions)
            .await
            .map_err(IngestError::into_status)?;
        self.inner.answered(count, &receipts);
        Ok(Response::new(SubmitResponse { receipts }))
    }

    type SubmitStreamStream = ReceiptStream;

    async fn submit_stream(
        &self,
        request: Request<Streaming<CaseEvent>>,
    ) -> Result<Response<Self::SubmitStreamStream>, Status> {
        let inner = Arc::clone(&self.inner);
        let regions: Arc<[String]> = caselink_auth::Caller::of(&request)?
            .claims
            .regions
            .clone()
            .into();
        let incoming = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Receipt, Status>>(STREAM_CHUNK * 2);
        tokio::spawn(async move {
            let mut chunks = incoming.ready_chunks(STREAM_CHUNK);
            let mut in_flight = FuturesOrdered::new();
            let mut next_index = 0u64;
            let mut input_done = false;
            loop {
                tokio::select! {
                    chunk = chunks.next(), if !input_done && in_flight.len() < STREAM_IN_FLIGHT => {
                        let Some(chunk) = chunk else { input_done = true; continue };
                        let mut events = Vec::with_capacity(chunk.len());
                        for item in chunk {
                            match item {
                                Ok(event) => events.push(event),
                                Err(status) => { input_done = true; let _ = tx.send(Err(status)).await; break; }
                            }
                        }
                        let first = next_index;
                        next_index += events.len() as u64;
                        let inner = Arc::clone(&inner);
                        let regions = Arc::clone(&regions);
                        in_flight.push_back(async move { inner.submit(events, first, &regions).await });
                    }
                    Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                        match done {
                            Ok(receipts) => {
                                inner.answered(receipts.len(), &receipts);
                                for r in receipts {
                                    if tx.send(Ok(r)).await.is_err() { return; }
                                }
                            }
                            Err(e) => { let _ = tx.send(Err(e.into_status())).await; return; }
                        }
                    }
                    else => break,
                }
                if input_done && in_flight.is_empty() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

impl<R: DepartmentRules> Inner<R> {
    /// Logs and counts the receipts of one answer.
    fn answered(&self, count: usize, receipts: &[Receipt]) {
        let tally = |s: ReceiptStatus| receipts.iter().filter(|r| r.status == s as i32).count();
        let (accepted, duplicate, rejected) = (
            tally(ReceiptStatus::Accepted),
            tally(ReceiptStatus::Duplicate),
            tally(ReceiptStatus::Rejected),
        );
        for (status, n) in [
            ("accepted", accepted),
            ("duplicate", duplicate),
            ("rejected", rejected),
        ] {
            if n > 0 {
                self.receipts
                    .get_or_create(&ReceiptLabel { status })
                    .inc_by(n as u64);
            }
        }
        tracing::info!(
            department = department_code(self.rules.department()),
            events = count,
            accepted,
            duplicate,
            rejected,
            "submit answered"
        );
    }
}

/// Connects to NATS, keeps trying to create the events stream until it exists, and serves Ingest (with health and
/// reflection) on `options.listen` until `cancel`.
pub(crate) async fn serve<R: DepartmentRules>(
    rules: R,
    options: IngestOptions,
    cancel: CancellationToken,
) -> Result<(), IngestError> {
    let listener =
        TcpListener::bind(&options.listen)
            .await
            .map_err(|source| IngestError::Listen {
                address: options.listen.clone(),
                source,
            })?;
    serve_on(rules, options, listener, Arc::new(SystemClock), cancel).await
}

/// As [`serve`], on an already bound listener (tests bind `127.0.0.1:0`) and with an injectable clock.
pub async fn serve_on<R: DepartmentRules>(
    rules: R,
    options: IngestOptions,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) -> Result<(), IngestError> {
    let keys = options
        .identity
        .build()
        .map_err(|e| IngestError::Config(e.to_string()))?;
    let verifier = options
        .auth
        .verifier()
        .map_err(|e| IngestError::Config(e.to_string()))?;
    let department = rules.department();
    let ack_timeout = Duration::from_millis(options.ack_timeout_ms);
    let client = caselink_bus::connect(
        &options.nats_url,
        &format!("caselink-ingest-{}", department_code(department)),
        ack_timeout,
    )
    .await?;
    let publisher = EventPublisher::spawn(
        client.clone(),
        PublisherOptions {
            max_batch: options.max_batch,
            linger: Duration::from_micros(options.linger_micros),
            ack_timeout,
            ..PublisherOptions::default()
        },
    );
    let (health, health_service) = caselink_runtime::health_reporter();
    let ready = Arc::new(AtomicBool::new(false));
    let stream_options = EventsStreamOptions {
        duplicate_window: Duration::from_secs(options.dedup_window_secs),
        replicas: options.replicas,
    };
    {
        let ready = Arc::clone(&ready);
        let health = health.clone();
        let cancel = cancel.clone();
        let js = async_nats::jetstream::new(client);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                match ensure_events_stream(&js, &stream_options).await {
                    Ok(_) => {
                        ready.store(true, Ordering::Release);
                        health.set_serving::<IngestServer<IngestService<R>>>().await;
                        tracing::info!("events stream ready");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "events stream not ready; retrying"),
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
    }
    let limits = Limits {
        future_tolerance: options.future_tolerance(),
        ..Limits::default()
    };
    let service = IngestService::new(
        rules,
        keys,
        limits,
        clock,
        publisher,
        ready,
        options.max_events_per_request,
    );
    let metrics = Metrics::new(department_code(department));
    let service = service.with_metrics(&metrics);
    let rpc_metrics =
        caselink_runtime::metrics::RpcMetricsLayer::new(&metrics, caselink_auth::served_path);
    caselink_runtime::metrics::spawn(&options.metrics_listen, &metrics, &cancel)
        .await
        .map_err(|e| IngestError::Config(e.to_string()))?;
    let (reflection_v1, reflection_v1alpha) = caselink_runtime::reflection_services();
    let address = listener
        .local_addr()
        .map_err(|e| IngestError::Serve(e.to_string()))?;
    tracing::info!(department = department_code(department), %address, "ingest listening");
    caselink_runtime::server_builder(&options.tls)
        .map_err(|e| IngestError::Config(e.to_string()))?
        .layer(rpc_metrics)
        .layer(caselink_auth::AuthLayer::new(
            verifier,
            caselink_auth::ServiceScope::Department(department_code(department).to_string()),
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            IngestServer::new(service)
                .max_decoding_message_size(options.max_message_bytes)
                .max_encoding_message_size(options.max_message_bytes),
        )
        .serve_with_incoming_shutdown(
            caselink_runtime::incoming(listener),
            cancel.cancelled_owned(),
        )
        .await
        .map_err(|e| IngestError::Serve(e.to_string()))
}
