//! The guardrails around an action: the cooldown per deployment and the cap per namespace,
//! checked and taken under the namespace's lock together with the move they gate.

use aegis_remediation::guardrail::{self, Blocked, Limits};
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::steps::{Gate, Transition, apply};
use super::{Incident, IncidentEvent};

/// What [`guarded_transition`] did.
#[derive(Debug)]
pub enum Guarded {
    /// The incident moved (and, when the guard takes the slot, `acted_at` is set).
    Moved(Box<(Incident, IncidentEvent)>),
    /// The incident was no longer in a status the move starts from: nothing was written.
    MovedOn,
    /// A guardrail held: nothing was written.
    Blocked(Blocked),
}

/// How [`guarded_transition`] treats the guardrails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Check the cooldown of (namespace, deployment) and the per-namespace hourly cap first;
    /// with `take`, stamp `acted_at` (the incident takes an action slot).
    Enforce {
        /// The cooldown, in seconds.
        cooldown_seconds: i64,
        /// Actions per namespace per hour.
        max_per_hour: i64,
        /// Take the slot (otherwise only check).
        take: bool,
    },
    /// Take the slot without checking (an admin approved the action).
    Force,
}

/// The guardrails and the transition they gate, together: when `guard` allows it, applies
/// `t` and (when the guard takes the slot) stamps `acted_at` in the same statement, so a slot
/// is never taken by an incident that did not move. Enforcing guards are serialised per
/// namespace with a transaction-scoped advisory lock, so two incidents cannot both take the
/// last slot; the checks run after the lock is held, in a statement of their own (the move
/// itself, which they gate), so its snapshot sees every slot taken before. When nothing moved,
/// a second look under the same lock tells a guardrail from an incident that moved on.
#[tracing::instrument(skip(db, incident, t), fields(incident_id = %incident.id, to = %t.to.to()))]
pub async fn guarded_transition(
    db: &PgPool,
    incident: &Incident,
    guard: Guard,
    t: &Transition<'_>,
) -> Result<Guarded, sqlx::Error> {
    let moved = |row: Option<(Incident, IncidentEvent)>| match row {
        Some(row) => Guarded::Moved(Box::new(row)),
        None => Guarded::MovedOn,
    };
    let Guard::Enforce {
        cooldown_seconds,
        max_per_hour,
        take,
    } = guard
    else {
        return Ok(moved(apply(db, incident.id, t, true, None).await?));
    };
    let gate = || Gate {
        namespace: &incident.namespace,
        deployment: &incident.deployment,
        cooldown_seconds,
        max_per_hour,
    };
    let mut tx = lock_namespace(db, &incident.namespace).await?;
    // The usual case, guardrails passing, is one statement: the move with the checks in its
    // WHERE clause.
    if let Some(row) = apply(&mut *tx, incident.id, t, take, Some(gate())).await? {
        tx.commit().await?;
        return Ok(moved(Some(row)));
    }
    // Nothing moved: a guardrail held, or the incident moved on. Still under the lock, the
    // check says which (and a cooldown that ran out in between lets the move go ahead).
    let (last, recent) = guard_check(&mut *tx, incident.id, &gate()).await?;
    let limits = Limits {
        cooldown_seconds,
        max_per_hour,
    };
    let since_last = last.map(|last| (Utc::now() - last).num_seconds());
    if let Some(blocked) = guardrail::blocked(limits, since_last, recent) {
        tx.rollback().await?;
        return Ok(Guarded::Blocked(blocked));
    }
    let row = apply(&mut *tx, incident.id, t, take, None).await?;
    if row.is_some() {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(moved(row))
}

/// The guardrails' inputs for incident `id`: the latest action on the deployment (one probe of
/// `incidents_deployment_acted_at_idx`) and the count of the namespace's last hour, which
/// stops at the cap (reaching it is all the check needs to know).
async fn guard_check(
    db: impl PgExecutor<'_>,
    id: Uuid,
    gate: &Gate<'_>,
) -> Result<(Option<DateTime<Utc>>, i64), sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT (SELECT acted_at FROM incidents
                    WHERE namespace = $1 AND deployment = $2 AND acted_at IS NOT NULL
                      AND id <> $3
                    ORDER BY acted_at DESC LIMIT 1) AS "last_acted_at?",
                  (SELECT count(*) FROM (SELECT 1 FROM incidents
                    WHERE namespace = $1 AND acted_at > now() - interval '1 hour'
                      AND id <> $3 LIMIT $4) AS recent) AS "recent!""#,
        gate.namespace,
        gate.deployment,
        id,
        gate.max_per_hour.max(0),
    )
    .fetch_one(db)
    .await?;
    Ok((row.last_acted_at, row.recent))
}

/// A transaction holding the namespace's guardrail lock, taken in the `BEGIN` itself so that
/// it costs no round trip of its own. The key is `hashtextextended('aegis-remediation:' ||
/// namespace, 0)` in every replica and version. The namespace travels hex-encoded, so nothing
/// but hex digits is formatted into the statement, whatever the namespace holds.
async fn lock_namespace(
    db: &PgPool,
    namespace: &str,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    db.begin_with(format!(
        "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('aegis-remediation:' || \
         convert_from(decode('{}', 'hex'), 'UTF8'), 0))",
        hex::encode(namespace)
    ))
    .await
}
