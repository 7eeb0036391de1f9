//! `/alerts` and the dashboard metrics API `/metrics/{current,historical}`. Every alert write is pushed as an `alert` event and invalidates `metrics:current`.

use std::collections::HashMap;

use aegis_common::openapi::BackendErrorBody;
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::docs::{Forbidden, RateLimited, ServerError, Unauthorized};
use aegis_common::redis_conn::RedisUnavailable;

use super::query;
use crate::{
    auth::{AdminOrUser, Principal, RateLimit, RequireRole, ServiceOrRole, validate::Violations},
    db::alerts::{
        self, Alert, AlertChanges, AlertFilter, DailyCount, NewAlert, SEVERITIES, STATUSES,
    },
    error::{ApiError, Json, UuidPath},
    state::AppState,
};

/// Redis key of the cached open-alert count (60 s).
const METRICS_CURRENT_KEY: &str = "metrics:current";

/// The alert and dashboard-metrics routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update))
        .routes(routes!(current))
        .routes(routes!(historical))
}

/// `GET /metrics/current`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentMetrics {
    /// Alerts not resolved.
    pub open_alerts: i64,
    /// When counted (RFC 3339; cached for up to 60 s).
    #[schema(format = DateTime)]
    pub timestamp: String,
}

#[utoipa::path(get, path = "/alerts", tag = "alerts", operation_id = "list_alerts", summary = "List alerts",
    description = "Alerts, newest first (any signed-in user or service key).",
    params(
        ("status" = Option<String>, Query, description = "Comma-separated statuses: open, acknowledged, resolved"),
        ("severity" = Option<String>, Query, description = "Comma-separated severities: low, medium, high, critical"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "Page, from 1 (default 1)"),
        ("offset" = Option<i64>, Query, minimum = 0, maximum = 100000000, description = "Rows to skip; overrides `page`"),
    ),
    responses(
        (status = 200, description = "The alerts", body = Vec<Alert>),
        (status = 400, description = "Invalid filter (one message per invalid parameter)", body = BackendErrorBody),
        Unauthorized, RateLimited, ServerError,
    ))]
async fn list(
    State(state): State<AppState>,
    _: Principal,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let statuses = query::list_of(q.get("status"), "status", STATUSES, &mut errors);
    let severities = query::list_of(q.get("severity"), "severity", SEVERITIES, &mut errors);
    let limit = query::int(q.get("limit"), "limit", 1..=1000, 100, &mut errors);
    let page = query::int(q.get("page"), "page", 1..=1_000_000, 1, &mut errors);
    let offset = match q.get("offset") {
        Some(_) => query::int(q.get("offset"), "offset", 0..=100_000_000, 0, &mut errors),
        None => (page - 1) * limit,
    };
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors.into()));
    }
    let filter = AlertFilter {
        statuses,
        severities,
        limit,
        offset,
    };
    Ok(axum::Json(alerts::list(&state.db, &filter).await?).into_response())
}

/// `POST /alerts` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateAlertBody {
    /// 1 to 255 characters.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 1, max_length = 255)]
    title: Option<String>,
    /// Free text.
    #[serde(default)]
    description: Option<String>,
    /// `low`, `medium`, `high` or `critical`.
    #[serde(default)]
    #[schema(required = true, nullable = false)]
    severity: Option<String>,
    /// Free-form object.
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

fn check_title(v: &mut Violations, title: &str) {
    let n = title.chars().count();
    v.check(n == 0, "title should not be empty");
    v.check(
        n > 255,
        "title must be shorter than or equal to 255 characters",
    );
}

fn check_severity(v: &mut Violations, severity: &str) {
    v.check(
        !SEVERITIES.contains(&severity),
        format!(
            "severity must be one of the following values: {}",
            SEVERITIES.join(", ")
        ),
    );
}

#[utoipa::path(post, path = "/alerts", tag = "alerts", operation_id = "create_alert", summary = "Raise an alert",
    description = "Creates an open alert and pushes it to live clients (admin, user or service key; auditors may not).",
    request_body = CreateAlertBody,
    responses(
        (status = 201, description = "Created", body = Alert),
        (status = 400, description = "Invalid title or severity", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn create(
    State(state): State<AppState>,
    // Admins, users and service keys may write alerts; auditors may not.
    _: ServiceOrRole<AdminOrUser>,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<CreateAlertBody>,
) -> Result<Response, ApiError> {
    let body = body.storable();
    let mut v = Violations::new();
    match &body.title {
        Some(t) => check_title(&mut v, t),
        None => v.check(true, "title must be a string"),
    }
    match &body.severity {
        Some(s) => check_severity(&mut v, s),
        None => check_severity(&mut v, ""),
    }
    v.finish()?;
    let new = NewAlert {
        title: body.title.as_deref().unwrap_or_default(),
        description: body.description.as_deref(),
        severity: body.severity.as_deref().unwrap_or_default(),
        metadata: Value::Object(body.metadata.unwrap_or_default()),
    };
    let alert = alerts::insert(&state.db, &new).await?;
    after_write(&state, &alert).await;
    Ok((StatusCode::CREATED, axum::Json(alert)).into_response())
}

impl CreateAlertBody {
    /// U+0000 removed from every string (PostgreSQL's `text` and `jsonb` refuse it), before
    /// validation, so the lengths checked are the lengths stored.
    fn storable(self) -> Self {
        use aegis_common::db::{strip_nul, strip_nul_json};
        Self {
            title: self.title.map(strip_nul),
            description: self.description.map(strip_nul),
            severity: self.severity.map(strip_nul),
            metadata: self
                .metadata
                .map(|m| match strip_nul_json(Value::Object(m)) {
                    Value::Object(m) => m,
                    _ => serde_json::Map::new(),
                }),
        }
    }
}

/// `PATCH /alerts/{id}` body: the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateAlertBody {
    /// 1 to 255 characters.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    title: Option<String>,
    /// Free text.
    #[serde(default)]
    description: Option<String>,
    /// `low`, `medium`, `high` or `critical`.
    #[serde(default)]
    severity: Option<String>,
    /// `open`, `acknowledged` or `resolved`.
    #[serde(default)]
    status: Option<String>,
    /// Free-form object (replaces the stored one).
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

#[utoipa::path(patch, path = "/alerts/{id}", tag = "alerts", operation_id = "update_alert", summary = "Acknowledge or resolve an alert",
    description = "Updates an alert (admin, user) and pushes it to live clients.",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The alert's id (a UUID)")),
    request_body = UpdateAlertBody,
    responses(
        (status = 200, description = "The updated alert", body = Alert),
        (status = 400, description = "The id is not a UUID, or an invalid field", body = BackendErrorBody),
        (status = 404, description = "Alert not found", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn update(
    State(state): State<AppState>,
    _: RequireRole<AdminOrUser>,
    _: RateLimit,
    UuidPath(id): UuidPath,
    aegis_common::http::Json(body, _): Json<UpdateAlertBody>,
) -> Result<Response, ApiError> {
    // NUL removed first, so the lengths checked are the lengths stored.
    let changes = AlertChanges {
        title: body.title,
        description: body.description,
        severity: body.severity,
        status: body.status,
        metadata: body.metadata.map(Value::Object),
    }
    .storable();
    let mut v = Violations::new();
    if let Some(t) = &changes.title {
        check_title(&mut v, t);
    }
    if let Some(s) = &changes.severity {
        check_severity(&mut v, s);
    }
    if let Some(s) = &changes.status {
        v.check(
            !STATUSES.contains(&s.as_str()),
            format!(
                "status must be one of the following values: {}",
                STATUSES.join(", ")
            ),
        );
    }
    v.finish()?;
    let alert = alerts::update(&state.db, id, &changes)
        .await?
        .ok_or_else(|| ApiError::NotFound("Alert not found".into()))?;
    after_write(&state, &alert).await;
    Ok(axum::Json(alert).into_response())
}

/// Push the alert, drop the cached count, push the fresh count.
async fn after_write(state: &AppState, alert: &alerts::Alert) {
    state.realtime.emit_alert(alert);
    invalidate_current(state).await;
    match alerts::count_open(&state.db).await {
        Ok(n) => state.realtime.emit_metrics_update(n),
        Err(e) => tracing::warn!(error = %e, "failed to count open alerts for metrics:update"),
    }
}

async fn invalidate_current(state: &AppState) {
    let mut cmd = redis::cmd("DEL");
    cmd.arg(state.redis.key(METRICS_CURRENT_KEY));
    let cmd = &cmd;
    let call = state
        .redis
        .run(|mut conn| async move { cmd.query_async::<i64>(&mut conn).await })
        .await;
    if let Err(e @ (RedisUnavailable::TimedOut | RedisUnavailable::Failed(_))) = call {
        tracing::warn!(error = %e, "failed to invalidate metrics:current");
    }
}

async fn cached_current(state: &AppState) -> Option<Value> {
    let mut cmd = redis::cmd("GET");
    cmd.arg(state.redis.key(METRICS_CURRENT_KEY));
    let cmd = &cmd;
    let raw = state
        .redis
        .run(|mut conn| async move { cmd.query_async::<Option<String>>(&mut conn).await })
        .await
        .ok()??;
    serde_json::from_str(&raw).ok()
}

async fn store_current(state: &AppState, body: &Value) {
    let mut cmd = redis::cmd("SET");
    cmd.arg(state.redis.key(METRICS_CURRENT_KEY))
        .arg(body.to_string())
        .arg("EX")
        .arg(60);
    let cmd = &cmd;
    let call = state
        .redis
        .run(|mut conn| async move { cmd.query_async::<()>(&mut conn).await })
        .await;
    if let Err(e @ (RedisUnavailable::TimedOut | RedisUnavailable::Failed(_))) = call {
        tracing::warn!(error = %e, "failed to cache metrics:current");
    }
}

#[utoipa::path(get, path = "/metrics/current", tag = "alerts", operation_id = "current_metrics", summary = "Current cluster metrics",
    description = "The number of open alerts (cached in Redis for 60 s).",
    responses(
        (status = 200, description = "The count", body = CurrentMetrics),
        Unauthorized, RateLimited, ServerError,
    ))]
async fn current(
    State(state): State<AppState>,
    _: Principal,
    _: RateLimit,
) -> Result<Response, ApiError> {
    if let Some(body) = cached_current(&state).await {
        return Ok(axum::Json(body).into_response());
    }
    let open = alerts::count_open(&state.db).await?;
    let body = json!({"openAlerts": open, "timestamp": aegis_common::time::now_rfc3339()});
    store_current(&state, &body).await;
    Ok(axum::Json(body).into_response())
}

#[utoipa::path(get, path = "/metrics/historical", tag = "alerts", operation_id = "historical_metrics", summary = "Historical cluster metrics",
    description = "Alerts created per day and severity.",
    params(("days" = Option<i64>, Query, minimum = 1, maximum = 365, description = "How many days back (default 7)")),
    responses(
        (status = 200, description = "Counts per day and severity", body = Vec<DailyCount>),
        (status = 400, description = "Invalid `days`", body = BackendErrorBody),
        Unauthorized, RateLimited, ServerError,
    ))]
async fn historical(
    State(state): State<AppState>,
    _: Principal,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let days = query::int(q.get("days"), "days", 1..=365, 7, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors.into()));
    }
    let days = i32::try_from(days).unwrap_or(7);
    Ok(axum::Json(alerts::daily_counts(&state.db, days).await?).into_response())
}
