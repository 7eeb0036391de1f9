//! The Loki shipper: drains `loki_outbox` to `POST {LOKI_URL}/loki/api/v1/push`.
//!
//! One batch is selected `FOR UPDATE SKIP LOCKED` (so several replicas never ship the same
//! line), pushed, and marked shipped in the same transaction only when Loki answered 2xx. A
//! failure rolls back, counts `executor_loki_push_failures_total` and backs off exponentially
//! (capped by `LOKI_RETRY_MAX_BACKOFF_MS`). An outage therefore only delays lines; the request
//! path never waits for Loki.
//!
//! Delivery is at least once: a push that Loki stored but answered after
//! `LOKI_PUSH_TIMEOUT_MS` counts as failed, and its lines are sent again. The copies are
//! identical (same stream labels, timestamp and line), which Loki drops on ingestion, so a
//! query sees each line once; a receiver other than Loki must deduplicate on that triple.

use std::{collections::HashMap, sync::Arc, time::Duration};

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::metrics::ExecutorMetrics;

/// Shipper settings.
#[derive(Debug, Clone)]
pub struct ShipperConfig {
    /// Loki base URL.
    pub url: String,
    /// One push.
    pub timeout: Duration,
    /// Lines per push.
    pub batch_size: i64,
    /// Idle poll interval.
    pub poll_interval: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    labels: Value,
    line: String,
    timestamp_ns: i64,
}

/// The push body: one stream per distinct label set (in order of first appearance), lines in
/// outbox order.
fn push_body(rows: &[OutboxRow]) -> Value {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut streams: Vec<(Value, Vec<Value>)> = Vec::new();
    for row in rows {
        let key = row.labels.to_string();
        let i = *index.entry(key).or_insert_with(|| {
            streams.push((row.labels.clone(), Vec::new()));
            streams.len() - 1
        });
        if let Some(entry) = streams.get_mut(i) {
            entry
                .1
                .push(json!([row.timestamp_ns.to_string(), row.line]));
        }
    }
    json!({
        "streams": streams
            .into_iter()
            .map(|(labels, values)| json!({"stream": labels, "values": values}))
            .collect::<Vec<_>>()
    })
}

/// Updates the backlog gauge.
pub async fn refresh_backlog(db: &PgPool, metrics: &ExecutorMetrics) {
    if let Ok(n) =
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM loki_outbox WHERE shipped_at IS NULL")
            .fetch_one(db)
            .await
    {
        metrics.loki_outbox_backlog.set(n);
    }
}

/// Ships one batch. `Ok(n)` lines shipped (0 = nothing to do).
async fn ship_once(
    db: &PgPool,
    http: &reqwest::Client,
    cfg: &ShipperConfig,
    metrics: &ExecutorMetrics,
) -> Result<usize, String> {
    let mut tx = db.begin().await.map_err(|e| e.to_string())?;
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "SELECT id, labels, line, timestamp_ns FROM loki_outbox
          WHERE shipped_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(cfg.batch_size)
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let body = push_body(&rows);
    let sent = http
        .post(format!("{}/loki/api/v1/push", cfg.url))
        .timeout(cfg.timeout)
        .json(&body)
        .send()
        .await;
    let outcome = match sent {
        Ok(res) if res.status().is_success() => Ok(()),
        Ok(res) => Err(format!("Loki answered {}", res.status())),
        Err(e) => Err(format!("Loki unreachable: {e}")),
    };
    if let Err(e) = outcome {
        let _ = sqlx::query("UPDATE loki_outbox SET attempts = attempts + 1 WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await;
        let _ = tx.commit().await;
        metrics.loki_push_failures.inc();
        return Err(e);
    }
    sqlx::query("UPDATE loki_outbox SET shipped_at = now() WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    metrics
        .loki_lines_shipped
        .inc_by(u64::try_from(ids.len()).unwrap_or(0));
    Ok(ids.len())
}

/// Runs the shipper until the task is aborted.
pub async fn run_shipper(
    db: PgPool,
    cfg: ShipperConfig,
    metrics: ExecutorMetrics,
    notify: Arc<Notify>,
) {
    let http = match reqwest::Client::builder().timeout(cfg.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Loki HTTP client; lines stay in the outbox");
            return;
        }
    };
    let min_backoff = Duration::from_millis(100);
    let mut backoff = min_backoff;
    let mut last_cleanup = std::time::Instant::now();
    loop {
        match ship_once(&db, &http, &cfg, &metrics).await {
            Ok(0) => {
                backoff = min_backoff;
                refresh_backlog(&db, &metrics).await;
                if last_cleanup.elapsed() > Duration::from_secs(3600) {
                    last_cleanup = std::time::Instant::now();
                    let _ = sqlx::query(
                        "DELETE FROM loki_outbox WHERE shipped_at < now() - interval '1 day'",
                    )
                    .execute(&db)
                    .await;
                }
                let _ = tokio::time::timeout(cfg.poll_interval, notify.notified()).await;
            }
            Ok(_) => {
                backoff = min_backoff;
                refresh_backlog(&db, &metrics).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "Loki push failed; lines stay in the outbox");
                refresh_backlog(&db, &metrics).await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(cfg.max_backoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_grouped_by_label_set() {
        let rows = vec![
            OutboxRow {
                id: 1,
                labels: json!({"job":"aegis-executor","status":"pending"}),
                line: "a".into(),
                timestamp_ns: 1,
            },
            OutboxRow {
                id: 2,
                labels: json!({"job":"aegis-executor","status":"completed"}),
                line: "b".into(),
                timestamp_ns: 2,
            },
            OutboxRow {
                id: 3,
                labels: json!({"job":"aegis-executor","status":"pending"}),
                line: "c".into(),
                timestamp_ns: 3,
            },
        ];
        let body = push_body(&rows);
        let streams = body["streams"].as_array().unwrap();
        assert_eq!(streams.len(), 2);
        let total: usize = streams
            .iter()
            .map(|s| s["values"].as_array().unwrap().len())
            .sum();
        assert_eq!(total, 3);
        assert!(
            streams
                .iter()
                .any(|s| s["values"][0][0] == "1" && s["values"][1][1] == "c")
        );
    }
}
