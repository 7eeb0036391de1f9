//! `refresh_tokens`: one row per issued refresh token, SHA-256 of the whole
//! JWT, rotation chains grouped by `family_id`.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

/// A stored refresh token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshTokenRow {
    /// = JWT `jti`.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Rotation chain.
    pub family_id: Uuid,
    /// SHA-256 hex of the JWT.
    pub token_hash: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Set once rotated, logged out or revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A row to insert.
#[derive(Debug, Clone)]
pub struct NewRefreshToken<'a> {
    /// = JWT `jti`.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Rotation chain.
    pub family_id: Uuid,
    /// SHA-256 hex of the JWT.
    pub token_hash: &'a str,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Client IP.
    pub ip_address: Option<&'a str>,
    /// Client UA.
    pub user_agent: Option<&'a str>,
}

/// Inserts a row.
#[tracing::instrument(skip_all)]
pub async fn insert(db: impl PgExecutor<'_>, t: &NewRefreshToken<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, ip_address, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(t.id)
    .bind(t.user_id)
    .bind(t.family_id)
    .bind(t.token_hash)
    .bind(t.expires_at)
    .bind(t.ip_address.map(|ip| ip.chars().take(45).collect::<String>()))
    .bind(t.user_agent)
    .execute(db)
    .await
    .map(|_| ())
}

/// Ends every session of the user: revokes its refresh tokens and stamps
/// `users.sessions_revoked_at`, which closes its live sockets (logout, deactivation, a
/// password change or reset). A new login revokes the older refresh tokens only
/// ([`revoke_all_for_user`]), so other open dashboards stay connected until their tokens expire.
#[tracing::instrument(skip(db))]
pub async fn end_all_sessions(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "WITH stamped AS (UPDATE users SET sessions_revoked_at = now() WHERE id = $1) \
         UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(db)
    .await
    .map(|r| r.rows_affected())
}

/// Revokes every active row of the user; returns how many.
#[tracing::instrument(skip(db))]
pub async fn revoke_all_for_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(db)
    .await
    .map(|r| r.rows_affected())
}

/// Revokes every active row of a family (reuse detected); returns how many.
#[tracing::instrument(skip(db))]
pub async fn revoke_family(db: impl PgExecutor<'_>, family_id: Uuid) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(db)
    .await
    .map(|r| r.rows_affected())
}

/// The row with this id, locked until the transaction ends (serialises concurrent rotations).
#[tracing::instrument(skip(tx))]
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Option<RefreshTokenRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, user_id, family_id, token_hash, expires_at, revoked_at \
         FROM refresh_tokens WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// Marks a row rotated.
#[tracing::instrument(skip(tx))]
pub async fn mark_replaced(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    replaced_by: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = now(), replaced_by = $2 WHERE id = $1")
        .bind(id)
        .bind(replaced_by)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}
