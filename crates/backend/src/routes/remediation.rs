//! `/remediation`: signal intake from the ai-engine and admins, and the incident API (list,
//! get with timeline, approve, reject, label). Alertmanager's webhook is in
//! [`super::alertmanager`] and shares the intake.

use std::collections::HashMap;

use aegis_common::{
    contracts::{
        PolicyDecisionSummary, RemediationAction, RemediationSignal, SignalAccepted, SignalKind,
        SignalTarget, SignalWindow, TrainingDataCreated, TrainingDataRequest, TrainingSource,
    },
    names::Namespace,
    openapi::BackendErrorBody,
    telemetry::{CORRELATION_HEADER, TraceParent},
};
use aegis_remediation::{Status, Step, operator};
use axum::{
    Extension,
    extract::{Query, State},
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::docs::{Forbidden, RateLimited, ServerError, Unauthorized};
use crate::{
    auth::{
        Admin, Approvers, IncidentReaders, RateLimit, RequireRole, ServiceOrRole,
        validate::Violations,
    },
    clients::ai_engine::AiEngineError,
    db::{
        audit::{self, NewAuditEvent},
        incidents::{
            self, Guard, Guarded, Incident, IncidentEvent, IncidentFilter, IncidentPatch,
            Transition,
        },
    },
    error::{ApiError, Json, UuidPath},
    realtime::RemediationEvent,
    remediation::{self, Signal, Target, engine, signal::window_of},
    state::AppState,
};

/// The remediation routes (authenticated by the caller's `require_auth` layer).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signal))
        .routes(routes!(list, create))
        .routes(routes!(show))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(label))
}

/// An incident with its timeline (`GET /remediation/incidents/{id}` and the approve and reject
/// answers).
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentDetail {
    /// The incident.
    #[serde(flatten)]
    pub incident: Incident,
    /// What happened to it, in order.
    pub timeline: Vec<IncidentEvent>,
}

/// The loop's signal, or 400 with one message per broken rule.
fn validate_signal(signal: &RemediationSignal) -> Result<Signal, ApiError> {
    let mut v = Violations::new();
    let parsed = v.parsed(Signal::try_from(signal));
    v.check(
        signal.source.trim().is_empty(),
        "source should not be empty",
    );
    v.check(
        !signal.score.is_finite() || !signal.confidence.is_finite(),
        "score and confidence must be finite numbers",
    );
    v.finish_with(parsed)
}

#[utoipa::path(post, path = "/remediation/signals", tag = "remediation", operation_id = "remediation_signal", summary = "Report a failure or anomaly signal",
    description = "A detection from the ai-engine (service key) or an admin opens an incident, or joins the open one with the same fingerprint, and starts the decision path.",
    request_body = RemediationSignal,
    responses(
        (status = 202, description = "Accepted: the incident opened or joined", body = SignalAccepted, headers(("x-correlation-id" = String, description = "The request's own correlation (trace) id"))),
        (status = 400, description = "Invalid body: target names, empty source, non-finite score or confidence", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn signal(
    State(state): State<AppState>,
    // Signals come from the ai-engine (service key) or an admin.
    _: ServiceOrRole<Admin>,
    _: RateLimit,
    trace: Option<Extension<TraceParent>>,
    aegis_common::http::Json(body, _): Json<RemediationSignal>,
) -> Result<Response, ApiError> {
    let signal = validate_signal(&body)?;
    let trace = trace.map(|Extension(t)| t);
    let accepted = intake(&state, signal, trace).await?;
    Ok(accepted_response(StatusCode::ACCEPTED, &accepted))
}

/// What intake answered, plus the request's own correlation id for the header.
pub(super) struct Accepted {
    pub(super) body: SignalAccepted,
    request_correlation_id: String,
}

fn accepted_response(status: StatusCode, accepted: &Accepted) -> Response {
    let mut res = (status, axum::Json(&accepted.body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&accepted.request_correlation_id) {
        res.headers_mut().insert(CORRELATION_HEADER, v);
    }
    res
}

/// Opens or joins an incident for `signal` and, for a new one, starts the decision path.
pub(super) async fn intake(
    state: &AppState,
    signal: Signal,
    trace: Option<TraceParent>,
) -> Result<Accepted, ApiError> {
    let source = source_label(&signal.source);
    // The correlation id is the request's trace id (the shared middleware takes it
    // from `traceparent` or mints one); mint here too in case the middleware is absent.
    let trace = trace.unwrap_or_else(TraceParent::new_root);
    let correlation_id = trace.trace_id();
    let outcome = remediation::accept_signal(&state.db, signal, &correlation_id).await?;
    let incident = &outcome.incident;
    // A joined incident keeps the correlation id of the signal that opened it.
    let incident_correlation = incident
        .correlation_id
        .clone()
        .unwrap_or_else(|| correlation_id.clone());
    state
        .backend_metrics
        .remediation_signals
        .with_label_values(&[
            source,
            if outcome.deduplicated {
                "true"
            } else {
                "false"
            },
        ])
        .inc();
    state.realtime.emit_remediation(&RemediationEvent {
        incident_id: incident.id,
        correlation_id: incident_correlation.clone(),
        step: outcome.event.step.to_string(),
        status: incident.status.to_string(),
        at: outcome.event.at,
        details: json!({
            "deduplicated": outcome.deduplicated,
            "signal": outcome.event.details,
        }),
    });
    tracing::info!(
        incident_id = %incident.id,
        correlation_id = %incident_correlation,
        fingerprint = %incident.fingerprint,
        deduplicated = outcome.deduplicated,
        "remediation signal accepted"
    );
    if !outcome.deduplicated {
        engine::spawn_decision(&state.remediation, outcome.incident.clone());
    }
    Ok(Accepted {
        body: SignalAccepted {
            incident_id: incident.id.to_string(),
            correlation_id: incident_correlation,
            deduplicated: outcome.deduplicated,
        },
        request_correlation_id: correlation_id,
    })
}

/// A bounded label value for the signals metric.
fn source_label(source: &str) -> &'static str {
    match source {
        "ai-engine" => "ai-engine",
        "alertmanager" => "alertmanager",
        s if s.starts_with("admin") => "admin",
        _ => "other",
    }
}

/// `POST /remediation/incidents` (admin): an incident opened by hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManualIncident {
    /// The workload (DNS-1123 names).
    target: SignalTarget,
    /// Default `anomaly`.
    #[serde(default)]
    kind: Option<SignalKind>,
    /// The action to plan, if any.
    #[serde(default)]
    recommended_action: Option<RemediationAction>,
    /// Default `medium`.
    #[serde(default)]
    severity: Option<aegis_common::contracts::Severity>,
    /// At most 1000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    reason: Option<String>,
    /// The data behind it (needed later to label the incident).
    #[serde(default)]
    window: Option<SignalWindow>,
}

#[utoipa::path(post, path = "/remediation/incidents", tag = "remediation", operation_id = "create_incident", summary = "Open an incident by hand",
    description = "Opens an incident by hand (admin); joins the open incident for the same target instead when there is one.",
    security(("bearerAuth" = [])),
    request_body = ManualIncident,
    responses(
        (status = 201, description = "A new incident", body = SignalAccepted, headers(("x-correlation-id" = String, description = "The request's own correlation (trace) id"))),
        (status = 200, description = "Deduplicated: joined the open incident", body = SignalAccepted, headers(("x-correlation-id" = String, description = "The request's own correlation (trace) id"))),
        (status = 400, description = "Invalid target names or reason", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn create(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    _: RateLimit,
    trace: Option<Extension<TraceParent>>,
    aegis_common::http::Json(body, _): Json<ManualIncident>,
) -> Result<Response, ApiError> {
    let admin = admin.into_inner();
    let mut v = Violations::new();
    let target = v.parsed(Target::parse(&body.target));
    v.check(
        body.reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > 1000),
        "reason must be at most 1000 characters",
    );
    let target = v.finish_with(target)?;
    let kind = body.kind.unwrap_or(SignalKind::Anomaly);
    let severity = body
        .severity
        .unwrap_or(aegis_common::contracts::Severity::Medium);
    let raw = json!({
        "source": "admin",
        "requestedBy": admin.email,
        "reason": body.reason,
        "target": body.target,
        "recommendedAction": body.recommended_action,
        "window": body.window,
    });
    let signal = Signal {
        source: format!("admin:{}", admin.email),
        kind: kind.as_str().to_owned(),
        observed_at: Some(aegis_common::time::rfc3339_millis(chrono::Utc::now())),
        target,
        severity: severity.as_str().to_owned(),
        score: 0.0,
        confidence: 1.0,
        recommended_action: body.recommended_action,
        fingerprint: None,
        raw,
    };
    let accepted = intake(&state, signal, trace.map(|Extension(t)| t)).await?;
    let status = if accepted.body.deduplicated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(accepted_response(status, &accepted))
}

async fn load(state: &AppState, id: uuid::Uuid) -> Result<incidents::Incident, ApiError> {
    incidents::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Incident with ID {id} not found")))
}

/// The incident with its timeline, as `GET .../:id` answers.
async fn incident_body(state: &AppState, id: uuid::Uuid) -> Result<Value, ApiError> {
    let incident = load(state, id).await?;
    let timeline = incidents::timeline(&state.db, id).await?;
    let mut body = serde_json::to_value(&incident).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut body {
        map.insert(
            "timeline".to_owned(),
            serde_json::to_value(&timeline).unwrap_or(Value::Array(Vec::new())),
        );
    }
    Ok(body)
}

/// `POST .../:id/approve` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApproveBody {
    /// Why; required with `overrideGuardrails`. At most 1000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    reason: Option<String>,
    /// Act even where a guardrail (cooldown, hourly cap) holds. Recorded with the approver
    /// and the reason in the timeline and the audit.
    #[serde(default)]
    override_guardrails: bool,
}

/// An optional JSON body: empty or blank is the default.
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}").into()))
}

/// `POST .../:id/approve` (admin, operator): runs the planned action of an
/// `awaiting_approval` incident, after checking it against the present: the mode in force,
/// the plan made again from the cluster's current state, and the guardrails, which only an
/// explicit override with a reason bypasses.
#[utoipa::path(post, path = "/remediation/incidents/{id}/approve", tag = "remediation", operation_id = "approve_incident",
    summary = "Approve a planned action",
    description = "Runs the planned action of an `awaiting_approval` incident (admin, operator). The mode in force must be `approval` or `auto`; a scale is planned again from the replicas the deployment has now; the guardrails (cooldown, hourly cap) are checked again and only `overrideGuardrails` with a reason bypasses them. The body is optional.",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The incident's id (a UUID)")),
    request_body(content = Option<ApproveBody>, description = "Optional: why, and whether to override the guardrails"),
    responses(
        (status = 200, description = "Approved; the action runs in the background", body = IncidentDetail),
        (status = 400, description = "The id is not a UUID, an invalid body, or an override without a reason", body = BackendErrorBody),
        (status = 404, description = "No such incident", body = BackendErrorBody),
        (status = 409, description = "Not (or no longer) awaiting approval; its approval expired; the mode in force forbids acting; a guardrail holds; or the plan no longer applies", body = BackendErrorBody),
        (status = 503, description = "The deployment could not be read through the executor; the incident still waits", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn approve(
    State(state): State<AppState>,
    approver: RequireRole<Approvers>,
    _: RateLimit,
    UuidPath(id): UuidPath,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let approver = approver.into_inner();
    let body: ApproveBody = optional_body(&body)?;
    let approval = operator::Approval::new(body.reason, body.override_guardrails)
        .map_err(|e| ApiError::BadRequest(e.to_string().into()))?;
    let incident = load(&state, id).await?;
    let approval_move = operator::approve(incident.status)
        .map_err(|refused| ApiError::Conflict(format!("Incident {id} {refused}")))?;
    // Past its deadline an approval is too late, even before the sweep has closed it.
    if let Some(at) = incident
        .approval_expires_at
        .filter(|at| *at <= chrono::Utc::now())
    {
        return Err(ApiError::Conflict(format!(
            "Incident {id} was not approved: its approval expired at {}",
            aegis_common::time::rfc3339_millis(at)
        )));
    }
    let (params, current_replicas) = match engine::replan(&state.remediation, &incident).await? {
        engine::Replan::Ready {
            params,
            current_replicas,
        } => (params, current_replicas),
        engine::Replan::ModeForbids(reason) => {
            return Err(ApiError::Conflict(format!(
                "Incident {id} was not approved: {reason}"
            )));
        }
        engine::Replan::Unavailable(reason) => {
            return Err(ApiError::Unavailable(format!(
                "Incident {id} was not approved, and still waits: {reason}"
            )));
        }
        engine::Replan::Closed => {
            let now = load(&state, id).await?;
            return Err(ApiError::Conflict(format!(
                "Incident {id} was not approved: the plan no longer applies to the cluster, and the incident is now {} (see its timeline)",
                now.status
            )));
        }
    };
    let params = Value::Object(params);
    let mut details = json!({
        "approvedBy": approver.email,
        "actionType": incident.action_type,
        "actionParams": params,
    });
    if let Some(reason) = approval.reason() {
        details["reason"] = json!(reason);
    }
    if incident.action_params.as_ref() != Some(&params) {
        details["plannedParams"] = json!(incident.action_params);
        details["replanned"] = json!(true);
    }
    if let Some(current) = current_replicas {
        details["currentReplicas"] = json!(current);
    }
    let patch = IncidentPatch {
        decided_by: Some(approver.email.clone()),
        action_params: Some(params),
        ..IncidentPatch::default()
    };
    let config = &state.remediation.config;
    let enforce = Guard::Enforce {
        cooldown_seconds: i64::try_from(config.cooldown.as_secs()).unwrap_or(i64::MAX),
        max_per_hour: config.max_actions_per_namespace_per_hour,
        take: true,
    };
    // The slot is taken in the statement that moves the incident: an approval that loses
    // to a concurrent rejection or expiry takes none.
    let approved = Transition {
        to: approval_move,
        step: Step::Approved,
        details: &details,
        patch: &patch,
    };
    let mut overridden = None;
    let moved =
        match incidents::guarded_transition(&state.db, &incident, enforce, &approved).await? {
            Guarded::Blocked(blocked) if approval.overrides() => {
                let held = operator::blocked_approval(blocked);
                let held = held.split(';').next().unwrap_or_default().to_owned();
                details["override"] = json!({
                    "guardrail": held,
                    "by": approver.email,
                    "reason": approval.reason(),
                });
                overridden = Some(held);
                let forced = Transition {
                    to: approval_move,
                    step: Step::Approved,
                    details: &details,
                    patch: &patch,
                };
                incidents::guarded_transition(&state.db, &incident, Guard::Force, &forced).await?
            }
            other => other,
        };
    let (incident, event) = match moved {
        Guarded::Moved(moved) => *moved,
        Guarded::Blocked(blocked) => {
            return Err(ApiError::Conflict(format!(
                "Incident {id} was not approved: {}",
                operator::blocked_approval(blocked)
            )));
        }
        Guarded::MovedOn => {
            return Err(ApiError::Conflict(format!(
                "Incident {id} is no longer awaiting approval"
            )));
        }
    };
    engine::emit(&state.remediation, &incident, &event);
    audit::record(
        &state.db,
        NewAuditEvent {
            event_type: if overridden.is_some() {
                "remediation_approved_with_override"
            } else {
                "remediation_approved"
            },
            user_id: Some(approver.id),
            entity_type: Some("incident"),
            entity_id: Some(id.to_string()),
            details: event.details.clone(),
            ..NewAuditEvent::default()
        },
    )
    .await;
    let mut reason = format!("approved by {}", approver.email);
    if let Some(text) = approval.reason() {
        reason.push_str(&format!(": {text}"));
    }
    if let Some(held) = &overridden {
        reason.push_str(&format!(" (guardrail overridden: {held})"));
    }
    let decision = PolicyDecisionSummary {
        allowed: true,
        reason,
        applied_policies: incident.policy_name.clone().into_iter().collect(),
        decision_id: incident.decision_id.map(|id| id.to_string()),
        explanation: None,
    };
    engine::spawn_execution(&state.remediation, incident, decision);
    Ok(axum::Json(incident_body(&state, id).await?).into_response())
}

/// `POST .../:id/reject` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RejectBody {
    /// At most 1000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    reason: Option<String>,
}

/// `POST .../:id/reject` (admin, operator): closes an `open` or `awaiting_approval` incident
/// without acting. The body (`{"reason"}`) is optional.
#[utoipa::path(post, path = "/remediation/incidents/{id}/reject", tag = "remediation", operation_id = "reject_incident",
    summary = "Reject an incident",
    description = "Closes an `open` or `awaiting_approval` incident without acting (admin, operator). The body is optional.",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The incident's id (a UUID)")),
    request_body(content = Option<RejectBody>, description = "Optional: why"),
    responses(
        (status = 200, description = "Rejected", body = IncidentDetail),
        (status = 400, description = "The id is not a UUID, or an invalid body", body = BackendErrorBody),
        (status = 404, description = "No such incident", body = BackendErrorBody),
        (status = 409, description = "The incident cannot be rejected in its status", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn reject(
    State(state): State<AppState>,
    admin: RequireRole<Approvers>,
    _: RateLimit,
    UuidPath(id): UuidPath,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let admin = admin.into_inner();
    let reason = optional_body::<RejectBody>(&body)?.reason;
    let reason = operator::rejection_reason(reason)
        .map_err(|e| ApiError::BadRequest(e.to_string().into()))?;
    let incident = load(&state, id).await?;
    let rejection = operator::reject(incident.status)
        .map_err(|refused| ApiError::Conflict(format!("Incident {id} {refused}")))?;
    let details = json!({"rejectedBy": admin.email, "reason": reason});
    let patch = IncidentPatch {
        decided_by: Some(admin.email.clone()),
        ..IncidentPatch::default()
    };
    let rejected = Transition {
        to: rejection,
        step: Step::Rejected,
        details: &details,
        patch: &patch,
    };
    let Some((incident, event)) = incidents::transition(&state.db, id, &rejected).await? else {
        return Err(ApiError::Conflict(format!(
            "Incident {id} cannot be rejected (status: {})",
            incident.status
        )));
    };
    engine::emit(&state.remediation, &incident, &event);
    audit::record(
        &state.db,
        NewAuditEvent {
            event_type: "remediation_rejected",
            user_id: Some(admin.id),
            entity_type: Some("incident"),
            entity_id: Some(id.to_string()),
            details: event.details.clone(),
            ..NewAuditEvent::default()
        },
    )
    .await;
    Ok(axum::Json(incident_body(&state, id).await?).into_response())
}

/// `POST .../:id/label` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LabelBody {
    /// A failure type name of the ai-engine, or `none`; 1 to 64 bytes after trimming.
    failure_type: String,
}

/// `POST .../:id/label` (admin, operator): the operator's verdict, forwarded to the ai-engine as
/// training data with the incident's window. Answers the engine's `201 {id, label}`.
#[utoipa::path(post, path = "/remediation/incidents/{id}/label", tag = "remediation", operation_id = "label_incident",
    summary = "Label an incident as training data",
    description = "The operator's verdict, sent to the ai-engine as training data with the incident's metric window (admin, operator). Answers the engine's `201 {id, label}`.",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The incident's id (a UUID)")),
    request_body = LabelBody,
    responses(
        (status = 201, description = "The ai-engine stored the training row", body = TrainingDataCreated),
        (status = 400, description = "The id is not a UUID, an invalid failure type, an incident without a metric window, or the ai-engine refused the label", body = BackendErrorBody),
        (status = 404, description = "No such incident", body = BackendErrorBody),
        (status = 502, description = "The ai-engine failed or could not be reached", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn label(
    State(state): State<AppState>,
    admin: RequireRole<Approvers>,
    _: RateLimit,
    UuidPath(id): UuidPath,
    aegis_common::http::Json(body, _): Json<LabelBody>,
) -> Result<Response, ApiError> {
    let admin = admin.into_inner();
    let label = operator::Label::parse(&body.failure_type)
        .map_err(|e| ApiError::BadRequest(e.to_string().into()))?;
    let failure_type = label.as_str().to_owned();
    let incident = load(&state, id).await?;
    let Some(window) = window_of(&incident.signal) else {
        return Err(ApiError::BadRequest(
            format!(
                "Incident {id} has no metric window: a label trains the model on the signal's data"
            )
            .into(),
        ));
    };
    let request = TrainingDataRequest {
        failure_type: failure_type.clone(),
        metrics: window.metrics,
        logs: window.logs.unwrap_or_default(),
        features: None,
        source: TrainingSource::Operator,
        incident_id: Some(id.to_string()),
    };
    let trace = engine::trace_of(&incident);
    let payload = serde_json::to_value(&request).unwrap_or(Value::Null);
    let created = match state
        .ai_engine
        .post_json("/api/v1/training-data", &payload, Some(&trace))
        .await
    {
        Ok(v) => v,
        Err(AiEngineError::Rejected {
            status: 400 | 422,
            body,
        }) => {
            return Err(ApiError::BadRequest(
                format!("the ai-engine refused the label: {}", detail_text(&body)).into(),
            ));
        }
        Err(e) => return Err(ApiError::BadGateway(e.to_string())),
    };
    let details =
        json!({"labelledBy": admin.email, "failureType": failure_type, "trainingData": created});
    if let Some((incident, event)) =
        incidents::append_event(&state.db, id, Step::Label, &details).await?
    {
        engine::emit(&state.remediation, &incident, &event);
    }
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// FastAPI's `detail` (a string or a list of `{msg}`) as one line.
fn detail_text(body: &Value) -> String {
    match body.get("detail") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.get("msg").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.to_string(),
    }
}

#[utoipa::path(get, path = "/remediation/incidents", tag = "remediation", operation_id = "list_incidents",
    summary = "List incidents",
    description = "Incidents, newest first (admin, auditor, operator).",
    security(("bearerAuth" = [])),
    params(
        ("status" = Option<String>, Query, description = "Comma-separated incident statuses"),
        ("namespace" = Option<String>, Query, description = "Only this namespace (a DNS-1123 label)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 50)"),
    ),
    responses(
        (status = 200, description = "The incidents", body = Vec<Incident>),
        (status = 400, description = "Invalid filter (one message per invalid parameter)", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn list(
    State(state): State<AppState>,
    _: RequireRole<IncidentReaders>,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let statuses = q.get("status").and_then(|raw| {
        let items: Result<Vec<Status>, _> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect();
        let Ok(items) = items else {
            let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            errors.push(format!(
                "status must be one of the following values: {}",
                names.join(", ")
            ));
            return None;
        };
        (!items.is_empty()).then_some(items)
    });
    let namespace = match q.get("namespace").filter(|s| !s.is_empty()) {
        None => None,
        Some(ns) => match Namespace::new(ns.as_str()) {
            Ok(ns) => Some(String::from(ns)),
            Err(e) => {
                errors.push(format!("namespace {e}"));
                None
            }
        },
    };
    let limit = match q.get("limit") {
        None => 50,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => {
                errors.push("limit must be an integer between 1 and 500".to_owned());
                50
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors.into()));
    }
    let filter = IncidentFilter {
        statuses,
        namespace,
        limit,
    };
    Ok(axum::Json(incidents::list(&state.db, &filter).await?).into_response())
}

#[utoipa::path(get, path = "/remediation/incidents/{id}", tag = "remediation", operation_id = "get_incident",
    summary = "Show an incident with its timeline",
    description = "One incident with its timeline (admin, auditor, operator).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The incident's id (a UUID)")),
    responses(
        (status = 200, description = "The incident", body = IncidentDetail),
        (status = 400, description = "The id is not a UUID", body = BackendErrorBody),
        (status = 404, description = "No such incident", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn show(
    State(state): State<AppState>,
    _: RequireRole<IncidentReaders>,
    _: RateLimit,
    UuidPath(id): UuidPath,
) -> Result<Response, ApiError> {
    Ok(axum::Json(incident_body(&state, id).await?).into_response())
}
