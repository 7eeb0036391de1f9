//! The decision path's reads: what the ai-engine makes of a signal's window, and the replicas a
//! scale starts from. Each closes the incident itself when it cannot go on.

use aegis_common::{
    contracts::{DeploymentStatus, RemediationAction, SignalWindow},
    telemetry::TraceParent,
};
use aegis_policy::RemediationMode;
use aegis_remediation::{Move, Step, plan};
use serde_json::{Value, json};

use super::{
    remediator::Remediator,
    steps::{advance, count_outcome, escalate, fail},
};
use crate::{
    clients::executor::ExecutorError,
    db::incidents::{Incident, IncidentPatch},
};

/// Asks the ai-engine what to do with the window. `None` when the incident was closed here
/// (analysis unavailable, or nothing found).
pub(super) async fn analyse(
    state: &Remediator,
    incident: &Incident,
    window: &SignalWindow,
    trace: &TraceParent,
) -> Result<Option<RemediationAction>, sqlx::Error> {
    let context = json!({
        "namespace": incident.namespace,
        "deployment": incident.deployment,
        "pod": incident.pod,
        "incidentId": incident.id,
    });
    let failure = incident.kind == "failure";
    let answer = if failure {
        let body = json!({"metrics": window.metrics, "logs": window.logs.clone().unwrap_or_default(), "context": context});
        state.ai_engine.detect_failure(&body, Some(trace)).await
    } else {
        let body = json!({"metrics": window.metrics, "context": context});
        state.ai_engine.detect_anomaly(&body, Some(trace)).await
    };
    let prediction = match answer {
        Ok(p) => p,
        Err(e) => {
            let reason = format!("analysis unavailable: {e}");
            escalate(state, incident, Step::Analysis, &reason, json!({})).await?;
            count_outcome(state, "analysis_unavailable");
            return Ok(None);
        }
    };
    let (flagged, recommended) = if failure {
        (
            prediction.get("failure_detected").and_then(Value::as_bool) == Some(true),
            prediction
                .get("recommended_actions")
                .and_then(|a| a.get(0))
                .cloned(),
        )
    } else {
        (
            prediction.get("is_anomaly").and_then(Value::as_bool) == Some(true),
            prediction.get("recommended_action").cloned(),
        )
    };
    let action = recommended
        .and_then(|v| serde_json::from_value::<RemediationAction>(v).ok())
        .filter(|_| flagged)
        .unwrap_or(RemediationAction::NoAction);
    let details = json!({
        "method": prediction.pointer("/details/method"),
        "flagged": flagged,
        "score": prediction.get("anomaly_score"),
        "severity": prediction.get("severity"),
        "confidence": prediction.get("confidence"),
        "failureType": prediction.get("failure_type"),
        "recommendedAction": action.as_str(),
    });
    let patch = IncidentPatch {
        recommended_action: Some(action.as_str().to_owned()),
        ..IncidentPatch::default()
    };
    if advance(
        state,
        incident,
        Move::Analyse,
        Step::Analysis,
        details,
        patch,
    )
    .await?
    .is_none()
    {
        return Ok(None);
    }
    Ok(Some(action))
}

/// The deployment as the executor reads it, for a scale that will be planned;
/// `None` for other actions and when nothing will be planned.
pub(super) async fn read_replicas(
    state: &Remediator,
    incident: &Incident,
    action: RemediationAction,
    mode: RemediationMode,
    trace: &TraceParent,
) -> Option<Result<Option<DeploymentStatus>, ExecutorError>> {
    if mode == RemediationMode::Off
        || !matches!(
            action,
            RemediationAction::ScaleUp | RemediationAction::ScaleDown
        )
    {
        return None;
    }
    Some(
        state
            .executor
            .deployment(&incident.namespace, &incident.deployment, trace)
            .await,
    )
}

/// Computes a scale's target from the replicas [`read_replicas`] found.
/// `None` when the incident was closed here.
pub(super) async fn replicas_plan(
    state: &Remediator,
    incident: &Incident,
    action: RemediationAction,
    read: Option<Result<Option<DeploymentStatus>, ExecutorError>>,
) -> Result<Option<(Option<i32>, Option<i32>)>, sqlx::Error> {
    let Some(read) = read else {
        return Ok(Some((None, None)));
    };
    let config = &state.config;
    let current = match read {
        Ok(Some(d)) => d.replicas,
        Ok(None) => {
            let reason = format!(
                "deployment {} not found in namespace {}",
                incident.deployment, incident.namespace
            );
            fail(state, incident, Step::Plan, &reason, json!({})).await?;
            return Ok(None);
        }
        Err(e) => {
            let reason = format!("could not read the deployment through the executor: {e}");
            escalate(state, incident, Step::Plan, &reason, json!({})).await?;
            return Ok(None);
        }
    };
    let target = if action == RemediationAction::ScaleUp {
        plan::scale_up_target(current, config.scale_factor, config.max_replicas)
    } else {
        plan::scale_down_target(current, config.scale_factor)
    };
    if target == current {
        let reason = if action == RemediationAction::ScaleUp {
            format!(
                "already at {current} replicas, the most REMEDIATION_MAX_REPLICAS ({}) allows",
                config.max_replicas
            )
        } else {
            "already at 0 replicas".to_owned()
        };
        escalate(
            state,
            incident,
            Step::Plan,
            &reason,
            json!({"currentReplicas": current}),
        )
        .await?;
        return Ok(None);
    }
    Ok(Some((Some(current), Some(target))))
}
