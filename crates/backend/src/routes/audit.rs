//! `GET /audit/events` (admin, auditor): the audit trail, newest first.

use std::collections::HashMap;

use aegis_common::openapi::BackendErrorBody;
use axum::{
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::docs::{Forbidden, RateLimited, ServerError, Unauthorized};
use super::query;
use crate::{
    auth::{AdminOrAuditor, RateLimit, RequireRole},
    db::audit::{self, AuditEventRow, AuditFilter},
    error::ApiError,
    state::AppState,
};

/// The audit routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[utoipa::path(get, path = "/audit/events", tag = "audit", operation_id = "list_audit_events", summary = "List the backend's audit events",
    description = "The audit trail, newest first (admin, auditor). Unknown query parameters are ignored.",
    security(("bearerAuth" = [])),
    params(
        ("eventType" = Option<String>, Query, description = "Only this event type, e.g. `auth_login_success`"),
        ("userId" = Option<String>, Query, description = "Only events of this user (a UUID)"),
        ("startDate" = Option<String>, Query, description = "From (RFC 3339 or YYYY-MM-DD)"),
        ("endDate" = Option<String>, Query, description = "Until (RFC 3339 or YYYY-MM-DD)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 100)"),
    ),
    responses(
        (status = 200, description = "The events", body = Vec<AuditEventRow>),
        (status = 400, description = "Invalid filter (one message per invalid parameter)", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn list(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    // Unknown query parameters (e.g. the dashboard's `_t`) are ignored.
    let mut errors = Vec::new();
    let user_id = q.get("userId").and_then(|v| {
        let id = uuid::Uuid::parse_str(v).ok();
        if id.is_none() {
            errors.push("userId must be a UUID".to_owned());
        }
        id
    });
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
    let filter = AuditFilter {
        event_type: q.get("eventType").cloned(),
        user_id,
        start: query::date(q.get("startDate"), "startDate", &mut errors),
        end: query::date(q.get("endDate"), "endDate", &mut errors),
        limit,
    };
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors.into()));
    }
    Ok(axum::Json(audit::list(&state.db, &filter).await?).into_response())
}
