//! `GET /policy/roles/list` (backend.md §5.8, any JWT user): the seeded roles.

use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{
    auth::{AuthUser, RateLimit},
    db::roles,
    error::ApiError,
    state::AppState,
};

/// The role routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/policy/roles/list", get(list))
}

async fn list(
    State(state): State<AppState>,
    _: AuthUser,
    _: RateLimit,
) -> Result<Response, ApiError> {
    Ok(axum::Json(roles::list(&state.db).await?).into_response())
}
