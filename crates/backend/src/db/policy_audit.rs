//! `policy_audit_logs`: append-only, one row per evaluation, written in
//! batches by [`crate::policy::audit`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// One evaluation to record.
#[derive(Debug, Clone)]
pub struct NewPolicyAudit {
    /// = the `decisionId` returned to the caller.
    pub id: Uuid,
    /// `context.userId`.
    pub user_id: Option<String>,
    /// Action.
    pub action: String,
    /// Resource.
    pub resource: String,
    /// `allow`, `deny` or `error`.
    pub result: &'static str,
    /// The decision's reason.
    pub reason: String,
    /// `context.metadata` or `{}`.
    pub context: Value,
    /// Matching policy names.
    pub applied_policies: Vec<String>,
    /// `context.ipAddress`.
    pub ip_address: Option<String>,
    /// `context.userAgent`.
    pub user_agent: Option<String>,
    /// Trace id the caller sent, if any.
    pub correlation_id: Option<String>,
    /// When the evaluation happened.
    pub created_at: DateTime<Utc>,
}

/// A stored row as `GET /policy/audit/logs` returns it (`timestamp` = `createdAt`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAuditRow {
    /// Id (= decisionId).
    pub id: Uuid,
    /// `context.userId`.
    pub user_id: Option<String>,
    /// Action.
    pub action: String,
    /// Resource.
    pub resource: String,
    /// `allow`, `deny`, `error`.
    pub result: String,
    /// `context.metadata`.
    pub context: Value,
    /// Matching policy names.
    pub applied_policies: Value,
    /// Reason.
    pub reason: Option<String>,
    /// Caller-supplied IP.
    pub ip_address: Option<String>,
    /// Caller-supplied UA.
    pub user_agent: Option<String>,
    /// Trace id, when the caller sent one.
    pub correlation_id: Option<String>,
    /// When.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Alias of `createdAt` (the dashboard reads it).
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: DateTime<Utc>,
}

/// Filters of `GET /policy/audit/logs`.
#[derive(Debug, Clone, Default)]
pub struct PolicyAuditFilter {
    /// Exact user id.
    pub user_id: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// Exact result.
    pub result: Option<String>,
    /// From (inclusive).
    pub start: Option<DateTime<Utc>>,
    /// To (inclusive).
    pub end: Option<DateTime<Utc>>,
    /// Exact correlation (trace) id: every decision of one incident.
    pub correlation_id: Option<String>,
    /// At most this many, newest first.
    pub limit: i64,
}

fn clip(s: Option<String>, max_chars: usize) -> Option<String> {
    s.map(|s| clip_str(s, max_chars))
}

/// Cuts to `max_chars` characters and drops NULs, which PostgreSQL text cannot hold: a row
/// must never fail for its content, or it would block the batch it is in.
fn clip_str(s: String, max_chars: usize) -> String {
    if s.len() <= max_chars && !s.contains('\0') {
        return s;
    }
    s.chars().filter(|c| *c != '\0').take(max_chars).collect()
}

impl NewPolicyAudit {
    /// Fits every value into its column.
    #[must_use]
    pub fn sanitised(self) -> Self {
        Self {
            user_id: clip(self.user_id, 255),
            action: clip_str(self.action, 255),
            resource: clip_str(self.resource, usize::MAX),
            reason: clip_str(self.reason, usize::MAX),
            context: aegis_common::db::strip_nul_json(self.context),
            applied_policies: self
                .applied_policies
                .into_iter()
                .map(|s| clip_str(s, usize::MAX))
                .collect(),
            ip_address: clip(self.ip_address, 64),
            user_agent: clip(self.user_agent, usize::MAX),
            correlation_id: clip(self.correlation_id, 64),
            ..self
        }
    }
}

/// Inserts `rows` in one statement; rows already present (a retried batch) are skipped.
///
/// The rows travel as one array per column through `UNNEST`, so every batch size shares one
/// prepared statement. (A multi-row `VALUES` list is a different statement for each size, and
/// each connection's statement cache kept up to a hundred of them, with up to 6,000 parameters
/// each: the backend's RSS grew in steps through a soak.)
pub async fn insert_batch(db: &PgPool, rows: &[NewPolicyAudit]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&NewPolicyAudit) -> Option<&str>| -> Vec<Option<&str>> {
        rows.iter().map(f).collect()
    };
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    let resources: Vec<&str> = rows.iter().map(|r| r.resource.as_str()).collect();
    let results: Vec<&str> = rows.iter().map(|r| r.result).collect();
    let reasons: Vec<&str> = rows.iter().map(|r| r.reason.as_str()).collect();
    let contexts: Vec<Value> = rows.iter().map(|r| r.context.clone()).collect();
    let applied: Vec<Value> = rows
        .iter()
        .map(|r| Value::from(r.applied_policies.clone()))
        .collect();
    let created: Vec<DateTime<Utc>> = rows.iter().map(|r| r.created_at).collect();
    sqlx::query(
        "INSERT INTO policy_audit_logs (id, user_id, action, resource, result, reason, context, \
         applied_policies, ip_address, user_agent, correlation_id, created_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::jsonb[], $8::jsonb[], $9::text[], $10::text[], $11::text[], \
         $12::timestamptz[]) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(ids)
    .bind(column(|r| r.user_id.as_deref()))
    .bind(actions)
    .bind(resources)
    .bind(results)
    .bind(reasons)
    .bind(contexts)
    .bind(applied)
    .bind(column(|r| r.ip_address.as_deref()))
    .bind(column(|r| r.user_agent.as_deref()))
    .bind(column(|r| r.correlation_id.as_deref()))
    .bind(created)
    .execute(db)
    .await?;
    Ok(())
}

/// Rows matching `f`, newest first.
#[tracing::instrument(skip(db))]
pub async fn list(db: &PgPool, f: &PolicyAuditFilter) -> Result<Vec<PolicyAuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, user_id, action, resource, result, context, applied_policies, reason, \
         ip_address, user_agent, correlation_id, created_at, created_at AS timestamp \
         FROM policy_audit_logs \
         WHERE ($1::text IS NULL OR user_id = $1) \
           AND ($2::text IS NULL OR action = $2) \
           AND ($3::text IS NULL OR result = $3) \
           AND ($4::timestamptz IS NULL OR created_at >= $4) \
           AND ($5::timestamptz IS NULL OR created_at <= $5) \
           AND ($7::text IS NULL OR correlation_id = $7) \
         ORDER BY created_at DESC, id DESC LIMIT $6",
    )
    .bind(f.user_id.as_deref())
    .bind(f.action.as_deref())
    .bind(f.result.as_deref())
    .bind(f.start)
    .bind(f.end)
    .bind(f.limit)
    .bind(f.correlation_id.as_deref())
    .fetch_all(db)
    .await
}

/// One `GET /metrics/policy-evaluation-counts` entry.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationCount {
    /// User id or `anonymous`.
    pub user_id: String,
    /// Action.
    pub action: String,
    /// Evaluations, all time.
    pub count: i64,
}

/// Evaluations grouped by (user, action), most first.
#[tracing::instrument(skip(db))]
pub async fn counts(db: &PgPool) -> Result<Vec<EvaluationCount>, sqlx::Error> {
    sqlx::query_as(
        "SELECT COALESCE(user_id, 'anonymous') AS user_id, action, count(*) AS count \
         FROM policy_audit_logs GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
    )
    .fetch_all(db)
    .await
}
