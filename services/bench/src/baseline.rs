//! The raw baselines: what this machine's JetStream and sled can do at all, with the pipeline's durability and on the
//! pipeline's bytes, without any of the pipeline's own code in the timed path.
//!
//! - publish (a): one message each with `Nats-Msg-Id`, acks pipelined;
//! - publish (b): atomic batches of 1,000 (`Nats-Batch-Id` / `-Sequence` / `-Commit`), one batch at a time;
//! - publish (c): ADR-50 fast batch (`Nats-Fast-Batch-Id`, flow-controlled acks, non-atomic);
//! - consume: a pull consumer reading the stream and acking (ack policy `all`, the last of every pulled batch);
//! - sled: batched inserts of timeline records, flushed after every batch, as the durable fold must.
//!
//! Each publish baseline writes into a stream configured as the pipeline's (`ensure_events_stream`) on a fresh
//! `nats-server` with `sync_interval: always`, and checks afterwards that the stream holds every message.

use std::future::IntoFuture;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy};
use async_nats::HeaderMap;
use caselink_bus::streams::{ensure_events_stream, events_stream_config, EventsStreamOptions};
use caselink_bus::OutgoingEvent;
use caselink_domain::PersonKey;
use caselink_proto::v1::CaseEvent;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use prost::Message;
use serde::Deserialize;

use crate::data::{stream_bus, Dataset};
use crate::stats::{Growth, Throughput};

/// Events per atomic batch (the server's limit).
pub const ATOMIC_BATCH: usize = 1000;
/// Records per sled batch (the fold's pulled batch).
pub const SLED_BATCH: usize = 1000;
/// How long to wait for any single ack.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

async fn connect(
    url: &str,
    name: &str,
) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    let client = caselink_bus::connect(url, name, ACK_TIMEOUT)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let mut js = jetstream::new(client.clone());
    js.set_timeout(ACK_TIMEOUT);
    Ok((client, js))
}

/// The events stream as the pipeline has it.
pub async fn events_stream(js: &jetstream::Context) -> anyhow::Result<jetstream::stream::Stream> {
    ensure_events_stream(js, &EventsStreamOptions::default())
        .await
        .map_err(|e| anyhow!("creating the events stream: {e}"))
}

/// Checks that the stream holds `expected` messages.
async fn expect_stored(js: &jetstream::Context, expected: u64, what: &str) -> anyhow::Result<()> {
    let mut stream = js
        .get_stream(caselink_bus::streams::EVENTS_STREAM)
        .await
        .context("reading the events stream")?;
    let stored = stream.info().await.context("stream info")?.state.messages;
    if stored != expected {
        bail!("{what}: the stream holds {stored} messages, {expected} were published");
    }
    Ok(())
}

/// (a) One JetStream publish per event with `Nats-Msg-Id`, at most `in_flight` acks outstanding.
pub async fn publish_each(
    url: &str,
    data: &Dataset,
    limit: u64,
    in_flight: usize,
) -> anyhow::Result<Throughput> {
    let (_client, js) = connect(url, "caselink-bench-publish-each").await?;
    events_stream(&js).await?;
    let mut chunks = stream_bus(&data.bus_files, 1000, limit);
    let mut pending = FuturesUnordered::new();
    let mut acked = 0u64;
    let started = Instant::now();
    while let Some(chunk) = chunks.recv().await {
        for event in chunk? {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.msg_id.as_str());
            let ack = js
                .publish_with_headers(event.subject, headers, event.payload)
                .await
                .context("publishing")?;
            pending.push(ack.into_future());
            while pending.len() >= in_flight {
                next_ack(&mut pending, &mut acked).await?;
            }
        }
    }
    while !pending.is_empty() {
        next_ack(&mut pending, &mut acked).await?;
    }
    let elapsed = started.elapsed();
    expect_stored(&js, acked, "publish, one message each").await?;
    Ok(Throughput::new(acked, elapsed))
}

async fn next_ack<F>(pending: &mut FuturesUnordered<F>, acked: &mut u64) -> anyhow::Result<()>
where
    F: std::future::Future<
        Output = Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
    >,
{
    if let Some(ack) = pending.next().await {
        let ack = ack.context("waiting for a publish ack")?;
        if ack.duplicate {
            bail!("a benchmark event was a duplicate: the data set repeats an event id");
        }
        *acked += 1;
    }
    Ok(())
}

#[derive(Deserialize)]
struct BatchAck {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// (b) Atomic batches of [`ATOMIC_BATCH`], one at a time, the last message of each as a request for the batch's ack.
/// Also fills a stream for the measurements that read one.
pub async fn publish_atomic(url: &str, data: &Dataset, limit: u64) -> anyhow::Result<Throughput> {
    let (client, js) = connect(url, "caselink-bench-publish-atomic").await?;
    events_stream(&js).await?;
    let mut chunks = stream_bus(&data.bus_files, ATOMIC_BATCH, limit);
    let mut stored = 0u64;
    let started = Instant::now();
    while let Some(chunk) = chunks.recv().await {
        stored += atomic_batch(&client, chunk?).await?;
    }
    let elapsed = started.elapsed();
    expect_stored(&js, stored, "publish, atomic batches").await?;
    Ok(Throughput::new(stored, elapsed))
}

async fn atomic_batch(
    client: &async_nats::Client,
    chunk: Vec<OutgoingEvent>,
) -> anyhow::Result<u64> {
    let batch_id = uuid::Uuid::new_v4().simple().to_string();
    let count = chunk.len();
    for (i, event) in chunk.into_iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.msg_id.as_str());
        headers.insert("Nats-Batch-Id", batch_id.as_str());
        headers.insert("Nats-Batch-Sequence", (i + 1).to_string());
        if i + 1 < count {
            client
                .publish_with_headers(event.subject, headers, event.payload)
                .await
                .context("publishing a batch message")?;
            continue;
        }
        headers.insert("Nats-Batch-Commit", "1");
        let reply = tokio::time::timeout(
            ACK_TIMEOUT,
            client.request_with_headers(event.subject, headers, event.payload),
        )
        .await
        .context("timed out waiting for a batch ack")?
        .context("committing a batch")?;
        let ack: BatchAck =
            serde_json::from_slice(&reply.payload).context("an unreadable batch ack")?;
        if let Some(error) = ack.error {
            bail!("the server refused an atomic batch: {error}");
        }
        if ack.seq == 0 {
            bail!("a batch ack without a sequence");
        }
    }
    Ok(count as u64)
}

/// What arrives on a fast batch's inbox: flow acks (`"type":"ack"`), gaps and per-message errors, and at the end the
/// batch's pub ack (with `batch` and `count`) or an error.
#[derive(Deserialize, Debug)]
struct FastReply {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    msgs: u64,
    #[serde(default)]
    batch: Option<String>,
    #[serde(default)]
    count: u64,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Messages per flow ack asked of the server in the fast batch (an upper bound; the server may lower it).
const FAST_FLOW: u64 = 100;
/// Flow acks outstanding before the fast publisher waits (ADR-50 recommends 1-3, 2 by default).
const FAST_MAX_OUTSTANDING: u64 = 2;

/// (c) One ADR-50 fast batch over all events (non-atomic, flow-controlled acks), committed with the last event.
///
/// The protocol of nats-server 2.14+: every message's reply subject is `<inbox>.<flow>.<gap>.<seq>.<op>.$FI` (op 0
/// start, 1 append, 2 commit), the server answers on that subject (flow acks every `flow` messages, then the batch's
/// pub ack). Needs the stream's `allow_batched`, which the pipeline's stream does not set: the only difference.
pub async fn publish_fast(url: &str, data: &Dataset, limit: u64) -> anyhow::Result<Throughput> {
    let (client, js) = connect(url, "caselink-bench-publish-fast").await?;
    let mut config = events_stream_config(&EventsStreamOptions::default());
    config.allow_batch_publish = true;
    js.create_stream(config)
        .await
        .context("creating the events stream with allow_batched")?;
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(format!("{inbox}.>"))
        .await
        .context("subscribing to the batch inbox")?;
    let total = limit.min(data.events);
    let mut chunks = stream_bus(&data.bus_files, 1000, total);
    let mut sent = 0u64;
    let mut acked_to = 0u64;
    let mut flow = FAST_FLOW;
    let mut next_reply = async || -> anyhow::Result<FastReply> {
        let message = tokio::time::timeout(ACK_TIMEOUT, replies.next())
            .await
            .context("timed out waiting for a fast-batch reply")?
            .ok_or_else(|| anyhow!("the batch inbox subscription ended"))?;
        let reply: FastReply =
            serde_json::from_slice(&message.payload).context("an unreadable fast-batch reply")?;
        if let Some(error) = &reply.error {
            bail!("the server refused the fast batch: {error}");
        }
        if reply.kind.as_deref().is_some_and(|k| k != "ack") {
            bail!("the fast batch reported a {:?}: {reply:?}", reply.kind);
        }
        Ok(reply)
    };
    let started = Instant::now();
    let mut final_ack = None;
    while let Some(chunk) = chunks.recv().await {
        for event in chunk? {
            // Wait while the window of outstanding flow acks is full.
            while acked_to + flow * FAST_MAX_OUTSTANDING <= sent + 1 && sent > 0 {
                let reply = next_reply().await?;
                if reply.batch.is_some() {
                    bail!("the fast batch ended early: {reply:?}");
                }
                acked_to = acked_to.max(reply.seq);
                if reply.msgs > 0 {
                    flow = reply.msgs;
                }
            }
            sent += 1;
            let op = if sent == total {
                2
            } else if sent == 1 {
                0
            } else {
                1
            };
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.msg_id.as_str());
            client
                .publish_with_reply_and_headers(
                    event.subject,
                    format!("{inbox}.{flow}.fail.{sent}.{op}.$FI"),
                    headers,
                    event.payload,
                )
                .await
                .context("publishing a fast-batch message")?;
            if sent == 1 && total > 1 {
                // The first reply tells whether the server takes fast batches at all.
                let reply = next_reply().await?;
                if reply.msgs > 0 {
                    flow = reply.msgs;
                }
            }
        }
    }
    while final_ack.is_none() {
        let reply = next_reply().await?;
        if reply.batch.is_some() {
            final_ack = Some(reply);
        }
    }
    let elapsed = started.elapsed();
    let stored = final_ack.map_or(0, |a| a.count);
    if stored != total {
        bail!("the fast batch's pub ack counts {stored} messages, {total} were sent");
    }
    expect_stored(&js, stored, "publish, fast batch").await?;
    Ok(Throughput::new(stored, elapsed))
}

/// A pull consumer reads the whole stream (`expected` messages) in batches of 1,000 and acks the last of each.
pub async fn consume(url: &str, expected: u64) -> anyhow::Result<Throughput> {
    let (_client, js) = connect(url, "caselink-bench-consume").await?;
    let stream = js
        .get_stream(caselink_bus::streams::EVENTS_STREAM)
        .await
        .context("reading the events stream")?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("caselink-bench-raw".into()),
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await
        .context("creating the raw consumer")?;
    let started = Instant::now();
    let messages = consumer
        .stream()
        .max_messages_per_batch(1000)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .context("pulling")?;
    let mut chunks = messages.ready_chunks(1000);
    let mut read = 0u64;
    // A server busy reading a large stream from disk may miss an idle heartbeat; the pull goes on after it (a message
    // delivered again is not counted twice: only sequences past the last one read count).
    let mut missed = 0u32;
    let mut last_sequence = 0u64;
    while read < expected {
        let chunk = tokio::time::timeout(ACK_TIMEOUT, chunks.next())
            .await
            .context("timed out waiting for messages")?
            .ok_or_else(|| anyhow!("the message stream ended"))?;
        let mut last = None;
        for m in chunk {
            let m = match m {
                Ok(m) => m,
                Err(e) if e.kind() == pull::MessagesErrorKind::MissingHeartbeat && missed < 10 => {
                    missed += 1;
                    continue;
                }
                Err(e) => bail!("pulling: {e}"),
            };
            let sequence = m
                .info()
                .map_err(|e| anyhow!("a message without its info: {e}"))?
                .stream_sequence;
            if sequence > last_sequence {
                last_sequence = sequence;
                read += 1;
            }
            last = Some(m);
        }
        if let Some(m) = last {
            if read >= expected {
                m.double_ack().await.map_err(|e| anyhow!("acking: {e}"))?;
            } else {
                m.ack().await.map_err(|e| anyhow!("acking: {e}"))?;
            }
        }
    }
    Ok(Throughput::new(read, started.elapsed()))
}

/// Batched sled inserts of the events as records of their full size (the fold's timeline key, and the sequence with
/// the event's bytes as the value: what the fold stored before its event log took the bytes), `batch_size` a batch
/// ([`SLED_BATCH`] for the baseline), each flushed before the next. Only the apply and flush are timed; building the records is not.
/// Also how sled's own rate holds up as its tree fills ([`Growth`], as the fold's cost growth is measured).
pub async fn sled_write(
    dir: &Path,
    data: &Dataset,
    limit: u64,
    batch_size: usize,
) -> anyhow::Result<(Throughput, Option<Growth>)> {
    let db = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .open()
        .context("opening sled")?;
    let tree = db
        .open_tree("projections")
        .context("opening the sled tree")?;
    let mut chunks = stream_bus(&data.bus_files, batch_size.max(1), limit);
    let mut written = 0u64;
    let mut timed = Duration::ZERO;
    // (timed seconds, records written) after each batch: how the rate holds up as the tree fills.
    let mut samples = vec![(0.0, 0)];
    while let Some(chunk) = chunks.recv().await {
        let mut batch = sled::Batch::default();
        for event in chunk? {
            written += 1;
            let (key, value) = timeline_record(written, &event.payload)?;
            batch.insert(key, value);
        }
        let started = Instant::now();
        tree.apply_batch(batch).context("applying a sled batch")?;
        db.flush_async().await.context("flushing sled")?;
        timed += started.elapsed();
        samples.push((timed.as_secs_f64(), written));
    }
    Ok((
        Throughput::new(written, timed),
        Growth::of(&samples, written),
    ))
}

/// A bus-form event as a full-size sled record: key `t ‖ person key ‖ occurred µs ‖ event id` (one timeline key per
/// event at a random place in the tree, as the fold stored them until session 5), value `sequence ‖ event without its
/// sealed identity`.
fn timeline_record(sequence: u64, payload: &[u8]) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let mut event = CaseEvent::decode(payload).context("a bus-form event that does not decode")?;
    let person = event
        .subject
        .as_mut()
        .map(|s| {
            s.sealed = None;
            PersonKey::from_hex(&s.person_key).map(|k| k.0)
        })
        .transpose()
        .context("a bus-form event with a bad person key")?
        .unwrap_or_default();
    let micros = event.occurred_at.as_ref().map_or(0, |t| {
        t.seconds.saturating_mul(1_000_000) + i64::from(t.nanos / 1_000)
    });
    let id = uuid::Uuid::parse_str(&event.event_id).unwrap_or_default();
    let mut key = Vec::with_capacity(57);
    key.push(b't');
    key.extend_from_slice(&person);
    key.extend_from_slice(&((micros as u64) ^ (1u64 << 63)).to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    let mut value = sequence.to_be_bytes().to_vec();
    event.encode(&mut value).context("encoding")?;
    Ok((key, value))
}
