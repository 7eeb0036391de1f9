//! The prediction history, model metrics and counters, computed in SQL; 503 `Database unavailable` when storage is down.

use std::collections::HashMap;

use aegis_common::{
    db::strip_nul, error::ErrorReport, openapi::FastApiErrorBody, time::now_rfc3339,
};
use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

/// Read routes (under `/api/v1`, behind the API-key check).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(predictions))
        .routes(routes!(model_performance))
        .routes(routes!(stats))
}

/// One stored prediction.
#[derive(Debug, Serialize, ToSchema)]
pub struct PredictionRow {
    /// Row id.
    id: i32,
    /// When it was made (RFC 3339).
    #[schema(format = DateTime)]
    timestamp: String,
    /// `anomaly` or `failure`.
    model_type: String,
    /// Severity score.
    #[schema(required = true)]
    severity_score: Option<f64>,
    /// Recommended action.
    #[schema(required = true)]
    recommended_action: Option<String>,
    /// The full response as answered.
    #[schema(value_type = Object)]
    prediction: Value,
}

/// `GET /metrics/predictions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Predictions {
    /// Rows returned.
    total: usize,
    /// Newest first.
    predictions: Vec<PredictionRow>,
}

/// One model version's metrics.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelMetrics {
    /// `anomaly` or `failure`.
    model_type: String,
    /// Version.
    model_version: String,
    /// Accuracy.
    #[schema(required = true)]
    accuracy: Option<f64>,
    /// Precision.
    #[schema(required = true)]
    precision: Option<f64>,
    /// Recall.
    #[schema(required = true)]
    recall: Option<f64>,
    /// F1 score.
    #[schema(required = true)]
    f1_score: Option<f64>,
    /// Newest metric time (RFC 3339).
    #[schema(format = DateTime)]
    trained_at: String,
}

/// `GET /metrics/model-performance`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelPerformance {
    /// At most 10 versions, newest first.
    metrics: Vec<ModelMetrics>,
}

/// `GET /metrics/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// Every stored prediction.
    total_predictions: i64,
    /// In the last 24 hours.
    predictions_last_24h: i64,
    /// Anomalies found.
    total_anomalies_detected: i64,
    /// Failures found.
    total_failures_detected: i64,
    /// Now (RFC 3339).
    #[schema(format = DateTime)]
    timestamp: String,
}

fn unavailable(e: &sqlx::Error) -> Response {
    tracing::warn!(error = %e, "storage unavailable");
    ErrorReport::new(StatusCode::SERVICE_UNAVAILABLE, "Database unavailable").into_response()
}

fn limit_error(raw: &str) -> Response {
    ErrorReport::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        aegis_common::error::Message::Detail(json!([{
            "type": "int_parsing", "loc": ["query", "limit"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": raw,
        }])),
    )
    .into_response()
}

/// `?limit&model_type`. Read from a map so that a repeated parameter takes its last value (as
/// FastAPI does) instead of failing extraction; text fit for PostgreSQL (no U+0000).
#[derive(Debug)]
struct PredictionsQuery {
    limit: Option<String>,
    model_type: Option<String>,
}

impl From<HashMap<String, String>> for PredictionsQuery {
    fn from(mut q: HashMap<String, String>) -> Self {
        Self {
            limit: q.remove("limit"),
            model_type: q.remove("model_type").map(strip_nul),
        }
    }
}

#[utoipa::path(get, path = "/metrics/predictions", tag = "history", operation_id = "predictions", summary = "List stored predictions",
    params(
        ("limit" = Option<i64>, Query, description = "Rows (clamped to 1..1000, default 100)"),
        ("model_type" = Option<String>, Query, description = "Only `anomaly` or `failure`"),
    ),
    responses(
        (status = 200, description = "Stored predictions", body = Predictions),
        (status = 422, description = "`limit` is not an integer", body = FastApiErrorBody),
        (status = 403, description = "Missing or wrong `X-API-Key` (when `API_KEY` is set)", body = FastApiErrorBody),
        (status = 503, description = "Database unavailable", body = FastApiErrorBody),
    ))]
async fn predictions(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let q = PredictionsQuery::from(q);
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) => n.clamp(1, 1000),
            Err(_) => return limit_error(raw),
        },
    };
    type Row = (
        i32,
        chrono::DateTime<chrono::Utc>,
        String,
        Option<f64>,
        Option<String>,
        Value,
    );
    let rows: Result<Vec<Row>, _> = sqlx::query_as(
        "SELECT id, timestamp, model_type, severity_score::float8, recommended_action, prediction \
             FROM prediction_history WHERE ($1::text IS NULL OR model_type = $1) \
             ORDER BY timestamp DESC, id DESC LIMIT $2",
    )
    .bind(q.model_type)
    .bind(limit)
    .fetch_all(&state.db)
    .await;
    match rows {
        Ok(rows) => {
            let predictions: Vec<PredictionRow> = rows
                .into_iter()
                .map(
                    |(id, ts, model_type, severity_score, recommended_action, prediction)| {
                        PredictionRow {
                            id,
                            timestamp: aegis_common::time::rfc3339_millis(ts),
                            model_type,
                            severity_score,
                            recommended_action,
                            prediction,
                        }
                    },
                )
                .collect();
            Json(Predictions {
                total: predictions.len(),
                predictions,
            })
            .into_response()
        }
        Err(e) => unavailable(&e),
    }
}

#[utoipa::path(get, path = "/metrics/model-performance", tag = "history", operation_id = "model_performance", summary = "Model performance against labelled outcomes",
    params(("model_type" = Option<String>, Query, description = "Only `anomaly` or `failure`")),
    responses(
        (status = 200, description = "Metrics per model version", body = ModelPerformance),
        (status = 403, description = "Missing or wrong `X-API-Key` (when `API_KEY` is set)", body = FastApiErrorBody),
        (status = 503, description = "Database unavailable", body = FastApiErrorBody),
    ))]
async fn model_performance(
    State(state): State<AppState>,
    Query(mut q): Query<HashMap<String, String>>,
) -> Response {
    let model_type = q.remove("model_type").map(strip_nul);
    type Row = (
        String,
        String,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        chrono::DateTime<chrono::Utc>,
    );
    let rows: Result<Vec<Row>, _> = sqlx::query_as(
        "SELECT model_type, model_version, \
           max(metric_value) FILTER (WHERE metric_name = 'accuracy')::float8, \
           max(metric_value) FILTER (WHERE metric_name = 'precision')::float8, \
           max(metric_value) FILTER (WHERE metric_name = 'recall')::float8, \
           max(metric_value) FILTER (WHERE metric_name = 'f1_score')::float8, \
           max(timestamp) \
         FROM model_metrics WHERE ($1::text IS NULL OR model_type = $1) \
         GROUP BY model_type, model_version ORDER BY max(timestamp) DESC LIMIT 10",
    )
    .bind(model_type)
    .fetch_all(&state.db)
    .await;
    match rows {
        Ok(rows) => {
            let metrics: Vec<ModelMetrics> = rows
                .into_iter()
                .map(
                    |(model_type, model_version, accuracy, precision, recall, f1_score, at)| {
                        ModelMetrics {
                            model_type,
                            model_version,
                            accuracy,
                            precision,
                            recall,
                            f1_score,
                            trained_at: aegis_common::time::rfc3339_millis(at),
                        }
                    },
                )
                .collect();
            Json(ModelPerformance { metrics }).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

#[utoipa::path(get, path = "/metrics/stats", tag = "history", operation_id = "prediction_stats", summary = "Prediction statistics",
    responses(
        (status = 200, description = "Counters", body = Stats),
        (status = 403, description = "Missing or wrong `X-API-Key` (when `API_KEY` is set)", body = FastApiErrorBody),
        (status = 503, description = "Database unavailable", body = FastApiErrorBody),
    ))]
async fn stats(State(state): State<AppState>) -> Response {
    let row: Result<(i64, i64, i64, i64), _> = sqlx::query_as(
        "SELECT count(*), \
           count(*) FILTER (WHERE timestamp >= now() - interval '24 hours'), \
           count(*) FILTER (WHERE model_type = 'anomaly' AND prediction ->> 'is_anomaly' = 'true'), \
           count(*) FILTER (WHERE model_type = 'failure' AND prediction ->> 'failure_detected' = 'true') \
         FROM prediction_history",
    )
    .fetch_one(&state.db)
    .await;
    match row {
        Ok((total, last_24h, anomalies, failures)) => Json(Stats {
            total_predictions: total,
            predictions_last_24h: last_24h,
            total_anomalies_detected: anomalies,
            total_failures_detected: failures,
            timestamp: now_rfc3339(),
        })
        .into_response(),
        Err(e) => unavailable(&e),
    }
}
