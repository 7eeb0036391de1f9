//! `/notifications`: channels, routing rules, a test send, and the deliveries (with the
//! dead letters). Admin only. A channel's secret is write-only: answers say only whether one
//! is stored.

use std::collections::HashMap;

use aegis_common::openapi::BackendErrorBody;
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::docs::{Forbidden, RateLimited, ServerError, Unauthorized};
use crate::{
    auth::{Admin, RateLimit, RequireRole, validate::Violations},
    db::{
        self,
        notifications::{
            self as store, Channel, ChannelFields, ChannelType, Delivery, EventType, Route,
            RouteFields, SEVERITIES,
        },
    },
    error::{ApiError, Json, UuidPath},
    notify::channels::{Notice, SendError, Target, check},
    state::AppState,
};

/// The notification routes (authenticated by the caller's `require_auth` layer).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(get_channel, update_channel, delete_channel))
        .routes(routes!(test_channel))
        .routes(routes!(list_routes, create_route))
        .routes(routes!(update_route, delete_route))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

fn not_found(what: &str, id: Uuid) -> ApiError {
    ApiError::NotFound(format!("Notification {what} {id} not found"))
}

/// 204 when a row was deleted, else 404.
fn deleted(gone: bool, what: &str, id: Uuid) -> Result<Response, ApiError> {
    if gone {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(what, id))
    }
}

fn conflict_on_name(e: sqlx::Error, what: &str) -> ApiError {
    if db::is_unique_violation(&e) {
        ApiError::Conflict(format!("A {what} with this name already exists"))
    } else {
        e.into()
    }
}

fn check_name(v: &mut Violations, name: Option<&str>) {
    if let Some(name) = name {
        v.check(
            name.trim().is_empty() || name.chars().count() > 100,
            "name must be 1 to 100 characters",
        );
    }
}

/// A channel to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewChannel {
    /// Unique, 1 to 100 characters.
    name: String,
    /// `slack`, `webhook`, `alertmanager` or `email`.
    #[serde(rename = "type")]
    channel_type: String,
    /// `webhook` and `alertmanager`: `{"url"}`; `email`: `{"to": [addresses]}`; `slack`: `{}`.
    #[serde(default)]
    config: Option<Value>,
    /// Write-only. `slack`: the incoming webhook URL; `webhook`: the signing secret
    /// (`whsec_` + base64); `alertmanager`: an optional bearer token.
    #[serde(default)]
    secret: Option<String>,
    /// Default true.
    #[serde(default)]
    enabled: Option<bool>,
}

#[utoipa::path(post, path = "/notifications/channels", tag = "notifications", operation_id = "create_notification_channel",
    summary = "Create a notification channel",
    description = "A Slack incoming webhook, a generic webhook signed by the Standard Webhooks specification, an Alertmanager, or e-mail through the backend's SMTP settings (admin). The secret is never returned.",
    security(("bearerAuth" = [])),
    request_body = NewChannel,
    responses(
        (status = 201, description = "Created", body = Channel),
        (status = 400, description = "Invalid type, settings or secret (one message per broken rule)", body = BackendErrorBody),
        (status = 409, description = "A channel with this name exists", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn create_channel(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<NewChannel>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    check_name(&mut v, Some(&body.name));
    let config = body.config.unwrap_or_else(|| json!({}));
    match ChannelType::parse(&body.channel_type) {
        Some(t) => {
            for e in check(
                t,
                &config,
                body.secret.as_deref(),
                state.notifier.smtp_configured(),
            ) {
                v.check(true, e);
            }
        }
        None => v.check(
            true,
            format!(
                "type must be one of the following values: {}",
                ChannelType::names()
            ),
        ),
    }
    v.finish()?;
    let fields = ChannelFields {
        name: Some(body.name.trim().to_owned()),
        channel_type: ChannelType::parse(&body.channel_type),
        config: Some(config),
        secret: body.secret.map(secrecy::SecretString::from),
        enabled: body.enabled,
    };
    let channel = store::create_channel(&state.db, &fields)
        .await
        .map_err(|e| conflict_on_name(e, "channel"))?;
    Ok((StatusCode::CREATED, axum::Json(channel)).into_response())
}

#[utoipa::path(get, path = "/notifications/channels", tag = "notifications", operation_id = "list_notification_channels",
    summary = "List notification channels",
    description = "Every channel, by name (admin). Secrets are shown only as `hasSecret`.",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The channels", body = Vec<Channel>),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn list_channels(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    _: RateLimit,
) -> Result<Response, ApiError> {
    Ok(axum::Json(store::list_channels(&state.db).await?).into_response())
}

async fn load_channel(state: &AppState, id: Uuid) -> Result<Channel, ApiError> {
    store::get_channel(&state.db, id)
        .await?
        .ok_or_else(|| not_found("channel", id))
}

#[utoipa::path(get, path = "/notifications/channels/{id}", tag = "notifications", operation_id = "get_notification_channel",
    summary = "Show a notification channel",
    description = "One channel (admin).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The channel's id (a UUID)")),
    responses(
        (status = 200, description = "The channel", body = Channel),
        (status = 400, description = "The id is not a UUID", body = BackendErrorBody),
        (status = 404, description = "No such channel", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn get_channel(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    _: RateLimit,
    UuidPath(id): UuidPath,
) -> Result<Response, ApiError> {
    Ok(axum::Json(load_channel(&state, id).await?).into_response())
}

/// Changes to a channel; absent fields stay as they are. The type cannot change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChannelChanges {
    /// Unique, 1 to 100 characters.
    #[serde(default)]
    name: Option<String>,
    /// The settings, replaced as a whole.
    #[serde(default)]
    config: Option<Value>,
    /// A new secret.
    #[serde(default)]
    secret: Option<String>,
    /// Enabled.
    #[serde(default)]
    enabled: Option<bool>,
}

#[utoipa::path(patch, path = "/notifications/channels/{id}", tag = "notifications", operation_id = "update_notification_channel",
    summary = "Change a notification channel",
    description = "Changes a channel's name, settings, secret or enabled flag (admin). The result is checked as a whole.",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The channel's id (a UUID)")),
    request_body = ChannelChanges,
    responses(
        (status = 200, description = "The channel", body = Channel),
        (status = 400, description = "The id is not a UUID, or invalid settings", body = BackendErrorBody),
        (status = 404, description = "No such channel", body = BackendErrorBody),
        (status = 409, description = "A channel with this name exists", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn update_channel(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    _: RateLimit,
    UuidPath(id): UuidPath,
    aegis_common::http::Json(body, _): Json<ChannelChanges>,
) -> Result<Response, ApiError> {
    use secrecy::ExposeSecret;
    let current = load_channel(&state, id).await?;
    let stored = store::channel_secret(&state.db, id).await?;
    let secret = body
        .secret
        .clone()
        .or_else(|| stored.map(|s| s.expose_secret().to_owned()));
    let config = body.config.clone().unwrap_or(current.config);
    let mut v = Violations::new();
    check_name(&mut v, body.name.as_deref());
    for e in check(
        current.channel_type,
        &config,
        secret.as_deref(),
        state.notifier.smtp_configured(),
    ) {
        v.check(true, e);
    }
    v.finish()?;
    let fields = ChannelFields {
        name: body.name.map(|n| n.trim().to_owned()),
        channel_type: None,
        config: body.config,
        secret: body.secret.map(secrecy::SecretString::from),
        enabled: body.enabled,
    };
    let channel = store::update_channel(&state.db, id, &fields)
        .await
        .map_err(|e| conflict_on_name(e, "channel"))?
        .ok_or_else(|| not_found("channel", id))?;
    Ok(axum::Json(channel).into_response())
}

#[utoipa::path(delete, path = "/notifications/channels/{id}", tag = "notifications", operation_id = "delete_notification_channel",
    summary = "Delete a notification channel",
    description = "Deletes a channel, its pending deliveries, and its place in every route (admin).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The channel's id (a UUID)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID", body = BackendErrorBody),
        (status = 404, description = "No such channel", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn delete_channel(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    _: RateLimit,
    UuidPath(id): UuidPath,
) -> Result<Response, ApiError> {
    deleted(store::delete_channel(&state.db, id).await?, "channel", id)
}

#[utoipa::path(post, path = "/notifications/channels/{id}/test", tag = "notifications", operation_id = "test_notification_channel",
    summary = "Send a test notification",
    description = "Sends a test notification to the channel now, once, within the delivery deadline (admin), and says whether it arrived. Disabled channels are tested too.",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The channel's id (a UUID)")),
    responses(
        (status = 200, description = "Delivered: `{delivered, eventId}`"),
        (status = 400, description = "The id is not a UUID", body = BackendErrorBody),
        (status = 404, description = "No such channel", body = BackendErrorBody),
        (status = 502, description = "The receiver refused it or could not be reached; the message says why", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn test_channel(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    _: RateLimit,
    UuidPath(id): UuidPath,
) -> Result<Response, ApiError> {
    let channel = load_channel(&state, id).await?;
    let secret = store::channel_secret(&state.db, id).await?;
    let event_id = Uuid::new_v4();
    let payload = json!({
        "reason": format!("A test from {} for channel {}.", admin.email, channel.name),
        "channel": channel.name,
    });
    let notice = Notice {
        id: event_id,
        event_type: EventType::Test,
        severity: "low",
        namespace: None,
        payload: &payload,
        at: chrono::Utc::now(),
        public_url: &state.notifier.config().public_url,
    };
    let target = Target {
        channel_type: channel.channel_type,
        config: &channel.config,
        secret: secret.as_ref(),
    };
    match state.notifier.send(target, &notice).await {
        Ok(()) => Ok(axum::Json(json!({"delivered": true, "eventId": event_id})).into_response()),
        Err(SendError::Retry(e) | SendError::Permanent(e)) => Err(ApiError::BadGateway(format!(
            "the test notification to {} was not delivered: {e}",
            channel.name
        ))),
    }
}

/// A routing rule to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewRoute {
    /// Unique, 1 to 100 characters.
    name: String,
    /// Event types; empty or absent matches every type (but `test`).
    #[serde(default)]
    event_types: Option<Vec<String>>,
    /// `low` (default), `medium`, `high` or `critical`.
    #[serde(default)]
    min_severity: Option<String>,
    /// Namespace glob: lowercase letters, digits, `-`, `*` and `?` (default `*`).
    #[serde(default)]
    namespace_pattern: Option<String>,
    /// The channels to send to (at least one).
    channel_ids: Vec<Uuid>,
    /// Default true.
    #[serde(default)]
    enabled: Option<bool>,
}

/// Changes to a route; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RouteChanges {
    /// Unique, 1 to 100 characters.
    #[serde(default)]
    name: Option<String>,
    /// Event types; empty matches every type (but `test`).
    #[serde(default)]
    event_types: Option<Vec<String>>,
    /// The lowest severity.
    #[serde(default)]
    min_severity: Option<String>,
    /// Namespace glob.
    #[serde(default)]
    namespace_pattern: Option<String>,
    /// The channels (at least one).
    #[serde(default)]
    channel_ids: Option<Vec<Uuid>>,
    /// Enabled.
    #[serde(default)]
    enabled: Option<bool>,
}

async fn check_route(state: &AppState, fields: &RouteFields) -> Result<(), ApiError> {
    let mut v = Violations::new();
    check_name(&mut v, fields.name.as_deref());
    if let Some(types) = &fields.event_types {
        v.check(
            types.iter().any(|t| EventType::parse(t).is_none()),
            format!(
                "each value in eventTypes must be one of the following values: {}",
                EventType::names()
            ),
        );
    }
    if let Some(severity) = &fields.min_severity {
        v.check(
            !SEVERITIES.contains(&severity.as_str()),
            "minSeverity must be one of the following values: low, medium, high, critical",
        );
    }
    if let Some(pattern) = &fields.namespace_pattern {
        v.check(
            pattern.is_empty()
                || pattern.len() > 253
                || !pattern
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-*?".contains(c)),
            "namespacePattern must be 1 to 253 of: lowercase letters, digits, '-', '*' and '?'",
        );
    }
    if let Some(ids) = &fields.channel_ids {
        v.check(
            ids.is_empty() || ids.len() > 50,
            "channelIds must name 1 to 50 channels",
        );
    }
    v.finish()?;
    if let Some(ids) = &fields.channel_ids {
        let unknown = store::unknown_channels(&state.db, ids).await?;
        if !unknown.is_empty() {
            let list: Vec<String> = unknown.iter().map(Uuid::to_string).collect();
            return Err(ApiError::BadRequest(
                format!("channelIds name no channel: {}", list.join(", ")).into(),
            ));
        }
    }
    Ok(())
}

#[utoipa::path(post, path = "/notifications/routes", tag = "notifications", operation_id = "create_notification_route",
    summary = "Create a routing rule",
    description = "Event types × minimum severity × namespace glob → channels (admin).",
    security(("bearerAuth" = [])),
    request_body = NewRoute,
    responses(
        (status = 201, description = "Created", body = Route),
        (status = 400, description = "Unknown event type, severity or channel; invalid pattern", body = BackendErrorBody),
        (status = 409, description = "A route with this name exists", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn create_route(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<NewRoute>,
) -> Result<Response, ApiError> {
    let fields = RouteFields {
        name: Some(body.name.trim().to_owned()),
        event_types: body.event_types,
        min_severity: body.min_severity,
        namespace_pattern: body.namespace_pattern,
        channel_ids: Some(body.channel_ids),
        enabled: body.enabled,
    };
    check_route(&state, &fields).await?;
    let route = store::create_route(&state.db, &fields)
        .await
        .map_err(|e| conflict_on_name(e, "route"))?;
    Ok((StatusCode::CREATED, axum::Json(route)).into_response())
}

#[utoipa::path(get, path = "/notifications/routes", tag = "notifications", operation_id = "list_notification_routes",
    summary = "List routing rules",
    description = "Every routing rule, by name (admin).",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The routes", body = Vec<Route>),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn list_routes(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    _: RateLimit,
) -> Result<Response, ApiError> {
    Ok(axum::Json(store::list_routes(&state.db).await?).into_response())
}

#[utoipa::path(patch, path = "/notifications/routes/{id}", tag = "notifications", operation_id = "update_notification_route",
    summary = "Change a routing rule",
    description = "Changes a routing rule (admin).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The route's id (a UUID)")),
    request_body = RouteChanges,
    responses(
        (status = 200, description = "The route", body = Route),
        (status = 400, description = "The id is not a UUID; unknown event type, severity or channel; invalid pattern", body = BackendErrorBody),
        (status = 404, description = "No such route", body = BackendErrorBody),
        (status = 409, description = "A route with this name exists", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn update_route(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    _: RateLimit,
    UuidPath(id): UuidPath,
    aegis_common::http::Json(body, _): Json<RouteChanges>,
) -> Result<Response, ApiError> {
    let fields = RouteFields {
        name: body.name.map(|n| n.trim().to_owned()),
        event_types: body.event_types,
        min_severity: body.min_severity,
        namespace_pattern: body.namespace_pattern,
        channel_ids: body.channel_ids,
        enabled: body.enabled,
    };
    check_route(&state, &fields).await?;
    let route = store::update_route(&state.db, id, &fields)
        .await
        .map_err(|e| conflict_on_name(e, "route"))?
        .ok_or_else(|| not_found("route", id))?;
    Ok(axum::Json(route).into_response())
}

#[utoipa::path(delete, path = "/notifications/routes/{id}", tag = "notifications", operation_id = "delete_notification_route",
    summary = "Delete a routing rule",
    description = "Deletes a routing rule (admin); deliveries it already made stay.",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The route's id (a UUID)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID", body = BackendErrorBody),
        (status = 404, description = "No such route", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn delete_route(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    _: RateLimit,
    UuidPath(id): UuidPath,
) -> Result<Response, ApiError> {
    deleted(store::delete_route(&state.db, id).await?, "route", id)
}

#[utoipa::path(get, path = "/notifications/deliveries", tag = "notifications", operation_id = "list_notification_deliveries",
    summary = "List deliveries and dead letters",
    description = "Deliveries, newest first (admin). `status=dead` lists the dead letters: deliveries the receiver refused, or that kept failing for NOTIFY_DEAD_AFTER_SECONDS.",
    security(("bearerAuth" = [])),
    params(
        ("status" = Option<String>, Query, description = "pending, delivered or dead"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 100)"),
    ),
    responses(
        (status = 200, description = "The deliveries", body = Vec<Delivery>),
        (status = 400, description = "Invalid status or limit", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn list_deliveries(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    let status = q.get("status").filter(|s| !s.is_empty()).cloned();
    v.check(
        status
            .as_deref()
            .is_some_and(|s| !["pending", "delivered", "dead"].contains(&s)),
        "status must be one of the following values: pending, delivered, dead",
    );
    let limit = match q.get("limit") {
        None => 100,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .unwrap_or(0),
    };
    v.check(limit == 0, "limit must be an integer between 1 and 500");
    v.finish()?;
    Ok(axum::Json(store::deliveries(&state.db, status.as_deref(), limit).await?).into_response())
}

#[utoipa::path(post, path = "/notifications/deliveries/{id}/retry", tag = "notifications", operation_id = "retry_notification_delivery",
    summary = "Retry a dead delivery",
    description = "Makes a dead delivery pending again, due now, after the channel was fixed (admin).",
    security(("bearerAuth" = [])),
    params(("id" = i64, Path, description = "The delivery's id")),
    responses(
        (status = 202, description = "Pending again"),
        (status = 400, description = "The id is not a number", body = BackendErrorBody),
        (status = 404, description = "No dead delivery with this id", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn retry_delivery(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    _: RateLimit,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::BadRequest("the delivery id must be a number".into()))?;
    if store::retry(&state.db, id).await? {
        Ok(StatusCode::ACCEPTED.into_response())
    } else {
        Err(ApiError::NotFound(format!("No dead delivery with id {id}")))
    }
}
