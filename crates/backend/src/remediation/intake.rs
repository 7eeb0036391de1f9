//! Signal intake: open a new incident or join the open one with the same fingerprint.

use aegis_common::names::ResourceName;
use aegis_remediation::Step;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::{Signal, fingerprint};
use crate::db::incidents::{self, Incident, IncidentEvent, NewIncident};

/// What intake did with a signal.
#[derive(Debug, Clone)]
pub struct IntakeOutcome {
    /// The incident the signal opened or joined.
    pub incident: Incident,
    /// The timeline event it appended.
    pub event: IncidentEvent,
    /// Whether it joined an existing incident.
    pub deduplicated: bool,
}

/// How many times to retry when the open incident disappears between the failed insert and
/// the join (it was closed in between); after that the error is surfaced.
const MAX_ATTEMPTS: usize = 3;

/// Records `signal` under `correlation_id` (the request's trace id). A new incident is `open`
/// with a `signal` event; a duplicate only gets a `signal` event (no new decision).
///
/// Race-free: the partial unique index lets exactly one concurrent insert win; the losers join.
pub async fn accept_signal(
    db: &PgPool,
    signal: Signal,
    correlation_id: &str,
) -> Result<IntakeOutcome, sqlx::Error> {
    // Whatever arrived must fit PostgreSQL (no U+0000 in text or jsonb).
    let signal = &signal.storable();
    let fp = fingerprint(signal);
    let action = signal.recommended_action.map(|a| a.as_str().to_owned());
    let details = signal_details(signal, &fp, correlation_id, action.as_deref());
    let new = NewIncident {
        fingerprint: &fp,
        source: &signal.source,
        kind: &signal.kind,
        namespace: signal.target.namespace.as_str(),
        deployment: signal.target.deployment.as_str(),
        pod: signal.target.pod.as_ref().map(ResourceName::as_str),
        severity: &signal.severity,
        score: signal.score,
        confidence: signal.confidence,
        recommended_action: action.as_deref(),
        correlation_id,
        signal: &signal.raw,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        if let Some((incident, event)) =
            incidents::insert_if_absent(db, &new, Step::Signal, &details).await?
        {
            return Ok(IntakeOutcome {
                incident,
                event,
                deduplicated: false,
            });
        }
        if let Some((incident, event)) =
            incidents::join_open(db, &fp, Step::Signal, &details).await?
        {
            return Ok(IntakeOutcome {
                incident,
                event,
                deduplicated: true,
            });
        }
        if attempt >= MAX_ATTEMPTS {
            return Err(sqlx::Error::Protocol(format!(
                "incident with fingerprint {fp} kept changing during intake"
            )));
        }
    }
}

/// The details of a `signal` timeline event: enough to reconstruct what arrived when, without
/// repeating the (possibly large) window, and the evidence of a Kubernetes failure.
fn signal_details(signal: &Signal, fp: &str, correlation_id: &str, action: Option<&str>) -> Value {
    let mut details = json!({
        "source": signal.source,
        "kind": signal.kind,
        "observedAt": signal.observed_at,
        "fingerprint": fp,
        "severity": signal.severity,
        "score": signal.score,
        "confidence": signal.confidence,
        "recommendedAction": action,
        "target": signal.target,
        "correlationId": correlation_id,
    });
    // The Kubernetes watcher's evidence (the cause, named) belongs on the timeline.
    if let (Some(evidence), Some(map)) = (signal.raw.get("evidence"), details.as_object_mut()) {
        map.insert("evidence".into(), evidence.clone());
    }
    details
}
