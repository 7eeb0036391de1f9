//! Shared application state: one `Arc`, so that cloning it costs one atomic increment.

use std::{ops::Deref, sync::Arc};

use aegis_common::{metrics::Metrics, redis_conn::SharedRedis};
use axum::extract::FromRef;
use sqlx::PgPool;

use crate::{auth::AuthContext, config::Config, metrics::BackendMetrics};

/// Everything a handler may need, behind one `Arc` (fields read through `Deref`): axum
/// clones the state for every layer and extractor that takes it, several times per request.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the parts.
    #[must_use]
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What the auth extractors and middleware take from the state.
impl FromRef<AppState> for Arc<AuthContext> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub config: Arc<Config>,
    /// PostgreSQL pool.
    pub db: PgPool,
    /// Redis (fail-open).
    pub redis: SharedRedis,
    /// Prometheus registry and families.
    pub metrics: Arc<Metrics>,
    /// The backend's own metric families.
    pub backend_metrics: BackendMetrics,
    /// Outgoing HTTP client (ai-engine, executor).
    pub http: reqwest::Client,
    /// JWT keys, password hashing, reset mail.
    pub auth: Arc<AuthContext>,
    /// The ai-engine client (AI proxy, remediation loop).
    pub ai_engine: crate::clients::ai_engine::AiEngineClient,
    /// The policy engine (compiled set, decision cache, evaluation audit).
    pub policy: crate::policy::PolicyService,
    /// The executor client (executor route, remediation loop).
    pub executor: crate::clients::executor::ExecutorClient,
    /// Real-time push (Socket.IO events).
    pub realtime: crate::realtime::Hub,
    /// The remediation loop's settings and background tasks.
    pub remediation: crate::remediation::Remediator,
    /// The notification dispatcher.
    pub notifier: crate::notify::Notifier,
}
