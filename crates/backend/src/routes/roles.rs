//! `GET /policy/roles/list` (any JWT user): the seeded roles.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::docs::{Forbidden, RateLimited, ServerError, Unauthorized};
use crate::{
    auth::{AuthUser, RateLimit},
    db::roles::{self, RoleRow},
    error::ApiError,
    state::AppState,
};

/// The role routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[utoipa::path(get, path = "/policy/roles/list", tag = "users", operation_id = "list_roles", summary = "List the roles",
    description = "The seeded roles (any signed-in user).",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The roles", body = Vec<RoleRow>),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn list(
    State(state): State<AppState>,
    _: AuthUser,
    _: RateLimit,
) -> Result<Response, ApiError> {
    Ok(axum::Json(roles::list(&state.db).await?).into_response())
}
