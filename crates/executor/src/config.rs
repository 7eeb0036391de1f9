//! Executor configuration, read once from the environment.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `APP_ENV` (`NODE_ENV`, `ENVIRONMENT`) | `development` | `development`, `test` or `production` |
//! | `HOST` / `PORT` | `0.0.0.0` / `4000` | listen address (port 0 = any free port) |
//! | `HTTP_HEADER_READ_TIMEOUT_MS` / `HTTP_MAX_CONNECTIONS` / `SHUTDOWN_DRAIN_TIMEOUT_MS` | `10000` / `4096` / `20000` | a request header's deadline, connections served at once, the SIGTERM drain's deadline ([`aegis_common::server::ServeLimits`]) |
//! | `SERVICE_NAME` | `aegis-executor` | `service` field of logs |
//! | `DATABASE_URL` or `DB_HOST` (`EXECUTOR_DB_HOST`), `DB_PORT` (`EXECUTOR_DB_PORT`), `DB_USERNAME` (`EXECUTOR_DB_USER`), `DB_PASSWORD` (`EXECUTOR_DB_PASSWORD`), `DB_DATABASE` (`EXECUTOR_DB_NAME`), `DB_SSL_MODE` (`EXECUTOR_DB_SSL_MODE`; `EXECUTOR_DB_SSL=true` = `require`), `DB_POOL_MAX` (`EXECUTOR_DB_POOL_MAX`) | local `aegis_executor` outside production, pool 10 | PostgreSQL; the pool gets `MAX_CONCURRENT_ACTIONS` extra connections for the per-resource advisory locks |
//! | `AUTO_MIGRATE` | `true`, except `false` in production | run migrations at start-up |
//! | `EXECUTOR_HMAC_SECRET`, else `ACTION_SIGNING_KEY`, else `JWT_SECRET` | none | HMAC key; required when signatures are required; production: ≥ 32 bytes, no placeholder |
//! | `REQUIRE_ACTION_SIGNATURE` | `true` | `false` skips verification; refused in production |
//! | `REQUIRE_SIGNATURE_TIMESTAMP` | `true` in production, else `false` | refuse v1 (timestamp-less) signatures |
//! | `SIGNATURE_MAX_SKEW_SECONDS` | `300` | v2 timestamp window; nonces are kept twice as long |
//! | `ENABLE_SIGNATURE_HELPER` | `false` | serve `POST /executor/generate-signature` (refused in production) |
//! | `KUBECONFIG_PATH`, else `KUBECONFIG`, else `~/.kube/config`, else in-cluster | — | Kubernetes client |
//! | `IN_CLUSTER` (`K8S_IN_CLUSTER`) | `false` | use the service-account config |
//! | `ALLOWED_NAMESPACES` | `default` | comma list; `kube-system`, `kube-public`, `kube-node-lease` are always refused |
//! | `MIN_REPLICAS` / `MAX_REPLICAS` | `0` / `100` | `scale_deployment` bounds |
//! | `K8S_REQUEST_TIMEOUT_MS` / `ACTION_TIMEOUT_MS` | `10000` / `30000` | per Kubernetes call / per action |
//! | `MAX_CONCURRENT_ACTIONS` | `10` | in-flight actions per replica (503 beyond) |
//! | `HTTP_RATE_LIMIT_TTL` / `HTTP_RATE_LIMIT_MAX` | `60` / `100` | per-IP throttle of `/executor/*` (sliding log) |
//! | `RATE_LIMIT_RESTART_TTL` / `RATE_LIMIT_RESTART_MAX` | `300` / `5` | `restart_pod` per (namespace, requestedBy) |
//! | `RATE_LIMIT_SCALE_TTL` / `RATE_LIMIT_SCALE_MAX` | `60` / `10` | `scale_deployment` |
//! | `RATE_LIMIT_WINDOW` / `RATE_LIMIT_CRITICAL_ACTIONS` | `60` / `5` | `rollback_deployment` |
//! | `ACTION_COOLDOWN_SECONDS` | `0` (off) | minimum gap between two executed actions on one target |
//! | `REQUIRE_POLICY_DECISION` | `false` | a request without `policyDecision` is a 400 |
//! | `TRUST_PROXY` | `false` | client IP from the first `X-Forwarded-For` hop |
//! | `SERVICE_API_KEYS` | empty | `X-API-Key` values accepted by `GET /executor/deployments/...` |
//! | `AUDIT_API_AUTH` | `token` | `token` (bearer `AUDIT_API_TOKEN`) or `none` (refused in production) |
//! | `AUDIT_API_TOKEN` | none | bearer token of `/audit/*`; required in production |
//! | `AUDIT_LOG_RETENTION_DAYS` | `90` | daily purge of final audit rows older than this |
//! | `LOKI_URL` | unset | Loki base URL; when set, audit lines are shipped through the outbox |
//! | `LOKI_PUSH_TIMEOUT_MS` | `5000` | one push |
//! | `LOKI_BATCH_SIZE` | `500` | lines per push |
//! | `LOKI_POLL_INTERVAL_MS` | `1000` | outbox poll when idle |
//! | `LOKI_RETRY_MAX_BACKOFF_MS` | `30000` | cap of the exponential retry backoff |
//! | `CORS_ORIGIN` | unset (no CORS) | comma list of exact origins |
//! | `LOG_LEVEL` / `LOG_FORMAT` | `info` / `json` in production else `text` | logging |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | unset | OTLP/HTTP traces |

use std::{path::PathBuf, time::Duration};

use aegis_common::{
    config::{AppEnv, ConfigError, Env, secret_weakness},
    db::{DbConfig, DbVars},
};
use secrecy::{ExposeSecret, SecretString};

/// Namespaces that are refused even when listed.
pub const DENIED_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

const DB_VARS: DbVars = DbVars {
    host: &["EXECUTOR_DB_HOST"],
    port: &["EXECUTOR_DB_PORT"],
    user: &["EXECUTOR_DB_USER"],
    password: &["EXECUTOR_DB_PASSWORD"],
    database: &["EXECUTOR_DB_NAME"],
    ssl_mode: &["EXECUTOR_DB_SSL_MODE"],
    pool_max: &["EXECUTOR_DB_POOL_MAX"],
};

/// Where the Kubernetes client configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeSource {
    /// A kubeconfig file.
    Kubeconfig(PathBuf),
    /// The pod's service account.
    InCluster,
}

/// One per-action fixed-window limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionLimit {
    /// Window length in seconds.
    pub ttl_secs: u64,
    /// Requests allowed per window.
    pub max: u32,
}

/// How `/audit/*` is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAuth {
    /// No authentication (development only).
    None,
    /// `Authorization: Bearer <AUDIT_API_TOKEN>`.
    Token,
}

/// The executor's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Environment selector.
    pub app_env: AppEnv,
    /// Bind host.
    pub host: String,
    /// Bind port.
    pub port: u16,
    /// Header deadline, connection cap and shutdown drain of the HTTP server.
    pub serve: aegis_common::server::ServeLimits,
    /// PostgreSQL.
    pub db: DbConfig,
    /// Run migrations at start-up.
    pub auto_migrate: bool,
    /// HMAC key (`None` only when signatures are not required).
    pub hmac_key: Option<SecretString>,
    /// Which variable the key came from.
    pub hmac_key_source: Option<&'static str>,
    /// Verify signatures.
    pub require_signature: bool,
    /// Refuse v1 signatures.
    pub require_signature_timestamp: bool,
    /// v2 timestamp window.
    pub max_skew: Duration,
    /// Serve `/executor/generate-signature`.
    pub enable_signature_helper: bool,
    /// Kubernetes client configuration.
    pub kube_source: KubeSource,
    /// Allowed namespaces, trimmed, non-empty.
    pub allowed_namespaces: Vec<String>,
    /// Lowest replica count accepted.
    pub min_replicas: i64,
    /// Highest replica count accepted.
    pub max_replicas: i64,
    /// Per Kubernetes request.
    pub k8s_request_timeout: Duration,
    /// Per action.
    pub action_timeout: Duration,
    /// In-flight actions per replica.
    pub max_concurrent_actions: usize,
    /// HTTP throttle window.
    pub http_rate_limit_ttl: Duration,
    /// HTTP throttle limit.
    pub http_rate_limit_max: u32,
    /// `restart_pod` limit.
    pub restart_limit: ActionLimit,
    /// `scale_deployment` limit.
    pub scale_limit: ActionLimit,
    /// `rollback_deployment` limit.
    pub rollback_limit: ActionLimit,
    /// Per-target cooldown (zero = off).
    pub action_cooldown: Duration,
    /// Missing `policyDecision` is a 400.
    pub require_policy_decision: bool,
    /// Client IP from `X-Forwarded-For`.
    pub trust_proxy: bool,
    /// Accepted `X-API-Key` values.
    pub service_api_keys: Vec<SecretString>,
    /// Audit API authentication.
    pub audit_auth: AuditAuth,
    /// Audit API bearer token.
    pub audit_api_token: Option<SecretString>,
    /// Retention of final audit rows.
    pub audit_retention_days: i32,
    /// Loki base URL without trailing slash.
    pub loki_url: Option<String>,
    /// One push.
    pub loki_push_timeout: Duration,
    /// Lines per push.
    pub loki_batch_size: i64,
    /// Idle poll.
    pub loki_poll_interval: Duration,
    /// Retry backoff cap.
    pub loki_max_backoff: Duration,
    /// CORS origins (empty = no CORS headers).
    pub cors_origins: Vec<String>,
    /// `service` field of logs.
    pub service_name: String,
    /// Tracing filter.
    pub log_level: String,
    /// JSON logs (`None` = by environment).
    pub json_logs: Option<bool>,
    /// OTLP endpoint.
    pub otlp_endpoint: Option<String>,
}

fn limit(env: &Env, ttl: &str, max: &str, d: (u64, u32)) -> Result<ActionLimit, ConfigError> {
    Ok(ActionLimit {
        ttl_secs: env.parse(ttl, &[], d.0)?.max(1),
        max: env.parse(max, &[], d.1)?,
    })
}

fn millis(env: &Env, name: &str, default: u64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(env.parse(name, &[], default)?.max(1)))
}

impl Config {
    /// Reads and validates every setting; errors name the variable and never print a secret.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let app_env = env.app_env()?;
        let prod = app_env.is_production();

        let require_signature = env.bool("REQUIRE_ACTION_SIGNATURE", &[], true)?;
        if prod && !require_signature {
            return Err(ConfigError::invalid(
                "REQUIRE_ACTION_SIGNATURE",
                "signatures cannot be disabled in production",
            ));
        }
        let (hmac_key, hmac_key_source) = hmac_key(env, app_env, require_signature)?;
        let enable_signature_helper = env.bool("ENABLE_SIGNATURE_HELPER", &[], false)?;
        if prod && enable_signature_helper {
            return Err(ConfigError::invalid(
                "ENABLE_SIGNATURE_HELPER",
                "the signature helper is never served in production",
            ));
        }
        if enable_signature_helper && hmac_key.is_none() {
            return Err(ConfigError::Missing {
                name: "EXECUTOR_HMAC_SECRET".into(),
            });
        }

        let audit_auth = match env.string("AUDIT_API_AUTH", &[], "token").as_str() {
            "token" => AuditAuth::Token,
            "none" if !prod => AuditAuth::None,
            "none" => {
                return Err(ConfigError::invalid(
                    "AUDIT_API_AUTH",
                    "the audit API cannot be unauthenticated in production",
                ));
            }
            other => {
                return Err(ConfigError::invalid(
                    "AUDIT_API_AUTH",
                    format!("expected token or none, got {other:?}"),
                ));
            }
        };
        let audit_api_token = if audit_auth == AuditAuth::Token {
            env.secret("AUDIT_API_TOKEN", &[], app_env)?
        } else {
            None
        };

        let mut db = DbConfig::from_env(env, app_env, &DB_VARS, "aegis_executor")?;
        db.require_tls_if_flagged(env, &DB_VARS, "EXECUTOR_DB_SSL")?;
        // Validated for compatibility with the original's manifests; sqlx keeps idle connections
        // on its own.
        let _pool_min: u32 = env.parse("DB_POOL_MIN", &["EXECUTOR_DB_POOL_MIN"], 2)?;
        let max_concurrent_actions: usize = env.parse("MAX_CONCURRENT_ACTIONS", &[], 10)?;
        let max_concurrent_actions = max_concurrent_actions.max(1);
        // Each in-flight action holds one connection for its advisory lock.
        db.max_connections = db
            .max_connections
            .saturating_add(u32::try_from(max_concurrent_actions).unwrap_or(u32::MAX));

        let allowed_namespaces = env.list("ALLOWED_NAMESPACES", &[], &["default"]);
        let min_replicas: i64 = env.parse("MIN_REPLICAS", &[], 0)?;
        let max_replicas: i64 = env.parse("MAX_REPLICAS", &[], 100)?;
        if min_replicas < 0 || max_replicas < min_replicas {
            return Err(ConfigError::invalid(
                "MAX_REPLICAS",
                "need 0 <= MIN_REPLICAS <= MAX_REPLICAS",
            ));
        }
        let service_api_keys = env.secret_list("SERVICE_API_KEYS", app_env)?;

        Ok(Self {
            app_env,
            host: env.string("HOST", &[], "0.0.0.0"),
            port: env.parse("PORT", &[], 4000u16)?,
            serve: aegis_common::server::ServeLimits::from_env(env)?,
            db,
            auto_migrate: env.bool("AUTO_MIGRATE", &[], !prod)?,
            hmac_key,
            hmac_key_source,
            require_signature,
            require_signature_timestamp: env.bool("REQUIRE_SIGNATURE_TIMESTAMP", &[], prod)?,
            max_skew: Duration::from_secs(env.parse("SIGNATURE_MAX_SKEW_SECONDS", &[], 300u64)?),
            enable_signature_helper,
            kube_source: kube_source(env)?,
            allowed_namespaces,
            min_replicas,
            max_replicas,
            k8s_request_timeout: millis(env, "K8S_REQUEST_TIMEOUT_MS", 10_000)?,
            action_timeout: millis(env, "ACTION_TIMEOUT_MS", 30_000)?,
            max_concurrent_actions,
            http_rate_limit_ttl: Duration::from_secs(
                env.parse("HTTP_RATE_LIMIT_TTL", &[], 60u64)?.max(1),
            ),
            http_rate_limit_max: env.parse("HTTP_RATE_LIMIT_MAX", &[], 100)?,
            restart_limit: limit(
                env,
                "RATE_LIMIT_RESTART_TTL",
                "RATE_LIMIT_RESTART_MAX",
                (300, 5),
            )?,
            scale_limit: limit(
                env,
                "RATE_LIMIT_SCALE_TTL",
                "RATE_LIMIT_SCALE_MAX",
                (60, 10),
            )?,
            rollback_limit: limit(
                env,
                "RATE_LIMIT_WINDOW",
                "RATE_LIMIT_CRITICAL_ACTIONS",
                (60, 5),
            )?,
            action_cooldown: Duration::from_secs(env.parse(
                "ACTION_COOLDOWN_SECONDS",
                &[],
                0u64,
            )?),
            require_policy_decision: env.bool("REQUIRE_POLICY_DECISION", &[], false)?,
            trust_proxy: env.bool("TRUST_PROXY", &[], false)?,
            service_api_keys,
            audit_auth,
            audit_api_token,
            audit_retention_days: env.parse("AUDIT_LOG_RETENTION_DAYS", &[], 90)?,
            loki_url: env
                .opt_string("LOKI_URL", &[])
                .map(|u| u.trim_end_matches('/').to_owned()),
            loki_push_timeout: millis(env, "LOKI_PUSH_TIMEOUT_MS", 5_000)?,
            loki_batch_size: env.parse("LOKI_BATCH_SIZE", &[], 500i64)?.clamp(1, 10_000),
            loki_poll_interval: millis(env, "LOKI_POLL_INTERVAL_MS", 1_000)?,
            loki_max_backoff: millis(env, "LOKI_RETRY_MAX_BACKOFF_MS", 30_000)?,
            cors_origins: env.list("CORS_ORIGIN", &[], &[]),
            service_name: env.string("SERVICE_NAME", &[], "aegis-executor"),
            log_level: env.string("LOG_LEVEL", &[], "info"),
            json_logs: log_format(env)?,
            otlp_endpoint: env.opt_string("OTEL_EXPORTER_OTLP_ENDPOINT", &[]),
        })
    }

    /// Warnings about a configuration that works but should change (logged at start-up, after
    /// telemetry is initialised).
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for ns in &self.allowed_namespaces {
            if DENIED_NAMESPACES.contains(&ns.as_str()) {
                out.push(format!(
                    "ALLOWED_NAMESPACES lists {ns}, which is always refused"
                ));
            }
        }
        if self.hmac_key_source == Some("JWT_SECRET") {
            out.push(
                "the action HMAC key falls back to JWT_SECRET; set EXECUTOR_HMAC_SECRET to a dedicated key"
                    .into(),
            );
        }
        if !self.require_signature {
            out.push("REQUIRE_ACTION_SIGNATURE=false: actions are not authenticated".into());
        }
        if self.audit_auth == AuditAuth::Token && self.audit_api_token.is_none() {
            out.push("AUDIT_API_TOKEN is not set: the audit API answers 401 to everyone".into());
        }
        out
    }

    /// The HMAC key bytes (empty when none is configured).
    #[must_use]
    pub fn hmac_key_bytes(&self) -> &[u8] {
        self.hmac_key
            .as_ref()
            .map_or(&[][..], |k| k.expose_secret().as_bytes())
    }
}

/// First non-empty of `EXECUTOR_HMAC_SECRET`, `ACTION_SIGNING_KEY`, `JWT_SECRET`.
fn hmac_key(
    env: &Env,
    app_env: AppEnv,
    required: bool,
) -> Result<(Option<SecretString>, Option<&'static str>), ConfigError> {
    const NAMES: [&str; 3] = ["EXECUTOR_HMAC_SECRET", "ACTION_SIGNING_KEY", "JWT_SECRET"];
    let found = NAMES
        .iter()
        .find_map(|name| env.raw(name).map(|v| (*name, v.to_owned())));
    let Some((name, value)) = found else {
        if required {
            return Err(ConfigError::Missing {
                name: "EXECUTOR_HMAC_SECRET".into(),
            });
        }
        return Ok((None, None));
    };
    if app_env.is_production()
        && let Some(reason) = secret_weakness(&value)
    {
        return Err(ConfigError::WeakSecret {
            name: name.into(),
            reason,
        });
    }
    Ok((Some(SecretString::from(value)), Some(name)))
}

fn kube_source(env: &Env) -> Result<KubeSource, ConfigError> {
    if env.bool("IN_CLUSTER", &["K8S_IN_CLUSTER"], false)? {
        return Ok(KubeSource::InCluster);
    }
    if let Some(path) = env.opt_string("KUBECONFIG_PATH", &[]) {
        return Ok(KubeSource::Kubeconfig(path.into()));
    }
    if let Some(path) = env.opt_string("KUBECONFIG", &[]) {
        // KUBECONFIG may be a colon-separated list; the first file is used.
        let first = path.split(':').next().unwrap_or_default().to_owned();
        return Ok(KubeSource::Kubeconfig(first.into()));
    }
    if let Some(home) = env.opt_string("HOME", &[]) {
        let path = PathBuf::from(home).join(".kube").join("config");
        if path.exists() {
            return Ok(KubeSource::Kubeconfig(path));
        }
    }
    Ok(KubeSource::InCluster)
}

/// `LOG_FORMAT`: `json` or `text`; unset = by environment.
fn log_format(env: &Env) -> Result<Option<bool>, ConfigError> {
    match env.opt_string("LOG_FORMAT", &[]).as_deref() {
        None => Ok(None),
        Some("json") => Ok(Some(true)),
        Some("text" | "pretty") => Ok(Some(false)),
        Some(other) => Err(ConfigError::invalid(
            "LOG_FORMAT",
            format!("expected json or text, got {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn development_defaults() {
        let cfg = Config::from_env(&env(&[("EXECUTOR_HMAC_SECRET", "k")])).unwrap();
        assert_eq!(cfg.port, 4000);
        assert_eq!(cfg.allowed_namespaces, vec!["default"]);
        assert!(cfg.require_signature);
        assert!(!cfg.require_signature_timestamp);
        assert_eq!(cfg.action_cooldown, Duration::ZERO);
        assert_eq!(
            cfg.restart_limit,
            ActionLimit {
                ttl_secs: 300,
                max: 5
            }
        );
        assert_eq!(cfg.db.database(), "aegis_executor");
    }

    #[test]
    fn booleans_are_strict() {
        let err = Config::from_env(&env(&[
            ("EXECUTOR_HMAC_SECRET", "k"),
            ("REQUIRE_ACTION_SIGNATURE", "maybe"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("REQUIRE_ACTION_SIGNATURE"));
    }

    #[test]
    fn key_falls_back_in_order() {
        let cfg = Config::from_env(&env(&[
            ("JWT_SECRET", "jwt"),
            ("ACTION_SIGNING_KEY", "ask"),
        ]))
        .unwrap();
        assert_eq!(cfg.hmac_key_bytes(), b"ask");
        assert_eq!(cfg.hmac_key_source, Some("ACTION_SIGNING_KEY"));
    }

    #[test]
    fn missing_key_is_refused_when_signatures_are_required() {
        let err = Config::from_env(&env(&[])).unwrap_err();
        assert!(err.to_string().contains("EXECUTOR_HMAC_SECRET"));
        assert!(Config::from_env(&env(&[("REQUIRE_ACTION_SIGNATURE", "false")])).is_ok());
    }

    #[test]
    fn production_rules() {
        let strong = "Zq8vN2xL0pR7tY4wK1mB6cD9fG3hJ5sA";
        let base = [
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://u:p@db/aegis_executor"),
            ("AUDIT_API_TOKEN", "Tq8vN2xL0pR7tY4wK1mB6cD9fG3hJ5sB"),
        ];
        let mut ok = base.to_vec();
        ok.push(("EXECUTOR_HMAC_SECRET", strong));
        let cfg = Config::from_env(&env(&ok)).unwrap();
        assert!(cfg.require_signature_timestamp);

        let mut weak = base.to_vec();
        weak.push(("EXECUTOR_HMAC_SECRET", "short"));
        let err = Config::from_env(&env(&weak)).unwrap_err();
        assert!(err.to_string().contains("EXECUTOR_HMAC_SECRET"), "{err}");

        let mut off = ok.clone();
        off.push(("REQUIRE_ACTION_SIGNATURE", "false"));
        let err = Config::from_env(&env(&off)).unwrap_err();
        assert!(
            err.to_string().contains("REQUIRE_ACTION_SIGNATURE"),
            "{err}"
        );

        let mut helper = ok.clone();
        helper.push(("ENABLE_SIGNATURE_HELPER", "true"));
        assert!(Config::from_env(&env(&helper)).is_err());

        // A placeholder among the read endpoint's API keys is refused, not accepted as a key.
        let mut keys = ok.clone();
        keys.push((
            "SERVICE_API_KEYS",
            "Kq8vN2xL0pR7tY4wK1mB6cD9fG3hJ5sC,CHANGE_ME",
        ));
        let err = Config::from_env(&env(&keys)).unwrap_err();
        assert!(err.to_string().contains("SERVICE_API_KEYS"), "{err}");
        let mut keys = ok;
        keys.push(("SERVICE_API_KEYS", "Kq8vN2xL0pR7tY4wK1mB6cD9fG3hJ5sC"));
        assert_eq!(
            Config::from_env(&env(&keys))
                .unwrap()
                .service_api_keys
                .len(),
            1
        );
    }
}
