//! The audit stream and its single-writer, hash-chained appender.
//!
//! `CASELINK_AUDIT` holds the audit records, one subject per chain (`caselink.audit.<chain>`), kept forever, delete and
//! purge denied. Each appender owns one chain: it seals a record with the previous record's hash
//! (`caselink_domain::seal_audit`) and publishes it with `Nats-Expected-Last-Subject-Sequence`, so two writers on one
//! chain cannot both extend it (the loser reloads the chain's tip and retries). A caller is answered only once its
//! record is durably stored: an act that cannot be audited is not done. Records that queue up while the writer is busy
//! go out together: a few one by one, more as one atomic batch (one fsync for all).

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use caselink_domain::{seal_audit, GENESIS};
use caselink_proto::v1::AuditRecord;
use prost::Message;
use tokio::sync::{mpsc, oneshot};

use crate::batch::{publish_atomic, BatchMessage};
use crate::BusError;

/// The audit stream.
pub const AUDIT_STREAM: &str = "CASELINK_AUDIT";
/// Prefix of every audit subject.
pub const AUDIT_PREFIX: &str = "caselink.audit";

/// The subject of `chain`.
pub fn audit_subject(chain: &str) -> String {
    format!("{AUDIT_PREFIX}.{chain}")
}

/// The configuration of the audit stream.
pub fn audit_stream_config(replicas: usize) -> stream::Config {
    stream::Config {
        name: AUDIT_STREAM.to_string(),
        description: Some("caselink audit trail: append-only, hash-chained per writer".into()),
        subjects: vec![format!("{AUDIT_PREFIX}.>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        num_replicas: replicas,
        deny_delete: true,
        deny_purge: true,
        // Records waiting for the writer go out as one atomic batch: one fsync for all of them.
        allow_atomic_publish: true,
        ..Default::default()
    }
}

/// Creates the audit stream if it does not exist.
pub async fn ensure_audit_stream(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<stream::Stream, BusError> {
    // A stream created before atomic audit batches gets them turned on in place.
    crate::streams::ensure_stream(js, audit_stream_config(replicas), |current| {
        let changed = !current.allow_atomic_publish;
        current.allow_atomic_publish = true;
        changed
    })
    .await
}

type Reply = oneshot::Sender<Result<AuditRecord, BusError>>;

/// Records gathered into one atomic batch at most (the server's batch limit is 1,000).
const MAX_GROUP: usize = 256;

/// Groups up to this size are stored one record at a time (each a plain publish naming the chain's last sequence),
/// larger ones as one atomic batch. Measured on a 2-core VM, nats-server 2.15, `sync_interval: always`: a plain
/// durable publish is acked in ~0.4 ms, an atomic batch in ~2.3-2.9 ms whatever its size (1 to 64 records), so for a
/// few records one at a time is sooner; under load the groups grow and go out as batches.
const ONE_BY_ONE_MAX: usize = 4;

/// Appends to one audit chain; cheap to clone. The writing task ends when every handle is dropped.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<(AuditRecord, Reply)>,
}

impl AuditLog {
    /// Starts the appender of `chain`.
    pub fn spawn(js: jetstream::Context, chain: &str, replicas: usize) -> AuditLog {
        let (tx, rx) = mpsc::channel(4096);
        let writer = Writer {
            js,
            chain: chain.to_string(),
            subject: audit_subject(chain),
            replicas,
            tip: None,
        };
        tokio::spawn(writer.run(rx));
        AuditLog { tx }
    }

    /// Seals `record` onto the chain and stores it durably; returns it as stored.
    pub async fn append(&self, record: AuditRecord) -> Result<AuditRecord, BusError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((record, reply))
            .await
            .map_err(|_| BusError::Unavailable("audit writer stopped".into()))?;
        answer
            .await
            .map_err(|_| BusError::Unavailable("audit writer stopped".into()))?
    }
}

/// The chain's tip: stream sequence of the last record, its chain index and hash.
#[derive(Clone)]
struct Tip {
    sequence: u64,
    index: u64,
    hash: Vec<u8>,
}

struct Writer {
    js: jetstream::Context,
    chain: String,
    subject: String,
    replicas: usize,
    tip: Option<Tip>,
}

impl Writer {
    /// Group commit: the records that queued up while the previous group was being stored go out together as one
    /// atomic batch, chained record to record, so a burst of reads costs one fsync, not one each.
    async fn run(mut self, mut rx: mpsc::Receiver<(AuditRecord, Reply)>) {
        while let Some(first) = rx.recv().await {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            if group.len() <= ONE_BY_ONE_MAX {
                for (record, reply) in group {
                    let mut result = self.append_one(record.clone()).await;
                    if result.is_err() {
                        // As for a batch: reload the tip and try once more.
                        self.tip = None;
                        result = self.append_one(record).await;
                    }
                    let result = result.map_err(|e| {
                        tracing::error!(error = %e, "audit record not stored");
                        BusError::Unavailable(e.to_string())
                    });
                    let _ = reply.send(result);
                }
                continue;
            }
            let records: Vec<AuditRecord> = group.iter().map(|(r, _)| r.clone()).collect();
            let mut result = self.append(records.clone()).await;
            if result.is_err() {
                // Another writer may have extended the chain, or NATS came back: reload the tip and try once more.
                self.tip = None;
                result = self.append(records).await;
            }
            match result {
                Ok(stored) => {
                    for ((_, reply), record) in group.into_iter().zip(stored) {
                        let _ = reply.send(Ok(record));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, records = group.len(), "audit records not stored");
                    for (_, reply) in group {
                        let _ = reply.send(Err(BusError::Unavailable(e.to_string())));
                    }
                }
            }
        }
    }

    async fn load_tip(&self) -> Result<Tip, BusError> {
        let stream = ensure_audit_stream(&self.js, self.replicas).await?;
        match stream.get_last_raw_message_by_subject(&self.subject).await {
            Ok(last) => {
                let record = AuditRecord::decode(last.payload.as_ref()).map_err(|e| {
                    BusError::Refused(format!("unreadable audit record {}: {e}", last.sequence))
                })?;
                Ok(Tip {
                    sequence: last.sequence,
                    index: record.chain_index,
                    hash: record.hash,
                })
            }
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::stream::LastRawMessageErrorKind::NoMessageFound
                ) =>
            {
                Ok(Tip {
                    sequence: 0,
                    index: 0,
                    hash: GENESIS.to_vec(),
                })
            }
            Err(e) => Err(BusError::Unavailable(e.to_string())),
        }
    }

    /// Seals `record` onto the chain and stores it as one message expecting the chain's tip as the subject's last
    /// sequence: it extends the chain, or it is refused.
    async fn append_one(&mut self, record: AuditRecord) -> Result<AuditRecord, BusError> {
        let mut tip = match &self.tip {
            Some(tip) => tip.clone(),
            None => self.load_tip().await?,
        };
        let mut record = record;
        record.chain.clone_from(&self.chain);
        let record = seal_audit(record, tip.index, &tip.hash);
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            tip.sequence.to_string(),
        );
        let ack = self
            .js
            .publish_with_headers(self.subject.clone(), headers, record.encode_to_vec().into())
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?
            .await
            .map_err(|e| BusError::Refused(format!("audit record refused: {e}")))?;
        tip.sequence = ack.sequence;
        tip.index = record.chain_index;
        tip.hash.clone_from(&record.hash);
        self.tip = Some(tip);
        Ok(record)
    }

    /// Seals `records` onto the chain in order and stores them as one atomic batch whose first message expects the
    /// chain's tip as the subject's last sequence: all of them extend the chain, or none does.
    async fn append(&mut self, records: Vec<AuditRecord>) -> Result<Vec<AuditRecord>, BusError> {
        let mut tip = match &self.tip {
            Some(tip) => tip.clone(),
            None => self.load_tip().await?,
        };
        let expected = tip.sequence;
        let mut sealed = Vec::with_capacity(records.len());
        let mut messages = Vec::with_capacity(records.len());
        for mut record in records {
            record.chain.clone_from(&self.chain);
            let record = seal_audit(record, tip.index, &tip.hash);
            tip.index = record.chain_index;
            tip.hash.clone_from(&record.hash);
            let mut headers = HeaderMap::new();
            if messages.is_empty() {
                headers.insert("Nats-Expected-Last-Subject-Sequence", expected.to_string());
            }
            messages.push(BatchMessage {
                subject: self.subject.clone(),
                headers,
                payload: record.encode_to_vec().into(),
            });
            sealed.push(record);
        }
        let count = messages.len() as u64;
        let first = publish_atomic(&self.js.client(), messages, Duration::from_secs(5))
            .await?
            .map_err(|api| BusError::Refused(format!("audit batch refused: {api}")))?;
        tip.sequence = first + count - 1;
        self.tip = Some(tip);
        Ok(sealed)
    }
}

/// Reads every record of the audit stream, grouped by chain in stream order (for verification and listing).
pub async fn read_all(js: &jetstream::Context) -> Result<Vec<(u64, AuditRecord)>, BusError> {
    use futures::StreamExt;
    let stream = match js.get_stream(AUDIT_STREAM).await {
        Ok(s) => s,
        Err(_) => return Ok(Vec::new()),
    };
    let mut stream = stream;
    let last = stream
        .info()
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?
        .state
        .last_sequence;
    if last == 0 {
        return Ok(Vec::new());
    }
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
    let mut out = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| BusError::Unavailable(e.to_string()))?;
        let info = message
            .info()
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let sequence = info.stream_sequence;
        let record = AuditRecord::decode(message.payload.as_ref())
            .map_err(|e| BusError::Refused(format!("unreadable audit record {sequence}: {e}")))?;
        out.push((sequence, record));
        if sequence >= last {
            break;
        }
    }
    Ok(out)
}
