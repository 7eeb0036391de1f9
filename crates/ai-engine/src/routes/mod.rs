//! HTTP routes; [`router`] merges them. No global prefix: health at the root, API under `/api/v1`.

pub mod detect;
pub mod health;
pub mod history;
pub mod training;

use axum::{Router, middleware};

use crate::{auth, state::AppState};

/// The ai-engine's routes (without the shared layers). No I/O.
pub fn router(state: AppState) -> Router {
    let admin = training::train_router().route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_admin_key,
    ));
    let api = Router::new()
        .merge(detect::router())
        .merge(history::router())
        .merge(training::data_router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .merge(admin);
    Router::new()
        .merge(health::router())
        .nest("/api/v1", api)
        .with_state(state)
}
