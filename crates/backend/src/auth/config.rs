//! Authentication settings, read once with the rest of [`crate::config::Config`].
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `JWT_ACCESS_EXPIRATION` (`JWT_EXPIRES_IN`) | `15m` | access-token lifetime (`<n><ms\|s\|m\|h\|d\|w\|y>`, bare = seconds) |
//! | `JWT_REFRESH_EXPIRATION` (`JWT_REFRESH_EXPIRES_IN`) | `7d` | refresh-token lifetime |
//! | `ARGON2_MEMORY_KIB` / `ARGON2_ITERATIONS` / `ARGON2_PARALLELISM` | 19456 / 2 / 1 | argon2id cost (OWASP) |
//! | `PASSWORD_HASH_CONCURRENCY` | number of cores | hashes running at once (bounds memory under a login flood) |
//! | `BCRYPT_ROUNDS` | — | accepted and ignored (legacy env files) |
//! | `SERVICE_API_KEYS` | empty | comma list of accepted `X-API-Key` values |
//! | `TRUST_PROXY` | empty | comma list of CIDRs/IPs whose `X-Forwarded-For` is trusted |
//! | `RATE_LIMIT_TTL` / `RATE_LIMIT_MAX` | 60 / 100 | default limiter window (s) and maximum |
//! | `RATE_LIMIT_DISABLED` | `false` | skip every rate limit (load tests only; warned at start-up) |
//! | `LOGIN_LOCKOUT_THRESHOLD` / `LOGIN_LOCKOUT_SECONDS` | 5 / 900 | failures before a lockout, first lockout length; threshold 0 disables |
//! | `LOGIN_LOCKOUT_MAX_SECONDS` | 86400 | cap of the doubling lockout |
//! | `FRONTEND_URL` | `http://localhost:3001` | reset-link base |
//! | `PASSWORD_RESET_PATH` | `/auth/forgot-password` | reset-link path |
//! | `PASSWORD_RESET_EXPIRY_MINUTES` | 60 | reset-token lifetime (≥ 1) |
//! | `SMTP_URL` or `SMTP_HOST`/`SMTP_PORT`/`SMTP_USERNAME`/`SMTP_PASSWORD` | unset | SMTP relay; unset = no mail (development logs the link) |
//! | `SMTP_FROM` | `Aegis <no-reply@aegis.local>` | sender |
//! | `BOOTSTRAP_ADMIN_EMAIL` (`ADMIN_EMAIL`) / `BOOTSTRAP_ADMIN_PASSWORD` (`ADMIN_PASSWORD`) | unset | admin created at start-up when both are set and the e-mail is free |

use std::time::Duration;

use aegis_common::config::{AppEnv, ConfigError, Env, parse_duration};
use ipnet::IpNet;
use secrecy::SecretString;

/// Authentication, password, rate-limit and lockout settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Access-token lifetime.
    pub access_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_ttl: Duration,
    /// argon2 memory in KiB.
    pub argon2_memory_kib: u32,
    /// argon2 iterations.
    pub argon2_iterations: u32,
    /// argon2 lanes.
    pub argon2_parallelism: u32,
    /// Concurrent hash computations.
    pub hash_concurrency: usize,
    /// Accepted service keys.
    pub service_api_keys: Vec<SecretString>,
    /// Proxies whose `X-Forwarded-For` is trusted.
    pub trust_proxy: Vec<IpNet>,
    /// Default limiter window.
    pub rate_limit_ttl: Duration,
    /// Default limiter maximum.
    pub rate_limit_max: u64,
    /// All rate limits off (load tests).
    pub rate_limit_disabled: bool,
    /// Failures before a lockout (0 = never).
    pub lockout_threshold: u64,
    /// First lockout length and failure-counting window.
    pub lockout_base: Duration,
    /// Cap of the doubling lockout.
    pub lockout_max: Duration,
    /// Reset-link base.
    pub frontend_url: String,
    /// Reset-link path.
    pub password_reset_path: String,
    /// Reset-token lifetime.
    pub password_reset_expiry: Duration,
    /// SMTP relay URL (`smtp[s]://user:pass@host:port`), if mail is configured.
    pub smtp_url: Option<SecretString>,
    /// Sender address.
    pub smtp_from: String,
    /// Bootstrap admin e-mail.
    pub bootstrap_admin_email: Option<String>,
    /// Bootstrap admin password.
    pub bootstrap_admin_password: Option<SecretString>,
}

/// `parse_duration` plus the `w` (week) and `y` (year) units that `JWT_EXPIRES_IN` accepts.
fn duration(
    env: &Env,
    name: &str,
    aliases: &[&str],
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some((v, used)) = env.lookup(name, aliases) else {
        return Ok(default);
    };
    let v = v.trim();
    let week_or_year = v
        .strip_suffix('w')
        .map(|n| (n, 7 * 86_400))
        .or_else(|| v.strip_suffix('y').map(|n| (n, 365 * 86_400)));
    let parsed = match week_or_year {
        Some((n, unit)) => n
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .map(Duration::from_secs),
        None => parse_duration(v),
    };
    match parsed {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(ConfigError::invalid(
            used,
            format!("expected a duration like 15m or 7d, got {v:?}"),
        )),
    }
}

fn smtp_url(env: &Env) -> Result<Option<SecretString>, ConfigError> {
    if let Some(url) = env.opt_string("SMTP_URL", &[]) {
        return Ok(Some(SecretString::from(url)));
    }
    let Some(host) = env.opt_string("SMTP_HOST", &[]) else {
        return Ok(None);
    };
    let port: u16 = env.parse("SMTP_PORT", &[], 587u16)?;
    // Port 465 is implicit TLS; anything else upgrades with STARTTLS.
    let scheme = if port == 465 { "smtps" } else { "smtp" };
    let auth = match (
        env.opt_string("SMTP_USERNAME", &["SMTP_USER"]),
        env.opt_string("SMTP_PASSWORD", &["SMTP_PASS"]),
    ) {
        (Some(u), Some(p)) => format!("{}:{}@", encode(&u), encode(&p)),
        (Some(u), None) => format!("{}@", encode(&u)),
        _ => String::new(),
    };
    let query = if port == 465 { "" } else { "?tls=required" };
    Ok(Some(SecretString::from(format!(
        "{scheme}://{auth}{host}:{port}{query}"
    ))))
}

/// Percent-encodes the characters that would break a URL's userinfo.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn trust_proxy(env: &Env) -> Result<Vec<IpNet>, ConfigError> {
    env.list("TRUST_PROXY", &[], &[])
        .iter()
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ConfigError::invalid(
                        "TRUST_PROXY",
                        format!("{item:?} is not a CIDR or IP address"),
                    )
                })
        })
        .collect()
}

impl AuthConfig {
    /// Reads the settings; errors name the variable.
    pub fn from_env(env: &Env, app_env: AppEnv) -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let reset_minutes: u64 = env.parse("PASSWORD_RESET_EXPIRY_MINUTES", &[], 60u64)?;
        if reset_minutes == 0 {
            return Err(ConfigError::invalid(
                "PASSWORD_RESET_EXPIRY_MINUTES",
                "must be at least 1",
            ));
        }
        let argon2_memory_kib = env.parse("ARGON2_MEMORY_KIB", &[], 19_456u32)?;
        let argon2_iterations = env.parse("ARGON2_ITERATIONS", &[], 2u32)?;
        let argon2_parallelism = env.parse("ARGON2_PARALLELISM", &[], 1u32)?;
        argon2::Params::new(
            argon2_memory_kib,
            argon2_iterations,
            argon2_parallelism,
            None,
        )
        .map_err(|e| {
            ConfigError::invalid(
                "ARGON2_MEMORY_KIB",
                format!("invalid argon2 parameters: {e}"),
            )
        })?;
        let service_api_keys = env
            .list("SERVICE_API_KEYS", &[], &[])
            .into_iter()
            .map(SecretString::from)
            .collect::<Vec<_>>();
        if app_env.is_production() {
            for key in &service_api_keys {
                if let Some(reason) =
                    aegis_common::config::secret_weakness(secrecy::ExposeSecret::expose_secret(key))
                {
                    return Err(ConfigError::WeakSecret {
                        name: "SERVICE_API_KEYS".into(),
                        reason,
                    });
                }
            }
        }
        let hash_concurrency: usize = env.parse("PASSWORD_HASH_CONCURRENCY", &[], cores)?;
        Ok(Self {
            access_ttl: duration(
                env,
                "JWT_ACCESS_EXPIRATION",
                &["JWT_EXPIRES_IN"],
                Duration::from_secs(15 * 60),
            )?,
            refresh_ttl: duration(
                env,
                "JWT_REFRESH_EXPIRATION",
                &["JWT_REFRESH_EXPIRES_IN"],
                Duration::from_secs(7 * 86_400),
            )?,
            argon2_memory_kib,
            argon2_iterations,
            argon2_parallelism,
            hash_concurrency: hash_concurrency.max(1),
            service_api_keys,
            trust_proxy: trust_proxy(env)?,
            rate_limit_ttl: duration(env, "RATE_LIMIT_TTL", &[], Duration::from_secs(60))?,
            rate_limit_max: env.parse("RATE_LIMIT_MAX", &[], 100u64)?,
            rate_limit_disabled: env.bool("RATE_LIMIT_DISABLED", &[], false)?,
            lockout_threshold: env.parse("LOGIN_LOCKOUT_THRESHOLD", &[], 5u64)?,
            lockout_base: duration(env, "LOGIN_LOCKOUT_SECONDS", &[], Duration::from_secs(900))?,
            lockout_max: duration(
                env,
                "LOGIN_LOCKOUT_MAX_SECONDS",
                &[],
                Duration::from_secs(86_400),
            )?,
            frontend_url: env
                .string("FRONTEND_URL", &[], "http://localhost:3001")
                .trim_end_matches('/')
                .to_owned(),
            password_reset_path: {
                let p = env.string("PASSWORD_RESET_PATH", &[], "/auth/forgot-password");
                if p.starts_with('/') {
                    p
                } else {
                    format!("/{p}")
                }
            },
            password_reset_expiry: Duration::from_secs(reset_minutes * 60),
            smtp_url: smtp_url(env)?,
            smtp_from: env.string("SMTP_FROM", &[], "Aegis <no-reply@aegis.local>"),
            bootstrap_admin_email: env
                .opt_string("BOOTSTRAP_ADMIN_EMAIL", &["ADMIN_EMAIL"])
                .map(|e| e.trim().to_lowercase()),
            bootstrap_admin_password: env
                .opt_string("BOOTSTRAP_ADMIN_PASSWORD", &["ADMIN_PASSWORD"])
                .map(SecretString::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let cfg = AuthConfig::from_env(&Env::from_pairs(Vec::<(&str, &str)>::new()), AppEnv::Test)
            .unwrap();
        assert_eq!(cfg.access_ttl, Duration::from_secs(900));
        assert_eq!(cfg.refresh_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(
            (
                cfg.argon2_memory_kib,
                cfg.argon2_iterations,
                cfg.argon2_parallelism
            ),
            (19_456, 2, 1)
        );
        assert_eq!(cfg.lockout_threshold, 5);
        assert_eq!(cfg.password_reset_path, "/auth/forgot-password");
        assert!(cfg.smtp_url.is_none());
    }

    #[test]
    fn aliases_weeks_and_smtp_parts_are_understood() {
        let env = Env::from_pairs([
            ("JWT_EXPIRES_IN", "2w"),
            ("ADMIN_EMAIL", " Root@Example.com "),
            ("SMTP_HOST", "mail.local"),
            ("SMTP_PORT", "465"),
            ("SMTP_USERNAME", "u@x"),
            ("SMTP_PASSWORD", "p:w"),
            ("TRUST_PROXY", "10.0.0.0/8, 192.168.1.1"),
        ]);
        let cfg = AuthConfig::from_env(&env, AppEnv::Test).unwrap();
        assert_eq!(cfg.access_ttl, Duration::from_secs(14 * 86_400));
        assert_eq!(
            cfg.bootstrap_admin_email.as_deref(),
            Some("root@example.com")
        );
        let url = secrecy::ExposeSecret::expose_secret(cfg.smtp_url.as_ref().unwrap()).to_owned();
        assert_eq!(url, "smtps://u%40x:p%3Aw@mail.local:465");
        assert_eq!(cfg.trust_proxy.len(), 2);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("TRUST_PROXY", "nope"),
            ("PASSWORD_RESET_EXPIRY_MINUTES", "0"),
            ("JWT_ACCESS_EXPIRATION", "soon"),
        ] {
            let err = AuthConfig::from_env(&Env::from_pairs([(k, v)]), AppEnv::Test).unwrap_err();
            assert!(err.to_string().contains(k), "{err}");
        }
    }
}
