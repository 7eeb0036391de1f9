//! A service's port: the start-up answers while it connects and migrates ([`Starting`]), then
//! its router on the same listener ([`Bound`]).

use std::future::Future;

use axum::Router;

/// The port of a service that is still starting (connecting, migrating): it answers its
/// liveness paths with 200 `{"status":"starting"}` and everything else with 503, so that a
/// liveness probe does not restart a service that is only waiting for its database, and a
/// readiness probe keeps traffic away. [`Starting::hand_over`] hands the same port to the
/// service's router.
#[derive(Debug)]
pub struct Starting {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<tokio::net::TcpListener>>,
    port: u16,
    limits: crate::server::ServeLimits,
}

impl Starting {
    /// Binds `host:port` and serves the start-up answers on it. The error names the address.
    pub async fn bind(
        host: &str,
        port: u16,
        live_paths: &[&str],
        limits: crate::server::ServeLimits,
    ) -> std::io::Result<Self> {
        use axum::{http::StatusCode, routing::get};
        let listener = crate::server::bind(host, port).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("failed to bind {host}:{port}: {e}"))
        })?;
        let port = listener.local_addr()?.port();
        let starting = || async { axum::Json(serde_json::json!({"status": "starting"})) };
        let mut router = Router::new().fallback(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "starting"})),
            )
        });
        for path in live_paths {
            router = router.route(path, get(starting));
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Probes are quick: the hand-over waits for them a second at most.
        let drain = crate::server::ServeLimits {
            drain_timeout: limits.drain_timeout.min(std::time::Duration::from_secs(1)),
            ..limits
        };
        let task = tokio::spawn(crate::server::serve_then_return(
            listener,
            router,
            async move {
                let _ = stopped.await;
            },
            drain,
        ));
        Ok(Self {
            stop: Some(stop),
            task: Some(task),
            port,
            limits,
        })
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the start-up answers and binds `router` to the same listener.
    pub async fn hand_over(mut self, router: Router) -> std::io::Result<Bound> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self
            .task
            .take()
            .ok_or_else(|| std::io::Error::other("the start-up server is gone"))?;
        let listener = task.await.map_err(std::io::Error::other)?;
        Ok(Bound {
            listener,
            router,
            limits: self.limits,
        })
    }
}

/// A router bound to its listening socket, ready to serve; port 0 binds any free port.
#[derive(Debug)]
pub struct Bound {
    listener: tokio::net::TcpListener,
    router: Router,
    limits: crate::server::ServeLimits,
}

impl Bound {
    /// Binds `host:port` for `router`, to be served within `limits`.
    pub async fn bind(
        host: &str,
        port: u16,
        router: Router,
        limits: crate::server::ServeLimits,
    ) -> std::io::Result<Self> {
        let listener = crate::server::bind(host, port).await?;
        Ok(Self {
            listener,
            router,
            limits,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        crate::server::mark_serving();
        crate::server::serve(self.listener, self.router, shutdown, self.limits).await
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(crate::server::shutdown_signal()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_start_up_port_answers_liveness_then_hands_over_to_the_service() {
        let limits = crate::server::ServeLimits::default();
        let starting = Starting::bind("127.0.0.1", 0, &["/ping"], limits)
            .await
            .unwrap();
        let base = format!("http://127.0.0.1:{}", starting.port());
        let client = reqwest::Client::new();
        let status = |path: &'static str| {
            let req = client.get(format!("{base}{path}")).send();
            async move { req.await.unwrap().status().as_u16() }
        };
        assert_eq!(status("/ping").await, 200);
        assert_eq!(status("/work").await, 503);
        let router = Router::new().route("/work", axum::routing::get(|| async { "done" }));
        let bound = starting.hand_over(router).await.unwrap();
        assert_eq!(
            bound.port(),
            base.rsplit(':').next().unwrap().parse::<u16>().unwrap()
        );
        tokio::spawn(bound.run_until(std::future::pending()));
        assert_eq!(
            status("/work").await,
            200,
            "the service answers on the same port"
        );
    }
}
