//! E1 `/`, E2 `/ping`, E3 `/health`, E10 `/health/ready` (ai-engine.md §3.1).

use std::time::Duration;

use aegis_common::{health, time::now_rfc3339};
use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

use crate::state::AppState;

/// Health routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/ping", get(ping))
        .route("/health", get(health_check))
        .route("/health/ready", get(ready))
}

async fn root() -> Json<Value> {
    Json(json!({
        "service": "Aegis AI Engine",
        "version": "1.0.0",
        "status": "operational",
        "timestamp": now_rfc3339(),
    }))
}

async fn ping() -> Json<Value> {
    Json(json!({"status": "ok", "timestamp": now_rfc3339()}))
}

async fn database_up(state: &AppState) -> bool {
    health::check("database", Duration::from_secs(2), async {
        sqlx::query("SELECT 1").execute(&state.db).await.map(|_| ())
    })
    .await
    .result
    .is_ok()
}

/// Liveness: always 200, but `database_connected` tells the truth (§3.5).
async fn health_check(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "timestamp": now_rfc3339(),
        "uptime": health::uptime_seconds(),
        "models_loaded": state.models_loaded(),
        "database_connected": database_up(&state).await,
    }))
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.models_loaded() && database_up(&state).await {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "initializing"})),
        )
            .into_response()
    }
}
