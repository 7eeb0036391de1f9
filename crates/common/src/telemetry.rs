//! Tracing setup and W3C trace context.
//!
//! * Logs: one JSON object per line in production (Loki's `| json` parser reads them), readable
//!   text in development and tests. `LOG_LEVEL` (or `RUST_LOG`) sets the filter.
//! * Traces: exported over OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! * Context: [`TraceParent`] parses and formats `traceparent`; Aegis uses its trace id as the
//!   incident correlation id, and sends it on every outgoing call.

use std::fmt;

use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::AppEnv;

/// Telemetry settings of a service.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service.name`, e.g. `aegis-backend`.
    pub service_name: &'static str,
    /// Selects the log format.
    pub app_env: AppEnv,
    /// A tracing filter such as `info` or `aegis_backend=debug,info`.
    pub log_level: String,
    /// Force JSON (true) or text (false); `None` = JSON in production only.
    pub json_logs: Option<bool>,
    /// OTLP/HTTP endpoint, e.g. `http://otel-collector:4318`.
    pub otlp_endpoint: Option<String>,
}

/// Keeps the trace exporter alive; flushes it on drop.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Errors while installing telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("LOG_LEVEL is invalid: {0}")]
    Filter(String),
    /// The OTLP exporter could not be built.
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the exporter: {0}")]
    Exporter(String),
    /// A global subscriber is already installed.
    #[error("tracing is already initialised: {0}")]
    AlreadySet(String),
}

/// Normalises the level names clients send (`warning`, upper case) to tracing's.
fn normalise_level(level: &str) -> String {
    let lower = level.trim().to_ascii_lowercase();
    match lower.as_str() {
        "warning" => "warn".to_owned(),
        "critical" | "fatal" => "error".to_owned(),
        _ => lower,
    }
}

/// An extra layer a service adds to the global subscriber (e.g. the backend's log table).
pub type ExtraLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// Installs the global subscriber. Call once, from `main`.
pub fn init(cfg: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    init_with(cfg, None)
}

/// [`init`] plus an `extra` layer (it sees the events the log filter lets through).
pub fn init_with(
    cfg: &TelemetryConfig,
    extra: Option<ExtraLayer>,
) -> Result<TelemetryGuard, TelemetryError> {
    let filter = EnvFilter::try_new(normalise_level(&cfg.log_level))
        .map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let json = cfg.json_logs.unwrap_or(cfg.app_env.is_production());
    // Colour codes only for a person at a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let fmt_layer = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(ansi)
            .boxed()
    };

    let mut guard = TelemetryGuard::default();
    let otel_layer = match cfg.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        None => None,
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig as _;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(cfg.service_name)
                        .build(),
                )
                .build();
            let tracer = provider.tracer(cfg.service_name);
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            guard.provider = Some(provider);
            Some(tracing_opentelemetry::layer().with_tracer(tracer))
        }
    };

    tracing_subscriber::registry()
        .with(extra)
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|e| TelemetryError::AlreadySet(e.to_string()))?;
    Ok(guard)
}

/// A W3C `traceparent`: `00-<trace id>-<parent id>-<flags>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    sampled: bool,
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{}",
            hex::encode(self.trace_id),
            hex::encode(self.parent_id),
            if self.sampled { "01" } else { "00" }
        )
    }
}

impl TraceParent {
    /// A new trace with random ids (sampled).
    #[must_use]
    pub fn new_root() -> Self {
        loop {
            let trace_id: [u8; 16] = rand::random();
            let parent_id: [u8; 8] = rand::random();
            if trace_id != [0; 16] && parent_id != [0; 8] {
                return Self {
                    trace_id,
                    parent_id,
                    sampled: true,
                };
            }
        }
    }

    /// The same trace with a new parent span id (for an outgoing call).
    #[must_use]
    pub fn child(&self) -> Self {
        let mut parent_id: [u8; 8] = rand::random();
        if parent_id == [0; 8] {
            parent_id[7] = 1;
        }
        Self { parent_id, ..*self }
    }

    /// A trace continuing `trace_id` (32 lowercase hex characters).
    #[must_use]
    pub fn from_trace_id(trace_id: &str) -> Option<Self> {
        let mut id = [0u8; 16];
        if trace_id.len() != 32 || trace_id.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        hex::decode_to_slice(trace_id, &mut id).ok()?;
        (id != [0; 16]).then(|| Self {
            trace_id: id,
            ..Self::new_root()
        })
    }

    /// Parses a header value; invalid values (including all-zero ids) are `None`.
    #[must_use]
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let parent = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version == "ff" || flags.len() != 2 {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let mut me = Self::from_trace_id(trace)?;
        if parent.len() != 16 || parent.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        hex::decode_to_slice(parent, &mut me.parent_id).ok()?;
        if me.parent_id == [0; 8] {
            return None;
        }
        let mut flag = [0u8; 1];
        hex::decode_to_slice(flags, &mut flag).ok()?;
        me.sampled = flag[0] & 1 == 1;
        Some(me)
    }

    /// The trace id as 32 lowercase hex characters: Aegis's correlation id.
    #[must_use]
    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }
}

/// Header carrying the correlation id (the trace id) back to callers.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Adds `traceparent` (a child span of `parent`) and `X-Correlation-Id` to an outgoing request.
pub fn propagate(
    builder: reqwest::RequestBuilder,
    parent: &TraceParent,
) -> reqwest::RequestBuilder {
    builder
        .header("traceparent", parent.child().to_string())
        .header(CORRELATION_HEADER, parent.trace_id())
}

/// Middleware: takes the caller's `traceparent` (or starts a trace), makes it available to
/// handlers as an `Extension<TraceParent>`, logs one line per request, and echoes the trace id as `X-Correlation-Id`.
pub async fn trace_requests(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let incoming = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
        .or_else(|| {
            req.headers()
                .get(CORRELATION_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(TraceParent::from_trace_id)
        });
    let trace = incoming.unwrap_or_else(TraceParent::new_root);
    req.extensions_mut().insert(trace);
    let method = req.method().clone();
    // A clone shares the request's bytes: no copy of the path per request.
    let uri = req.uri().clone();
    let path = uri.path();
    let started = std::time::Instant::now();
    let mut res = next.run(req).await;
    let status = res.status().as_u16();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let trace_id = trace.trace_id();
    if let Ok(v) = axum::http::HeaderValue::from_str(&trace_id) {
        res.headers_mut().insert(CORRELATION_HEADER, v);
    }
    // One line per request; the macros format the message only when the level is enabled
    // (the services run at `warn`, where a 2xx logs nothing).
    macro_rules! request_line {
        ($level:ident) => {
            tracing::$level!(method = %method, path = %path, status_code = status, duration_ms, trace_id = %trace_id, "{method} {path} {status} {duration_ms:.0}ms")
        };
    }
    match status {
        500.. => request_line!(error),
        400..=499 => request_line!(warn),
        _ => request_line!(info),
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what a fmt subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn each_request_is_logged_once_at_the_level_of_its_status() {
        use tower::ServiceExt as _;
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = axum::Router::new()
            .route("/ok", axum::routing::get(|| async { "ok" }))
            .route(
                "/boom",
                axum::routing::get(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .layer(axum::middleware::from_fn(trace_requests));
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        for (path, want) in [("/ok", 200), ("/missing?q=1", 404), ("/boom", 500)] {
            let req = axum::http::Request::get(path)
                .header(CORRELATION_HEADER, trace)
                .body(axum::body::Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status().as_u16(), want);
            assert_eq!(res.headers()[CORRELATION_HEADER], trace);
        }
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let seen: Vec<_> = lines
            .iter()
            .map(|l| {
                let f = &l["fields"];
                let message = f["message"].as_str().unwrap();
                assert!(message.ends_with("ms"), "{message}");
                assert_eq!(f["trace_id"], trace);
                (
                    l["level"].as_str().unwrap().to_owned(),
                    f["path"].as_str().unwrap().to_owned(),
                    f["status_code"].as_u64().unwrap(),
                    message.rsplit_once(' ').unwrap().0.to_owned(),
                )
            })
            .collect();
        let row = |level: &str, path: &str, status: u64, message: &str| {
            (
                level.to_owned(),
                path.to_owned(),
                status,
                message.to_owned(),
            )
        };
        assert_eq!(
            seen,
            [
                row("INFO", "/ok", 200, "GET /ok 200"),
                row("WARN", "/missing", 404, "GET /missing 404"),
                row("ERROR", "/boom", 500, "GET /boom 500"),
            ]
        );
    }

    #[test]
    fn round_trips() {
        let tp = TraceParent::new_root();
        let parsed = TraceParent::parse(&tp.to_string()).unwrap();
        assert_eq!(parsed, tp);
        assert_eq!(tp.trace_id().len(), 32);
        let child = tp.child();
        assert_eq!(child.trace_id(), tp.trace_id());
        assert_ne!(child.to_string(), tp.to_string());
    }

    #[test]
    fn parses_the_w3c_example() {
        let tp =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn rejects_invalid_headers() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn level_names_are_normalised() {
        assert_eq!(normalise_level("WARNING"), "warn");
        assert_eq!(normalise_level("INFO"), "info");
    }
}
