//! Notification delivery settings.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `NOTIFY_POLL_MS` | `500` | how often each replica routes new events and claims due deliveries |
//! | `NOTIFY_DELIVERY_TIMEOUT_SECONDS` | `10` | one attempt's deadline (connect, send, answer); an attempt a replica did not finish is due again this long plus 5 s later |
//! | `NOTIFY_RETRY_BASE_MS` | `1000` | the first retry's wait; each further one doubles, up to 5 minutes, with jitter |
//! | `NOTIFY_DEAD_AFTER_SECONDS` | `3600` | a delivery still failing this long after its event becomes `dead` (shown by `GET /notifications/deliveries?status=dead`) |
//! | `NOTIFY_MAX_IN_FLIGHT` | `16` | attempts in flight per replica, so a slow channel holds only its own |
//! | `NOTIFY_ALERTMANAGER_HOLD_SECONDS` | `86400` | how long a failed or escalated incident stays a firing Alertmanager alert |
//! | `NOTIFY_RETENTION_DAYS` | `30` | events older than this, with nothing left to deliver, are deleted with their deliveries |
//! | `PUBLIC_URL` | `http://localhost:3000` | the backend's address as people reach it: notifications link to incidents under it |

use std::time::Duration;

use aegis_common::config::{ConfigError, Env};

/// How notifications are delivered.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Routing and claiming period.
    pub poll: Duration,
    /// One attempt's deadline.
    pub delivery_timeout: Duration,
    /// The first retry's wait.
    pub retry_base: Duration,
    /// When a failing delivery is given up.
    pub dead_after: Duration,
    /// Attempts in flight per replica.
    pub max_in_flight: usize,
    /// How long a failed or escalated incident fires in Alertmanager.
    pub alertmanager_hold: Duration,
    /// Days an event is kept once nothing is left to deliver.
    pub retention_days: i64,
    /// The backend's public base URL, without a trailing slash.
    pub public_url: String,
}

impl NotifyConfig {
    /// Reads and validates the settings; errors name the variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let positive = |name: &str, value: u64| {
            if value == 0 {
                Err(ConfigError::invalid(name, "must be at least 1"))
            } else {
                Ok(value)
            }
        };
        let poll = positive("NOTIFY_POLL_MS", env.parse("NOTIFY_POLL_MS", &[], 500)?)?;
        let timeout = positive(
            "NOTIFY_DELIVERY_TIMEOUT_SECONDS",
            env.parse("NOTIFY_DELIVERY_TIMEOUT_SECONDS", &[], 10)?,
        )?;
        let base = positive(
            "NOTIFY_RETRY_BASE_MS",
            env.parse("NOTIFY_RETRY_BASE_MS", &[], 1000)?,
        )?;
        let dead = positive(
            "NOTIFY_DEAD_AFTER_SECONDS",
            env.parse("NOTIFY_DEAD_AFTER_SECONDS", &[], 3600)?,
        )?;
        let in_flight = positive(
            "NOTIFY_MAX_IN_FLIGHT",
            env.parse("NOTIFY_MAX_IN_FLIGHT", &[], 16)?,
        )?;
        let hold = positive(
            "NOTIFY_ALERTMANAGER_HOLD_SECONDS",
            env.parse("NOTIFY_ALERTMANAGER_HOLD_SECONDS", &[], 86_400)?,
        )?;
        let retention = positive(
            "NOTIFY_RETENTION_DAYS",
            env.parse("NOTIFY_RETENTION_DAYS", &[], 30)?,
        )?;
        let public_url = env.string("PUBLIC_URL", &[], "http://localhost:3000");
        let parsed = reqwest::Url::parse(&public_url)
            .map_err(|e| ConfigError::invalid("PUBLIC_URL", e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::invalid(
                "PUBLIC_URL",
                "must be an http or https URL",
            ));
        }
        Ok(Self {
            poll: Duration::from_millis(poll),
            delivery_timeout: Duration::from_secs(timeout),
            retry_base: Duration::from_millis(base),
            dead_after: Duration::from_secs(dead),
            max_in_flight: usize::try_from(in_flight).unwrap_or(usize::MAX),
            alertmanager_hold: Duration::from_secs(hold),
            retention_days: i64::try_from(retention).unwrap_or(i64::MAX),
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// How long an attempt holds its delivery: a replica that dies mid-attempt leaves the
    /// delivery due again after this.
    #[must_use]
    pub fn lease(&self) -> Duration {
        self.delivery_timeout + Duration::from_secs(5)
    }

    /// The wait before attempt `attempts + 1`: the base doubled per attempt made, at most
    /// five minutes, then scaled by `jitter` (drawn from [0.5, 1]) so that replicas and
    /// deliveries that failed together do not retry together.
    #[must_use]
    pub fn backoff(&self, attempts: i32, jitter: f64) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        let full = self
            .retry_base
            .saturating_mul(1u32 << doublings)
            .min(Duration::from_secs(300));
        full.mul_f64(jitter.clamp(0.5, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let cfg = NotifyConfig::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(cfg.delivery_timeout, Duration::from_secs(10));
        assert_eq!(cfg.dead_after, Duration::from_secs(3600));
        assert_eq!(cfg.public_url, "http://localhost:3000");
        for (name, value) in [
            ("NOTIFY_POLL_MS", "0"),
            ("NOTIFY_DELIVERY_TIMEOUT_SECONDS", "x"),
            ("NOTIFY_DEAD_AFTER_SECONDS", "0"),
            ("PUBLIC_URL", "ftp://aegis"),
            ("PUBLIC_URL", "not a url"),
        ] {
            let err = NotifyConfig::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes_and_jitter_only_shortens_it() {
        let cfg =
            NotifyConfig::from_env(&Env::from_pairs([("NOTIFY_RETRY_BASE_MS", "1000")])).unwrap();
        assert_eq!(cfg.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(cfg.backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(cfg.backoff(4, 1.0), Duration::from_secs(8));
        assert_eq!(cfg.backoff(30, 1.0), Duration::from_secs(300));
        assert_eq!(cfg.backoff(2, 0.5), Duration::from_secs(1));
        assert_eq!(
            cfg.backoff(2, 0.1),
            Duration::from_secs(1),
            "jitter is at least half"
        );
        assert_eq!(cfg.backoff(0, 1.0), Duration::from_secs(1));
    }
}
