//! Safety controls: namespaces, the HTTP throttle, per-action rate limits,
//! the per-target cooldown, v2 nonces and the per-resource lock.
//!
//! Where the state lives, and why:
//! * the HTTP throttle is in memory per replica, as in the original;
//! * per-action rate limits are fixed windows in `rate_limit_tracking` (one upsert per request),
//!   so every replica counts against the same window;
//! * the cooldown reads the newest executed audit row of the target, which every replica sees;
//! * nonces live in `signature_nonces` (primary key = the nonce), shared by every replica;
//! * the nonce, the rate window, the cooldown and the lock are one statement ([`gate`]), with
//!   the side effects and the error precedence of four;
//! * the per-resource lock is a session-level `pg_try_advisory_lock` held on a pooled
//!   connection that goes back to the pool only once unlocked (it is closed otherwise), so a
//!   lock can never leak into another request, and a crash of the replica releases it with the
//!   session.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use aegis_common::{contracts::ActionType, db::strip_nul_str};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, pool::PoolConnection};

use crate::{
    config::{Config, DENIED_NAMESPACES},
    error::ApiError,
};

/// allow-list first (the original's message), then the hard deny-list.
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

/// `namespace` as a metric label: itself when allowed, else `other`. Label values must come
/// from a closed set, and a rejected request's namespace is whatever its sender wrote.
#[must_use]
pub fn namespace_label<'a>(config: &'a Config, namespace: &str) -> &'a str {
    config
        .allowed_namespaces
        .iter()
        .find(|a| *a == namespace)
        .map_or("other", String::as_str)
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

/// Sliding-log throttle per (route, client IP); rejected hits count too.
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

/// What the step-4 gate decides for one request; see [`gate`].
#[derive(Debug)]
pub struct GateRequest<'a> {
    /// The v2 nonce to claim (`None` for v1 or unsigned requests).
    pub nonce: Option<&'a str>,
    /// Whether the request passed the checks between the nonce and the rate limit (parameter
    /// schema, policy decision); only such a request is counted, cooled down and locked.
    pub reached_rate: bool,
    /// The action.
    pub action: ActionType,
    /// The action's namespace.
    pub namespace: &'a str,
    /// `requestedBy`, or `anonymous`.
    pub requested_by: &'a str,
    /// `pod` or `deployment`.
    pub resource_type: &'a str,
    /// The target's name.
    pub resource_name: &'a str,
}

/// What the gate found. The caller reports the first refusal in the order: replay, then
/// its own schema and policy checks, then rate, cooldown, its slot and the lock.
#[derive(Debug)]
pub struct Gate {
    /// `false` when the nonce was seen before (a replay).
    pub fresh: bool,
    /// `Err` with `Retry-After` seconds when over the action's window.
    pub rate: Result<(), u64>,
    /// `Err` with `Retry-After` seconds while the target cools down.
    pub cooldown: Result<(), u64>,
    /// The resource lock, held when everything before it passed and no other action holds it.
    pub lock: Option<ResourceLock>,
}

/// Step 4's shared state in one statement on the connection that will hold the lock: the
/// nonce is claimed; the rate window counts the request only if the nonce was fresh and the
/// request got that far; the target's newest executed audit row gives the cooldown; and
/// `pg_try_advisory_lock` runs only when all of that passed. Each part has the side effects it
/// had as its own statement, in the same order, so which error wins is unchanged, at one
/// round trip instead of four.
const GATE: &str = "WITH claimed AS (
    INSERT INTO signature_nonces (nonce) SELECT $1 WHERE $1::text IS NOT NULL
    ON CONFLICT (nonce) DO NOTHING
    RETURNING 1),
  first_use AS (SELECT ($1::text IS NULL OR EXISTS (SELECT 1 FROM claimed)) AS fresh),
  rate AS (
    INSERT INTO rate_limit_tracking
        (action_type, namespace, requested_by, window_start, window_end, request_count)
    SELECT $2, $3, $4, ws, ws + make_interval(secs => $5), 1
      FROM (SELECT to_timestamp(floor(extract(epoch FROM now()) / $5) * $5) AS ws) w, first_use
     WHERE $6 AND first_use.fresh
    ON CONFLICT (action_type, namespace, requested_by, window_start)
    DO UPDATE SET request_count = rate_limit_tracking.request_count + 1,
                  last_request_at = now()
    RETURNING request_count, window_end),
  cooldown AS (
    SELECT extract(epoch FROM max(created_at) + make_interval(secs => $8) - now()) * 1000
           AS left_ms
      FROM action_audit_logs
     WHERE $8 > 0 AND resource_type = $9 AND namespace = $3 AND resource_name = $10
       AND status IN ('pending', 'in_progress', 'completed')),
  gate AS (
    SELECT first_use.fresh, rate.request_count, rate.window_end,
           CASE WHEN cooldown.left_ms > 0 THEN cooldown.left_ms END AS cooldown_ms
      FROM first_use LEFT JOIN rate ON true CROSS JOIN cooldown)
SELECT fresh, request_count, window_end, cooldown_ms::float8,
       CASE WHEN fresh AND $11 AND coalesce(request_count <= $7, true) AND cooldown_ms IS NULL
            THEN pg_try_advisory_lock(hashtext($12))
            ELSE false
       END AS locked
  FROM gate";

/// A row of [`GATE`].
#[derive(sqlx::FromRow)]
struct GateRow {
    fresh: bool,
    request_count: Option<i32>,
    window_end: Option<DateTime<Utc>>,
    cooldown_ms: Option<f64>,
    locked: bool,
}

/// Runs the step-4 gate (see [`GATE`]) for one request.
pub async fn gate(
    db: &PgPool,
    config: &Config,
    req: &GateRequest<'_>,
) -> Result<Gate, sqlx::Error> {
    let limit = match req.action {
        ActionType::RestartPod => Some(config.restart_limit),
        ActionType::ScaleDeployment => Some(config.scale_limit),
        ActionType::RollbackDeployment => Some(config.rollback_limit),
        ActionType::DeletePod | ActionType::UpdateConfig => None,
    };
    let (ttl, max) = limit.map_or((1.0, i32::MAX), |l| {
        (
            l.ttl_secs.max(1) as f64,
            i32::try_from(l.max).unwrap_or(i32::MAX),
        )
    });
    // PostgreSQL refuses U+0000 in text parameters. The gate runs before the parameter schema
    // is reported, so a name may still hold one here; such a request is refused by the schema
    // and never counted or locked, and its names are only bound, stripped.
    let namespace = strip_nul_str(req.namespace);
    let requested_by = strip_nul_str(req.requested_by);
    let resource_name = strip_nul_str(req.resource_name);
    let key = format!(
        "aegis-executor:{}:{namespace}/{resource_name}",
        req.resource_type
    );
    let mut conn = db.acquire().await?;
    let row = sqlx::query_as::<_, GateRow>(GATE)
        .bind(req.nonce)
        .bind(req.action.as_str())
        .bind(&*namespace)
        .bind(&*requested_by)
        .bind(ttl)
        .bind(req.reached_rate && limit.is_some())
        .bind(max)
        .bind(config.action_cooldown.as_secs_f64())
        .bind(req.resource_type)
        .bind(&*resource_name)
        .bind(req.reached_rate)
        .bind(&key)
        .fetch_one(&mut *conn)
        .await;
    let GateRow {
        fresh,
        request_count,
        window_end,
        cooldown_ms,
        locked,
    } = match row {
        Ok(row) => row,
        Err(e) => {
            // Whether the lock was taken is unknown: the connection must not be reused.
            conn.close_on_drop();
            return Err(e);
        }
    };
    let rate = match (request_count, window_end) {
        (Some(count), Some(end)) if count > max => {
            let left = (end - Utc::now()).num_milliseconds().max(0);
            Err(u64::try_from(left / 1000 + 1).unwrap_or(1))
        }
        _ => Ok(()),
    };
    let cooldown = match cooldown_ms {
        Some(ms) => Err((ms / 1000.0).floor() as u64 + 1),
        None => Ok(()),
    };
    Ok(Gate {
        fresh,
        rate,
        cooldown,
        lock: locked.then(|| ResourceLock {
            conn: Some(conn),
            key,
        }),
    })
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
