//! Health:
//! * `/health` checks the DB, Redis and the ai-engine and answers 503 when any is down;
//! * `/health/ready` checks only the DB and migrations (Redis is fail-open);
//! * `/health/ping` is liveness and depends on nothing;
//! * `/prometheus` is the original's alias of `/metrics`.

use std::time::Duration;

use std::collections::BTreeMap;

use aegis_common::{
    db::migrations_applied,
    health::{self, Ping},
};
use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{db::MIGRATOR, state::AppState};

const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Routes under the API prefix.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health_check))
        .routes(routes!(ping))
        .routes(routes!(ready))
        .routes(routes!(prometheus))
}

/// The same probes at the root, with their own operation ids.
pub fn root_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(root_health))
        .routes(routes!(root_ping))
        .routes(routes!(root_ready))
}

/// `up` or `down`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ComponentState {
    /// Reachable.
    Up,
    /// Not reachable.
    Down,
}

/// One checked dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentStatus {
    /// Up or down.
    pub status: ComponentState,
    /// Why it is down (only when down).
    #[schema(nullable = false)]
    pub message: Option<String>,
}

/// `ok` or `error`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OverallHealth {
    /// Every check is up.
    Ok,
    /// At least one is down.
    Error,
}

/// `GET /health`: the checked dependencies (`database`, `redis`, and `aiEngine` when
/// `HEALTH_CHECK_AI_ENGINE` is on), split into the ones up (`info`) and down (`error`).
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    /// Overall status.
    pub status: OverallHealth,
    /// The checks that are up.
    pub info: BTreeMap<String, ComponentStatus>,
    /// The checks that are down.
    pub error: BTreeMap<String, ComponentStatus>,
    /// Every check.
    pub details: BTreeMap<String, ComponentStatus>,
    /// The global remediation mode in force (`off`, `dry_run`, `approval`, `auto`); absent
    /// when the database could not be read.
    #[serde(rename = "remediationMode", skip_serializing_if = "Option::is_none")]
    pub remediation_mode: Option<String>,
}

/// `ready` or `not_ready`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    /// Every check is up.
    Ready,
    /// At least one is down.
    NotReady,
}

/// `GET /health/ready`: the database and its migrations.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyReport {
    /// Overall readiness.
    pub status: Readiness,
    /// The checks that are up.
    pub info: BTreeMap<String, ComponentStatus>,
    /// The checks that are down.
    pub error: BTreeMap<String, ComponentStatus>,
    /// Every check.
    pub details: BTreeMap<String, ComponentStatus>,
}

#[utoipa::path(get, path = "/health/ping", tag = "health", operation_id = "ping", summary = "Liveness ping",
    description = "Liveness; depends on nothing.",
    responses((status = 200, description = "Alive", body = Ping)))]
async fn ping() -> Json<Ping> {
    Json(Ping::with_uptime())
}

#[utoipa::path(get, path = "/health/ping", tag = "health", operation_id = "root_ping", summary = "Liveness ping (root path)",
    description = "Liveness (root alias of the prefixed route).",
    responses((status = 200, description = "Alive", body = Ping)))]
async fn root_ping() -> Json<Ping> {
    ping().await
}

#[utoipa::path(get, path = "/health", tag = "health", operation_id = "root_health", summary = "Health of the backend and its dependencies (root path)",
    description = "Health of the database, Redis and (when enabled) the ai-engine (root alias of the prefixed route).",
    responses(
        (status = 200, description = "Every dependency is up", body = HealthReport),
        (status = 503, description = "A dependency is down", body = HealthReport),
    ))]
async fn root_health(state: State<AppState>) -> Response {
    health_check(state).await
}

#[utoipa::path(get, path = "/health/ready", tag = "health", operation_id = "root_readiness", summary = "Readiness (root path)",
    description = "Readiness: the database and its migrations (root alias of the prefixed route).",
    responses(
        (status = 200, description = "Ready", body = ReadyReport),
        (status = 503, description = "Not ready", body = ReadyReport),
    ))]
async fn root_ready(state: State<AppState>) -> Response {
    ready(state).await
}

async fn database(state: &AppState) -> health::Check {
    health::check("database", CHECK_TIMEOUT, async {
        sqlx::query("SELECT 1").execute(&state.db).await.map(|_| ())
    })
    .await
}

#[utoipa::path(get, path = "/health", tag = "health", operation_id = "health", summary = "Health of the backend and its dependencies",
    description = "Health of the database, Redis and (when HEALTH_CHECK_AI_ENGINE is on) the ai-engine.",
    responses(
        (status = 200, description = "Every dependency is up", body = HealthReport),
        (status = 503, description = "A dependency is down", body = HealthReport),
    ))]
async fn health_check(State(state): State<AppState>) -> Response {
    let redis = health::check("redis", CHECK_TIMEOUT, state.redis.ping());
    let ai = async {
        if !state.config.health_check_ai_engine {
            return None;
        }
        let url = format!("{}/health", state.config.ai_engine_url);
        Some(
            health::check("aiEngine", CHECK_TIMEOUT, async {
                let res = state
                    .http
                    .get(url)
                    .timeout(CHECK_TIMEOUT)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if res.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("status {}", res.status()))
                }
            })
            .await,
        )
    };
    let modes = tokio::time::timeout(CHECK_TIMEOUT, crate::db::modes::all(&state.db));
    let (db, redis, ai, modes) = tokio::join!(database(&state), redis, ai, modes);
    let mut checks = vec![db, redis];
    checks.extend(ai);
    let (status, mut body) = health::report(&checks);
    // The kill switch's global position, so that a glance at health says whether Aegis acts.
    // Namespaces' own modes stay behind `GET /remediation/mode`: this route is public.
    if let (Ok(Ok(modes)), Some(map)) = (modes, body.as_object_mut()) {
        let global = modes
            .iter()
            .find(|s| s.scope == crate::db::modes::GLOBAL)
            .map_or(state.remediation.config.mode, |s| s.mode);
        map.insert("remediationMode".into(), json!(global.as_str()));
    }
    (status, Json(body)).into_response()
}

#[utoipa::path(get, path = "/health/ready", tag = "health", operation_id = "readiness", summary = "Readiness",
    description = "Readiness: the database and its migrations (Redis is fail-open).",
    responses(
        (status = 200, description = "Ready", body = ReadyReport),
        (status = 503, description = "Not ready", body = ReadyReport),
    ))]
async fn ready(State(state): State<AppState>) -> Response {
    let db = database(&state).await;
    let migrations = health::check(
        "migrations",
        CHECK_TIMEOUT,
        migrations_applied(&state.db, &MIGRATOR),
    )
    .await;
    let (status, body) = health::report(&[db, migrations]);
    let ready = if status == StatusCode::OK {
        "ready"
    } else {
        "not_ready"
    };
    let mut body = body;
    if let Some(map) = body.as_object_mut() {
        map.insert("status".into(), json!(ready));
    }
    (status, Json(body)).into_response()
}

#[utoipa::path(get, path = "/prometheus", tag = "meta", operation_id = "prometheus_alias", summary = "Prometheus metrics (alias of /metrics)",
    description = "The original's alias of `/metrics`: Prometheus text exposition format.",
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String)))]
async fn prometheus(State(state): State<AppState>) -> Response {
    aegis_common::metrics::metrics_handler(State(state.metrics.clone())).await
}
