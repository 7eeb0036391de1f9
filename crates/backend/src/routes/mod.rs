//! HTTP routes, one module per resource; [`api`] merges them into one router and its OpenAPI
//! document (see [`docs`]).

pub mod ai;
pub mod alertmanager;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod docs;
pub mod executor;
pub mod health;
pub mod logs;
pub mod notifications;
pub mod policy;
mod query;
pub mod remediation;
pub mod remediation_mode;
pub mod roles;
pub mod settings;
pub mod users;

use axum::middleware;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The backend's routes and their OpenAPI document (without the shared layers and the meta
/// routes `/metrics`, `/openapi.json` and `/docs`, which `startup` adds through
/// `service::documented_with_service_layers`). No I/O.
pub fn api(state: AppState) -> OpenApiRouter {
    let prefix = state.config.api_prefix.clone();
    let protected = OpenApiRouter::new()
        .merge(health::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(roles::router())
        .merge(audit::router())
        .merge(alerts::router())
        .merge(settings::router())
        .merge(ai::router())
        .merge(executor::router())
        .merge(logs::router())
        .merge(policy::router())
        .merge(remediation::router())
        .merge(remediation_mode::router())
        .merge(notifications::router())
        .merge(alertmanager::router());
    // Deny-by-default: every route merged above is authenticated unless
    // listed in `auth::PUBLIC_ROUTES`; the document says so for each operation.
    let protected = docs::secure_behind_layer(protected).route_layer(
        middleware::from_fn_with_state(state.clone(), crate::auth::require_auth),
    );
    // Authenticates itself (JWT or API key, or public with POLICY_EVALUATE_PUBLIC=true).
    let evaluate = docs::secure_evaluate(
        policy::evaluate_router(),
        state.config.policy.evaluate_public,
    );
    OpenApiRouter::with_openapi(docs::document())
        .nest(&prefix, protected.merge(evaluate))
        // health and metrics are also served at the root.
        .merge(health::root_router())
        .with_state(state)
}
