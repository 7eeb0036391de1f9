//! `incidents` and `incident_events` (migration 0004): remediation incidents and their timeline.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Contract 10 statuses.
pub const STATUSES: &[&str] = &[
    "open",
    "awaiting_approval",
    "executing",
    "verifying",
    "resolved",
    "rejected",
    "failed",
    "escalated",
    "suppressed",
];

/// Statuses in which an incident still absorbs signals with its fingerprint. Must match the
/// partial unique index `incidents_open_fingerprint_key` and [`OPEN_PREDICATE`].
pub const OPEN_STATUSES: &[&str] = &["open", "awaiting_approval", "executing", "verifying"];

/// The partial index predicate, repeated in `ON CONFLICT` so PostgreSQL can infer the index.
const OPEN_PREDICATE: &str = "status IN ('open', 'awaiting_approval', 'executing', 'verifying')";

fn opt_millis<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&aegis_common::time::rfc3339_millis(*at)),
        None => s.serialize_none(),
    }
}

/// An incident as the API returns it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    /// Id.
    pub id: Uuid,
    /// Deduplication fingerprint (contract 8).
    pub fingerprint: String,
    /// Contract 10 status.
    pub status: String,
    /// Who sent the first signal.
    pub source: String,
    /// `anomaly` or `failure`.
    pub kind: String,
    /// Target namespace.
    pub namespace: String,
    /// Target deployment.
    pub deployment: String,
    /// Target pod, when known.
    pub pod: Option<String>,
    /// Severity.
    pub severity: String,
    /// Anomaly score.
    pub score: f64,
    /// Confidence.
    pub confidence: f64,
    /// The recommended action of the first signal.
    pub recommended_action: String,
    /// Correlation (trace) id.
    pub correlation_id: Option<String>,
    /// The first signal as received.
    pub signal: Value,
    /// Created.
    #[serde(with = "aegis_common::time::serde_millis")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "aegis_common::time::serde_millis")]
    pub updated_at: DateTime<Utc>,
    /// When it was resolved.
    #[serde(serialize_with = "opt_millis")]
    pub resolved_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, fingerprint, status, source, kind, namespace, deployment, pod, \
    severity, score, confidence, recommended_action, correlation_id, signal, created_at, \
    updated_at, resolved_at";

/// One timeline entry.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct IncidentEvent {
    /// Order within the timeline.
    pub id: i64,
    /// When it happened.
    #[serde(with = "aegis_common::time::serde_millis")]
    pub at: DateTime<Utc>,
    /// Loop step (`signal`, ...).
    pub step: String,
    /// Incident status after the step.
    pub status: String,
    /// Step details.
    pub details: Value,
}

/// A new incident (always `open`).
#[derive(Debug, Clone)]
pub struct NewIncident<'a> {
    /// Fingerprint.
    pub fingerprint: &'a str,
    /// Source.
    pub source: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// Deployment.
    pub deployment: &'a str,
    /// Pod.
    pub pod: Option<&'a str>,
    /// Severity.
    pub severity: &'a str,
    /// Score.
    pub score: f64,
    /// Confidence.
    pub confidence: f64,
    /// Recommended action.
    pub recommended_action: &'a str,
    /// Correlation id.
    pub correlation_id: &'a str,
    /// The signal.
    pub signal: &'a Value,
}

/// Inserts an `open` incident with its first timeline event, unless an open-ish incident with
/// the same fingerprint exists (then `None`, and nothing is written).
#[tracing::instrument(skip(db, new, details))]
pub async fn insert_if_absent(
    db: &PgPool,
    new: &NewIncident<'_>,
    step: &str,
    details: &Value,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let incident = sqlx::query_as::<_, Incident>(&format!(
        "INSERT INTO incidents (fingerprint, status, source, kind, namespace, deployment, pod, \
         severity, score, confidence, recommended_action, correlation_id, signal) \
         VALUES ($1, 'open', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (fingerprint) WHERE {OPEN_PREDICATE} DO NOTHING \
         RETURNING {COLUMNS}"
    ))
    .bind(new.fingerprint)
    .bind(new.source)
    .bind(new.kind)
    .bind(new.namespace)
    .bind(new.deployment)
    .bind(new.pod)
    .bind(new.severity)
    .bind(new.score)
    .bind(new.confidence)
    .bind(new.recommended_action)
    .bind(new.correlation_id)
    .bind(new.signal)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(incident) = incident else {
        tx.rollback().await?;
        return Ok(None);
    };
    let event = sqlx::query_as::<_, IncidentEvent>(
        "INSERT INTO incident_events (incident_id, step, status, details) \
         VALUES ($1, $2, $3, $4) RETURNING id, at, step, status, details",
    )
    .bind(incident.id)
    .bind(step)
    .bind(&incident.status)
    .bind(details)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some((incident, event)))
}

/// Appends a timeline event to the open-ish incident with `fingerprint`, if there is one, and
/// touches its `updated_at`. The status is left alone (a joining signal makes no decision).
#[tracing::instrument(skip(db, details))]
pub async fn join_open(
    db: &PgPool,
    fingerprint: &str,
    step: &str,
    details: &Value,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    let mut tx = db.begin().await?;
    // FOR UPDATE: a concurrent status change (next session's decision path) serialises with us,
    // so the event's status is the incident's status at the time it was appended.
    let incident = sqlx::query_as::<_, Incident>(&format!(
        "UPDATE incidents SET updated_at = now() \
         WHERE id = (SELECT id FROM incidents WHERE fingerprint = $1 AND {OPEN_PREDICATE} \
                     FOR UPDATE) \
         RETURNING {COLUMNS}"
    ))
    .bind(fingerprint)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(incident) = incident else {
        tx.rollback().await?;
        return Ok(None);
    };
    let event = sqlx::query_as::<_, IncidentEvent>(
        "INSERT INTO incident_events (incident_id, step, status, details) \
         VALUES ($1, $2, $3, $4) RETURNING id, at, step, status, details",
    )
    .bind(incident.id)
    .bind(step)
    .bind(&incident.status)
    .bind(details)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some((incident, event)))
}

/// List filters.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Only these statuses.
    pub statuses: Option<Vec<String>>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// At most this many.
    pub limit: i64,
}

/// Incidents, newest first.
#[tracing::instrument(skip(db))]
pub async fn list(db: &PgPool, filter: &IncidentFilter) -> Result<Vec<Incident>, sqlx::Error> {
    sqlx::query_as::<_, Incident>(&format!(
        "SELECT {COLUMNS} FROM incidents \
         WHERE ($1::text[] IS NULL OR status = ANY($1)) AND ($2::text IS NULL OR namespace = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(filter.statuses.as_deref())
    .bind(filter.namespace.as_deref())
    .bind(filter.limit)
    .fetch_all(db)
    .await
}

/// One incident.
#[tracing::instrument(skip(db))]
pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<Incident>, sqlx::Error> {
    sqlx::query_as::<_, Incident>(&format!("SELECT {COLUMNS} FROM incidents WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// An incident's timeline, in order.
#[tracing::instrument(skip(db))]
pub async fn timeline(db: &PgPool, id: Uuid) -> Result<Vec<IncidentEvent>, sqlx::Error> {
    sqlx::query_as::<_, IncidentEvent>(
        "SELECT id, at, step, status, details FROM incident_events \
         WHERE incident_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(db)
    .await
}
