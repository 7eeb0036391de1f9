//! Safety controls (executor.md §6): namespaces, the HTTP throttle, per-action rate limits,
//! the per-target cooldown, v2 nonces and the per-resource lock.
//!
//! Where the state lives, and why:
//! * the HTTP throttle is in memory per replica, as in the original (§6.3);
//! * per-action rate limits are fixed windows in `rate_limit_tracking` (one upsert per request),
//!   so every replica counts against the same window;
//! * the cooldown reads the newest executed audit row of the target, which every replica sees;
//! * nonces live in `signature_nonces` (primary key = the nonce), shared by every replica;
//! * the per-resource lock is a session-level `pg_try_advisory_lock` held on a dedicated pooled
//!   connection that is closed (never returned to the pool) when the action ends, so a lock can
//!   never leak into another request, and a crash of the replica releases it with the session.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use aegis_common::contracts::ActionType;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, pool::PoolConnection};

use crate::{
    config::{Config, DENIED_NAMESPACES},
    error::ApiError,
};

/// §6.1: allow-list first (the original's message), then the hard deny-list.
pub fn check_namespace(
    config: &Config,
    namespace: Option<&str>,
    display: &str,
) -> Result<(), ApiError> {
    let listed = namespace.is_some_and(|ns| config.allowed_namespaces.iter().any(|a| a == ns));
    if !listed {
        return Err(ApiError::Forbidden(format!(
            "Namespace {display} is not in allowed list: {}",
            config.allowed_namespaces.join(", ")
        )));
    }
    if DENIED_NAMESPACES.contains(&display) {
        return Err(ApiError::Forbidden(format!(
            "Namespace {display} is forbidden"
        )));
    }
    Ok(())
}

/// What the throttle decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The limit.
    pub limit: u32,
    /// Hits left in the window.
    pub remaining: u32,
    /// Seconds until the oldest hit expires.
    pub reset_secs: u64,
}

/// Sliding-log throttle per (route, client IP); rejected hits count too (§6.3).
#[derive(Debug)]
pub struct HttpThrottle {
    ttl: Duration,
    max: u32,
    hits: Mutex<HashMap<(String, IpAddr), VecDeque<Instant>>>,
}

impl HttpThrottle {
    /// A throttle allowing `max` hits per `ttl`.
    #[must_use]
    pub fn new(ttl: Duration, max: u32) -> Self {
        Self {
            ttl,
            max,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Records a hit and decides.
    pub fn hit(&self, route: &str, ip: IpAddr) -> ThrottleDecision {
        let now = Instant::now();
        let Ok(mut all) = self.hits.lock() else {
            // A poisoned lock only means another request panicked mid-update: fail open.
            return ThrottleDecision {
                allowed: true,
                limit: self.max,
                remaining: self.max,
                reset_secs: self.ttl.as_secs(),
            };
        };
        if all.len() > 10_000 {
            all.retain(|_, log| {
                log.back()
                    .is_some_and(|t| now.duration_since(*t) < self.ttl)
            });
        }
        let log = all.entry((route.to_owned(), ip)).or_default();
        while log
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.ttl)
        {
            log.pop_front();
        }
        log.push_back(now);
        let count = u32::try_from(log.len()).unwrap_or(u32::MAX);
        let reset_secs = log
            .front()
            .map(|t| self.ttl.saturating_sub(now.duration_since(*t)))
            .unwrap_or(self.ttl)
            .as_secs_f64()
            .ceil() as u64;
        ThrottleDecision {
            allowed: count <= self.max,
            limit: self.max,
            remaining: self.max.saturating_sub(count),
            reset_secs: reset_secs.max(1),
        }
    }
}

/// §6.4: counts this request in its fixed window; `Err` with `Retry-After` seconds when over.
pub async fn check_action_rate(
    db: &PgPool,
    config: &Config,
    action: ActionType,
    namespace: &str,
    requested_by: &str,
) -> Result<Result<(), u64>, sqlx::Error> {
    let limit = match action {
        ActionType::RestartPod => config.restart_limit,
        ActionType::ScaleDeployment => config.scale_limit,
        ActionType::RollbackDeployment => config.rollback_limit,
        ActionType::DeletePod | ActionType::UpdateConfig => return Ok(Ok(())),
    };
    let ttl = i64::try_from(limit.ttl_secs).unwrap_or(i64::MAX);
    let (count, window_end): (i32, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO rate_limit_tracking
             (action_type, namespace, requested_by, window_start, window_end, request_count)
         SELECT $1, $2, $3, ws, ws + make_interval(secs => $4), 1
           FROM (SELECT to_timestamp(floor(extract(epoch FROM now()) / $4) * $4) AS ws) w
         ON CONFLICT (action_type, namespace, requested_by, window_start)
         DO UPDATE SET request_count = rate_limit_tracking.request_count + 1,
                       last_request_at = now()
         RETURNING request_count, window_end",
    )
    .bind(action.as_str())
    .bind(namespace)
    .bind(requested_by)
    .bind(ttl as f64)
    .fetch_one(db)
    .await?;
    if i64::from(count) > i64::from(limit.max) {
        let left = (window_end - Utc::now()).num_milliseconds().max(0);
        Ok(Err(u64::try_from(left / 1000 + 1).unwrap_or(1)))
    } else {
        Ok(Ok(()))
    }
}

/// The per-target cooldown: `Err(seconds left)` when an action on the same target was executed
/// less than `ACTION_COOLDOWN_SECONDS` ago.
pub async fn check_cooldown(
    db: &PgPool,
    cooldown: Duration,
    resource_type: &str,
    namespace: &str,
    resource_name: &str,
) -> Result<Result<(), u64>, sqlx::Error> {
    if cooldown.is_zero() {
        return Ok(Ok(()));
    }
    let last: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(created_at) FROM action_audit_logs
          WHERE resource_type = $1 AND namespace = $2 AND resource_name = $3
            AND status IN ('pending', 'in_progress', 'completed')",
    )
    .bind(resource_type)
    .bind(namespace)
    .bind(resource_name)
    .fetch_one(db)
    .await?;
    let Some(last) = last else {
        return Ok(Ok(()));
    };
    let elapsed = (Utc::now() - last).to_std().unwrap_or_default();
    if elapsed < cooldown {
        Ok(Err((cooldown - elapsed).as_secs() + 1))
    } else {
        Ok(Ok(()))
    }
}

/// Records a v2 nonce; `false` when it was seen before (a replay).
pub async fn claim_nonce(db: &PgPool, nonce: &str) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO signature_nonces (nonce) VALUES ($1) ON CONFLICT (nonce) DO NOTHING",
    )
    .bind(nonce)
    .execute(db)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// A held per-resource lock. [`ResourceLock::release`] unlocks it at once and hands the
/// connection back to the pool; if that is skipped, fails or is cancelled, dropping the lock
/// closes its connection, which releases the lock with the session. A connection that may
/// still hold the lock never goes back to the pool.
#[derive(Debug)]
pub struct ResourceLock {
    /// `None` once released and returned to the pool.
    conn: Option<PoolConnection<Postgres>>,
    key: String,
}

impl ResourceLock {
    /// Unlocks now, so the next action on the resource does not race the connection's close,
    /// and returns the connection to the pool (reconnecting per action cost PostgreSQL a new
    /// backend process for every action).
    pub async fn release(mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let unlocked = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(&self.key)
            .fetch_one(&mut **conn)
            .await;
        match unlocked {
            // Unlocked: the connection is clean and goes back to the pool.
            Ok(true) => drop(self.conn.take()),
            Ok(false) => {
                tracing::warn!("advisory unlock found no lock; closing the connection");
            }
            Err(e) => {
                tracing::warn!(error = %e, "advisory unlock failed; the lock ends with its connection");
            }
        }
    }
}

impl Drop for ResourceLock {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close_on_drop();
        }
    }
}

/// `pg_try_advisory_lock(hashtext(kind/ns/name))`; `None` when another action holds it.
pub async fn try_lock_resource(
    db: &PgPool,
    resource_type: &str,
    namespace: &str,
    resource_name: &str,
) -> Result<Option<ResourceLock>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    let key = format!("aegis-executor:{resource_type}:{namespace}/{resource_name}");
    let got = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(&key)
        .fetch_one(&mut *conn)
        .await;
    match got {
        Ok(true) => Ok(Some(ResourceLock {
            conn: Some(conn),
            key,
        })),
        // Not taken: the connection holds nothing and goes back to the pool.
        Ok(false) => Ok(None),
        Err(e) => {
            // Whether the lock was taken is unknown: never reuse the connection.
            conn.close_on_drop();
            Err(e)
        }
    }
}
