//! The layers every Aegis service wraps its router in, in one place so the three services
//! cannot drift: `/metrics`, the body limit, request metrics and the error envelope.

use std::{future::Future, process::ExitCode, sync::Arc};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, HeaderValue},
    middleware,
    routing::get,
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    set_header::SetResponseHeaderLayer,
};

use crate::{
    config::{ConfigError, Env},
    error::{ErrorStyle, envelope},
    metrics::{Metrics, metrics_handler, track_http},
    telemetry::TelemetryConfig,
};

/// Adds `GET /metrics` and the shared layers to a service's finished router.
///
/// Order, outermost first: request metrics (so every response is counted and timed, including
/// rejections), the trace context and request log, the error envelope (so framework defaults become the service's JSON body), then
/// the body limit.
pub fn finish<S: ErrorStyle>(router: Router, metrics: Arc<Metrics>, body_limit: usize) -> Router {
    let router = router.route("/metrics", get(metrics_handler).with_state(metrics.clone()));
    with_layers::<S>(router, metrics, body_limit)
}

/// [`finish`] for a router built from its OpenAPI document: adds the documented `/metrics`,
/// `/openapi.json` (the document) and `/docs` (an interactive reference), the error body of
/// `S` as a schema, a 413 answer on every operation with a body, then the shared layers.
/// `/openapi.json` and `/docs` are public by design.
pub fn finish_documented<S: ErrorStyle + crate::openapi::ErrorBodySchema>(
    api: utoipa_axum::router::OpenApiRouter,
    metrics: Arc<Metrics>,
    body_limit: usize,
) -> Router {
    let (router, _doc) = crate::openapi::split::<S>(api, metrics.clone());
    with_layers::<S>(router, metrics, body_limit)
}

fn with_layers<S: ErrorStyle>(router: Router, metrics: Arc<Metrics>, body_limit: usize) -> Router {
    let router = router.layer(DefaultBodyLimit::max(body_limit));
    with_security_headers(router)
        .layer(middleware::from_fn(envelope::<S>))
        .layer(middleware::from_fn(crate::telemetry::trace_requests))
        .layer(middleware::from_fn_with_state(metrics, track_http))
}

/// Headers every JSON API answer carries (including the error envelope's): no sniffing, no framing, no referrer, no caching of
/// responses that may hold personal data, and a CSP that forbids everything (no HTML is
/// served). Handlers may override them.
fn with_security_headers(router: Router) -> Router {
    const HEADERS: [(&str, &str); 5] = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    HEADERS.iter().fold(router, |r, (name, value)| {
        r.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ))
    })
}

/// Why a CORS configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CorsError {
    /// `*` together with credentials is invalid for browsers and unsafe.
    #[error("\"*\" is not allowed as a CORS origin when credentials are allowed; list the origins")]
    WildcardWithCredentials,
    /// An origin that is not a valid header value.
    #[error("invalid CORS origin {0:?}")]
    InvalidOrigin(String),
}

/// A restrictive CORS layer for exactly `origins` (none = no CORS headers at all). Methods and
/// request headers are the ones the dashboard uses.
pub fn cors_layer(origins: &[String], credentials: bool) -> Result<Option<CorsLayer>, CorsError> {
    if origins.is_empty() {
        return Ok(None);
    }
    if credentials && origins.iter().any(|o| o == "*") {
        return Err(CorsError::WildcardWithCredentials);
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .map(|o| HeaderValue::from_str(o).map_err(|_| CorsError::InvalidOrigin(o.clone())))
        .collect::<Result<_, _>>()?;
    use axum::http::{Method, header};
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(list))
            .allow_credentials(credentials)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::PUT,
                Method::PATCH,
                Method::POST,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-csrf-token"),
                HeaderName::from_static("x-requested-with"),
            ]),
    ))
}

/// The port of a service that is still starting (connecting, migrating): it answers its
/// liveness paths with 200 `{"status":"starting"}` and everything else with 503, so that a
/// liveness probe does not restart a service that is only waiting for its database, and a
/// readiness probe keeps traffic away. [`Starting::finish`] hands the same port to the
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
    pub async fn finish(mut self, router: Router) -> std::io::Result<Bound> {
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

/// What makes a service of a [`Bound`] server: how it is built from its configuration, and
/// what it does once the server has stopped and every request has drained (stop background
/// jobs, flush queued writes). The implementing type holds what winding down needs.
pub trait Shell: Sized + Send + 'static {
    /// The state the handlers share; tests inspect it.
    type State: Send + 'static;
    /// The service's configuration.
    type Config;

    /// Connects, migrates when enabled, builds the router and binds the port.
    fn build(
        config: Self::Config,
    ) -> impl Future<Output = anyhow::Result<Application<Self>>> + Send;

    /// Runs after serving has stopped and requests have drained.
    fn wind_down(self) -> impl Future<Output = ()> + Send;
}

/// A bound, ready-to-run service: the one shell of the three services, so binding, serving,
/// draining and winding down work the same way in each.
#[derive(Debug)]
pub struct Application<S: Shell> {
    bound: Bound,
    state: S::State,
    shell: S,
}

impl<S: Shell> Application<S> {
    /// Puts together what [`Shell::build`] made.
    pub fn new(bound: Bound, state: S::State, shell: S) -> Self {
        Self {
            bound,
            state,
            shell,
        }
    }

    /// Builds the service from `config` (see [`Shell::build`]).
    ///
    /// # Errors
    /// Whatever stopped the service from starting: the database, a migration, the port.
    pub async fn build(config: S::Config) -> anyhow::Result<Self> {
        S::build(config).await
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.bound.local_addr()
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.bound.port()
    }

    /// The shared state.
    #[must_use]
    pub fn state(&self) -> &S::State {
        &self.state
    }

    /// Serves until `shutdown` resolves, drains the requests in flight, then winds down.
    /// The state is dropped first, so the handlers hold the last references to it.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            bound,
            state,
            shell,
        } = self;
        drop(state);
        let served = bound.run_until(shutdown).await;
        shell.wind_down().await;
        served
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(crate::server::shutdown_signal()).await
    }
}

/// Errors a service binary reports before exiting.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a service binary provides to [`run_binary`].
pub trait ServiceBinary {
    /// Binary name, e.g. `aegis-backend`.
    const NAME: &'static str;
    /// The service's typed configuration.
    type Config: Send + 'static;
    /// Reads the configuration; errors name the variable.
    fn load(env: &Env) -> Result<Self::Config, ConfigError>;
    /// Telemetry settings from the configuration.
    fn telemetry(config: &Self::Config) -> TelemetryConfig;
    /// `migrate`: apply migrations and return.
    fn migrate(config: Self::Config) -> impl Future<Output = Result<(), BoxError>> + Send;
    /// `serve`: run until SIGTERM or Ctrl-C.
    fn serve(config: Self::Config) -> impl Future<Output = Result<(), BoxError>> + Send;
    /// An extra tracing layer installed with the global subscriber (none by default).
    fn log_layer(_config: &Self::Config) -> Option<crate::telemetry::ExtraLayer> {
        None
    }
}

/// The whole `main` of a service: `NAME [serve|migrate]`, configuration errors on stderr with
/// exit code 2 (never a panic), telemetry, deprecation notes, then the command.
pub async fn run_binary<B: ServiceBinary>() -> ExitCode {
    crate::health::mark_start();
    let usage = format!(
        "usage: {name} [serve|migrate]\n  serve    run the service (default); migrates first unless AUTO_MIGRATE=false\n  migrate  apply the database migrations and exit\nConfiguration comes from the environment; see README.md.",
        name = B::NAME
    );
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        println!("{usage}");
        return ExitCode::SUCCESS;
    }
    if !matches!(command.as_str(), "serve" | "migrate") {
        eprintln!("{}: unknown command {command:?}\n{usage}", B::NAME);
        return ExitCode::from(2);
    }
    let env = Env::from_process();
    let config = match B::load(&env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: configuration error: {e}", B::NAME);
            return ExitCode::from(2);
        }
    };
    let _telemetry =
        match crate::telemetry::init_with(&B::telemetry(&config), B::log_layer(&config)) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("{}: {e}", B::NAME);
                return ExitCode::from(2);
            }
        };
    for note in env.deprecation_notes() {
        tracing::warn!("{note}");
    }
    crate::server::listen_for_shutdown();
    let result = if command == "migrate" {
        B::migrate(config).await
    } else {
        // A shutdown signal during start-up (a hung database, a rollout that moved on) ends
        // the process cleanly; once the service serves, the signal drains it instead.
        tokio::select! {
            result = B::serve(config) => result,
            () = crate::server::stopped_during_start_up() => {
                tracing::info!("{} stopped during start-up", B::NAME);
                Ok(())
            }
        }
    };
    match result {
        Ok(()) => {
            tracing::info!("{} stopped", B::NAME);
            ExitCode::SUCCESS
        }
        Err(e) => {
            let chain = error_chain(e.as_ref());
            tracing::error!(error = %chain, "{} stopped with an error", B::NAME);
            eprintln!("{}: {chain}", B::NAME);
            ExitCode::FAILURE
        }
    }
}

/// `error` and every cause under it, `outer: inner: root`, so that the message an operator
/// reads names the cause and not only the step that failed.
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        // anyhow prints its own chain with `{:#}`; never repeat a cause already shown.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{BackendStyle, FastApiStyle, NestStyle};

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
        let bound = starting.finish(router).await.unwrap();
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

    #[test]
    fn a_fatal_error_is_reported_with_its_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "pool timed out");
        let e = anyhow::Error::new(io).context("failed to migrate the aegis_backend database");
        let boxed: BoxError = e.into();
        assert_eq!(
            error_chain(boxed.as_ref()),
            "failed to migrate the aegis_backend database: pool timed out"
        );
    }
    use crate::http::Json;
    use axum::{
        body::Body,
        http::{Request, StatusCode},
        routing::post,
    };
    use serde::Deserialize;
    use serde_json::Value;
    use tower::ServiceExt as _;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body1 {
        name: String,
    }

    fn app<S: ErrorStyle>() -> Router {
        let r = Router::new().route(
            "/things",
            post(|Json(b, _): Json<Body1, S>| async move { b.name }),
        );
        finish::<S>(r, Metrics::new().unwrap(), 1024)
    }

    async fn send(app: Router, req: Request<Body>) -> (StatusCode, Value) {
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/json"), "{ct}");
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn post_json(body: &str) -> Request<Body> {
        Request::post("/things?x=1")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    #[tokio::test]
    async fn backend_malformed_json_gets_the_full_error_body() {
        let (status, body) = send(app::<BackendStyle>(), post_json("{\"name\":")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["statusCode"], 400);
        assert_eq!(body["error"], "Bad Request");
        assert_eq!(body["path"], "/things?x=1");
        assert_eq!(body["method"], "POST");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[tokio::test]
    async fn backend_unknown_property_is_named() {
        let (status, body) = send(
            app::<BackendStyle>(),
            post_json(r#"{"name":"a","admin":true}"#),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["message"][0], "property admin should not exist");
    }

    #[tokio::test]
    async fn executor_style_bodies() {
        let (status, body) = send(app::<NestStyle>(), post_json("nope")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "Bad Request");
        assert!(body.get("path").is_none());
        let req = Request::get("/nowhere").body(Body::empty()).unwrap();
        let (status, body) = send(app::<NestStyle>(), req).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            serde_json::json!({"statusCode":404,"message":"Cannot GET /nowhere","error":"Not Found"})
        );
    }

    #[tokio::test]
    async fn fastapi_style_uses_422_detail_lists() {
        let (status, body) = send(app::<FastApiStyle>(), post_json("{bad")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["detail"][0]["type"], "json_invalid");
        let (status, body) = send(app::<FastApiStyle>(), post_json("{}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["detail"][0]["type"], "missing");
        assert_eq!(
            body["detail"][0]["loc"],
            serde_json::json!(["body", "name"])
        );
    }

    #[tokio::test]
    async fn wrong_content_type_method_and_size_use_the_style() {
        let req = Request::post("/things")
            .header("content-type", "text/plain")
            .body(Body::from("{}"))
            .unwrap();
        let (status, body) = send(app::<BackendStyle>(), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["statusCode"], 400);

        let req = Request::get("/things").body(Body::empty()).unwrap();
        let (status, body) = send(app::<BackendStyle>(), req).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"], "Method Not Allowed");

        let big = format!("{{\"name\":\"{}\"}}", "x".repeat(4096));
        let (status, body) = send(app::<BackendStyle>(), post_json(&big)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["statusCode"], 413);
    }

    #[tokio::test]
    async fn metrics_label_by_route_template_and_count_rejections() {
        let metrics = Metrics::new().unwrap();
        let r = Router::new().route(
            "/users/{id}",
            post(|Json(b, _): Json<Body1, BackendStyle>| async move { b.name }),
        );
        let app = finish::<BackendStyle>(r, metrics.clone(), 1024);
        let req = Request::post("/users/123")
            .header("content-type", "application/json")
            .body(Body::from("{"))
            .unwrap();
        let _ = app.clone().oneshot(req).await.unwrap();
        let _ = app
            .oneshot(Request::get("/missing").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let text = metrics.render();
        assert!(
            text.contains(r#"http_requests_total{method="POST",path="/users/:id",status="400"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"http_requests_total{method="GET",path="unmatched",status="404"} 1"#),
            "{text}"
        );
    }
}
