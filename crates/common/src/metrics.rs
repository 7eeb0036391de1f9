//! Prometheus metrics: a per-service registry, the HTTP middleware, and the
//! `/metrics` handler.
//!
//! Every family is registered when the service starts. The `prometheus` crate leaves a labelled
//! family out of its output until its first child exists, so [`Metrics::render`] adds the
//! `# HELP`/`# TYPE` lines of families that have no sample yet: scrapers and alert rules see
//! every family from the first scrape on.

use std::{
    borrow::Cow,
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// `http_request_duration_seconds` buckets.
pub const HTTP_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Errors while registering a metric (a duplicate name is a programming error caught by tests).
pub type MetricsError = prometheus::Error;

/// A service's registry plus the HTTP families every service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    families: Mutex<Vec<(String, String, &'static str)>>,
    http_requests: IntCounterVec,
    http_errors: IntCounterVec,
    http_duration: HistogramVec,
}

impl Metrics {
    /// A registry with the HTTP families and the `process_*` collector.
    pub fn new() -> Result<Arc<Self>, MetricsError> {
        let registry = Registry::new();
        let families = Mutex::new(Vec::new());
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "path", "status"],
        )?;
        let http_errors = IntCounterVec::new(
            Opts::new("http_errors_total", "HTTP responses with status >= 400"),
            &["method", "path", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                .buckets(HTTP_BUCKETS.to_vec()),
            &["method", "path"],
        )?;
        let metrics = Self {
            registry,
            families,
            http_requests: http_requests.clone(),
            http_errors: http_errors.clone(),
            http_duration: http_duration.clone(),
        };
        metrics.register(
            "http_requests_total",
            "HTTP requests by method, route and status",
            "counter",
            http_requests,
        )?;
        metrics.register(
            "http_errors_total",
            "HTTP responses with status >= 400",
            "counter",
            http_errors,
        )?;
        metrics.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            "histogram",
            http_duration,
        )?;
        #[cfg(target_os = "linux")]
        metrics.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Arc::new(metrics))
    }

    fn register<C: prometheus::core::Collector + 'static>(
        &self,
        name: &str,
        help: &str,
        kind: &'static str,
        collector: C,
    ) -> Result<(), MetricsError> {
        self.registry.register(Box::new(collector))?;
        if let Ok(mut f) = self.families.lock() {
            f.push((name.to_owned(), help.to_owned(), kind));
        }
        Ok(())
    }

    /// Registers a labelled counter.
    pub fn counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, MetricsError> {
        let c = IntCounterVec::new(Opts::new(name, help), labels)?;
        self.register(name, help, "counter", c.clone())?;
        Ok(c)
    }

    /// Registers a counter.
    pub fn counter(&self, name: &str, help: &str) -> Result<IntCounter, MetricsError> {
        let c = IntCounter::new(name, help)?;
        self.register(name, help, "counter", c.clone())?;
        Ok(c)
    }

    /// Registers an integer gauge.
    pub fn int_gauge(&self, name: &str, help: &str) -> Result<IntGauge, MetricsError> {
        let g = IntGauge::new(name, help)?;
        self.register(name, help, "gauge", g.clone())?;
        Ok(g)
    }

    /// Registers a float gauge.
    pub fn gauge(&self, name: &str, help: &str) -> Result<Gauge, MetricsError> {
        let g = Gauge::new(name, help)?;
        self.register(name, help, "gauge", g.clone())?;
        Ok(g)
    }

    /// Registers a labelled integer gauge.
    pub fn int_gauge_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntGaugeVec, MetricsError> {
        let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
        self.register(name, help, "gauge", g.clone())?;
        Ok(g)
    }

    /// Registers a labelled histogram.
    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> Result<HistogramVec, MetricsError> {
        let h = HistogramVec::new(
            HistogramOpts::new(name, help).buckets(buckets.to_vec()),
            labels,
        )?;
        self.register(name, help, "histogram", h.clone())?;
        Ok(h)
    }

    /// The registry, for collectors a service builds itself.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text exposition of everything registered.
    #[must_use]
    pub fn render(&self) -> String {
        let gathered = self.registry.gather();
        let mut buf = Vec::with_capacity(8 * 1024);
        if TextEncoder::new().encode(&gathered, &mut buf).is_err() {
            buf.clear();
        }
        let mut out = String::from_utf8(buf).unwrap_or_default();
        if let Ok(families) = self.families.lock() {
            for (name, help, kind) in families.iter() {
                if !gathered.iter().any(|mf| mf.name() == name) {
                    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
                }
            }
        }
        out
    }

    /// Records one finished HTTP request.
    pub fn observe_http(&self, method: &str, path: &str, status: u16, seconds: f64) {
        let label = status_label(status);
        self.http_requests
            .with_label_values(&[method, path, &label])
            .inc();
        if status >= 400 {
            self.http_errors
                .with_label_values(&[method, path, &label])
                .inc();
        }
        self.http_duration
            .with_label_values(&[method, path])
            .observe(seconds);
    }
}

/// A status code as a decimal label, without allocating for the common codes.
fn status_label(status: u16) -> Cow<'static, str> {
    Cow::Borrowed(match status {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        413 => "413",
        422 => "422",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        other => return Cow::Owned(other.to_string()),
    })
}

/// The route template as a label: axum's `{id}` becomes `:id`, as the original's dashboards and
/// alert rules expect; unmatched requests are `unmatched`.
#[must_use]
pub fn route_label(matched: Option<&MatchedPath>) -> String {
    let Some(m) = matched else {
        return "unmatched".to_owned();
    };
    let raw = m.as_str();
    if !raw.contains('{') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    for ch in raw.chars() {
        match ch {
            '{' => out.push(':'),
            '}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The request method as a label: the standard methods by name, any other token (a client may
/// send `FOOBAR`) as `OTHER`, so the label's values form a closed set.
#[must_use]
pub fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

/// Middleware: counts and times every response, including those produced by auth, throttling
/// and the fallback. Install with `axum::middleware::from_fn_with_state(metrics, track_http)`
/// through `Router::layer`, so the matched route is known.
pub async fn track_http(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let path = route_label(req.extensions().get::<MatchedPath>());
    let res = next.run(req).await;
    metrics.observe_http(
        method,
        &path,
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

/// `GET /metrics`.
pub async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> Response {
    let mut res = metrics.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_method_outside_the_standard_ones_is_labelled_other() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for token in ["FOOBAR", "get", "X-RANDOM-1"] {
            let m = Method::from_bytes(token.as_bytes()).unwrap();
            assert_eq!(method_label(&m), "OTHER", "{token}");
        }
    }

    #[test]
    fn empty_families_are_still_exposed() {
        let m = Metrics::new().unwrap();
        let c = m
            .counter_vec(
                "policy_evaluations_total",
                "evals",
                &["type", "result", "cached"],
            )
            .unwrap();
        let text = m.render();
        assert!(
            text.contains("# TYPE http_requests_total counter"),
            "{text}"
        );
        assert!(text.contains("# TYPE policy_evaluations_total counter"));
        assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
        c.with_label_values(&["self_healing", "allow", "false"])
            .inc();
        let text = m.render();
        assert_eq!(text.matches("# TYPE policy_evaluations_total").count(), 1);
        assert!(text.contains(
            r#"policy_evaluations_total{cached="false",result="allow",type="self_healing"} 1"#
        ));
    }

    #[test]
    fn errors_are_counted_separately() {
        let m = Metrics::new().unwrap();
        m.observe_http("GET", "/api/v1/users/:id", 404, 0.001);
        m.observe_http("GET", "/api/v1/users/:id", 200, 0.001);
        let text = m.render();
        assert!(
            text.contains(
                r#"http_errors_total{method="GET",path="/api/v1/users/:id",status="404"} 1"#
            ),
            "{text}"
        );
        assert!(
            !text.contains(
                r#"http_errors_total{method="GET",path="/api/v1/users/:id",status="200"}"#
            )
        );
    }

    #[test]
    fn process_metrics_are_exported() {
        let m = Metrics::new().unwrap();
        assert!(m.render().contains("process_resident_memory_bytes"));
    }
}
