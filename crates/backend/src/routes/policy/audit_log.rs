//! What the engine was asked: the evaluation audit log and the evaluation counts per user and
//! action.

use std::collections::HashMap;

use aegis_common::openapi::BackendErrorBody;
use axum::{
    extract::{Query, State},
    response::{IntoResponse, Response},
};

use crate::routes::query;
use crate::{
    auth::{AdminOrAuditor, AuthUser, RateLimit, RequireRole},
    db::policy_audit::{self, EvaluationCount, PolicyAuditFilter, PolicyAuditRow},
    error::ApiError,
    routes::docs::{Forbidden, RateLimited, ServerError, Unauthorized},
    state::AppState,
};

#[utoipa::path(get, path = "/policy/audit/logs", tag = "policy", operation_id = "policy_audit_logs", summary = "List policy decisions",
    description = "Recorded policy evaluations, newest first (admin, auditor).",
    security(("bearerAuth" = [])),
    params(
        ("userId" = Option<String>, Query, description = "Only evaluations for this user id"),
        ("action" = Option<String>, Query, description = "Only this action"),
        ("result" = Option<String>, Query, description = "`allow`, `deny` or `error`"),
        ("startDate" = Option<String>, Query, description = "From (RFC 3339 or YYYY-MM-DD)"),
        ("endDate" = Option<String>, Query, description = "Until (RFC 3339 or YYYY-MM-DD)"),
        ("correlationId" = Option<String>, Query, description = "Only evaluations of this correlation (trace) id: what one incident or request asked"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 100)"),
    ),
    responses(
        (status = 200, description = "The evaluations", body = Vec<PolicyAuditRow>),
        (status = 400, description = "Invalid filter (one message per invalid parameter)", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
pub(super) async fn audit_logs(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let limit = match q.get("limit") {
        None => 100,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                errors.push("limit must be an integer between 1 and 1000".to_owned());
                100
            }
        },
    };
    let result = q.get("result").cloned();
    if let Some(r) = &result
        && !["allow", "deny", "error"].contains(&r.as_str())
    {
        errors.push("result must be one of: allow, deny, error".to_owned());
    }
    let text = |k: &str| q.get(k).cloned().map(aegis_common::db::strip_nul);
    let filter = PolicyAuditFilter {
        user_id: text("userId"),
        action: text("action"),
        result,
        start: query::date(q.get("startDate"), "startDate", &mut errors),
        end: query::date(q.get("endDate"), "endDate", &mut errors),
        correlation_id: text("correlationId"),
        limit,
    };
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors.into()));
    }
    Ok(axum::Json(policy_audit::list(&state.db, &filter).await?).into_response())
}

#[utoipa::path(get, path = "/metrics/policy-evaluation-counts", tag = "policy", operation_id = "policy_evaluation_counts", summary = "Policy decisions counted by outcome",
    description = "Evaluations per user and action.",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The counts", body = Vec<EvaluationCount>),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
pub(super) async fn evaluation_counts(
    State(state): State<AppState>,
    _: AuthUser,
    _: RateLimit,
) -> Result<Response, ApiError> {
    Ok(axum::Json(policy_audit::counts(&state.db).await?).into_response())
}
