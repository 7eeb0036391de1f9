//! `/remediation/mode`: the kill switch. The remediation mode (`off`, `dry_run`, `approval`,
//! `auto`) read and set at run time, globally and per namespace. Every change is stored,
//! audited and notified in one transaction, and every replica applies it before its next
//! decision (see [`crate::remediation::mode`]).

use aegis_common::{names::Namespace, openapi::BackendErrorBody};
use aegis_policy::RemediationMode;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::docs::{Forbidden, RateLimited, ServerError, Unauthorized};
use crate::{
    auth::{Approvers, IncidentReaders, RateLimit, RequireRole},
    db::modes::{self, Changer, GLOBAL, ModeSetting},
    error::{ApiError, Json},
    remediation::mode as switch,
    state::AppState,
};

/// The mode routes (authenticated by the caller's `require_auth` layer).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, set_global))
        .routes(routes!(set_namespace, clear_namespace))
}

/// The modes in force.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Modes {
    /// The global mode.
    pub global: ModeSetting,
    /// Namespaces with a mode of their own (it can only make the global mode stricter).
    pub namespaces: Vec<ModeSetting>,
}

/// A mode to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SetMode {
    /// `off`, `dry_run`, `approval` or `auto`.
    mode: String,
    /// Why (recorded in the audit and the notification). At most 1000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    reason: Option<String>,
}

/// The modes as stored; the global one is the environment's initial value until one is.
async fn modes(state: &AppState) -> Result<Modes, ApiError> {
    let all = modes::all(&state.db).await?;
    switch::export(&state.remediation, &all);
    let (global, namespaces): (Vec<_>, Vec<_>) = all.into_iter().partition(|s| s.scope == GLOBAL);
    let global = global.into_iter().next().unwrap_or_else(|| ModeSetting {
        scope: GLOBAL.to_owned(),
        mode: state.remediation.config.mode,
        reason: None,
        updated_by: "REMEDIATION_MODE".to_owned(),
        updated_at: chrono::Utc::now(),
    });
    Ok(Modes { global, namespaces })
}

fn parse(body: SetMode) -> Result<(RemediationMode, Option<String>), ApiError> {
    let mut errors = Vec::new();
    let mode = RemediationMode::parse(&body.mode);
    if mode.is_none() {
        errors.push(
            "mode must be one of the following values: off, dry_run, approval, auto".to_owned(),
        );
    }
    let reason = body
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        errors.push("reason must be at most 1000 characters".to_owned());
    }
    match mode {
        Some(mode) if errors.is_empty() => Ok((mode, reason)),
        _ => Err(ApiError::BadRequest(errors.into())),
    }
}

fn namespace(raw: &str) -> Result<String, ApiError> {
    Namespace::new(raw)
        .map(String::from)
        .map_err(|e| ApiError::BadRequest(format!("namespace {e}").into()))
}

#[utoipa::path(get, path = "/remediation/mode", tag = "remediation", operation_id = "get_remediation_mode",
    summary = "Read the remediation mode",
    description = "The global remediation mode and the namespaces with a mode of their own (admin, auditor, operator).",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The modes", body = Modes),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn show(
    State(state): State<AppState>,
    _: RequireRole<IncidentReaders>,
    _: RateLimit,
) -> Result<Response, ApiError> {
    Ok(axum::Json(modes(&state).await?).into_response())
}

#[utoipa::path(put, path = "/remediation/mode", tag = "remediation", operation_id = "set_remediation_mode",
    summary = "Set the global remediation mode (the kill switch)",
    description = "Sets the global mode (admin, operator). `off` stops every automated action at once, in every replica, before its next decision. Audited and notified (`mode_changed`).",
    security(("bearerAuth" = [])),
    request_body = SetMode,
    responses(
        (status = 200, description = "The modes after the change", body = Modes),
        (status = 400, description = "Unknown mode, or a reason over 1000 characters", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn set_global(
    State(state): State<AppState>,
    who: RequireRole<Approvers>,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<SetMode>,
) -> Result<Response, ApiError> {
    let (mode, reason) = parse(body)?;
    change(&state, &who, GLOBAL, Some(mode), reason.as_deref()).await
}

#[utoipa::path(put, path = "/remediation/mode/namespaces/{namespace}", tag = "remediation", operation_id = "set_namespace_remediation_mode",
    summary = "Set a namespace's remediation mode",
    description = "Gives a namespace a mode of its own (admin, operator); it can only make the global mode stricter. Audited and notified (`mode_changed`).",
    security(("bearerAuth" = [])),
    params(("namespace" = String, Path, description = "A namespace (DNS-1123 label)")),
    request_body = SetMode,
    responses(
        (status = 200, description = "The modes after the change", body = Modes),
        (status = 400, description = "Invalid namespace, unknown mode, or a reason over 1000 characters", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn set_namespace(
    State(state): State<AppState>,
    who: RequireRole<Approvers>,
    _: RateLimit,
    Path(raw): Path<String>,
    aegis_common::http::Json(body, _): Json<SetMode>,
) -> Result<Response, ApiError> {
    let ns = namespace(&raw)?;
    let (mode, reason) = parse(body)?;
    change(&state, &who, &ns, Some(mode), reason.as_deref()).await
}

#[utoipa::path(delete, path = "/remediation/mode/namespaces/{namespace}", tag = "remediation", operation_id = "clear_namespace_remediation_mode",
    summary = "Remove a namespace's own remediation mode",
    description = "The namespace follows the global mode again (admin, operator). Audited and notified (`mode_changed`).",
    security(("bearerAuth" = [])),
    params(("namespace" = String, Path, description = "A namespace (DNS-1123 label)")),
    responses(
        (status = 200, description = "The modes after the change", body = Modes),
        (status = 400, description = "Invalid namespace", body = BackendErrorBody),
        (status = 404, description = "The namespace has no mode of its own", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn clear_namespace(
    State(state): State<AppState>,
    who: RequireRole<Approvers>,
    _: RateLimit,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let ns = namespace(&raw)?;
    change(&state, &who, &ns, None, None).await
}

async fn change(
    state: &AppState,
    who: &crate::auth::AuthUser,
    scope: &str,
    mode: Option<RemediationMode>,
    reason: Option<&str>,
) -> Result<Response, ApiError> {
    let by = Changer {
        user_id: who.id,
        email: &who.email,
    };
    let done = modes::change(&state.db, scope, mode, reason, by).await?;
    if mode.is_none() && done.before.is_none() {
        return Err(ApiError::NotFound(format!(
            "Namespace {scope} has no remediation mode of its own"
        )));
    }
    tracing::warn!(
        scope,
        from = done.before.as_ref().map(|s| s.mode.as_str()),
        to = done.after.as_ref().map(|s| s.mode.as_str()),
        by = %who.email,
        "remediation mode changed"
    );
    // Incidents recorded while it was off are decided now, if the change allows it.
    let namespace = (scope != GLOBAL).then(|| scope.to_owned());
    crate::remediation::engine::spawn_decide_recorded(&state.remediation, namespace);
    Ok(axum::Json(modes(state).await?).into_response())
}
