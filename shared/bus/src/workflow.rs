//! The workflow stream: the events of the workflow aggregates, one subject per aggregate.
//!
//! `CASELINK_WORKFLOW` holds `ReferralEvent`s on `caselink.referral.<referral_id>` (criminal referrals) and
//! `DeterminationEvent`s on `caselink.determination.<person_key>` (a person's determinations): facts, kept forever,
//! delete and purge denied, file storage. A move is appended with `Nats-Expected-Last-Subject-Sequence` set to the
//! stream sequence of the aggregate's last event as the mover saw it (0: the aggregate must have no event yet), so of
//! two officers deciding at once exactly one append is stored and the other gets [`AppendError::Conflict`].
//! `Nats-Msg-Id` is `<referral_id>.<version>` or `determination.<person_key>.<version>`: a retried append of the same
//! event is recognised ([`append_to`] tells a retry from a rival event of the same version by comparing the stored
//! message). Subjects carry referral ids and pseudonymous person keys only, never personal data.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use async_nats::HeaderMap;
use caselink_proto::v1::{DeterminationEvent, ReferralEvent};
use prost::Message;

use crate::BusError;

/// The stream of workflow events.
pub const WORKFLOW_STREAM: &str = "CASELINK_WORKFLOW";
/// Prefix of referral subjects.
pub const REFERRAL_PREFIX: &str = "caselink.referral";

/// Prefix of determination subjects.
pub const DETERMINATION_PREFIX: &str = "caselink.determination";

/// The subject of one person's determination events (the person key in hex).
pub fn determination_subject(person_key: &str) -> String {
    format!("{DETERMINATION_PREFIX}.{person_key}")
}

/// The filter subject of every determination.
pub fn determination_filter() -> String {
    format!("{DETERMINATION_PREFIX}.>")
}

/// The `Nats-Msg-Id` of a person's determination event number `version` (never a referral's: those have one dot).
pub fn determination_msg_id(person_key: &str, version: u64) -> String {
    format!("determination.{person_key}.{version}")
}

/// The subject of one referral's events. The id is a subject token (`caselink_workflow` allows `A-Z a-z 0-9 - _`).
pub fn referral_subject(referral_id: &str) -> String {
    format!("{REFERRAL_PREFIX}.{referral_id}")
}

/// The filter subject of every referral.
pub fn referral_filter() -> String {
    format!("{REFERRAL_PREFIX}.>")
}

/// The referral id of a referral subject, if it is one.
pub fn referral_id_of_subject(subject: &str) -> Option<&str> {
    subject
        .strip_prefix(REFERRAL_PREFIX)?
        .strip_prefix('.')
        .filter(|id| !id.is_empty())
}

/// The `Nats-Msg-Id` of a referral's event number `version`.
pub fn referral_msg_id(referral_id: &str, version: u64) -> String {
    format!("{referral_id}.{version}")
}

/// The configuration of the workflow stream.
pub fn workflow_stream_config(replicas: usize) -> stream::Config {
    stream::Config {
        name: WORKFLOW_STREAM.to_string(),
        description: Some(
            "caselink workflow events (criminal referrals, determinations): one subject per aggregate, kept forever"
                .into(),
        ),
        subjects: vec![referral_filter(), determination_filter()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        duplicate_window: Duration::from_secs(24 * 3600),
        num_replicas: replicas,
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    }
}

/// Creates the workflow stream if it does not exist; a stream created before determinations existed gets their
/// subjects added (its other settings are kept).
pub async fn ensure_workflow_stream(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<stream::Stream, BusError> {
    let unavailable = |e: &dyn std::fmt::Display| BusError::Unavailable(e.to_string());
    let mut stream = js
        .get_or_create_stream(workflow_stream_config(replicas))
        .await
        .map_err(|e| unavailable(&e))?;
    let config = &stream.cached_info().config;
    let wanted = workflow_stream_config(replicas).subjects;
    if !wanted.iter().all(|s| config.subjects.contains(s)) {
        let mut config = config.clone();
        for subject in wanted {
            if !config.subjects.contains(&subject) {
                config.subjects.push(subject);
            }
        }
        js.update_stream(&config)
            .await
            .map_err(|e| unavailable(&e))?;
        stream = js
            .get_stream(WORKFLOW_STREAM)
            .await
            .map_err(|e| unavailable(&e))?;
        tracing::info!(subjects = ?stream.cached_info().config.subjects, "workflow stream's subjects updated");
    }
    Ok(stream)
}

/// Why an append did not store the event.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The referral's subject moved past the expected sequence: someone else moved first. Reload and retry.
    #[error("referral changed since sequence {expected}: reload and retry")]
    Conflict { expected: u64 },
    /// NATS is down or slow: nothing is known to be stored; retrying the same event is safe.
    #[error("the workflow stream is unavailable: {0}")]
    Unavailable(String),
    /// The server refused the event for a reason retrying will not fix.
    #[error("the workflow stream refused the event: {0}")]
    Refused(String),
}

/// Appends `event` to its referral's subject if the subject's last stored sequence is `expected_last_subject_sequence`
/// (0: no event yet); returns the event's stream sequence. Creates the stream on first use.
pub async fn append(
    js: &jetstream::Context,
    expected_last_subject_sequence: u64,
    event: &ReferralEvent,
) -> Result<u64, AppendError> {
    append_to(
        js,
        &referral_subject(&event.referral_id),
        &referral_msg_id(&event.referral_id, event.version),
        expected_last_subject_sequence,
        bytes::Bytes::from(event.encode_to_vec()),
    )
    .await
}

/// [`append`] for a person's determination event.
pub async fn append_determination(
    js: &jetstream::Context,
    expected_last_subject_sequence: u64,
    event: &DeterminationEvent,
) -> Result<u64, AppendError> {
    append_to(
        js,
        &determination_subject(&event.person_key),
        &determination_msg_id(&event.person_key, event.version),
        expected_last_subject_sequence,
        bytes::Bytes::from(event.encode_to_vec()),
    )
    .await
}

/// Appends `payload` to `subject` under `msg_id` if the subject's last stored sequence is
/// `expected_last_subject_sequence`; returns its stream sequence. Creates the stream on first use.
pub async fn append_to(
    js: &jetstream::Context,
    subject: &str,
    msg_id: &str,
    expected_last_subject_sequence: u64,
    payload: bytes::Bytes,
) -> Result<u64, AppendError> {
    let subject = subject.to_owned();
    let mut created = false;
    loop {
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            expected_last_subject_sequence.to_string(),
        );
        headers.insert("Nats-Msg-Id", msg_id);
        let published = match js
            .publish_with_headers(subject.clone(), headers, payload.clone())
            .await
        {
            Ok(future) => future.await,
            Err(e) => Err(e),
        };
        match published {
            Ok(ack) if ack.duplicate => {
                // The msg id (aggregate and version) is already stored: our own earlier attempt (a retry), or a
                // rival's event of the same version that won. Only the stored bytes tell which.
                let stored = stored_payload(js, ack.sequence).await?;
                return if stored == payload {
                    Ok(ack.sequence)
                } else {
                    Err(AppendError::Conflict {
                        expected: expected_last_subject_sequence,
                    })
                };
            }
            Ok(ack) => return Ok(ack.sequence),
            Err(e) => match e.kind() {
                PublishErrorKind::WrongLastSequence => {
                    // Our own earlier attempt may be what moved the subject (a retry after a lost answer): then the
                    // subject's next event after the expected sequence is byte for byte this one.
                    return match next_payload(js, &subject, expected_last_subject_sequence).await? {
                        Some((sequence, stored)) if stored == payload => Ok(sequence),
                        _ => Err(AppendError::Conflict {
                            expected: expected_last_subject_sequence,
                        }),
                    };
                }
                PublishErrorKind::StreamNotFound if !created => {
                    ensure_workflow_stream(js, 1)
                        .await
                        .map_err(|e| AppendError::Unavailable(e.to_string()))?;
                    created = true;
                }
                PublishErrorKind::TimedOut
                | PublishErrorKind::BrokenPipe
                | PublishErrorKind::StreamNotFound => {
                    return Err(AppendError::Unavailable(e.to_string()))
                }
                _ => return Err(AppendError::Refused(e.to_string())),
            },
        }
    }
}

/// The subject's first event after `after`, with its sequence.
async fn next_payload(
    js: &jetstream::Context,
    subject: &str,
    after: u64,
) -> Result<Option<(u64, bytes::Bytes)>, AppendError> {
    let stream = js
        .get_stream_no_info(WORKFLOW_STREAM)
        .await
        .map_err(|e| AppendError::Unavailable(e.to_string()))?;
    match stream
        .get_first_raw_message_by_subject(subject, after + 1)
        .await
    {
        Ok(m) => Ok(Some((m.sequence, m.payload))),
        Err(e) if matches!(e.kind(), stream::LastRawMessageErrorKind::NoMessageFound) => Ok(None),
        Err(e) => Err(AppendError::Unavailable(e.to_string())),
    }
}

async fn stored_payload(
    js: &jetstream::Context,
    sequence: u64,
) -> Result<bytes::Bytes, AppendError> {
    let stream = js
        .get_stream_no_info(WORKFLOW_STREAM)
        .await
        .map_err(|e| AppendError::Unavailable(e.to_string()))?;
    stream
        .get_raw_message(sequence)
        .await
        .map(|m| m.payload)
        .map_err(|e| AppendError::Unavailable(e.to_string()))
}

/// The stream sequence of the referral's last event (0 when it has none, or the stream does not exist yet).
pub async fn last_sequence(js: &jetstream::Context, referral_id: &str) -> Result<u64, BusError> {
    last_subject_sequence(js, &referral_subject(referral_id)).await
}

/// The stream sequence of the last event on `subject` (0 when it has none, or the stream does not exist yet).
pub async fn last_subject_sequence(
    js: &jetstream::Context,
    subject: &str,
) -> Result<u64, BusError> {
    let Some(stream) = existing_stream(js).await? else {
        return Ok(0);
    };
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(m) => Ok(m.sequence),
        Err(e) if matches!(e.kind(), stream::LastRawMessageErrorKind::NoMessageFound) => Ok(0),
        Err(e) => Err(BusError::Unavailable(e.to_string())),
    }
}

/// Every event of one referral with its stream sequence, oldest first (read from the stream, the source of truth).
pub async fn history(
    js: &jetstream::Context,
    referral_id: &str,
) -> Result<Vec<(u64, ReferralEvent)>, BusError> {
    subject_history(js, &referral_subject(referral_id)).await
}

/// Every event of one person's determination with its stream sequence, oldest first.
pub async fn determination_history(
    js: &jetstream::Context,
    person_key: &str,
) -> Result<Vec<(u64, DeterminationEvent)>, BusError> {
    subject_history(js, &determination_subject(person_key)).await
}

/// An aggregate as the stream has it, with the stream sequence of its last event (0: none yet). `projected` is a
/// projection's copy with the sequence of the last event it holds: it answers when that is the subject's last event;
/// otherwise the subject's events are read back and folded by `replay`.
pub async fn load_aggregate<M: Message + Default, A>(
    js: &jetstream::Context,
    subject: &str,
    projected: Option<(u64, Option<A>)>,
    replay: impl FnOnce(&[(u64, M)]) -> Option<A>,
) -> Result<(Option<A>, u64), BusError> {
    let last = last_subject_sequence(js, subject).await?;
    if last == 0 {
        return Ok((None, 0));
    }
    if let Some((held, aggregate)) = projected {
        if held == last {
            return Ok((aggregate, last));
        }
    }
    let events = subject_history::<M>(js, subject).await?;
    let last = events.last().map_or(0, |(s, _)| *s);
    Ok((replay(&events), last))
}

/// Every event on `subject`, decoded, with its stream sequence, oldest first.
async fn subject_history<M: Message + Default>(
    js: &jetstream::Context,
    subject: &str,
) -> Result<Vec<(u64, M)>, BusError> {
    let Some(stream) = existing_stream(js).await? else {
        return Ok(Vec::new());
    };
    let mut events = Vec::new();
    let mut next = 1u64;
    loop {
        match stream.get_first_raw_message_by_subject(subject, next).await {
            Ok(m) => {
                let event = M::decode(m.payload.as_ref()).map_err(|e| {
                    BusError::Refused(format!("unreadable workflow event {}: {e}", m.sequence))
                })?;
                next = m.sequence + 1;
                events.push((m.sequence, event));
            }
            Err(e) if matches!(e.kind(), stream::LastRawMessageErrorKind::NoMessageFound) => {
                return Ok(events)
            }
            Err(e) => return Err(BusError::Unavailable(e.to_string())),
        }
    }
}

async fn existing_stream(js: &jetstream::Context) -> Result<Option<stream::Stream>, BusError> {
    match js.get_stream(WORKFLOW_STREAM).await {
        Ok(s) => Ok(Some(s)),
        Err(e)
            if matches!(
                e.kind(),
                jetstream::context::GetStreamErrorKind::JetStream(ref j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(BusError::Unavailable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_carry_the_referral_id_only() {
        assert_eq!(referral_subject("r-1"), "caselink.referral.r-1");
        assert_eq!(referral_id_of_subject("caselink.referral.r-1"), Some("r-1"));
        assert_eq!(referral_id_of_subject("caselink.referral."), None);
        assert_eq!(referral_id_of_subject("caselink.alert.43"), None);
        assert_eq!(referral_msg_id("r-1", 3), "r-1.3");
        let key = "ab".repeat(32);
        assert_eq!(
            determination_subject(&key),
            format!("caselink.determination.{key}")
        );
        assert_eq!(referral_id_of_subject(&determination_subject(&key)), None);
        // A referral id may look like a person key; the message ids still differ.
        assert_ne!(determination_msg_id(&key, 1), referral_msg_id(&key, 1));
    }
}
