//! HTTP routes, one module per resource; [`router`] merges them. No I/O here.

pub mod audit;
pub mod deployments;
pub mod execute;
pub mod health;
pub mod signature;

use axum::{
    Router,
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::HeaderValue,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};

use crate::{error::ApiError, state::AppState};

/// The executor's routes (without the shared layers, which `startup` adds).
pub fn router(state: AppState) -> Router {
    let mut throttled = Router::new().route("/executor/execute", post(execute::execute));
    if state.config.enable_signature_helper {
        throttled = throttled.route(
            "/executor/generate-signature",
            post(signature::generate_signature),
        );
    }
    let throttled = throttled.route_layer(middleware::from_fn_with_state(state.clone(), throttle));
    Router::new()
        .merge(throttled)
        .route(
            "/executor/deployments/{namespace}/{name}",
            get(deployments::get_deployment),
        )
        .merge(audit::router())
        .merge(health::router())
        .with_state(state)
}

/// §6.3: per client IP per route, sliding log; rejected hits count too.
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
