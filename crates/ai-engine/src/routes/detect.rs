//! `POST /api/v1/detect-anomaly` and `POST /api/v1/detect-failure`: parse, score, answer, then record history and metrics off the request path.

use std::time::Instant;

use aegis_common::{
    contracts::{AnomalyResult, FailureResult, LogSample, MetricSample},
    error::ErrorReport,
    error::Message,
    http::has_json_content_type,
    openapi::FastApiErrorBody,
};
use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    answer::{anomaly_result, failure_result, finite, no_features},
    detector::{
        anomaly::signature,
        failure::FailureOutcome,
        features::{error_services, log_features, metric_features, metric_series},
        heuristic_failure, series_key, trained_failure,
    },
    history::{BaselineRecord, JsonText, PredictionRecord, Record},
    request::{DetectRequest, Kind, parse_detect, workload},
    routing::FORWARDED,
    state::AppState,
};

/// Inference routes (mounted under `/api/v1`, behind the API-key check).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(detect_anomaly))
        .routes(routes!(detect_failure))
}

/// The `detect-anomaly` body. The parser is lenient beyond this schema: numeric strings and `NaN`/`Infinity`
/// for `value`, Unix seconds for `timestamp`, unknown keys ignored.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "documents the body; the handler parses it leniently"
)]
pub struct DetectAnomalyBody {
    /// Metric points of the window.
    metrics: Vec<MetricSample>,
}

/// The `detect-failure` body (parsed as leniently).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "documents the body; the handler parses it leniently"
)]
pub struct DetectFailureBody {
    /// Metric points of the window.
    metrics: Vec<MetricSample>,
    /// Log lines of the window.
    logs: Vec<LogSample>,
}

fn unprocessable(detail: Vec<Value>) -> Response {
    ErrorReport::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        Message::Detail(Value::Array(detail)),
    )
    .into_response()
}

fn not_loaded() -> Response {
    ErrorReport::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Models not loaded. Service is initializing.",
    )
    .into_response()
}

fn internal() -> Response {
    ErrorReport::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal inference error",
    )
    .into_response()
}

fn parse(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    kind: Kind,
) -> Result<DetectRequest, Box<Response>> {
    if !has_json_content_type(headers) {
        return Err(Box::new(unprocessable(vec![json!({
            "type": "model_attributes_type",
            "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
        })])));
    }
    parse_detect(body, kind, state.config.max_items).map_err(|d| Box::new(unprocessable(d)))
}

/// The caller's correlation id, when it sent one (never minted here: history only records
/// ids that link to an incident).
fn correlation_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(aegis_common::telemetry::TraceParent::parse)
        .map(|t| t.trace_id())
        .or_else(|| {
            headers
                .get("x-correlation-id")
                .and_then(|v| v.to_str().ok())
                .and_then(aegis_common::telemetry::TraceParent::from_trace_id)
                .map(|t| t.trace_id())
        })
}

/// `{name: value}`, serialised straight from the feature vector (a non-finite value is `null`).
fn features_text(names: &[String], values: &[f64]) -> JsonText {
    struct Features<'a>(&'a [String], &'a [f64]);
    impl serde::Serialize for Features<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().zip(self.1))
        }
    }
    // A map of string keys and numbers always serialises.
    JsonText::from_json(serde_json::to_string(&Features(names, values)).unwrap_or_default())
}

/// The body for history: the bytes as received when they parsed unmodified, else the parsed
/// value (its non-finite tokens quoted) serialised.
fn input_text(req: &DetectRequest, body: &[u8]) -> JsonText {
    req.verbatim
        .then(|| JsonText::from_body(body))
        .flatten()
        .unwrap_or_else(|| JsonText::from_value(&req.raw))
}

/// A 200 with `text`, a serialised JSON document, as its body.
fn json_reply(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response()
}

#[utoipa::path(post, path = "/detect-anomaly", tag = "detection", operation_id = "detect_anomaly", summary = "Score a metric window for anomalies",
    request_body = DetectAnomalyBody,
    responses(
        (status = 200, description = "The anomaly verdict", body = AnomalyResult),
        (status = 422, description = "Invalid body (FastAPI validation items)", body = FastApiErrorBody),
        (status = 403, description = "Missing or wrong `X-API-Key` (when `API_KEY` is set)", body = FastApiErrorBody),
        (status = 500, description = "Inference failed", body = FastApiErrorBody),
        (status = 503, description = "Models not loaded yet", body = FastApiErrorBody),
    ))]
async fn detect_anomaly(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.models_loaded() {
        return not_loaded();
    }
    let req = match parse(&state, &headers, &body, Kind::Anomaly) {
        Ok(r) => r,
        Err(res) => return *res,
    };
    let started = Instant::now();
    let m = &state.ai_metrics;
    let points: Vec<_> = req.metrics.iter().map(|x| x.point).collect();
    let series = metric_series(&points);
    let workload = workload(&req.metrics);
    if !headers.contains_key(FORWARDED) && !series.is_empty() {
        let key = series_key(workload.as_deref(), &signature(&series));
        if let Some(owner) = state.ring.owner(&key) {
            match forward(&state, &owner, &headers, body.clone()).await {
                Ok(answer) => {
                    m.series_routing.with_label_values(&["forwarded"]).inc();
                    return answer;
                }
                Err(e) => {
                    m.series_routing.with_label_values(&["fallback"]).inc();
                    tracing::warn!(owner, series = %key, error = %e, "series owner unreachable; answering here");
                }
            }
        }
    }
    let features = metric_features(&points);
    m.features_processed
        .with_label_values(&["metric"])
        .inc_by(features.len() as u64);
    m.preprocessing_duration
        .with_label_values(&["metric_features"])
        .observe(started.elapsed().as_secs_f64());
    let outcome = match state
        .engine
        .detect_anomaly(workload.as_deref(), &series, &features)
        .await
    {
        Ok(Some(o)) => o,
        Ok(None) => {
            m.predictions
                .with_label_values(&["anomaly", "success"])
                .inc();
            return Json(no_features()).into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "anomaly detection failed");
            m.predictions.with_label_values(&["anomaly", "error"]).inc();
            return internal();
        }
    };
    let elapsed = started.elapsed();
    if outcome.retrained {
        m.active_models.set(state.engine.active_models());
        m.anomaly_series
            .set(i64::try_from(state.engine.series_count()).unwrap_or(i64::MAX));
    }
    let Ok(answer) = serde_json::to_string(&anomaly_result(&outcome)) else {
        return internal();
    };
    m.predictions
        .with_label_values(&["anomaly", "success"])
        .inc();
    m.inference_duration
        .with_label_values(&["anomaly"])
        .observe(elapsed.as_secs_f64());
    m.confidence
        .with_label_values(&["anomaly"])
        .observe(finite(outcome.confidence));
    if outcome.is_anomaly {
        m.anomalies_detected
            .with_label_values(&[&outcome.severity.to_string()])
            .inc();
    }
    // The answer is serialised once, for the reply and for its history row.
    let response = json_reply(answer.clone());
    let features_map = features_text(features.names(), features.values());
    let mut metadata = json!({"method": outcome.method.as_str()});
    if let (Some(id), Some(obj)) = (correlation_id(&headers), metadata.as_object_mut()) {
        obj.insert("correlation_id".into(), json!(id));
    }
    state
        .history
        .record(Record::Baseline(BaselineRecord::new(
            &outcome.signature,
            workload.as_deref(),
            &series,
            features_map.clone(),
        )))
        .await;
    state
        .history
        .record(Record::Prediction(Box::new(PredictionRecord {
            model_type: "anomaly",
            input_data: input_text(&req, &body),
            prediction: JsonText::from_json(answer),
            severity_score: outcome.anomaly_score,
            confidence_score: outcome.confidence,
            recommended_action: outcome.recommended_action.to_string(),
            execution_time_ms: i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX),
            model_version: outcome.model_version.clone(),
            features: features_map,
            metadata: JsonText::from_value(&metadata),
        })))
        .await;
    response
}

/// Sends a request to the replica that owns its series, headers that identify and trace it
/// included, and relays the answer. A 5xx or no answer within the deadline is an error: the
/// caller then answers itself.
async fn forward(
    state: &AppState,
    owner: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, String> {
    let mut req = state
        .peers
        .post(format!("{owner}/api/v1/detect-anomaly"))
        .header(FORWARDED, "1")
        .body(body);
    for name in [
        header::CONTENT_TYPE.as_str(),
        "x-api-key",
        "traceparent",
        "x-correlation-id",
    ] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v);
        }
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    if status.is_server_error() {
        return Err(format!("the owner answered {status}"));
    }
    let content_type = res.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = res.bytes().await.map_err(|e| e.to_string())?;
    let mut answer = (status, bytes).into_response();
    if let Some(ct) = content_type {
        answer.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    Ok(answer)
}

#[utoipa::path(post, path = "/detect-failure", tag = "detection", operation_id = "detect_failure", summary = "Classify a window as a failure type",
    request_body = DetectFailureBody,
    responses(
        (status = 200, description = "The failure-pattern verdict", body = FailureResult),
        (status = 422, description = "Invalid body (FastAPI validation items)", body = FastApiErrorBody),
        (status = 403, description = "Missing or wrong `X-API-Key` (when `API_KEY` is set)", body = FastApiErrorBody),
        (status = 500, description = "Inference failed", body = FastApiErrorBody),
        (status = 503, description = "Models not loaded yet", body = FastApiErrorBody),
    ))]
async fn detect_failure(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.models_loaded() {
        return not_loaded();
    }
    let req = match parse(&state, &headers, &body, Kind::Failure) {
        Ok(r) => r,
        Err(res) => return *res,
    };
    let started = Instant::now();
    let m = &state.ai_metrics;
    let now = chrono::Utc::now();
    let window = state.config.failure_window;
    let points: Vec<_> = req.metrics.iter().map(|x| x.point).collect();
    let metric = metric_features(&points);
    let logs = log_features(&req.logs, now, window);
    m.features_processed
        .with_label_values(&["metric"])
        .inc_by(metric.len() as u64);
    m.features_processed
        .with_label_values(&["log"])
        .inc_by(logs.len() as u64);
    let features = metric.concat(logs);
    let services = error_services(&req.logs, now, window);
    let outcome = if features.is_empty() {
        FailureOutcome::no_features()
    } else if let Some((forest, _)) = state.engine.failure_forest() {
        match trained_failure(&forest, &features, services) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "failure forest failed");
                m.predictions.with_label_values(&["failure", "error"]).inc();
                return internal();
            }
        }
    } else {
        heuristic_failure(&features, services)
    };
    let elapsed = started.elapsed();
    let answer = failure_result(&outcome);
    m.predictions
        .with_label_values(&["failure", "success"])
        .inc();
    if features.is_empty() {
        return Json(answer).into_response();
    }
    m.inference_duration
        .with_label_values(&["failure"])
        .observe(elapsed.as_secs_f64());
    m.confidence
        .with_label_values(&["failure"])
        .observe(finite(outcome.confidence));
    if let Some(t) = outcome.failure_type.filter(|_| outcome.failure_detected) {
        m.failures_detected.with_label_values(&[t.as_str()]).inc();
    }
    let method = serde_json::to_value(outcome.method).unwrap_or_default();
    let version = match (&outcome.method, state.engine.failure_forest()) {
        (crate::detector::failure::FailureMethod::RandomForest, Some((_, v))) => v,
        _ => "heuristic-1".to_owned(),
    };
    let mut metadata = json!({"method": method});
    if let (Some(id), Some(obj)) = (correlation_id(&headers), metadata.as_object_mut()) {
        obj.insert("correlation_id".into(), json!(id));
    }
    // The answer is serialised once, for the reply and for its history row.
    let Ok(answer) = serde_json::to_string(&answer) else {
        return internal();
    };
    let response = json_reply(answer.clone());
    state
        .history
        .record(Record::Prediction(Box::new(PredictionRecord {
            model_type: "failure",
            input_data: input_text(&req, &body),
            prediction: JsonText::from_json(answer),
            severity_score: outcome.confidence,
            confidence_score: outcome.confidence,
            recommended_action: outcome
                .recommended_actions
                .first()
                .map(ToString::to_string)
                .unwrap_or_else(|| "no_action".into()),
            execution_time_ms: i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX),
            model_version: version,
            features: features_text(features.names(), features.values()),
            metadata: JsonText::from_value(&metadata),
        })))
        .await;
    response
}
