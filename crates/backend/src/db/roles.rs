//! `roles` and `user_roles`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

/// A role as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleRow {
    /// Id.
    pub id: Uuid,
    /// `admin`, `user`, `auditor`, `service` or `operator`.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Informational permissions.
    pub permissions: serde_json::Value,
    /// Created.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Updated.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "r.id, r.name, r.description, r.permissions, r.created_at, r.updated_at";

/// Every role, by name.
#[tracing::instrument(skip(db))]
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<RoleRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM roles r ORDER BY r.name"))
        .fetch_all(db)
        .await
}

/// The roles of one user, by name.
#[tracing::instrument(skip(db))]
pub async fn of_user(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<Vec<RoleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM roles r JOIN user_roles ur ON ur.role_id = r.id \
         WHERE ur.user_id = $1 ORDER BY r.name"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// Grants `role` (by name) to the user; already granted is fine.
#[tracing::instrument(skip(tx))]
pub async fn grant(
    tx: &mut Transaction<'_, Postgres>,
    user_id: Uuid,
    role: &str,
    assigned_by: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_roles (user_id, role_id, assigned_by) \
         SELECT $1, id, $3 FROM roles WHERE name = $2 ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(role)
    .bind(assigned_by)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// Replaces the user's roles with exactly `roles`.
#[tracing::instrument(skip(tx))]
pub async fn replace(
    tx: &mut Transaction<'_, Postgres>,
    user_id: Uuid,
    roles: &[String],
    assigned_by: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM user_roles ur USING roles r \
         WHERE ur.role_id = r.id AND ur.user_id = $1 AND NOT (r.name = ANY($2))",
    )
    .bind(user_id)
    .bind(roles)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO user_roles (user_id, role_id, assigned_by) \
         SELECT $1, id, $3 FROM roles WHERE name = ANY($2) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(roles)
    .bind(assigned_by)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}
