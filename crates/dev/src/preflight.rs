//! Checks that PostgreSQL and Redis answer before anything starts, with one clear message on
//! how to get them when they do not. Every check has a short timeout: it never hangs.

use std::time::Duration;

use tokio::{io::AsyncReadExt as _, io::AsyncWriteExt as _, net::TcpStream, time::timeout};

const TIMEOUT: Duration = Duration::from_secs(3);

/// Where the local data tier is expected.
#[derive(Debug, Clone)]
pub struct DataTier {
    /// PostgreSQL host.
    pub pg_host: String,
    /// PostgreSQL port.
    pub pg_port: u16,
    /// Redis host.
    pub redis_host: String,
    /// Redis port.
    pub redis_port: u16,
}

impl Default for DataTier {
    fn default() -> Self {
        Self {
            pg_host: "127.0.0.1".into(),
            pg_port: 5432,
            redis_host: "127.0.0.1".into(),
            redis_port: 6379,
        }
    }
}

/// `Ok` when both answer; otherwise a message that says exactly what to do.
pub async fn check(tier: &DataTier) -> Result<(), String> {
    let mut problems = Vec::new();
    if !tcp_open(&tier.pg_host, tier.pg_port).await {
        problems.push(format!(
            "PostgreSQL is not reachable on {}:{}.\n  Install and start it with trust authentication for user postgres on 127.0.0.1, e.g. on Debian:\n    apt-get install postgresql && pg_ctlcluster 15 main start\n  (or set PGHOST/PGPORT to a server that has them).",
            tier.pg_host, tier.pg_port
        ));
    }
    if !redis_pong(&tier.redis_host, tier.redis_port).await {
        problems.push(format!(
            "Redis is not reachable on {}:{}.\n  Install and start it, e.g. on Debian:\n    apt-get install redis-server && redis-server --daemonize yes --save '' --appendonly no\n  (or set REDIS_HOST/REDIS_PORT).",
            tier.redis_host, tier.redis_port
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

async fn tcp_open(host: &str, port: u16) -> bool {
    matches!(
        timeout(TIMEOUT, TcpStream::connect((host, port))).await,
        Ok(Ok(_))
    )
}

async fn redis_pong(host: &str, port: u16) -> bool {
    let talk = async {
        let mut s = TcpStream::connect((host, port)).await?;
        s.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await?;
        std::io::Result::Ok(buf.get(..n).is_some_and(|b| b.starts_with(b"+PONG")))
    };
    matches!(timeout(TIMEOUT, talk).await, Ok(Ok(true)))
}

/// The demo's databases, by service: dropped (with their connections) and left for each
/// service to create and migrate at start-up.
pub const DEMO_DATABASES: [(&str, &str); 3] = [
    ("backend", "aegis_demo_backend"),
    ("ai-engine", "aegis_demo_ai"),
    ("executor", "aegis_demo_executor"),
];

/// Drops the demo databases so the run starts clean; returns [`DEMO_DATABASES`].
pub async fn reset_demo_databases(
    postgres_base: &str,
) -> Result<[(&'static str, &'static str); 3], String> {
    use sqlx::Connection as _;
    let url = format!("{}/postgres", postgres_base.trim_end_matches('/'));
    let mut conn = timeout(TIMEOUT, sqlx::PgConnection::connect(&url))
        .await
        .map_err(|_| format!("PostgreSQL at {postgres_base} did not answer within 3 s"))?
        .map_err(|e| format!("cannot connect to PostgreSQL as user postgres ({e}); the demo needs trust authentication for postgres on 127.0.0.1"))?;
    for (_, name) in DEMO_DATABASES {
        // Names are constants of this file, never input.
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("cannot drop the demo database {name}: {e}"))?;
    }
    Ok(DEMO_DATABASES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_servers_give_instructions_quickly() {
        let tier = DataTier {
            pg_host: "127.0.0.1".into(),
            pg_port: 9,
            redis_host: "127.0.0.1".into(),
            redis_port: 9,
        };
        let started = std::time::Instant::now();
        let err = check(&tier).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(err.contains("PostgreSQL is not reachable on 127.0.0.1:9"));
        assert!(err.contains("apt-get install redis-server"));
    }

    #[tokio::test]
    async fn the_machines_servers_pass() {
        check(&DataTier::default()).await.unwrap();
    }
}
