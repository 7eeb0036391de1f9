//! Notifications: the outbox's dispatcher and the channels it delivers to.
//!
//! Events enter the outbox (`notification_events`) in the transaction of what they report
//! (an incident's status change, a mode change). Every replica runs one dispatcher, which
//! every [`NotifyConfig::poll`]:
//! 1. routes new events: one delivery row per enabled channel of every matching route;
//! 2. leases the due deliveries it has room for and attempts each in a task of its own; a
//!    channel has at most a quarter of the attempts in flight, so a slow channel holds only
//!    its own share, never another channel's and never the remediation loop;
//! 3. records the outcome: delivered, due again after an exponential backoff with jitter, or
//!    dead once the event is older than [`NotifyConfig::dead_after`] or the receiver refused it.
//!
//! Delivery is at least once: an attempt whose outcome was not recorded (the replica died)
//! is made again when its lease ends. Receivers de-duplicate on the event id, which every
//! delivery carries (`webhook-id`, the e-mail's `Message-ID`, the Alertmanager labels).

pub mod channels;
pub mod config;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

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

/// How often each replica deletes events past their retention.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

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
    /// Attempts in flight per channel, each at most [`Parts::per_channel`].
    channels: Mutex<HashMap<uuid::Uuid, Arc<Semaphore>>>,
    per_channel: usize,
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
        let per_channel = (config.max_in_flight / 4).max(1);
        Ok(Self(Arc::new(Parts {
            config,
            db,
            http,
            mailer,
            metrics,
            in_flight,
            channels: Mutex::new(HashMap::new()),
            per_channel,
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
            let mut pruned = tokio::time::Instant::now();
            loop {
                if let Err(e) = me.cycle().await {
                    tracing::warn!(error = %e, "notification dispatch failed; retrying");
                }
                if pruned.elapsed() >= PRUNE_EVERY {
                    pruned = tokio::time::Instant::now();
                    if let Err(e) = store::prune(&me.0.db, me.0.config.retention_days).await {
                        tracing::warn!(error = %e, "could not delete old notification events");
                    }
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
            let busy = self.busy_channels();
            let limit = i64::try_from(room).unwrap_or(0);
            let per_channel = i64::try_from(parts.per_channel).unwrap_or(1);
            let due = store::claim_due(&parts.db, limit, per_channel, &busy, lease).await?;
            for delivery in due {
                let permits = parts
                    .in_flight
                    .clone()
                    .try_acquire_owned()
                    .ok()
                    .zip(self.channel_slot(delivery.channel_id));
                let Some(permits) = permits else {
                    // No room after all (another cycle's attempts finished late): due again now.
                    store::release(&parts.db, delivery.id).await?;
                    continue;
                };
                let me = self.clone();
                parts.tasks.spawn(async move {
                    me.attempt(delivery).await;
                    drop(permits);
                });
            }
        }
        let backlog = store::backlog(&parts.db).await?;
        parts.metrics.notification_backlog.set(backlog);
        Ok(())
    }

    /// The channels with their share of attempts in flight.
    fn busy_channels(&self) -> Vec<uuid::Uuid> {
        self.0.channels.lock().map_or_else(
            |_| Vec::new(),
            |map| {
                map.iter()
                    .filter(|(_, s)| s.available_permits() == 0)
                    .map(|(id, _)| *id)
                    .collect()
            },
        )
    }

    /// A slot of `channel`'s share, if one is free.
    fn channel_slot(&self, channel: uuid::Uuid) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let mut map = self.0.channels.lock().ok()?;
        let share = map
            .entry(channel)
            .or_insert_with(|| Arc::new(Semaphore::new(self.0.per_channel)))
            .clone();
        share.try_acquire_owned().ok()
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
                store::delivered(&parts.db, delivery.id, delivery.attempts).await
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
                store::attempt_failed(
                    &parts.db,
                    delivery.id,
                    delivery.attempts,
                    &error.to_string(),
                    retry_at,
                )
                .await
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
