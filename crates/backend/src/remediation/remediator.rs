//! The loop's handle: its settings, the services it reads, calls and writes, and its
//! background tasks. Every step of the loop takes it, and nothing else.

use std::{ops::Deref, sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::config::RemediationConfig;
use crate::{
    clients::{ai_engine::AiEngineClient, executor::ExecutorClient},
    metrics::BackendMetrics,
    policy::PolicyService,
    realtime::Hub,
};

/// The remediation loop. It takes nothing but these parts, so it does not depend on the
/// application state that holds it. One `Arc`, so cloning it for a task costs one atomic
/// increment.
#[derive(Debug, Clone)]
pub struct Remediator(Arc<LoopParts>);

impl Deref for Remediator {
    type Target = LoopParts;

    fn deref(&self) -> &LoopParts {
        &self.0
    }
}

/// The parts of a [`Remediator`].
#[derive(Debug)]
pub struct LoopParts {
    /// Settings.
    pub config: Arc<RemediationConfig>,
    /// Incidents, their timelines and alerts.
    pub(super) db: PgPool,
    /// The `self_healing` evaluations.
    pub(super) policy: PolicyService,
    /// Deployment reads and actions.
    pub(super) executor: ExecutorClient,
    /// The analysis of a signal without a recommended action.
    pub(super) ai_engine: AiEngineClient,
    /// The `remediation` events and alerts pushed to the dashboard.
    pub(super) realtime: Hub,
    /// The loop's counters and durations.
    pub(super) backend_metrics: BackendMetrics,
    pub(super) tasks: TaskTracker,
    pub(super) stop: CancellationToken,
}

impl Remediator {
    /// A loop with `config` and no task running, working with the given services.
    #[must_use]
    pub fn new(
        config: RemediationConfig,
        db: PgPool,
        policy: PolicyService,
        executor: ExecutorClient,
        ai_engine: AiEngineClient,
        realtime: Hub,
        backend_metrics: BackendMetrics,
    ) -> Self {
        Self(Arc::new(LoopParts {
            config: Arc::new(config),
            db,
            policy,
            executor,
            ai_engine,
            realtime,
            backend_metrics,
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        }))
    }

    /// Stops waiting verifications (they are due again after a restart) and waits up to
    /// `timeout` for decisions and executor calls in flight.
    pub async fn shutdown(&self, timeout: Duration) {
        self.stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(timeout, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tasks.len(),
                "remediation tasks still running at shutdown; they resume on the next start"
            );
        }
    }
}
