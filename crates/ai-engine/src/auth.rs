//! `X-API-Key` checks: active only when `API_KEY` is set; checked before
//! the body is read, compared in constant time; a missing or wrong key is 403
//! `{"detail":"Invalid API key"}` (no 401, no distinction).

use aegis_common::{error::ErrorReport, signing::secrets_equal};
use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use secrecy::{ExposeSecret, SecretString};

use crate::state::AppState;

fn key_matches(req: &Request, key: &SecretString) -> bool {
    req.headers()
        .get("x-api-key")
        .is_some_and(|given| secrets_equal(given.as_bytes(), key.expose_secret().as_bytes()))
}

fn forbidden() -> Response {
    ErrorReport::new(StatusCode::FORBIDDEN, "Invalid API key").into_response()
}

/// Middleware for every `/api/v1` route.
pub async fn require_api_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match &state.config.api_key {
        Some(key) if !key_matches(&req, key) => forbidden(),
        _ => next.run(req).await,
    }
}

/// Middleware for training routes: `ADMIN_API_KEY` when set; otherwise training is closed
/// whenever auth is on (production always has `API_KEY`), and open in a keyless development
/// setup.
pub async fn require_admin_key(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    match (&state.config.admin_api_key, &state.config.api_key) {
        (Some(admin), _) if key_matches(&req, admin) => next.run(req).await,
        (Some(_), _) | (None, Some(_)) => forbidden(),
        (None, None) => next.run(req).await,
    }
}
