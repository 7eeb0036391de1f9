//! Building and running the backend: `Application::build(config)` binds the port (0 works in
//! tests) and reports the real address; [`main_entry`] is the whole binary.

use std::{process::ExitCode, sync::Arc, time::Duration};

pub use crate::db::MIGRATOR;
use crate::{config::Config, metrics::BackendMetrics, routes, state::AppState};
use aegis_common::{
    config::{ConfigError, Env},
    db::{create_database_if_missing, migrate_with_retry},
    error::BackendStyle,
    metrics::Metrics,
    redis_conn::SharedRedis,
    service::{self, BoxError, ServiceBinary, Shell, Starting, run_binary},
    telemetry::TelemetryConfig,
};
use anyhow::Context as _;
use secrecy::ExposeSecret;

/// Request bodies are limited to 100 KiB.
pub const BODY_LIMIT: usize = 100 * 1024;

/// The served router (the routes, the documented `/metrics`, `/openapi.json` and `/docs`, the
/// console under `/console`, and the shared layers) without Socket.IO and CORS, which
/// [`Application::build`] adds. No I/O.
pub fn app_router(state: AppState) -> axum::Router {
    let metrics = state.metrics.clone();
    let console_state = state.clone();
    service::documented_with_extra_routes::<BackendStyle>(
        routes::api(state),
        metrics,
        BODY_LIMIT,
        |api| crate::console::router(console_state, api),
    )
}

/// A bound, ready-to-run backend.
pub type Application = service::Application<BackendShell>;

/// What the backend finishes once it has stopped serving.
#[derive(Debug)]
pub struct BackendShell {
    /// Decisions and executor calls in flight are let finish.
    remediation: crate::remediation::Remediator,
    /// Attempts in flight are let finish; the rest are retried by whichever replica runs.
    notifier: crate::notify::Notifier,
    /// Flushed after the server stops, so no evaluation's audit row is lost.
    policy_audit: crate::policy::audit::AuditWriter,
}

impl Shell for BackendShell {
    type State = AppState;
    type Config = Config;

    async fn build(config: Config) -> anyhow::Result<Application> {
        // The port answers liveness (and refuses the rest) while the service starts.
        let live = [
            format!("{}/health/ping", config.api_prefix),
            "/health/ping".to_owned(),
        ];
        let live: Vec<&str> = live.iter().map(String::as_str).collect();
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
                .context("failed to migrate the aegis_backend database")?;
        }
        let redis = SharedRedis::connect(
            config.redis_url.expose_secret(),
            &config.redis_key_prefix,
            config.redis_timeout(),
        )
        .context("REDIS_URL is invalid")?;
        let metrics = Metrics::new().context("failed to register metrics")?;
        let backend_metrics =
            BackendMetrics::register(&metrics).context("failed to register metrics")?;
        if let Some(rx) = crate::db::logs::sink::take_pending() {
            crate::db::logs::sink::spawn_writer(db.clone(), rx);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("failed to build the HTTP client")?;
        let keys = crate::auth::jwt::TokenKeys::new(
            &config.jwt_secret,
            &config.jwt_refresh_secret,
            config.auth.access_ttl,
            config.auth.refresh_ttl,
        );
        let auth = Arc::new(crate::auth::AuthContext::new(
            config.auth.clone(),
            keys,
            config.api_prefix.clone(),
            db.clone(),
            redis.clone(),
            backend_metrics.clone(),
        )?);
        if config.auth.rate_limit_disabled {
            tracing::warn!("RATE_LIMIT_DISABLED=true: every rate limit is off (load tests only)");
        }
        let ai_engine = crate::clients::ai_engine::AiEngineClient::new(
            http.clone(),
            &config.ai_engine_url,
            config.ai_engine_api_key.clone(),
            config.ai_engine_retry_backoff,
        );
        let (policy, policy_audit) = crate::policy::PolicyService::start(
            db.clone(),
            redis.clone(),
            backend_metrics.clone(),
            config.policy.clone(),
        )
        .await?;
        let executor = crate::clients::executor::ExecutorClient::new(
            http.clone(),
            &config.executor_url,
            config.executor_api_key.clone(),
            config.executor_hmac_secret.clone(),
            config.executor_audit_token.clone(),
        );
        let realtime = crate::realtime::Hub::new();
        let remediation = crate::remediation::Remediator::new(
            config.remediation.clone(),
            db.clone(),
            policy.clone(),
            executor.clone(),
            ai_engine.clone(),
            realtime.clone(),
            backend_metrics.clone(),
        );
        let notifier = crate::notify::Notifier::new(
            config.notify.clone(),
            db.clone(),
            auth.mailer.clone(),
            backend_metrics.clone(),
        )
        .context("failed to build the notification client")?;
        let state = AppState::new(crate::state::Shared {
            remediation,
            notifier,
            auth,
            config: Arc::new(config),
            db,
            redis,
            metrics,
            backend_metrics,
            http,
            ai_engine,
            executor,
            realtime,
            policy,
        });
        if let Err(e) = crate::auth::bootstrap_admin(&state.auth).await {
            tracing::error!(error = %format!("{e:#}"), "failed to create the bootstrap admin");
        }
        // The environment's mode is the initial value: once a mode is stored, it wins.
        if let Err(e) =
            crate::db::modes::seed_global(&state.db, state.config.remediation.mode).await
        {
            tracing::error!(error = %e, "failed to store the initial remediation mode");
        }
        match crate::remediation::engine::resume(&state.remediation).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                incidents = n,
                "resumed remediation incidents left mid-flight"
            ),
            Err(e) => {
                tracing::error!(error = %e, "failed to resume unfinished remediation incidents")
            }
        }
        crate::remediation::expiry::spawn(&state.remediation);
        crate::remediation::mode::spawn_export(&state.remediation);
        state.notifier.spawn();
        let router = app_router(state.clone())
            // Outside the JSON envelope: Socket.IO answers are not API error bodies. A layer,
            // not a route: it is in neither the router's paths nor the document.
            .layer(crate::realtime::socket::layer(
                state.auth.clone(),
                state.realtime.clone(),
                state.backend_metrics.websocket_connections.clone(),
            ));
        // Outermost, so Socket.IO polling and preflights get the same origin list.
        let router = match service::cors_layer(&state.config.cors_origins, true)
            .context("CORS_ORIGIN is invalid")?
        {
            Some(cors) => router.layer(cors),
            None => router,
        };
        let bound = starting
            .hand_over(router)
            .await
            .context("failed to hand the port from start-up to the service")?;
        let shell = BackendShell {
            remediation: state.remediation.clone(),
            notifier: state.notifier.clone(),
            policy_audit,
        };
        Ok(Application::new(bound, state, shell))
    }

    /// Requests are drained: decisions and executor calls in flight finish (their
    /// evaluations are queued for audit), then every queued evaluation is written.
    async fn wind_down(self) {
        self.remediation.shutdown(Duration::from_secs(30)).await;
        self.notifier.shutdown(Duration::from_secs(10)).await;
        self.policy_audit.shutdown(Duration::from_secs(30)).await;
    }
}

/// The `aegis-backend` binary.
#[derive(Debug)]
pub struct Backend;

impl ServiceBinary for Backend {
    const NAME: &'static str = "aegis-backend";
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

    fn log_layer(config: &Config) -> Option<aegis_common::telemetry::ExtraLayer> {
        config.log_to_db.then(|| {
            Box::new(crate::db::logs::sink::DbLogLayer::global(Self::NAME))
                as aegis_common::telemetry::ExtraLayer
        })
    }

    async fn migrate(config: Config) -> Result<(), BoxError> {
        migrate_with_retry(&config.db.pool(), &MIGRATOR, 10).await?;
        tracing::info!("migrations applied");
        Ok(())
    }

    async fn serve(config: Config) -> Result<(), BoxError> {
        let app = Application::build(config).await?;
        let addr = app.local_addr()?;
        tracing::info!(
            "aegis-backend listening on http://{addr}{}",
            app.state().config.api_prefix
        );
        app.run_until_stopped().await?;
        Ok(())
    }
}

/// The binary's `main`.
pub async fn main_entry() -> ExitCode {
    run_binary::<Backend>().await
}
