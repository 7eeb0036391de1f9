//! Shared application state: cheap to clone, `Arc`s inside.

use std::sync::Arc;

use aegis_common::metrics::Metrics;
use sqlx::PgPool;
use tokio::sync::{Notify, Semaphore};

use crate::{config::Config, k8s::KubeClient, metrics::ExecutorMetrics, safety::HttpThrottle};

/// Everything a handler may need.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Settings.
    pub config: Arc<Config>,
    /// PostgreSQL pool.
    pub db: PgPool,
    /// Prometheus registry and the HTTP families.
    pub metrics: Arc<Metrics>,
    /// The executor's own families.
    pub executor_metrics: ExecutorMetrics,
    /// Kubernetes client (connects lazily).
    pub kube: Arc<KubeClient>,
    /// Per-replica cap on in-flight actions.
    pub action_slots: Arc<Semaphore>,
    /// The per-IP HTTP throttle of `/executor/*`.
    pub throttle: Arc<HttpThrottle>,
    /// Wakes the Loki shipper when new lines are in the outbox.
    pub outbox_notify: Arc<Notify>,
}
