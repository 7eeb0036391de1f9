//! Building and running the executor: `Application::build(config)` connects (lazily),
//! migrates when enabled, starts the Loki shipper and the maintenance task, and binds the port
//! (0 works in tests); [`main_entry`] is the whole binary.

use std::{process::ExitCode, sync::Arc};

use aegis_common::{
    config::{ConfigError, Env},
    db::{create_database_if_missing, migrate_with_retry},
    error::NestStyle,
    metrics::Metrics,
    service::{self, BoxError, ServiceBinary, Shell, Starting, run_binary},
    telemetry::TelemetryConfig,
};
use anyhow::Context as _;
use axum::http::HeaderValue;
use sqlx::migrate::Migrator;
use tokio::{
    sync::{Notify, Semaphore},
    task::JoinHandle,
};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    audit::{self, loki::ShipperConfig},
    config::Config,
    k8s::KubeClient,
    metrics::ExecutorMetrics,
    routes,
    safety::HttpThrottle,
    state::AppState,
};

/// The executor's migrations, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub use crate::request::BODY_LIMIT;

/// How long SIGTERM waits for in-flight actions.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(25);

/// The whole served router (routes, `/metrics`, `/openapi.json`, `/docs` and the shared
/// layers) without CORS. No I/O.
pub fn app_router(state: AppState) -> axum::Router {
    let metrics = state.metrics.clone();
    service::documented_with_service_layers::<NestStyle>(routes::api(state), metrics, BODY_LIMIT)
}

/// A bound, ready-to-run executor.
pub type Application = service::Application<ExecutorShell>;

/// What the executor stops once it has stopped serving.
#[derive(Debug)]
pub struct ExecutorShell {
    tasks: Vec<JoinHandle<()>>,
}

impl Shell for ExecutorShell {
    type State = AppState;
    type Config = Config;

    /// Connects, migrates (when enabled), starts the background tasks and binds the port.
    async fn build(config: Config) -> anyhow::Result<Application> {
        // The port answers liveness (and refuses the rest) while the service starts.
        let live = ["/health/ping"];
        let starting = Starting::bind(&config.host, config.port, &live, config.serve).await?;
        tracing::info!(
            database = %aegis_common::db::describe(&config.db),
            "connecting to PostgreSQL"
        );
        if !config.app_env.is_production() {
            match create_database_if_missing(&config.db).await {
                Ok(true) => tracing::info!(database = %config.db.database(), "created database"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not check or create the database"),
            }
        }
        let db = config.db.pool();
        if config.auto_migrate {
            migrate_with_retry(&db, &MIGRATOR, 10)
                .await
                .context("failed to migrate the aegis_executor database")?;
        }
        let metrics = Metrics::new().context("failed to register metrics")?;
        let executor_metrics =
            ExecutorMetrics::register(&metrics).context("failed to register metrics")?;
        let kube = KubeClient::new(
            config.kube_source.clone(),
            config.k8s_request_timeout,
            executor_metrics.clone(),
        );
        if let Err(e) = kube.client().await {
            tracing::warn!(error = %e, "Kubernetes client not ready yet; readiness reports it and the next action retries");
        }
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        tracing::warn!(
            namespaces = ?config.allowed_namespaces,
            "aegis-executor holds privileged access to the Kubernetes API"
        );
        let state = AppState {
            action_slots: Arc::new(Semaphore::new(config.max_concurrent_actions)),
            throttle: Arc::new(HttpThrottle::new(
                config.http_rate_limit_ttl,
                config.http_rate_limit_max,
            )),
            outbox_notify: Arc::new(Notify::new()),
            kube: Arc::new(kube),
            config: Arc::new(config),
            db,
            metrics,
            executor_metrics,
        };
        let mut tasks = vec![tokio::spawn(audit::run_maintenance(
            state.db.clone(),
            state.config.max_skew,
            state.config.audit_retention_days,
        ))];
        if let Some(url) = &state.config.loki_url {
            tasks.push(tokio::spawn(audit::loki::run_shipper(
                state.db.clone(),
                ShipperConfig {
                    url: url.clone(),
                    timeout: state.config.loki_push_timeout,
                    batch_size: state.config.loki_batch_size,
                    poll_interval: state.config.loki_poll_interval,
                    max_backoff: state.config.loki_max_backoff,
                },
                state.executor_metrics.clone(),
                state.outbox_notify.clone(),
            )));
        }
        let mut router = app_router(state.clone());
        if !state.config.cors_origins.is_empty() {
            let origins: Vec<HeaderValue> = state
                .config
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect();
            router = router.layer(
                CorsLayer::new()
                    .allow_origin(AllowOrigin::list(origins))
                    .allow_methods(tower_http::cors::Any)
                    .allow_headers(tower_http::cors::Any),
            );
        }
        let bound = starting
            .hand_over(router)
            .await
            .context("failed to hand the port from start-up to the service")?;
        Ok(Application::new(bound, state, ExecutorShell { tasks }))
    }

    /// Stops the background tasks; unshipped Loki lines stay in the outbox for the next
    /// start.
    async fn wind_down(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The `aegis-executor` binary.
#[derive(Debug)]
pub struct Executor;

impl ServiceBinary for Executor {
    const NAME: &'static str = "aegis-executor";
    type Config = Config;

    fn load(env: &Env) -> Result<Config, ConfigError> {
        Config::from_env(env)
    }

    fn telemetry(config: &Config) -> TelemetryConfig {
        TelemetryConfig {
            service_name: Self::NAME,
            app_env: config.app_env,
            log_level: config.log_level.clone(),
            json_logs: config.json_logs,
            otlp_endpoint: config.otlp_endpoint.clone(),
        }
    }

    async fn migrate(config: Config) -> Result<(), BoxError> {
        migrate_with_retry(&config.db.pool(), &MIGRATOR, 10).await?;
        tracing::info!("migrations applied");
        Ok(())
    }

    async fn serve(config: Config) -> Result<(), BoxError> {
        let app = Application::build(config).await?;
        let addr = app.local_addr()?;
        tracing::info!("aegis-executor listening on http://{addr}");
        // SIGTERM: stop accepting, wait for in-flight actions at most SHUTDOWN_GRACE.
        let stopping = Arc::new(Notify::new());
        let signal = {
            let stopping = stopping.clone();
            async move {
                aegis_common::server::shutdown_signal().await;
                stopping.notify_one();
            }
        };
        let grace = async {
            stopping.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            served = app.run_until(signal) => served?,
            () = grace => tracing::warn!("in-flight requests still running after the grace period; exiting"),
        }
        Ok(())
    }
}

/// `aegis-executor --healthcheck`: the container HEALTHCHECK without curl. Asks
/// `/health/ping` on `127.0.0.1:$PORT` (default 4000) with a 5-second timeout.
pub async fn healthcheck() -> ExitCode {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or(4000);
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(_) => return ExitCode::FAILURE,
    };
    match client
        .get(format!("http://127.0.0.1:{port}/health/ping"))
        .send()
        .await
    {
        Ok(res) if res.status().is_success() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// The binary's `main`.
pub async fn main_entry() -> ExitCode {
    run_binary::<Executor>().await
}
