//! The decision path: for each new incident, off the request path,
//! recommended action (from the signal or the ai-engine) → route → policy
//! evaluation (`self_healing`) → mode and guardrails → v2-signed executor call →
//! outcome → verification after a delay. Every step is a timeline event and a
//! `remediation` Socket.IO event; the correlation id of the incident is the trace id of every
//! call it makes.
//!
//! Nothing here holds state that a restart would lose: the incident row says where it stands,
//! and [`resume`] picks up what a previous process left mid-flight.

use aegis_common::contracts::{
    KUBERNETES_SOURCE, KubernetesEvidence, PolicyDecisionSummary, RemediationAction,
};
use aegis_policy::{EvaluationContext, EvaluationRequest, PolicyType, RemediationMode};
use aegis_remediation::{
    Move, Status, Step,
    plan::{self, Route},
};
use chrono::Utc;
use serde_json::{Value, json};

pub use super::outcome::spawn_verification;
pub(crate) use super::steps::{emit, trace_of};

use super::{
    analysis::{analyse, read_replicas, replicas_plan},
    mode,
    outcome::execute,
    remediator::Remediator,
    signal::window_of,
    steps::{
        advance, close, count_action, count_outcome, escalate, fail_quietly, guarded_advance, note,
    },
};
use crate::{
    db::incidents::{self, Incident, IncidentPatch, Transition},
    policy::EvaluationMeta,
};

/// The `userId` of the loop's policy evaluations.
pub const LOOP_USER: &str = "aegis-remediation";

/// Incidents older than this that were never decided (the backend was down) are escalated at
/// start-up instead of acted on: the signal is stale.
pub(super) const STALE_AFTER: chrono::Duration = chrono::Duration::minutes(10);

/// Starts the decision path for a newly opened incident, in the background.
pub fn spawn_decision(state: &Remediator, incident: Incident) {
    let st = state.clone();
    state.tasks.spawn(async move {
        let id = incident.id;
        if let Err(e) = decide(&st, incident).await {
            tracing::error!(incident_id = %id, error = %e, "remediation decision failed");
            let _ = fail_quietly(&st, id, &format!("internal error: {e}")).await;
        }
    });
}

/// Runs an approved incident's action in the background (the incident is `executing`).
pub fn spawn_execution(state: &Remediator, incident: Incident, decision: PolicyDecisionSummary) {
    let st = state.clone();
    state.tasks.spawn(async move {
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
pub async fn resume(state: &Remediator) -> Result<usize, sqlx::Error> {
    decide_recorded(state, None).await?;
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

/// [`decide_recorded`] in the background (a mode change answers at once, however many
/// incidents the switch recorded).
pub fn spawn_decide_recorded(state: &Remediator, namespace: Option<String>) {
    let st = state.clone();
    state.tasks.spawn(async move {
        if let Err(e) = decide_recorded(&st, namespace.as_deref()).await {
            tracing::error!(error = %e, "could not take up the incidents recorded while remediation was off");
        }
    });
}

/// Decides the incidents the kill switch only recorded (open, their last step its note), in
/// `namespace` or everywhere, now that the switch may allow it: after a mode change and at
/// start-up. One whose namespace is still off stays recorded; one whose last signal is older
/// than [`STALE_AFTER`] is escalated instead of acted on. Answers how many were taken up.
pub async fn decide_recorded(
    state: &Remediator,
    namespace: Option<&str>,
) -> Result<usize, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT i.id FROM incidents i \
          WHERE i.status = $1 AND ($2::text IS NULL OR i.namespace = $2) \
            AND (SELECT e.step = $3 AND e.details->>'mode' = 'off' FROM incident_events e \
                  WHERE e.incident_id = i.id ORDER BY e.id DESC LIMIT 1) \
          ORDER BY i.created_at LIMIT 1000",
    )
    .bind(Status::Open.as_str())
    .bind(namespace)
    .bind(Step::Decision.as_str())
    .fetch_all(&state.db)
    .await?;
    let mut taken = 0;
    for id in ids {
        let Some(incident) = incidents::get(&state.db, id).await? else {
            continue;
        };
        if mode::current(state, &incident.namespace).await?.mode == RemediationMode::Off {
            continue;
        }
        taken += 1;
        if Utc::now() - incident.updated_at < STALE_AFTER {
            spawn_decision(state, incident);
        } else {
            escalate(
                state,
                &incident,
                Step::Decision,
                "recorded while remediation was off, and its last signal is now too old to act on",
                json!({}),
            )
            .await?;
        }
    }
    Ok(taken)
}

/// Steps 1–4 and, in `auto` mode, 5–6.
async fn decide(state: &Remediator, incident: Incident) -> Result<(), sqlx::Error> {
    let config = state.config.clone();
    // The kill switch, as stored now: a change made through any replica applies here. With
    // it off, the incident is recorded and stays open, absorbing repeats of its signal; when
    // the switch is turned on again it is decided then (`decide_recorded`).
    let switch = mode::current(state, &incident.namespace).await?;
    if switch.mode == RemediationMode::Off {
        switched_off(state, &incident, &switch.reason).await?;
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
    // Evidence counts only from the Kubernetes watcher.
    let evidence = incident
        .signal
        .get("evidence")
        .filter(|_| incident.source == KUBERNETES_SOURCE)
        .and_then(|e| serde_json::from_value::<KubernetesEvidence>(e.clone()).ok());
    let metadata = plan::policy_metadata(&incident.subject(), window.as_ref(), evidence.as_ref());
    let resource = format!("service:{}", incident.deployment);
    let request = EvaluationRequest {
        policy_type: PolicyType::SelfHealing,
        action: policy_action.to_owned(),
        resource: resource.clone(),
        context: EvaluationContext {
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
    // With the per-policy trace: the timeline says why each policy did or did not decide,
    // which is what an operator asks first. It bypasses the decision cache, which matters
    // little at one evaluation per incident.
    let evaluation = state.policy.evaluate(&request, meta, true).await;
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
        "explanation": trace_messages(evaluation.explanation.as_ref()),
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
    // the read changes nothing, and an incident that moved on meanwhile just drops it. The
    // kill switch is read again meanwhile: the analysis and the evaluation may have taken
    // seconds, and a switch turned off during them must hold for this action too.
    let planned_mode = switch
        .mode
        .stricter(policy_mode.unwrap_or(RemediationMode::Auto));
    let (advanced, replicas, switch) = tokio::join!(
        advance(
            state,
            &incident,
            Move::RecordPolicy,
            Step::Policy,
            details,
            patch
        ),
        read_replicas(state, &incident, action, planned_mode, &trace),
        mode::current(state, &incident.namespace),
    );
    let Some(incident) = advanced? else {
        return Ok(());
    };
    let switch = switch?;
    if switch.mode == RemediationMode::Off {
        switched_off(state, &incident, &switch.reason).await?;
        return Ok(());
    }
    let mode = switch
        .mode
        .stricter(policy_mode.unwrap_or(RemediationMode::Auto));
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
            let expires = chrono::Utc::now()
                + chrono::Duration::from_std(config.approval_timeout)
                    .unwrap_or_else(|_| chrono::Duration::days(7));
            let mut details = planned;
            details["reason"] = json!(blast.unwrap_or_else(|| {
                if switch.mode == RemediationMode::Approval {
                    format!("{}: every action waits for approval", switch.reason)
                } else {
                    format!(
                        "policy {} asks for approval",
                        policy_name.as_deref().unwrap_or("-")
                    )
                }
            }));
            details["expiresAt"] = json!(aegis_common::time::rfc3339_millis(expires));
            let patch = IncidentPatch {
                approval_expires_at: Some(expires),
                ..patch
            };
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

/// What approving finds when it looks again.
#[derive(Debug)]
pub enum Replan {
    /// The action may run, with these parameters (a scale's target recomputed from the
    /// replicas the deployment has now).
    Ready {
        /// The `actionParams` to send.
        params: serde_json::Map<String, Value>,
        /// The replicas read now, for a scale.
        current_replicas: Option<i32>,
    },
    /// The mode in force now does not let an approval act (`off` or `dry_run`).
    ModeForbids(String),
    /// The plan no longer applies (the deployment is gone, or already at its bound): the
    /// incident was closed here, failed or escalated with an alert.
    Closed,
    /// The deployment could not be read through the executor: nothing changed, and the
    /// incident still waits.
    Unavailable(String),
}

/// Checks an approval against the present: the mode in force for the incident's namespace,
/// and the plan made again against the cluster as it is now.
pub async fn replan(state: &Remediator, incident: &Incident) -> Result<Replan, sqlx::Error> {
    let switch = mode::current(state, &incident.namespace).await?;
    if !matches!(
        switch.mode,
        RemediationMode::Approval | RemediationMode::Auto
    ) {
        return Ok(Replan::ModeForbids(format!(
            "{}: an approval does not act while it is",
            switch.reason
        )));
    }
    let planned = incident
        .action_params
        .clone()
        .and_then(|p| match p {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default();
    let action = incident
        .recommended_action
        .as_deref()
        .and_then(parse_action);
    let action_type = incident
        .action_type
        .as_deref()
        .and_then(aegis_common::contracts::ActionType::parse);
    let (Some(action), Some(action_type)) = (action, action_type) else {
        return Ok(Replan::Ready {
            params: planned,
            current_replicas: None,
        });
    };
    let trace = trace_of(incident);
    let read = read_replicas(state, incident, action, switch.mode, &trace).await;
    if let Some(Err(e)) = &read {
        return Ok(Replan::Unavailable(format!(
            "could not read the deployment through the executor: {e}"
        )));
    }
    let Some((current, target)) = replicas_plan(state, incident, action, read).await? else {
        return Ok(Replan::Closed);
    };
    Ok(Replan::Ready {
        params: plan::action_params(action_type, &incident.subject(), target, false),
        current_replicas: current,
    })
}

/// Records that the kill switch forbids acting on the incident, saying who set it. The
/// incident stays open: [`decide_recorded`] decides it once the switch allows.
async fn switched_off(
    state: &Remediator,
    incident: &Incident,
    reason: &str,
) -> Result<(), sqlx::Error> {
    note(
        state,
        incident.id,
        Step::Decision,
        json!({
            "mode": "off",
            "reason": format!(
                "{reason}: the incident is recorded, and decided when remediation is turned on again"
            ),
        }),
    )
    .await?;
    count_outcome(state, "recorded");
    Ok(())
}

fn mode_patch(mode: RemediationMode) -> IncidentPatch {
    IncidentPatch {
        mode: Some(mode.as_str().to_owned()),
        ..IncidentPatch::default()
    }
}

fn parse_action(s: &str) -> Option<RemediationAction> {
    serde_json::from_value(Value::String(s.to_owned())).ok()
}

/// The most policies whose verdict a timeline step keeps (a set larger than this is rare; the
/// rest are counted).
const TRACE_KEPT: usize = 50;

/// One line per policy of the decision's trace: its name and its verdict (matched, not
/// applicable and why, conditions failed and which), in evaluation order.
fn trace_messages(explanation: Option<&Value>) -> Value {
    let Some(policies) = explanation.and_then(|e| e["policies"].as_array()) else {
        return Value::Null;
    };
    let mut lines: Vec<Value> = policies
        .iter()
        .take(TRACE_KEPT)
        .filter_map(|p| p["message"].as_str().map(|m| Value::String(m.to_owned())))
        .collect();
    if policies.len() > TRACE_KEPT {
        lines.push(Value::String(format!(
            "… and {} more policies",
            policies.len() - TRACE_KEPT
        )));
    }
    Value::Array(lines)
}
