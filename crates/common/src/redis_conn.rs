//! A Redis connection that never blocks start-up and never hangs a request.
//!
//! Redis is fail-open for every Aegis use (rate limits, caches, the policy cache version):
//! when it is down, callers get `None` or an error and carry on. The first connection is made
//! in the background and retried; afterwards redis-rs's connection manager reconnects by
//! itself.
//!
//! A circuit breaker keeps an outage from costing every request the full timeout: the first
//! command that times out or loses its connection opens it, and while it is open
//! [`SharedRedis::connection`] answers `None` at once. One background probe `PING`s Redis
//! every [`PROBE_INTERVAL`] and closes the breaker when it answers.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

/// How often the probe tries Redis while the breaker is open.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Redis could not be asked: the breaker is open, it is not connected, or the command timed
/// out or lost its connection.
#[derive(Debug, thiserror::Error)]
pub enum RedisUnavailable {
    /// Skipped: Redis is known to be down, or was never reached.
    #[error("Redis is unavailable")]
    Down,
    /// No answer within the timeout.
    #[error("Redis timed out")]
    TimedOut,
    /// Redis answered with an error, or the connection failed.
    #[error("Redis command failed: {0}")]
    Failed(#[from] redis::RedisError),
}

/// Shared handle; cheap to clone.
#[derive(Clone)]
pub struct SharedRedis {
    inner: Arc<Inner>,
}

struct Inner {
    client: Option<redis::Client>,
    conn: OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    /// The breaker: while set, nothing is sent; the probe clears it.
    open: AtomicBool,
}

impl std::fmt::Debug for SharedRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: not shown.
        f.debug_struct("SharedRedis")
            .field("prefix", &self.inner.prefix)
            .field("connected", &self.inner.conn.initialized())
            .field("breaker_open", &self.is_open())
            .finish()
    }
}

impl SharedRedis {
    /// Starts connecting to `url` in the background. Every key is prefixed with `prefix`
    /// (tests use a unique prefix each). An invalid URL is an error now, not later.
    pub fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let me = Self {
            inner: Arc::new(Inner {
                client: Some(client),
                conn: OnceCell::new(),
                prefix: prefix.to_owned(),
                timeout,
                open: AtomicBool::new(false),
            }),
        };
        let bg = me.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(100);
            while bg.connection().await.is_none() {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
        Ok(me)
    }

    /// A handle that is never connected (Redis disabled).
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            inner: Arc::new(Inner {
                client: None,
                conn: OnceCell::new(),
                prefix: String::new(),
                timeout: Duration::from_millis(100),
                open: AtomicBool::new(false),
            }),
        }
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// `prefix + key`.
    #[must_use]
    pub fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.inner.prefix.len() + key.len());
        k.push_str(&self.inner.prefix);
        k.push_str(key);
        k
    }

    /// The per-command timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Whether the breaker is open (Redis is known to be down and is being probed).
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.inner.open.load(Ordering::Acquire)
    }

    /// A connection, or `None` while the breaker is open or Redis has never been reachable.
    pub async fn connection(&self) -> Option<ConnectionManager> {
        if self.is_open() {
            return None;
        }
        let conn = self.connect_now().await;
        if conn.is_none() && self.inner.client.is_some() {
            self.trip();
        }
        conn
    }

    async fn connect_now(&self) -> Option<ConnectionManager> {
        if let Some(c) = self.inner.conn.get() {
            return Some(c.clone());
        }
        let client = self.inner.client.as_ref()?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(self.inner.timeout)
            .set_response_timeout(self.inner.timeout)
            .set_number_of_retries(1);
        let made = tokio::time::timeout(
            self.inner.timeout * 2,
            ConnectionManager::new_with_config(client.clone(), cfg),
        )
        .await;
        match made {
            Ok(Ok(conn)) => Some(self.inner.conn.get_or_init(|| async { conn }).await.clone()),
            _ => None,
        }
    }

    /// Runs one command through the breaker, within the timeout. A timeout or a lost
    /// connection opens the breaker; an error answered by Redis does not.
    ///
    /// # Errors
    /// [`RedisUnavailable`]: skipped, timed out, or failed.
    pub async fn run<T, F, Fut>(&self, command: F) -> Result<T, RedisUnavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection().await.ok_or(RedisUnavailable::Down)?;
        match tokio::time::timeout(self.inner.timeout, command(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_timeout()
                    || e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_unrecoverable_error()
                {
                    self.trip();
                }
                Err(RedisUnavailable::Failed(e))
            }
            Err(_) => {
                self.trip();
                Err(RedisUnavailable::TimedOut)
            }
        }
    }

    /// Opens the breaker and starts the probe (once per outage).
    fn trip(&self) {
        if self.inner.open.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!("Redis is unavailable: skipping it until a probe succeeds (fail-open)");
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                if me.ping_now().await.is_ok() {
                    me.inner.open.store(false, Ordering::Release);
                    tracing::info!("Redis answers again");
                    return;
                }
            }
        });
    }

    /// `PING` within the timeout (health checks); fails at once while the breaker is open.
    pub async fn ping(&self) -> Result<(), String> {
        if self.is_open() {
            return Err("unavailable (circuit open)".to_owned());
        }
        self.ping_now().await
    }

    async fn ping_now(&self) -> Result<(), String> {
        let mut conn = self
            .connect_now()
            .await
            .ok_or_else(|| "not connected".to_owned())?;
        let pong: Result<String, _> = tokio::time::timeout(
            self.inner.timeout,
            redis::cmd("PING").query_async(&mut conn),
        )
        .await
        .map_err(|_| "timed out".to_owned())?;
        pong.map(|_| ()).map_err(|e| e.to_string())
    }
}
