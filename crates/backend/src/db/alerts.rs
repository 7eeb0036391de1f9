//! `alerts`: severity is the union vocabulary, status `open|acknowledged|resolved`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Accepted severities: the union of the original's, the dashboard's and the AI engine's.
pub const SEVERITIES: &[&str] = &[
    "info", "low", "medium", "warning", "high", "error", "critical",
];

/// Accepted statuses.
pub const STATUSES: &[&str] = &["open", "acknowledged", "resolved"];

/// An alert as the API returns it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Severity.
    pub severity: String,
    /// Status.
    pub status: String,
    /// Free-form metadata.
    pub metadata: Value,
    /// Created.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, title, description, severity, status, metadata, created_at, updated_at";

/// A new alert (always `open`).
#[derive(Debug, Clone)]
pub struct NewAlert<'a> {
    /// Title.
    pub title: &'a str,
    /// Description.
    pub description: Option<&'a str>,
    /// Severity (validated).
    pub severity: &'a str,
    /// Metadata object.
    pub metadata: Value,
}

/// Inserts an alert.
#[tracing::instrument(skip(db, new))]
pub async fn insert(db: &PgPool, new: &NewAlert<'_>) -> Result<Alert, sqlx::Error> {
    sqlx::query_as::<_, Alert>(&format!(
        "INSERT INTO alerts (title, description, severity, metadata) VALUES ($1, $2, $3, $4) \
         RETURNING {COLUMNS}"
    ))
    .bind(new.title)
    .bind(new.description)
    .bind(new.severity)
    .bind(&new.metadata)
    .fetch_one(db)
    .await
}

/// A partial update; `None` leaves the column alone.
#[derive(Debug, Clone, Default)]
pub struct AlertChanges {
    /// Title.
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Severity.
    pub severity: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Replaces the whole metadata object.
    pub metadata: Option<Value>,
}

impl AlertChanges {
    /// U+0000 removed from every string (PostgreSQL's `text` and `jsonb` refuse it).
    #[must_use]
    pub fn storable(self) -> Self {
        use aegis_common::db::{strip_nul, strip_nul_json};
        Self {
            title: self.title.map(strip_nul),
            description: self.description.map(strip_nul),
            severity: self.severity.map(strip_nul),
            status: self.status.map(strip_nul),
            metadata: self.metadata.map(strip_nul_json),
        }
    }
}

/// Applies `changes`; `None` when the alert does not exist.
#[tracing::instrument(skip(db, changes))]
pub async fn update(
    db: &PgPool,
    id: Uuid,
    changes: &AlertChanges,
) -> Result<Option<Alert>, sqlx::Error> {
    sqlx::query_as::<_, Alert>(&format!(
        "UPDATE alerts SET title = COALESCE($2, title), description = COALESCE($3, description), \
         severity = COALESCE($4, severity), status = COALESCE($5, status), \
         metadata = COALESCE($6, metadata), updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(changes.title.as_deref())
    .bind(changes.description.as_deref())
    .bind(changes.severity.as_deref())
    .bind(changes.status.as_deref())
    .bind(changes.metadata.as_ref())
    .fetch_optional(db)
    .await
}

/// Filters of `GET /alerts`.
#[derive(Debug, Clone)]
pub struct AlertFilter {
    /// Any of these statuses (`None` = all).
    pub statuses: Option<Vec<String>>,
    /// Any of these severities (`None` = all).
    pub severities: Option<Vec<String>>,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

/// Alerts matching `filter`, newest first.
#[tracing::instrument(skip(db))]
pub async fn list(db: &PgPool, filter: &AlertFilter) -> Result<Vec<Alert>, sqlx::Error> {
    sqlx::query_as::<_, Alert>(&format!(
        "SELECT {COLUMNS} FROM alerts \
         WHERE ($1::text[] IS NULL OR status = ANY($1)) AND ($2::text[] IS NULL OR severity = ANY($2)) \
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(filter.statuses.as_deref())
    .bind(filter.severities.as_deref())
    .bind(filter.limit)
    .bind(filter.offset)
    .fetch_all(db)
    .await
}

/// Number of `open` alerts.
#[tracing::instrument(skip(db))]
pub async fn count_open(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM alerts WHERE status = 'open'")
        .fetch_one(db)
        .await
}

/// One row of `GET /metrics/historical`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DailyCount {
    /// UTC calendar day, `YYYY-MM-DD`.
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    /// Severity.
    pub severity: String,
    /// Alerts created that day with that severity.
    pub count: i64,
}

/// Alerts per UTC day and severity over the last `days` days, newest day first.
#[tracing::instrument(skip(db))]
pub async fn daily_counts(db: &PgPool, days: i32) -> Result<Vec<DailyCount>, sqlx::Error> {
    sqlx::query_as::<_, DailyCount>(
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS date, severity, count(*) AS count \
         FROM alerts WHERE created_at >= now() - make_interval(days => $1) \
         GROUP BY 1, 2 ORDER BY 1 DESC, 2 ASC",
    )
    .bind(days)
    .fetch_all(db)
    .await
}
