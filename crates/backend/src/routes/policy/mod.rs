//! The policy engine's routes: CRUD (admin writes, admin/auditor reads),
//! evaluation (`GET`/`POST /policy/evaluate`, `?explain=true`), `POST /policy/dry-run` against a
//! draft set, the evaluation audit log and the per-user evaluation counts.
//!
//! The evaluate routes are merged *after* the deny-by-default layer because they authenticate
//! themselves: a JWT or a service API key, or nothing at all when `POLICY_EVALUATE_PUBLIC=true`.

mod audit_log;
mod crud;
mod evaluate;
mod invalid;
mod schema;

use utoipa_axum::{router::OpenApiRouter, routes};

pub use evaluate::EvaluateCaller;
pub use schema::{
    DryRunResult, EvaluationResult, PolicyEffect, PolicyInput, PolicyPatch, PolicyRemediationMode,
};

use crate::state::AppState;

/// CRUD, dry-run, audit log and counts (behind the deny-by-default layer).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(crud::create, crud::list))
        .routes(routes!(evaluate::dry_run))
        .routes(routes!(audit_log::audit_logs))
        .routes(routes!(crud::get_one, crud::update, crud::delete_one))
        .routes(routes!(audit_log::evaluation_counts))
}

/// `GET`/`POST /policy/evaluate`; merge after the `require_auth` route layer.
pub fn evaluate_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(evaluate::evaluate_get, evaluate::evaluate_post))
}
