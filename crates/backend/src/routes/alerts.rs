//! `/alerts` (backend.md §6.1) and the dashboard metrics API `/metrics/{current,historical}`
//! (§6.2). Every alert write is pushed as an `alert` event and invalidates `metrics:current`.

use std::collections::HashMap;

use axum::{
    Router,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, patch},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{
    auth::{AdminOrUser, Principal, RateLimit, RequireRole, Role, validate::Violations},
    db::alerts::{self, AlertChanges, AlertFilter, NewAlert, SEVERITIES, STATUSES},
    error::{ApiError, Json, UuidPath},
    state::AppState,
};

/// Redis key of the cached open-alert count (60 s).
const METRICS_CURRENT_KEY: &str = "metrics:current";

/// The alert and dashboard-metrics routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list).post(create))
        .route("/alerts/{id}", patch(update))
        .route("/metrics/current", get(current))
        .route("/metrics/historical", get(historical))
}

/// A comma-separated list whose items must all be in `allowed`.
fn list_param(
    raw: Option<&String>,
    name: &str,
    allowed: &[&str],
    errors: &mut Vec<String>,
) -> Option<Vec<String>> {
    let raw = raw?;
    let items: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if items.is_empty() {
        return None;
    }
    for item in &items {
        if !allowed.contains(&item.as_str()) {
            errors.push(format!(
                "{name} must be one of the following values: {}",
                allowed.join(", ")
            ));
            break;
        }
    }
    Some(items)
}

fn int_param(
    raw: Option<&String>,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
    errors: &mut Vec<String>,
) -> i64 {
    match raw {
        None => default,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if range.contains(&n) => n,
            _ => {
                errors.push(format!(
                    "{name} must be an integer between {} and {}",
                    range.start(),
                    range.end()
                ));
                default
            }
        },
    }
}

async fn list(
    State(state): State<AppState>,
    _: Principal,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let statuses = list_param(q.get("status"), "status", STATUSES, &mut errors);
    let severities = list_param(q.get("severity"), "severity", SEVERITIES, &mut errors);
    let limit = int_param(q.get("limit"), "limit", 1..=1000, 100, &mut errors);
    let page = int_param(q.get("page"), "page", 1..=1_000_000, 1, &mut errors);
    let offset = match q.get("offset") {
        Some(_) => int_param(q.get("offset"), "offset", 0..=100_000_000, 0, &mut errors),
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    severity: Option<String>,
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

/// Admins, users and service keys may write alerts; auditors may not.
fn require_writer(p: &Principal) -> Result<(), ApiError> {
    match p {
        Principal::Service(_) => Ok(()),
        Principal::User(u) => u.require_any(&[Role::Admin, Role::User]),
    }
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<CreateBody>,
) -> Result<Response, ApiError> {
    require_writer(&principal)?;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

async fn update(
    State(state): State<AppState>,
    _: RequireRole<AdminOrUser>,
    _: RateLimit,
    UuidPath(id): UuidPath,
    aegis_common::http::Json(body, _): Json<UpdateBody>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    if let Some(t) = &body.title {
        check_title(&mut v, t);
    }
    if let Some(s) = &body.severity {
        check_severity(&mut v, s);
    }
    if let Some(s) = &body.status {
        v.check(
            !STATUSES.contains(&s.as_str()),
            format!(
                "status must be one of the following values: {}",
                STATUSES.join(", ")
            ),
        );
    }
    v.finish()?;
    let changes = AlertChanges {
        title: body.title,
        description: body.description,
        severity: body.severity,
        status: body.status,
        metadata: body.metadata.map(Value::Object),
    };
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
    let Some(mut conn) = state.redis.connection().await else {
        return;
    };
    let mut cmd = redis::cmd("DEL");
    cmd.arg(state.redis.key(METRICS_CURRENT_KEY));
    let call = cmd.query_async::<i64>(&mut conn);
    match tokio::time::timeout(state.redis.timeout(), call).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "failed to invalidate metrics:current"),
        Err(_) => tracing::warn!("timed out invalidating metrics:current"),
    }
}

async fn cached_current(state: &AppState) -> Option<Value> {
    let mut conn = state.redis.connection().await?;
    let mut cmd = redis::cmd("GET");
    cmd.arg(state.redis.key(METRICS_CURRENT_KEY));
    let call = cmd.query_async::<Option<String>>(&mut conn);
    let raw = tokio::time::timeout(state.redis.timeout(), call)
        .await
        .ok()?
        .ok()??;
    serde_json::from_str(&raw).ok()
}

async fn store_current(state: &AppState, body: &Value) {
    let Some(mut conn) = state.redis.connection().await else {
        return;
    };
    let mut cmd = redis::cmd("SET");
    cmd.arg(state.redis.key(METRICS_CURRENT_KEY))
        .arg(body.to_string())
        .arg("EX")
        .arg(60);
    let call = cmd.query_async::<()>(&mut conn);
    if let Ok(Err(e)) = tokio::time::timeout(state.redis.timeout(), call).await {
        tracing::warn!(error = %e, "failed to cache metrics:current");
    }
}

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

async fn historical(
    State(state): State<AppState>,
    _: Principal,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let days = int_param(q.get("days"), "days", 1..=365, 7, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors.into()));
    }
    let days = i32::try_from(days).unwrap_or(7);
    Ok(axum::Json(alerts::daily_counts(&state.db, days).await?).into_response())
}
