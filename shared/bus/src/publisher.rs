//! The durable, group-committing event publisher.
//!
//! Every acknowledged event must survive a crash, so the server fsyncs before it acks (`sync_interval: always`). One
//! fsync per message would cap ingest at a few thousand events a second, so events are group-committed: concurrent
//! `publish` calls are gathered for at most [`PublisherOptions::linger`] or [`PublisherOptions::max_batch`] events and
//! go out as one JetStream atomic batch (ADR-50: all stored or none, one fsync), each caller answered from the batch's
//! ack. A batch that holds an already-stored `Nats-Msg-Id` is refused whole by the server; its events are then resent
//! one by one, which tells each event's fate (stored or duplicate).
//!
//! Nothing is half-written: a caller gets `Ok` only when every one of its events is stored (or was already), and
//! `Err(BusError::Unavailable)` otherwise, in which case resubmitting the same events is safe (same `Nats-Msg-Id`).

use std::future::IntoFuture;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::future::join_all;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::batch::{publish_atomic, ApiError, BatchMessage};
use crate::BusError;

/// One event to publish.
#[derive(Debug, Clone)]
pub struct OutgoingEvent {
    /// `Nats-Msg-Id`: the event id, so a republished event is recognised.
    pub msg_id: String,
    /// See [`crate::subjects::event_subject`].
    pub subject: String,
    /// The encoded `CaseEvent`.
    pub payload: Bytes,
}

/// What became of one published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Newly stored at this stream sequence.
    Stored { sequence: u64 },
    /// The same `Nats-Msg-Id` was stored before (at this sequence, as the server reports it).
    Duplicate { sequence: u64 },
}

/// Tuning of the group commit.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// At most this many events in one atomic batch (the server's limit is 1,000).
    pub max_batch: usize,
    /// How long the first waiting event waits for company before its batch goes out.
    pub linger: Duration,
    /// How long to wait for the server's ack before answering `Unavailable`.
    pub ack_timeout: Duration,
    /// Queued publish calls before callers wait (backpressure).
    pub queue_depth: usize,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        PublisherOptions {
            max_batch: 1000,
            linger: Duration::from_millis(1),
            ack_timeout: Duration::from_secs(5),
            queue_depth: 1024,
        }
    }
}

type JobReply = oneshot::Sender<Result<Vec<PublishOutcome>, BusError>>;

struct Job {
    events: Vec<OutgoingEvent>,
    reply: JobReply,
}

/// A handle to the publishing task; cheap to clone. The task ends when every handle is dropped.
#[derive(Clone)]
pub struct EventPublisher {
    jobs: mpsc::Sender<Job>,
}

impl EventPublisher {
    /// Starts the publishing task on the current tokio runtime.
    pub fn spawn(client: async_nats::Client, options: PublisherOptions) -> EventPublisher {
        let (jobs, rx) = mpsc::channel(options.queue_depth.max(1));
        let mut js = jetstream::new(client.clone());
        js.set_timeout(options.ack_timeout);
        let worker = Worker {
            client,
            js,
            options,
        };
        tokio::spawn(worker.run(rx));
        EventPublisher { jobs }
    }

    /// Publishes `events` durably; the outcomes are in the same order. Returns once every event is acknowledged.
    pub async fn publish(
        &self,
        events: Vec<OutgoingEvent>,
    ) -> Result<Vec<PublishOutcome>, BusError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { events, reply })
            .await
            .map_err(|_| BusError::Unavailable("publisher stopped".into()))?;
        answer
            .await
            .map_err(|_| BusError::Unavailable("publisher stopped".into()))?
    }
}

struct Worker {
    client: async_nats::Client,
    js: jetstream::Context,
    options: PublisherOptions,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.recv().await {
            let mut count = first.events.len();
            let mut jobs = vec![first];
            let deadline = Instant::now() + self.options.linger;
            while count < self.options.max_batch {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(job)) => {
                        count += job.events.len();
                        jobs.push(job);
                    }
                    _ => break,
                }
            }
            self.commit(jobs).await;
        }
    }

    /// Publishes the gathered jobs in atomic batches and answers each job.
    async fn commit(&self, jobs: Vec<Job>) {
        let all: Vec<&OutgoingEvent> = jobs.iter().flat_map(|j| j.events.iter()).collect();
        let mut outcomes: Vec<Option<PublishOutcome>> = vec![None; all.len()];
        let mut failure: Option<String> = None;
        let mut start = 0;
        for chunk in all.chunks(self.options.max_batch.max(1)) {
            match self.publish_chunk(chunk).await {
                Ok(done) => {
                    for (slot, outcome) in outcomes[start..start + done.len()].iter_mut().zip(done)
                    {
                        *slot = Some(outcome);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, events = chunk.len(), "publishing a batch failed");
                    failure = Some(e.to_string());
                }
            }
            start += chunk.len();
        }
        let mut offset = 0;
        for job in jobs {
            let n = job.events.len();
            let mine = &outcomes[offset..offset + n];
            offset += n;
            let answer = if mine.iter().all(Option::is_some) {
                Ok(mine.iter().flatten().copied().collect())
            } else {
                Err(BusError::Unavailable(
                    failure.clone().unwrap_or_else(|| "not acknowledged".into()),
                ))
            };
            let _ = job.reply.send(answer);
        }
    }

    async fn publish_chunk(
        &self,
        chunk: &[&OutgoingEvent],
    ) -> Result<Vec<PublishOutcome>, BusError> {
        // Refuse at once rather than buffer into a dead connection: a write that could land after we answered
        // "unavailable" would turn the caller's safe retry into a confusing duplicate.
        if self.client.connection_state() != State::Connected {
            return Err(BusError::Unavailable("not connected to NATS".into()));
        }
        if chunk.len() == 1 {
            return self.publish_one_by_one(chunk).await;
        }
        match self.publish_atomic(chunk).await? {
            Ok(outcomes) => Ok(outcomes),
            Err(api) => {
                // 10201-style refusals (a stored Nats-Msg-Id in the batch) and any other refusal of the batch as a
                // whole: resend one by one, which tells each event's fate.
                tracing::debug!(err_code = api.err_code, description = %api.description, "atomic batch refused; resending one by one");
                self.publish_one_by_one(chunk).await
            }
        }
    }

    /// One atomic batch. `Ok(Err(api))` when the server refused the batch as a whole.
    async fn publish_atomic(
        &self,
        chunk: &[&OutgoingEvent],
    ) -> Result<Result<Vec<PublishOutcome>, ApiError>, BusError> {
        let messages = chunk
            .iter()
            .map(|event| {
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", event.msg_id.as_str());
                BatchMessage {
                    subject: event.subject.clone(),
                    headers,
                    payload: event.payload.clone(),
                }
            })
            .collect();
        let first = match publish_atomic(&self.client, messages, self.options.ack_timeout).await? {
            Ok(first) => first,
            Err(api) => return Ok(Err(api)),
        };
        Ok(Ok((0..chunk.len() as u64)
            .map(|i| PublishOutcome::Stored {
                sequence: first + i,
            })
            .collect()))
    }

    /// Each event its own publish, acks pipelined.
    async fn publish_one_by_one(
        &self,
        chunk: &[&OutgoingEvent],
    ) -> Result<Vec<PublishOutcome>, BusError> {
        let mut pending = Vec::with_capacity(chunk.len());
        for event in chunk {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.msg_id.as_str());
            let ack = self
                .js
                .publish_with_headers(event.subject.clone(), headers, event.payload.clone())
                .await
                .map_err(|e| BusError::Unavailable(e.to_string()))?;
            pending.push(ack.into_future());
        }
        join_all(pending)
            .await
            .into_iter()
            .map(|ack| {
                let ack = ack.map_err(|e| BusError::Unavailable(e.to_string()))?;
                Ok(if ack.duplicate {
                    PublishOutcome::Duplicate {
                        sequence: ack.sequence,
                    }
                } else {
                    PublishOutcome::Stored {
                        sequence: ack.sequence,
                    }
                })
            })
            .collect()
    }
}
