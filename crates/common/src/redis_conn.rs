//! A Redis connection that never blocks start-up and never hangs a request.
//!
//! Redis is fail-open for every Aegis use (rate limits, caches, lockout counters): when it is
//! down, callers get `None` or an error within the response timeout and carry on. The first
//! connection is made in the background and retried; afterwards redis-rs's connection manager
//! reconnects by itself.

use std::{sync::Arc, time::Duration};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

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
}

impl std::fmt::Debug for SharedRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: not shown.
        f.debug_struct("SharedRedis")
            .field("prefix", &self.inner.prefix)
            .field("connected", &self.inner.conn.initialized())
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

    /// A connection, or `None` while Redis has never been reachable.
    pub async fn connection(&self) -> Option<ConnectionManager> {
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

    /// `PING` within the timeout (health checks).
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self
            .connection()
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
