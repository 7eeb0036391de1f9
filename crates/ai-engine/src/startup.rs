//! Building and running the ai-engine: `Application::build(config)` binds the port.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use aegis_common::{
    config::{ConfigError, Env},
    db::{create_database_if_missing, migrate_with_retry},
    error::FastApiStyle,
    metrics::Metrics,
    service::{self, BoxError, ServiceBinary, Shell, Starting},
    telemetry::TelemetryConfig,
};
use anyhow::Context as _;
use sqlx::migrate::Migrator;
use tokio::task::JoinHandle;

use crate::{
    config::Config,
    detector::AnomalyConfig,
    history::{HistoryHandle, HistoryWriter},
    metrics::AiMetrics,
    models::{Engine, train_failure},
    routes,
    state::AppState,
};

/// Records the history queue holds before a handler waits for the writer: sixteen batches.
/// The writer keeps up at full load, so a deeper queue only adds memory (each record holds the
/// request and the answer as text) while PostgreSQL is slow or down.
const HISTORY_QUEUE: usize = 4_096;

/// The ai-engine's migrations.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The whole served router (routes, `/metrics`, `/openapi.json`, `/docs` and the shared
/// layers) without CORS. No I/O.
pub fn app_router(state: AppState) -> axum::Router {
    let metrics = state.metrics.clone();
    let limit = state.config.max_body_bytes;
    service::documented_with_service_layers::<FastApiStyle>(routes::api(state), metrics, limit)
}

/// A bound, ready-to-run ai-engine.
pub type Application = service::Application<AiEngineShell>;

/// What the ai-engine finishes once it has stopped serving.
#[derive(Debug)]
pub struct AiEngineShell {
    history: HistoryHandle,
    tasks: Vec<JoinHandle<()>>,
}

impl Shell for AiEngineShell {
    type State = AppState;
    type Config = Config;

    /// Connects, migrates (when enabled), builds the router and binds the port.
    async fn build(config: Config) -> anyhow::Result<Application> {
        // The port answers liveness (and refuses the rest) while the service starts.
        let live = ["/ping"];
        let starting = Starting::bind(&config.host, config.port, &live, config.serve).await?;
        tracing::info!(
            database = %aegis_common::db::describe(&config.db),
            "connecting to PostgreSQL"
        );
        if !config.app_env.is_production()
            && let Err(e) = create_database_if_missing(&config.db).await
        {
            tracing::warn!(error = %e, "could not check or create the database");
        }
        let db = config.db.pool();
        if config.auto_migrate {
            migrate_with_retry(&db, &MIGRATOR, 10)
                .await
                .context("failed to migrate the aegis_ai database")?;
        }
        let metrics = Metrics::new().context("failed to register metrics")?;
        let ai_metrics = AiMetrics::register(&metrics).context("failed to register metrics")?;
        let storage_errors = metrics
            .counter(
                "ai_storage_errors_total",
                "Failed attempts to write prediction history (retried, never dropped)",
            )
            .context("failed to register metrics")?;
        let (history, history_handle) =
            HistoryWriter::spawn(db.clone(), HISTORY_QUEUE, move || storage_errors.inc());
        let engine = Engine::with_store(
            AnomalyConfig {
                contamination: 1.0 - config.anomaly_threshold,
                min_samples_for_training: config.min_samples_for_training,
                baseline_max_rows: config.baseline_max_rows,
                max_series: config.anomaly_max_series,
                ..AnomalyConfig::default()
            },
            db.clone(),
        );
        let membership = config.membership.clone();
        let state = AppState::new(crate::state::Shared {
            config: Arc::new(config),
            db,
            metrics,
            ai_metrics,
            engine,
            history,
            ring: crate::routing::Ring::new(&membership),
            peers: reqwest::Client::builder()
                .connect_timeout(crate::routing::FORWARD_TIMEOUT)
                .timeout(crate::routing::FORWARD_TIMEOUT)
                .build()
                .context("failed to build the HTTP client for peer replicas")?,
            models_loaded: Arc::new(AtomicBool::new(false)),
        });
        let mut tasks = vec![spawn_model_loading(state.clone())];
        if let crate::routing::Membership::Dns {
            host,
            port,
            self_ip,
        } = membership
        {
            tasks.push(crate::routing::spawn_dns(
                state.ring.clone(),
                host,
                port,
                self_ip,
            ));
        }
        if let Some(feed) = state.config.feed.clone() {
            tasks.push(crate::feed::spawn(state.clone(), feed));
        }
        if let Some(watcher) = state.config.watcher.clone() {
            let client = crate::watcher::client(&watcher)
                .await
                .context("the Kubernetes watcher has no usable credentials (WATCHER_KUBECONFIG, KUBECONFIG or in-cluster)")?;
            tracing::info!(
                namespaces = ?watcher.namespaces,
                identity = %watcher.identity,
                "Kubernetes watcher started"
            );
            tasks.extend(crate::watcher::spawn(state.clone(), watcher, client));
        }
        let mut router = app_router(state.clone());
        if let Some(cors) = service::cors_layer(&state.config.cors_origins, false)
            .context("CORS_ALLOWED_ORIGINS is invalid")?
        {
            router = router.layer(cors);
        }
        let bound = starting
            .hand_over(router)
            .await
            .context("failed to hand the port from start-up to the service")?;
        let shell = AiEngineShell {
            history: history_handle,
            tasks,
        };
        Ok(Application::new(bound, state, shell))
    }

    /// No handler runs any more: stops the background jobs, then drains the history queue.
    async fn wind_down(self) {
        for t in self.tasks {
            t.abort();
        }
        if !self.history.close(Duration::from_secs(30)).await {
            tracing::error!("history writer did not flush within 30 s");
        }
    }
}

/// Waits for the model store and restores the failure forest in the background; inference answers
/// 503 until done. Then retrains the forest on a schedule when new labels arrived.
fn spawn_model_loading(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(200);
        loop {
            // Anomaly series are rebuilt from storage one by one as their windows arrive; what
            // start-up waits for is a database to rebuild them from.
            match sqlx::query("SELECT 1 FROM training_data LIMIT 1")
                .execute(&state.db)
                .await
            {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "the model store is not reachable; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        let mut labelled = labelled_rows(&state).await;
        match train_failure(&state.db, &state.engine, state.config.rf_min_rows_per_class).await {
            Ok(r) if r.trained => tracing::info!(rows = r.rows, "failure forest trained"),
            Ok(_) => tracing::info!("not enough labelled rows yet; the heuristic answers failures"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "failure forest training failed"),
        }
        state
            .ai_metrics
            .active_models
            .set(state.engine.active_models());
        state.models_loaded.store(true, Ordering::Release);
        let mut tick = tokio::time::interval(state.config.rf_retrain_interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = labelled_rows(&state).await;
            if now > labelled {
                labelled = now;
                if let Err(e) =
                    train_failure(&state.db, &state.engine, state.config.rf_min_rows_per_class)
                        .await
                {
                    tracing::warn!(error = format!("{e:#}"), "scheduled retraining failed");
                }
            }
        }
    })
}

async fn labelled_rows(state: &AppState) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM training_data WHERE model_type = 'failure' AND label IS NOT NULL",
    )
    .fetch_one(&state.db)
    .await
    .unwrap_or(0)
}

/// The `aegis-ai-engine` binary.
#[derive(Debug)]
pub struct AiEngine;

impl ServiceBinary for AiEngine {
    const NAME: &'static str = "aegis-ai-engine";
    type Config = Config;

    fn load(env: &Env) -> Result<Config, ConfigError> {
        Config::from_env(env)
    }

    fn telemetry(config: &Config) -> TelemetryConfig {
        TelemetryConfig {
            service_name: Self::NAME,
            app_env: config.app_env,
            log_level: config.log_level.clone(),
            json_logs: None,
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
        tracing::info!("aegis-ai-engine listening on http://{}", app.local_addr()?);
        app.run_until(aegis_common::server::shutdown_signal())
            .await?;
        Ok(())
    }
}
