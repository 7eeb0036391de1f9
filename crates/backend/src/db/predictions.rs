//! `prediction_results`: one row per AI proxy call, successful or not.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// One row to insert.
#[derive(Debug, Clone)]
pub struct NewPrediction<'a> {
    /// Id (chosen by the caller so an `anomaly` event can name it).
    pub id: Uuid,
    /// `anomaly` or `failure`.
    pub prediction_type: &'a str,
    /// `{type, metricsCount, logsCount}`; never the raw metrics.
    pub request_payload: Value,
    /// Upstream body, `{}` after a failure.
    pub response_payload: Value,
    /// `anomaly_score`, else `confidence`.
    pub score: Option<f64>,
    /// Upstream severity.
    pub severity: Option<&'a str>,
    /// Whether the upstream call succeeded.
    pub success: bool,
    /// Last error after a failure.
    pub error_message: Option<&'a str>,
}

/// Inserts a row.
#[tracing::instrument(skip(db, p), fields(id = %p.id))]
pub async fn insert(db: &PgPool, p: &NewPrediction<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO prediction_results (id, prediction_type, request_payload, response_payload, \
         score, severity, success, error_message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(p.id)
    .bind(p.prediction_type)
    .bind(&p.request_payload)
    .bind(&p.response_payload)
    .bind(p.score)
    .bind(p.severity)
    .bind(p.success)
    .bind(p.error_message)
    .execute(db)
    .await
    .map(|_| ())
}

/// A stored prediction as `GET /ai/predictions` returns it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prediction {
    /// Id.
    pub id: Uuid,
    /// `anomaly` or `failure`.
    pub prediction_type: String,
    /// Score.
    pub score: Option<f64>,
    /// Severity.
    pub severity: Option<String>,
    /// Success.
    pub success: bool,
    /// Error.
    pub error_message: Option<String>,
    /// Upstream body.
    pub response_payload: Option<Value>,
    /// When.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

/// The newest `limit` predictions.
#[tracing::instrument(skip(db))]
pub async fn latest(db: &PgPool, limit: i64) -> Result<Vec<Prediction>, sqlx::Error> {
    sqlx::query_as::<_, Prediction>(
        "SELECT id, prediction_type, score, severity, success, error_message, response_payload, \
         created_at FROM prediction_results ORDER BY created_at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

/// `GET /ai/metrics`: computed with SQL aggregates.
#[tracing::instrument(skip(db))]
pub async fn stats(db: &PgPool) -> Result<Value, sqlx::Error> {
    let (total, succeeded, last24h): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE success), \
         count(*) FILTER (WHERE created_at > now() - interval '24 hours') FROM prediction_results",
    )
    .fetch_one(db)
    .await?;
    let by_type: Vec<(String, i64)> = sqlx::query_as(
        "SELECT prediction_type, count(*) FROM prediction_results GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(db)
    .await?;
    let by_type: Map<String, Value> = by_type
        .into_iter()
        .map(|(t, n)| (t, Value::from(n)))
        .collect();
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let rate = if total == 0 {
        0.0
    } else {
        succeeded as f64 / total as f64
    };
    Ok(json!({
        "totalPredictions": total,
        "byType": by_type,
        "successRate": rate,
        "last24h": last24h,
    }))
}
