//! Shared application state: one `Arc`, so that cloning it costs one atomic increment.

use std::{
    ops::Deref,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use aegis_common::metrics::Metrics;
use sqlx::PgPool;

use crate::{config::Config, history::HistoryWriter, metrics::AiMetrics, models::Engine};

/// Everything a handler may need, behind one `Arc` (fields read through `Deref`): axum
/// clones the state for every layer and extractor that takes it, several times per request.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct Shared {
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
    /// Which replica owns each anomaly series.
    pub ring: crate::routing::Ring,
    /// The client that forwards a request to a series' owner.
    pub peers: reqwest::Client,
    /// Set once baselines and models are loaded (readiness, 503 on inference before).
    pub models_loaded: Arc<AtomicBool>,
}

impl AppState {
    /// Wraps the parts.
    #[must_use]
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// Whether start-up loading has finished.
    #[must_use]
    pub fn models_loaded(&self) -> bool {
        self.models_loaded.load(Ordering::Acquire)
    }
}
