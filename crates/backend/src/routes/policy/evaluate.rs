//! Evaluation: `GET`/`POST /policy/evaluate` against the active policies (audited), and
//! `POST /policy/dry-run` against a draft set (never audited).

use std::collections::HashMap;

use aegis_common::{
    openapi::BackendErrorBody,
    telemetry::{CORRELATION_HEADER, TraceParent},
};
use aegis_policy::{EvaluationContext, EvaluationRequest, PolicySet, PolicyType, Request};
use axum::{
    extract::{FromRequestParts, Query, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use serde_json::{Value, json};

use super::{
    invalid::{bad, validation},
    schema::{DryRunBody, DryRunResult, EvaluationResult},
};
use crate::{
    auth::{AdminOrAuditor, ClientInfo, Principal, RateLimit, RequireRole},
    error::{ApiError, Json},
    policy::EvaluationMeta,
    routes::docs::{Forbidden, RateLimited, ServerError, Unauthorized},
    state::AppState,
};

/// The caller of an evaluate route: a JWT user or an API key (401 otherwise), or anybody in
/// public mode. The principal lands in the request extensions for the rate limiter.
#[derive(Debug, Clone, Copy)]
pub struct EvaluateCaller;

impl FromRequestParts<AppState> for EvaluateCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let has_credential = crate::auth::principal::bearer(&parts.headers).is_some()
            || parts.headers.contains_key("x-api-key");
        if state.config.policy.evaluate_public && !has_credential {
            return Ok(EvaluateCaller);
        }
        Principal::from_request_parts(parts, state).await?;
        Ok(EvaluateCaller)
    }
}

/// The trace id the caller sent (`traceparent`, else `X-Correlation-Id`); `None` when it sent
/// none, even though the middleware starts a trace for every request.
fn caller_correlation_id(headers: &HeaderMap) -> Option<String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    text("traceparent")
        .and_then(TraceParent::parse)
        .or_else(|| text(CORRELATION_HEADER).and_then(TraceParent::from_trace_id))
        .map(|t| t.trace_id())
}

fn explain_flag(q: &HashMap<String, String>) -> Result<bool, ApiError> {
    match q.get("explain").map(String::as_str) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some(_) => Err(bad("explain must be a boolean")),
    }
}

async fn run_evaluation(
    state: &AppState,
    headers: &HeaderMap,
    request: &EvaluationRequest,
    explain: bool,
) -> Response {
    let meta = EvaluationMeta {
        correlation_id: caller_correlation_id(headers),
    };
    let evaluation = state.policy.evaluate(request, meta, explain).await;
    let mut body = serde_json::to_value(evaluation.to_response()).unwrap_or_else(|_| json!({}));
    if let (Some(e), Some(obj)) = (evaluation.explanation, body.as_object_mut()) {
        obj.insert("explanation".into(), e);
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn check_request(r: &EvaluationRequest) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if r.action.is_empty() {
        errors.push("action should not be empty".to_owned());
    }
    if r.resource.is_empty() {
        errors.push("resource should not be empty".to_owned());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::BadRequest(errors.into()))
    }
}

#[utoipa::path(post, path = "/policy/evaluate", tag = "policy", operation_id = "evaluate_policy", summary = "Evaluate a request against the policies",
    description = "Evaluates one request against the active policies (JWT or service key; public with POLICY_EVALUATE_PUBLIC=true). The caller's `traceparent` or `X-Correlation-Id` is recorded as the correlation id.",
    params(("explain" = Option<bool>, Query, description = "Also answer the trace of every policy")),
    request_body = EvaluationRequest,
    responses(
        (status = 200, description = "The decision", body = EvaluationResult),
        (status = 400, description = "Invalid body, empty action or resource, or invalid `explain`", body = BackendErrorBody),
        Unauthorized, RateLimited, ServerError,
    ))]
pub(super) async fn evaluate_post(
    State(state): State<AppState>,
    _: EvaluateCaller,
    _: RateLimit,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    aegis_common::http::Json(request, _): Json<EvaluationRequest>,
) -> Result<Response, ApiError> {
    let explain = explain_flag(&q)?;
    check_request(&request)?;
    Ok(run_evaluation(&state, &headers, &request, explain).await)
}

#[utoipa::path(get, path = "/policy/evaluate", tag = "policy", operation_id = "evaluate_policy_query", summary = "Evaluate a request against the policies (query string)",
    description = "`POST /policy/evaluate` with the request in the query string (the client IP and user agent fill in the context when absent).",
    params(
        ("action" = String, Query, description = "The action, e.g. `scale_up`"),
        ("resource" = String, Query, description = "The resource, e.g. `service:api`"),
        ("type" = PolicyType, Query, description = "The policy type"),
        ("userId" = Option<String>, Query, description = "Context: the user id"),
        ("role" = Option<String>, Query, description = "Context: the role"),
        ("ipAddress" = Option<String>, Query, description = "Context: the client IP (default: the caller's)"),
        ("userAgent" = Option<String>, Query, description = "Context: the user agent (default: the caller's)"),
        ("explain" = Option<bool>, Query, description = "Also answer the trace of every policy"),
    ),
    responses(
        (status = 200, description = "The decision", body = EvaluationResult),
        (status = 400, description = "Missing action, resource or type, unknown type, or invalid `explain`", body = BackendErrorBody),
        Unauthorized, RateLimited, ServerError,
    ))]
pub(super) async fn evaluate_get(
    State(state): State<AppState>,
    _: EvaluateCaller,
    _: RateLimit,
    client: ClientInfo,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let explain = explain_flag(&q)?;
    let field = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let (Some(action), Some(resource), Some(policy_type)) =
        (field("action"), field("resource"), field("type"))
    else {
        return Err(bad("Query params action, resource, and type are required"));
    };
    let policy_type: PolicyType = policy_type.parse().map_err(|e| bad(format!("{e}")))?;
    let user_agent = field("userAgent").or_else(|| {
        headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let request = EvaluationRequest {
        policy_type,
        action,
        resource,
        context: EvaluationContext {
            user_id: field("userId"),
            role: field("role"),
            metadata: None,
            ip_address: field("ipAddress").or_else(|| Some(client.ip_string())),
            user_agent,
        },
    };
    Ok(run_evaluation(&state, &headers, &request, explain).await)
}

#[utoipa::path(post, path = "/policy/dry-run", tag = "policy", operation_id = "dry_run_policies", summary = "Dry-run a request against draft policies",
    description = "Evaluates one request against a draft policy set, without touching the stored policies or the audit log (admin, auditor).",
    security(("bearerAuth" = [])),
    request_body = DryRunBody,
    responses(
        (status = 200, description = "The decision with its explanation", body = DryRunResult),
        (status = 400, description = "Invalid draft policies or request", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
pub(super) async fn dry_run(
    State(_state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
    aegis_common::http::Json(body, _): Json<DryRunBody>,
) -> Result<Response, ApiError> {
    let _ = q;
    check_request(&body.request)?;
    let policies = aegis_policy::validate_policies(&body.policies).map_err(|e| {
        let mut e = e;
        if !e.path.starts_with("policies") {
            e.path = format!("policies{}", e.path);
        }
        validation(&e)
    })?;
    let set = PolicySet::new(policies);
    let explanation = set.explain(&Request::from(&body.request), Utc::now());
    let decision = explanation.decision.to_body();
    let mut out = serde_json::to_value(&decision).unwrap_or_else(|_| json!({}));
    if let Some(obj) = out.as_object_mut() {
        obj.insert("dryRun".into(), Value::Bool(true));
        obj.insert(
            "explanation".into(),
            serde_json::to_value(&explanation).unwrap_or(Value::Null),
        );
    }
    Ok(axum::Json(out).into_response())
}
