//! `remediation_modes`: the kill switch. One row per scope: `*` (global) or a namespace.
//!
//! A change is written together with its audit event and its notification, in one
//! transaction: a mode never changes without the record that says who changed it and why.

use aegis_policy::RemediationMode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::{PgExecutor, PgPool, Row, postgres::PgRow};
use uuid::Uuid;

/// The scope of the global mode.
pub const GLOBAL: &str = "*";

/// One stored mode.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModeSetting {
    /// `*` for the global mode, else the namespace.
    pub scope: String,
    /// `off`, `dry_run`, `approval` or `auto`.
    #[schema(value_type = String)]
    pub mode: RemediationMode,
    /// Why it was set, if the caller said.
    pub reason: Option<String>,
    /// Who set it (an e-mail, or `REMEDIATION_MODE` for the seeded global mode).
    pub updated_by: String,
    /// When.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

fn setting(row: &PgRow) -> Result<ModeSetting, sqlx::Error> {
    let mode: String = row.try_get("mode")?;
    let mode = RemediationMode::parse(&mode).ok_or_else(|| {
        sqlx::Error::Decode(
            format!("unknown remediation mode {mode:?} in remediation_modes").into(),
        )
    })?;
    Ok(ModeSetting {
        scope: row.try_get("scope")?,
        mode,
        reason: row.try_get("reason")?,
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str = "scope, mode, reason, updated_by, updated_at";

/// Stores `mode` as the global mode unless one is stored already (the environment variable
/// is only the initial value).
#[tracing::instrument(skip(db))]
pub async fn seed_global(db: &PgPool, mode: RemediationMode) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO remediation_modes (scope, mode, updated_by) VALUES ($1, $2, 'REMEDIATION_MODE') \
         ON CONFLICT (scope) DO NOTHING",
    )
    .bind(GLOBAL)
    .bind(mode.as_str())
    .execute(db)
    .await
    .map(|_| ())
}

/// Every stored mode: the global one first, then the namespaces by name.
#[tracing::instrument(skip(db))]
pub async fn all(db: impl PgExecutor<'_>) -> Result<Vec<ModeSetting>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM remediation_modes ORDER BY scope <> '*', scope"
    ))
    .fetch_all(db)
    .await?
    .iter()
    .map(setting)
    .collect()
}

/// The global mode and `namespace`'s own, as stored (one primary-key probe each).
#[tracing::instrument(skip(db))]
pub async fn for_namespace(
    db: impl PgExecutor<'_>,
    namespace: &str,
) -> Result<(Option<ModeSetting>, Option<ModeSetting>), sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM remediation_modes WHERE scope IN ('*', $1)"
    ))
    .bind(namespace)
    .fetch_all(db)
    .await?;
    let mut global = None;
    let mut own = None;
    for row in &rows {
        let s = setting(row)?;
        if s.scope == GLOBAL {
            global = Some(s);
        } else {
            own = Some(s);
        }
    }
    Ok((global, own))
}

/// Who changes a mode.
#[derive(Debug, Clone, Copy)]
pub struct Changer<'a> {
    /// The user's id.
    pub user_id: Uuid,
    /// The user's e-mail.
    pub email: &'a str,
}

/// What a change did: the setting before (none if the scope had no row) and after (none when
/// a namespace's own mode was removed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Before.
    pub before: Option<ModeSetting>,
    /// After.
    pub after: Option<ModeSetting>,
}

/// Sets the mode of `scope`, or removes a namespace's own mode (`mode` = `None`), with its
/// audit event and its `mode_changed` notification in the same transaction. The row is
/// locked while it changes, so two concurrent changes are applied one after the other and
/// each records what it replaced.
#[tracing::instrument(skip(db, reason))]
pub async fn change(
    db: &PgPool,
    scope: &str,
    mode: Option<RemediationMode>,
    reason: Option<&str>,
    by: Changer<'_>,
) -> Result<Change, sqlx::Error> {
    // A transaction-scoped lock per scope: the row lock below holds nothing while the scope
    // has no row yet, and two first changes must still be applied one after the other.
    let mut tx = db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('aegis-mode:' || $1, 0))")
        .bind(scope)
        .execute(&mut *tx)
        .await?;
    let before = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM remediation_modes WHERE scope = $1 FOR UPDATE"
    ))
    .bind(scope)
    .fetch_optional(&mut *tx)
    .await?
    .as_ref()
    .map(setting)
    .transpose()?;
    if mode.is_none() && before.is_none() {
        // Nothing to remove: nothing changed, so nothing is audited or notified.
        tx.rollback().await?;
        return Ok(Change {
            before: None,
            after: None,
        });
    }
    let after = match mode {
        Some(mode) => Some(setting(
            &sqlx::query(&format!(
                "INSERT INTO remediation_modes (scope, mode, reason, updated_by) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (scope) DO UPDATE SET mode = $2, reason = $3, updated_by = $4, \
                     updated_at = now() \
                 RETURNING {COLUMNS}"
            ))
            .bind(scope)
            .bind(mode.as_str())
            .bind(reason)
            .bind(by.email)
            .fetch_one(&mut *tx)
            .await?,
        )?),
        None => {
            sqlx::query("DELETE FROM remediation_modes WHERE scope = $1")
                .bind(scope)
                .execute(&mut *tx)
                .await?;
            None
        }
    };
    let change = Change { before, after };
    let details = json!({
        "scope": scope,
        "from": change.before.as_ref().map(|s| s.mode.as_str()),
        "to": change.after.as_ref().map(|s| s.mode.as_str()),
        "reason": reason,
    });
    sqlx::query(
        "INSERT INTO audit_events (event_type, user_id, entity_type, entity_id, details) \
         VALUES ('remediation_mode_changed', $1, 'remediation_mode', $2, $3)",
    )
    .bind(by.user_id)
    .bind(scope)
    .bind(&details)
    .execute(&mut *tx)
    .await?;
    let namespace = (scope != GLOBAL).then_some(scope);
    super::notifications::enqueue(
        &mut *tx,
        &super::notifications::NewEvent {
            event_type: super::notifications::EventType::ModeChanged,
            incident_id: None,
            severity: "high",
            namespace,
            payload: &json!({
                "scope": scope,
                "from": details["from"],
                "to": details["to"],
                "reason": reason,
                "changedBy": by.email,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(change)
}
