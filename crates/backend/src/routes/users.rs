//! `/users*` with the access matrix.

use std::collections::HashMap;

use aegis_common::openapi::BackendErrorBody;
use axum::{
    extract::{FromRequestParts, Path, State},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::{check_max, check_new_user, check_password},
    docs::{Forbidden, RateLimited, ServerError, Unauthorized},
};
use crate::{
    auth::{Admin, AuthUser, ClientInfo, RateLimit, RequireRole, Role, validate::Violations},
    db::{
        self, audit,
        users::{self, User},
    },
    error::{ApiError, Json, UuidPath},
    state::AppState,
};

/// The user routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, remove))
        .routes(routes!(change_password))
        .routes(routes!(set_roles))
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("User with ID {id} not found"))
}

fn event(
    event_type: &'static str,
    actor: &AuthUser,
    target: Uuid,
    details: serde_json::Value,
    client: &ClientInfo,
) -> audit::NewAuditEvent {
    audit::NewAuditEvent {
        event_type,
        user_id: Some(actor.id),
        entity_type: Some("user"),
        entity_id: Some(target.to_string()),
        details,
        ip_address: Some(client.ip_string()),
        user_agent: client.user_agent.clone(),
    }
}

/// The caller, allowed on `:id` because it is their own id or they are an admin (403
/// `"You can only access your own resource"` otherwise). Runs before the rate limit and the
/// UUID format check, in the API's check order (after authentication and role).
#[derive(Debug, Clone)]
pub struct SelfOrAdmin(pub AuthUser);

impl FromRequestParts<AppState> for SelfOrAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let raw = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .ok()
            .and_then(|Path(p)| p.get("id").cloned())
            .unwrap_or_default();
        match Uuid::parse_str(&raw) {
            Ok(id) => user.require_self_or_admin(id)?,
            Err(_) if user.is_admin() => {}
            Err(_) => {
                return Err(ApiError::Forbidden(
                    "You can only access your own resource".into(),
                ));
            }
        }
        Ok(SelfOrAdmin(user))
    }
}

#[utoipa::path(get, path = "/users/me", tag = "users", operation_id = "current_user", summary = "Show the signed-in user",
    description = "The caller's user object.",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn me(user: AuthUser, _: RateLimit) -> Response {
    axum::Json(user.user).into_response()
}

#[utoipa::path(get, path = "/users", tag = "users", operation_id = "list_users", summary = "List users",
    description = "Every user (admin).",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The users", body = Vec<User>),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn list(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    _: RateLimit,
) -> Result<Response, ApiError> {
    Ok(axum::Json(users::list(&state.db).await?).into_response())
}

/// `POST /users` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateUserBody {
    /// An e-mail address (trimmed and lower-cased).
    #[serde(default)]
    #[schema(required = true, nullable = false)]
    email: Option<String>,
    /// 8 to 100 characters.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 8, max_length = 100)]
    password: Option<String>,
    /// At most 50 characters.
    #[serde(default)]
    #[schema(max_length = 50)]
    first_name: Option<String>,
    /// At most 50 characters.
    #[serde(default)]
    #[schema(max_length = 50)]
    last_name: Option<String>,
    /// At most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    avatar: Option<String>,
}

#[utoipa::path(post, path = "/users", tag = "users", operation_id = "create_user", summary = "Create a user",
    description = "Creates a user with the `user` role (admin).",
    security(("bearerAuth" = [])),
    request_body = CreateUserBody,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 400, description = "Invalid e-mail, password, names or avatar (one message per rule)", body = BackendErrorBody),
        (status = 409, description = "User with this email already exists", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn create(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    client: ClientInfo,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<CreateUserBody>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    let email = check_new_user(
        &mut v,
        body.email.as_deref(),
        body.password.as_deref(),
        body.first_name.as_deref(),
        body.last_name.as_deref(),
    );
    check_max(&mut v, "avatar", body.avatar.as_deref(), 500);
    v.finish()?;
    let conflict = || ApiError::Conflict("User with this email already exists".into());
    if users::find_by_email(&state.db, &email).await?.is_some() {
        return Err(conflict());
    }
    let hash = state
        .auth
        .passwords
        .hash(body.password.as_deref().unwrap_or_default())
        .await?;
    let mut tx = state.db.begin().await?;
    let new = users::NewUser {
        email: &email,
        password_hash: &hash,
        first_name: body.first_name.as_deref(),
        last_name: body.last_name.as_deref(),
        avatar: body.avatar.as_deref(),
    };
    let row = users::insert(&mut *tx, &new).await.map_err(|e| {
        if db::is_unique_violation(&e) {
            conflict()
        } else {
            e.into()
        }
    })?;
    db::roles::grant(&mut tx, row.id, Role::User.as_str(), Some(admin.id)).await?;
    tx.commit().await?;
    audit::record(
        &state.db,
        event(
            "user_create",
            &admin,
            row.id,
            json!({"email": row.email}),
            &client,
        ),
    )
    .await;
    let user = users::load(&state.db, row.id)
        .await?
        .ok_or_else(|| not_found(row.id))?;
    Ok((StatusCode::CREATED, axum::Json(user)).into_response())
}

#[utoipa::path(get, path = "/users/{id}", tag = "users", operation_id = "get_user", summary = "Show a user",
    description = "One user (the user themself or an admin).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, description = "The id is not a UUID", body = BackendErrorBody),
        (status = 404, description = "No such user", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn get_one(
    State(state): State<AppState>,
    _: SelfOrAdmin,
    _: RateLimit,
    UuidPath(id): UuidPath,
) -> Result<Response, ApiError> {
    let user = users::load(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(axum::Json(user).into_response())
}

/// `PATCH /users/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateUserBody {
    /// At most 50 characters.
    #[serde(default)]
    #[schema(max_length = 50)]
    first_name: Option<String>,
    /// At most 50 characters.
    #[serde(default)]
    #[schema(max_length = 50)]
    last_name: Option<String>,
    /// At most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    avatar: Option<String>,
    /// Admins only (403 otherwise).
    #[serde(default)]
    is_active: Option<bool>,
}

#[utoipa::path(patch, path = "/users/{id}", tag = "users", operation_id = "update_user", summary = "Update a user",
    description = "Updates names and avatar (the user themself or an admin); `isActive` is for admins (deactivating revokes every session).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    request_body = UpdateUserBody,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 400, description = "The id is not a UUID, or invalid fields", body = BackendErrorBody),
        (status = 404, description = "No such user", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn update(
    State(state): State<AppState>,
    SelfOrAdmin(caller): SelfOrAdmin,
    client: ClientInfo,
    _: RateLimit,
    UuidPath(id): UuidPath,
    aegis_common::http::Json(body, _): Json<UpdateUserBody>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    check_max(&mut v, "firstName", body.first_name.as_deref(), 50);
    check_max(&mut v, "lastName", body.last_name.as_deref(), 50);
    check_max(&mut v, "avatar", body.avatar.as_deref(), 500);
    v.finish()?;
    if body.is_active.is_some() && !caller.is_admin() {
        return Err(ApiError::Forbidden("Insufficient permissions".into()));
    }
    let row = users::find(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let mut fields = Vec::new();
    for (name, present) in [
        ("firstName", body.first_name.is_some()),
        ("lastName", body.last_name.is_some()),
        ("avatar", body.avatar.is_some()),
        ("isActive", body.is_active.is_some()),
    ] {
        if present {
            fields.push(name);
        }
    }
    let deactivated = row.is_active && body.is_active == Some(false);
    let profile = users::Profile {
        first_name: body.first_name.or(row.first_name),
        last_name: body.last_name.or(row.last_name),
        avatar: body.avatar.or(row.avatar),
        is_active: body.is_active.unwrap_or(row.is_active),
    };
    let mut tx = state.db.begin().await?;
    users::update_profile(&mut *tx, id, &profile).await?;
    if deactivated {
        db::refresh_tokens::end_all_sessions(&mut *tx, id).await?;
    }
    tx.commit().await?;
    if deactivated {
        state.realtime.end_sessions(id);
    }
    audit::record(
        &state.db,
        event(
            "user_update",
            &caller,
            id,
            json!({"fields": fields}),
            &client,
        ),
    )
    .await;
    let user = users::load(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(axum::Json(user).into_response())
}

/// `PATCH /users/{id}/password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PasswordBody {
    /// The target's current password (required even for an admin).
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 1)]
    current_password: Option<String>,
    /// 8 to 100 characters.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 8, max_length = 100)]
    new_password: Option<String>,
}

#[utoipa::path(patch, path = "/users/{id}/password", tag = "users", operation_id = "change_password", summary = "Change a user's password",
    description = "Changes the password (the user themself or an admin; the current password is always required) and revokes every session. Answers 200 with an empty body.",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    request_body = PasswordBody,
    responses(
        (status = 200, description = "Changed (empty body)"),
        (status = 400, description = "The id is not a UUID, a field is invalid, or the current password is incorrect", body = BackendErrorBody),
        (status = 404, description = "No such user", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn change_password(
    State(state): State<AppState>,
    SelfOrAdmin(caller): SelfOrAdmin,
    client: ClientInfo,
    _: RateLimit,
    UuidPath(id): UuidPath,
    aegis_common::http::Json(body, _): Json<PasswordBody>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    v.check(
        body.current_password.as_deref().is_none_or(str::is_empty),
        "Current password is required",
    );
    check_password(
        &mut v,
        body.new_password.as_deref(),
        "Password must be at least 8 characters long",
    );
    v.finish()?;
    let row = users::find(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    // The target's current password is required even for an admin ([O], kept).
    let current = body.current_password.unwrap_or_default();
    if !state
        .auth
        .passwords
        .verify(&current, &row.password)
        .await?
        .ok
    {
        return Err(ApiError::BadRequest("Current password is incorrect".into()));
    }
    let hash = state
        .auth
        .passwords
        .hash(body.new_password.as_deref().unwrap_or_default())
        .await?;
    let mut tx = state.db.begin().await?;
    users::set_password(&mut *tx, id, &hash).await?;
    db::refresh_tokens::end_all_sessions(&mut *tx, id).await?;
    tx.commit().await?;
    state.realtime.end_sessions(id);
    audit::record(
        &state.db,
        event("user_password_change", &caller, id, json!({}), &client),
    )
    .await;
    Ok(StatusCode::OK.into_response())
}

#[utoipa::path(delete, path = "/users/{id}", tag = "users", operation_id = "delete_user", summary = "Delete a user",
    description = "Deletes a user (the user themself or an admin). Answers 200 with an empty body.",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    responses(
        (status = 200, description = "Deleted (empty body)"),
        (status = 400, description = "The id is not a UUID", body = BackendErrorBody),
        (status = 404, description = "No such user", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn remove(
    State(state): State<AppState>,
    SelfOrAdmin(caller): SelfOrAdmin,
    client: ClientInfo,
    _: RateLimit,
    UuidPath(id): UuidPath,
) -> Result<Response, ApiError> {
    let row = users::find(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    // Written before the row goes.
    audit::record(
        &state.db,
        event(
            "user_delete",
            &caller,
            id,
            json!({"email": row.email}),
            &client,
        ),
    )
    .await;
    if !users::delete(&state.db, id).await? {
        return Err(not_found(id));
    }
    Ok(StatusCode::OK.into_response())
}

/// `PUT /users/{id}/roles` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RolesBody {
    /// At least one; each of `admin`, `user`, `auditor`, `service`, no repeats.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_items = 1)]
    roles: Option<Vec<String>>,
}

#[utoipa::path(put, path = "/users/{id}/roles", tag = "users", operation_id = "set_user_roles", summary = "Set a user's roles",
    description = "Replaces a user's roles (admin).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    request_body = RolesBody,
    responses(
        (status = 200, description = "The user with the new roles", body = User),
        (status = 400, description = "The id is not a UUID, or the roles are empty, unknown or repeated", body = BackendErrorBody),
        (status = 404, description = "No such user", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn set_roles(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    client: ClientInfo,
    _: RateLimit,
    UuidPath(id): UuidPath,
    aegis_common::http::Json(body, _): Json<RolesBody>,
) -> Result<Response, ApiError> {
    let roles = body.roles.unwrap_or_default();
    let mut v = Violations::new();
    v.check(roles.is_empty(), "roles must contain at least 1 elements");
    v.check(
        roles.iter().any(|r| Role::parse(r).is_none()),
        "each value in roles must be one of the following values: admin, user, auditor, service, operator",
    );
    let mut unique = roles.clone();
    unique.sort();
    unique.dedup();
    v.check(
        unique.len() != roles.len(),
        "All roles's elements must be unique",
    );
    v.finish()?;
    if users::find(&state.db, id).await?.is_none() {
        return Err(not_found(id));
    }
    let mut tx = state.db.begin().await?;
    db::roles::replace(&mut tx, id, &roles, Some(admin.id)).await?;
    tx.commit().await?;
    audit::record(
        &state.db,
        event(
            "user_update",
            &admin,
            id,
            json!({"fields": ["roles"], "roles": roles}),
            &client,
        ),
    )
    .await;
    let user = users::load(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(axum::Json(user).into_response())
}
