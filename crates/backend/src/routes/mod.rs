//! HTTP routes, one module per resource; [`router`] merges them.

pub mod health;

use axum::Router;

use crate::state::AppState;

/// The backend's routes (without the shared layers, which `startup` adds). No I/O.
pub fn router(state: AppState) -> Router {
    let prefix = state.config.api_prefix.clone();
    let api = Router::new().merge(health::router());
    Router::new()
        .nest(&prefix, api)
        // backend.md §1: health and metrics are also served at the root.
        .merge(health::root_router())
        .with_state(state)
}
