//! `/auth/*`: signup, login, refresh, logout, forgot and reset password.

use aegis_common::{
    error::{BackendStyle, ErrorStyle as _},
    openapi::BackendErrorBody,
};
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::docs::{Forbidden, MessageBody, RateLimited, ServerError, SuccessMessage, Unauthorized};

use crate::{
    auth::{
        AuthUser, ClientInfo, RateLimit, Role, lockout,
        principal::bearer,
        session::{self, TokenPair},
        sha256_hex,
        validate::{Violations, chars, is_email, normalize_email},
    },
    db::{self, audit, users},
    error::{ApiError, Json},
    state::AppState,
};

/// The auth routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
}

/// Minimum and maximum password length in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=100;

/// Adds the password-length messages for a field.
pub fn check_password(v: &mut Violations, password: Option<&str>, min_message: &str) {
    let n = password.map_or(0, chars);
    v.check(n < *PASSWORD_CHARS.start(), min_message);
    v.check(
        n > *PASSWORD_CHARS.end(),
        "Password must be at most 100 characters long",
    );
}

/// Normalises an e-mail (trimmed, lower case) and adds the message when it is not one.
pub fn check_email(v: &mut Violations, email: Option<&str>) -> String {
    let email = email.map(normalize_email).unwrap_or_default();
    v.check(!is_email(&email), "email must be an email");
    email
}

/// The checks signup and admin-create share: a valid e-mail, a password of 8–100
/// characters and names of at most 50. Returns the normalised e-mail.
pub fn check_new_user(
    v: &mut Violations,
    email: Option<&str>,
    password: Option<&str>,
    first_name: Option<&str>,
    last_name: Option<&str>,
) -> String {
    let email = check_email(v, email);
    check_password(v, password, "Password must be at least 8 characters long");
    check_max(v, "firstName", first_name, 50);
    check_max(v, "lastName", last_name, 50);
    email
}

/// Adds the message for an optional name field (≤ 50 characters).
pub fn check_max(v: &mut Violations, field: &str, value: Option<&str>, max: usize) {
    v.check(
        value.is_some_and(|s| chars(s) > max),
        format!("{field} must be shorter than or equal to {max} characters"),
    );
}

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

/// `POST /auth/signup` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SignupBody {
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
}

#[utoipa::path(post, path = "/auth/signup", tag = "auth", operation_id = "signup",
    description = "Creates an account with the `user` role and signs it in.",
    request_body = SignupBody,
    responses(
        (status = 201, description = "Created and signed in", body = TokenPair),
        (status = 400, description = "Invalid e-mail, password or names (one message per rule)", body = BackendErrorBody),
        (status = 409, description = "User with this email already exists", body = BackendErrorBody),
        RateLimited, ServerError,
    ))]
async fn signup(
    State(state): State<AppState>,
    client: ClientInfo,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<SignupBody>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    let email = check_new_user(
        &mut v,
        body.email.as_deref(),
        body.password.as_deref(),
        body.first_name.as_deref(),
        body.last_name.as_deref(),
    );
    v.finish()?;
    let password = body.password.unwrap_or_default();

    let conflict = || ApiError::Conflict("User with this email already exists".into());
    if users::find_by_email(&state.db, &email).await?.is_some() {
        return Err(conflict());
    }
    let hash = state.auth.passwords.hash(&password).await?;
    let mut tx = state.db.begin().await?;
    let new = users::NewUser {
        email: &email,
        password_hash: &hash,
        first_name: body.first_name.as_deref(),
        last_name: body.last_name.as_deref(),
        avatar: None,
    };
    let row = users::insert(&mut *tx, &new).await.map_err(|e| {
        if db::is_unique_violation(&e) {
            conflict()
        } else {
            e.into()
        }
    })?;
    db::roles::grant(&mut tx, row.id, Role::User.as_str(), None).await?;
    tx.commit().await?;

    let pair = session::start_session(&state, row.id, &row.email, &client).await?;
    let mut created = event(
        "user_create",
        Some(row.id),
        json!({"email": row.email}),
        &client,
    );
    created.entity_type = Some("user");
    created.entity_id = Some(row.id.to_string());
    audit::record(&state.db, created).await;
    audit::record(
        &state.db,
        event(
            "auth_signup",
            Some(row.id),
            json!({"email": row.email, "success": true}),
            &client,
        ),
    )
    .await;
    state
        .backend_metrics
        .auth_attempts
        .with_label_values(&["signup", "success"])
        .inc();
    Ok((StatusCode::CREATED, axum::Json(pair)).into_response())
}

/// `POST /auth/login` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    /// The account's e-mail address.
    #[serde(default)]
    #[schema(required = true, nullable = false)]
    email: Option<String>,
    /// The password.
    #[serde(default)]
    #[schema(required = true, nullable = false)]
    password: Option<String>,
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", operation_id = "login",
    description = "Exchanges e-mail and password for an access and a refresh token. Repeated failures lock the e-mail out for a while (429).",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = TokenPair),
        (status = 400, description = "Invalid e-mail or missing password", body = BackendErrorBody),
        (status = 401, description = "Invalid credentials", body = BackendErrorBody),
        (status = 403, description = "User account is deactivated", body = BackendErrorBody),
        (status = 429, description = "Rate limit exceeded, or the e-mail is locked out after failed attempts", body = BackendErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))),
        ServerError,
    ))]
async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    _: RateLimit,
    aegis_common::http::Json(body, _): Json<LoginBody>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    let email = check_email(&mut v, body.email.as_deref());
    v.check(body.password.is_none(), "password must be a string");
    v.finish()?;
    let password = body.password.unwrap_or_default();
    let failed = |reason: &str, user_id| {
        state
            .backend_metrics
            .auth_attempts
            .with_label_values(&["login", "failure"])
            .inc();
        event(
            "auth_login_failure",
            user_id,
            json!({"email": email, "success": false, "reason": reason}),
            &client,
        )
    };

    // Counted before the password is hashed: concurrent guesses cannot outrun the lockout.
    let locks =
        match lockout::attempt(&state.db, &lockout::Rules::of(&state.config.auth), &email).await? {
            lockout::Attempt::Locked { retry_after } => {
                audit::record(&state.db, failed("locked_out", None)).await;
                return Err(ApiError::TooManyRequests {
                    message: "Too many failed login attempts, please try again later".into(),
                    retry_after,
                });
            }
            lockout::Attempt::Check { locks } => locks,
        };
    let invalid = || ApiError::Unauthorized("Invalid credentials".into());
    let Some(user) = users::find_by_email(&state.db, &email).await? else {
        // Same work as a real check, so timing does not reveal whether the account exists.
        state.auth.passwords.verify_dummy(&password).await?;
        audit::record(&state.db, failed("user_not_found", None)).await;
        note_lockout(&state, &email, locks, &client).await;
        return Err(invalid());
    };
    let verified = state
        .auth
        .passwords
        .verify(&password, &user.password)
        .await?;
    if !verified.ok {
        audit::record(&state.db, failed("invalid_password", Some(user.id))).await;
        note_lockout(&state, &email, locks, &client).await;
        return Err(invalid());
    }
    if !user.is_active {
        audit::record(&state.db, failed("account_deactivated", Some(user.id))).await;
        return Err(ApiError::Forbidden("User account is deactivated".into()));
    }
    lockout::clear(&state.db, &email).await?;
    if verified.needs_rehash {
        // Transparent upgrade of legacy bcrypt (and argon2 parameter drift); a failure here must
        // not fail the login.
        match state.auth.passwords.hash(&password).await {
            Ok(hash) => {
                if let Err(e) = users::set_password(&state.db, user.id, &hash).await {
                    tracing::error!(error = %e, user_id = %user.id, "failed to store the upgraded password hash");
                }
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "failed to re-hash a password"),
        }
    }
    users::touch_last_login(&state.db, user.id).await?;
    let pair = session::start_session(&state, user.id, &user.email, &client).await?;
    audit::record(
        &state.db,
        event(
            "auth_login_success",
            Some(user.id),
            json!({"email": user.email, "success": true}),
            &client,
        ),
    )
    .await;
    state
        .backend_metrics
        .auth_attempts
        .with_label_values(&["login", "success"])
        .inc();
    Ok(axum::Json(pair).into_response())
}

/// Writes the `locked_out` audit event when the failed attempt started a lockout.
async fn note_lockout(
    state: &AppState,
    email: &str,
    locks: Option<std::time::Duration>,
    client: &ClientInfo,
) {
    let Some(locked) = locks else { return };
    tracing::warn!(
        lockout_seconds = locked.as_secs(),
        "login locked after repeated failures"
    );
    audit::record(
        &state.db,
        event(
            "auth_login_failure",
            None,
            json!({"email": email, "success": false, "reason": "locked_out", "lockoutSeconds": locked.as_secs()}),
            client,
        ),
    )
    .await;
}

/// `POST /auth/refresh` body (when the token is not in the `Authorization` header).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RefreshBody {
    /// The refresh token.
    #[serde(default)]
    refresh_token: Option<String>,
}

#[utoipa::path(post, path = "/auth/refresh", tag = "auth", operation_id = "refresh",
    description = "Rotates a refresh token: the presented one is spent and a new pair is issued. The token comes from `Authorization: Bearer` (wins) or the body's `refreshToken`; reusing a rotated token revokes its whole family.",
    security(("refreshToken" = []), ()),
    request_body(content = Option<RefreshBody>, description = "Optional when the token is in the Authorization header"),
    responses(
        (status = 200, description = "A new pair", body = TokenPair),
        (status = 400, description = "The body is not valid JSON or has unknown fields", body = BackendErrorBody),
        (status = 401, description = "No refresh token, an invalid one, or an access token", body = BackendErrorBody),
        (status = 403, description = "Access Denied: unknown, revoked (reuse), expired token or inactive user", body = BackendErrorBody),
        RateLimited, ServerError,
    ))]
async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    _: RateLimit,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Header wins; else the dashboard's body form.
    let token = match bearer(&headers) {
        Some(t) => Some(t.to_owned()),
        None if body.iter().all(u8::is_ascii_whitespace) => None,
        None => match aegis_common::http::parse_json::<RefreshBody>(&body) {
            Ok(b) => b.refresh_token.filter(|t| !t.is_empty()),
            Err(e) => return Ok(BackendStyle::body_error(&e).into_response()),
        },
    };
    let token = token.ok_or_else(|| ApiError::Unauthorized("Refresh token not found".into()))?;
    let pair = session::rotate(&state, &token, &client).await?;
    Ok(axum::Json(pair).into_response())
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth", operation_id = "logout",
    description = "Revokes every refresh token of the caller.",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Logged out", body = MessageBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn logout(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    _: RateLimit,
) -> Result<Response, ApiError> {
    session::revoke_all(&state.db, user.id).await?;
    state.realtime.end_sessions(user.id);
    audit::record(
        &state.db,
        event(
            "auth_logout",
            Some(user.id),
            json!({"success": true}),
            &client,
        ),
    )
    .await;
    Ok(axum::Json(json!({"message": "Logged out successfully"})).into_response())
}

/// `POST /auth/forgot-password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ForgotBody {
    /// The account's e-mail address.
    #[serde(default)]
    #[schema(required = true, nullable = false)]
    email: Option<String>,
}

#[utoipa::path(post, path = "/auth/forgot-password", tag = "auth", operation_id = "forgot_password",
    description = "Sends a password-reset link when the account exists; the answer is the same either way.",
    request_body = ForgotBody,
    responses(
        (status = 200, description = "Accepted (whether or not the account exists)", body = SuccessMessage),
        (status = 400, description = "Not an e-mail address", body = BackendErrorBody),
        RateLimited, ServerError,
    ))]
async fn forgot_password(
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
        if let Err(e) = request_reset(&state, &email, &client).await {
            tracing::error!(error = %e, "failed to record a password-reset request");
        }
    });
    Ok(axum::Json(
        json!({"success": true, "message": "Password reset email sent if account exists."}),
    )
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

/// The link reaches a log only in development, never in test or production (F7).
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
struct ResetBody {
    /// The token from the reset link.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 1)]
    token: Option<String>,
    /// 8 to 100 characters.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 8, max_length = 100)]
    new_password: Option<String>,
}

#[utoipa::path(post, path = "/auth/reset-password", tag = "auth", operation_id = "reset_password",
    description = "Sets a new password with a single-use reset token and signs out every session.",
    request_body = ResetBody,
    responses(
        (status = 200, description = "Password updated", body = SuccessMessage),
        (status = 400, description = "Missing token, invalid password, or an invalid or expired reset token", body = BackendErrorBody),
        RateLimited, ServerError,
    ))]
async fn reset_password(
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
    Ok(
        axum::Json(json!({"success": true, "message": "Password updated successfully."}))
            .into_response(),
    )
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
