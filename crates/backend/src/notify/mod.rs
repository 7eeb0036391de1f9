//! Notifications: the outbox's dispatcher and the channels it delivers to.
//!
//! Events enter the outbox (`notification_events`) in the transaction of what they report
//! (an incident's status change, a mode change). Every replica runs one dispatcher, which
//! every [`NotifyConfig::poll`]:
//! 1. routes new events: one delivery row per enabled channel of every matching route;
//! 2. leases the due deliveries it has room for and attempts each in a task of its own, so
//!    a slow or dead channel holds only its own attempts, never another channel's and never
//!    the remediation loop;
//! 3. records the outcome: delivered, due again after an exponential backoff with jitter, or
//!    dead once the event is older than [`NotifyConfig::dead_after`] or the receiver refused it.
//!
//! Delivery is at least once: an attempt whose outcome was not recorded (the replica died)
//! is made again when its lease ends. Receivers de-duplicate on the event id, which every
//! delivery carries (`webhook-id`, the e-mail's `Message-ID`, the Alertmanager labels).

pub mod channels;
pub mod config;
pub mod signing;

use std::sync::Arc;

use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use config::NotifyConfig;

use self::channels::{Notice, SendError, Senders, Target};
use crate::{
    auth::mailer::Mailer,
    db::notifications::{self as store, Due},
    metrics::BackendMetrics,
};

/// Events routed per cycle.
const ROUTE_BATCH: i64 = 500;

/// The dispatcher's handle.
#[derive(Debug, Clone)]
pub struct Notifier(Arc<Parts>);

/// What the dispatcher works with.
#[derive(Debug)]
pub struct Parts {
    config: NotifyConfig,
    db: PgPool,
    http: reqwest::Client,
    mailer: Mailer,
    metrics: BackendMetrics,
    in_flight: Arc<Semaphore>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Notifier {
    /// A dispatcher that is not running yet.
    pub fn new(
        config: NotifyConfig,
        db: PgPool,
        mailer: Mailer,
        metrics: BackendMetrics,
    ) -> anyhow::Result<Self> {
        // Redirects are not followed: a receiver that moves is a configuration change.
        let http = reqwest::Client::builder()
            .connect_timeout(config.delivery_timeout)
            .timeout(config.delivery_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let in_flight = Arc::new(Semaphore::new(config.max_in_flight));
        Ok(Self(Arc::new(Parts {
            config,
            db,
            http,
            mailer,
            metrics,
            in_flight,
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        })))
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &NotifyConfig {
        &self.0.config
    }

    /// Whether e-mail channels can send.
    #[must_use]
    pub fn smtp_configured(&self) -> bool {
        self.0.mailer.is_enabled()
    }

    /// Starts the dispatcher loop.
    pub fn spawn(&self) {
        let me = self.clone();
        self.0.tasks.spawn(async move {
            loop {
                if let Err(e) = me.cycle().await {
                    tracing::warn!(error = %e, "notification dispatch failed; retrying");
                }
                tokio::select! {
                    () = me.0.stop.cancelled() => break,
                    () = tokio::time::sleep(me.0.config.poll) => {}
                }
            }
        });
    }

    /// Stops claiming and waits up to `timeout` for the attempts in flight; those that do
    /// not finish are due again when their lease ends.
    pub async fn shutdown(&self, timeout: std::time::Duration) {
        self.0.stop.cancel();
        self.0.tasks.close();
        if tokio::time::timeout(timeout, self.0.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("notification attempts still running at shutdown; they are retried");
        }
    }

    async fn cycle(&self) -> Result<(), sqlx::Error> {
        let parts = &self.0;
        store::route_pending(&parts.db, ROUTE_BATCH).await?;
        let room = parts.in_flight.available_permits();
        if room > 0 {
            let lease = parts.config.lease().as_secs_f64();
            let due = store::claim_due(&parts.db, i64::try_from(room).unwrap_or(0), lease).await?;
            for delivery in due {
                let Ok(permit) = parts.in_flight.clone().try_acquire_owned() else {
                    break;
                };
                let me = self.clone();
                parts.tasks.spawn(async move {
                    me.attempt(delivery).await;
                    drop(permit);
                });
            }
        }
        let backlog = store::backlog(&parts.db).await?;
        parts.metrics.notification_backlog.set(backlog);
        Ok(())
    }

    /// One attempt, and its outcome recorded.
    async fn attempt(&self, delivery: Due) {
        let parts = &self.0;
        let notice = Notice {
            id: delivery.event_id,
            event_type: delivery.event_type,
            severity: &delivery.severity,
            namespace: delivery.namespace.as_deref(),
            payload: &delivery.payload,
            at: delivery.event_at,
            public_url: &parts.config.public_url,
        };
        let sent = self
            .send(
                Target {
                    channel_type: delivery.channel_type,
                    config: &delivery.config,
                    secret: delivery.secret.as_ref(),
                },
                &notice,
            )
            .await;
        let channel = delivery.channel_type.as_str();
        let recorded = match sent {
            Ok(()) => {
                self.count(channel, "delivered");
                store::delivered(&parts.db, delivery.id).await
            }
            Err(error) => {
                let age = Utc::now() - delivery.created_at;
                let dead_after = chrono::Duration::from_std(parts.config.dead_after)
                    .unwrap_or(chrono::Duration::MAX);
                let retry_at = match &error {
                    SendError::Retry(_) if age < dead_after => {
                        let wait = parts
                            .config
                            .backoff(delivery.attempts, rand::random_range(0.5..=1.0));
                        Some(Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default())
                    }
                    _ => None,
                };
                tracing::warn!(
                    channel = %delivery.channel_name,
                    event_id = %delivery.event_id,
                    attempts = delivery.attempts,
                    dead = retry_at.is_none(),
                    error = %error,
                    "notification attempt failed"
                );
                self.count(channel, if retry_at.is_some() { "retry" } else { "dead" });
                store::attempt_failed(&parts.db, delivery.id, &error.to_string(), retry_at).await
            }
        };
        if let Err(e) = recorded {
            // The lease ends and the attempt is made again: at least once.
            tracing::warn!(error = %e, delivery_id = delivery.id, "could not record a notification attempt");
        }
    }

    /// One attempt to send `notice` to `target`, within the delivery deadline.
    pub async fn send(&self, target: Target<'_>, notice: &Notice<'_>) -> Result<(), SendError> {
        let parts = &self.0;
        let senders = Senders {
            http: &parts.http,
            mailer: &parts.mailer,
            alertmanager_hold: parts.config.alertmanager_hold,
        };
        tokio::time::timeout(
            parts.config.delivery_timeout,
            channels::send(senders, target, notice),
        )
        .await
        .unwrap_or_else(|_| {
            Err(SendError::Retry(format!(
                "no answer within {} s",
                parts.config.delivery_timeout.as_secs()
            )))
        })
    }

    fn count(&self, channel: &'static str, result: &'static str) {
        self.0
            .metrics
            .notification_deliveries
            .with_label_values(&[channel, result])
            .inc();
    }
}
