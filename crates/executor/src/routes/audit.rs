//! The audit API:
//! `/audit/logs`, `/audit/statistics`, `/audit/verify`, behind `Authorization: Bearer
//! <AUDIT_API_TOKEN>` (constant-time). Signatures are never returned.

use std::collections::HashMap;

use aegis_common::{contracts::ActionType, openapi::NestErrorBody, signing::secrets_equal};
use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
};
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder, Row};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{audit::chain, config::AuditAuth, error::ApiError, state::AppState};

const STATUSES: [&str; 5] = ["pending", "in_progress", "completed", "failed", "rejected"];

/// The audit routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logs))
        .routes(routes!(statistics))
        .routes(routes!(verify))
}

/// An audit row's lifecycle state.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditStatus {
    /// Recorded, not started.
    Pending,
    /// Running.
    InProgress,
    /// Succeeded.
    Completed,
    /// Ran and failed.
    Failed,
    /// Refused before running.
    Rejected,
}

/// One audit row; a signature is never returned.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditLogEntry {
    /// Row id.
    id: uuid::Uuid,
    /// The action.
    #[schema(value_type = ActionType)]
    action_type: String,
    /// Lifecycle state.
    #[schema(value_type = AuditStatus)]
    status: String,
    /// Namespace as requested (`undefined` when missing).
    namespace: String,
    /// `pod`, `deployment` or `unknown`.
    resource_type: String,
    /// The target's name (`unknown` when missing).
    resource_name: String,
    /// Parameters as sent.
    #[schema(value_type = Object)]
    action_params: Value,
    /// Who asked.
    requested_by: Option<String>,
    /// The advisory policy decision as sent.
    #[schema(value_type = Option<Object>)]
    policy_decision: Value,
    /// Milliseconds from entry to the terminal update.
    execution_duration: Option<i32>,
    /// Why it failed or was rejected.
    error_message: Option<String>,
    /// The action's result.
    #[schema(value_type = Option<Object>)]
    result: Value,
    /// Client IP.
    ip_address: Option<String>,
    /// `[REDACTED]` when the request was signed.
    signature: Option<String>,
    /// When the row was written (RFC 3339).
    #[schema(format = DateTime)]
    created_at: String,
    /// When the row became final.
    #[schema(format = DateTime)]
    completed_at: Option<String>,
    /// The request's trace id.
    correlation_id: Option<String>,
    /// The row's place in the hash chain (null until it reaches a final status).
    chain_seq: Option<i64>,
    /// The row's chain hash (null until it reaches a final status).
    hash: Option<String>,
}

/// `GET /audit/statistics`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditStatistics {
    /// Every row.
    total: i64,
    /// `completed` rows.
    completed: i64,
    /// `failed` rows.
    failed: i64,
    /// Rows per action type.
    by_type: std::collections::BTreeMap<String, i64>,
    /// `rejected` rows.
    rejected: i64,
    /// `pending` rows.
    pending: i64,
    /// `in_progress` rows.
    in_progress: i64,
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.config.audit_auth == AuditAuth::None {
        return Ok(());
    }
    let Some(expected) = &state.config.audit_api_token else {
        return Err(ApiError::Unauthorized);
    };
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    if !presented.is_empty()
        && secrets_equal(presented.as_bytes(), expected.expose_secret().as_bytes())
    {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_date(name: &str, v: &str, errors: &mut Vec<String>) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    errors.push(format!("{name} must be a valid ISO 8601 date string"));
    None
}

#[utoipa::path(
    get,
    path = "/audit/logs",
    tag = "audit",
    operation_id = "audit_logs", summary = "List the audit trail",
    description = "Audit rows, newest first. Signatures are never returned.",
    params(
        ("actionType" = Option<ActionType>, Query, description = "Only this action"),
        ("status" = Option<AuditStatus>, Query, description = "Only this state"),
        ("namespace" = Option<String>, Query, description = "Only this namespace"),
        ("correlationId" = Option<String>, Query, description = "Only this correlation (trace) id: everything one incident did"),
        ("startDate" = Option<String>, Query, description = "From (RFC 3339 or YYYY-MM-DD)"),
        ("endDate" = Option<String>, Query, description = "Until (RFC 3339 or YYYY-MM-DD)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "At most this many rows (default 100)"),
    ),
    responses(
        (status = 200, description = "The rows", body = Vec<AuditLogEntry>),
        (status = 400, description = "Invalid filter", body = NestErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = NestErrorBody),
        (status = 500, description = "Database failure", body = NestErrorBody),
    )
)]
async fn logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<AuditLogEntry>>, ApiError> {
    authorize(&state, &headers)?;
    let mut errors = Vec::new();
    let action_type = q.get("actionType").map(String::as_str);
    if let Some(a) = action_type
        && ActionType::parse(a).is_none()
    {
        errors.push("actionType must be one of the following values: restart_pod, scale_deployment, rollback_deployment, delete_pod, update_config".to_owned());
    }
    let status = q.get("status").map(String::as_str);
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        errors.push(
            "status must be one of the following values: pending, in_progress, completed, failed, rejected"
                .to_owned(),
        );
    }
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                errors.push("limit must be an integer between 1 and 1000".to_owned());
                100
            }
        },
    };
    let start = q
        .get("startDate")
        .and_then(|v| parse_date("startDate", v, &mut errors));
    let end = q
        .get("endDate")
        .and_then(|v| parse_date("endDate", v, &mut errors));
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors.into()));
    }
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT id, action_type, status, namespace, resource_type, resource_name, action_params,
                requested_by, policy_decision, execution_duration, error_message, result,
                ip_address::text AS ip_address, signature IS NOT NULL AS signed, created_at,
                completed_at, correlation_id, chain_seq, hash
           FROM action_audit_logs WHERE true",
    );
    if let Some(a) = action_type {
        qb.push(" AND action_type = ").push_bind(a);
    }
    if let Some(s) = status {
        qb.push(" AND status = ").push_bind(s);
    }
    // Filters are free text: PostgreSQL refuses U+0000 in a text parameter.
    if let Some(ns) = q.get("namespace") {
        qb.push(" AND namespace = ")
            .push_bind(aegis_common::db::strip_nul(ns.clone()));
    }
    // Everything one incident did (the backend's correlation id).
    if let Some(c) = q.get("correlationId") {
        qb.push(" AND correlation_id = ")
            .push_bind(aegis_common::db::strip_nul(c.clone()));
    }
    if let Some(t) = start {
        qb.push(" AND created_at >= ").push_bind(t);
    }
    if let Some(t) = end {
        qb.push(" AND created_at <= ").push_bind(t);
    }
    qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(limit);
    let rows = qb.build().fetch_all(&state.db).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let signed: bool = r.try_get("signed")?;
        out.push(AuditLogEntry {
            id: r.try_get("id")?,
            action_type: r.try_get("action_type")?,
            status: r.try_get("status")?,
            namespace: r.try_get("namespace")?,
            resource_type: r.try_get("resource_type")?,
            resource_name: r.try_get("resource_name")?,
            action_params: r.try_get("action_params")?,
            requested_by: r.try_get("requested_by")?,
            policy_decision: r
                .try_get::<Option<Value>, _>("policy_decision")?
                .unwrap_or(Value::Null),
            execution_duration: r.try_get("execution_duration")?,
            error_message: r.try_get("error_message")?,
            result: r
                .try_get::<Option<Value>, _>("result")?
                .unwrap_or(Value::Null),
            ip_address: r.try_get("ip_address")?,
            signature: signed.then(|| "[REDACTED]".to_owned()),
            created_at: iso(r.try_get("created_at")?),
            completed_at: r
                .try_get::<Option<DateTime<Utc>>, _>("completed_at")?
                .map(iso),
            correlation_id: r.try_get("correlation_id")?,
            chain_seq: r.try_get("chain_seq")?,
            hash: r.try_get("hash")?,
        });
    }
    Ok(Json(out))
}

#[utoipa::path(
    get,
    path = "/audit/statistics",
    tag = "audit",
    operation_id = "audit_statistics", summary = "Audit statistics",
    responses(
        (status = 200, description = "Counters", body = AuditStatistics),
        (status = 401, description = "Missing or wrong bearer token", body = NestErrorBody),
        (status = 500, description = "Database failure", body = NestErrorBody),
    )
)]
async fn statistics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<AuditStatistics>, ApiError> {
    authorize(&state, &headers)?;
    let (total, completed, failed, rejected, pending, in_progress): (i64, i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT count(*),
                    count(*) FILTER (WHERE status = 'completed'),
                    count(*) FILTER (WHERE status = 'failed'),
                    count(*) FILTER (WHERE status = 'rejected'),
                    count(*) FILTER (WHERE status = 'pending'),
                    count(*) FILTER (WHERE status = 'in_progress')
               FROM action_audit_logs",
        )
        .fetch_one(&state.db)
        .await?;
    let by_type: Vec<(String, i64)> = sqlx::query_as(
        "SELECT action_type, count(*) FROM action_audit_logs GROUP BY action_type ORDER BY action_type",
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(AuditStatistics {
        total,
        completed,
        failed,
        by_type: by_type.into_iter().collect(),
        rejected,
        pending,
        in_progress,
    }))
}

#[utoipa::path(
    get,
    path = "/audit/verify",
    tag = "audit",
    operation_id = "audit_verify", summary = "Verify the audit hash chain",
    description = "Walks the hash chain from the newest retention anchor.",
    responses(
        (status = 200, description = "The verification report", body = chain::VerifyReport),
        (status = 401, description = "Missing or wrong bearer token", body = NestErrorBody),
        (status = 500, description = "Database failure", body = NestErrorBody),
    )
)]
async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<chain::VerifyReport>, ApiError> {
    authorize(&state, &headers)?;
    Ok(Json(chain::verify(&state.db).await?))
}
