//! ai-engine configuration, read once from the environment.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `APP_ENV` (`ENVIRONMENT`, `NODE_ENV`) | `development` | `development`, `test` or `production` |
//! | `HOST` / `PORT` | `0.0.0.0` / `8000` | listen address |
//! | `HTTP_HEADER_READ_TIMEOUT_MS` / `HTTP_MAX_CONNECTIONS` / `SHUTDOWN_DRAIN_TIMEOUT_MS` | `10000` / `4096` / `20000` | a request header's deadline, connections served at once, the SIGTERM drain's deadline ([`aegis_common::server::ServeLimits`]) |
//! | `DATABASE_URL` or `DB_HOST` (`AI_DB_HOST`), `DB_PORT` (`AI_DB_PORT`), `DB_USER` (`AI_DB_USER`), `DB_PASSWORD` (`AI_DB_PASSWORD`), `DB_NAME` (`AI_DB_NAME`), `AI_DB_SSL_MODE`, `AI_DB_POOL_SIZE` | local `aegis_ai` outside production | PostgreSQL |
//! | `API_KEY` | unset (auth off) | `X-API-Key` for `/api/v1/*`; required in production |
//! | `ADMIN_API_KEY` | unset | key for training calls |
//! | `ANOMALY_THRESHOLD` | `0.85` | contamination = 1 − threshold; must be in [0.5, 1.0) |
//! | `MIN_SAMPLES_FOR_TRAINING` | `100` | baseline size before the forest is used (min 10) |
//! | `MAX_BODY_BYTES` | 2 MiB | larger bodies get 413 |
//! | `MAX_ITEMS` | 10000 | longest `metrics`/`logs` list (422 beyond) |
//! | `BASELINE_MAX_ROWS` | 10 × `MIN_SAMPLES_FOR_TRAINING` | anomaly baseline rows kept per series |
//! | `AI_ENGINE_PEERS` | unset | comma-separated base URLs of every ai-engine replica; each anomaly series is owned by one of them (with `AI_ENGINE_SELF_URL`, this replica's URL in the list) |
//! | `AI_ENGINE_PEERS_DNS` | unset | `host:port` of a headless Service whose addresses are the replicas (with `POD_IP`); instead of `AI_ENGINE_PEERS` |
//! | `ANOMALY_MAX_SERIES` | `500` | anomaly series held in memory; the least recently used beyond it is evicted and rebuilt from storage when it returns |
//! | `FAILURE_DETECTION_WINDOW` | 300 | log look-back in seconds |
//! | `RF_MIN_ROWS_PER_CLASS` | 20 | labelled rows per class before the random forest answers |
//! | `RF_RETRAIN_INTERVAL_SECONDS` | 3600 | scheduled retraining when new labels arrived |
//! | `AUTO_MIGRATE` | `true`, except `false` in production | run migrations at start-up |
//! | `LOG_LEVEL` | `info` | `trace/debug/info/warn/warning/error`, any case |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | unset | OTLP/HTTP traces |
//! | `CORS_ALLOWED_ORIGINS` | empty | comma list of allowed origins; empty = no CORS headers |
//! | `FEED_ENABLED` | `false` | run the Prometheus feed |
//! | `PROMETHEUS_URL` | `http://localhost:9090` | feed source |
//! | `FEED_INTERVAL_SECONDS` / `FEED_LOOKBACK_MINUTES` / `FEED_STEP` | `300` / `60` / `15s` | feed schedule and range |
//! | `FEED_QUERIES_FILE` | the mapping | YAML/JSON list of `{category, metric_type, query, scale?}` |
//! | `BACKEND_URL` / `BACKEND_API_KEY` | unset | where anomalies and Kubernetes failures go as remediation signals |
//! | `WATCHER_ENABLED` | `false` | run the Kubernetes watcher (needs `BACKEND_URL`) |
//! | `WATCH_NAMESPACES` | `default` | comma list of namespaces the watcher watches |
//! | `WATCHER_KUBECONFIG`, else `KUBECONFIG` | unset: in-cluster | the watcher's credentials (a read-only identity) |
//! | `WATCHER_LEASE_NAMESPACE` (else `POD_NAMESPACE`) / `WATCHER_LEASE_NAME` / `WATCHER_LEASE_SECONDS` | `default` / `aegis-watcher` / `15` | the Lease one replica holds to be the watcher's leader |
//! | `WATCHER_NOT_READY_SECONDS` | `120` | how long readiness may fail, a pod stay unschedulable or a rollout stay unavailable without progress before it is a failure; also how long a failure must be gone before its return is reported again |
//! | `WATCHER_CRASH_RESTARTS` | `3` | restarts that make a crash loop (or an OOM kill) a failure |
//! | `WATCHER_ROLLOUT_WINDOW_SECONDS` | `900` | a failure that begins within this long after a rollout is blamed on it (rollback) |
//! | `WATCHER_RESTART_COOLDOWN_SECONDS` | `300` | a crash loop back within this long after a restart was recommended is escalated |
//! | `WATCHER_EPISODE_QUIET_SECONDS` | `300` | how long a workload must be free of failures before its episode ends |
//! | `WATCHER_LOG_LINES` / `WATCHER_API_TIMEOUT_SECONDS` | `20` / `10` | log lines kept as evidence; deadline of each API call other than a watch |

use aegis_common::{
    config::{AppEnv, ConfigError, Env},
    db::{DbConfig, DbVars},
};
use secrecy::SecretString;
use std::{path::PathBuf, time::Duration};

use crate::detector::MetricType;

const DB_VARS: DbVars = DbVars {
    host: &["AI_DB_HOST"],
    port: &["AI_DB_PORT"],
    user: &["DB_USERNAME", "AI_DB_USER"],
    password: &["AI_DB_PASSWORD"],
    database: &["DB_NAME", "AI_DB_NAME"],
    ssl_mode: &["AI_DB_SSL_MODE"],
    pool_max: &["AI_DB_POOL_SIZE"],
};

/// The ai-engine's settings.
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
    /// `X-API-Key` for `/api/v1/*`; `None` disables auth (never in production).
    pub api_key: Option<SecretString>,
    /// Key for training calls.
    pub admin_api_key: Option<SecretString>,
    /// `ANOMALY_THRESHOLD`; contamination is `1 - threshold`.
    pub anomaly_threshold: f64,
    /// Baseline size before the forest is used.
    pub min_samples_for_training: usize,
    /// Body limit in bytes.
    pub max_body_bytes: usize,
    /// `MAX_ITEMS`: longest `metrics` or `logs` list.
    pub max_items: usize,
    /// `BASELINE_MAX_ROWS`: anomaly baseline ring size per series.
    pub baseline_max_rows: usize,
    /// `ANOMALY_MAX_SERIES`: anomaly series held in memory.
    pub anomaly_max_series: usize,
    /// The replicas among which anomaly series are shared out (`AI_ENGINE_PEERS`,
    /// `AI_ENGINE_SELF_URL`, `AI_ENGINE_PEERS_DNS`, `POD_IP`).
    pub membership: crate::routing::Membership,
    /// `FAILURE_DETECTION_WINDOW` (seconds): log look-back.
    pub failure_window: chrono::Duration,
    /// `RF_MIN_ROWS_PER_CLASS`: rows per labelled class before the forest answers.
    pub rf_min_rows_per_class: usize,
    /// `RF_RETRAIN_INTERVAL_SECONDS`: scheduled retraining when new labels arrived.
    pub rf_retrain_interval: std::time::Duration,
    /// Run migrations at start-up.
    pub auto_migrate: bool,
    /// `CORS_ALLOWED_ORIGINS`: exact origins allowed (empty = no CORS headers).
    pub cors_origins: Vec<String>,
    /// The Prometheus feed, when `FEED_ENABLED=true`.
    pub feed: Option<FeedConfig>,
    /// The Kubernetes watcher, when `WATCHER_ENABLED=true`.
    pub watcher: Option<WatcherConfig>,
    /// Tracing filter.
    pub log_level: String,
    /// OTLP endpoint.
    pub otlp_endpoint: Option<String>,
}

impl Config {
    /// Reads and validates every setting; errors name the variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let app_env = env.app_env()?;
        let api_key = env.secret("API_KEY", &[], app_env)?;
        let anomaly_threshold: f64 = env.parse("ANOMALY_THRESHOLD", &[], 0.85)?;
        if !(0.5..1.0).contains(&anomaly_threshold) {
            return Err(ConfigError::invalid(
                "ANOMALY_THRESHOLD",
                format!("must be in [0.5, 1.0), got {anomaly_threshold}"),
            ));
        }
        let min_samples: usize = env.parse("MIN_SAMPLES_FOR_TRAINING", &[], 100)?;
        Ok(Self {
            app_env,
            host: env.string("HOST", &[], "0.0.0.0"),
            port: env.parse("PORT", &[], 8000u16)?,
            serve: aegis_common::server::ServeLimits::from_env(env)?,
            db: DbConfig::from_env(env, app_env, &DB_VARS, "aegis_ai")?,
            api_key,
            admin_api_key: env.secret("ADMIN_API_KEY", &[], AppEnv::Development)?,
            anomaly_threshold,
            min_samples_for_training: min_samples.max(10),
            max_body_bytes: env.parse("MAX_BODY_BYTES", &[], 2 * 1024 * 1024)?,
            max_items: env.parse("MAX_ITEMS", &[], 10_000)?,
            baseline_max_rows: env
                .parse("BASELINE_MAX_ROWS", &[], 10 * min_samples.max(10))?
                .max(1),
            anomaly_max_series: env.parse("ANOMALY_MAX_SERIES", &[], 500usize)?.max(1),
            membership: membership(env)?,
            failure_window: chrono::Duration::seconds(env.parse(
                "FAILURE_DETECTION_WINDOW",
                &[],
                300i64,
            )?),
            rf_min_rows_per_class: env.parse("RF_MIN_ROWS_PER_CLASS", &[], 20usize)?.max(1),
            rf_retrain_interval: std::time::Duration::from_secs(
                env.parse("RF_RETRAIN_INTERVAL_SECONDS", &[], 3600u64)?
                    .max(1),
            ),
            auto_migrate: env.bool("AUTO_MIGRATE", &[], !app_env.is_production())?,
            cors_origins: env.list("CORS_ALLOWED_ORIGINS", &[], &[]),
            feed: feed_config(env, app_env)?,
            watcher: WatcherConfig::from_env(env, app_env)?,
            log_level: env.string("LOG_LEVEL", &[], "info"),
            otlp_endpoint: env.opt_string("OTEL_EXPORTER_OTLP_ENDPOINT", &[]),
        })
    }
}

/// How the replicas that share out anomaly series are found (see [`crate::routing`]).
fn membership(env: &Env) -> Result<crate::routing::Membership, ConfigError> {
    use crate::routing::Membership;
    let set = |name: &str| env.opt_string(name, &[]).filter(|v| !v.is_empty());
    match (set("AI_ENGINE_PEERS"), set("AI_ENGINE_PEERS_DNS")) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            "AI_ENGINE_PEERS_DNS",
            "set AI_ENGINE_PEERS or AI_ENGINE_PEERS_DNS, not both",
        )),
        (Some(list), None) => {
            let mut peers = Vec::new();
            for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let url = reqwest::Url::parse(p).map_err(|e| {
                    ConfigError::invalid("AI_ENGINE_PEERS", format!("{p:?} is not a URL: {e}"))
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(ConfigError::invalid(
                        "AI_ENGINE_PEERS",
                        format!("{p:?} is not an http(s) base URL"),
                    ));
                }
                peers.push(p.trim_end_matches('/').to_owned());
            }
            let self_url = env.required("AI_ENGINE_SELF_URL", &[])?;
            let self_url = self_url.trim_end_matches('/').to_owned();
            if !peers.contains(&self_url) {
                return Err(ConfigError::invalid(
                    "AI_ENGINE_SELF_URL",
                    format!("{self_url:?} is not one of AI_ENGINE_PEERS"),
                ));
            }
            Ok(Membership::Static { self_url, peers })
        }
        (None, Some(hostport)) => {
            let (host, port) = hostport
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
                .filter(|(h, _)| !h.is_empty())
                .ok_or_else(|| {
                    ConfigError::invalid(
                        "AI_ENGINE_PEERS_DNS",
                        format!("expected host:port, got {hostport:?}"),
                    )
                })?;
            let ip = env.required("POD_IP", &[])?;
            let self_ip = ip.parse().map_err(|_| {
                ConfigError::invalid("POD_IP", format!("{ip:?} is not an IP address"))
            })?;
            Ok(Membership::Dns {
                host,
                port,
                self_ip,
            })
        }
        (None, None) => Ok(Membership::Alone),
    }
}

fn feed_config(env: &Env, app_env: AppEnv) -> Result<Option<FeedConfig>, ConfigError> {
    if !env.bool("FEED_ENABLED", &[], false)? {
        return Ok(None);
    }
    let queries = match env.opt_string("FEED_QUERIES_FILE", &[]) {
        None => default_queries(),
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::invalid("FEED_QUERIES_FILE", format!("cannot read {path}: {e}"))
            })?;
            parse_queries(&text).map_err(|e| ConfigError::invalid("FEED_QUERIES_FILE", e))?
        }
    };
    let step = env.string("FEED_STEP", &[], "15s");
    if aegis_common::config::parse_duration(&step).is_none() {
        return Err(ConfigError::invalid(
            "FEED_STEP",
            format!("expected a duration like 15s, got {step:?}"),
        ));
    }
    Ok(Some(FeedConfig {
        prometheus_url: env.string("PROMETHEUS_URL", &[], "http://localhost:9090"),
        interval: std::time::Duration::from_secs(
            env.parse("FEED_INTERVAL_SECONDS", &[], 300u64)?.max(1),
        ),
        lookback: lookback(env)?,
        step,
        queries,
        backend_url: env.opt_string("BACKEND_URL", &[]),
        backend_api_key: env.secret("BACKEND_API_KEY", &[], app_env)?,
    }))
}

/// `FEED_LOOKBACK_MINUTES`: whole or fractional minutes (`0.5` is 30 s), from one second to a
/// week; Prometheus is asked in whole seconds.
fn lookback(env: &Env) -> Result<std::time::Duration, ConfigError> {
    let minutes: f64 = env.parse("FEED_LOOKBACK_MINUTES", &[], 60.0)?;
    let seconds = (minutes * 60.0).round();
    if !(1.0..=7.0 * 24.0 * 3600.0).contains(&seconds) {
        return Err(ConfigError::invalid(
            "FEED_LOOKBACK_MINUTES",
            format!("expected minutes between 1/60 and 10080, got {minutes}"),
        ));
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked to lie in [1, 604800] above"
    )]
    Ok(std::time::Duration::from_secs(seconds as u64))
}

// The Prometheus feed's settings (`FEED_*`, `PROMETHEUS_URL`, `BACKEND_*`).

/// One configured query.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// Grouping category (`api`, `infrastructure`, `workload` ...).
    pub category: String,
    /// The metric type the samples become.
    pub metric_type: MetricType,
    /// PromQL.
    pub query: String,
    /// Multiplier (e.g. 100 for a ratio that must become percent).
    #[serde(default = "one")]
    pub scale: f64,
}

fn one() -> f64 {
    1.0
}

/// The mapping of the reference queries (error rate as percent).
#[must_use]
pub fn default_queries() -> Vec<FeedQuery> {
    let q = |category: &str, metric_type, query: &str, scale| FeedQuery {
        category: category.into(),
        metric_type,
        query: query.into(),
        scale,
    };
    vec![
        q(
            "api",
            MetricType::RequestRate,
            "sum by (namespace, deployment) (rate(http_requests_total[5m]))",
            1.0,
        ),
        q(
            "api",
            MetricType::ErrorRate,
            "sum by (namespace, deployment) (rate(http_requests_total{status=~\"5..\"}[5m])) / sum by (namespace, deployment) (rate(http_requests_total[5m]))",
            100.0,
        ),
        q(
            "api",
            MetricType::ResponseTime,
            "histogram_quantile(0.95, sum by (le, namespace, deployment) (rate(http_request_duration_seconds_bucket[5m])))",
            1.0,
        ),
        q(
            "infrastructure",
            MetricType::CpuUsage,
            "100 - (avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m])) * 100)",
            1.0,
        ),
        q(
            "infrastructure",
            MetricType::MemoryUsage,
            "((node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) / node_memory_MemTotal_bytes) * 100",
            1.0,
        ),
    ]
}

/// Feed settings.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// `PROMETHEUS_URL`.
    pub prometheus_url: String,
    /// `FEED_INTERVAL_SECONDS`.
    pub interval: std::time::Duration,
    /// `FEED_LOOKBACK_MINUTES`.
    pub lookback: std::time::Duration,
    /// `FEED_STEP` as PromQL accepts it (`15s`).
    pub step: String,
    /// `FEED_QUERIES_FILE` contents, or [`default_queries`].
    pub queries: Vec<FeedQuery>,
    /// `BACKEND_URL` (signals are sent only when set).
    pub backend_url: Option<String>,
    /// `BACKEND_API_KEY`.
    pub backend_api_key: Option<SecretString>,
}

/// Parses a queries file (YAML or JSON: a list of `{category, metric_type, query, scale?}`).
pub fn parse_queries(text: &str) -> Result<Vec<FeedQuery>, String> {
    let queries: Vec<FeedQuery> = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    if queries.is_empty() {
        return Err("no queries".into());
    }
    Ok(queries)
}

// The Kubernetes watcher's settings (`WATCHER_*`, `WATCH_NAMESPACES`).

/// Where the watcher's cluster credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeSource {
    /// The pod's service account.
    InCluster,
    /// A kubeconfig file.
    Kubeconfig(PathBuf),
}

/// The watcher's settings (`WATCHER_*`).
#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// Cluster credentials: `WATCHER_KUBECONFIG`, else `KUBECONFIG`, else in-cluster.
    pub kube: KubeSource,
    /// `WATCH_NAMESPACES`: the namespaces watched.
    pub namespaces: Vec<String>,
    /// `WATCHER_LEASE_NAMESPACE` (else `POD_NAMESPACE`, else `default`).
    pub lease_namespace: String,
    /// `WATCHER_LEASE_NAME`.
    pub lease_name: String,
    /// `WATCHER_LEASE_SECONDS`: how long a lease lasts without renewal.
    pub lease_duration: Duration,
    /// This replica's candidate identity (`POD_NAME` or `HOSTNAME`, and a random suffix).
    pub identity: String,
    /// `WATCHER_ROLLOUT_WINDOW_SECONDS`: a failure that begins within this long after a
    /// rollout is blamed on it.
    pub rollout_window: Duration,
    /// `WATCHER_NOT_READY_SECONDS`: how long readiness may fail, a pod stay unschedulable or
    /// a rollout stay unavailable before it is a failure.
    pub not_ready_after: Duration,
    /// `WATCHER_CRASH_RESTARTS`: restarts that make a crash loop (the kubelet says
    /// `CrashLoopBackOff` from the first).
    pub crash_restarts: i32,
    /// `WATCHER_RESTART_COOLDOWN_SECONDS`: a crash loop that comes back within this long
    /// after a restart was recommended is escalated instead.
    pub restart_cooldown: Duration,
    /// `WATCHER_EPISODE_QUIET_SECONDS`: how long a workload must be free of failures before
    /// its episode ends.
    pub episode_quiet: Duration,
    /// `WATCHER_LOG_LINES`: log lines kept as evidence.
    pub log_lines: i64,
    /// `WATCHER_API_TIMEOUT_SECONDS`: every call to the API server other than a watch.
    pub api_timeout: Duration,
    /// `BACKEND_URL`: where signals go.
    pub backend_url: String,
    /// `BACKEND_API_KEY`.
    pub backend_api_key: Option<SecretString>,
}

impl WatcherConfig {
    /// Reads the watcher's settings when `WATCHER_ENABLED=true`.
    pub fn from_env(env: &Env, app_env: AppEnv) -> Result<Option<Self>, ConfigError> {
        if !env.bool("WATCHER_ENABLED", &[], false)? {
            return Ok(None);
        }
        let Some(backend_url) = env.opt_string("BACKEND_URL", &[]) else {
            return Err(ConfigError::invalid(
                "BACKEND_URL",
                "the Kubernetes watcher (WATCHER_ENABLED=true) needs the backend's URL",
            ));
        };
        let namespaces = env.list("WATCH_NAMESPACES", &[], &["default"]);
        if let Some(bad) = namespaces
            .iter()
            .find(|n| aegis_common::names::Namespace::new(n.as_str()).is_err())
        {
            return Err(ConfigError::invalid(
                "WATCH_NAMESPACES",
                format!("{bad:?} is not a valid namespace name"),
            ));
        }
        let seconds = |name: &str, default: u64, min: u64| -> Result<Duration, ConfigError> {
            let v: u64 = env.parse(name, &[], default)?;
            if v < min {
                return Err(ConfigError::invalid(
                    name,
                    format!("must be at least {min}"),
                ));
            }
            Ok(Duration::from_secs(v))
        };
        let kube = match env
            .opt_string("WATCHER_KUBECONFIG", &[])
            .or_else(|| env.opt_string("KUBECONFIG", &[]))
        {
            // KUBECONFIG may be a colon-separated list; the first file is used.
            Some(path) => {
                KubeSource::Kubeconfig(path.split(':').next().unwrap_or_default().to_owned().into())
            }
            None => KubeSource::InCluster,
        };
        let base = env
            .opt_string("POD_NAME", &[])
            .or_else(|| env.opt_string("HOSTNAME", &[]))
            .unwrap_or_else(|| "ai-engine".to_owned());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Ok(Some(Self {
            kube,
            namespaces,
            lease_namespace: env
                .opt_string("WATCHER_LEASE_NAMESPACE", &[])
                .or_else(|| env.opt_string("POD_NAMESPACE", &[]))
                .unwrap_or_else(|| "default".to_owned()),
            lease_name: env.string("WATCHER_LEASE_NAME", &[], "aegis-watcher"),
            lease_duration: seconds("WATCHER_LEASE_SECONDS", 15, 1)?,
            identity: format!("{base}-{}", &suffix[..8]),
            rollout_window: seconds("WATCHER_ROLLOUT_WINDOW_SECONDS", 900, 1)?,
            not_ready_after: seconds("WATCHER_NOT_READY_SECONDS", 120, 0)?,
            crash_restarts: env.parse("WATCHER_CRASH_RESTARTS", &[], 3i32)?.max(1),
            restart_cooldown: seconds("WATCHER_RESTART_COOLDOWN_SECONDS", 300, 0)?,
            episode_quiet: seconds("WATCHER_EPISODE_QUIET_SECONDS", 300, 0)?,
            log_lines: env.parse("WATCHER_LOG_LINES", &[], 20i64)?.clamp(1, 1000),
            api_timeout: seconds("WATCHER_API_TIMEOUT_SECONDS", 10, 1)?,
            backend_url,
            backend_api_key: env.secret("BACKEND_API_KEY", &[], app_env)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_requires_an_api_key() {
        let env = Env::from_pairs([
            ("ENVIRONMENT", "production"),
            ("DATABASE_URL", "postgres://a:b@h/aegis_ai"),
        ]);
        let err = Config::from_env(&env).unwrap_err();
        assert!(err.to_string().contains("API_KEY"), "{err}");
    }

    #[test]
    fn replicas_are_named_by_a_list_or_a_dns_name() {
        use crate::routing::Membership;
        let parse = |pairs: &[(&str, &str)]| {
            Config::from_env(&Env::from_pairs(pairs.iter().copied())).map(|c| c.membership)
        };
        assert_eq!(parse(&[]).unwrap(), Membership::Alone);
        assert_eq!(
            parse(&[
                ("AI_ENGINE_PEERS", "http://a:8000/, http://b:8000"),
                ("AI_ENGINE_SELF_URL", "http://b:8000/"),
            ])
            .unwrap(),
            Membership::Static {
                self_url: "http://b:8000".into(),
                peers: vec!["http://a:8000".into(), "http://b:8000".into()],
            }
        );
        assert_eq!(
            parse(&[
                ("AI_ENGINE_PEERS_DNS", "ai-peers.aegis:8000"),
                ("POD_IP", "10.0.0.9")
            ])
            .unwrap(),
            Membership::Dns {
                host: "ai-peers.aegis".into(),
                port: 8000,
                self_ip: "10.0.0.9".parse().unwrap(),
            }
        );
        let refused = [
            (
                vec![("AI_ENGINE_PEERS", "http://a:8000")],
                "AI_ENGINE_SELF_URL",
            ),
            (
                vec![
                    ("AI_ENGINE_PEERS", "http://a:8000"),
                    ("AI_ENGINE_SELF_URL", "http://c:8000"),
                ],
                "AI_ENGINE_SELF_URL",
            ),
            (
                vec![("AI_ENGINE_PEERS", "a:8000,ftp://b")],
                "AI_ENGINE_PEERS",
            ),
            (
                vec![("AI_ENGINE_PEERS_DNS", "ai-peers")],
                "AI_ENGINE_PEERS_DNS",
            ),
            (vec![("AI_ENGINE_PEERS_DNS", "ai-peers:80")], "POD_IP"),
            (
                vec![("AI_ENGINE_PEERS_DNS", "ai-peers:80"), ("POD_IP", "pod")],
                "POD_IP",
            ),
            (
                vec![
                    ("AI_ENGINE_PEERS_DNS", "p:80"),
                    ("AI_ENGINE_PEERS", "http://a"),
                ],
                "AI_ENGINE_PEERS_DNS",
            ),
        ];
        for (pairs, variable) in refused {
            let err = parse(&pairs).unwrap_err().to_string();
            assert!(err.contains(variable), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn threshold_range_is_checked() {
        let env = Env::from_pairs([("ANOMALY_THRESHOLD", "1.5")]);
        let err = Config::from_env(&env).unwrap_err();
        assert!(err.to_string().contains("ANOMALY_THRESHOLD"));
        let env = Env::from_pairs([("ANOMALY_THRESHOLD", "0.7")]);
        assert!((Config::from_env(&env).unwrap().anomaly_threshold - 0.7).abs() < 1e-12);
    }

    #[test]
    fn the_feed_lookback_takes_fractional_minutes_and_refuses_nonsense() {
        let lookback_of = |minutes: &str| {
            let env =
                Env::from_pairs([("FEED_ENABLED", "true"), ("FEED_LOOKBACK_MINUTES", minutes)]);
            Config::from_env(&env).map(|c| c.feed.unwrap().lookback)
        };
        assert_eq!(lookback_of("60").unwrap().as_secs(), 3600);
        assert_eq!(lookback_of("0.1").unwrap().as_secs(), 6);
        for bad in ["0", "-1", "NaN", "inf", "20000", "soon"] {
            let err = lookback_of(bad).unwrap_err();
            assert!(
                err.to_string().contains("FEED_LOOKBACK_MINUTES"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_watcher_is_off_by_default_and_its_settings_are_checked() {
        assert!(
            Config::from_env(&Env::from_pairs::<&str, &str>([]))
                .unwrap()
                .watcher
                .is_none()
        );
        let err = Config::from_env(&Env::from_pairs([("WATCHER_ENABLED", "true")])).unwrap_err();
        assert!(err.to_string().contains("BACKEND_URL"), "{err}");
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut all = vec![
                ("WATCHER_ENABLED", "true"),
                ("BACKEND_URL", "http://b:3000"),
            ];
            all.extend_from_slice(pairs);
            Config::from_env(&Env::from_pairs(all)).map(|c| c.watcher.unwrap())
        };
        let w = with(&[
            ("WATCH_NAMESPACES", "shop, production"),
            ("POD_NAME", "ai-0"),
        ])
        .unwrap();
        assert_eq!(w.namespaces, ["shop", "production"]);
        assert!(w.identity.starts_with("ai-0-"), "{}", w.identity);
        assert_eq!(w.kube, KubeSource::InCluster);
        assert_eq!(w.lease_duration.as_secs(), 15);
        let other = with(&[("POD_NAME", "ai-0")]).unwrap();
        assert_ne!(
            w.identity, other.identity,
            "two processes are two candidates"
        );
        let err = with(&[("WATCH_NAMESPACES", "Shop!")]).unwrap_err();
        assert!(err.to_string().contains("WATCH_NAMESPACES"), "{err}");
        let err = with(&[("WATCHER_LEASE_SECONDS", "0")]).unwrap_err();
        assert!(err.to_string().contains("WATCHER_LEASE_SECONDS"), "{err}");
        let w = with(&[("KUBECONFIG", "/a/config:/b/config")]).unwrap();
        assert_eq!(w.kube, KubeSource::Kubeconfig("/a/config".into()));
    }
}
