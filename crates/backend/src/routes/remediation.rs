//! `/remediation` (spec README contracts 4, 5, 8, 10): signal intake and the incident read API.
//! The decision routes (`approve`, `reject`, `label`) come with the decision path.

use std::collections::HashMap;

use aegis_common::{
    contracts::{RemediationSignal, SignalAccepted},
    telemetry::{CORRELATION_HEADER, TraceParent},
};
use axum::{
    Extension, Router,
    extract::{Query, State},
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::Value;

use crate::{
    auth::{AdminOrAuditor, Principal, RateLimit, RequireRole, Role, validate::Violations},
    db::incidents::{self, IncidentFilter, STATUSES},
    error::{ApiError, Json, UuidPath},
    realtime::RemediationEvent,
    remediation::{self, is_dns_label, is_dns_subdomain},
    state::AppState,
};

/// The remediation routes (authenticated by the caller's `require_auth` layer).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/remediation/signals", post(signal))
        .route("/remediation/incidents", get(list))
        .route("/remediation/incidents/{id}", get(show))
}

/// Signals come from the ai-engine (service key) or an admin.
fn require_signal_sender(p: &Principal) -> Result<(), ApiError> {
    match p {
        Principal::Service(_) => Ok(()),
        Principal::User(u) => u.require_any(&[Role::Admin]),
    }
}

fn validate_signal(signal: &RemediationSignal) -> Result<(), ApiError> {
    let mut v = Violations::new();
    v.check(
        !is_dns_label(&signal.target.namespace),
        "target.namespace must be a valid DNS-1123 label",
    );
    v.check(
        !is_dns_subdomain(&signal.target.deployment),
        "target.deployment must be a valid DNS-1123 subdomain",
    );
    if let Some(pod) = &signal.target.pod {
        v.check(
            !is_dns_subdomain(pod),
            "target.pod must be a valid DNS-1123 subdomain",
        );
    }
    v.check(
        signal.source.trim().is_empty(),
        "source should not be empty",
    );
    v.check(
        !signal.score.is_finite() || !signal.confidence.is_finite(),
        "score and confidence must be finite numbers",
    );
    v.finish()
}

async fn signal(
    State(state): State<AppState>,
    principal: Principal,
    _: RateLimit,
    trace: Option<Extension<TraceParent>>,
    aegis_common::http::Json(body, _): Json<RemediationSignal>,
) -> Result<Response, ApiError> {
    require_signal_sender(&principal)?;
    validate_signal(&body)?;
    // Contract 5: the correlation id is the request's trace id (the shared middleware takes it
    // from `traceparent` or mints one); mint here too in case the middleware is absent.
    let trace = trace.map_or_else(TraceParent::new_root, |Extension(t)| t);
    let correlation_id = trace.trace_id();
    let outcome = remediation::accept_signal(&state.db, &body, &correlation_id).await?;
    let incident = &outcome.incident;
    // A joined incident keeps the correlation id of the signal that opened it.
    let incident_correlation = incident
        .correlation_id
        .clone()
        .unwrap_or_else(|| correlation_id.clone());
    state.realtime.emit_remediation(&RemediationEvent {
        incident_id: incident.id,
        correlation_id: incident_correlation.clone(),
        step: outcome.event.step.clone(),
        status: incident.status.clone(),
        at: outcome.event.at,
        details: serde_json::json!({
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
    let body = SignalAccepted {
        incident_id: incident.id.to_string(),
        correlation_id: incident_correlation.clone(),
        deduplicated: outcome.deduplicated,
    };
    let mut res = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&correlation_id) {
        res.headers_mut().insert(CORRELATION_HEADER, v);
    }
    Ok(res)
}

async fn list(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let statuses = q.get("status").and_then(|raw| {
        let items: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if items.iter().any(|s| !STATUSES.contains(&s.as_str())) {
            errors.push(format!(
                "status must be one of the following values: {}",
                STATUSES.join(", ")
            ));
        }
        (!items.is_empty()).then_some(items)
    });
    let namespace = q.get("namespace").filter(|s| !s.is_empty()).cloned();
    if let Some(ns) = &namespace
        && !is_dns_label(ns)
    {
        errors.push("namespace must be a valid DNS-1123 label".to_owned());
    }
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

async fn show(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    UuidPath(id): UuidPath,
) -> Result<Response, ApiError> {
    let incident = incidents::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Incident with ID {id} not found")))?;
    let timeline = incidents::timeline(&state.db, id).await?;
    let mut body = serde_json::to_value(&incident).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut body {
        map.insert(
            "timeline".to_owned(),
            serde_json::to_value(&timeline).unwrap_or(Value::Array(Vec::new())),
        );
    }
    Ok(axum::Json(body).into_response())
}
