//! Fixed-window rate limits in Redis, shared by every replica.
//!
//! Key: `rate-limit:<subject>:<METHOD>:<route template incl. prefix>`; subject = the verified
//! principal (user id or API-key id) when the route authenticated one, else the client IP. INCR
//! and the first EXPIRE run in one Lua script, so a key can never be left without a TTL. When
//! Redis is unreachable the request is allowed and `rate_limit_backend_errors_total` counts it
//! (fail-open, documented trade-off).
//!
//! Use the [`RateLimit`] extractor in a handler's argument list *after* the authentication and
//! role extractors and *before* path and body extractors, which gives the API's check order
//! (401 → 403 → 429 → 400). The limit comes from [`rule_for`] (the table of [`RULES`], else the
//! `RATE_LIMIT_TTL`/`RATE_LIMIT_MAX` default); add a row to [`RULES`] for a route with its own.

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use axum::{
    extract::{FromRef, FromRequestParts, MatchedPath},
    http::{Method, request::Parts},
};

use super::{AuthContext, client::ClientInfo, principal::Principal};
use crate::error::ApiError;

/// Whose requests share a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// Always the client IP.
    Ip,
    /// The authenticated principal, else the client IP.
    Principal,
}

/// One limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Window length.
    pub window: Duration,
    /// Requests allowed per window.
    pub max: u64,
    /// Bucket owner.
    pub subject: Subject,
}

/// The routes with limits of their own: method, route template relative to the API prefix, window
/// seconds, maximum, subject.
pub const RULES: &[(&str, &str, u64, u64, Subject)] = &[
    ("POST", "/auth/signup", 3600, 5, Subject::Ip),
    ("POST", "/auth/login", 900, 10, Subject::Ip),
    ("POST", "/auth/forgot-password", 3600, 5, Subject::Ip),
    ("POST", "/auth/reset-password", 900, 10, Subject::Ip),
    ("POST", "/auth/refresh", 60, 30, Subject::Ip),
    ("GET", "/users/me", 60, 30, Subject::Principal),
    ("GET", "/users", 60, 20, Subject::Principal),
    ("POST", "/users", 60, 20, Subject::Principal),
    ("GET", "/settings", 60, 30, Subject::Principal),
    ("PATCH", "/settings", 60, 20, Subject::Principal),
    ("GET", "/policy/evaluate", 60, 100, Subject::Principal),
    ("POST", "/policy/evaluate", 60, 100, Subject::Principal),
    ("POST", "/policy", 60, 20, Subject::Principal),
    ("GET", "/policy", 60, 30, Subject::Principal),
    ("GET", "/policy/audit/logs", 60, 20, Subject::Principal),
    (
        "GET",
        "/metrics/policy-evaluation-counts",
        60,
        30,
        Subject::Principal,
    ),
    ("POST", "/ai/predict", 60, 30, Subject::Principal),
    ("POST", "/executor/action", 60, 60, Subject::Ip),
];

/// Routes never limited (relative to the prefix).
pub const EXCLUDED: &[&str] = &[
    "/health",
    "/health/ping",
    "/health/ready",
    "/metrics",
    "/prometheus",
    "/executor/health",
];

/// The rule for `method` on `route` (relative to the API prefix); `None` = not limited.
#[must_use]
pub fn rule_for(auth: &AuthContext, method: &Method, route: &str) -> Option<Rule> {
    if EXCLUDED.contains(&route) {
        return None;
    }
    let explicit = RULES
        .iter()
        .find(|(m, r, ..)| *m == method.as_str() && *r == route)
        .map(|&(_, _, window, max, subject)| Rule {
            window: Duration::from_secs(window),
            max,
            subject,
        });
    Some(explicit.unwrap_or(Rule {
        window: auth.config.rate_limit_ttl,
        max: auth.config.rate_limit_max,
        subject: Subject::Principal,
    }))
}

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
",
    )
});

/// Counts one hit on `key` (already prefixed) within `window`: the count and the milliseconds
/// left, or `None` when Redis is unavailable.
pub async fn hit(auth: &AuthContext, key: &str, window: Duration) -> Option<(u64, u64)> {
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
    let mut invocation = SCRIPT.key(key);
    invocation.arg(window_ms);
    let invocation = &invocation;
    let call = auth
        .redis
        .run(|mut conn| async move { invocation.invoke_async::<(u64, i64)>(&mut conn).await })
        .await;
    match call {
        Ok((count, ttl)) => Some((count, u64::try_from(ttl).unwrap_or(0))),
        Err(e @ aegis_common::redis_conn::RedisUnavailable::Failed(_)) => {
            tracing::warn!(error = %e, "rate-limit script failed");
            None
        }
        Err(_) => None,
    }
}

/// Counts a request of `subject` on `method route_template` against `rule`; 429 with
/// `Retry-After` when over the limit. Fail-open on Redis errors.
pub async fn enforce(
    auth: &AuthContext,
    rule: Rule,
    subject: &str,
    method: &Method,
    route_template: &str,
) -> Result<(), ApiError> {
    if auth.config.rate_limit_disabled {
        return Ok(());
    }
    let key = auth
        .redis
        .key(&format!("rate-limit:{subject}:{method}:{route_template}"));
    let Some((count, ttl_ms)) = hit(auth, &key, rule.window).await else {
        auth.metrics.rate_limit_backend_errors.inc();
        tracing::warn!(
            route = route_template,
            "rate limit skipped: Redis unavailable (fail-open)"
        );
        return Ok(());
    };
    if count > rule.max {
        auth.metrics
            .rate_limit_exceeded
            .with_label_values(&[route_template])
            .inc();
        return Err(ApiError::TooManyRequests {
            message: "Too many requests, please try again later".into(),
            retry_after: ttl_ms.div_ceil(1000).max(1),
        });
    }
    Ok(())
}

/// Extractor that applies the route's rule; see the module docs for where to put it.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit;

impl<St> FromRequestParts<St> for RateLimit
where
    Arc<AuthContext>: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let Some(template) = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
        else {
            return Ok(RateLimit);
        };
        let auth = Arc::<AuthContext>::from_ref(state);
        let prefix = auth.api_prefix.as_str();
        let route = template
            .strip_prefix(prefix)
            .filter(|r| r.starts_with('/'))
            .unwrap_or(&template);
        let Some(rule) = rule_for(&auth, &parts.method, route) else {
            return Ok(RateLimit);
        };
        let subject = match (rule.subject, parts.extensions.get::<Principal>()) {
            (Subject::Principal, Some(p)) => p.rate_limit_subject(),
            _ => {
                let Ok(client) = ClientInfo::from_request_parts(parts, state).await;
                client.ip_string()
            }
        };
        enforce(&auth, rule, &subject, &parts.method, &template).await?;
        Ok(RateLimit)
    }
}
