//! Remediation settings: mode, guardrails, verification delay and the scaling bounds.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `REMEDIATION_MODE` | `dry_run` | the initial global mode: `off` (record incidents only), `dry_run`, `approval` or `auto`. It is stored the first time a backend starts on its database; after that `PUT /remediation/mode` changes it at run time. A namespace's own mode and a policy's `remediationMode` can only make it stricter |
//! | `REMEDIATION_APPROVAL_TIMEOUT_SECONDS` | `1800` | an action waiting for approval longer than this expires (the incident becomes `expired`, and the next signal opens a new one) |
//! | `REMEDIATION_COOLDOWN_SECONDS` | `300` | no second action on the same deployment within this time |
//! | `REMEDIATION_MAX_ACTIONS_PER_NAMESPACE_PER_HOUR` | `6` | cap on actions per namespace in any rolling hour |
//! | `REMEDIATION_VERIFY_DELAY_SECONDS` | `120` | wait before checking that an action worked |
//! | `REMEDIATION_PRODUCTION_NAMESPACES` | `production` | namespaces where any rollback needs an admin's approval |
//! | `REMEDIATION_MAX_REPLICAS` | `10` | upper bound of a scale-up |
//! | `REMEDIATION_SCALE_FACTOR` | `1.5` | scale-up factor (at least +1 replica) |
//! | `REMEDIATION_APPROVAL_SCALE_RATIO` | `2` | a scale to more than this many times the current replicas needs approval |
//! | `ALERTMANAGER_WEBHOOK_TOKEN` | unset | bearer token of `POST /alerts/webhook/alertmanager`; unset = the webhook refuses every call |

use std::time::Duration;

use aegis_common::config::{AppEnv, ConfigError, Env, secret_weakness};
use aegis_policy::RemediationMode;
use secrecy::{ExposeSecret, SecretString};

/// The loop's settings.
#[derive(Debug, Clone)]
pub struct RemediationConfig {
    /// The initial global mode (the stored one wins once there is one).
    pub mode: RemediationMode,
    /// How long an action waits for approval before it expires.
    pub approval_timeout: Duration,
    /// Cooldown per target.
    pub cooldown: Duration,
    /// Actions per namespace per rolling hour.
    pub max_actions_per_namespace_per_hour: i64,
    /// Verification delay.
    pub verify_delay: Duration,
    /// Namespaces where a rollback always needs approval.
    pub production_namespaces: Vec<String>,
    /// Scale-up ceiling.
    pub max_replicas: i32,
    /// Scale-up factor.
    pub scale_factor: f64,
    /// Scaling beyond `current × ratio` needs approval.
    pub approval_scale_ratio: f64,
    /// Bearer of the Alertmanager webhook.
    pub alertmanager_token: Option<SecretString>,
}

impl RemediationConfig {
    /// Reads and validates the settings; errors name the variable.
    pub fn from_env(env: &Env, app_env: AppEnv) -> Result<Self, ConfigError> {
        let raw_mode = env.string("REMEDIATION_MODE", &[], "dry_run");
        let mode = RemediationMode::parse(&raw_mode).ok_or_else(|| {
            ConfigError::invalid(
                "REMEDIATION_MODE",
                format!("expected off, dry_run, approval or auto, got {raw_mode:?}"),
            )
        })?;
        let max_per_hour: i64 =
            env.parse("REMEDIATION_MAX_ACTIONS_PER_NAMESPACE_PER_HOUR", &[], 6)?;
        if max_per_hour < 0 {
            return Err(ConfigError::invalid(
                "REMEDIATION_MAX_ACTIONS_PER_NAMESPACE_PER_HOUR",
                "must not be negative",
            ));
        }
        let max_replicas: i32 = env.parse("REMEDIATION_MAX_REPLICAS", &[], 10)?;
        if max_replicas < 1 {
            return Err(ConfigError::invalid(
                "REMEDIATION_MAX_REPLICAS",
                "must be at least 1",
            ));
        }
        let scale_factor: f64 = env.parse("REMEDIATION_SCALE_FACTOR", &[], 1.5)?;
        if !(scale_factor.is_finite() && scale_factor > 1.0 && scale_factor <= 10.0) {
            return Err(ConfigError::invalid(
                "REMEDIATION_SCALE_FACTOR",
                "must be a number above 1 and at most 10",
            ));
        }
        let ratio: f64 = env.parse("REMEDIATION_APPROVAL_SCALE_RATIO", &[], 2.0)?;
        if !(ratio.is_finite() && ratio >= 1.0) {
            return Err(ConfigError::invalid(
                "REMEDIATION_APPROVAL_SCALE_RATIO",
                "must be a number of at least 1",
            ));
        }
        let approval_timeout: u64 = env.parse("REMEDIATION_APPROVAL_TIMEOUT_SECONDS", &[], 1800)?;
        if !(1..=604_800).contains(&approval_timeout) {
            return Err(ConfigError::invalid(
                "REMEDIATION_APPROVAL_TIMEOUT_SECONDS",
                "must be between 1 and 604800 (7 days)",
            ));
        }
        let alertmanager_token =
            env.secret("ALERTMANAGER_WEBHOOK_TOKEN", &[], AppEnv::Development)?;
        if app_env.is_production()
            && let Some(reason) = alertmanager_token
                .as_ref()
                .and_then(|t| secret_weakness(t.expose_secret()))
        {
            return Err(ConfigError::WeakSecret {
                name: "ALERTMANAGER_WEBHOOK_TOKEN".into(),
                reason,
            });
        }
        Ok(Self {
            mode,
            approval_timeout: Duration::from_secs(approval_timeout),
            cooldown: Duration::from_secs(env.parse(
                "REMEDIATION_COOLDOWN_SECONDS",
                &[],
                300u64,
            )?),
            max_actions_per_namespace_per_hour: max_per_hour,
            verify_delay: Duration::from_secs(env.parse(
                "REMEDIATION_VERIFY_DELAY_SECONDS",
                &[],
                120u64,
            )?),
            production_namespaces: env.list(
                "REMEDIATION_PRODUCTION_NAMESPACES",
                &[],
                &["production"],
            ),
            max_replicas,
            scale_factor,
            approval_scale_ratio: ratio,
            alertmanager_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_cautious() {
        let cfg =
            RemediationConfig::from_env(&Env::from_pairs::<&str, &str>([]), AppEnv::Development)
                .unwrap();
        assert_eq!(cfg.mode, RemediationMode::DryRun);
        assert_eq!(cfg.approval_timeout, Duration::from_secs(1800));
        assert_eq!(cfg.cooldown, Duration::from_secs(300));
        assert_eq!(cfg.max_actions_per_namespace_per_hour, 6);
        assert_eq!(cfg.verify_delay, Duration::from_secs(120));
        assert_eq!(cfg.production_namespaces, vec!["production"]);
        assert_eq!(cfg.max_replicas, 10);
        assert!((cfg.scale_factor - 1.5).abs() < f64::EPSILON);
        assert!(cfg.alertmanager_token.is_none());
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("REMEDIATION_MODE", "yolo"),
            ("REMEDIATION_COOLDOWN_SECONDS", "-1"),
            ("REMEDIATION_MAX_REPLICAS", "0"),
            ("REMEDIATION_SCALE_FACTOR", "0.5"),
            ("REMEDIATION_SCALE_FACTOR", "NaN"),
            ("REMEDIATION_APPROVAL_SCALE_RATIO", "0.9"),
            ("REMEDIATION_MAX_ACTIONS_PER_NAMESPACE_PER_HOUR", "-3"),
            ("REMEDIATION_APPROVAL_TIMEOUT_SECONDS", "0"),
        ] {
            let err = RemediationConfig::from_env(&Env::from_pairs([(name, value)]), AppEnv::Test)
                .unwrap_err();
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn production_refuses_a_weak_webhook_token_but_allows_none() {
        let env = Env::from_pairs([("ALERTMANAGER_WEBHOOK_TOKEN", "changeme")]);
        let err = RemediationConfig::from_env(&env, AppEnv::Production).unwrap_err();
        assert!(
            err.to_string().contains("ALERTMANAGER_WEBHOOK_TOKEN"),
            "{err}"
        );
        assert!(
            RemediationConfig::from_env(&Env::from_pairs::<&str, &str>([]), AppEnv::Production)
                .is_ok()
        );
    }
}
