//! Typed configuration from the environment.
//!
//! Services read their settings through [`Env`], a snapshot of the environment (or of a map in
//! tests). It parses strictly: a boolean is one of `true|false|1|0|yes|no|on|off`, a number must
//! parse, and every error names the variable. Aliases are accepted with a deprecation note, and
//! production refuses empty, placeholder or short secrets.

use std::{collections::HashMap, fmt, str::FromStr, time::Duration};

use secrecy::{ExposeSecret, SecretString};

/// A configuration error; the message always names the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{name} is required but not set")]
    Missing {
        /// The variable.
        name: String,
    },
    /// A variable is set to something unacceptable.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: String,
        /// Why.
        reason: String,
    },
    /// A secret that production refuses.
    #[error("{name} is not acceptable in production: {reason}")]
    WeakSecret {
        /// The variable.
        name: String,
        /// Why (never the value itself).
        reason: String,
    },
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] for `name`.
    pub fn invalid(name: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

/// `APP_ENV`: which rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Local development: readable logs, creates its database when missing.
    Development,
    /// Tests.
    Test,
    /// Production: JSON logs, strict secrets, no signature helpers.
    Production,
}

impl AppEnv {
    /// Whether this is production.
    #[must_use]
    pub fn is_production(self) -> bool {
        self == Self::Production
    }

    /// The canonical name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Production => "production",
        }
    }
}

impl fmt::Display for AppEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AppEnv {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "test" => Ok(Self::Test),
            "production" | "prod" => Ok(Self::Production),
            other => Err(format!(
                "expected development, test or production, got {other:?}"
            )),
        }
    }
}

/// Minimum length of a production secret, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Fragments that mark a value as a placeholder copied from an example file.
const PLACEHOLDER_FRAGMENTS: &[&str] = &[
    "change_this",
    "change-this",
    "changethis",
    "change_me",
    "change-me",
    "changeme",
    "your_",
    "your-",
    "placeholder",
    "example",
    "replace_me",
    "replace-me",
];

/// Whole values that are known defaults of the original's deployment files.
const KNOWN_DEFAULTS: &[&str] = &[
    "secret",
    "password",
    "dev_api_key",
    "aegis_password",
    "test-secret",
    "admin",
    "changeit",
];

/// Why `value` is not an acceptable production secret, if it is not.
#[must_use]
pub fn secret_weakness(value: &str) -> Option<String> {
    let lower = value.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return Some("it is empty".into());
    }
    if KNOWN_DEFAULTS.contains(&lower.as_str())
        || PLACEHOLDER_FRAGMENTS.iter().any(|p| lower.contains(p))
    {
        return Some("it is a placeholder or a known default".into());
    }
    if value.len() < MIN_SECRET_LEN {
        return Some(format!(
            "it is shorter than {MIN_SECRET_LEN} bytes ({} bytes)",
            value.len()
        ));
    }
    None
}

/// A snapshot of environment variables with typed, strict accessors.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
    notes: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets: only the names are shown.
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

impl Env {
    /// The process environment.
    #[must_use]
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars())
    }

    /// A given set of variables (tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            notes: Default::default(),
        }
    }

    /// Sets a variable in the snapshot (tests and launchers).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// Deprecation notes collected so far (one per alias used); log them once telemetry is up.
    #[must_use]
    pub fn deprecation_notes(&self) -> Vec<String> {
        self.notes.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// The raw value, `None` when unset or empty.
    #[must_use]
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The value of `name`, else of the first set alias (with a deprecation note). Returns the
    /// value and the name it came from.
    #[must_use]
    pub fn lookup<'a>(&'a self, name: &'a str, aliases: &[&'a str]) -> Option<(&'a str, &'a str)> {
        if let Some(v) = self.raw(name) {
            return Some((v, name));
        }
        let (alias, v) = aliases.iter().find_map(|a| self.raw(a).map(|v| (*a, v)))?;
        if let Ok(mut notes) = self.notes.lock() {
            let note = format!("{alias} is deprecated; set {name} instead");
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        Some((v, alias))
    }

    /// A string with a default.
    #[must_use]
    pub fn string(&self, name: &str, aliases: &[&str], default: &str) -> String {
        self.lookup(name, aliases)
            .map_or_else(|| default.to_owned(), |(v, _)| v.trim().to_owned())
    }

    /// An optional string.
    #[must_use]
    pub fn opt_string(&self, name: &str, aliases: &[&str]) -> Option<String> {
        self.lookup(name, aliases).map(|(v, _)| v.trim().to_owned())
    }

    /// A required string.
    pub fn required(&self, name: &str, aliases: &[&str]) -> Result<String, ConfigError> {
        self.opt_string(name, aliases)
            .ok_or_else(|| ConfigError::Missing { name: name.into() })
    }

    /// A strictly parsed boolean.
    pub fn bool(&self, name: &str, aliases: &[&str], default: bool) -> Result<bool, ConfigError> {
        match self.lookup(name, aliases) {
            None => Ok(default),
            Some((v, used)) => parse_bool(v).ok_or_else(|| {
                ConfigError::invalid(
                    used,
                    format!("expected true/false/1/0/yes/no/on/off, got {v:?}"),
                )
            }),
        }
    }

    /// A value parsed with `FromStr`.
    pub fn parse<T>(&self, name: &str, aliases: &[&str], default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.lookup(name, aliases) {
            None => Ok(default),
            Some((v, used)) => v
                .trim()
                .parse()
                .map_err(|e| ConfigError::invalid(used, format!("{e} (got {v:?})"))),
        }
    }

    /// An optional value parsed with `FromStr`.
    pub fn parse_opt<T>(&self, name: &str, aliases: &[&str]) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.lookup(name, aliases) {
            None => Ok(None),
            Some((v, used)) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|e| ConfigError::invalid(used, format!("{e} (got {v:?})"))),
        }
    }

    /// A duration such as `15m`, `7d`, `900s`, `250ms` or a plain number of seconds.
    pub fn duration(
        &self,
        name: &str,
        aliases: &[&str],
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match self.lookup(name, aliases) {
            None => Ok(default),
            Some((v, used)) => parse_duration(v).ok_or_else(|| {
                ConfigError::invalid(
                    used,
                    format!("expected a duration like 15m or 7d, got {v:?}"),
                )
            }),
        }
    }

    /// A comma-separated list, trimmed, empty items dropped.
    #[must_use]
    pub fn list(&self, name: &str, aliases: &[&str], default: &[&str]) -> Vec<String> {
        match self.lookup(name, aliases) {
            None => default.iter().map(|s| (*s).to_owned()).collect(),
            Some((v, _)) => split_list(v),
        }
    }

    /// The environment selector `APP_ENV` (aliases `NODE_ENV`, `ENVIRONMENT`), default development.
    pub fn app_env(&self) -> Result<AppEnv, ConfigError> {
        match self.lookup("APP_ENV", &["NODE_ENV", "ENVIRONMENT"]) {
            None => Ok(AppEnv::Development),
            Some((v, used)) => v.parse().map_err(|e: String| ConfigError::invalid(used, e)),
        }
    }

    /// A secret. In production it must be set, not a placeholder and at least
    /// [`MIN_SECRET_LEN`] bytes; elsewhere a missing secret yields `None`.
    pub fn secret(
        &self,
        name: &str,
        aliases: &[&str],
        app_env: AppEnv,
    ) -> Result<Option<SecretString>, ConfigError> {
        if app_env.is_production() && self.lookup(name, aliases).is_none() {
            return Err(ConfigError::Missing { name: name.into() });
        }
        self.optional_secret(name, aliases, app_env)
    }

    /// A secret that may be unset in every environment; in production, one that is set must
    /// not be weak (a placeholder, a known default, or shorter than [`MIN_SECRET_LEN`]).
    pub fn optional_secret(
        &self,
        name: &str,
        aliases: &[&str],
        app_env: AppEnv,
    ) -> Result<Option<SecretString>, ConfigError> {
        let value = self.lookup(name, aliases);
        if app_env.is_production()
            && let Some((v, used)) = value
            && let Some(reason) = secret_weakness(v)
        {
            return Err(ConfigError::WeakSecret {
                name: used.into(),
                reason,
            });
        }
        Ok(value.map(|(v, _)| SecretString::from(v.to_owned())))
    }

    /// Every value of a comma-separated list of secrets; in production none may be weak.
    pub fn secret_list(
        &self,
        name: &str,
        app_env: AppEnv,
    ) -> Result<Vec<SecretString>, ConfigError> {
        let values = self.list(name, &[], &[]);
        if app_env.is_production() {
            for value in &values {
                if let Some(reason) = secret_weakness(value) {
                    return Err(ConfigError::WeakSecret {
                        name: name.into(),
                        reason,
                    });
                }
            }
        }
        Ok(values.into_iter().map(SecretString::from).collect())
    }

    /// A secret that is required in every environment.
    pub fn required_secret(
        &self,
        name: &str,
        aliases: &[&str],
        app_env: AppEnv,
    ) -> Result<SecretString, ConfigError> {
        self.secret(name, aliases, app_env)?
            .ok_or_else(|| ConfigError::Missing { name: name.into() })
    }
}

/// Strict boolean parsing: `true|false|1|0|yes|no|on|off`, case-insensitive.
#[must_use]
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses `15m`, `7d`, `12h`, `900s`, `250ms` or a plain number of seconds.
#[must_use]
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => return Some(Duration::from_millis(n)),
        "m" | "min" | "mins" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// Splits a comma list, trimming and dropping empty items.
#[must_use]
pub fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Exposes a secret's bytes for comparison or MAC keys; the name says why it is safe here.
#[must_use]
pub fn secret_bytes(secret: &SecretString) -> &[u8] {
    secret.expose_secret().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn booleans_are_strict() {
        let e = env(&[("A", "false"), ("B", "ON"), ("C", "nope")]);
        assert_eq!(e.bool("A", &[], true), Ok(false));
        assert_eq!(e.bool("B", &[], false), Ok(true));
        assert_eq!(e.bool("MISSING", &[], true), Ok(true));
        let err = e.bool("C", &[], false).unwrap_err();
        assert!(err.to_string().contains('C'), "{err}");
    }

    #[test]
    fn production_refuses_placeholder_jwt_secret_and_names_it() {
        let e = env(&[("APP_ENV", "production"), ("JWT_SECRET", "change_this")]);
        let app_env = e.app_env().unwrap();
        let err = e.required_secret("JWT_SECRET", &[], app_env).unwrap_err();
        assert!(matches!(err, ConfigError::WeakSecret { ref name, .. } if name == "JWT_SECRET"));
        assert!(err.to_string().contains("JWT_SECRET"));
        assert!(
            !err.to_string().contains("change_this"),
            "never echo the value"
        );
    }

    #[test]
    fn production_refuses_short_and_missing_secrets() {
        let e = env(&[("S", "abcdefghij")]);
        assert!(matches!(
            e.secret("S", &[], AppEnv::Production),
            Err(ConfigError::WeakSecret { .. })
        ));
        assert!(matches!(
            e.secret("NOPE", &[], AppEnv::Production),
            Err(ConfigError::Missing { .. })
        ));
        assert!(e.secret("S", &[], AppEnv::Development).unwrap().is_some());
        let strong = "k".repeat(20) + "Q9x!vT3mZp0sLw8r";
        let e = env(&[("S", &strong)]);
        assert!(e.secret("S", &[], AppEnv::Production).unwrap().is_some());
    }

    #[test]
    fn aliases_work_and_leave_a_note() {
        let e = env(&[("NODE_ENV", "test"), ("DB_NAME", "x")]);
        assert_eq!(e.app_env().unwrap(), AppEnv::Test);
        assert_eq!(e.string("DB_DATABASE", &["DB_NAME"], "d"), "x");
        let notes = e.deprecation_notes();
        assert!(
            notes
                .iter()
                .any(|n| n.contains("DB_NAME") && n.contains("DB_DATABASE"))
        );
        assert!(notes.iter().any(|n| n.contains("NODE_ENV")));
    }

    #[test]
    fn canonical_name_wins_over_alias() {
        let e = env(&[("APP_ENV", "production"), ("NODE_ENV", "development")]);
        assert_eq!(e.app_env().unwrap(), AppEnv::Production);
    }

    #[test]
    fn invalid_app_env_is_an_error() {
        let e = env(&[("APP_ENV", "staging")]);
        assert!(e.app_env().unwrap_err().to_string().contains("APP_ENV"));
    }

    #[test]
    fn durations_and_lists() {
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(split_list(" a, b,,c "), vec!["a", "b", "c"]);
    }

    #[test]
    fn numbers_name_the_variable() {
        let e = env(&[("PORT", "eighty")]);
        let err = e.parse::<u16>("PORT", &[], 3000).unwrap_err();
        assert!(err.to_string().starts_with("PORT is invalid"));
    }

    #[test]
    fn debug_never_shows_values() {
        let e = env(&[("JWT_SECRET", "super-secret-value")]);
        assert!(!format!("{e:?}").contains("super-secret-value"));
    }
}
