//! Shared application state.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use aegis_common::metrics::Metrics;
use sqlx::PgPool;

use crate::{config::Config, engine::Engine, history::HistoryWriter, metrics::AiMetrics};

/// Everything a handler may need; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Settings.
    pub config: Arc<Config>,
    /// PostgreSQL pool.
    pub db: PgPool,
    /// Prometheus registry.
    pub metrics: Arc<Metrics>,
    /// The `ai_*` families.
    pub ai_metrics: AiMetrics,
    /// The models.
    pub engine: Engine,
    /// Prediction history and baseline writer.
    pub history: HistoryWriter,
    /// Set once baselines and models are loaded (readiness, 503 on inference before).
    pub models_loaded: Arc<AtomicBool>,
}

impl AppState {
    /// Whether start-up loading has finished.
    #[must_use]
    pub fn models_loaded(&self) -> bool {
        self.models_loaded.load(Ordering::Acquire)
    }
}
