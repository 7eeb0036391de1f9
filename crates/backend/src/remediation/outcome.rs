//! The action and its outcome: the signed executor call, then the verification after a delay
//! that resolves the incident or escalates it.

use aegis_common::contracts::{ActionType, PolicyDecisionSummary};
use aegis_remediation::{
    Move, Status, Step,
    verify::{Observed, Verdict, verdict},
};
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    remediator::Remediator,
    steps::{advance, count_action, count_verification, escalate, fail, trace_of},
};
use crate::db::incidents::{self, Incident, IncidentPatch};

/// Step 5 and 6: the signed call and its outcome; on success, verification is scheduled.
pub(super) async fn execute(
    state: &Remediator,
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
            let delay = chrono::Duration::from_std(state.config.verify_delay)
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
pub fn spawn_verification(state: &Remediator, id: Uuid, due: chrono::DateTime<Utc>) {
    let st = state.clone();
    let stop = state.stop.clone();
    state.tasks.spawn(async move {
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
pub(super) async fn verify(state: &Remediator, id: Uuid) -> Result<(), sqlx::Error> {
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
