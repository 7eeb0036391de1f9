//! The watcher's memory of failure episodes, in PostgreSQL so that every replica shares it and
//! a restart or a change of leader forgets nothing: a workload's failure is reported once per
//! episode, once more each time it comes back after having cleared, and a new episode begins
//! only after the workload has been free of failures for the quiet period.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// The open episode of a workload.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Episode {
    /// Row id.
    pub id: i64,
    /// When the failure was last seen gone, while it is gone.
    pub cleared_at: Option<DateTime<Utc>>,
}

/// The open episode of `namespace/deployment`, if any.
pub async fn open(db: &PgPool, namespace: &str, deployment: &str) -> sqlx::Result<Option<Episode>> {
    sqlx::query_as(
        "SELECT id, cleared_at FROM watch_episodes
         WHERE namespace = $1 AND deployment = $2 AND ended_at IS NULL",
    )
    .bind(namespace)
    .bind(deployment)
    .fetch_optional(db)
    .await
}

/// Whether a restart was recommended for the workload within `cooldown`.
pub async fn restarted_within(
    db: &PgPool,
    namespace: &str,
    deployment: &str,
    cooldown: std::time::Duration,
) -> sqlx::Result<bool> {
    let seconds = f64::from(u32::try_from(cooldown.as_secs()).unwrap_or(u32::MAX));
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM watch_episodes
         WHERE namespace = $1 AND deployment = $2 AND recommended_action = 'restart_pod'
           AND last_signal_at > now() - make_interval(secs => $3))",
    )
    .bind(namespace)
    .bind(deployment)
    .bind(seconds)
    .fetch_one(db)
    .await
}

/// The open episode's failure is back before it counted as gone: it was never cleared.
pub async fn failing_again(db: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE watch_episodes SET cleared_at = NULL WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Records a reported failure: a new episode, or the return of the open one's failure.
/// `false` when another replica opened the episode first.
pub async fn reported(
    db: &PgPool,
    open: Option<&Episode>,
    report: &Report<'_>,
) -> sqlx::Result<bool> {
    if let Some(episode) = open {
        sqlx::query(
            "UPDATE watch_episodes
             SET cleared_at = NULL, last_signal_at = now(), signals = signals + 1,
                 recommended_action = $2
             WHERE id = $1",
        )
        .bind(episode.id)
        .bind(report.action)
        .execute(db)
        .await?;
        return Ok(true);
    }
    let inserted = sqlx::query(
        "INSERT INTO watch_episodes (namespace, deployment, failure, recommended_action, fingerprint)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (namespace, deployment) WHERE ended_at IS NULL DO NOTHING",
    )
    .bind(report.namespace)
    .bind(report.deployment)
    .bind(report.failure)
    .bind(report.action)
    .bind(report.fingerprint)
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// What was reported.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Deployment.
    pub deployment: &'a str,
    /// The failure's wire name.
    pub failure: &'a str,
    /// The recommended action's wire name.
    pub action: &'a str,
    /// The signal's fingerprint.
    pub fingerprint: &'a str,
}

/// Marks the open episodes of `namespace` whose workloads no longer fail (all but
/// `failing`) as cleared, and ends those cleared for longer than `quiet`.
pub async fn clear_all_but(
    db: &PgPool,
    namespace: &str,
    failing: &[String],
    quiet: std::time::Duration,
) -> sqlx::Result<()> {
    let seconds = f64::from(u32::try_from(quiet.as_secs()).unwrap_or(u32::MAX))
        + f64::from(quiet.subsec_millis()) / 1000.0;
    sqlx::query(
        "UPDATE watch_episodes
         SET cleared_at = COALESCE(cleared_at, now()),
             ended_at = CASE WHEN cleared_at < now() - make_interval(secs => $3)
                             THEN now() END
         WHERE namespace = $1 AND ended_at IS NULL AND NOT (deployment = ANY($2))",
    )
    .bind(namespace)
    .bind(failing)
    .bind(seconds)
    .execute(db)
    .await?;
    Ok(())
}
