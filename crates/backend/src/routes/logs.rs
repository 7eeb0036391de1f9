//! `GET /logs` (admin, auditor) and `POST /logs` (API key or admin).

use std::collections::HashMap;

use aegis_common::openapi::BackendErrorBody;
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::docs::{Forbidden, RateLimited, ServerError, Unauthorized};
use super::query;
use crate::{
    auth::{Admin, AdminOrAuditor, RateLimit, RequireRole, ServiceOrRole, validate::Violations},
    db::logs::{self, LEVELS, LogFilter, LogRow, NewLog},
    error::{ApiError, Json},
    state::AppState,
};

/// Most entries one `POST /logs` may carry.
const MAX_BATCH: usize = 500;

/// The logs routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, ingest))
}

/// `GET /logs`: one page.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    /// Entries matching the filter.
    pub total: i64,
    /// This page, from 1.
    pub page: i64,
    /// Page size.
    pub limit: i64,
    /// The entries, newest first.
    pub logs: Vec<LogRow>,
}

/// `POST /logs` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogsAccepted {
    /// How many entries were stored.
    pub accepted: u64,
}

/// RFC 3339, or a zone-less `datetime-local` value read as UTC.
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%dT%H:%M",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
            .map(|n| n.and_utc())
        })
}

#[utoipa::path(get, path = "/logs", tag = "logs", operation_id = "list_logs", summary = "Search ingested logs",
    description = "Stored log entries, newest first (admin, auditor).",
    security(("bearerAuth" = [])),
    params(
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "Page, from 1 (default 1)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "Page size (default 50)"),
        ("level" = Option<String>, Query, description = "Comma-separated levels: debug, info, warn, error, fatal"),
        ("service" = Option<String>, Query, description = "Comma-separated services"),
        ("from" = Option<String>, Query, description = "From (RFC 3339, or a zone-less date-time read as UTC)"),
        ("to" = Option<String>, Query, description = "Until (RFC 3339, or a zone-less date-time read as UTC)"),
        ("search" = Option<String>, Query, description = "Text the message contains"),
    ),
    responses(
        (status = 200, description = "One page", body = LogPage),
        (status = 400, description = "Invalid filter (one message per invalid parameter)", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn list(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let page = query::int(q.get("page"), "page", 1..=1_000_000, 1, &mut errors);
    let limit = query::int(q.get("limit"), "limit", 1..=500, 50, &mut errors);
    let levels = query::list(q.get("level"));
    if levels
        .iter()
        .flatten()
        .any(|l| !LEVELS.contains(&l.as_str()))
    {
        errors.push(format!(
            "level must be a comma-separated list of: {}",
            LEVELS.join(", ")
        ));
    }
    let mut time = |name: &str| {
        let raw = q.get(name).filter(|v| !v.is_empty())?;
        let t = parse_time(raw);
        if t.is_none() {
            errors.push(format!("{name} must be a valid ISO 8601 date string"));
        }
        t
    };
    let from = time("from");
    let to = time("to");
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors.into()));
    }
    let filter = LogFilter {
        levels,
        services: query::list(q.get("service")),
        from,
        to,
        search: q.get("search").filter(|s| !s.is_empty()).cloned(),
        limit,
        offset: (page - 1) * limit,
    };
    let (total, rows) = logs::page(&state.db, &filter).await?;
    let page = LogPage {
        total,
        page,
        limit,
        logs: rows,
    };
    Ok(axum::Json(page).into_response())
}

/// One log entry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LogEntry {
    /// RFC 3339; now when absent.
    #[serde(default)]
    timestamp: Option<String>,
    /// `debug`, `info`, `warn`, `error` or `fatal`.
    level: String,
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    service: String,
    /// The message.
    message: String,
    /// Free-form object.
    #[serde(default)]
    context: Option<Map<String, Value>>,
    /// At most 64 characters.
    #[serde(default)]
    #[schema(max_length = 64)]
    trace_id: Option<String>,
}

/// `POST /logs` body: one entry, or 1 to 500 of them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
enum LogBatch {
    /// 1 to 500 entries.
    Many(Vec<LogEntry>),
    /// One entry.
    One(Box<LogEntry>),
}

#[utoipa::path(post, path = "/logs", tag = "logs", operation_id = "ingest_logs", summary = "Ingest log lines",
    description = "Stores log entries (service key, or an admin).",
    request_body = LogBatch,
    responses(
        (status = 202, description = "Stored", body = LogsAccepted),
        (status = 400, description = "Not an entry or a list of them, empty, too many, or invalid fields", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn ingest(
    State(state): State<AppState>,
    _: ServiceOrRole<Admin>,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<Value>,
) -> Result<Response, ApiError> {
    let batch: LogBatch = serde_json::from_value(body).map_err(|e| {
        ApiError::BadRequest(format!("body must be a log entry or an array of them: {e}").into())
    })?;
    let entries = match batch {
        LogBatch::Many(v) => v,
        LogBatch::One(e) => vec![*e],
    };
    let mut v = Violations::new();
    v.check(entries.is_empty(), "at least one log entry is required");
    v.check(
        entries.len() > MAX_BATCH,
        format!("at most {MAX_BATCH} log entries per request"),
    );
    let mut rows = Vec::with_capacity(entries.len());
    for (i, e) in entries.into_iter().enumerate() {
        let timestamp = match e.timestamp.as_deref() {
            None => Some(Utc::now()),
            Some(raw) => DateTime::parse_from_rfc3339(raw)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
        };
        v.check(
            timestamp.is_none(),
            format!("{i}.timestamp must be a valid ISO 8601 date string"),
        );
        v.check(
            !LEVELS.contains(&e.level.as_str()),
            format!("{i}.level must be one of: {}", LEVELS.join(", ")),
        );
        let n = e.service.chars().count();
        v.check(
            n == 0 || n > 100,
            format!("{i}.service must be 1 to 100 characters"),
        );
        v.check(
            e.trace_id.as_ref().is_some_and(|t| t.len() > 64),
            format!("{i}.traceId must be at most 64 characters"),
        );
        rows.push(NewLog {
            timestamp: timestamp.unwrap_or_else(Utc::now),
            level: e.level,
            service: e.service,
            message: e.message,
            context: Value::Object(e.context.unwrap_or_default()),
            trace_id: e.trace_id,
        });
    }
    v.finish()?;
    let n = logs::insert_many(&state.db, &rows).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(LogsAccepted { accepted: n }),
    )
        .into_response())
}
