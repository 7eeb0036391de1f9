//! HTTP routes, one module per resource; [`router`] merges them. No I/O here.

pub mod audit;
pub mod deployments;
pub mod execute;
pub mod health;
pub mod signature;

use aegis_common::openapi::{
    self, PublicRoute, add_security_scheme, api_key_header, base_document, bearer, require_security,
};
use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::HeaderValue,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{config::AuditAuth, error::ApiError, state::AppState};

/// Security scheme: `X-API-Key` from `SERVICE_API_KEYS` (the deployment read).
pub const SERVICE_API_KEY: &str = "serviceApiKey";
/// Security scheme: `Authorization: Bearer <AUDIT_API_TOKEN>` (the audit API).
pub const AUDIT_TOKEN: &str = "auditToken";

/// Every operation that answers without an HTTP credential, and why.
pub const PUBLIC_ROUTES: &[PublicRoute] = &[
    PublicRoute {
        method: "POST",
        path: "/executor/execute",
        why: "authenticated by the HMAC-SHA256 signature inside the body, which no HTTP scheme can express",
    },
    PublicRoute {
        method: "POST",
        path: "/executor/generate-signature",
        why: "development helper, routed only with ENABLE_SIGNATURE_HELPER=true, which production refuses",
    },
    PublicRoute {
        method: "GET",
        path: "/health",
        why: "static liveness status for probes",
    },
    PublicRoute {
        method: "GET",
        path: "/health/ping",
        why: "liveness probe and container HEALTHCHECK",
    },
    PublicRoute {
        method: "GET",
        path: "/health/config",
        why: "effective non-secret settings for operators",
    },
    PublicRoute {
        method: "GET",
        path: "/health/ready",
        why: "readiness probe: up/down only",
    },
    PublicRoute {
        method: "GET",
        path: "/metrics",
        why: "Prometheus scrape inside the cluster; no secrets or personal data",
    },
    PublicRoute {
        method: "GET",
        path: "/openapi.json",
        why: "the API description, public by design",
    },
    PublicRoute {
        method: "GET",
        path: "/docs",
        why: "the API reference page, public by design",
    },
];

/// The document's `info` and security schemes.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = base_document(
        "Aegis executor",
        env!("CARGO_PKG_VERSION"),
        "Runs signed, bounded Kubernetes remediation actions and keeps a tamper-evident audit trail. \
         `POST /executor/execute` is authenticated by an HMAC-SHA256 signature inside the body (v1, or v2 with `timestamp` and `nonce`).",
    );
    add_security_scheme(
        &mut doc,
        SERVICE_API_KEY,
        api_key_header(
            "X-API-Key",
            "One of SERVICE_API_KEYS (service-to-service reads).",
        ),
    );
    add_security_scheme(
        &mut doc,
        AUDIT_TOKEN,
        bearer("AUDIT_API_TOKEN, compared in constant time."),
    );
    doc
}

/// The executor's routes and their OpenAPI document (without the shared layers and the meta
/// routes, which `startup` adds through `service::documented_with_service_layers`). No I/O.
pub fn api(state: AppState) -> OpenApiRouter {
    let mut throttled = OpenApiRouter::new().routes(routes!(execute::execute));
    if state.config.enable_signature_helper {
        throttled = throttled.routes(routes!(signature::generate_signature));
    }
    let throttled = throttled.route_layer(middleware::from_fn_with_state(state.clone(), throttle));
    let deployments = require_security(
        OpenApiRouter::new().routes(routes!(deployments::get_deployment)),
        SERVICE_API_KEY,
    );
    let mut audit = audit::router();
    if state.config.audit_auth != AuditAuth::None {
        audit = require_security(audit, AUDIT_TOKEN);
    }
    OpenApiRouter::with_openapi(document())
        .merge(throttled)
        .merge(deployments)
        .merge(audit)
        .merge(health::router())
        .with_state(state)
}

/// The public-route list must match the served document (see [`openapi::check_public_routes`]).
#[must_use]
pub fn check_public_routes(doc: &serde_json::Value) -> Vec<String> {
    openapi::check_public_routes(doc, PUBLIC_ROUTES)
}

/// per client IP per route, sliding log; rejected hits count too.
async fn throttle(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
    let peer = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let ip = execute::client_ip(req.headers(), peer, state.config.trust_proxy)
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let decision = state.throttle.hit(&route, ip);
    if !decision.allowed {
        state
            .executor_metrics
            .rate_limit_hits
            .with_label_values(&["http", "n/a"])
            .inc();
        return ApiError::TooManyRequests {
            message: "ThrottlerException: Too Many Requests".into(),
            retry_after: decision.reset_secs,
            throttler: true,
        }
        .into_response();
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", decision.limit.to_string()),
        ("x-ratelimit-remaining", decision.remaining.to_string()),
        ("x-ratelimit-reset", decision.reset_secs.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    res
}
