//! Issuing and rotating token pairs against `refresh_tokens`.

use chrono::Utc;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    AuthContext,
    client::ClientInfo,
    jwt::{TokenError, TokenType},
    sha256_hex,
};
use crate::{
    db::{audit, refresh_tokens, users},
    error::ApiError,
};

/// `{"accessToken", "refreshToken"}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    /// Access JWT.
    pub access_token: String,
    /// Refresh JWT.
    pub refresh_token: String,
}

/// Signs a pair and stores the refresh row in `family` (inside the caller's transaction).
pub async fn issue_pair(
    auth: &AuthContext,
    conn: &mut PgConnection,
    user_id: Uuid,
    email: &str,
    family: Uuid,
    client: &ClientInfo,
) -> Result<(TokenPair, Uuid), ApiError> {
    let keys = &auth.keys;
    let access = keys
        .issue(TokenType::Access, user_id, email, Uuid::new_v4())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("failed to sign access token: {e}")))?;
    let jti = Uuid::new_v4();
    let refresh = keys
        .issue(TokenType::Refresh, user_id, email, jti)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("failed to sign refresh token: {e}")))?;
    let hash = sha256_hex(refresh.token.as_bytes());
    let ip = client.ip_string();
    let expires_at =
        chrono::DateTime::from_timestamp(refresh.claims.exp, 0).unwrap_or_else(Utc::now);
    refresh_tokens::insert(
        conn,
        &refresh_tokens::NewRefreshToken {
            id: jti,
            user_id,
            family_id: family,
            token_hash: &hash,
            expires_at,
            ip_address: Some(&ip),
            user_agent: client.user_agent.as_deref(),
        },
    )
    .await?;
    Ok((
        TokenPair {
            access_token: access.token,
            refresh_token: refresh.token,
        },
        jti,
    ))
}

/// Signup/login: revokes the user's active refresh tokens and starts a new family.
pub async fn start_session(
    auth: &AuthContext,
    user_id: Uuid,
    email: &str,
    client: &ClientInfo,
) -> Result<TokenPair, ApiError> {
    let mut tx = auth.db.begin().await?;
    refresh_tokens::revoke_all_for_user(&mut *tx, user_id).await?;
    let (pair, _) = issue_pair(auth, &mut tx, user_id, email, Uuid::new_v4(), client).await?;
    tx.commit().await?;
    Ok(pair)
}

/// Revokes every active refresh token of the user (logout, password change/reset, deactivation).
pub async fn revoke_all(db: &PgPool, user_id: Uuid) -> Result<(), ApiError> {
    refresh_tokens::end_all_sessions(db, user_id).await?;
    Ok(())
}

fn access_denied() -> ApiError {
    ApiError::Forbidden("Access Denied".into())
}

/// `POST /auth/refresh`: verifies, then rotates in one transaction; a token that was already
/// rotated revokes its whole family (RFC 9700 reuse detection).
pub async fn rotate(
    auth: &AuthContext,
    token: &str,
    client: &ClientInfo,
) -> Result<TokenPair, ApiError> {
    let claims = auth
        .keys
        .verify(token, TokenType::Refresh)
        .map_err(|e| match e {
            TokenError::WrongType => ApiError::Unauthorized("Invalid token type".into()),
            TokenError::Invalid => ApiError::Unauthorized("Unauthorized".into()),
        })?;
    let mut tx = auth.db.begin().await?;
    let Some(row) = refresh_tokens::lock(&mut tx, claims.jti).await? else {
        return Err(access_denied());
    };
    let presented = sha256_hex(token.as_bytes());
    if row.user_id != claims.sub
        || !aegis_common::signing::secrets_equal(presented.as_bytes(), row.token_hash.as_bytes())
    {
        return Err(access_denied());
    }
    if row.revoked_at.is_some() {
        let revoked = refresh_tokens::revoke_family(&mut *tx, row.family_id).await?;
        tx.commit().await?;
        tracing::warn!(user_id = %row.user_id, family = %row.family_id, revoked, "refresh token reuse detected");
        audit::record(
            &auth.db,
            audit::NewAuditEvent {
                event_type: "auth_refresh",
                user_id: Some(row.user_id),
                details: serde_json::json!({"success": false, "reason": "reuse_detected"}),
                ip_address: Some(client.ip_string()),
                user_agent: client.user_agent.clone(),
                ..Default::default()
            },
        )
        .await;
        auth.metrics
            .auth_attempts
            .with_label_values(&["refresh", "failure"])
            .inc();
        return Err(access_denied());
    }
    if row.expires_at <= Utc::now() {
        return Err(access_denied());
    }
    let user = users::find(&mut *tx, row.user_id)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(access_denied)?;
    let (pair, new_jti) =
        issue_pair(auth, &mut tx, user.id, &user.email, row.family_id, client).await?;
    refresh_tokens::mark_replaced(&mut tx, row.id, new_jti).await?;
    tx.commit().await?;
    audit::record(
        &auth.db,
        audit::NewAuditEvent {
            event_type: "auth_refresh",
            user_id: Some(user.id),
            details: serde_json::json!({"success": true}),
            ip_address: Some(client.ip_string()),
            user_agent: client.user_agent.clone(),
            ..Default::default()
        },
    )
    .await;
    auth.metrics
        .auth_attempts
        .with_label_values(&["refresh", "success"])
        .inc();
    Ok(pair)
}
