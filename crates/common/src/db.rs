//! PostgreSQL connection settings shared by the services: `DATABASE_URL` or the `DB_*` parts
//! (with each service's aliases), pool sizing, creating the database in development, and
//! running a service's migrations.

use std::{str::FromStr, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use sqlx::{
    Connection, Executor, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgSslMode},
};

use crate::config::{AppEnv, ConfigError, Env};

/// Names a service reads its database settings from, canonical first.
#[derive(Debug, Clone, Copy)]
pub struct DbVars {
    /// Aliases of `DB_HOST`.
    pub host: &'static [&'static str],
    /// Aliases of `DB_PORT`.
    pub port: &'static [&'static str],
    /// Aliases of `DB_USERNAME`.
    pub user: &'static [&'static str],
    /// Aliases of `DB_PASSWORD`.
    pub password: &'static [&'static str],
    /// Aliases of `DB_DATABASE`.
    pub database: &'static [&'static str],
    /// Aliases of `DB_SSL_MODE`.
    pub ssl_mode: &'static [&'static str],
    /// Aliases of `DB_POOL_MAX`.
    pub pool_max: &'static [&'static str],
}

/// Database settings.
#[derive(Clone)]
pub struct DbConfig {
    /// Connection options (the password inside is never logged).
    pub options: PgConnectOptions,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a connection.
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `PgConnectOptions`' own Debug prints the password: only safe fields are shown.
        f.debug_struct("DbConfig")
            .field("host", &self.options.get_host())
            .field("port", &self.options.get_port())
            .field("database", &self.options.get_database())
            .field("username", &self.options.get_username())
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl DbConfig {
    /// Reads `DATABASE_URL`, else `DB_HOST`, `DB_PORT`, `DB_USERNAME`, `DB_PASSWORD`,
    /// `DB_DATABASE`, `DB_SSL_MODE` and `DB_POOL_MAX` (plus the service's aliases).
    /// Outside production the defaults point at a local trust-auth server
    /// (`postgres@127.0.0.1:5432/<default_database>`); production requires the settings.
    pub fn from_env(
        env: &Env,
        app_env: AppEnv,
        vars: &DbVars,
        default_database: &str,
    ) -> Result<Self, ConfigError> {
        let max_connections = env.parse("DB_POOL_MAX", vars.pool_max, 10u32)?;
        // An explicit `DB_SSL_MODE` wins; otherwise a `DATABASE_URL` keeps its own `sslmode`
        // (a URL asking for `require` must never be quietly relaxed), and the parts default
        // to `prefer`.
        let ssl_mode = match env.lookup("DB_SSL_MODE", vars.ssl_mode) {
            None => None,
            Some((v, used)) => Some(PgSslMode::from_str(v).map_err(|_| {
                ConfigError::invalid(
                    used,
                    "expected disable, prefer, require, verify-ca or verify-full",
                )
            })?),
        };
        let options = if let Some(url) = env.secret("DATABASE_URL", &[], AppEnv::Development)? {
            let options = PgConnectOptions::from_str(url.expose_secret())
                .map_err(|e| ConfigError::invalid("DATABASE_URL", e.to_string()))?;
            match ssl_mode {
                Some(mode) => options.ssl_mode(mode),
                None => options,
            }
        } else {
            let prod = app_env.is_production();
            let host = env.string("DB_HOST", vars.host, "127.0.0.1");
            let port = env.parse("DB_PORT", vars.port, 5432u16)?;
            let user = if prod {
                env.required("DB_USERNAME", vars.user)?
            } else {
                env.string("DB_USERNAME", vars.user, "postgres")
            };
            let database = if prod {
                env.required("DB_DATABASE", vars.database)?
            } else {
                env.string("DB_DATABASE", vars.database, default_database)
            };
            let mut o = PgConnectOptions::new()
                .host(&host)
                .port(port)
                .username(&user)
                .database(&database)
                .ssl_mode(ssl_mode.unwrap_or(PgSslMode::Prefer));
            if let Some(pw) = env.secret("DB_PASSWORD", vars.password, AppEnv::Development)? {
                o = o.password(pw.expose_secret());
            } else if prod {
                return Err(ConfigError::Missing {
                    name: "DB_PASSWORD".into(),
                });
            }
            o
        };
        Ok(Self {
            options,
            max_connections: max_connections.max(1),
            acquire_timeout: Duration::from_secs(5),
        })
    }

    /// Applies a boolean "use TLS" setting of the original's (`DB_SSL`, `EXECUTOR_DB_SSL`):
    /// when `DB_SSL_MODE` is not set and the flag is true, a mode weaker than `require`
    /// becomes `require`. A stronger mode (a URL's `verify-full`) is kept.
    pub fn require_tls_if_flagged(
        &mut self,
        env: &Env,
        vars: &DbVars,
        flag: &str,
    ) -> Result<(), ConfigError> {
        if env.lookup("DB_SSL_MODE", vars.ssl_mode).is_some() || !env.bool(flag, &[], false)? {
            return Ok(());
        }
        if matches!(
            self.options.get_ssl_mode(),
            PgSslMode::Disable | PgSslMode::Allow | PgSslMode::Prefer
        ) {
            self.options = self.options.clone().ssl_mode(PgSslMode::Require);
        }
        Ok(())
    }

    /// Settings for an explicit URL (tests, launchers).
    pub fn from_url(url: &SecretString) -> Result<Self, sqlx::Error> {
        Ok(Self {
            options: PgConnectOptions::from_str(url.expose_secret())?,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        })
    }

    /// The database name.
    #[must_use]
    pub fn database(&self) -> String {
        self.options.get_database().unwrap_or("postgres").to_owned()
    }

    /// A lazily connecting pool: the service starts even while PostgreSQL is briefly down and
    /// recovers without a restart.
    ///
    /// sqlx pings a connection when it goes back to the pool, and by default again before
    /// every use, which costs every statement a second round trip. Here only a connection
    /// that sat idle for [`PING_IF_IDLE_FOR`] or more (long enough for a restart or a dropped
    /// link to have broken it) is pinged before use; a broken one is replaced, as before.
    #[must_use]
    pub fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE_FOR {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(self.options.clone())
    }
}

/// How long a pooled connection may sit idle and still be used without a ping first.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// `s` without U+0000, which PostgreSQL `text` and `jsonb` cannot hold: a value from outside
/// must never make an insert fail (and a request answer 500) for its content.
#[must_use]
pub fn strip_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    }
}

/// `s` in at most `max` characters, for a bounded column (`varchar(n)`): a longer value keeps
/// its start and ends with its length and the head of its SHA-256, so a value from outside is
/// stored recognisably instead of failing the insert.
///
/// ```
/// use aegis_common::db::bounded;
/// assert_eq!(bounded("web".into(), 255), "web");
/// let long = bounded("n".repeat(300), 64);
/// assert_eq!(long.chars().count(), 64);
/// assert!(long.starts_with("nnnn") && long.contains("…[300 chars, sha256 "), "{long}");
/// ```
#[must_use]
pub fn bounded(s: String, max: usize) -> String {
    use sha2::Digest as _;
    let len = s.chars().count();
    if len <= max {
        return s;
    }
    let digest = hex::encode(sha2::Sha256::digest(s.as_bytes()));
    let tail = format!(
        "…[{len} chars, sha256 {}]",
        digest.get(..16).unwrap_or(&digest)
    );
    let keep = max.saturating_sub(tail.chars().count());
    let mut out: String = s.chars().take(keep).collect();
    out.push_str(&tail);
    out.chars().take(max).collect()
}

/// [`strip_nul`] for a borrowed string: borrowed back when it holds no NUL (the common case), so
/// a value only bound as a parameter costs no copy.
#[must_use]
pub fn strip_nul_str(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// [`strip_nul`] for every string and key of a JSON value (`jsonb` refuses `\u0000`). Works in
/// place: a value without NUL (the common case, on request paths) is returned without
/// allocating.
#[must_use]
pub fn strip_nul_json(mut v: serde_json::Value) -> serde_json::Value {
    strip_nul_in_place(&mut v);
    v
}

fn strip_nul_in_place(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('\0') => s.retain(|c| c != '\0'),
        Value::Array(items) => items.iter_mut().for_each(strip_nul_in_place),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (strip_nul(k), v))
                    .collect();
            }
            map.values_mut().for_each(strip_nul_in_place);
        }
        _ => {}
    }
}

/// Creates the configured database when it does not exist (development and tests only).
/// Returns whether it was created. The whole check is bounded by the pool's acquire timeout,
/// so a server that accepts connections but never answers cannot hang start-up.
pub async fn create_database_if_missing(cfg: &DbConfig) -> Result<bool, sqlx::Error> {
    tokio::time::timeout(cfg.acquire_timeout, create_database_unbounded(cfg))
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
}

/// Where the configuration points, for log lines: `host:port/database` (never credentials).
#[must_use]
pub fn describe(cfg: &DbConfig) -> String {
    format!(
        "{}:{}/{}",
        cfg.options.get_host(),
        cfg.options.get_port(),
        cfg.database()
    )
}

async fn create_database_unbounded(cfg: &DbConfig) -> Result<bool, sqlx::Error> {
    let name = cfg.database();
    let mut conn = PgConnection::connect_with(&cfg.options.clone().database("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
    if exists {
        return Ok(false);
    }
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match conn
        .execute(format!("CREATE DATABASE {quoted}").as_str())
        .await
    {
        Ok(_) => Ok(true),
        // Another process created it between the check and the CREATE.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs `migrator` with a bounded number of attempts, so a service started a moment before
/// PostgreSQL still comes up.
pub async fn migrate_with_retry(
    pool: &PgPool,
    migrator: &Migrator,
    attempts: u32,
) -> Result<(), sqlx::migrate::MigrateError> {
    let mut delay = Duration::from_millis(200);
    let mut last = None;
    let attempts = attempts.max(1);
    for attempt in 1..=attempts {
        match migrator.run(pool).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    attempt,
                    attempts,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "waiting for PostgreSQL: migration attempt failed"
                );
                last = Some(e);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    Err(last.unwrap_or(sqlx::migrate::MigrateError::Execute(
        sqlx::Error::PoolTimedOut,
    )))
}

/// Whether every migration known to `migrator` is applied (readiness).
pub async fn migrations_applied(pool: &PgPool, migrator: &Migrator) -> Result<(), String> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
            .map_err(|e| e.to_string())?;
    let missing = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .filter(|m| !applied.contains(&m.version))
        .count();
    if missing == 0 {
        Ok(())
    } else {
        Err(format!("{missing} migration(s) pending"))
    }
}

#[cfg(test)]
mod pg_safe_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jsonb_numbers_read_back_as_the_floats_that_were_written() {
        // PostgreSQL prints jsonb numbers in full (f64::MAX as 309 digits); serde_json's
        // default fast path rounds that past f64::MAX ("number out of range"), which made a
        // stored audit row unreadable. The workspace enables `float_roundtrip`.
        let printed = format!("17976931348623157{}", "0".repeat(292));
        let back: serde_json::Value = serde_json::from_str(&printed).unwrap();
        assert_eq!(back.as_f64(), Some(f64::MAX));
    }

    #[test]
    fn long_values_are_bounded_recognisably_in_characters_not_bytes() {
        assert_eq!(bounded("web".into(), 255), "web");
        assert_eq!(bounded("é".repeat(255), 255), "é".repeat(255));
        let long = bounded("é".repeat(300), 255);
        assert_eq!(long.chars().count(), 255);
        assert!(long.starts_with("éé"), "{long}");
        assert!(
            long.ends_with(']') && long.contains("…[300 chars, sha256 "),
            "{long}"
        );
        assert_ne!(bounded("a".repeat(300), 64), bounded("b".repeat(300), 64));
        assert_eq!(bounded("x".repeat(100), 3).chars().count(), 3);
    }

    #[test]
    fn nul_characters_are_dropped_from_strings_and_keys() {
        assert_eq!(strip_nul("a\0b".into()), "ab");
        assert_eq!(strip_nul_str("a\0b\0"), "ab");
        assert!(matches!(
            strip_nul_str("ab"),
            std::borrow::Cow::Borrowed("ab")
        ));
        assert_eq!(
            strip_nul_json(json!({"k\0": ["x\0y", 1, {"z": "\0"}]})),
            json!({"k": ["xy", 1, {"z": ""}]})
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_ALIASES: DbVars = DbVars {
        host: &[],
        port: &[],
        user: &[],
        password: &[],
        database: &[],
        ssl_mode: &[],
        pool_max: &[],
    };

    fn ssl_mode_of(pairs: &[(&str, &str)]) -> PgSslMode {
        let env = Env::from_pairs(pairs.iter().copied());
        DbConfig::from_env(&env, AppEnv::Development, &NO_ALIASES, "x")
            .unwrap()
            .options
            .get_ssl_mode()
    }

    #[test]
    fn a_database_url_keeps_its_sslmode_unless_db_ssl_mode_is_set() {
        let url = "postgres://app@db:5432/aegis?sslmode=require";
        assert!(matches!(
            ssl_mode_of(&[("DATABASE_URL", url)]),
            PgSslMode::Require
        ));
        let url = "postgres://app@127.0.0.1:5432/aegis?sslmode=disable";
        assert!(matches!(
            ssl_mode_of(&[("DATABASE_URL", url)]),
            PgSslMode::Disable
        ));
        assert!(matches!(
            ssl_mode_of(&[("DATABASE_URL", url), ("DB_SSL_MODE", "verify-full")]),
            PgSslMode::VerifyFull
        ));
        assert!(matches!(
            ssl_mode_of(&[("DB_HOST", "db")]),
            PgSslMode::Prefer
        ));
        assert!(matches!(
            ssl_mode_of(&[("DB_HOST", "db"), ("DB_SSL_MODE", "require")]),
            PgSslMode::Require
        ));
    }

    #[test]
    fn a_tls_flag_raises_a_weak_mode_to_require_and_never_lowers_one() {
        let flagged = |pairs: &[(&str, &str)]| {
            let env = Env::from_pairs(pairs.iter().copied());
            let mut cfg = DbConfig::from_env(&env, AppEnv::Development, &NO_ALIASES, "x").unwrap();
            cfg.require_tls_if_flagged(&env, &NO_ALIASES, "DB_SSL")
                .map(|()| cfg.options.get_ssl_mode())
        };
        assert!(matches!(
            flagged(&[("DB_SSL", "true")]),
            Ok(PgSslMode::Require)
        ));
        assert!(matches!(
            flagged(&[("DB_SSL", "false")]),
            Ok(PgSslMode::Prefer)
        ));
        let strict = "postgres://app@db/aegis?sslmode=verify-full";
        assert!(matches!(
            flagged(&[("DATABASE_URL", strict), ("DB_SSL", "true")]),
            Ok(PgSslMode::VerifyFull)
        ));
        // An explicit mode is the operator's last word.
        assert!(matches!(
            flagged(&[("DB_SSL_MODE", "disable"), ("DB_SSL", "true")]),
            Ok(PgSslMode::Disable)
        ));
        assert!(flagged(&[("DB_SSL", "maybe")]).is_err());
    }

    #[test]
    fn debug_output_never_contains_the_password() {
        let env = Env::from_pairs([(
            "DATABASE_URL",
            "postgres://app:s3cr3t-pw@db:5432/aegis_backend",
        )]);
        let cfg = DbConfig::from_env(&env, AppEnv::Development, &NO_ALIASES, "x").unwrap();
        let printed = format!("{cfg:?}");
        assert!(!printed.contains("s3cr3t-pw"), "{printed}");
        assert!(printed.contains("aegis_backend"));
    }
}
