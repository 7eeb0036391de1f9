//! HTTP routes; [`router`] merges them. No global prefix: health at the root, API under `/api/v1`.

pub mod detect;
pub mod health;
pub mod history;
pub mod training;

use aegis_common::openapi::{
    PublicRoute, add_security_scheme, api_key_header, base_document, require_security,
};
use axum::middleware;
use utoipa_axum::router::OpenApiRouter;

use crate::{auth, state::AppState};

/// Security scheme: `X-API-Key` = `API_KEY` (every `/api/v1` route).
pub const API_KEY: &str = "apiKey";
/// Security scheme: `X-API-Key` = `ADMIN_API_KEY` (training).
pub const ADMIN_API_KEY: &str = "adminApiKey";

/// Every operation that answers without a key, and why (with `API_KEY` set).
pub const PUBLIC_ROUTES: &[PublicRoute] = &[
    PublicRoute {
        method: "GET",
        path: "/",
        why: "static service banner",
    },
    PublicRoute {
        method: "GET",
        path: "/ping",
        why: "liveness probe",
    },
    PublicRoute {
        method: "GET",
        path: "/health",
        why: "liveness status for probes and operators; no data",
    },
    PublicRoute {
        method: "GET",
        path: "/health/ready",
        why: "readiness probe",
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
        "Aegis AI engine",
        env!("CARGO_PKG_VERSION"),
        "Anomaly and failure-pattern detection over metric and log windows, prediction history and training data. \
         Errors are FastAPI-style `{\"detail\": ...}` bodies.",
    );
    add_security_scheme(
        &mut doc,
        API_KEY,
        api_key_header(
            "X-API-Key",
            "API_KEY, compared in constant time; a missing or wrong key is 403.",
        ),
    );
    add_security_scheme(
        &mut doc,
        ADMIN_API_KEY,
        api_key_header(
            "X-API-Key",
            "ADMIN_API_KEY; without one, training is closed whenever API_KEY is set.",
        ),
    );
    doc
}

/// The ai-engine's routes and their document (without the shared layers). No I/O.
///
/// Security is documented only where the key check is active: without `API_KEY` (a keyless
/// development setup) the `/api/v1` routes are open and the document says so.
pub fn api(state: AppState) -> OpenApiRouter {
    let mut admin = training::train_router();
    if state.config.admin_api_key.is_some() || state.config.api_key.is_some() {
        admin = require_security(admin, ADMIN_API_KEY);
    }
    let admin = admin.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_admin_key,
    ));
    let mut api = OpenApiRouter::new()
        .merge(detect::router())
        .merge(history::router())
        .merge(training::data_router());
    if state.config.api_key.is_some() {
        api = require_security(api, API_KEY);
    }
    let api = api
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .merge(admin);
    OpenApiRouter::with_openapi(document())
        .merge(health::router())
        .nest("/api/v1", api)
        .with_state(state)
}
