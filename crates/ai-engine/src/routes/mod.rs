//! HTTP routes; [`router`] merges them. No global prefix: health at the root, API under `/api/v1`.

pub mod health;

use axum::Router;

use crate::state::AppState;

/// The ai-engine's routes (without the shared layers). No I/O.
pub fn router(state: AppState) -> Router {
    Router::new().merge(health::router()).with_state(state)
}
