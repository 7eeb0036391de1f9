//! The audit trail: rows and their Loki lines ([`store`]), the hash-chain verifier
//! ([`chain`]), the Loki shipper ([`loki`]) and the periodic maintenance (nonce purge, rate-limit
//! windows, retention).

pub mod chain;
pub mod loki;
pub mod store;

use std::time::Duration;

use sqlx::PgPool;

/// Purges nonces older than twice the skew every minute, old rate-limit windows hourly, and
/// final audit rows older than the retention daily (first run one minute after start), and
/// refreshes `daily_action_summary` hourly.
pub async fn run_maintenance(db: PgPool, max_skew: Duration, retention_days: i32) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut minutes: u64 = 0;
    let keep = i64::try_from(max_skew.as_secs().saturating_mul(2)).unwrap_or(i64::MAX);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query(
            "DELETE FROM signature_nonces WHERE seen_at < now() - make_interval(secs => $1)",
        )
        .bind(keep as f64)
        .execute(&db)
        .await
        {
            tracing::warn!(error = %e, "nonce purge failed");
        }
        if minutes.is_multiple_of(60)
            && let Err(e) = sqlx::query("SELECT cleanup_rate_limit_windows()")
                .execute(&db)
                .await
        {
            tracing::warn!(error = %e, "rate-limit window cleanup failed");
        }
        if minutes % 60 == 2
            && let Err(e) = sqlx::query("SELECT refresh_action_summary()")
                .execute(&db)
                .await
        {
            tracing::warn!(error = %e, "daily_action_summary refresh failed");
        }
        if minutes % (24 * 60) == 1 {
            match sqlx::query_scalar::<_, i64>("SELECT purge_audit_logs($1)")
                .bind(retention_days)
                .fetch_one(&db)
                .await
            {
                Ok(n) => tracing::info!(purged = n, retention_days, "audit retention purge"),
                Err(e) => tracing::warn!(error = %e, "audit retention purge failed"),
            }
        }
        minutes += 1;
    }
}
