//! Health (executor.md §8): `/health` (static), `/health/ping` (liveness), `/health/config`
//! (effective settings, never a secret) and `/health/ready` (database and Kubernetes API).

use std::time::Duration;

use aegis_common::{health::uptime_seconds, time::now_rfc3339};
use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

use crate::state::AppState;

/// The health routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/health/ping", get(ping))
        .route("/health/config", get(config))
        .route("/health/ready", get(ready))
}

async fn health() -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "service": "aegis-executor",
        "timestamp": now_rfc3339(),
        "uptime": uptime_seconds(),
    }))
}

async fn ping() -> Json<Value> {
    Json(json!({"status": "ok", "timestamp": now_rfc3339()}))
}

async fn config(State(state): State<AppState>) -> Json<Value> {
    let c = &state.config;
    Json(json!({
        "environment": c.app_env.as_str(),
        "allowedNamespaces": c.allowed_namespaces,
        "requireSignature": c.require_signature,
        "requireSignatureTimestamp": c.require_signature_timestamp,
        "signatureMaxSkewSeconds": c.max_skew.as_secs(),
        "maxReplicas": c.max_replicas,
        "minReplicas": c.min_replicas,
        "maxConcurrentActions": c.max_concurrent_actions,
        "actionCooldownSeconds": c.action_cooldown.as_secs(),
        "requirePolicyDecision": c.require_policy_decision,
        "signatureHelperEnabled": c.enable_signature_helper,
        "lokiEnabled": c.loki_url.is_some(),
    }))
}

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
    let word = |up: bool| if up { "up" } else { "down" };
    let ok = db && kube;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ok { "ready" } else { "not_ready" },
            "checks": {"database": word(db), "kubernetes": word(kube)},
        })),
    )
        .into_response()
}
