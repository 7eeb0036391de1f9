//! How a step is written: the transition with its timeline event and Socket.IO event, the
//! guardrails in front of an action, the alert of a failed or escalated incident, and the
//! loop's metrics. Every other part of the loop goes through these.

use aegis_common::{contracts::ActionType, telemetry::TraceParent};
use aegis_remediation::{Move, Step, guardrail::Blocked};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::remediator::Remediator;
use crate::{
    db::{
        alerts::{self, NewAlert},
        incidents::{self, Guard, Guarded, Incident, IncidentEvent, IncidentPatch, Transition},
    },
    realtime::RemediationEvent,
};

/// The cooldown and the per-namespace cap, then `t` (with `take`, the incident takes an
/// action slot in the same transaction). `None` when a guardrail blocked it (the incident is
/// then closed as `suppressed`) or the incident had moved on.
pub(super) async fn guarded_advance(
    state: &Remediator,
    incident: &Incident,
    take: bool,
    t: &Transition<'_>,
) -> Result<Option<Incident>, sqlx::Error> {
    let config = &state.config;
    let cooldown = i64::try_from(config.cooldown.as_secs()).unwrap_or(i64::MAX);
    let guard = Guard::Enforce {
        cooldown_seconds: cooldown,
        max_per_hour: config.max_actions_per_namespace_per_hour,
        take,
    };
    let blocked = match incidents::guarded_transition(&state.db, incident, guard, t).await? {
        Guarded::Moved(moved) => {
            let (incident, event) = *moved;
            emit(state, &incident, &event);
            return Ok(Some(incident));
        }
        Guarded::MovedOn => {
            tracing::info!(incident_id = %incident.id, step = %t.step, to = %t.to.to(), "incident moved on; step skipped");
            return Ok(None);
        }
        Guarded::Blocked(Blocked::Cooldown { seconds_left }) => (
            "cooldown",
            format!(
                "cooldown: {}/{} was acted on less than {cooldown} s ago ({seconds_left} s left)",
                incident.namespace, incident.deployment
            ),
        ),
        Guarded::Blocked(Blocked::Capped { actions }) => (
            "capped",
            format!(
                "cap: {actions} actions in namespace {} in the last hour (REMEDIATION_MAX_ACTIONS_PER_NAMESPACE_PER_HOUR = {})",
                incident.namespace, config.max_actions_per_namespace_per_hour
            ),
        ),
    };
    blocked_by(state, incident, blocked).await?;
    Ok(None)
}

pub(super) async fn blocked_by(
    state: &Remediator,
    incident: &Incident,
    (outcome, reason): (&'static str, String),
) -> Result<(), sqlx::Error> {
    close(
        state,
        incident,
        Step::Guardrail,
        json!({"guardrail": outcome, "reason": reason}),
        IncidentPatch::default(),
    )
    .await?;
    count_outcome(state, outcome);
    Ok(())
}

/// Raises an alert and moves the incident to `escalated`.
pub(crate) async fn escalate(
    state: &Remediator,
    incident: &Incident,
    step: Step,
    reason: &str,
    details: Value,
) -> Result<(), sqlx::Error> {
    close_with_alert(state, incident, Move::Escalate, step, reason, details).await?;
    count_outcome(state, "escalated");
    Ok(())
}

/// Raises an alert and moves the incident to `failed`.
pub(super) async fn fail(
    state: &Remediator,
    incident: &Incident,
    step: Step,
    reason: &str,
    details: Value,
) -> Result<(), sqlx::Error> {
    close_with_alert(state, incident, Move::Fail, step, reason, details).await?;
    count_outcome(state, "failed");
    Ok(())
}

/// Best effort after an internal error (the database may be what failed).
pub(super) async fn fail_quietly(
    state: &Remediator,
    id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    if let Some(incident) = incidents::get(&state.db, id).await? {
        fail(state, &incident, Step::Error, reason, json!({})).await?;
    }
    Ok(())
}

/// Raises an alert and makes `closing` (failing or escalating) with `step`.
pub(super) async fn close_with_alert(
    state: &Remediator,
    incident: &Incident,
    closing: Move,
    step: Step,
    reason: &str,
    details: Value,
) -> Result<(), sqlx::Error> {
    let title = format!(
        "Remediation {}: {}/{}",
        closing.to(),
        incident.namespace,
        incident.deployment
    );
    let alert = alerts::insert(
        &state.db,
        &NewAlert {
            title: &title,
            description: Some(reason),
            severity: &incident.severity,
            metadata: json!({
                "source": "remediation",
                "incidentId": incident.id,
                "correlationId": incident.correlation_id,
                "namespace": incident.namespace,
                "deployment": incident.deployment,
                "pod": incident.pod,
                "step": step.as_str(),
            }),
        },
    )
    .await?;
    state.realtime.emit_alert(&alert);
    let mut details = match details {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    details.insert("reason".into(), json!(reason));
    details.insert("alertId".into(), json!(alert.id));
    advance(
        state,
        incident,
        closing,
        step,
        Value::Object(details),
        IncidentPatch::default(),
    )
    .await?;
    Ok(())
}

/// Closes an open incident as `suppressed`: it is deliberately not acted on.
pub(super) async fn close(
    state: &Remediator,
    incident: &Incident,
    step: Step,
    details: Value,
    patch: IncidentPatch,
) -> Result<(), sqlx::Error> {
    advance(state, incident, Move::Suppress, step, details, patch).await?;
    Ok(())
}

/// One transition plus its Socket.IO event. `None` when the incident had moved on (a
/// concurrent approval or rejection): the caller stops.
pub(super) async fn advance(
    state: &Remediator,
    incident: &Incident,
    to: Move,
    step: Step,
    details: Value,
    patch: IncidentPatch,
) -> Result<Option<Incident>, sqlx::Error> {
    let t = Transition {
        to,
        step,
        details: &details,
        patch: &patch,
    };
    match incidents::transition(&state.db, incident.id, &t).await? {
        Some((incident, event)) => {
            emit(state, &incident, &event);
            Ok(Some(incident))
        }
        None => {
            tracing::info!(incident_id = %incident.id, step = %step, to = %to.to(), "incident moved on; step skipped");
            Ok(None)
        }
    }
}

/// A timeline event without a status change.
pub(super) async fn note(
    state: &Remediator,
    id: Uuid,
    step: Step,
    details: Value,
) -> Result<(), sqlx::Error> {
    if let Some((incident, event)) = incidents::append_event(&state.db, id, step, &details).await? {
        emit(state, &incident, &event);
    }
    Ok(())
}

/// Pushes a timeline event to Socket.IO clients.
pub(crate) fn emit(state: &Remediator, incident: &Incident, event: &IncidentEvent) {
    state.realtime.emit_remediation(&RemediationEvent {
        incident_id: incident.id,
        correlation_id: incident.correlation_id.clone().unwrap_or_default(),
        step: event.step.to_string(),
        status: event.status.to_string(),
        at: event.at,
        details: event.details.clone(),
    });
}

/// The incident's correlation id as a trace (a fresh one if it has none).
pub(crate) fn trace_of(incident: &Incident) -> TraceParent {
    incident
        .correlation_id
        .as_deref()
        .and_then(TraceParent::from_trace_id)
        .unwrap_or_else(TraceParent::new_root)
}

pub(super) fn count_outcome(state: &Remediator, outcome: &str) {
    state
        .backend_metrics
        .remediation_decisions
        .with_label_values(&[outcome])
        .inc();
}

pub(super) fn count_action(state: &Remediator, action: ActionType, result: &str) {
    state
        .backend_metrics
        .remediation_actions
        .with_label_values(&[action.as_str(), result])
        .inc();
}

pub(super) fn count_verification(state: &Remediator, result: &str) {
    state
        .backend_metrics
        .remediation_verifications
        .with_label_values(&[result])
        .inc();
}
