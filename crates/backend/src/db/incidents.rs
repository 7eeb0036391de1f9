//! `incidents` and `incident_events` (migration 0004): remediation incidents and their timeline.

use std::sync::LazyLock;

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

/// The partial unique index `incidents_open_fingerprint_key` as a predicate over the open
/// statuses, repeated in `ON CONFLICT` so PostgreSQL can infer the index.
static OPEN_PREDICATE: LazyLock<String> = LazyLock::new(|| {
    let open: Vec<String> = Status::open().map(|s| format!("'{s}'")).collect();
    format!("status IN ({})", open.join(", "))
});

/// The text forms of `statuses`, as `text[]` parameters take them.
fn texts(statuses: impl Iterator<Item = Status>) -> Vec<&'static str> {
    statuses.map(Status::as_str).collect()
}

fn opt_millis<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&aegis_common::time::rfc3339_millis(*at)),
        None => s.serialize_none(),
    }
}

/// An incident as the API returns it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    /// Id.
    pub id: Uuid,
    /// Deduplication fingerprint.
    pub fingerprint: String,
    /// Status.
    #[sqlx(try_from = "String")]
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

const COLUMNS: &str = "id, fingerprint, status, source, kind, namespace, deployment, pod, \
    severity, score, confidence, recommended_action, correlation_id, signal, created_at, \
    updated_at, resolved_at, action_type, action_params, mode, decision_id, policy_name, \
    executor_audit_id, acted_at, verify_at, decided_by";

/// One timeline entry.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentEvent {
    /// Order within the timeline.
    pub id: i64,
    /// When it happened.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// Loop step (`signal`, ...).
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub step: Step,
    /// Incident status after the step.
    #[sqlx(try_from = "String")]
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

/// An incident as a step left it, with the step's timeline event: the one row of a statement
/// that changes the incident and appends its event together (see [`with_event`]).
#[derive(sqlx::FromRow)]
struct Stepped {
    #[sqlx(flatten)]
    incident: Incident,
    event_id: i64,
    event_at: DateTime<Utc>,
    #[sqlx(try_from = "String")]
    event_step: Step,
    #[sqlx(try_from = "String")]
    event_status: Status,
    event_details: Value,
}

impl Stepped {
    fn split(self) -> (Incident, IncidentEvent) {
        let event = IncidentEvent {
            id: self.event_id,
            at: self.event_at,
            step: self.event_step,
            status: self.event_status,
            details: self.event_details,
        };
        (self.incident, event)
    }
}

/// One statement that runs `change` (an `INSERT` into or `UPDATE` of `incidents`, without its
/// `RETURNING`) and appends the step's timeline event with the incident's status after the
/// change; parameters `$step` and `$step + 1` are the event's step and details. When `change`
/// touches no row, the statement writes nothing and answers no row. A single statement is
/// atomic, so a step costs one round trip and one commit instead of a transaction's four.
fn with_event(change: &str, step: usize) -> String {
    let details = step + 1;
    format!(
        "WITH i AS ({change} RETURNING {COLUMNS}), \
              e AS (INSERT INTO incident_events (incident_id, step, status, details) \
                    SELECT id, ${step}, status, ${details} FROM i \
                    RETURNING id, at, step, status, details) \
         SELECT i.*, e.id AS event_id, e.at AS event_at, e.step AS event_step, \
                e.status AS event_status, e.details AS event_details \
         FROM i CROSS JOIN e"
    )
}

static INSERT_IF_ABSENT: LazyLock<String> = LazyLock::new(|| {
    with_event(
        &format!(
            "INSERT INTO incidents (fingerprint, status, source, kind, namespace, deployment, \
             pod, severity, score, confidence, recommended_action, correlation_id, signal) \
             VALUES ($1, '{open}', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (fingerprint) WHERE {predicate} DO NOTHING",
            open = Status::Open,
            predicate = *OPEN_PREDICATE
        ),
        13,
    )
});

// The row lock of the UPDATE makes a concurrent status change (the decision path) serialise
// with the join, so the event's status is the incident's status when it was appended.
static JOIN_OPEN: LazyLock<String> = LazyLock::new(|| {
    with_event(
        &format!(
            "UPDATE incidents SET updated_at = now() \
             WHERE id = (SELECT id FROM incidents WHERE fingerprint = $1 AND {predicate} \
                         FOR UPDATE)",
            predicate = *OPEN_PREDICATE
        ),
        2,
    )
});

/// A status change; `$15` and `$16` are the event's step and details.
const TRANSITION_UPDATE: &str = "UPDATE incidents SET status = $3, updated_at = now(), \
       resolved_at = CASE WHEN $3 = ANY($4) THEN now() ELSE resolved_at END, \
       recommended_action = COALESCE($5, recommended_action), \
       action_type = COALESCE($6, action_type), \
       action_params = COALESCE($7, action_params), \
       mode = COALESCE($8, mode), \
       decision_id = COALESCE($9, decision_id), \
       policy_name = COALESCE($10, policy_name), \
       executor_audit_id = COALESCE($11, executor_audit_id), \
       verify_at = COALESCE($12, verify_at), \
       decided_by = COALESCE($13, decided_by), \
       acted_at = CASE WHEN $14 THEN now() ELSE acted_at END \
     WHERE id = $1 AND status = ANY($2)";

static TRANSITION: LazyLock<String> = LazyLock::new(|| with_event(TRANSITION_UPDATE, 15));

/// [`TRANSITION_UPDATE`] only while the guardrails pass: no action on the deployment
/// (`$17`, `$18`) within the cooldown (`$19` seconds), and fewer than `$20` actions in the
/// namespace in the last hour. Both probes are bounded as in [`GUARD_CHECK`].
static GUARDED_TRANSITION: LazyLock<String> = LazyLock::new(|| {
    with_event(
        &format!(
            "{TRANSITION_UPDATE} \
             AND NOT EXISTS (SELECT 1 FROM incidents o \
                  WHERE o.namespace = $17 AND o.deployment = $18 AND o.acted_at IS NOT NULL \
                    AND o.id <> $1 AND o.acted_at > now() - make_interval(secs => $19)) \
             AND (SELECT count(*) FROM (SELECT 1 FROM incidents o \
                  WHERE o.namespace = $17 AND o.acted_at > now() - interval '1 hour' \
                    AND o.id <> $1 LIMIT $20) AS recent) < $20"
        ),
        15,
    )
});

/// The guardrails' inputs: the latest action on the deployment (one probe of
/// `incidents_deployment_acted_at_idx`) and the count of the namespace's last hour, which
/// stops at the cap (reaching it is all the check needs to know).
const GUARD_CHECK: &str = "SELECT (SELECT acted_at FROM incidents \
          WHERE namespace = $1 AND deployment = $2 AND acted_at IS NOT NULL AND id <> $3 \
          ORDER BY acted_at DESC LIMIT 1), \
        (SELECT count(*) FROM (SELECT 1 FROM incidents \
          WHERE namespace = $1 AND acted_at > now() - interval '1 hour' \
            AND id <> $3 LIMIT $4) AS recent)";

static APPEND_EVENT: LazyLock<String> =
    LazyLock::new(|| with_event("UPDATE incidents SET updated_at = now() WHERE id = $1", 2));

/// Inserts an `open` incident with its first timeline event, unless an open incident with
/// the same fingerprint exists (then `None`, and nothing is written).
#[tracing::instrument(skip(db, new, details))]
pub async fn insert_if_absent(
    db: &PgPool,
    new: &NewIncident<'_>,
    step: Step,
    details: &Value,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    let row = sqlx::query_as::<_, Stepped>(&INSERT_IF_ABSENT)
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
        .bind(step.as_str())
        .bind(details)
        .fetch_optional(db)
        .await?;
    Ok(row.map(Stepped::split))
}

/// Appends a timeline event to the open incident with `fingerprint`, if there is one, and
/// touches its `updated_at`. The status is left alone (a joining signal makes no decision).
#[tracing::instrument(skip(db, details))]
pub async fn join_open(
    db: &PgPool,
    fingerprint: &str,
    step: Step,
    details: &Value,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    let row = sqlx::query_as::<_, Stepped>(&JOIN_OPEN)
        .bind(fingerprint)
        .bind(step.as_str())
        .bind(details)
        .fetch_optional(db)
        .await?;
    Ok(row.map(Stepped::split))
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
    sqlx::query_as::<_, Incident>(&format!(
        "SELECT {COLUMNS} FROM incidents \
         WHERE ($1::text[] IS NULL OR status = ANY($1)) AND ($2::text IS NULL OR namespace = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(
        filter
            .statuses
            .as_ref()
            .map(|statuses| texts(statuses.iter().copied())),
    )
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
    apply(db, id, t, false).await
}

/// [`transition`] on any executor; with `act`, `acted_at` is stamped in the same statement.
async fn apply(
    db: impl PgExecutor<'_>,
    id: Uuid,
    t: &Transition<'_>,
    act: bool,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    let row = bind_transition(sqlx::query_as::<_, Stepped>(&TRANSITION), id, t, act)
        .fetch_optional(db)
        .await?;
    Ok(row.map(Stepped::split))
}

/// Binds `$1`–`$16` of [`TRANSITION_UPDATE`] and its event.
fn bind_transition<'q>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, Stepped, sqlx::postgres::PgArguments>,
    id: Uuid,
    t: &'q Transition<'q>,
    act: bool,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, Stepped, sqlx::postgres::PgArguments> {
    let patch = t.patch;
    query
        .bind(id)
        .bind(texts(t.to.from()))
        .bind(t.to.to().as_str())
        .bind(texts(Status::closed()))
        .bind(patch.recommended_action.as_deref())
        .bind(patch.action_type.as_deref())
        .bind(patch.action_params.as_ref())
        .bind(patch.mode.as_deref())
        .bind(patch.decision_id)
        .bind(patch.policy_name.as_deref())
        .bind(patch.executor_audit_id.as_deref())
        .bind(patch.verify_at)
        .bind(patch.decided_by.as_deref())
        .bind(act)
        .bind(t.step.as_str())
        .bind(t.details)
}

/// Appends a timeline event without changing the status (analysis, policy decision, ...).
#[tracing::instrument(skip(db, details))]
pub async fn append_event(
    db: &PgPool,
    id: Uuid,
    step: Step,
    details: &Value,
) -> Result<Option<(Incident, IncidentEvent)>, sqlx::Error> {
    let row = sqlx::query_as::<_, Stepped>(&APPEND_EVENT)
        .bind(id)
        .bind(step.as_str())
        .bind(details)
        .fetch_optional(db)
        .await?;
    Ok(row.map(Stepped::split))
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
        return Ok(moved(apply(db, incident.id, t, true).await?));
    };
    let mut tx = lock_namespace(db, &incident.namespace).await?;
    // The usual case, guardrails passing, is one statement: the move with the checks in its
    // WHERE clause.
    let row = bind_transition(
        sqlx::query_as::<_, Stepped>(&GUARDED_TRANSITION),
        incident.id,
        t,
        take,
    )
    .bind(&incident.namespace)
    .bind(&incident.deployment)
    .bind(cooldown_seconds.max(0))
    .bind(max_per_hour.max(0))
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = row {
        tx.commit().await?;
        return Ok(moved(Some(row.split())));
    }
    // Nothing moved: a guardrail held, or the incident moved on. Still under the lock, the
    // check says which (and a cooldown that ran out in between lets the move go ahead).
    let (last, recent): (Option<DateTime<Utc>>, i64) = sqlx::query_as(GUARD_CHECK)
        .bind(&incident.namespace)
        .bind(&incident.deployment)
        .bind(incident.id)
        .bind(max_per_hour.max(0))
        .fetch_one(&mut *tx)
        .await?;
    let limits = Limits {
        cooldown_seconds,
        max_per_hour,
    };
    let since_last = last.map(|last| (Utc::now() - last).num_seconds());
    if let Some(blocked) = guardrail::blocked(limits, since_last, recent) {
        tx.rollback().await?;
        return Ok(Guarded::Blocked(blocked));
    }
    let row = apply(&mut *tx, incident.id, t, take).await?;
    if row.is_some() {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(moved(row))
}

/// A transaction holding the namespace's guardrail lock. A namespace that is a DNS-1123
/// label (every incident's is: the intake checks it) can only hold `[a-z0-9-]`, so it goes
/// into the `BEGIN` itself as a literal and the lock costs no round trip of its own; anything
/// else is bound as a parameter. Both take the same key.
async fn lock_namespace(
    db: &PgPool,
    namespace: &str,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    if aegis_common::names::is_dns_label(namespace) {
        return db
            .begin_with(format!(
                "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('aegis-remediation:{namespace}', 0))"
            ))
            .await;
    }
    let mut tx = db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('aegis-remediation:' || $1, 0))")
        .bind(namespace)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Signals that joined the incident after its action (verification: a repeat means the
/// problem is still there).
#[tracing::instrument(skip(db))]
pub async fn signals_since(
    db: &PgPool,
    id: Uuid,
    since: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM incident_events WHERE incident_id = $1 AND step = $3 AND at > $2",
    )
    .bind(id)
    .bind(since)
    .bind(Step::Signal.as_str())
    .fetch_one(db)
    .await
}

/// Incidents left mid-flight by a previous process: `(open without a decision, executing,
/// verifying)`. `open` ones count only when no step after the signal was recorded.
#[tracing::instrument(skip(db))]
pub async fn unfinished(db: &PgPool) -> Result<Vec<Incident>, sqlx::Error> {
    sqlx::query_as::<_, Incident>(&format!(
        "SELECT {COLUMNS} FROM incidents i \
         WHERE status IN ($1, $2) \
            OR (status = $3 AND NOT EXISTS ( \
                SELECT 1 FROM incident_events e WHERE e.incident_id = i.id AND e.step <> $4)) \
         ORDER BY created_at"
    ))
    .bind(Status::Executing.as_str())
    .bind(Status::Verifying.as_str())
    .bind(Status::Open.as_str())
    .bind(Step::Signal.as_str())
    .fetch_all(db)
    .await
}
