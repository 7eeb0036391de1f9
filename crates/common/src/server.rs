//! Serving a router: binding (port 0 works), connect info, graceful shutdown on SIGTERM/Ctrl-C,
//! and choosing a port for a child process that binds it later.

use std::{future::Future, net::SocketAddr, ops::Range};

use axum::Router;
use tokio::net::TcpListener;

/// Binds `host:port`; port 0 picks a free port (tests).
pub async fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind((host, port)).await
}

/// A port on 127.0.0.1 that is free now and that outgoing connections will not take, for a
/// child process (a service, PostgreSQL, Prometheus) that binds it later.
///
/// `bind("127.0.0.1:0")` hands out a port from the kernel's ephemeral range; once that
/// listener is dropped, the next `connect()` of any process on the machine may take the same
/// port as its source port, and the child that was meant to listen there fails with "address
/// in use" (seen in `bench/run.sh`: the executor's and ai-engine's pool connections took the
/// backend's port while they started). So the port comes from below the ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`, 32768 when unreadable), where only listeners
/// that name a port live, starting at a random place so that parallel tests rarely try the
/// same one.
pub fn unused_port() -> std::io::Result<u16> {
    let range = listen_range(ephemeral_low());
    let span = range.end - range.start;
    let start = rand::random_range(0..span);
    for i in 0..span {
        let port = range.start + (start + i) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free port in {}..{}", range.start, range.end),
    ))
}

/// Ports [`unused_port`] chooses from: the 12768 ports below the ephemeral range
/// (20000..32768 on Linux's default), never below 1024.
fn listen_range(ephemeral_low: u16) -> Range<u16> {
    let end = ephemeral_low.max(2048);
    end.saturating_sub(12768).max(1024)..end
}

fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received, draining");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_below_the_ephemeral_range() {
        assert_eq!(listen_range(32768), 20000..32768);
        assert_eq!(listen_range(10000), 1024..10000);
        assert_eq!(listen_range(0), 1024..2048);
        let port = unused_port().unwrap();
        assert!(listen_range(ephemeral_low()).contains(&port), "{port}");
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn a_taken_port_is_not_handed_out() {
        let mut held = Vec::new();
        for _ in 0..32 {
            let port = unused_port().unwrap();
            assert!(
                !held.iter().any(|(p, _)| *p == port),
                "{port} handed out twice"
            );
            held.push((
                port,
                std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(),
            ));
        }
    }
}
