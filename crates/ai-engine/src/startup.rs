//! Building and running the ai-engine: `Application::build(config)` binds the port.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, atomic::AtomicBool},
};

use aegis_common::{
    config::{ConfigError, Env},
    db::{create_database_if_missing, migrate_with_retry},
    error::FastApiStyle,
    metrics::Metrics,
    service::{self, Bound, BoxError, ServiceBinary},
    telemetry::TelemetryConfig,
};
use anyhow::Context as _;
use sqlx::migrate::Migrator;

use crate::{config::Config, metrics::AiMetrics, routes, state::AppState};

/// The ai-engine's migrations.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A bound, ready-to-run ai-engine.
#[derive(Debug)]
pub struct Application {
    bound: Bound,
    state: AppState,
}

impl Application {
    /// Connects, migrates (when enabled), builds the router and binds the port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
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
        let state = AppState {
            config: Arc::new(config),
            db,
            metrics,
            ai_metrics,
            models_loaded: Arc::new(AtomicBool::new(true)),
        };
        let router = service::finish::<FastApiStyle>(
            routes::router(state.clone()),
            state.metrics.clone(),
            state.config.max_body_bytes,
        );
        let bound = Bound::bind(&state.config.host, state.config.port, router)
            .await
            .with_context(|| {
                format!("failed to bind {}:{}", state.config.host, state.config.port)
            })?;
        Ok(Self { bound, state })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.bound.local_addr()
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.bound.port()
    }

    /// The shared state.
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.bound.run_until(shutdown).await
    }
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
        app.bound.run_until_stopped().await?;
        Ok(())
    }
}
