//! Health (backend.md §10 and spec/README.md "Backend health"):
//! * `/health` checks the DB, Redis and the ai-engine and answers 503 when any is down;
//! * `/health/ready` checks only the DB and migrations (Redis is fail-open);
//! * `/health/ping` is liveness and depends on nothing;
//! * `/prometheus` is the original's alias of `/metrics`.

use std::time::Duration;

use aegis_common::{db::migrations_applied, health};
use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use crate::{startup::MIGRATOR, state::AppState};

const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Routes under the API prefix.
pub fn router() -> Router<AppState> {
    root_router().route("/prometheus", get(prometheus))
}

/// Routes also served at the root.
pub fn root_router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health_check))
        .route("/health/ping", get(ping))
        .route("/health/ready", get(ready))
}

async fn ping() -> Json<serde_json::Value> {
    Json(health::ping_body())
}

async fn database(state: &AppState) -> health::Check {
    health::check("database", CHECK_TIMEOUT, async {
        sqlx::query("SELECT 1").execute(&state.db).await.map(|_| ())
    })
    .await
}

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
    let (db, redis, ai) = tokio::join!(database(&state), redis, ai);
    let mut checks = vec![db, redis];
    checks.extend(ai);
    let (status, body) = health::report(&checks);
    (status, Json(body)).into_response()
}

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

async fn prometheus(State(state): State<AppState>) -> Response {
    aegis_common::metrics::metrics_handler(State(state.metrics)).await
}
