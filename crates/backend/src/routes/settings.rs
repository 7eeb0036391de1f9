//! `GET/PATCH /settings` (backend.md §4): the caller's own settings, stored in
//! `users.preferences`. Every key is validated, so a PATCH really saves nested fields (the
//! original rejected any non-empty section, F23).

use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::{
    auth::{AuthUser, ClientInfo, RateLimit, validate::Violations},
    db::{alerts::SEVERITIES, audit, settings},
    error::{ApiError, Json},
    state::AppState,
};

/// The settings routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/settings", get(show).patch(update))
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

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Notifications {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    push: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    websocket: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alert_severities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alert_frequency: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Ui {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    theme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dashboard_layout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    items_per_page: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Alerts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_severity_filter: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auto_acknowledge: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sound_enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    notifications: Option<Notifications>,
    #[serde(default)]
    ui: Option<Ui>,
    #[serde(default)]
    alerts: Option<Alerts>,
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

fn validate(body: &PatchBody) -> Result<(), ApiError> {
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

async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<PatchBody>,
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
