//! `incidents` and `incident_events`: remediation incidents and their timeline.
//!
//! Reads are here; the writes of the loop's steps are in `steps.rs`, and the guardrails that
//! gate an action in `guard.rs`.
//!
//! Every statement is checked against the schema when the crate compiles (`sqlx::query!`,
//! against the descriptions in `.sqlx/`, which `scripts/sqlx-prepare.sh` regenerates after a
//! statement or a migration changes). The open statuses are named in SQL only through the
//! function `incident_is_open`, which the open-fingerprint index uses too.

use aegis_remediation::{Status, Step, plan::Subject};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// The text forms of `statuses`, as `text[]` parameters take them.
fn texts(statuses: impl Iterator<Item = Status>) -> Vec<String> {
    statuses.map(|s| s.as_str().to_owned()).collect()
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
    #[serde(serialize_with = "aegis_common::time::serde_millis_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acted_at: Option<DateTime<Utc>>,
    /// When verification is due.
    #[serde(serialize_with = "aegis_common::time::serde_millis_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub verify_at: Option<DateTime<Utc>>,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
    /// While it awaits approval: when the approval expires.
    #[serde(serialize_with = "aegis_common::time::serde_millis_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub approval_expires_at: Option<DateTime<Utc>>,
    /// When it was resolved.
    #[serde(serialize_with = "aegis_common::time::serde_millis_opt")]
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
            rollback_revision: self
                .signal
                .pointer("/evidence/rollout/healthyRevision")
                .filter(|_| self.source == aegis_common::contracts::KUBERNETES_SOURCE)
                .and_then(Value::as_i64)
                .filter(|r| *r > 0),
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
            approval_expires_at: $r.approval_expires_at,
            resolved_at: $r.resolved_at,
        })
    }};
}

/// The incident and its new timeline event from the record of a statement that changes the
/// incident and appends the event together: the incident's columns and the event's as
/// `event_id`, `event_at`, `event_step`, `event_status` and `event_details`.
/// The statements are written with `query_stepped!`.
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

/// `sqlx::query!` of a statement that changes an incident and appends its timeline event:
/// `$ctes` is `WITH i AS (<change> RETURNING *), e AS (<insert of the event>)`, and the
/// `SELECT` of the incident's and the event's columns that `stepped!` maps is appended
/// here, so that it is written once.
///
/// A single statement is atomic, so a step costs one round trip and one commit instead of a
/// transaction's four; when the change touches no row, nothing is written and no row answers.
/// PostgreSQL cannot say whether a column of a `WITH` query may be null, so the `SELECT` states
/// it for each column (`"id!"` never, `"pod?"` may be).
macro_rules! query_stepped {
    ($ctes:literal, $($args:tt)*) => {
        sqlx::query!(
            $ctes
                + r#"
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
               i.approval_expires_at AS "approval_expires_at?",
               e.id AS "event_id!", e.at AS "event_at!", e.step AS "event_step!",
               e.status AS "event_status!", e.details AS "event_details!"
          FROM i CROSS JOIN e"#,
            $($args)*
        )
    };
}

mod guard;
mod steps;

pub use guard::{Guard, Guarded, guarded_transition};
pub use steps::{IncidentPatch, Transition, append_event, insert_if_absent, join_open, transition};

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

/// Up to `limit` incidents whose approval has expired, soonest first. One that waits without
/// a deadline (asked for by a backend of an earlier version during a rolling update) expires
/// `timeout_seconds` after its last change. The caller moves each with a compare-and-set, so
/// an approval that lands first wins.
#[tracing::instrument(skip(db))]
pub async fn approvals_expired(
    db: &PgPool,
    limit: i64,
    timeout_seconds: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM (
             SELECT id, approval_expires_at AS due FROM incidents
              WHERE status = $1 AND approval_expires_at <= now()
             UNION ALL
             SELECT id, updated_at + make_interval(secs => $3::int8) FROM incidents
              WHERE status = $1 AND approval_expires_at IS NULL
                AND updated_at <= now() - make_interval(secs => $3::int8)) AS expired
            ORDER BY due LIMIT $2"#,
        Status::AwaitingApproval.as_str(),
        limit,
        timeout_seconds,
    )
    .fetch_all(db)
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
