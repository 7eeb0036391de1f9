//! Signing up, in and out: signup, login (with its lockout), refresh-token rotation and logout.

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
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{
    checks::{check_email, check_new_user},
    event,
};
use crate::{
    auth::{
        AuthUser, ClientInfo, RateLimit, Role, lockout,
        principal::bearer,
        session::{self, TokenPair},
        validate::Violations,
    },
    db::{self, audit, users},
    error::{ApiError, Json},
    routes::docs::{Forbidden, MessageBody, RateLimited, ServerError, Unauthorized},
    state::AppState,
};

/// `POST /auth/signup` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SignupBody {
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

#[utoipa::path(post, path = "/auth/signup", tag = "auth", operation_id = "signup", summary = "Sign up",
    description = "Creates an account with the `user` role and signs it in.",
    request_body = SignupBody,
    responses(
        (status = 201, description = "Created and signed in", body = TokenPair),
        (status = 400, description = "Invalid e-mail, password or names (one message per rule)", body = BackendErrorBody),
        (status = 409, description = "User with this email already exists", body = BackendErrorBody),
        RateLimited, ServerError,
    ))]
pub(super) async fn signup(
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

    let pair = session::start_session(&state.auth, row.id, &row.email, &client).await?;
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
pub(super) struct LoginBody {
    /// The account's e-mail address.
    #[serde(default)]
    #[schema(required = true, nullable = false)]
    email: Option<String>,
    /// The password.
    #[serde(default)]
    #[schema(required = true, nullable = false)]
    password: Option<String>,
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", operation_id = "login", summary = "Log in",
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
pub(super) async fn login(
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
    let pair = session::start_session(&state.auth, user.id, &user.email, &client).await?;
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
pub(super) struct RefreshBody {
    /// The refresh token.
    #[serde(default)]
    refresh_token: Option<String>,
}

#[utoipa::path(post, path = "/auth/refresh", tag = "auth", operation_id = "refresh", summary = "Refresh the access token",
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
pub(super) async fn refresh(
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
    let pair = session::rotate(&state.auth, &token, &client).await?;
    Ok(axum::Json(pair).into_response())
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth", operation_id = "logout", summary = "Log out",
    description = "Revokes every refresh token of the caller.",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Logged out", body = MessageBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
pub(super) async fn logout(
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
    Ok(axum::Json(MessageBody::new("Logged out successfully")).into_response())
}
