//! `WatchLeads`: a police unit's live stream of leads — referrals transferred or forwarded to it — and of every later
//! change to them while the unit holds them, resumable by cursor.
//!
//! A watcher is an ordered JetStream consumer on the workflow stream starting right after the client's cursor (the
//! stream sequence of the last lead it saw), so a client that reconnects with its cursor misses nothing and sees
//! nothing twice. Cursor 0 means from the beginning of the stream: a unit connecting for the first time gets all its
//! leads, past and live (a unit wants its open cases, not only tomorrow's). An event concerns the unit when it hands
//! the referral to the unit (a transfer or forward to it) or when the unit held the referral just before it (its own
//! receipt, registration, decline, forward away, answers; the agency's reconsideration request, supervision request or
//! close). The holding unit before each event is tracked per referral while scanning; a referral first met in the
//! middle of its history is replayed up to that point from the projection (or its subject).

use std::collections::HashMap;
use std::pin::Pin;

use async_nats::jetstream::{self, consumer::DeliverPolicy};
use caselink_auth::{Caller, Role};
use caselink_bus::workflow::{ensure_workflow_stream, history, referral_filter};
use caselink_proto::v1::{Lead, ReferralEvent};
use caselink_workflow::referral::{evolve, lead_unit, replay, Referral};
use futures::Stream;
use tokio::sync::mpsc;
use tonic::Status;

use super::{code, ReferralError, Shared};
use crate::alerts::{forward, next_decoded};

/// The stream a `WatchLeads` call answers with.
pub type LeadStream = Pin<Box<dyn Stream<Item = Result<Lead, Status>> + Send>>;

/// Only police of the unit itself may watch its leads.
pub fn check_watcher(caller: &Caller, police_unit: &str) -> Result<(), ReferralError> {
    code("police_unit", police_unit)?;
    if caller.claims.role != Role::Police {
        return Err(ReferralError::NotVisible(format!(
            "role {} may not watch police leads",
            caller.claims.role.name()
        )));
    }
    match caller.claims.unit.as_deref() {
        Some(unit) if unit == police_unit => Ok(()),
        Some(unit) => Err(ReferralError::NotVisible(format!(
            "police_unit: the caller is of unit {unit}, not {police_unit}"
        ))),
        None => Err(ReferralError::NotVisible(
            "the caller's token names no police unit".into(),
        )),
    }
}

/// Starts following the leads of `unit` after `cursor`.
pub async fn watch(shared: Shared, unit: String, cursor: u64) -> Result<LeadStream, ReferralError> {
    let stream = ensure_workflow_stream(&shared.js, 1).await?;
    let config = jetstream::consumer::pull::OrderedConfig {
        filter_subject: referral_filter(),
        deliver_policy: if cursor == 0 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: cursor + 1,
            }
        },
        ..Default::default()
    };
    let unavailable = |e: &dyn std::fmt::Display| {
        ReferralError::Unavailable(format!("cannot follow the workflow stream: {e}"))
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| unavailable(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
    let (tx, rx) = mpsc::channel::<Result<Lead, Status>>(256);
    tokio::spawn(async move {
        let mut watcher = Watcher {
            shared,
            unit,
            states: HashMap::new(),
        };
        loop {
            let next = tokio::select! {
                _ = tx.closed() => return,
                next = next_decoded::<ReferralEvent, _, _>(&mut messages, "lead") => next,
            };
            let item = match next {
                Err(status) => Err(status),
                Ok((sequence, event)) => match watcher.lead(sequence, event).await {
                    Ok(None) => continue,
                    Ok(Some(lead)) => Ok(lead),
                    Err(e) => Err(e.into_status()),
                },
            };
            if !forward(&tx, item).await {
                return;
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

struct Watcher {
    shared: Shared,
    unit: String,
    /// Each referral met so far, as of the last event scanned.
    states: HashMap<String, Referral>,
}

impl Watcher {
    /// The lead `event` is for the unit, if it concerns the unit.
    async fn lead(
        &mut self,
        sequence: u64,
        event: ReferralEvent,
    ) -> Result<Option<Lead>, ReferralError> {
        let before = self.before(&event).await?;
        let held =
            before.as_ref().and_then(|r| r.police_unit.as_deref()) == Some(self.unit.as_str());
        let concerns = held || lead_unit(&event) == Some(self.unit.as_str());
        let after = evolve(before, &event);
        let lead = if concerns {
            Some(Lead {
                cursor: sequence,
                referral: Some(self.shared.view(&after, false)?),
                event: Some(event),
            })
        } else {
            None
        };
        self.states.insert(after.id.clone(), after);
        Ok(lead)
    }

    /// The referral just before `event` (its first `version - 1` events).
    async fn before(&mut self, event: &ReferralEvent) -> Result<Option<Referral>, ReferralError> {
        let wanted = event.version.saturating_sub(1);
        if wanted == 0 {
            return Ok(None);
        }
        if let Some(r) = self.states.remove(&event.referral_id) {
            if r.version == wanted {
                return Ok(Some(r));
            }
        }
        let n = usize::try_from(wanted).unwrap_or(usize::MAX);
        if let Some(stored) = self.shared.referrals.get(&event.referral_id)? {
            if stored.events.len() >= n {
                return Ok(stored.replay_first(n));
            }
        }
        let events = history(&self.shared.js, &event.referral_id).await?;
        Ok(replay(events.iter().map(|(_, e)| e).take(n)))
    }
}
