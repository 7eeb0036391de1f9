//! The HTTP layer: authentication and the router, which sends the Kubernetes paths to
//! `kube_api` and the admin (`/_sim/...`) paths to `admin`, and serves `/metrics` and the
//! health checks.

mod admin;
mod kube_api;
mod params;
mod verb;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use serde_json::Value;

use crate::cluster::Cluster;
use crate::error::StatusError;

/// State shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The simulated cluster.
    pub cluster: Cluster,
    /// The bearer token clients must present.
    pub token: Arc<str>,
    /// A second token that may only read (get, list, watch).
    pub read_only_token: Option<Arc<str>>,
    /// `host:port` the server is reachable at, reported by `/api`.
    pub server_address: Arc<str>,
}

/// The whole application: `/metrics` and health checks open, everything else behind the token.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route(
            "/_sim/faults",
            get(admin::list_faults)
                .post(admin::add_faults)
                .put(admin::replace_faults)
                .delete(admin::clear_faults),
        )
        .route(
            "/_sim/metrics",
            axum::routing::post(admin::set_metric).delete(admin::reset_metrics),
        )
        .route(
            "/_sim/requests",
            get(admin::list_requests).delete(admin::clear_requests),
        )
        .route("/_sim/crashloop", axum::routing::post(admin::crashloop))
        .route("/_sim/logs", axum::routing::post(admin::append_logs))
        .route(
            "/_sim/images",
            axum::routing::get(admin::list_image_behaviours).post(admin::set_image_behaviour),
        )
        .fallback(kube_api::kube_api)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(ok))
        .route("/readyz", get(ok))
        .route("/livez", get(ok))
        .merge(protected)
        .with_state(state)
}

async fn ok() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.cluster.metrics_text(),
    )
        .into_response()
}

async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(t) if t == &*state.token => next.run(request).await,
        Some(t) if state.read_only_token.as_deref() == Some(t) => {
            if read_only_may(&request) {
                next.run(request).await
            } else {
                StatusError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{} {} is forbidden: the read-only token may only get, list and watch, \
                         and write leases",
                        request.method(),
                        request.uri().path()
                    ),
                )
                .into_response()
            }
        }
        _ => StatusError::unauthorized().into_response(),
    }
}

/// What the read-only token may do: `GET` (get, list and watch) on the Kubernetes API, and
/// anything to leases, which leader election writes; never the simulator's own `/_sim`
/// endpoints.
fn read_only_may(request: &Request) -> bool {
    let path = request.uri().path();
    if path.starts_with("/_sim") {
        return false;
    }
    let lease = path.starts_with("/apis/coordination.k8s.io/v1/")
        && path.split('/').any(|segment| segment == "leases");
    request.method() == http::Method::GET || lease
}

/// `value` as a JSON answer with `code`.
fn json_response(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}
