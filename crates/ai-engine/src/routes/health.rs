//! `/` (name and version), `/ping`, `/health` and `/health/ready`.

use std::time::Duration;

use aegis_common::{
    health::{self, Ping},
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

/// Health routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(root))
        .routes(routes!(ping))
        .routes(routes!(health_check))
        .routes(routes!(ready))
}

/// `GET /`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Banner {
    /// `Aegis AI Engine`.
    #[schema(value_type = String)]
    service: &'static str,
    /// API version.
    #[schema(value_type = String)]
    version: &'static str,
    /// `operational`.
    #[schema(value_type = String)]
    status: &'static str,
    /// Now, RFC 3339.
    #[schema(format = DateTime)]
    timestamp: String,
}

#[utoipa::path(get, path = "/", tag = "health", operation_id = "banner", summary = "Service banner",
    responses((status = 200, description = "Service banner", body = Banner)))]
async fn root() -> Json<Banner> {
    Json(Banner {
        service: "Aegis AI Engine",
        version: env!("CARGO_PKG_VERSION"),
        status: "operational",
        timestamp: now_rfc3339(),
    })
}

#[utoipa::path(get, path = "/ping", tag = "health", operation_id = "ping", summary = "Liveness ping",
    responses((status = 200, description = "Liveness", body = Ping)))]
async fn ping() -> Json<Ping> {
    Json(Ping::now())
}

async fn database_up(state: &AppState) -> bool {
    health::check("database", Duration::from_secs(2), async {
        sqlx::query("SELECT 1").execute(&state.db).await.map(|_| ())
    })
    .await
    .result
    .is_ok()
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `healthy`.
    #[schema(value_type = String)]
    status: &'static str,
    /// Now, RFC 3339.
    #[schema(format = DateTime)]
    timestamp: String,
    /// Seconds since start.
    uptime: f64,
    /// Whether the models are loaded.
    models_loaded: bool,
    /// Whether the database answers.
    database_connected: bool,
}

/// Liveness: always 200, but `database_connected` tells the truth.
#[utoipa::path(get, path = "/health", tag = "health", operation_id = "health", summary = "Liveness with model and database state",
    responses((status = 200, description = "Liveness with model and database state", body = HealthStatus)))]
async fn health_check(State(state): State<AppState>) -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "healthy",
        timestamp: now_rfc3339(),
        uptime: health::uptime_seconds(),
        models_loaded: state.models_loaded(),
        database_connected: database_up(&state).await,
    })
}

/// `ready` or `initializing`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    /// Models loaded and database up.
    Ready,
    /// Not yet.
    Initializing,
}

/// `GET /health/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// Readiness.
    status: Readiness,
}

#[utoipa::path(get, path = "/health/ready", tag = "health", operation_id = "readiness", summary = "Readiness",
    responses(
        (status = 200, description = "Models loaded and the database answers", body = Ready),
        (status = 503, description = "Still initializing or the database is down", body = Ready),
    ))]
async fn ready(State(state): State<AppState>) -> Response {
    if state.models_loaded() && database_up(&state).await {
        Json(Ready {
            status: Readiness::Ready,
        })
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Ready {
                status: Readiness::Initializing,
            }),
        )
            .into_response()
    }
}
