//! The password-reset flow: a reset link for whoever asks (the answer never says whether the
//! account exists), then a new password for the holder of the link's single-use token.

use aegis_common::openapi::BackendErrorBody;
use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{
    checks::{check_email, check_password},
    event,
};
use crate::{
    auth::{ClientInfo, RateLimit, lockout, sha256_hex, validate::Violations},
    db::{self, audit, users},
    error::{ApiError, Json},
    routes::docs::{RateLimited, ServerError, SuccessMessage},
    state::AppState,
};

/// `POST /auth/forgot-password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ForgotBody {
    /// The account's e-mail address.
    #[serde(default)]
    #[schema(required = true, nullable = false)]
    email: Option<String>,
}

#[utoipa::path(post, path = "/auth/forgot-password", tag = "auth", operation_id = "forgot_password", summary = "Request a password reset",
    description = "Sends a password-reset link when the account exists; the answer is the same either way.",
    request_body = ForgotBody,
    responses(
        (status = 200, description = "Accepted (whether or not the account exists)", body = SuccessMessage),
        (status = 400, description = "Not an e-mail address", body = BackendErrorBody),
        RateLimited, ServerError,
    ))]
pub(super) async fn forgot_password(
    State(state): State<AppState>,
    client: ClientInfo,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<ForgotBody>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    let email = check_email(&mut v, body.email.as_deref());
    v.finish()?;
    // Every bit of work that depends on whether the account exists (the lookup, the token
    // write, the audit row, the mail) runs after the answer, so its timing reveals nothing.
    // A failure there is logged; the caller was told nothing it could act on anyway.
    let state = state.clone();
    tokio::spawn(async move {
        // A statement sent on a pooled connection that broke while idle (PostgreSQL restarted,
        // a link dropped) fails before it is run; each failure takes one such connection out
        // of the pool, so trying again as often as the pool can hold connections reaches a
        // live one, and the request is not lost.
        let attempts = state.config.db.max_connections.saturating_add(1);
        for attempt in 1..=attempts {
            match request_reset(&state, &email, &client).await {
                Err(ApiError::Db(e)) if db::is_broken_connection(&e) && attempt < attempts => {}
                Err(e) => {
                    tracing::error!(error = %e, "failed to record a password-reset request");
                    break;
                }
                Ok(()) => break,
            }
        }
    });
    Ok(axum::Json(SuccessMessage::new(
        "Password reset email sent if account exists.",
    ))
    .into_response())
}

/// Stores a reset token for `email`'s account, if there is one, and sends the link.
async fn request_reset(state: &AppState, email: &str, client: &ClientInfo) -> Result<(), ApiError> {
    let Some(user) = users::find_by_email(&state.db, email).await? else {
        return Ok(());
    };
    let token = hex::encode(rand::random::<[u8; 32]>());
    let expiry = state.config.auth.password_reset_expiry;
    let expires_at =
        Utc::now() + chrono::Duration::from_std(expiry).unwrap_or(chrono::Duration::hours(1));
    users::set_reset_token(
        &state.db,
        user.id,
        &sha256_hex(token.as_bytes()),
        expires_at,
    )
    .await?;
    audit::record(
        &state.db,
        event(
            "auth_password_reset_request",
            Some(user.id),
            json!({}),
            client,
        ),
    )
    .await;
    deliver_reset(state, user.email, &token);
    Ok(())
}

/// What happens to a password-reset link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResetDelivery {
    /// Mailed through SMTP.
    Mail,
    /// Logged, because this is a development machine without SMTP.
    LogLink,
    /// Neither: a warning without the link (test and production without SMTP).
    Nowhere,
}

/// The link reaches a log only in development, never in test or production.
fn reset_delivery(mailer_enabled: bool, app_env: aegis_common::config::AppEnv) -> ResetDelivery {
    if mailer_enabled {
        ResetDelivery::Mail
    } else if app_env == aegis_common::config::AppEnv::Development {
        ResetDelivery::LogLink
    } else {
        ResetDelivery::Nowhere
    }
}

/// Sends (or, in development without SMTP, logs) the reset link in the background, so the
/// response time does not depend on whether the account exists.
fn deliver_reset(state: &AppState, to: String, token: &str) {
    let cfg = &state.config.auth;
    let link = format!(
        "{}{}?token={token}",
        cfg.frontend_url, cfg.password_reset_path
    );
    let minutes = cfg.password_reset_expiry.as_secs() / 60;
    match reset_delivery(state.auth.mailer.is_enabled(), state.config.app_env) {
        ResetDelivery::Mail => {
            let auth = state.auth.clone();
            tokio::spawn(async move {
                if let Err(e) = auth.mailer.send_reset(&to, &link, minutes).await {
                    tracing::error!(error = %format!("{e:#}"), "failed to send the password-reset e-mail");
                }
            });
        }
        ResetDelivery::LogLink => {
            tracing::info!(%link, "password reset requested; no SMTP configured, link logged (development only)");
        }
        ResetDelivery::Nowhere => {
            tracing::warn!(
                "password reset requested but no SMTP relay is configured; no e-mail sent"
            );
        }
    }
}

/// `POST /auth/reset-password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ResetBody {
    /// The token from the reset link.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 1)]
    token: Option<String>,
    /// 8 to 100 characters.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 8, max_length = 100)]
    new_password: Option<String>,
}

#[utoipa::path(post, path = "/auth/reset-password", tag = "auth", operation_id = "reset_password", summary = "Reset a password with a reset token",
    description = "Sets a new password with a single-use reset token and signs out every session.",
    request_body = ResetBody,
    responses(
        (status = 200, description = "Password updated", body = SuccessMessage),
        (status = 400, description = "Missing token, invalid password, or an invalid or expired reset token", body = BackendErrorBody),
        RateLimited, ServerError,
    ))]
pub(super) async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<ResetBody>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    v.check(
        body.token.as_deref().is_none_or(str::is_empty),
        "token should not be empty",
    );
    check_password(
        &mut v,
        body.new_password.as_deref(),
        "Password must be at least 8 characters",
    );
    v.finish()?;
    let (token, password) = (
        body.token.unwrap_or_default(),
        body.new_password.unwrap_or_default(),
    );
    let invalid = || ApiError::BadRequest("Invalid or expired reset token".into());
    let user = users::find_by_reset_hash(&state.db, &sha256_hex(token.as_bytes()))
        .await?
        .ok_or_else(invalid)?;
    if user
        .password_reset_expires_at
        .is_none_or(|at| at <= Utc::now())
    {
        users::clear_reset_token(&state.db, user.id).await?;
        return Err(invalid());
    }
    let hash = state.auth.passwords.hash(&password).await?;
    let mut tx = state.db.begin().await?;
    // Single use: only the holder of the still-current hash wins a race.
    let claimed = sqlx::query(
        "UPDATE users SET password = $2, password_reset_token_hash = NULL, password_reset_expires_at = NULL \
         WHERE id = $1 AND password_reset_token_hash = $3",
    )
    .bind(user.id)
    .bind(&hash)
    .bind(sha256_hex(token.as_bytes()))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Err(invalid());
    }
    db::refresh_tokens::end_all_sessions(&mut *tx, user.id).await?;
    tx.commit().await?;
    state.realtime.end_sessions(user.id);
    lockout::clear(&state.db, &user.email).await?;
    let mut ev = event("auth_password_reset", Some(user.id), json!({}), &client);
    ev.entity_type = Some("user");
    ev.entity_id = Some(user.id.to_string());
    audit::record(&state.db, ev).await;
    Ok(axum::Json(SuccessMessage::new("Password updated successfully.")).into_response())
}

#[cfg(test)]
mod tests {
    use super::{ResetDelivery, reset_delivery};
    use aegis_common::config::AppEnv;

    #[test]
    fn production_never_logs_a_reset_link() {
        assert_eq!(
            reset_delivery(false, AppEnv::Production),
            ResetDelivery::Nowhere
        );
        assert_eq!(reset_delivery(false, AppEnv::Test), ResetDelivery::Nowhere);
        assert_eq!(
            reset_delivery(false, AppEnv::Development),
            ResetDelivery::LogLink
        );
        assert_eq!(
            reset_delivery(true, AppEnv::Production),
            ResetDelivery::Mail
        );
    }
}
