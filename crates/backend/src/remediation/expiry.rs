//! Approvals expire. An incident that waited for approval past its `approval_expires_at`
//! moves to `expired` (its notification goes out with the step), so it stops absorbing the
//! signals of its fingerprint and the next one opens a new incident, decided afresh.
//!
//! Every replica sweeps; the move is a compare-and-set, so an approval or another replica
//! that got there first wins and the sweep skips the incident.

use std::time::Duration;

use aegis_remediation::{Move, Step};
use serde_json::json;

use super::{remediator::Remediator, steps::emit};
use crate::db::incidents::{self, IncidentPatch, Transition};

/// Incidents expired per sweep (the rest wait for the next one).
const BATCH: i64 = 100;

/// The sweep period for an approval timeout: a tenth of it, between 250 ms and 15 s.
#[must_use]
pub fn period(timeout: Duration) -> Duration {
    (timeout / 10).clamp(Duration::from_millis(250), Duration::from_secs(15))
}

/// Expires what is due; answers how many incidents expired.
pub async fn sweep(state: &Remediator) -> Result<usize, sqlx::Error> {
    let timeout = i64::try_from(state.config.approval_timeout.as_secs()).unwrap_or(i64::MAX);
    let due = incidents::approvals_expired(&state.db, BATCH, timeout).await?;
    let minutes = state.config.approval_timeout.as_secs().div_ceil(60);
    let details = json!({
        "reason": format!(
            "nobody approved or rejected the planned action within {minutes} min \
             (REMEDIATION_APPROVAL_TIMEOUT_SECONDS); the next signal opens a new incident"
        ),
    });
    let patch = IncidentPatch::default();
    let mut expired = 0;
    for id in due {
        let t = Transition {
            to: Move::Expire,
            step: Step::Expired,
            details: &details,
            patch: &patch,
        };
        if let Some((incident, event)) = incidents::transition(&state.db, id, &t).await? {
            emit(state, &incident, &event);
            state
                .backend_metrics
                .remediation_decisions
                .with_label_values(&["expired"])
                .inc();
            expired += 1;
        }
    }
    Ok(expired)
}

/// Sweeps every [`period`] until the loop stops.
pub fn spawn(state: &Remediator) {
    let st = state.clone();
    let every = period(state.config.approval_timeout);
    state.tasks.spawn(async move {
        loop {
            if let Err(e) = sweep(&st).await {
                tracing::warn!(error = %e, "approval expiry sweep failed; retrying");
            }
            tokio::select! {
                () = st.stop.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_runs_ten_times_per_timeout_within_bounds() {
        assert_eq!(period(Duration::from_secs(1800)), Duration::from_secs(15));
        assert_eq!(period(Duration::from_secs(60)), Duration::from_secs(6));
        assert_eq!(period(Duration::from_secs(1)), Duration::from_millis(250));
    }
}
