//! Health: `/health` (static), `/health/ping` (liveness), `/health/config`
//! (effective settings, never a secret) and `/health/ready` (database and Kubernetes API).

use std::time::Duration;

use aegis_common::{
    health::{Ping, uptime_seconds},
    time::now_rfc3339,
};
use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

/// The health routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ping))
        .routes(routes!(config))
        .routes(routes!(ready))
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `healthy`.
    #[schema(value_type = String, example = "healthy")]
    status: &'static str,
    /// `aegis-executor`.
    #[schema(value_type = String)]
    service: &'static str,
    /// Now, RFC 3339.
    #[schema(format = DateTime)]
    timestamp: String,
    /// Seconds since start.
    uptime: f64,
}

#[utoipa::path(get, path = "/health", tag = "health", operation_id = "health", summary = "Liveness status",
    responses((status = 200, description = "Static liveness status", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health {
        status: "healthy",
        service: "aegis-executor",
        timestamp: now_rfc3339(),
        uptime: uptime_seconds(),
    })
}

#[utoipa::path(get, path = "/health/ping", tag = "health", operation_id = "ping", summary = "Liveness ping",
    responses((status = 200, description = "Liveness", body = Ping)))]
async fn ping() -> Json<Ping> {
    Json(Ping::now())
}

/// `GET /health/config`: the effective settings, never a secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveConfig {
    /// `development`, `test` or `production`.
    #[schema(value_type = String)]
    environment: &'static str,
    /// Namespaces actions may touch.
    allowed_namespaces: Vec<String>,
    /// Whether execute requests must be signed.
    require_signature: bool,
    /// Whether signatures must be v2 (timestamp and nonce).
    require_signature_timestamp: bool,
    /// Accepted clock skew for v2 timestamps.
    signature_max_skew_seconds: u64,
    /// Upper replica bound.
    max_replicas: i64,
    /// Lower replica bound.
    min_replicas: i64,
    /// Actions one replica runs at once.
    max_concurrent_actions: usize,
    /// Per-target cooldown.
    action_cooldown_seconds: u64,
    /// Whether `policyDecision` is required.
    require_policy_decision: bool,
    /// Whether `POST /executor/generate-signature` is routed.
    signature_helper_enabled: bool,
    /// Whether audit rows are shipped to Loki.
    loki_enabled: bool,
}

#[utoipa::path(get, path = "/health/config", tag = "health", operation_id = "effective_config", summary = "The effective configuration, without secrets",
    responses((status = 200, description = "Effective settings (no secrets)", body = EffectiveConfig)))]
async fn config(State(state): State<AppState>) -> Json<EffectiveConfig> {
    let c = &state.config;
    Json(EffectiveConfig {
        environment: c.app_env.as_str(),
        allowed_namespaces: c.allowed_namespaces.clone(),
        require_signature: c.require_signature,
        require_signature_timestamp: c.require_signature_timestamp,
        signature_max_skew_seconds: c.max_skew.as_secs(),
        max_replicas: c.max_replicas,
        min_replicas: c.min_replicas,
        max_concurrent_actions: c.max_concurrent_actions,
        action_cooldown_seconds: c.action_cooldown.as_secs(),
        require_policy_decision: c.require_policy_decision,
        signature_helper_enabled: c.enable_signature_helper,
        loki_enabled: c.loki_url.is_some(),
    })
}

/// `up` or `down`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// Reachable.
    Up,
    /// Not reachable.
    Down,
}

impl From<bool> for Check {
    fn from(up: bool) -> Self {
        if up { Self::Up } else { Self::Down }
    }
}

/// The dependencies `/health/ready` checks.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    /// PostgreSQL.
    database: Check,
    /// The Kubernetes API.
    kubernetes: Check,
}

/// `ready` or `not_ready`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    /// Every check is up.
    Ready,
    /// At least one check is down.
    NotReady,
}

/// `GET /health/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// Overall readiness.
    status: Readiness,
    /// Each dependency.
    checks: Checks,
}

#[utoipa::path(get, path = "/health/ready", tag = "health", operation_id = "readiness", summary = "Readiness",
    responses(
        (status = 200, description = "The database and the Kubernetes API are reachable", body = Ready),
        (status = 503, description = "A dependency is down", body = Ready),
    ))]
async fn ready(State(state): State<AppState>) -> Response {
    let db = async {
        match tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query("SELECT 1").execute(&state.db),
        )
        .await
        {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: database down");
                false
            }
            Err(_) => false,
        }
    };
    let kube = async {
        match state.kube.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "readiness: Kubernetes API down");
                false
            }
        }
    };
    let (db, kube) = tokio::join!(db, kube);
    let ok = db && kube;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Ready {
            status: if ok {
                Readiness::Ready
            } else {
                Readiness::NotReady
            },
            checks: Checks {
                database: db.into(),
                kubernetes: kube.into(),
            },
        }),
    )
        .into_response()
}
