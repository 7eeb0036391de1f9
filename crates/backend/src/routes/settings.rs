//! `GET/PATCH /settings`: the caller's own settings, stored in
//! `users.preferences`. Every key is validated, so a PATCH really saves nested fields (the
//! original rejected any non-empty section).

use aegis_common::openapi::BackendErrorBody;
use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::docs::{Forbidden, RateLimited, ServerError, Unauthorized};
use crate::{
    auth::{AuthUser, ClientInfo, RateLimit, validate::Violations},
    db::{alerts::SEVERITIES, audit, settings},
    error::{ApiError, Json},
    state::AppState,
};

/// The settings routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, update))
}

/// The section names, in response order.
const SECTIONS: [&str; 3] = ["notifications", "ui", "alerts"];

fn defaults() -> Value {
    json!({
        "notifications": {
            "email": true,
            "push": true,
            "websocket": true,
            "alertSeverities": ["critical", "high"],
            "alertFrequency": "realtime"
        },
        "ui": {"theme": "system", "dashboardLayout": "default", "itemsPerPage": 20},
        "alerts": {"defaultSeverityFilter": [], "autoAcknowledge": false, "soundEnabled": true}
    })
}

/// Defaults overlaid, per section, by the stored values; anything else stored is ignored.
fn effective(stored: &Value) -> Value {
    let mut out = Map::new();
    let defaults = defaults();
    for name in SECTIONS {
        let mut section = match defaults.get(name) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        if let Some(Value::Object(saved)) = stored.get(name) {
            for (k, v) in saved {
                if section.contains_key(k) {
                    section.insert(k.clone(), v.clone());
                }
            }
        }
        out.insert(name.to_owned(), Value::Object(section));
    }
    Value::Object(out)
}

/// The `notifications` section (every key optional in a PATCH, all present in answers).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NotificationSettings {
    /// E-mail notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    email: Option<bool>,
    /// Push notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    push: Option<bool>,
    /// Live updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    websocket: Option<bool>,
    /// Each of `low`, `medium`, `high`, `critical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    alert_severities: Option<Vec<String>>,
    /// `realtime`, `hourly` or `daily`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    alert_frequency: Option<String>,
}

/// The `ui` section.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UiSettings {
    /// `light`, `dark` or `system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    theme: Option<String>,
    /// `default`, `compact` or `detailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    dashboard_layout: Option<String>,
    /// 1 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 1, maximum = 100)]
    items_per_page: Option<i64>,
}

/// The `alerts` section.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AlertSettings {
    /// Each of `low`, `medium`, `high`, `critical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    default_severity_filter: Option<Vec<String>>,
    /// Acknowledge alerts automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    auto_acknowledge: Option<bool>,
    /// Play a sound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    sound_enabled: Option<bool>,
}

/// The caller's settings: in a PATCH, the sections (and keys) to change; in answers, every
/// section with every key (defaults where nothing was saved).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Notifications.
    #[serde(default)]
    #[schema(nullable = false)]
    notifications: Option<NotificationSettings>,
    /// Display.
    #[serde(default)]
    #[schema(nullable = false)]
    ui: Option<UiSettings>,
    /// Alert handling.
    #[serde(default)]
    #[schema(nullable = false)]
    alerts: Option<AlertSettings>,
}

fn one_of(v: &mut Violations, field: &str, value: Option<&String>, allowed: &[&str]) {
    if let Some(value) = value {
        v.check(
            !allowed.contains(&value.as_str()),
            format!(
                "{field} must be one of the following values: {}",
                allowed.join(", ")
            ),
        );
    }
}

fn severities(v: &mut Violations, field: &str, values: Option<&Vec<String>>) {
    if let Some(values) = values {
        v.check(
            values.iter().any(|s| !SEVERITIES.contains(&s.as_str())),
            format!(
                "each value in {field} must be one of the following values: {}",
                SEVERITIES.join(", ")
            ),
        );
    }
}

fn validate(body: &Settings) -> Result<(), ApiError> {
    let mut v = Violations::new();
    if let Some(n) = &body.notifications {
        severities(
            &mut v,
            "notifications.alertSeverities",
            n.alert_severities.as_ref(),
        );
        one_of(
            &mut v,
            "notifications.alertFrequency",
            n.alert_frequency.as_ref(),
            &["realtime", "hourly", "daily"],
        );
    }
    if let Some(ui) = &body.ui {
        one_of(
            &mut v,
            "ui.theme",
            ui.theme.as_ref(),
            &["light", "dark", "system"],
        );
        one_of(
            &mut v,
            "ui.dashboardLayout",
            ui.dashboard_layout.as_ref(),
            &["default", "compact", "detailed"],
        );
        v.check(
            ui.items_per_page.is_some_and(|n| !(1..=100).contains(&n)),
            "ui.itemsPerPage must be an integer between 1 and 100",
        );
    }
    if let Some(a) = &body.alerts {
        severities(
            &mut v,
            "alerts.defaultSeverityFilter",
            a.default_severity_filter.as_ref(),
        );
    }
    v.finish()
}

#[utoipa::path(get, path = "/settings", tag = "settings", operation_id = "get_settings", summary = "Show the caller's settings",
    description = "The caller's settings, with defaults for anything not saved.",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Every section with every key", body = Settings),
        (status = 404, description = "User not found", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn show(
    State(state): State<AppState>,
    user: AuthUser,
    _: RateLimit,
) -> Result<Response, ApiError> {
    let stored = settings::load(&state.db, user.id)
        .await?
        .ok_or_else(|| ApiError::NotFound("User not found".into()))?;
    Ok(axum::Json(effective(&stored)).into_response())
}

#[utoipa::path(patch, path = "/settings", tag = "settings", operation_id = "update_settings", summary = "Update the caller's settings",
    description = "Saves the given keys of the given sections; answers the effective settings.",
    security(("bearerAuth" = [])),
    request_body = Settings,
    responses(
        (status = 200, description = "Every section with every key", body = Settings),
        (status = 400, description = "An unknown key or an invalid value", body = BackendErrorBody),
        (status = 404, description = "User not found", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<Settings>,
) -> Result<Response, ApiError> {
    validate(&body)?;
    let mut sections = Map::new();
    if let Some(n) = &body.notifications {
        sections.insert("notifications".into(), section_value(n));
    }
    if let Some(ui) = &body.ui {
        sections.insert("ui".into(), section_value(ui));
    }
    if let Some(a) = &body.alerts {
        sections.insert("alerts".into(), section_value(a));
    }
    let stored = settings::merge_sections(&state.db, user.id, &sections)
        .await?
        .ok_or_else(|| ApiError::NotFound("User not found".into()))?;
    audit::record(
        &state.db,
        audit::NewAuditEvent {
            event_type: "user_update",
            user_id: Some(user.id),
            entity_type: Some("user"),
            entity_id: Some(user.id.to_string()),
            details: json!({"preferences": stored}),
            ip_address: Some(client.ip_string()),
            user_agent: client.user_agent.clone(),
        },
    )
    .await;
    Ok(axum::Json(effective(&stored)).into_response())
}

fn section_value<T: Serialize>(section: &T) -> Value {
    serde_json::to_value(section).unwrap_or_else(|_| Value::Object(Map::new()))
}
