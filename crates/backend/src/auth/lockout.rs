//! Account lockout (backend.md §1.3, doubling per the issue): failed logins per lowercased
//! e-mail are counted in Redis for `LOGIN_LOCKOUT_SECONDS`; reaching `LOGIN_LOCKOUT_THRESHOLD`
//! locks the e-mail for `LOGIN_LOCKOUT_SECONDS × 2^(n-1)` (n = lockouts in the last 24 h),
//! capped at `LOGIN_LOCKOUT_MAX_SECONDS`. Unknown e-mails are counted too, so a lockout never
//! reveals whether an account exists. Fail-open like every Redis use.

use std::{sync::LazyLock, time::Duration};

use crate::state::AppState;

static FAIL_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if count < tonumber(ARGV[2]) then return 0 end
local level = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 86400)
local ms = tonumber(ARGV[1])
for i = 2, level do
  ms = ms * 2
  if ms >= tonumber(ARGV[3]) then break end
end
if ms > tonumber(ARGV[3]) then ms = tonumber(ARGV[3]) end
redis.call('SET', KEYS[3], '1', 'PX', ms)
redis.call('DEL', KEYS[1])
return ms
",
    )
});

struct Keys {
    fail: String,
    level: String,
    lock: String,
}

fn keys(state: &AppState, email: &str) -> Keys {
    let email = email.to_lowercase();
    Keys {
        fail: state.redis.key(&format!("login-fail:{email}")),
        level: state.redis.key(&format!("login-fail:{email}:lockouts")),
        lock: state.redis.key(&format!("login-fail:{email}:locked")),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Seconds left of an active lockout for `email`, if any.
pub async fn locked_for(state: &AppState, email: &str) -> Option<u64> {
    if state.config.auth.lockout_threshold == 0 {
        return None;
    }
    let mut conn = state.redis.connection().await?;
    let k = keys(state, email);
    let mut cmd = redis::cmd("PTTL");
    cmd.arg(&k.lock);
    let call = cmd.query_async::<i64>(&mut conn);
    match tokio::time::timeout(state.redis.timeout(), call).await {
        Ok(Ok(ms)) if ms > 0 => Some(u64::try_from(ms).unwrap_or(0).div_ceil(1000)),
        Ok(Ok(_)) => None,
        _ => {
            state.backend_metrics.rate_limit_backend_errors.inc();
            None
        }
    }
}

/// Records a failed login; returns the new lockout length when this failure started one.
pub async fn record_failure(state: &AppState, email: &str) -> Option<Duration> {
    let cfg = &state.config.auth;
    if cfg.lockout_threshold == 0 {
        return None;
    }
    let Some(mut conn) = state.redis.connection().await else {
        state.backend_metrics.rate_limit_backend_errors.inc();
        return None;
    };
    let k = keys(state, email);
    let mut invocation = FAIL_SCRIPT.key(&k.fail);
    invocation
        .key(&k.level)
        .key(&k.lock)
        .arg(millis(cfg.lockout_base))
        .arg(cfg.lockout_threshold)
        .arg(millis(cfg.lockout_max));
    let call = invocation.invoke_async::<u64>(&mut conn);
    match tokio::time::timeout(state.redis.timeout(), call).await {
        Ok(Ok(0)) => None,
        Ok(Ok(ms)) => Some(Duration::from_millis(ms)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "lockout script failed");
            state.backend_metrics.rate_limit_backend_errors.inc();
            None
        }
        Err(_) => {
            state.backend_metrics.rate_limit_backend_errors.inc();
            None
        }
    }
}

/// A successful login clears the failure counter, the lock and the doubling level.
pub async fn clear(state: &AppState, email: &str) {
    if state.config.auth.lockout_threshold == 0 {
        return;
    }
    let Some(mut conn) = state.redis.connection().await else {
        return;
    };
    let k = keys(state, email);
    let mut cmd = redis::cmd("DEL");
    cmd.arg(&k.fail).arg(&k.level).arg(&k.lock);
    let call = cmd.query_async::<i64>(&mut conn);
    if let Ok(Err(e)) = tokio::time::timeout(state.redis.timeout(), call).await {
        tracing::warn!(error = %e, "failed to clear the login-failure counter");
    }
}
