//! The AI proxy: `POST /ai/predict` forwards to the ai-engine through
//! [`crate::clients::ai_engine`], stores the outcome in `prediction_results` and pushes an
//! `anomaly` event when the engine found one; `GET /ai/metrics` and `GET /ai/predictions`
//! read the stored outcomes.

use std::collections::HashMap;

use aegis_common::{
    openapi::{BackendErrorBody, FastApiErrorBody},
    telemetry::TraceParent,
};
use axum::{
    Extension,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::docs::{Forbidden, RateLimited, ServerError, Unauthorized};
use crate::{
    auth::{AuthUser, NotAuditor, RateLimit, ServiceOrRole, validate::Violations},
    clients::ai_engine::AiEngineError,
    db::predictions::{self, NewPrediction, Prediction},
    error::{ApiError, Json},
    state::AppState,
};

/// The AI proxy routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(predict))
        .routes(routes!(stats))
        .routes(routes!(latest))
}

/// One metric point, forwarded to the ai-engine as is.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PredictMetric {
    /// The ai-engine's metric type (it validates the value).
    metric_type: String,
    /// The value.
    value: f64,
    /// An RFC 3339 timestamp.
    timestamp: String,
    /// Series labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    labels: Option<Map<String, Value>>,
    /// Free-form object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Map<String, Value>>,
}

/// One log line, forwarded to the ai-engine as is.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PredictLog {
    /// An RFC 3339 timestamp.
    timestamp: String,
    /// Level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    level: Option<String>,
    /// Message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    /// Free-form object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Map<String, Value>>,
}

/// `POST /ai/predict` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PredictBody {
    /// `anomaly` or `failure` (a failure request without logs runs anomaly detection).
    #[serde(rename = "type")]
    kind: String,
    /// The metric window.
    metrics: Vec<PredictMetric>,
    /// Log lines (failure detection).
    #[serde(default)]
    logs: Option<Vec<PredictLog>>,
    /// Free-form object passed to the engine.
    #[serde(default)]
    context: Option<Map<String, Value>>,
}

/// `GET /ai/metrics`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PredictionStats {
    /// Every stored prediction.
    pub total_predictions: i64,
    /// Count per prediction type (`anomaly`, `failure`).
    pub by_type: std::collections::BTreeMap<String, i64>,
    /// Share of successful predictions, 0 to 1 (0 when there are none).
    pub success_rate: f64,
    /// Predictions of the last 24 hours.
    #[serde(rename = "last24h")]
    pub last_24h: i64,
}

fn is_rfc3339(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

fn validate(body: &PredictBody) -> Result<(), ApiError> {
    let mut v = Violations::new();
    v.check(
        !matches!(body.kind.as_str(), "anomaly" | "failure"),
        "type must be one of the following values: anomaly, failure",
    );
    for (i, m) in body.metrics.iter().enumerate() {
        v.check(
            !is_rfc3339(&m.timestamp),
            format!("metrics.{i}.timestamp must be a valid ISO 8601 date string"),
        );
    }
    for (i, l) in body.logs.iter().flatten().enumerate() {
        v.check(
            !is_rfc3339(&l.timestamp),
            format!("logs.{i}.timestamp must be a valid ISO 8601 date string"),
        );
    }
    v.finish()
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[utoipa::path(post, path = "/ai/predict", tag = "ai", operation_id = "predict", summary = "Ask the ai-engine for a prediction",
    description = "Forwards to the ai-engine's anomaly or failure detection, stores the outcome and pushes an `anomaly` event when one was found (any signed-in user except auditors, or a service key).",
    request_body = PredictBody,
    responses(
        (status = 200, description = "The ai-engine's answer, passed through (its anomaly or failure detection response)", body = Object),
        (status = 400, description = "Invalid type or timestamps", body = BackendErrorBody),
        (status = 422, description = "The ai-engine refused the request; its FastAPI body is passed through (other 4xx of the engine pass through the same way)", body = FastApiErrorBody),
        (status = 502, description = "The ai-engine is unreachable, failed, or refused the backend's key", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn predict(
    State(state): State<AppState>,
    // Auditors only read; every other JWT role and service keys may predict.
    _: ServiceOrRole<NotAuditor>,
    _: RateLimit,
    trace: Option<Extension<TraceParent>>,
    aegis_common::http::Json(body, _): Json<PredictBody>,
) -> Result<Response, ApiError> {
    validate(&body)?;
    let logs = body.logs.unwrap_or_default();
    let context = Value::Object(body.context.unwrap_or_default());
    let metrics = to_value(&body.metrics);
    // A `failure` request without logs goes to anomaly detection and is recorded as such.
    let failure = body.kind == "failure" && !logs.is_empty();
    let prediction_type = if failure { "failure" } else { "anomaly" };
    let trace = trace.map(|Extension(t)| t);
    let outcome = if failure {
        let upstream = json!({"metrics": metrics, "logs": to_value(&logs), "context": context});
        state
            .ai_engine
            .detect_failure(&upstream, trace.as_ref())
            .await
    } else {
        let upstream = json!({"metrics": metrics, "context": context});
        state
            .ai_engine
            .detect_anomaly(&upstream, trace.as_ref())
            .await
    };
    let id = Uuid::new_v4();
    let request_payload = json!({
        "type": body.kind,
        "metricsCount": body.metrics.len(),
        "logsCount": logs.len(),
    });
    match outcome {
        Ok(response) => {
            let score = response
                .get("anomaly_score")
                .and_then(Value::as_f64)
                .or_else(|| response.get("confidence").and_then(Value::as_f64));
            let severity = response.get("severity").and_then(Value::as_str);
            store(
                &state,
                &NewPrediction {
                    id,
                    prediction_type,
                    request_payload,
                    response_payload: response.clone(),
                    score,
                    severity,
                    success: true,
                    error_message: None,
                },
            )
            .await;
            if let Some(event) = anomaly_event(id, &response) {
                state.realtime.emit_anomaly(event);
            }
            Ok(axum::Json(response).into_response())
        }
        Err(err) => {
            let message = err.to_string();
            store(
                &state,
                &NewPrediction {
                    id,
                    prediction_type,
                    request_payload,
                    response_payload: json!({}),
                    score: None,
                    severity: None,
                    success: false,
                    error_message: Some(&message),
                },
            )
            .await;
            match err {
                // The engine refusing the backend's own key is a misconfiguration here, not
                // the caller's fault (and a 401 would log the dashboard out).
                AiEngineError::Rejected {
                    status: 401 | 403, ..
                } => Err(ApiError::BadGateway(message)),
                // Any other 4xx passes through unchanged: the caller's request was at fault.
                AiEngineError::Rejected { status, body } => {
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                    Ok((status, axum::Json(body)).into_response())
                }
                AiEngineError::Unavailable { .. } => Err(ApiError::BadGateway(message)),
            }
        }
    }
}

/// A failed insert is logged, never surfaced.
async fn store(state: &AppState, row: &NewPrediction<'_>) {
    if let Err(e) = predictions::insert(&state.db, row).await {
        tracing::warn!(error = %e, "failed to store a prediction result");
    }
}

/// The dashboard's anomaly shape, when the engine reported an anomaly or failure.
fn anomaly_event(id: Uuid, r: &Value) -> Option<Value> {
    let flagged = r.get("is_anomaly").and_then(Value::as_bool) == Some(true)
        || r.get("failure_detected").and_then(Value::as_bool) == Some(true);
    if !flagged {
        return None;
    }
    let metric = r
        .get("affected_metrics")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .unwrap_or("");
    let value = r
        .get("details")
        .and_then(|d| d.get(metric))
        .filter(|v| v.is_number())
        .cloned()
        .unwrap_or(Value::Null);
    let recommendation = r
        .get("recommended_action")
        .filter(|v| !v.is_null())
        .or_else(|| {
            r.get("recommended_actions")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
        })
        .cloned()
        .unwrap_or(Value::Null);
    Some(json!({
        "id": id,
        "timestamp": r.get("timestamp").cloned().unwrap_or_else(|| Value::String(aegis_common::time::now_rfc3339())),
        "metric": metric,
        "value": value,
        "predicted": null,
        "anomalyScore": r.get("anomaly_score").and_then(Value::as_f64).unwrap_or(0.0),
        "isAnomaly": true,
        "severity": r.get("severity").cloned().unwrap_or(Value::Null),
        "recommendation": recommendation,
    }))
}

#[utoipa::path(get, path = "/ai/metrics", tag = "ai", operation_id = "prediction_stats", summary = "Prediction statistics",
    description = "Counters over the stored predictions.",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The counters", body = PredictionStats),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn stats(
    State(state): State<AppState>,
    _: AuthUser,
    _: RateLimit,
) -> Result<Response, ApiError> {
    Ok(axum::Json(predictions::stats(&state.db).await?).into_response())
}

#[utoipa::path(get, path = "/ai/predictions", tag = "ai", operation_id = "latest_predictions", summary = "Latest predictions",
    description = "The latest stored predictions, newest first.",
    security(("bearerAuth" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 50)")),
    responses(
        (status = 200, description = "The predictions", body = Vec<Prediction>),
        (status = 400, description = "Invalid `limit`", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn latest(
    State(state): State<AppState>,
    _: AuthUser,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = match q.get("limit") {
        None => 50,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(
                    vec!["limit must be an integer between 1 and 500".to_owned()].into(),
                ));
            }
        },
    };
    Ok(axum::Json(predictions::latest(&state.db, limit).await?).into_response())
}
