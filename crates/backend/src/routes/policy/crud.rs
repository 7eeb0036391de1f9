//! The stored policies: admins write them, admins and auditors read them. Every change reloads
//! the engine at once and leaves an audit row.

use std::collections::HashMap;

use aegis_common::openapi::BackendErrorBody;
use aegis_policy::PolicyType;
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    invalid::{bad_list, validation},
    schema::{PolicyInput, PolicyPatch},
};
use crate::{
    auth::{Admin, AdminOrAuditor, ClientInfo, RateLimit, RequireRole},
    db::{
        self,
        audit::{NewAuditEvent, record},
        policies::{self, PolicyFilter, PolicyRow},
    },
    error::{ApiError, Json, UuidPath},
    routes::docs::{Forbidden, MessageBody, RateLimited, ServerError, Unauthorized},
    state::AppState,
};

fn not_found(id: uuid::Uuid) -> ApiError {
    ApiError::NotFound(format!("Policy with ID {id} not found"))
}

fn conflict_or(e: sqlx::Error) -> ApiError {
    if db::is_unique_violation(&e) {
        ApiError::Conflict("Policy with this name already exists".into())
    } else {
        ApiError::Db(e)
    }
}

async fn audit_change(
    state: &AppState,
    client: &ClientInfo,
    actor: uuid::Uuid,
    event_type: &'static str,
    id: uuid::Uuid,
    details: Value,
) {
    record(
        &state.db,
        NewAuditEvent {
            event_type,
            user_id: Some(actor),
            entity_type: Some("policy"),
            entity_id: Some(id.to_string()),
            details,
            ip_address: Some(client.ip_string()),
            user_agent: client.user_agent.clone(),
        },
    )
    .await;
}

#[utoipa::path(post, path = "/policy", tag = "policy", operation_id = "create_policy", summary = "Create a policy",
    description = "Creates a policy (admin); the engine reloads it at once.",
    security(("bearerAuth" = [])),
    request_body = PolicyInput,
    responses(
        (status = 201, description = "Created", body = PolicyRow),
        (status = 400, description = "Invalid definition (the message names the field)", body = BackendErrorBody),
        (status = 409, description = "Policy with this name already exists", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    _: RateLimit,
    client: ClientInfo,
    aegis_common::http::Json(body, _): Json<Value>,
) -> Result<Response, ApiError> {
    let policy = aegis_policy::validate_policy(&body).map_err(|e| validation(&e))?;
    let row = policies::insert(&state.db, policy.definition(), Some(admin.id))
        .await
        .map_err(conflict_or)?;
    state.policy.changed().await;
    audit_change(
        &state,
        &client,
        admin.id,
        "policy_create",
        row.id,
        json!({"name": row.name}),
    )
    .await;
    Ok((StatusCode::CREATED, axum::Json(row)).into_response())
}

fn bool_param(q: &HashMap<String, String>, name: &str) -> Result<Option<bool>, ApiError> {
    match q.get(name).map(String::as_str) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(bad_list(format!("{name} must be a boolean value"))),
    }
}

#[utoipa::path(get, path = "/policy", tag = "policy", operation_id = "list_policies", summary = "List policies",
    description = "Every policy, in evaluation order (admin, auditor).",
    security(("bearerAuth" = [])),
    params(
        ("type" = Option<PolicyType>, Query, description = "Only this type"),
        ("isActive" = Option<bool>, Query, description = "Only active (or inactive) policies"),
        ("enabled" = Option<bool>, Query, description = "Alias of `isActive` (used when `isActive` is absent)"),
    ),
    responses(
        (status = 200, description = "The policies", body = Vec<PolicyRow>),
        (status = 400, description = "Invalid filter", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let policy_type = match q.get("type") {
        None => None,
        Some(t) => Some(
            t.parse::<PolicyType>()
                .map_err(|e| bad_list(e.to_string()))?
                .as_str()
                .to_owned(),
        ),
    };
    let is_active = match bool_param(&q, "isActive")? {
        Some(v) => Some(v),
        None => bool_param(&q, "enabled")?,
    };
    let filter = PolicyFilter {
        policy_type,
        is_active,
    };
    Ok(axum::Json(policies::list(&state.db, &filter).await?).into_response())
}

#[utoipa::path(get, path = "/policy/{id}", tag = "policy", operation_id = "get_policy", summary = "Show a policy",
    description = "One policy (admin, auditor).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The policy's id (a UUID)")),
    responses(
        (status = 200, description = "The policy", body = PolicyRow),
        (status = 400, description = "The id is not a UUID", body = BackendErrorBody),
        (status = 404, description = "No such policy", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
pub(super) async fn get_one(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    UuidPath(id): UuidPath,
) -> Result<Response, ApiError> {
    let row = policies::find(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(axum::Json(row).into_response())
}

#[utoipa::path(patch, path = "/policy/{id}", tag = "policy", operation_id = "update_policy", summary = "Update a policy",
    description = "Merges the given keys into a policy and validates the result (admin).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The policy's id (a UUID)")),
    request_body = PolicyPatch,
    responses(
        (status = 200, description = "The updated policy", body = PolicyRow),
        (status = 400, description = "The id is not a UUID, or the merged definition is invalid", body = BackendErrorBody),
        (status = 404, description = "No such policy", body = BackendErrorBody),
        (status = 409, description = "Policy with this name already exists", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
pub(super) async fn update(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    _: RateLimit,
    UuidPath(id): UuidPath,
    client: ClientInfo,
    aegis_common::http::Json(body, _): Json<Value>,
) -> Result<Response, ApiError> {
    let mut tx = state.db.begin().await?;
    let existing =
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM policies WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if existing.is_none() {
        return Err(not_found(id));
    }
    let row = policies::find(&mut *tx, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let definition = row.definition()?;
    let policy = aegis_policy::merge_patch(&definition, &body).map_err(|e| validation(&e))?;
    let updated = policies::update(&mut *tx, id, policy.definition())
        .await
        .map_err(conflict_or)?
        .ok_or_else(|| not_found(id))?;
    tx.commit().await?;
    state.policy.changed().await;
    let fields: Vec<String> = body
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    audit_change(
        &state,
        &client,
        admin.id,
        "policy_update",
        id,
        json!({"fields": fields}),
    )
    .await;
    Ok(axum::Json(updated).into_response())
}

#[utoipa::path(delete, path = "/policy/{id}", tag = "policy", operation_id = "delete_policy", summary = "Delete a policy",
    description = "Deletes a policy (admin).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The policy's id (a UUID)")),
    responses(
        (status = 200, description = "Deleted", body = MessageBody),
        (status = 400, description = "The id is not a UUID", body = BackendErrorBody),
        (status = 404, description = "No such policy", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
pub(super) async fn delete_one(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    _: RateLimit,
    UuidPath(id): UuidPath,
    client: ClientInfo,
) -> Result<Response, ApiError> {
    let name = policies::delete(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    state.policy.changed().await;
    audit_change(
        &state,
        &client,
        admin.id,
        "policy_delete",
        id,
        json!({"name": name}),
    )
    .await;
    Ok(axum::Json(MessageBody::new("Policy deleted successfully")).into_response())
}
