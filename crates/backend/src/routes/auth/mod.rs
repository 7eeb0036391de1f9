//! `/auth/*`: signup, login, refresh, logout, forgot and reset password.

mod checks;
mod reset;
mod sign_in;

use utoipa_axum::{router::OpenApiRouter, routes};

pub use checks::{PASSWORD_CHARS, check_email, check_max, check_new_user, check_password};

use crate::{auth::ClientInfo, db::audit, state::AppState};

/// The auth routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in::signup))
        .routes(routes!(sign_in::login))
        .routes(routes!(sign_in::refresh))
        .routes(routes!(sign_in::logout))
        .routes(routes!(reset::forgot_password))
        .routes(routes!(reset::reset_password))
}

/// An audit event of an auth route, with the caller's address and user agent.
fn event(
    event_type: &'static str,
    user_id: Option<uuid::Uuid>,
    details: serde_json::Value,
    client: &ClientInfo,
) -> audit::NewAuditEvent {
    audit::NewAuditEvent {
        event_type,
        user_id,
        details,
        ip_address: Some(client.ip_string()),
        user_agent: client.user_agent.clone(),
        ..Default::default()
    }
}
