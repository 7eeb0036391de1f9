//! Backend configuration, read once from the environment (backend.md §14).
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `APP_ENV` (`NODE_ENV`, `ENVIRONMENT`) | `development` | `development`, `test` or `production` |
//! | `HOST` / `PORT` | `0.0.0.0` / `3000` | listen address (port 0 = any free port) |
//! | `API_PREFIX` | `api/v1` | route prefix, no leading or trailing slash |
//! | `DATABASE_URL` or `DB_HOST`, `DB_PORT`, `DB_USERNAME` (`DB_USER`), `DB_PASSWORD`, `DB_DATABASE` (`DB_NAME`), `DB_SSL_MODE`, `DB_POOL_SIZE` | local `aegis_backend` outside production | PostgreSQL |
//! | `REDIS_URL` or `REDIS_HOST` / `REDIS_PORT` / `REDIS_PASSWORD` | `127.0.0.1:6379` | Redis (fail-open) |
//! | `REDIS_KEY_PREFIX` | empty | prefix for every Redis key (tests isolate themselves with it) |
//! | `JWT_SECRET`, `JWT_REFRESH_SECRET` | required | production: ≥ 32 bytes, no placeholders, different |
//! | `AI_ENGINE_URL` | `http://localhost:8000` | ai-engine base URL |
//! | `HEALTH_CHECK_AI_ENGINE` | `true` | include the ai-engine in `/health` |
//! | `AUTO_MIGRATE` | `true`, except `false` in production | run migrations at start-up |
//! | `LOG_LEVEL` | `info` | tracing filter |
//! | `LOG_FORMAT` | `json` in production, else `text` | log format |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | unset | OTLP/HTTP trace export |
//! | auth, passwords, rate limits, lockout, reset mail, bootstrap admin | see [`crate::auth::config`] | |

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
            api_prefix: format!("/{prefix}"),
            db: DbConfig::from_env(env, app_env, &DB_VARS, "aegis_backend")?,
            redis_url: redis_url(env)?,
            redis_key_prefix: env.string("REDIS_KEY_PREFIX", &[], ""),
            jwt_secret,
            jwt_refresh_secret,
            ai_engine_url: env
                .string("AI_ENGINE_URL", &[], "http://localhost:8000")
                .trim_end_matches('/')
                .to_owned(),
            health_check_ai_engine: env.bool("HEALTH_CHECK_AI_ENGINE", &[], true)?,
            auto_migrate: env.bool("AUTO_MIGRATE", &[], !app_env.is_production())?,
            log_level: env.string("LOG_LEVEL", &[], "info"),
            json_logs: log_format(env)?,
            otlp_endpoint: env.opt_string("OTEL_EXPORTER_OTLP_ENDPOINT", &[]),
            auth: crate::auth::config::AuthConfig::from_env(env, app_env)?,
        })
    }

    /// Redis command timeout.
    #[must_use]
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(500)
    }
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
    fn production_refuses_placeholder_jwt_secret() {
        let mut pairs = base();
        pairs.push(("APP_ENV", "production"));
        pairs.push(("JWT_SECRET", "change_this"));
        let err = Config::from_env(&Env::from_pairs(pairs)).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
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
}
