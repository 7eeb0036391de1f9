//! A fresh database per test on the shared PostgreSQL server, and a Redis key prefix per test.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::OnceCell;

/// The server tests use: `TEST_DATABASE_URL`, default the local trust-auth server.
#[must_use]
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The Redis tests use: `TEST_REDIS_URL`, default `redis://127.0.0.1:6379`.
#[must_use]
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix no other test uses, e.g. `test:3f2a...:`.
#[must_use]
pub fn redis_prefix() -> String {
    format!("test:{}:", uuid::Uuid::new_v4().simple())
}

/// A database created for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// Database name.
    pub name: String,
    /// Connection URL.
    pub url: String,
}

const PREFIX: &str = "aegis_t_";
/// Test databases older than this are dropped by the next test run.
const STALE_AFTER_SECS: u64 = 3 * 3600;

static SWEPT: OnceCell<()> = OnceCell::const_new();

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Creates an empty database named after `tag` (the service migrates it at start-up).
///
/// # Panics
/// When the server is unreachable: tests need it, and the message says how to get one.
#[allow(clippy::panic)]
pub async fn fresh_database(tag: &str) -> TestDatabase {
    let server = server_url();
    let mut conn = match PgConnection::connect(&server).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {server}: {e}. Start a local server \
             (trust auth, user postgres) or set TEST_DATABASE_URL."
        ),
    };
    SWEPT
        .get_or_init(|| async {
            sweep_stale(&server).await;
        })
        .await;
    let tag: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    let name = format!(
        "{PREFIX}{tag}_{}_{}",
        now_secs(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    if let Err(e) = conn
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
    {
        panic!("cannot create test database {name}: {e}");
    }
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    TestDatabase {
        url: format!("{base}/{name}"),
        name,
    }
}

/// Drops test databases left behind by earlier runs (older than three hours).
async fn sweep_stale(server: &str) {
    let Ok(mut conn) = PgConnection::connect(server).await else {
        return;
    };
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'aegis\\_t\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    let cutoff = now_secs().saturating_sub(STALE_AFTER_SECS);
    for name in names {
        let created = name
            .split('_')
            .rev()
            .nth(1)
            .and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|c| c < cutoff) {
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                .await;
        }
    }
}
