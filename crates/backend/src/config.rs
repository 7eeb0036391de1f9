//! Backend configuration, read once from the environment.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `APP_ENV` (`NODE_ENV`, `ENVIRONMENT`) | `development` | `development`, `test` or `production` |
//! | `HOST` / `PORT` | `0.0.0.0` / `3000` | listen address (port 0 = any free port) |
//! | `HTTP_HEADER_READ_TIMEOUT_MS` / `HTTP_MAX_CONNECTIONS` / `SHUTDOWN_DRAIN_TIMEOUT_MS` | `10000` / `4096` / `20000` | a request header's deadline, connections served at once, the SIGTERM drain's deadline ([`aegis_common::server::ServeLimits`]) |
//! | `API_PREFIX` | `api/v1` | route prefix, no leading or trailing slash |
//! | `DATABASE_URL` or `DB_HOST`, `DB_PORT`, `DB_USERNAME` (`DB_USER`), `DB_PASSWORD`, `DB_DATABASE` (`DB_NAME`), `DB_SSL_MODE` (`DB_SSL=true` = at least `require`), `DB_POOL_SIZE` | local `aegis_backend` outside production | PostgreSQL |
//! | `REDIS_URL` or `REDIS_HOST` / `REDIS_PORT` / `REDIS_PASSWORD` | `127.0.0.1:6379` | Redis (fail-open) |
//! | `REDIS_KEY_PREFIX` | empty | prefix for every Redis key (tests isolate themselves with it) |
//! | `JWT_SECRET`, `JWT_REFRESH_SECRET` | required | production: ≥ 32 bytes, no placeholders, different |
//! | `AI_ENGINE_URL` | `http://localhost:8000` | ai-engine base URL |
//! | `AI_ENGINE_API_KEY` | unset | `X-API-Key` sent to the ai-engine (omitted when unset) |
//! | `AI_ENGINE_RETRY_BACKOFF_MS` | `1000` | first wait between ai-engine attempts (n-th retry waits n×) |
//! | `EXECUTOR_URL` | `http://localhost:4000` | executor base URL |
//! | `EXECUTOR_API_KEY` | unset | `X-API-Key` for the executor's read endpoint |
//! | `EXECUTOR_HMAC_SECRET` | unset | verifies `/executor/action` (pipe scheme) and signs v2 requests to the executor; unset = every action is refused |
//! | `EXECUTOR_AUDIT_TOKEN` | unset | bearer for the executor's `/audit/*` (its `AUDIT_API_TOKEN`) |
//! | `EXECUTOR_NAMESPACE_ALLOWLIST` | `default,aegis,monitoring` | namespaces `/executor/action` accepts |
//! | `CORS_ORIGIN` | `http://localhost:3001` | allowed origins (comma list) for HTTP and Socket.IO; credentials on, so `*` is refused; empty = no CORS headers |
//! | `LOG_TO_DB` | `true` | store the backend's own warn-and-above events in the `logs` table (`GET /logs`) |
//! | `HEALTH_CHECK_AI_ENGINE` | `true` | include the ai-engine in `/health` |
//! | `AUTO_MIGRATE` | `true`, except `false` in production | run migrations at start-up |
//! | `LOG_LEVEL` | `info` | tracing filter |
//! | `LOG_FORMAT` | `json` in production, else `text` | log format |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | unset | OTLP/HTTP trace export |
//! | `POLICY_*` (evaluate access, decision cache, audit writer) | see [`crate::policy::config`] | |
//! | `REMEDIATION_*`, `ALERTMANAGER_WEBHOOK_TOKEN` (the loop) | see [`crate::remediation::config`] | |
//! | auth, passwords, rate limits, lockout, reset mail, bootstrap admin | see [`crate::auth::config`] | |
//! | `NOTIFY_*`, `PUBLIC_URL` (notification delivery) | see [`crate::notify::config`] | |

use std::time::Duration;

use aegis_common::{
    config::{AppEnv, ConfigError, Env},
    db::{DbConfig, DbVars},
};
use secrecy::{ExposeSecret, SecretString};

/// Database variable aliases (the original's k8s ConfigMap names).
const DB_VARS: DbVars = DbVars {
    host: &[],
    port: &[],
    user: &["DB_USER"],
    password: &[],
    database: &["DB_NAME"],
    ssl_mode: &[],
    pool_max: &["DB_POOL_SIZE"],
};

/// The backend's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Environment selector.
    pub app_env: AppEnv,
    /// Bind host.
    pub host: String,
    /// Bind port (0 in tests).
    pub port: u16,
    /// Header deadline, connection cap and shutdown drain of the HTTP server.
    pub serve: aegis_common::server::ServeLimits,
    /// Route prefix with a leading slash, e.g. `/api/v1`.
    pub api_prefix: String,
    /// PostgreSQL.
    pub db: DbConfig,
    /// Redis URL (may hold a password; never logged).
    pub redis_url: SecretString,
    /// Prefix for every Redis key.
    pub redis_key_prefix: String,
    /// Access-token key.
    pub jwt_secret: SecretString,
    /// Refresh-token key.
    pub jwt_refresh_secret: SecretString,
    /// ai-engine base URL without trailing slash.
    pub ai_engine_url: String,
    /// `X-API-Key` for the ai-engine.
    pub ai_engine_api_key: Option<SecretString>,
    /// First wait between ai-engine attempts.
    pub ai_engine_retry_backoff: Duration,
    /// Executor base URL without trailing slash.
    pub executor_url: String,
    /// `X-API-Key` for the executor.
    pub executor_api_key: Option<SecretString>,
    /// HMAC key of `/executor/action` and of requests to the executor.
    pub executor_hmac_secret: Option<SecretString>,
    /// Bearer for the executor's audit API.
    pub executor_audit_token: Option<SecretString>,
    /// Namespaces `/executor/action` accepts.
    pub executor_namespace_allowlist: Vec<String>,
    /// Allowed CORS origins.
    pub cors_origins: Vec<String>,
    /// Store own warn-and-above events in `logs`.
    pub log_to_db: bool,
    /// Whether `/health` checks the ai-engine.
    pub health_check_ai_engine: bool,
    /// Run migrations at start-up.
    pub auto_migrate: bool,
    /// Tracing filter.
    pub log_level: String,
    /// JSON logs (`None` = by environment).
    pub json_logs: Option<bool>,
    /// OTLP endpoint.
    pub otlp_endpoint: Option<String>,
    /// Authentication settings.
    pub auth: crate::auth::config::AuthConfig,
    /// Policy-engine settings.
    pub policy: crate::policy::PolicyConfig,
    /// Remediation-loop settings.
    pub remediation: crate::remediation::RemediationConfig,
    /// Notification delivery.
    pub notify: crate::notify::NotifyConfig,
}

impl Config {
    /// Reads and validates every setting; errors name the variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let app_env = env.app_env()?;
        let prefix = env.string("API_PREFIX", &[], "api/v1");
        let prefix = prefix.trim_matches('/');
        let jwt_secret = env.required_secret("JWT_SECRET", &[], app_env)?;
        let jwt_refresh_secret = env.required_secret("JWT_REFRESH_SECRET", &[], app_env)?;
        if app_env.is_production()
            && jwt_secret.expose_secret() == jwt_refresh_secret.expose_secret()
        {
            return Err(ConfigError::WeakSecret {
                name: "JWT_REFRESH_SECRET".into(),
                reason: "it must differ from JWT_SECRET".into(),
            });
        }
        Ok(Self {
            app_env,
            host: env.string("HOST", &[], "0.0.0.0"),
            port: env.parse("PORT", &[], 3000u16)?,
            serve: aegis_common::server::ServeLimits::from_env(env)?,
            api_prefix: format!("/{prefix}"),
            db: {
                let mut db = DbConfig::from_env(env, app_env, &DB_VARS, "aegis_backend")?;
                db.require_tls_if_flagged(env, &DB_VARS, "DB_SSL")?;
                db
            },
            redis_url: redis_url(env)?,
            redis_key_prefix: env.string("REDIS_KEY_PREFIX", &[], ""),
            jwt_secret,
            jwt_refresh_secret,
            ai_engine_url: env
                .string("AI_ENGINE_URL", &[], "http://localhost:8000")
                .trim_end_matches('/')
                .to_owned(),
            ai_engine_api_key: env.optional_secret("AI_ENGINE_API_KEY", &[], app_env)?,
            ai_engine_retry_backoff: Duration::from_millis(env.parse(
                "AI_ENGINE_RETRY_BACKOFF_MS",
                &[],
                1000u64,
            )?),
            executor_url: env
                .string("EXECUTOR_URL", &[], "http://localhost:4000")
                .trim_end_matches('/')
                .to_owned(),
            executor_api_key: env.optional_secret("EXECUTOR_API_KEY", &[], app_env)?,
            executor_hmac_secret: env.optional_secret("EXECUTOR_HMAC_SECRET", &[], app_env)?,
            executor_audit_token: env.optional_secret("EXECUTOR_AUDIT_TOKEN", &[], app_env)?,
            executor_namespace_allowlist: env
                .string(
                    "EXECUTOR_NAMESPACE_ALLOWLIST",
                    &[],
                    "default,aegis,monitoring",
                )
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            cors_origins: cors_origins(env)?,
            log_to_db: env.bool("LOG_TO_DB", &[], true)?,
            health_check_ai_engine: env.bool("HEALTH_CHECK_AI_ENGINE", &[], true)?,
            auto_migrate: env.bool("AUTO_MIGRATE", &[], !app_env.is_production())?,
            log_level: env.string("LOG_LEVEL", &[], "info"),
            json_logs: log_format(env)?,
            otlp_endpoint: env.opt_string("OTEL_EXPORTER_OTLP_ENDPOINT", &[]),
            auth: crate::auth::config::AuthConfig::from_env(env, app_env)?,
            policy: crate::policy::PolicyConfig::from_env(env)?,
            remediation: crate::remediation::RemediationConfig::from_env(env, app_env)?,
            notify: crate::notify::NotifyConfig::from_env(env)?,
        })
    }

    /// Redis command timeout.
    #[must_use]
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(500)
    }
}

/// `CORS_ORIGIN` (alias `CORS_ORIGINS`, the original's ConfigMap name) split on `,` and
/// trimmed; `*` is refused because credentials are allowed.
pub fn cors_origins(env: &Env) -> Result<Vec<String>, ConfigError> {
    let origins = env.list("CORS_ORIGIN", &["CORS_ORIGINS"], &["http://localhost:3001"]);
    aegis_common::service::cors_layer(&origins, true)
        .map_err(|e| ConfigError::invalid("CORS_ORIGIN", e.to_string()))?;
    Ok(origins)
}

/// `REDIS_URL`, else `redis://[:password@]REDIS_HOST:REDIS_PORT`.
pub fn redis_url(env: &Env) -> Result<SecretString, ConfigError> {
    if let Some(url) = env.opt_string("REDIS_URL", &[]) {
        return Ok(SecretString::from(url));
    }
    let host = env.string("REDIS_HOST", &[], "127.0.0.1");
    let port = env.parse("REDIS_PORT", &[], 6379u16)?;
    let auth = env
        .opt_string("REDIS_PASSWORD", &[])
        .map(|p| format!(":{p}@"))
        .unwrap_or_default();
    Ok(SecretString::from(format!("redis://{auth}{host}:{port}")))
}

/// `LOG_FORMAT`: `json` or `text`; unset = by environment.
pub fn log_format(env: &Env) -> Result<Option<bool>, ConfigError> {
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

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("JWT_SECRET", "dev-access-secret"),
            ("JWT_REFRESH_SECRET", "dev-refresh-secret"),
        ]
    }

    #[test]
    fn development_defaults() {
        let cfg = Config::from_env(&Env::from_pairs(base())).unwrap();
        assert_eq!(cfg.port, 3000);
        assert_eq!(cfg.api_prefix, "/api/v1");
        assert_eq!(cfg.db.database(), "aegis_backend");
        assert!(cfg.auto_migrate);
    }

    #[test]
    fn the_decision_cache_capacity_is_read_and_zero_is_refused() {
        let mut pairs = base();
        pairs.push(("POLICY_CACHE_MAX_ENTRIES", "250"));
        let cfg = Config::from_env(&Env::from_pairs(pairs)).unwrap();
        assert_eq!(cfg.policy.cache_max_entries, 250);
        let mut pairs = base();
        pairs.push(("POLICY_CACHE_MAX_ENTRIES", "0"));
        let err = Config::from_env(&Env::from_pairs(pairs)).unwrap_err();
        assert!(
            err.to_string().contains("POLICY_CACHE_MAX_ENTRIES"),
            "{err}"
        );
    }

    #[test]
    fn production_refuses_placeholder_jwt_secret() {
        let mut pairs = base();
        pairs.push(("APP_ENV", "production"));
        pairs.push(("JWT_SECRET", "change_this"));
        let err = Config::from_env(&Env::from_pairs(pairs)).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn production_refuses_a_placeholder_for_an_optional_service_secret() {
        for name in [
            "AI_ENGINE_API_KEY",
            "EXECUTOR_API_KEY",
            "EXECUTOR_HMAC_SECRET",
            "EXECUTOR_AUDIT_TOKEN",
        ] {
            let pairs = vec![
                ("APP_ENV", "production"),
                ("JWT_SECRET", "Zq8vN2xL0pR7tY4wK1mB6cD9fG3hJ5sA"),
                ("JWT_REFRESH_SECRET", "Yq8vN2xL0pR7tY4wK1mB6cD9fG3hJ5sB"),
                ("DATABASE_URL", "postgres://u:p@db/aegis_backend"),
                (name, "CHANGE_ME"),
            ];
            let err = Config::from_env(&Env::from_pairs(pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
        // Unset stays allowed: each one only turns a feature on.
        let dev = Config::from_env(&Env::from_pairs(base())).unwrap();
        assert!(dev.executor_api_key.is_none());
    }

    #[test]
    fn production_requires_distinct_jwt_secrets() {
        let s = "Zq8vN2xL0pR7tY4wK1mB6cD9fG3hJ5sA";
        let pairs = vec![
            ("APP_ENV", "production"),
            ("JWT_SECRET", s),
            ("JWT_REFRESH_SECRET", s),
            ("DATABASE_URL", "postgres://u:p@db/aegis_backend"),
        ];
        let err = Config::from_env(&Env::from_pairs(pairs)).unwrap_err();
        assert!(err.to_string().contains("JWT_REFRESH_SECRET"), "{err}");
    }

    #[test]
    fn cors_origins_accept_the_original_alias_and_refuse_a_wildcard() {
        let env = Env::from_pairs([("CORS_ORIGINS", "https://a.example, https://b.example")]);
        assert_eq!(
            cors_origins(&env).unwrap(),
            vec!["https://a.example", "https://b.example"]
        );
        assert!(
            env.deprecation_notes()
                .iter()
                .any(|n| n.contains("CORS_ORIGINS"))
        );
        let env = Env::from_pairs([("CORS_ORIGIN", "*")]);
        assert!(
            cors_origins(&env)
                .unwrap_err()
                .to_string()
                .contains("CORS_ORIGIN")
        );
    }
}
