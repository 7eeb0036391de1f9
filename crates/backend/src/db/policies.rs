//! `policies` and `policy_revision`.

use aegis_policy::{Effect, PolicyDefinition, PolicyType, Priority, RemediationMode};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// Columns every query returns.
const COLUMNS: &str = "id, name, description, type, effect, conditions, actions, resources, \
    priority, is_active, remediation_mode, created_by, created_at, updated_at";

/// A stored policy, serialised as the API's policy object.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRow {
    /// Id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Policy type.
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub policy_type: String,
    /// `allow` or `deny`.
    pub effect: String,
    /// Condition object.
    pub conditions: Value,
    /// Action patterns.
    pub actions: Vec<String>,
    /// Resource patterns.
    pub resources: Vec<String>,
    /// 0..=1000.
    pub priority: i32,
    /// Candidate at all.
    pub is_active: bool,
    /// Guardrail mode (`self_healing` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation_mode: Option<String>,
    /// Creator.
    pub created_by: Option<Uuid>,
    /// Created.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

impl PolicyRow {
    /// The engine's definition of this row (the id becomes the last tie-breaker).
    pub fn definition(&self) -> anyhow::Result<PolicyDefinition> {
        let conditions: Map<String, Value> = match &self.conditions {
            Value::Object(m) => m.clone(),
            _ => anyhow::bail!("policy {} has non-object conditions", self.id),
        };
        let policy_type: PolicyType = self
            .policy_type
            .parse()
            .map_err(|e| anyhow::anyhow!("policy {}: {e}", self.id))?;
        let effect = match self.effect.as_str() {
            "allow" => Effect::Allow,
            "deny" => Effect::Deny,
            other => anyhow::bail!("policy {} has effect {other:?}", self.id),
        };
        let priority = Priority::new(i64::from(self.priority))
            .map_err(|e| anyhow::anyhow!("policy {}: {e}", self.id))?;
        let remediation_mode = match &self.remediation_mode {
            None => None,
            Some(m) => Some(serde_json::from_value::<RemediationMode>(Value::String(
                m.clone(),
            ))?),
        };
        Ok(PolicyDefinition {
            id: Some(self.id.to_string()),
            name: self.name.clone(),
            description: self.description.clone(),
            policy_type,
            effect,
            conditions,
            actions: self.actions.clone(),
            resources: self.resources.clone(),
            priority,
            is_active: self.is_active,
            remediation_mode,
        })
    }
}

/// Filters of `GET /policy`.
#[derive(Debug, Clone, Default)]
pub struct PolicyFilter {
    /// Exact type.
    pub policy_type: Option<String>,
    /// Active or not.
    pub is_active: Option<bool>,
}

/// Every policy (or those matching `f`), priority descending then name.
#[tracing::instrument(skip(db))]
pub async fn list(db: &PgPool, f: &PolicyFilter) -> Result<Vec<PolicyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM policies \
         WHERE ($1::text IS NULL OR type = $1) AND ($2::boolean IS NULL OR is_active = $2) \
         ORDER BY priority DESC, name ASC"
    ))
    .bind(f.policy_type.as_deref())
    .bind(f.is_active)
    .fetch_all(db)
    .await
}

/// One policy.
#[tracing::instrument(skip(db))]
pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<PolicyRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM policies WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

fn mode(d: &PolicyDefinition) -> Option<&'static str> {
    d.remediation_mode.map(RemediationMode::as_str)
}

/// Inserts a validated definition; a duplicate name is a unique violation.
#[tracing::instrument(skip(db, d), fields(name = %d.name))]
pub async fn insert(
    db: impl PgExecutor<'_>,
    d: &PolicyDefinition,
    created_by: Option<Uuid>,
) -> Result<PolicyRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO policies (name, description, type, effect, conditions, actions, resources, \
         priority, is_active, remediation_mode, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
    ))
    .bind(&d.name)
    .bind(&d.description)
    .bind(d.policy_type.as_str())
    .bind(d.effect.as_str())
    .bind(Value::Object(d.conditions.clone()))
    .bind(&d.actions)
    .bind(&d.resources)
    .bind(i32::from(d.priority.get()))
    .bind(d.is_active)
    .bind(mode(d))
    .bind(created_by)
    .fetch_one(db)
    .await
}

/// Inserts a seed definition unless a policy with its name exists; true when inserted.
pub async fn insert_if_absent(db: &PgPool, d: &PolicyDefinition) -> Result<bool, sqlx::Error> {
    let res = sqlx::query(
        "INSERT INTO policies (name, description, type, effect, conditions, actions, resources, \
         priority, is_active, remediation_mode) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&d.name)
    .bind(&d.description)
    .bind(d.policy_type.as_str())
    .bind(d.effect.as_str())
    .bind(Value::Object(d.conditions.clone()))
    .bind(&d.actions)
    .bind(&d.resources)
    .bind(i32::from(d.priority.get()))
    .bind(d.is_active)
    .bind(mode(d))
    .execute(db)
    .await?;
    Ok(res.rows_affected() > 0)
}

/// Replaces every field of policy `id` with `d`; `None` when it does not exist.
#[tracing::instrument(skip(db, d))]
pub async fn update(
    db: impl PgExecutor<'_>,
    id: Uuid,
    d: &PolicyDefinition,
) -> Result<Option<PolicyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE policies SET name = $2, description = $3, type = $4, effect = $5, \
         conditions = $6, actions = $7, resources = $8, priority = $9, is_active = $10, \
         remediation_mode = $11 WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&d.name)
    .bind(&d.description)
    .bind(d.policy_type.as_str())
    .bind(d.effect.as_str())
    .bind(Value::Object(d.conditions.clone()))
    .bind(&d.actions)
    .bind(&d.resources)
    .bind(i32::from(d.priority.get()))
    .bind(d.is_active)
    .bind(mode(d))
    .fetch_optional(db)
    .await
}

/// Deletes policy `id`; its name, or `None` when it did not exist.
#[tracing::instrument(skip(db))]
pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("DELETE FROM policies WHERE id = $1 RETURNING name")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The policy-set revision (bumped by a trigger on every change to `policies`) and when it
/// last moved.
pub async fn revision(db: impl PgExecutor<'_>) -> Result<(i64, DateTime<Utc>), sqlx::Error> {
    sqlx::query_as("SELECT revision, updated_at FROM policy_revision WHERE id")
        .fetch_one(db)
        .await
}

/// Every policy with the revision they belong to, read in one snapshot.
pub async fn load_all(db: &PgPool) -> Result<((i64, DateTime<Utc>), Vec<PolicyRow>), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let rev = revision(&mut *tx).await?;
    let rows = sqlx::query_as(&format!("SELECT {COLUMNS} FROM policies"))
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((rev, rows))
}
