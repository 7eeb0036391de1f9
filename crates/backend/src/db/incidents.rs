//! `incidents` and `incident_events`: remediation incidents and their timeline.
//!
//! Every statement is checked against the schema when the crate compiles (`sqlx::query!`,
//! against the descriptions in `.sqlx/`, which `scripts/sqlx-prepare.sh` regenerates after a
//! statement or a migration changes). The open statuses are named in SQL only through the
//! function `incident_is_open`, which the open-fingerprint index uses too.

use aegis_remediation::{
    Move, Status, Step,
    guardrail::{self, Blocked, Limits},
    plan::Subject,
};
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// The text forms of `statuses`, as `text[]` parameters take them.
fn texts(statuses: impl Iterator<Item = Status>) -> Vec<String> {
    statuses.map(|s| s.as_str().to_owned()).collect()
}

fn opt_millis<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&aegis_common::time::rfc3339_millis(*at)),
        None => s.serialize_none(),
    }
}

/// An incident as the API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    /// Id.
    pub id: Uuid,
    /// Deduplication fingerprint.
    pub fingerprint: String,
    /// Status.
    #[schema(value_type = String)]
    pub status: Status,
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
    /// The recommended action of the first signal, or of the ai-engine's analysis (`None`
    /// until analysed).
    pub recommended_action: Option<String>,
    /// Correlation (trace) id.
    pub correlation_id: Option<String>,
    /// The first signal as received.
    pub signal: Value,
    /// Created.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// The executor action chosen.
    pub action_type: Option<String>,
    /// Its `actionParams`.
    pub action_params: Option<Value>,
    /// The effective mode of the decision.
    pub mode: Option<String>,
    /// The `policy_audit_logs` id of the decision.
    pub decision_id: Option<Uuid>,
    /// The deciding policy.
    pub policy_name: Option<String>,
    /// The executor's audit row id.
    pub executor_audit_id: Option<String>,
    /// When an action against the cluster was committed to.
    #[serde(serialize_with = "opt_millis")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acted_at: Option<DateTime<Utc>>,
    /// When verification is due.
    #[serde(serialize_with = "opt_millis")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub verify_at: Option<DateTime<Utc>>,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
    /// When it was resolved.
    #[serde(serialize_with = "opt_millis")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<DateTime<Utc>>,
}

impl Incident {
    /// What planning needs of the incident.
    #[must_use]
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            namespace: &self.namespace,
            deployment: &self.deployment,
            pod: self.pod.as_deref(),
            severity: &self.severity,
            confidence: self.confidence,
            score: self.score,
        }
    }
}

/// One timeline entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentEvent {
    /// Order within the timeline.
    pub id: i64,
    /// When it happened.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// Loop step (`signal`, ...).
    #[schema(value_type = String)]
    pub step: Step,
    /// Incident status after the step.
    #[schema(value_type = String)]
    pub status: Status,
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
    /// Recommended action, when known.
    pub recommended_action: Option<&'a str>,
    /// Correlation id.
    pub correlation_id: &'a str,
    /// The signal.
    pub signal: &'a Value,
}

/// Fallible text columns (statuses, steps) into their domain types.
fn decode<T>(text: String) -> Result<T, sqlx::Error>
where
    T: TryFrom<String>,
    T::Error: std::error::Error + Send + Sync + 'static,
{
    T::try_from(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// An [`Incident`] from a record whose fields are named as the columns of `incidents`.
/// Every statement of this module that answers incidents selects those names, so one mapping
/// serves the records that `query!` generates for each of them. Evaluates to a `Result`.
macro_rules! incident {
    ($r:ident) => {{
        Ok::<_, sqlx::Error>(Incident {
            id: $r.id,
            fingerprint: $r.fingerprint,
            status: decode($r.status)?,
            source: $r.source,
            kind: $r.kind,
            namespace: $r.namespace,
            deployment: $r.deployment,
            pod: $r.pod,
            severity: $r.severity,
            score: $r.score,
            confidence: $r.confidence,
            recommended_action: $r.recommended_action,
            correlation_id: $r.correlation_id,
            signal: $r.signal,
            created_at: $r.created_at,
            updated_at: $r.updated_at,
            action_type: $r.action_type,
            action_params: $r.action_params,
            mode: $r.mode,
            decision_id: $r.decision_id,
            policy_name: $r.policy_name,
            executor_audit_id: $r.executor_audit_id,
            acted_at: $r.acted_at,
            verify_at: $r.verify_at,
            decided_by: $r.decided_by,
            resolved_at: $r.resolved_at,
        })
    }};
}

/// The incident and its new timeline event from the record of a statement that changes the
/// incident and appends the event together: the incident's columns and the event's as
/// `event_id`, `event_at`, `event_step`, `event_status` and `event_details`.
///
/// Each such statement is one `WITH i AS (<change> RETURNING *), e AS (<insert of the event
/// with the status after the change>) SELECT ... FROM i CROSS JOIN e`: when the change touches
/// no row, nothing is written and no row answers. A single statement is atomic, so a step
/// costs one round trip and one commit instead of a transaction's four. PostgreSQL cannot say
/// whether a column of a `WITH` query may be null, so those statements state it for each
/// column (`"id!"` never, `"pod?"` may be).
macro_rules! stepped {
    ($r:ident) => {{
        let event = IncidentEvent {
            id: $r.event_id,
            at: $r.event_at,
            step: decode($r.event_step)?,
            status: decode($r.event_status)?,
            details: $r.event_details,
        };
        incident!($r).map(|incident| (incident, event))
    }};
}

/// Inserts an `open` incident with its first timeline event, unless an open incident with
/// the same fingerprint exists (then `None`, and nothing is written).
#[tracing::instrument(skip(db, new, details))]
pub async fn insert_if_absent(
    db: &PgPool,
    new: &NewIncident<'_>,
    step: Step,
    details: &Value,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    let row = sqlx::query!(
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
            RETURNING id, at, step, status, details)
        SELECT i.id AS "id!", i.fingerprint AS "fingerprint!", i.status AS "status!",
               i.source AS "source!", i.kind AS "kind!", i.namespace AS "namespace!",
               i.deployment AS "deployment!", i.pod AS "pod?", i.severity AS "severity!",
               i.score AS "score!", i.confidence AS "confidence!",
               i.recommended_action AS "recommended_action?",
               i.correlation_id AS "correlation_id?", i.signal AS "signal!",
               i.created_at AS "created_at!", i.updated_at AS "updated_at!",
               i.resolved_at AS "resolved_at?", i.action_type AS "action_type?",
               i.action_params AS "action_params?", i.mode AS "mode?",
               i.decision_id AS "decision_id?", i.policy_name AS "policy_name?",
               i.executor_audit_id AS "executor_audit_id?", i.acted_at AS "acted_at?",
               i.verify_at AS "verify_at?", i.decided_by AS "decided_by?",
               e.id AS "event_id!", e.at AS "event_at!", e.step AS "event_step!",
               e.status AS "event_status!", e.details AS "event_details!"
          FROM i CROSS JOIN e"#,
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
    let row = sqlx::query!(
        r#"WITH i AS (
            UPDATE incidents SET updated_at = now()
             WHERE id = (SELECT id FROM incidents
                          WHERE fingerprint = $1 AND incident_is_open(status) FOR UPDATE)
            RETURNING *),
          e AS (
            INSERT INTO incident_events (incident_id, step, status, details)
            SELECT id, $2, status, $3 FROM i
            RETURNING id, at, step, status, details)
        SELECT i.id AS "id!", i.fingerprint AS "fingerprint!", i.status AS "status!",
               i.source AS "source!", i.kind AS "kind!", i.namespace AS "namespace!",
               i.deployment AS "deployment!", i.pod AS "pod?", i.severity AS "severity!",
               i.score AS "score!", i.confidence AS "confidence!",
               i.recommended_action AS "recommended_action?",
               i.correlation_id AS "correlation_id?", i.signal AS "signal!",
               i.created_at AS "created_at!", i.updated_at AS "updated_at!",
               i.resolved_at AS "resolved_at?", i.action_type AS "action_type?",
               i.action_params AS "action_params?", i.mode AS "mode?",
               i.decision_id AS "decision_id?", i.policy_name AS "policy_name?",
               i.executor_audit_id AS "executor_audit_id?", i.acted_at AS "acted_at?",
               i.verify_at AS "verify_at?", i.decided_by AS "decided_by?",
               e.id AS "event_id!", e.at AS "event_at!", e.step AS "event_step!",
               e.status AS "event_status!", e.details AS "event_details!"
          FROM i CROSS JOIN e"#,
        fingerprint,
        step.as_str(),
        details,
    )
    .fetch_optional(db)
    .await?;
    row.map(|r| stepped!(r)).transpose()
}

/// List filters.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Only these statuses.
    pub statuses: Option<Vec<Status>>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// At most this many.
    pub limit: i64,
}

/// Incidents, newest first.
#[tracing::instrument(skip(db))]
pub async fn list(db: &PgPool, filter: &IncidentFilter) -> Result<Vec<Incident>, sqlx::Error> {
    let statuses = filter
        .statuses
        .as_ref()
        .map(|statuses| texts(statuses.iter().copied()));
    sqlx::query!(
        "SELECT * FROM incidents \
         WHERE ($1::text[] IS NULL OR status = ANY($1)) AND ($2::text IS NULL OR namespace = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3",
        statuses.as_deref(),
        filter.namespace.as_deref(),
        filter.limit,
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|r| incident!(r))
    .collect()
}

/// One incident.
#[tracing::instrument(skip(db))]
pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<Incident>, sqlx::Error> {
    sqlx::query!("SELECT * FROM incidents WHERE id = $1", id)
        .fetch_optional(db)
        .await?
        .map(|r| incident!(r))
        .transpose()
}

/// An incident's timeline, in order.
#[tracing::instrument(skip(db))]
pub async fn timeline(db: &PgPool, id: Uuid) -> Result<Vec<IncidentEvent>, sqlx::Error> {
    sqlx::query!(
        "SELECT id, at, step, status, details FROM incident_events \
         WHERE incident_id = $1 ORDER BY id",
        id
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|r| {
        Ok(IncidentEvent {
            id: r.id,
            at: r.at,
            step: decode(r.step)?,
            status: decode(r.status)?,
            details: r.details,
        })
    })
    .collect()
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
struct Gate<'a> {
    namespace: &'a str,
    deployment: &'a str,
    cooldown_seconds: i64,
    max_per_hour: i64,
}

/// [`transition`] on any executor; with `act`, `acted_at` is stamped in the same statement,
/// and with a `gate`, the move happens only while the guardrails pass (both probes bounded as
/// in [`guard_check`]; without one, they are not evaluated).
async fn apply(
    db: impl PgExecutor<'_>,
    id: Uuid,
    t: &Transition<'_>,
    act: bool,
    gate: Option<Gate<'_>>,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    let patch = t.patch;
    let row = sqlx::query!(
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
            RETURNING id, at, step, status, details)
        SELECT i.id AS "id!", i.fingerprint AS "fingerprint!", i.status AS "status!",
               i.source AS "source!", i.kind AS "kind!", i.namespace AS "namespace!",
               i.deployment AS "deployment!", i.pod AS "pod?", i.severity AS "severity!",
               i.score AS "score!", i.confidence AS "confidence!",
               i.recommended_action AS "recommended_action?",
               i.correlation_id AS "correlation_id?", i.signal AS "signal!",
               i.created_at AS "created_at!", i.updated_at AS "updated_at!",
               i.resolved_at AS "resolved_at?", i.action_type AS "action_type?",
               i.action_params AS "action_params?", i.mode AS "mode?",
               i.decision_id AS "decision_id?", i.policy_name AS "policy_name?",
               i.executor_audit_id AS "executor_audit_id?", i.acted_at AS "acted_at?",
               i.verify_at AS "verify_at?", i.decided_by AS "decided_by?",
               e.id AS "event_id!", e.at AS "event_at!", e.step AS "event_step!",
               e.status AS "event_status!", e.details AS "event_details!"
          FROM i CROSS JOIN e"#,
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
    let row = sqlx::query!(
        r#"WITH i AS (UPDATE incidents SET updated_at = now() WHERE id = $1 RETURNING *),
          e AS (
            INSERT INTO incident_events (incident_id, step, status, details)
            SELECT id, $2, status, $3 FROM i
            RETURNING id, at, step, status, details)
        SELECT i.id AS "id!", i.fingerprint AS "fingerprint!", i.status AS "status!",
               i.source AS "source!", i.kind AS "kind!", i.namespace AS "namespace!",
               i.deployment AS "deployment!", i.pod AS "pod?", i.severity AS "severity!",
               i.score AS "score!", i.confidence AS "confidence!",
               i.recommended_action AS "recommended_action?",
               i.correlation_id AS "correlation_id?", i.signal AS "signal!",
               i.created_at AS "created_at!", i.updated_at AS "updated_at!",
               i.resolved_at AS "resolved_at?", i.action_type AS "action_type?",
               i.action_params AS "action_params?", i.mode AS "mode?",
               i.decision_id AS "decision_id?", i.policy_name AS "policy_name?",
               i.executor_audit_id AS "executor_audit_id?", i.acted_at AS "acted_at?",
               i.verify_at AS "verify_at?", i.decided_by AS "decided_by?",
               e.id AS "event_id!", e.at AS "event_at!", e.step AS "event_step!",
               e.status AS "event_status!", e.details AS "event_details!"
          FROM i CROSS JOIN e"#,
        id,
        step.as_str(),
        details,
    )
    .fetch_optional(db)
    .await?;
    row.map(|r| stepped!(r)).transpose()
}

/// What [`guarded_transition`] did.
#[derive(Debug)]
pub enum Guarded {
    /// The incident moved (and, when the guard takes the slot, `acted_at` is set).
    Moved(Box<(Incident, IncidentEvent)>),
    /// The incident was no longer in a status the move starts from: nothing was written.
    MovedOn,
    /// A guardrail held: nothing was written.
    Blocked(Blocked),
}

/// How [`guarded_transition`] treats the guardrails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Check the cooldown of (namespace, deployment) and the per-namespace hourly cap first;
    /// with `take`, stamp `acted_at` (the incident takes an action slot).
    Enforce {
        /// The cooldown, in seconds.
        cooldown_seconds: i64,
        /// Actions per namespace per hour.
        max_per_hour: i64,
        /// Take the slot (otherwise only check).
        take: bool,
    },
    /// Take the slot without checking (an admin approved the action).
    Force,
}

/// The guardrails and the transition they gate, together: when `guard` allows it, applies
/// `t` and (when the guard takes the slot) stamps `acted_at` in the same statement, so a slot
/// is never taken by an incident that did not move. Enforcing guards are serialised per
/// namespace with a transaction-scoped advisory lock, so two incidents cannot both take the
/// last slot; the checks run after the lock is held, in a statement of their own (the move
/// itself, which they gate), so its snapshot sees every slot taken before. When nothing moved,
/// a second look under the same lock tells a guardrail from an incident that moved on.
#[tracing::instrument(skip(db, incident, t), fields(incident_id = %incident.id, to = %t.to.to()))]
pub async fn guarded_transition(
    db: &PgPool,
    incident: &Incident,
    guard: Guard,
    t: &Transition<'_>,
) -> Result<Guarded, sqlx::Error> {
    let moved = |row: Option<(Incident, IncidentEvent)>| match row {
        Some(row) => Guarded::Moved(Box::new(row)),
        None => Guarded::MovedOn,
    };
    let Guard::Enforce {
        cooldown_seconds,
        max_per_hour,
        take,
    } = guard
    else {
        return Ok(moved(apply(db, incident.id, t, true, None).await?));
    };
    let gate = || Gate {
        namespace: &incident.namespace,
        deployment: &incident.deployment,
        cooldown_seconds,
        max_per_hour,
    };
    let mut tx = lock_namespace(db, &incident.namespace).await?;
    // The usual case, guardrails passing, is one statement: the move with the checks in its
    // WHERE clause.
    if let Some(row) = apply(&mut *tx, incident.id, t, take, Some(gate())).await? {
        tx.commit().await?;
        return Ok(moved(Some(row)));
    }
    // Nothing moved: a guardrail held, or the incident moved on. Still under the lock, the
    // check says which (and a cooldown that ran out in between lets the move go ahead).
    let (last, recent) = guard_check(&mut *tx, incident.id, &gate()).await?;
    let limits = Limits {
        cooldown_seconds,
        max_per_hour,
    };
    let since_last = last.map(|last| (Utc::now() - last).num_seconds());
    if let Some(blocked) = guardrail::blocked(limits, since_last, recent) {
        tx.rollback().await?;
        return Ok(Guarded::Blocked(blocked));
    }
    let row = apply(&mut *tx, incident.id, t, take, None).await?;
    if row.is_some() {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(moved(row))
}

/// The guardrails' inputs for incident `id`: the latest action on the deployment (one probe of
/// `incidents_deployment_acted_at_idx`) and the count of the namespace's last hour, which
/// stops at the cap (reaching it is all the check needs to know).
async fn guard_check(
    db: impl PgExecutor<'_>,
    id: Uuid,
    gate: &Gate<'_>,
) -> Result<(Option<DateTime<Utc>>, i64), sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT (SELECT acted_at FROM incidents
                    WHERE namespace = $1 AND deployment = $2 AND acted_at IS NOT NULL
                      AND id <> $3
                    ORDER BY acted_at DESC LIMIT 1) AS "last_acted_at?",
                  (SELECT count(*) FROM (SELECT 1 FROM incidents
                    WHERE namespace = $1 AND acted_at > now() - interval '1 hour'
                      AND id <> $3 LIMIT $4) AS recent) AS "recent!""#,
        gate.namespace,
        gate.deployment,
        id,
        gate.max_per_hour.max(0),
    )
    .fetch_one(db)
    .await?;
    Ok((row.last_acted_at, row.recent))
}

/// A transaction holding the namespace's guardrail lock, taken in the `BEGIN` itself so that
/// it costs no round trip of its own. The key is `hashtextextended('aegis-remediation:' ||
/// namespace, 0)` in every replica and version. The namespace travels hex-encoded, so nothing
/// but hex digits is formatted into the statement, whatever the namespace holds.
async fn lock_namespace(
    db: &PgPool,
    namespace: &str,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    db.begin_with(format!(
        "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('aegis-remediation:' || \
         convert_from(decode('{}', 'hex'), 'UTF8'), 0))",
        hex::encode(namespace)
    ))
    .await
}

/// Signals that joined the incident after its action (verification: a repeat means the
/// problem is still there).
#[tracing::instrument(skip(db))]
pub async fn signals_since(
    db: &PgPool,
    id: Uuid,
    since: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM incident_events
            WHERE incident_id = $1 AND step = $3 AND at > $2"#,
        id,
        since,
        Step::Signal.as_str(),
    )
    .fetch_one(db)
    .await
}

/// Incidents left mid-flight by a previous process: `(open without a decision, executing,
/// verifying)`. `open` ones count only when no step after the signal was recorded.
#[tracing::instrument(skip(db))]
pub async fn unfinished(db: &PgPool) -> Result<Vec<Incident>, sqlx::Error> {
    sqlx::query!(
        "SELECT i.* FROM incidents i \
         WHERE status IN ($1, $2) \
            OR (status = $3 AND NOT EXISTS ( \
                SELECT 1 FROM incident_events e WHERE e.incident_id = i.id AND e.step <> $4)) \
         ORDER BY created_at",
        Status::Executing.as_str(),
        Status::Verifying.as_str(),
        Status::Open.as_str(),
        Step::Signal.as_str(),
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|r| incident!(r))
    .collect()
}
