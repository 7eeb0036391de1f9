//! `audit_events`: append-only; a failed write is logged, never surfaced.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// One event to record.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent {
    /// e.g. `auth_login_success`.
    pub event_type: &'static str,
    /// Actor.
    pub user_id: Option<Uuid>,
    /// e.g. `user`.
    pub entity_type: Option<&'static str>,
    /// Entity id.
    pub entity_id: Option<String>,
    /// Free-form details.
    pub details: Value,
    /// Client IP.
    pub ip_address: Option<String>,
    /// Client `User-Agent`.
    pub user_agent: Option<String>,
}

/// A stored event as `GET /audit/events` returns it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventRow {
    /// Id.
    pub id: Uuid,
    /// Type.
    pub event_type: String,
    /// Actor.
    pub user_id: Option<Uuid>,
    /// Entity type.
    pub entity_type: Option<String>,
    /// Entity id.
    pub entity_id: Option<String>,
    /// Details.
    pub details: Value,
    /// Client IP.
    pub ip_address: Option<String>,
    /// Client UA.
    pub user_agent: Option<String>,
    /// When.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

/// Filters of `GET /audit/events`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact type.
    pub event_type: Option<String>,
    /// Actor.
    pub user_id: Option<Uuid>,
    /// From (inclusive).
    pub start: Option<DateTime<Utc>>,
    /// To (inclusive).
    pub end: Option<DateTime<Utc>>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// Appends `event`; failures are logged and swallowed.
pub async fn record(db: &PgPool, event: NewAuditEvent) {
    let details = if event.details.is_null() {
        Value::Object(Default::default())
    } else {
        event.details
    };
    let res = sqlx::query(
        "INSERT INTO audit_events (event_type, user_id, entity_type, entity_id, details, ip_address, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(event.event_type)
    .bind(event.user_id)
    .bind(event.entity_type)
    .bind(event.entity_id)
    .bind(details)
    .bind(event.ip_address.map(|ip| truncate(ip, 64)))
    .bind(event.user_agent)
    .execute(db)
    .await;
    if let Err(e) = res {
        tracing::error!(error = %e, event_type = event.event_type, "failed to write audit event");
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Events matching `f`, newest first.
#[tracing::instrument(skip(db))]
pub async fn list(db: &PgPool, f: &AuditFilter) -> Result<Vec<AuditEventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event_type, user_id, entity_type, entity_id, details, ip_address, user_agent, created_at \
         FROM audit_events \
         WHERE ($1::text IS NULL OR event_type = $1) \
           AND ($2::uuid IS NULL OR user_id = $2) \
           AND ($3::timestamptz IS NULL OR created_at >= $3) \
           AND ($4::timestamptz IS NULL OR created_at <= $4) \
         ORDER BY created_at DESC, id DESC LIMIT $5",
    )
    .bind(f.event_type.as_deref())
    .bind(f.user_id)
    .bind(f.start)
    .bind(f.end)
    .bind(f.limit)
    .fetch_all(db)
    .await
}
