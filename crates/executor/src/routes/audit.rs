//! The audit API (executor.md §7.5, §7.7 and spec/README.md "Audit API auth"):
//! `/audit/logs`, `/audit/statistics`, `/audit/verify`, behind `Authorization: Bearer
//! <AUDIT_API_TOKEN>` (constant-time). Signatures are never returned.

use std::collections::HashMap;

use aegis_common::{contracts::ActionType, signing::secrets_equal};
use axum::{
    Json, Router,
    extract::{Query, State},
    http::HeaderMap,
    routing::get,
};
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use sqlx::{Postgres, QueryBuilder, Row};

use crate::{audit::chain, config::AuditAuth, error::ApiError, state::AppState};

const STATUSES: [&str; 5] = ["pending", "in_progress", "completed", "failed", "rejected"];

/// The audit routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit/logs", get(logs))
        .route("/audit/statistics", get(statistics))
        .route("/audit/verify", get(verify))
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

fn iso(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |t| {
        json!(t.to_rfc3339_opts(SecondsFormat::Millis, true))
    })
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

async fn logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Value>>, ApiError> {
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
    if let Some(ns) = q.get("namespace") {
        qb.push(" AND namespace = ").push_bind(ns);
    }
    // Everything one incident did (the backend's correlation id, spec README contract 5).
    if let Some(c) = q.get("correlationId") {
        qb.push(" AND correlation_id = ").push_bind(c);
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
        let mut m = Map::new();
        m.insert("id".into(), json!(r.try_get::<uuid::Uuid, _>("id")?));
        m.insert(
            "actionType".into(),
            json!(r.try_get::<String, _>("action_type")?),
        );
        m.insert("status".into(), json!(r.try_get::<String, _>("status")?));
        m.insert(
            "namespace".into(),
            json!(r.try_get::<String, _>("namespace")?),
        );
        m.insert(
            "resourceType".into(),
            json!(r.try_get::<String, _>("resource_type")?),
        );
        m.insert(
            "resourceName".into(),
            json!(r.try_get::<String, _>("resource_name")?),
        );
        m.insert(
            "actionParams".into(),
            r.try_get::<Value, _>("action_params")?,
        );
        m.insert(
            "requestedBy".into(),
            json!(r.try_get::<Option<String>, _>("requested_by")?),
        );
        m.insert(
            "policyDecision".into(),
            r.try_get::<Option<Value>, _>("policy_decision")?
                .unwrap_or(Value::Null),
        );
        m.insert(
            "executionDuration".into(),
            json!(r.try_get::<Option<i32>, _>("execution_duration")?),
        );
        m.insert(
            "errorMessage".into(),
            json!(r.try_get::<Option<String>, _>("error_message")?),
        );
        m.insert(
            "result".into(),
            r.try_get::<Option<Value>, _>("result")?
                .unwrap_or(Value::Null),
        );
        m.insert(
            "ipAddress".into(),
            json!(r.try_get::<Option<String>, _>("ip_address")?),
        );
        let signed: bool = r.try_get("signed")?;
        m.insert(
            "signature".into(),
            if signed {
                json!("[REDACTED]")
            } else {
                Value::Null
            },
        );
        m.insert(
            "createdAt".into(),
            iso(Some(r.try_get::<DateTime<Utc>, _>("created_at")?)),
        );
        m.insert(
            "completedAt".into(),
            iso(r.try_get::<Option<DateTime<Utc>>, _>("completed_at")?),
        );
        m.insert(
            "correlationId".into(),
            json!(r.try_get::<Option<String>, _>("correlation_id")?),
        );
        // The row's place in the hash chain (null until it reaches a final status).
        m.insert(
            "chainSeq".into(),
            json!(r.try_get::<Option<i64>, _>("chain_seq")?),
        );
        m.insert(
            "hash".into(),
            json!(r.try_get::<Option<String>, _>("hash")?),
        );
        out.push(Value::Object(m));
    }
    Ok(Json(out))
}

async fn statistics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
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
    let by_type: Map<String, Value> = by_type.into_iter().map(|(k, v)| (k, json!(v))).collect();
    Ok(Json(json!({
        "total": total,
        "completed": completed,
        "failed": failed,
        "byType": by_type,
        "rejected": rejected,
        "pending": pending,
        "inProgress": in_progress,
    })))
}

async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<chain::VerifyReport>, ApiError> {
    authorize(&state, &headers)?;
    Ok(Json(chain::verify(&state.db).await?))
}
