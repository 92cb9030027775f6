//! Overdue referrals surface on their own: a task that, on the injected clock, finds referrals whose current state's
//! statutory clock has run out and raises one alert per (referral, state entered, deadline) on the derived stream
//! (`caselink.overdue.<2>.<4>.<6>` of the referral's region; payload the `ReferralView` without history).
//!
//! Raised once: the `Nats-Msg-Id` is `overdue.<referral>.<version>.<due unix seconds>` (the version names the state
//! entry, the deadline follows from it), and a raised alert is remembered in the projection after the ack, so neither
//! a later scan nor a restart raises it again. A rebuilt projection may re-emit alerts (derived events may be).

use std::time::Duration;

use caselink_bus::derived::{ensure_derived_stream, overdue_subject};
use caselink_runtime::Cancel;
use prost::Message;

use super::{ReferralError, Shared};

/// Scans every `every` until cancelled.
pub async fn run(shared: Shared, every: Duration, cancel: Cancel) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match scan(&shared).await {
            Ok(0) => {}
            Ok(raised) => tracing::info!(raised, "overdue referral alerts raised"),
            Err(e) => tracing::warn!(error = %e, "overdue scan failed; retrying at the next tick"),
        }
    }
}

/// One scan: raises the alerts not raised yet; returns how many.
pub async fn scan(shared: &Shared) -> Result<usize, ReferralError> {
    let now = shared.now();
    let mut due = Vec::new();
    for item in shared.referrals.scan(None) {
        let (id, stored) = item?;
        let Some(referral) = stored.replay_first(usize::MAX) else {
            continue;
        };
        let Ok(Some(deadline)) = referral.due(&shared.calendar) else {
            continue;
        };
        if deadline.has_passed(now) && !shared.referrals.alerted(&id, referral.version)? {
            due.push((referral, deadline.due_at.unix_timestamp()));
        }
    }
    if due.is_empty() {
        return Ok(0);
    }
    ensure_derived_stream(&shared.js, 1).await?;
    let mut raised = 0;
    for (referral, due_secs) in due {
        let view = shared.view(&referral, false)?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("overdue.{}.{}.{due_secs}", referral.id, referral.version).as_str(),
        );
        let ack = shared
            .js
            .publish_with_headers(
                overdue_subject(&referral.region_code),
                headers,
                view.encode_to_vec().into(),
            )
            .await
            .map_err(|e| ReferralError::Unavailable(e.to_string()))?;
        ack.await
            .map_err(|e| ReferralError::Unavailable(e.to_string()))?;
        shared
            .referrals
            .mark_alerted(&referral.id, referral.version)
            .await?;
        tracing::info!(
            referral_id = %referral.id,
            version = referral.version,
            state = referral.state.name(),
            due_at = due_secs,
            "referral overdue"
        );
        raised += 1;
    }
    Ok(raised)
}
