//! Serving a router: binding (port 0 works), connect info, graceful shutdown on SIGTERM/Ctrl-C,
//! and choosing a port for a child process that binds it later.
//!
//! Every connection is bounded ([`ServeLimits`]): a client must send a request's header within
//! a deadline, the connections served at once are capped (the rest wait in the listen
//! backlog), and the drain after a shutdown signal ends at a deadline, so a client that holds a
//! connection open can neither pin resources nor hold a shutdown up.

use std::{future::Future, ops::Range, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt as _;

use crate::config::{ConfigError, Env};

/// The limits every served connection lives within.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `HTTP_HEADER_READ_TIMEOUT_MS` | 10000 | a request's header must arrive within this, else the connection is closed |
/// | `HTTP_MAX_CONNECTIONS` | 4096 | connections served at once; more wait in the listen backlog |
/// | `SHUTDOWN_DRAIN_TIMEOUT_MS` | 20000 | after SIGTERM, requests in flight get this long (under Kubernetes' 30 s grace period) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// A request's header must arrive within this.
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long requests in flight may run after the shutdown signal.
    pub drain_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            drain_timeout: Duration::from_secs(20),
        }
    }
}

impl ServeLimits {
    /// The limits from the environment (see the table above).
    ///
    /// # Errors
    /// A value that is not a positive number.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let millis = |name: &str, default: Duration| -> Result<Duration, ConfigError> {
            let ms: u64 = env.parse(
                name,
                &[],
                u64::try_from(default.as_millis()).unwrap_or(u64::MAX),
            )?;
            if ms == 0 {
                return Err(ConfigError::invalid(name, "must be at least 1"));
            }
            Ok(Duration::from_millis(ms))
        };
        let max_connections: usize = env.parse("HTTP_MAX_CONNECTIONS", &[], d.max_connections)?;
        if max_connections == 0 {
            return Err(ConfigError::invalid(
                "HTTP_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        Ok(Self {
            header_read_timeout: millis("HTTP_HEADER_READ_TIMEOUT_MS", d.header_read_timeout)?,
            max_connections,
            drain_timeout: millis("SHUTDOWN_DRAIN_TIMEOUT_MS", d.drain_timeout)?,
        })
    }
}

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

/// Serves `router` on `listener` until `shutdown` resolves, then drains in-flight requests for
/// at most `limits.drain_timeout`. HTTP/1.1 with upgrades (WebSocket); each request carries
/// the peer's [`ConnectInfo<std::net::SocketAddr>`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ServeLimits,
) -> std::io::Result<()> {
    drop(serve_then_return(listener, router, shutdown, limits).await);
    Ok(())
}

/// [`serve`], but the listener is handed back once the drain is over instead of being
/// closed, so that another router can take the same port (the start-up server does).
pub async fn serve_then_return(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ServeLimits,
) -> TcpListener {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // `signal` tells every connection to finish its request and close; `close` is held by
    // every connection task, so its sender sees `closed()` once the last one has ended.
    let (signal_tx, signal_rx) = tokio::sync::watch::channel(());
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req)
            });
        let conn = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut signal = signal_rx.clone();
        let close = close_rx.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                _ = signal.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(permit);
            drop(close);
        });
    }
    drop(signal_rx);
    let _ = signal_tx.send(());
    drop(close_rx);
    tokio::select! {
        () = close_tx.closed() => {}
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!(
                drain_timeout_ms = u64::try_from(limits.drain_timeout.as_millis()).unwrap_or(u64::MAX),
                "drain deadline passed; closing the connections still open"
            );
        }
    }
    listener
}

/// Set once SIGTERM or Ctrl-C arrived; the listener is installed by [`listen_for_shutdown`].
static STOP: std::sync::OnceLock<tokio::sync::watch::Sender<bool>> = std::sync::OnceLock::new();
/// Whether the service's own router serves (start-up is over).
static SERVING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn stop_latch() -> &'static tokio::sync::watch::Sender<bool> {
    STOP.get_or_init(|| {
        let (tx, _) = tokio::sync::watch::channel(false);
        // SIGTERM's listener is registered here, synchronously, so that a signal that arrives
        // while the service still starts is remembered instead of killing the process.
        #[cfg(unix)]
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let latch = tx.clone();
        tokio::spawn(async move {
            let ctrl_c = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            #[cfg(unix)]
            let term = async move {
                match term {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let term = std::future::pending::<()>();
            tokio::select! {
                () = ctrl_c => {},
                () = term => {},
            }
            latch.send_replace(true);
        });
        tx
    })
}

/// Starts listening for SIGTERM and Ctrl-C (idempotent; needs a Tokio runtime). A service
/// binary calls it first thing, so a signal during start-up is not lost.
pub fn listen_for_shutdown() {
    let _ = stop_latch();
}

/// Resolves on SIGTERM or Ctrl-C, including one that arrived before this was called.
pub async fn shutdown_signal() {
    let mut stopped = stop_latch().subscribe();
    let _ = stopped.wait_for(|s| *s).await;
    tracing::info!("shutdown signal received, draining");
}

/// Marks start-up as over: from now on a shutdown signal drains the service instead of
/// abandoning its start-up.
pub fn mark_serving() {
    SERVING.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Resolves on SIGTERM or Ctrl-C received while the service still starts (connecting,
/// migrating); never once it serves, when [`shutdown_signal`] drains it instead.
pub async fn stopped_during_start_up() {
    let mut stopped = stop_latch().subscribe();
    let _ = stopped.wait_for(|s| *s).await;
    if SERVING.load(std::sync::atomic::Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
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

    #[test]
    fn serve_limits_come_from_the_environment_and_refuse_zero() {
        let env = |pairs: &[(&str, &str)]| Env::from_pairs(pairs.iter().copied());
        assert_eq!(
            ServeLimits::from_env(&env(&[])).unwrap(),
            ServeLimits::default()
        );
        let l = ServeLimits::from_env(&env(&[
            ("HTTP_HEADER_READ_TIMEOUT_MS", "1500"),
            ("HTTP_MAX_CONNECTIONS", "7"),
            ("SHUTDOWN_DRAIN_TIMEOUT_MS", "2500"),
        ]))
        .unwrap();
        assert_eq!(l.header_read_timeout, Duration::from_millis(1500));
        assert_eq!(l.max_connections, 7);
        assert_eq!(l.drain_timeout, Duration::from_millis(2500));
        for name in [
            "HTTP_HEADER_READ_TIMEOUT_MS",
            "HTTP_MAX_CONNECTIONS",
            "SHUTDOWN_DRAIN_TIMEOUT_MS",
        ] {
            let err = ServeLimits::from_env(&env(&[(name, "0")])).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
            assert!(ServeLimits::from_env(&env(&[(name, "soon")])).is_err());
        }
    }

    mod limits {
        use std::time::Duration;

        use axum::{Router, extract::ConnectInfo, routing::get};
        use tokio::{
            io::{AsyncReadExt as _, AsyncWriteExt as _},
            net::{TcpListener, TcpStream},
            sync::oneshot,
            task::JoinHandle,
        };

        use super::super::{ServeLimits, serve};

        /// Generous bound for things that must happen "soon"; the limits under test are far
        /// shorter, and without them these waits would never end.
        const SOON: Duration = Duration::from_secs(10);

        struct Server {
            addr: std::net::SocketAddr,
            stop: Option<oneshot::Sender<()>>,
            task: JoinHandle<std::io::Result<()>>,
        }

        async fn start(limits: ServeLimits) -> Server {
            let router = Router::new()
                .route(
                    "/",
                    get(
                        |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| async move {
                            peer.ip().to_string()
                        },
                    ),
                )
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        "late"
                    }),
                );
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (tx, rx) = oneshot::channel::<()>();
            let task = tokio::spawn(serve(
                listener,
                router,
                async move {
                    let _ = rx.await;
                },
                limits,
            ));
            Server {
                addr,
                stop: Some(tx),
                task,
            }
        }

        async fn fetch(addr: std::net::SocketAddr, path: &str) -> String {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        }

        fn limits(header_ms: u64, max: usize, drain_ms: u64) -> ServeLimits {
            ServeLimits {
                header_read_timeout: Duration::from_millis(header_ms),
                max_connections: max,
                drain_timeout: Duration::from_millis(drain_ms),
            }
        }

        #[tokio::test]
        async fn requests_are_served_with_the_peer_address() {
            let server = start(ServeLimits::default()).await;
            let answer = fetch(server.addr, "/").await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.ends_with("127.0.0.1"), "{answer}");
        }

        #[tokio::test]
        async fn a_header_that_does_not_arrive_in_time_closes_the_connection() {
            let server = start(limits(200, 64, 1000)).await;
            let mut s = TcpStream::connect(server.addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            let mut buf = Vec::new();
            let read = tokio::time::timeout(SOON, s.read_to_end(&mut buf)).await;
            assert!(read.is_ok(), "the half-sent request is still held open");
            let text = String::from_utf8_lossy(&buf);
            assert!(!text.contains("200 OK"), "{text}");
        }

        #[tokio::test]
        async fn connections_beyond_the_cap_wait_until_one_closes() {
            let server = start(limits(60_000, 2, 1000)).await;
            let first = TcpStream::connect(server.addr).await.unwrap();
            let _second = TcpStream::connect(server.addr).await.unwrap();
            let third = tokio::spawn(fetch(server.addr, "/"));
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                !third.is_finished(),
                "a third connection was served past the cap"
            );
            drop(first);
            let answer = tokio::time::timeout(SOON, third).await.unwrap().unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }

        #[tokio::test]
        async fn shutdown_drains_for_at_most_the_deadline() {
            let mut server = start(limits(60_000, 64, 300)).await;
            let slow = tokio::spawn(fetch(server.addr, "/slow"));
            // An idle connection that sent nothing must not hold the shutdown up either.
            let _idle = TcpStream::connect(server.addr).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = server.stop.take().unwrap().send(());
            let ended = tokio::time::timeout(SOON, &mut server.task).await;
            assert!(
                ended.is_ok(),
                "serve did not return after the drain deadline"
            );
            assert!(ended.unwrap().unwrap().is_ok());
            assert!(
                TcpStream::connect(server.addr).await.is_err(),
                "the listener is closed"
            );
            slow.abort();
        }

        #[tokio::test]
        async fn a_finished_request_does_not_wait_for_the_deadline() {
            let mut server = start(limits(60_000, 64, 60_000)).await;
            assert!(fetch(server.addr, "/").await.starts_with("HTTP/1.1 200"));
            let _ = server.stop.take().unwrap().send(());
            let ended = tokio::time::timeout(SOON, &mut server.task).await;
            assert!(
                ended.is_ok(),
                "an idle server waited for the drain deadline"
            );
        }
    }
}
