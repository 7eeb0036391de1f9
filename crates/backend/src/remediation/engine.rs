//! The decision path: for each new incident, off the request path,
//! recommended action (from the signal or the ai-engine) → route → policy
//! evaluation (`self_healing`) → mode and guardrails → v2-signed executor call →
//! outcome → verification after a delay. Every step is a timeline event and a
//! `remediation` Socket.IO event; the correlation id of the incident is the trace id of every
//! call it makes.
//!
//! Nothing here holds state that a restart would lose: the incident row says where it stands,
//! and [`resume`] picks up what a previous process left mid-flight.

use std::{sync::Arc, time::Duration};

use aegis_common::{
    contracts::{
        ActionType, DeploymentStatus, PolicyDecisionSummary, RemediationAction, SignalWindow,
    },
    telemetry::TraceParent,
};
use aegis_policy::{OwnedContext, OwnedRequest, PolicyType, RemediationMode};
use aegis_remediation::{
    Move, Status, Step,
    guardrail::Blocked,
    plan::{self, Route},
    verify::{Observed, Verdict, verdict},
};
use chrono::Utc;
use serde_json::{Map, Value, json};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

use super::{config::RemediationConfig, signal::window_of};
use crate::{
    clients::executor::ExecutorError,
    db::{
        alerts::{self, NewAlert},
        incidents::{self, Guard, Guarded, Incident, IncidentEvent, IncidentPatch, Transition},
    },
    policy::EvaluationMeta,
    realtime::RemediationEvent,
    state::AppState,
};

/// The `userId` of the loop's policy evaluations.
pub const LOOP_USER: &str = "aegis-remediation";

/// Incidents older than this that were never decided (the backend was down) are escalated at
/// start-up instead of acted on: the signal is stale.
const STALE_AFTER: chrono::Duration = chrono::Duration::minutes(10);

/// The loop's settings and its background tasks; cheap to clone.
#[derive(Debug, Clone)]
pub struct Remediator {
    /// Settings.
    pub config: Arc<RemediationConfig>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Remediator {
    /// A loop with `config` and no task running.
    #[must_use]
    pub fn new(config: RemediationConfig) -> Self {
        Self {
            config: Arc::new(config),
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        }
    }

    /// Stops waiting verifications (they are due again after a restart) and waits up to
    /// `timeout` for decisions and executor calls in flight.
    pub async fn shutdown(&self, timeout: Duration) {
        self.stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(timeout, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tasks.len(),
                "remediation tasks still running at shutdown; they resume on the next start"
            );
        }
    }
}

/// Starts the decision path for a newly opened incident, in the background.
pub fn spawn_decision(state: &AppState, incident: Incident) {
    let st = state.clone();
    state.remediation.tasks.spawn(async move {
        let id = incident.id;
        if let Err(e) = decide(&st, incident).await {
            tracing::error!(incident_id = %id, error = %e, "remediation decision failed");
            let _ = fail_quietly(&st, id, &format!("internal error: {e}")).await;
        }
    });
}

/// Runs an approved incident's action in the background (the incident is `executing`).
pub fn spawn_execution(state: &AppState, incident: Incident, decision: PolicyDecisionSummary) {
    let st = state.clone();
    state.remediation.tasks.spawn(async move {
        let id = incident.id;
        if let Err(e) = execute(&st, incident, decision).await {
            tracing::error!(incident_id = %id, error = %e, "remediation action failed");
            let _ = fail_quietly(&st, id, &format!("internal error: {e}")).await;
        }
    });
}

/// Picks up incidents a previous process left mid-flight: undecided recent ones are decided,
/// old ones escalated; an interrupted executor call is escalated (its outcome is unknown, so
/// it is never repeated blindly); verifications are rescheduled.
pub async fn resume(state: &AppState) -> Result<usize, sqlx::Error> {
    let pending = incidents::unfinished(&state.db).await?;
    let count = pending.len();
    for incident in pending {
        match incident.status {
            Status::Open if Utc::now() - incident.created_at < STALE_AFTER => {
                spawn_decision(state, incident);
            }
            Status::Open => {
                escalate(
                    state,
                    &incident,
                    Step::Decision,
                    "the backend stopped before deciding, and the signal is now too old to act on",
                    json!({}),
                )
                .await?;
            }
            Status::Executing => {
                let reason = format!(
                    "the backend stopped during the executor call; its outcome is unknown (look \
                     for correlation id {} in the executor audit)",
                    incident.correlation_id.as_deref().unwrap_or("-")
                );
                escalate(state, &incident, Step::Outcome, &reason, json!({})).await?;
            }
            Status::Verifying => {
                let due = incident.verify_at.unwrap_or_else(Utc::now);
                spawn_verification(state, incident.id, due);
            }
            _ => {}
        }
    }
    Ok(count)
}

/// Steps 1–4 and, in `auto` mode, 5–6.
async fn decide(state: &AppState, incident: Incident) -> Result<(), sqlx::Error> {
    let config = state.remediation.config.clone();
    if config.mode == RemediationMode::Off {
        note(
            state,
            incident.id,
            Step::Decision,
            json!({
                "mode": "off",
                "reason": "REMEDIATION_MODE is off: the incident is recorded and no action is considered",
            }),
        )
        .await?;
        count_outcome(state, "recorded");
        return Ok(());
    }
    let trace = trace_of(&incident);
    let window = window_of(&incident.signal);

    // 1. The recommended action.
    let recommended = incident
        .recommended_action
        .as_deref()
        .and_then(parse_action);
    let action = match (recommended, &window) {
        (Some(a), _) => a,
        (None, None) => {
            return escalate(
                state,
                &incident,
                Step::Analysis,
                "the signal recommends no action and has no metric window to analyse",
                json!({}),
            )
            .await;
        }
        (None, Some(w)) => match analyse(state, &incident, w, &trace).await? {
            Some(a) => a,
            None => return Ok(()),
        },
    };

    // 2. The route and the target from the labels.
    let (policy_action, action_type) = match plan::route(action, incident.pod.is_some()) {
        Route::Nothing => {
            close(
                state,
                &incident,
                Step::Decision,
                json!({"reason": "the recommended action is no_action"}),
                IncidentPatch::default(),
            )
            .await?;
            count_outcome(state, "suppressed");
            return Ok(());
        }
        Route::AlertOnly => {
            let reason = if action == RemediationAction::RestartPod {
                format!(
                    "restart_pod needs a pod, and the signal names only deployment {}/{}",
                    incident.namespace, incident.deployment
                )
            } else {
                format!(
                    "{} is not automated; an operator should act",
                    action.as_str()
                )
            };
            return escalate(state, &incident, Step::Decision, &reason, json!({})).await;
        }
        Route::Act {
            policy_action,
            action_type,
        } => (policy_action, action_type),
    };

    // 3. The policy decision.
    let metadata = plan::policy_metadata(&incident.subject(), window.as_ref());
    let resource = format!("service:{}", incident.deployment);
    let request = OwnedRequest {
        policy_type: PolicyType::SelfHealing,
        action: policy_action.to_owned(),
        resource: resource.clone(),
        context: OwnedContext {
            user_id: Some(LOOP_USER.to_owned()),
            role: Some("service".to_owned()),
            metadata: Some(metadata.clone()),
            ip_address: None,
            user_agent: None,
        },
    };
    let meta = EvaluationMeta {
        correlation_id: incident.correlation_id.clone(),
    };
    let evaluation = state.policy.evaluate(&request, meta, false).await;
    let decision = &evaluation.decision;
    let policy_name = decision.applied_policies.last().cloned();
    let policy_mode = evaluation.remediation_mode;
    let details = json!({
        "action": policy_action,
        "resource": resource,
        "allowed": decision.allowed,
        "reason": decision.reason,
        "appliedPolicies": decision.applied_policies,
        "policy": policy_name,
        "decisionId": evaluation.decision_id,
        "remediationMode": policy_mode.map(RemediationMode::as_str),
        "context": metadata,
    });
    let patch = IncidentPatch {
        decision_id: Some(evaluation.decision_id),
        policy_name: policy_name.clone(),
        ..IncidentPatch::default()
    };
    if !decision.allowed {
        close(state, &incident, Step::Policy, details, patch).await?;
        count_outcome(state, "denied");
        return Ok(());
    }
    // 4. Mode and plan. The replicas a scale needs are read while the policy step is written:
    // the read changes nothing, and an incident that moved on meanwhile just drops it.
    let mode = config
        .mode
        .stricter(policy_mode.unwrap_or(RemediationMode::Auto));
    let (advanced, replicas) = tokio::join!(
        advance(
            state,
            &incident,
            Move::RecordPolicy,
            Step::Policy,
            details,
            patch
        ),
        read_replicas(state, &incident, action, mode, &trace),
    );
    let Some(incident) = advanced? else {
        return Ok(());
    };
    let summary = PolicyDecisionSummary {
        allowed: true,
        reason: decision.reason.clone(),
        applied_policies: decision.applied_policies.clone(),
        decision_id: Some(evaluation.decision_id.to_string()),
        explanation: None,
    };

    if mode == RemediationMode::Off {
        let reason = format!(
            "policy {} sets remediationMode off",
            policy_name.as_deref().unwrap_or("-")
        );
        close(
            state,
            &incident,
            Step::Decision,
            json!({"mode": "off", "reason": reason}),
            mode_patch(mode),
        )
        .await?;
        count_outcome(state, "suppressed");
        return Ok(());
    }
    let Some((current, target)) = replicas_plan(state, &incident, action, replicas).await? else {
        return Ok(());
    };
    let params = plan::action_params(action_type, &incident.subject(), target, false);
    let blast = plan::blast_radius(
        action_type,
        &incident.namespace,
        current,
        target,
        config.approval_scale_ratio,
        &config.production_namespaces,
    );
    let planned = json!({
        "actionType": action_type.as_str(),
        "actionParams": params,
        "mode": mode.as_str(),
        "currentReplicas": current,
        "blastRadius": blast,
    });
    let patch = IncidentPatch {
        action_type: Some(action_type.as_str().to_owned()),
        action_params: Some(Value::Object(params.clone())),
        mode: Some(mode.as_str().to_owned()),
        ..IncidentPatch::default()
    };

    match mode {
        RemediationMode::DryRun => {
            let dry = plan::action_params(action_type, &incident.subject(), target, true);
            let answer = state
                .executor
                .execute(action_type, dry, Some(summary), &trace)
                .await;
            let (result, executor) = match &answer {
                Ok(r) => (
                    if r.success { "dry_run" } else { "failure" },
                    json!({"success": r.success, "auditId": r.audit_id, "result": r.result, "error": r.error}),
                ),
                Err(e) => ("error", json!({"success": false, "error": e.to_string()})),
            };
            count_action(state, action_type, result);
            let mut details = planned;
            details["executor"] = executor;
            details["reason"] =
                json!("dry_run: the action was validated by the executor and not applied");
            let patch = IncidentPatch {
                executor_audit_id: answer.ok().map(|r| r.audit_id),
                ..patch
            };
            close(state, &incident, Step::DryRun, details, patch).await?;
            count_outcome(state, "dry_run");
        }
        RemediationMode::Approval | RemediationMode::Auto
            if mode == RemediationMode::Approval || blast.is_some() =>
        {
            let mut details = planned;
            details["reason"] = json!(blast.unwrap_or_else(|| {
                "REMEDIATION_MODE or the policy asks for approval".to_owned()
            }));
            let waiting = Transition {
                to: Move::AskApproval,
                step: Step::ApprovalRequired,
                details: &details,
                patch: &patch,
            };
            if guarded_advance(state, &incident, false, &waiting)
                .await?
                .is_some()
            {
                count_outcome(state, "awaiting_approval");
            }
        }
        RemediationMode::Approval | RemediationMode::Auto | RemediationMode::Off => {
            let executing = Transition {
                to: Move::Act,
                step: Step::Execute,
                details: &planned,
                patch: &patch,
            };
            let Some(incident) = guarded_advance(state, &incident, true, &executing).await? else {
                return Ok(());
            };
            count_outcome(state, "executed");
            execute(state, incident, summary).await?;
        }
    }
    Ok(())
}

/// Asks the ai-engine what to do with the window. `None` when the incident was closed here
/// (analysis unavailable, or nothing found).
async fn analyse(
    state: &AppState,
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
async fn read_replicas(
    state: &AppState,
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
async fn replicas_plan(
    state: &AppState,
    incident: &Incident,
    action: RemediationAction,
    read: Option<Result<Option<DeploymentStatus>, ExecutorError>>,
) -> Result<Option<(Option<i32>, Option<i32>)>, sqlx::Error> {
    let Some(read) = read else {
        return Ok(Some((None, None)));
    };
    let config = &state.remediation.config;
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

/// Step 5 and 6: the signed call and its outcome; on success, verification is scheduled.
async fn execute(
    state: &AppState,
    incident: Incident,
    decision: PolicyDecisionSummary,
) -> Result<(), sqlx::Error> {
    let trace = trace_of(&incident);
    let (Some(action_type), Some(Value::Object(params))) = (
        incident.action_type.as_deref().and_then(ActionType::parse),
        incident.action_params.clone(),
    ) else {
        return fail(
            state,
            &incident,
            Step::Execute,
            "the planned action is missing or malformed",
            json!({}),
        )
        .await;
    };
    let answer = state
        .executor
        .execute(action_type, params, Some(decision), &trace)
        .await;
    let elapsed = (Utc::now() - incident.created_at)
        .to_std()
        .unwrap_or_default();
    state
        .backend_metrics
        .remediation_loop_duration
        .with_label_values(&[action_type.as_str()])
        .observe(elapsed.as_secs_f64());
    match answer {
        Ok(r) if r.success => {
            count_action(state, action_type, "success");
            let delay = chrono::Duration::from_std(state.remediation.config.verify_delay)
                .unwrap_or_else(|_| chrono::Duration::seconds(120));
            let due = Utc::now() + delay;
            let details = json!({
                "success": true,
                "auditId": r.audit_id,
                "result": r.result,
                "verifyAt": aegis_common::time::rfc3339_millis(due),
            });
            let patch = IncidentPatch {
                executor_audit_id: Some(r.audit_id),
                verify_at: Some(due),
                ..IncidentPatch::default()
            };
            if advance(
                state,
                &incident,
                Move::ActionSucceeded,
                Step::Outcome,
                details,
                patch,
            )
            .await?
            .is_some()
            {
                spawn_verification(state, incident.id, due);
            }
            Ok(())
        }
        Ok(r) => {
            count_action(state, action_type, "failure");
            let error = r
                .error
                .clone()
                .unwrap_or_else(|| "unknown error".to_owned());
            let patch_details = json!({"success": false, "auditId": r.audit_id, "error": error});
            fail(
                state,
                &incident,
                Step::Outcome,
                &format!("the executor reported a failure: {error}"),
                patch_details,
            )
            .await
        }
        Err(e) => {
            count_action(state, action_type, "error");
            fail(
                state,
                &incident,
                Step::Outcome,
                &format!("the executor call failed: {e}"),
                json!({"success": false}),
            )
            .await
        }
    }
}

/// Schedules the verification at `due`. A shutdown cancels the wait; [`resume`] schedules
/// it again from `verify_at`.
pub fn spawn_verification(state: &AppState, id: Uuid, due: chrono::DateTime<Utc>) {
    let st = state.clone();
    let stop = state.remediation.stop.clone();
    state.remediation.tasks.spawn(async move {
        let wait = (due - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        if let Err(e) = verify(&st, id).await {
            tracing::error!(incident_id = %id, error = %e, "remediation verification failed");
        }
    });
}

/// Verification: recovered when the deployment is fully ready and no signal with the same
/// fingerprint arrived since the action; otherwise escalated (an alert, no second action).
async fn verify(state: &AppState, id: Uuid) -> Result<(), sqlx::Error> {
    let Some(incident) = incidents::get(&state.db, id).await? else {
        return Ok(());
    };
    if incident.status != Status::Verifying {
        return Ok(());
    }
    let trace = trace_of(&incident);
    let since = incident.acted_at.unwrap_or(incident.created_at);
    let repeats = incidents::signals_since(&state.db, id, since).await?;
    let read = state
        .executor
        .deployment(&incident.namespace, &incident.deployment, &trace)
        .await;
    let error = read.as_ref().err().map(ToString::to_string);
    let (observed, details) = match (&read, &error) {
        (Ok(Some(d)), _) => (
            Observed::Deployment(d),
            json!({
                "replicas": d.replicas,
                "readyReplicas": d.ready_replicas,
                "availableReplicas": d.available_replicas,
                "revision": d.revision,
                "repeatSignals": repeats,
            }),
        ),
        (Ok(None), _) => (
            Observed::Gone,
            json!({"error": "the deployment no longer exists"}),
        ),
        (Err(_), e) => {
            let e = e.as_deref().unwrap_or_default();
            (Observed::Unreadable(e), json!({"error": e}))
        }
    };
    let reason = match verdict(observed, repeats) {
        Verdict::NotRecovered(reason) => reason,
        Verdict::Recovered => {
            advance(
                state,
                &incident,
                Move::Resolve,
                Step::Verify,
                details,
                IncidentPatch::default(),
            )
            .await?;
            count_verification(state, "resolved");
            return Ok(());
        }
    };
    escalate(state, &incident, Step::Verify, &reason, details).await?;
    count_verification(state, "escalated");
    Ok(())
}

/// The cooldown and the per-namespace cap, then `t` (with `take`, the incident takes an
/// action slot in the same transaction). `None` when a guardrail blocked it (the incident is
/// then closed as `suppressed`) or the incident had moved on.
async fn guarded_advance(
    state: &AppState,
    incident: &Incident,
    take: bool,
    t: &Transition<'_>,
) -> Result<Option<Incident>, sqlx::Error> {
    let config = &state.remediation.config;
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

async fn blocked_by(
    state: &AppState,
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
    state: &AppState,
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
async fn fail(
    state: &AppState,
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
async fn fail_quietly(state: &AppState, id: Uuid, reason: &str) -> Result<(), sqlx::Error> {
    if let Some(incident) = incidents::get(&state.db, id).await? {
        fail(state, &incident, Step::Error, reason, json!({})).await?;
    }
    Ok(())
}

/// Raises an alert and makes `closing` (failing or escalating) with `step`.
async fn close_with_alert(
    state: &AppState,
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
async fn close(
    state: &AppState,
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
async fn advance(
    state: &AppState,
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
async fn note(state: &AppState, id: Uuid, step: Step, details: Value) -> Result<(), sqlx::Error> {
    if let Some((incident, event)) = incidents::append_event(&state.db, id, step, &details).await? {
        emit(state, &incident, &event);
    }
    Ok(())
}

/// Pushes a timeline event to Socket.IO clients.
pub(crate) fn emit(state: &AppState, incident: &Incident, event: &IncidentEvent) {
    state.realtime.emit_remediation(&RemediationEvent {
        incident_id: incident.id,
        correlation_id: incident.correlation_id.clone().unwrap_or_default(),
        step: event.step.to_string(),
        status: event.status.to_string(),
        at: event.at,
        details: event.details.clone(),
    });
}

fn mode_patch(mode: RemediationMode) -> IncidentPatch {
    IncidentPatch {
        mode: Some(mode.as_str().to_owned()),
        ..IncidentPatch::default()
    }
}

/// The incident's correlation id as a trace (a fresh one if it has none).
pub(crate) fn trace_of(incident: &Incident) -> TraceParent {
    incident
        .correlation_id
        .as_deref()
        .and_then(TraceParent::from_trace_id)
        .unwrap_or_else(TraceParent::new_root)
}

fn parse_action(s: &str) -> Option<RemediationAction> {
    serde_json::from_value(Value::String(s.to_owned())).ok()
}

fn count_outcome(state: &AppState, outcome: &str) {
    state
        .backend_metrics
        .remediation_decisions
        .with_label_values(&[outcome])
        .inc();
}

fn count_action(state: &AppState, action: ActionType, result: &str) {
    state
        .backend_metrics
        .remediation_actions
        .with_label_values(&[action.as_str(), result])
        .inc();
}

fn count_verification(state: &AppState, result: &str) {
    state
        .backend_metrics
        .remediation_verifications
        .with_label_values(&[result])
        .inc();
}
