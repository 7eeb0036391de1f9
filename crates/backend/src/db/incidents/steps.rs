//! The writes of the loop's steps: each changes an incident and appends its timeline event
//! in one statement.

use aegis_remediation::{Move, Status, Step};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::{Incident, IncidentEvent, NewIncident, decode, texts};

/// Inserts an `open` incident with its first timeline event, unless an open incident with
/// the same fingerprint exists (then `None`, and nothing is written).
#[tracing::instrument(skip(db, new, details))]
pub async fn insert_if_absent(
    db: &PgPool,
    new: &NewIncident<'_>,
    step: Step,
    details: &Value,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    let row = query_stepped!(
        r#"WITH i AS (
            INSERT INTO incidents (fingerprint, status, source, kind, namespace, deployment,
                                   pod, severity, score, confidence, recommended_action,
                                   correlation_id, signal)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            ON CONFLICT (fingerprint) WHERE incident_is_open(status) DO NOTHING
            RETURNING *),
          e AS (
            INSERT INTO incident_events (incident_id, step, status, details)
            SELECT id, $14, status, $15 FROM i
            RETURNING id, at, step, status, details)"#,
        new.fingerprint,
        Status::Open.as_str(),
        new.source,
        new.kind,
        new.namespace,
        new.deployment,
        new.pod,
        new.severity,
        new.score,
        new.confidence,
        new.recommended_action,
        new.correlation_id,
        new.signal,
        step.as_str(),
        details,
    )
    .fetch_optional(db)
    .await?;
    row.map(|r| stepped!(r)).transpose()
}

/// Appends a timeline event to the open incident with `fingerprint`, if there is one, and
/// touches its `updated_at`. The status is left alone (a joining signal makes no decision).
/// The row lock of the `UPDATE` serialises the join with a concurrent status change (the
/// decision path), so the event's status is the incident's status when it was appended.
#[tracing::instrument(skip(db, details))]
pub async fn join_open(
    db: &PgPool,
    fingerprint: &str,
    step: Step,
    details: &Value,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    let row = query_stepped!(
        r#"WITH i AS (
            UPDATE incidents SET updated_at = now()
             WHERE id = (SELECT id FROM incidents
                          WHERE fingerprint = $1 AND incident_is_open(status) FOR UPDATE)
            RETURNING *),
          e AS (
            INSERT INTO incident_events (incident_id, step, status, details)
            SELECT id, $2, status, $3 FROM i
            RETURNING id, at, step, status, details)"#,
        fingerprint,
        step.as_str(),
        details,
    )
    .fetch_optional(db)
    .await?;
    row.map(|r| stepped!(r)).transpose()
}

/// Fields a step may set on the incident; `None` leaves a column as it is.
#[derive(Debug, Clone, Default)]
pub struct IncidentPatch {
    /// Recommended action (after analysis).
    pub recommended_action: Option<String>,
    /// Executor action.
    pub action_type: Option<String>,
    /// Its parameters.
    pub action_params: Option<Value>,
    /// Effective mode.
    pub mode: Option<String>,
    /// Policy decision id.
    pub decision_id: Option<Uuid>,
    /// Deciding policy.
    pub policy_name: Option<String>,
    /// Executor audit id.
    pub executor_audit_id: Option<String>,
    /// Verification due time.
    pub verify_at: Option<DateTime<Utc>>,
    /// Approver or rejecter.
    pub decided_by: Option<String>,
    /// When a requested approval expires.
    pub approval_expires_at: Option<DateTime<Utc>>,
}

/// A status change of one step: the move (from one of its starting statuses to its
/// target), with `patch` applied and a timeline event (`step`, `details`) appended.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    /// The move, which the domain's transition table allows from its starting statuses.
    pub to: Move,
    /// The timeline step.
    pub step: Step,
    /// The step's details.
    pub details: &'a Value,
    /// Columns the step sets.
    pub patch: &'a IncidentPatch,
}

/// Applies `t` to incident `id` in one statement. `None` when the incident is not (or no
/// longer) in a status the move starts from: a concurrent step won, and nothing is written.
#[tracing::instrument(skip(db, t), fields(to = %t.to.to(), step = %t.step))]
pub async fn transition(
    db: &PgPool,
    id: Uuid,
    t: &Transition<'_>,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    apply(db, id, t, false, None).await
}

/// The guardrails as a condition of the move: no action on the incident's deployment within
/// `cooldown_seconds`, and fewer than `max_per_hour` actions in its namespace in the last hour.
pub(super) struct Gate<'a> {
    pub(super) namespace: &'a str,
    pub(super) deployment: &'a str,
    pub(super) cooldown_seconds: i64,
    pub(super) max_per_hour: i64,
}

/// [`transition`] on any executor; with `act`, `acted_at` is stamped in the same statement,
/// and with a `gate`, the move happens only while the guardrails pass (both probes bounded as
/// in `guard::guard_check`; without one, they are not evaluated).
pub(super) async fn apply(
    db: impl PgExecutor<'_>,
    id: Uuid,
    t: &Transition<'_>,
    act: bool,
    gate: Option<Gate<'_>>,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    let patch = t.patch;
    let row = query_stepped!(
        r#"WITH i AS (
            UPDATE incidents SET status = $3, updated_at = now(),
                   resolved_at = CASE WHEN $3 = ANY($4) THEN now() ELSE resolved_at END,
                   recommended_action = COALESCE($5, recommended_action),
                   action_type = COALESCE($6, action_type),
                   action_params = COALESCE($7, action_params),
                   mode = COALESCE($8, mode),
                   decision_id = COALESCE($9, decision_id),
                   policy_name = COALESCE($10, policy_name),
                   executor_audit_id = COALESCE($11, executor_audit_id),
                   verify_at = COALESCE($12, verify_at),
                   decided_by = COALESCE($13, decided_by),
                   approval_expires_at = COALESCE($21, approval_expires_at),
                   acted_at = CASE WHEN $14 THEN now() ELSE acted_at END
             WHERE id = $1 AND status = ANY($2)
               AND ($17::text IS NULL OR (
                    NOT EXISTS (SELECT 1 FROM incidents o
                     WHERE o.namespace = $17 AND o.deployment = $18
                       AND o.acted_at IS NOT NULL AND o.id <> $1
                       AND o.acted_at > now() - make_interval(secs => $19::int8))
                    AND (SELECT count(*) FROM (SELECT 1 FROM incidents o
                          WHERE o.namespace = $17 AND o.acted_at > now() - interval '1 hour'
                            AND o.id <> $1 LIMIT $20) AS recent) < $20))
            RETURNING *),
          e AS (
            INSERT INTO incident_events (incident_id, step, status, details)
            SELECT id, $15, status, $16 FROM i
            RETURNING id, at, step, status, details)"#,
        id,
        &texts(t.to.from()),
        t.to.to().as_str(),
        &texts(Status::closed()),
        patch.recommended_action.as_deref(),
        patch.action_type.as_deref(),
        patch.action_params.as_ref(),
        patch.mode.as_deref(),
        patch.decision_id,
        patch.policy_name.as_deref(),
        patch.executor_audit_id.as_deref(),
        patch.verify_at,
        patch.decided_by.as_deref(),
        act,
        t.step.as_str(),
        t.details,
        gate.as_ref().map(|g| g.namespace),
        gate.as_ref().map(|g| g.deployment),
        gate.as_ref().map(|g| g.cooldown_seconds.max(0)),
        gate.as_ref().map(|g| g.max_per_hour.max(0)),
        patch.approval_expires_at,
    )
    .fetch_optional(db)
    .await?;
    row.map(|r| stepped!(r)).transpose()
}

/// Appends a timeline event without changing the status (analysis, policy decision, ...).
#[tracing::instrument(skip(db, details))]
pub async fn append_event(
    db: &PgPool,
    id: Uuid,
    step: Step,
    details: &Value,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    let row = query_stepped!(
        r#"WITH i AS (UPDATE incidents SET updated_at = now() WHERE id = $1 RETURNING *),
          e AS (
            INSERT INTO incident_events (incident_id, step, status, details)
            SELECT id, $2, status, $3 FROM i
            RETURNING id, at, step, status, details)"#,
        id,
        step.as_str(),
        details,
    )
    .fetch_optional(db)
    .await?;
    row.map(|r| stepped!(r)).transpose()
}
