//! Policy-engine settings, read once with the rest of [`crate::config::Config`].
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `POLICY_EVALUATE_PUBLIC` | `false` | `true`: `/policy/evaluate` needs no credential (the original's behaviour) |
//! | `POLICY_CACHE_TTL_SECONDS` | 300 | lifetime of a cached decision; 0 disables the decision cache |
//! | `POLICY_CACHE_MAX_ENTRIES` | 10000 | decisions each replica keeps in its in-process cache (the least useful are evicted) |
//! | `POLICY_REFRESH_INTERVAL_SECONDS` | 10 | how often a replica compares its compiled set with the database (and retries a failed cache-version bump) |
//! | `POLICY_AUDIT_BUFFER` | 10000 | evaluations queued for the audit writer; when full, evaluations wait (never dropped) |
//! | `POLICY_AUDIT_BATCH_SIZE` | 500 | rows per multi-row insert |

use std::time::Duration;

use aegis_common::config::{ConfigError, Env};

/// Policy-engine settings.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// `/policy/evaluate` without credentials.
    pub evaluate_public: bool,
    /// Decision-cache TTL (zero = no cache).
    pub cache_ttl: Duration,
    /// Decision-cache capacity (entries).
    pub cache_max_entries: usize,
    /// Database re-check period.
    pub refresh_interval: Duration,
    /// Audit queue capacity.
    pub audit_buffer: usize,
    /// Audit batch size.
    pub audit_batch_size: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            evaluate_public: false,
            cache_ttl: Duration::from_secs(300),
            cache_max_entries: 10_000,
            refresh_interval: Duration::from_secs(10),
            audit_buffer: 10_000,
            audit_batch_size: 500,
        }
    }
}

impl PolicyConfig {
    /// Reads the variables above; errors name the variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let refresh: u64 = env.parse("POLICY_REFRESH_INTERVAL_SECONDS", &[], 10u64)?;
        let buffer: usize = env.parse("POLICY_AUDIT_BUFFER", &[], 10_000usize)?;
        let batch: usize = env.parse("POLICY_AUDIT_BATCH_SIZE", &[], 500usize)?;
        let max_entries: usize = env.parse("POLICY_CACHE_MAX_ENTRIES", &[], 10_000usize)?;
        if max_entries == 0 {
            return Err(ConfigError::invalid(
                "POLICY_CACHE_MAX_ENTRIES",
                "must be at least 1 (POLICY_CACHE_TTL_SECONDS=0 disables the cache)",
            ));
        }
        if refresh == 0 {
            return Err(ConfigError::invalid(
                "POLICY_REFRESH_INTERVAL_SECONDS",
                "must be at least 1",
            ));
        }
        Ok(Self {
            evaluate_public: env.bool("POLICY_EVALUATE_PUBLIC", &[], false)?,
            cache_ttl: Duration::from_secs(env.parse("POLICY_CACHE_TTL_SECONDS", &[], 300u64)?),
            cache_max_entries: max_entries,
            refresh_interval: Duration::from_secs(refresh),
            audit_buffer: buffer.max(1),
            audit_batch_size: batch.clamp(1, 5_000),
        })
    }
}
