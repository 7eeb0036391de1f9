//! HTTP routes, one module per resource; [`router`] merges them.

pub mod ai;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod executor;
pub mod health;
pub mod logs;
pub mod policy;
pub mod remediation;
pub mod roles;
pub mod settings;
pub mod users;

use axum::{Router, middleware};

use crate::state::AppState;

/// The backend's routes (without the shared layers, which `startup` adds). No I/O.
pub fn router(state: AppState) -> Router {
    let prefix = state.config.api_prefix.clone();
    let api = Router::new()
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
        // Deny-by-default (backend.md §1): every route merged above is authenticated unless
        // listed in `auth::PUBLIC_ROUTES`. Keep this after the last `merge`.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_auth,
        ))
        // Authenticates itself (JWT or API key, or public with POLICY_EVALUATE_PUBLIC=true).
        .merge(policy::evaluate_router());
    Router::new()
        .nest(&prefix, api)
        // backend.md §1: health and metrics are also served at the root.
        .merge(health::root_router())
        .with_state(state)
}
