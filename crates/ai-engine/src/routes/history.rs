//! E6–E8 (ai-engine.md §8.3), computed in SQL; 503 `Database unavailable` when storage is down.

use aegis_common::{error::ErrorReport, time::now_rfc3339};
use axum::{
    Json, Router,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::AppState;

/// Read routes (under `/api/v1`, behind the API-key check).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics/predictions", get(predictions))
        .route("/metrics/model-performance", get(model_performance))
        .route("/metrics/stats", get(stats))
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

#[derive(Debug, Deserialize)]
struct PredictionsQuery {
    limit: Option<String>,
    model_type: Option<String>,
}

async fn predictions(State(state): State<AppState>, Query(q): Query<PredictionsQuery>) -> Response {
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
            let predictions: Vec<Value> = rows
                .into_iter()
                .map(|(id, ts, model_type, severity, action, prediction)| {
                    json!({
                        "id": id,
                        "timestamp": aegis_common::time::rfc3339_millis(ts),
                        "model_type": model_type,
                        "severity_score": severity,
                        "recommended_action": action,
                        "prediction": prediction,
                    })
                })
                .collect();
            Json(json!({"total": predictions.len(), "predictions": predictions})).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

#[derive(Debug, Deserialize)]
struct PerformanceQuery {
    model_type: Option<String>,
}

async fn model_performance(
    State(state): State<AppState>,
    Query(q): Query<PerformanceQuery>,
) -> Response {
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
    .bind(q.model_type)
    .fetch_all(&state.db)
    .await;
    match rows {
        Ok(rows) => {
            let metrics: Vec<Value> = rows
                .into_iter()
                .map(|(t, v, acc, p, r, f1, at)| {
                    json!({"model_type": t, "model_version": v, "accuracy": acc, "precision": p,
                           "recall": r, "f1_score": f1, "trained_at": aegis_common::time::rfc3339_millis(at)})
                })
                .collect();
            Json(json!({"metrics": metrics})).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

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
        Ok((total, last_24h, anomalies, failures)) => Json(json!({
            "total_predictions": total,
            "predictions_last_24h": last_24h,
            "total_anomalies_detected": anomalies,
            "total_failures_detected": failures,
            "timestamp": now_rfc3339(),
        }))
        .into_response(),
        Err(e) => unavailable(&e),
    }
}
