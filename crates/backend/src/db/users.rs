//! `users`. E-mails are stored lowercase; secrets never leave this module's
//! row type through serialisation (see [`User`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::roles::{self, RoleRow};

/// What the Socket.IO gateway rechecks of a connected user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionState {
    /// Id.
    pub id: Uuid,
    /// Active.
    pub is_active: bool,
    /// When all the user's sessions were last ended.
    pub sessions_revoked_at: Option<DateTime<Utc>>,
    /// Role names (empty: the user counts as `user`).
    pub roles: Vec<String>,
}

/// The [`SessionState`] of every user in `ids` that exists, in one statement.
#[tracing::instrument(skip(db, ids))]
pub async fn session_states(db: &PgPool, ids: &[Uuid]) -> Result<Vec<SessionState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id, u.is_active, u.sessions_revoked_at, \
                COALESCE(array_agg(r.name) FILTER (WHERE r.name IS NOT NULL), '{}') AS roles \
           FROM users u \
           LEFT JOIN user_roles ur ON ur.user_id = u.id \
           LEFT JOIN roles r ON r.id = ur.role_id \
          WHERE u.id = ANY($1) \
          GROUP BY u.id",
    )
    .bind(ids)
    .fetch_all(db)
    .await
}

/// A full row, secrets included; not serialisable on purpose, and its Debug output leaves the
/// password hash and the reset-token hash out.
#[derive(Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub id: Uuid,
    /// Lowercase e-mail.
    pub email: String,
    /// argon2id PHC or legacy bcrypt.
    pub password: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Avatar URL.
    pub avatar: Option<String>,
    /// Active.
    pub is_active: bool,
    /// Settings.
    pub preferences: Value,
    /// SHA-256 hex of the reset token.
    pub password_reset_token_hash: Option<String>,
    /// Reset expiry.
    pub password_reset_expires_at: Option<DateTime<Utc>>,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

/// The user object of the API: no password, refresh or reset data.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// E-mail.
    pub email: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Avatar.
    pub avatar: Option<String>,
    /// Active.
    pub is_active: bool,
    /// Settings.
    pub preferences: Value,
    /// Assigned roles.
    pub roles: Vec<RoleRow>,
    /// Last login.
    #[serde(serialize_with = "opt_millis")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_login_at: Option<DateTime<Utc>>,
    /// Created.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Updated.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

fn opt_millis<S: serde::Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(t) => s.serialize_str(&aegis_common::time::rfc3339_millis(*t)),
        None => s.serialize_none(),
    }
}

impl User {
    /// The API view of a row.
    #[must_use]
    pub fn from_row(row: UserRow, roles: Vec<RoleRow>) -> Self {
        Self {
            id: row.id,
            email: row.email,
            first_name: row.first_name,
            last_name: row.last_name,
            avatar: row.avatar,
            is_active: row.is_active,
            preferences: row.preferences,
            roles,
            last_login_at: row.last_login_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const COLUMNS: &str = "id, email, password, first_name, last_name, avatar, is_active, preferences, \
     password_reset_token_hash, password_reset_expires_at, last_login_at, created_at, updated_at";

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Lowercase e-mail.
    pub email: &'a str,
    /// Hash.
    pub password_hash: &'a str,
    /// First name.
    pub first_name: Option<&'a str>,
    /// Last name.
    pub last_name: Option<&'a str>,
    /// Avatar.
    pub avatar: Option<&'a str>,
}

/// Inserts a user; a duplicate e-mail is a unique violation (see [`super::is_unique_violation`]).
#[tracing::instrument(skip_all, fields(email = u.email))]
pub async fn insert(db: impl PgExecutor<'_>, u: &NewUser<'_>) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO users (email, password, first_name, last_name, avatar) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    ))
    .bind(u.email)
    .bind(u.password_hash)
    .bind(u.first_name)
    .bind(u.last_name)
    .bind(u.avatar)
    .fetch_one(db)
    .await
}

/// By id.
#[tracing::instrument(skip(db))]
pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// By e-mail (compared lowercase).
#[tracing::instrument(skip(db))]
pub async fn find_by_email(
    db: impl PgExecutor<'_>,
    email: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE email = lower($1)"
    ))
    .bind(email)
    .fetch_optional(db)
    .await
}

/// By reset-token hash.
#[tracing::instrument(skip_all)]
pub async fn find_by_reset_hash(
    db: impl PgExecutor<'_>,
    hash: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE password_reset_token_hash = $1"
    ))
    .bind(hash)
    .fetch_optional(db)
    .await
}

/// The API view of one user, roles included.
#[tracing::instrument(skip(db))]
pub async fn load(db: &PgPool, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    let Some(row) = find(db, id).await? else {
        return Ok(None);
    };
    let roles = roles::of_user(db, id).await?;
    Ok(Some(User::from_row(row, roles)))
}

/// Every user with roles, oldest first.
#[tracing::instrument(skip(db))]
pub async fn list(db: &PgPool) -> Result<Vec<User>, sqlx::Error> {
    let rows: Vec<UserRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users ORDER BY created_at, id"
    ))
    .fetch_all(db)
    .await?;
    let pairs: Vec<(Uuid, RoleRow)> = sqlx::query_as::<
        _,
        (
            Uuid,
            Uuid,
            String,
            Option<String>,
            Value,
            DateTime<Utc>,
            DateTime<Utc>,
        ),
    >(
        "SELECT ur.user_id, r.id, r.name, r.description, r.permissions, r.created_at, r.updated_at \
         FROM user_roles ur JOIN roles r ON r.id = ur.role_id ORDER BY r.name",
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(
        |(uid, id, name, description, permissions, created_at, updated_at)| {
            (
                uid,
                RoleRow {
                    id,
                    name,
                    description,
                    permissions,
                    created_at,
                    updated_at,
                },
            )
        },
    )
    .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let roles = pairs
                .iter()
                .filter(|(uid, _)| *uid == row.id)
                .map(|(_, r)| r.clone())
                .collect();
            User::from_row(row, roles)
        })
        .collect())
}

/// Replaces the password hash.
#[tracing::instrument(skip_all, fields(%id))]
pub async fn set_password(
    db: impl PgExecutor<'_>,
    id: Uuid,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password = $2 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(db)
        .await
        .map(|_| ())
}

/// Records a successful login.
#[tracing::instrument(skip(db))]
pub async fn touch_last_login(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET last_login_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map(|_| ())
}

/// Profile fields a PATCH may set (already merged with the current row).
#[derive(Debug, Clone)]
pub struct Profile {
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Avatar.
    pub avatar: Option<String>,
    /// Active.
    pub is_active: bool,
}

/// Writes the profile fields.
#[tracing::instrument(skip(db, p))]
pub async fn update_profile(
    db: impl PgExecutor<'_>,
    id: Uuid,
    p: &Profile,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET first_name = $2, last_name = $3, avatar = $4, is_active = $5 WHERE id = $1")
        .bind(id)
        .bind(&p.first_name)
        .bind(&p.last_name)
        .bind(&p.avatar)
        .bind(p.is_active)
        .execute(db)
        .await
        .map(|_| ())
}

/// Deletes the user (refresh tokens and role links cascade); whether a row went.
#[tracing::instrument(skip(db))]
pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected() > 0)
}

/// Stores a reset-token hash (overwriting any previous one).
#[tracing::instrument(skip_all, fields(%id))]
pub async fn set_reset_token(
    db: impl PgExecutor<'_>,
    id: Uuid,
    hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_reset_token_hash = $2, password_reset_expires_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(expires_at)
        .execute(db)
        .await
        .map(|_| ())
}

/// Clears the reset token.
#[tracing::instrument(skip(db))]
pub async fn clear_reset_token(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_reset_token_hash = NULL, password_reset_expires_at = NULL WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map(|_| ())
}
