//! The policy engine's routes: CRUD (admin writes, admin/auditor reads),
//! evaluation (`GET`/`POST /policy/evaluate`, `?explain=true`), `POST /policy/dry-run` against a
//! draft set, the evaluation audit log and the per-user evaluation counts.
//!
//! The evaluate routes are merged *after* the deny-by-default layer because they authenticate
//! themselves: a JWT or a service API key, or nothing at all when `POLICY_EVALUATE_PUBLIC=true`.

use std::collections::HashMap;

use aegis_common::{
    error::Message,
    openapi::BackendErrorBody,
    telemetry::{CORRELATION_HEADER, TraceParent},
};
use aegis_policy::{
    EvaluationContext, EvaluationRequest, PolicySet, PolicyType, Request, ValidationError,
};
use axum::{
    extract::{FromRequestParts, Query, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::docs::{Forbidden, MessageBody, RateLimited, ServerError, Unauthorized};
use crate::{
    auth::{Admin, AdminOrAuditor, AuthUser, ClientInfo, Principal, RateLimit, RequireRole},
    db::{
        self,
        audit::{NewAuditEvent, record},
        policies::{self, PolicyFilter, PolicyRow},
        policy_audit::{self, EvaluationCount, PolicyAuditFilter, PolicyAuditRow},
    },
    error::{ApiError, Json, UuidPath},
    policy::EvaluationMeta,
    state::AppState,
};

/// CRUD, dry-run, audit log and counts (behind the deny-by-default layer).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(dry_run))
        .routes(routes!(audit_logs))
        .routes(routes!(get_one, update, delete_one))
        .routes(routes!(evaluation_counts))
}

/// `GET`/`POST /policy/evaluate`; merge after the `require_auth` route layer.
pub fn evaluate_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(evaluate_get, evaluate_post))
}

/// `allow` or `deny`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyEffect {
    /// Allow, unless a matching deny exists.
    Allow,
    /// Deny; overrides every allow.
    Deny,
}

/// Guardrail mode of a `self_healing` policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyRemediationMode {
    /// Never act.
    Off,
    /// Record what would be done, do nothing.
    DryRun,
    /// Wait for an admin's approval.
    Approval,
    /// Act at once.
    Auto,
}

/// A policy definition as `POST /policy` and dry-run take it; the policy
/// engine validates it (unknown keys, patterns, conditions, priority range).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyInput {
    /// Ignored id (dry-run sets use it as the last tie-breaker).
    #[serde(default)]
    #[schema(nullable = false)]
    pub id: Option<String>,
    /// Unique name, 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// The policy type.
    #[serde(rename = "type")]
    pub policy_type: PolicyType,
    /// Allow or deny.
    pub effect: PolicyEffect,
    /// Condition object: every key must hold.
    pub conditions: Map<String, Value>,
    /// Action patterns (`*`, a literal, or a glob with `*` and `?`).
    pub actions: Vec<String>,
    /// Resource patterns (`*`, a literal, or a glob with `*` and `?`).
    pub resources: Vec<String>,
    /// 0 to 1000 (default 100).
    #[serde(default)]
    #[schema(nullable = false, minimum = 0, maximum = 1000)]
    pub priority: Option<i32>,
    /// Inactive policies are never candidates (default true; `enabled` is accepted as an alias).
    #[serde(default)]
    #[schema(nullable = false)]
    pub is_active: Option<bool>,
    /// For `self_healing` policies.
    #[serde(default)]
    #[schema(nullable = false)]
    pub remediation_mode: Option<PolicyRemediationMode>,
}

/// `PATCH /policy/{id}` body: a JSON merge patch of the definition (any subset of its keys).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyPatch {
    /// 1 to 255 characters.
    #[schema(nullable = false, min_length = 1, max_length = 255)]
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// The policy type.
    #[serde(rename = "type")]
    #[schema(nullable = false)]
    pub policy_type: Option<PolicyType>,
    /// Allow or deny.
    #[schema(nullable = false)]
    pub effect: Option<PolicyEffect>,
    /// Condition object.
    #[schema(nullable = false)]
    pub conditions: Option<Map<String, Value>>,
    /// Action patterns.
    #[schema(nullable = false)]
    pub actions: Option<Vec<String>>,
    /// Resource patterns.
    #[schema(nullable = false)]
    pub resources: Option<Vec<String>>,
    /// 0 to 1000.
    #[schema(nullable = false, minimum = 0, maximum = 1000)]
    pub priority: Option<i32>,
    /// Active or not.
    #[schema(nullable = false)]
    pub is_active: Option<bool>,
    /// For `self_healing` policies.
    #[schema(nullable = false)]
    pub remediation_mode: Option<PolicyRemediationMode>,
}

/// An evaluation's answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationResult {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// Why.
    pub reason: String,
    /// Matching policies, in evaluation order.
    pub applied_policies: Vec<String>,
    /// The evaluation's audit row id.
    pub decision_id: String,
    /// With `explain=true` only: the decision and every policy's trace.
    #[schema(nullable = false, value_type = Option<Object>)]
    pub explanation: Option<Value>,
}

/// `POST /policy/dry-run` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRunResult {
    /// Whether the action would be allowed.
    pub allowed: bool,
    /// Why.
    pub reason: String,
    /// Matching draft policies, in evaluation order.
    pub applied_policies: Vec<String>,
    /// Always `true`.
    pub dry_run: bool,
    /// The decision and every draft policy's trace.
    #[schema(value_type = Object)]
    pub explanation: Value,
}

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

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(Message::Text(msg.into()))
}

fn bad_list(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(Message::List(vec![msg.into()]))
}

/// A validation error as a 400 naming the field (`priority: priority must be …`); the spec's
/// exact sentence for non-object conditions.
fn validation(e: &ValidationError) -> ApiError {
    match e.kind {
        aegis_policy::ValidationErrorKind::ConditionsNotObject => bad_list(e.message()),
        _ => bad_list(e.to_string()),
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

#[utoipa::path(post, path = "/policy/evaluate", tag = "policy", operation_id = "evaluate_policy",
    description = "Evaluates one request against the active policies (JWT or service key; public with POLICY_EVALUATE_PUBLIC=true). The caller's `traceparent` or `X-Correlation-Id` is recorded as the correlation id.",
    params(("explain" = Option<bool>, Query, description = "Also answer the trace of every policy")),
    request_body = EvaluationRequest,
    responses(
        (status = 200, description = "The decision", body = EvaluationResult),
        (status = 400, description = "Invalid body, empty action or resource, or invalid `explain`", body = BackendErrorBody),
        Unauthorized, RateLimited, ServerError,
    ))]
async fn evaluate_post(
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

#[utoipa::path(get, path = "/policy/evaluate", tag = "policy", operation_id = "evaluate_policy_query",
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
async fn evaluate_get(
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

/// `POST /policy/dry-run` body: a draft policy set and one request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DryRunBody {
    /// The draft policies (validated like `POST /policy` bodies).
    #[schema(value_type = Vec<PolicyInput>)]
    policies: Value,
    /// The request to evaluate against them.
    request: EvaluationRequest,
}

#[utoipa::path(post, path = "/policy/dry-run", tag = "policy", operation_id = "dry_run_policies",
    description = "Evaluates one request against a draft policy set, without touching the stored policies or the audit log (admin, auditor).",
    security(("bearerAuth" = [])),
    request_body = DryRunBody,
    responses(
        (status = 200, description = "The decision with its explanation", body = DryRunResult),
        (status = 400, description = "Invalid draft policies or request", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn dry_run(
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

fn not_found(id: uuid::Uuid) -> ApiError {
    ApiError::NotFound(format!("Policy with ID {id} not found"))
}

fn conflict_or(e: sqlx::Error) -> ApiError {
    if db::is_unique_violation(&e) {
        ApiError::Conflict("Policy with this name already exists".into())
    } else {
        ApiError::Db(e)
    }
}

async fn audit_change(
    state: &AppState,
    client: &ClientInfo,
    actor: uuid::Uuid,
    event_type: &'static str,
    id: uuid::Uuid,
    details: Value,
) {
    record(
        &state.db,
        NewAuditEvent {
            event_type,
            user_id: Some(actor),
            entity_type: Some("policy"),
            entity_id: Some(id.to_string()),
            details,
            ip_address: Some(client.ip_string()),
            user_agent: client.user_agent.clone(),
        },
    )
    .await;
}

#[utoipa::path(post, path = "/policy", tag = "policy", operation_id = "create_policy",
    description = "Creates a policy (admin); the engine reloads it at once.",
    security(("bearerAuth" = [])),
    request_body = PolicyInput,
    responses(
        (status = 201, description = "Created", body = PolicyRow),
        (status = 400, description = "Invalid definition (the message names the field)", body = BackendErrorBody),
        (status = 409, description = "Policy with this name already exists", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn create(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    _: RateLimit,
    client: ClientInfo,
    aegis_common::http::Json(body, _): Json<Value>,
) -> Result<Response, ApiError> {
    let policy = aegis_policy::validate_policy(&body).map_err(|e| validation(&e))?;
    let row = policies::insert(&state.db, policy.definition(), Some(admin.id))
        .await
        .map_err(conflict_or)?;
    state.policy.changed().await;
    audit_change(
        &state,
        &client,
        admin.id,
        "policy_create",
        row.id,
        json!({"name": row.name}),
    )
    .await;
    Ok((StatusCode::CREATED, axum::Json(row)).into_response())
}

fn bool_param(q: &HashMap<String, String>, name: &str) -> Result<Option<bool>, ApiError> {
    match q.get(name).map(String::as_str) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(bad_list(format!("{name} must be a boolean value"))),
    }
}

#[utoipa::path(get, path = "/policy", tag = "policy", operation_id = "list_policies",
    description = "Every policy, in evaluation order (admin, auditor).",
    security(("bearerAuth" = [])),
    params(
        ("type" = Option<PolicyType>, Query, description = "Only this type"),
        ("isActive" = Option<bool>, Query, description = "Only active (or inactive) policies"),
        ("enabled" = Option<bool>, Query, description = "Alias of `isActive` (used when `isActive` is absent)"),
    ),
    responses(
        (status = 200, description = "The policies", body = Vec<PolicyRow>),
        (status = 400, description = "Invalid filter", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn list(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let policy_type = match q.get("type") {
        None => None,
        Some(t) => Some(
            t.parse::<PolicyType>()
                .map_err(|e| bad_list(e.to_string()))?
                .as_str()
                .to_owned(),
        ),
    };
    let is_active = match bool_param(&q, "isActive")? {
        Some(v) => Some(v),
        None => bool_param(&q, "enabled")?,
    };
    let filter = PolicyFilter {
        policy_type,
        is_active,
    };
    Ok(axum::Json(policies::list(&state.db, &filter).await?).into_response())
}

#[utoipa::path(get, path = "/policy/{id}", tag = "policy", operation_id = "get_policy",
    description = "One policy (admin, auditor).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The policy's id (a UUID)")),
    responses(
        (status = 200, description = "The policy", body = PolicyRow),
        (status = 400, description = "The id is not a UUID", body = BackendErrorBody),
        (status = 404, description = "No such policy", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn get_one(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    UuidPath(id): UuidPath,
) -> Result<Response, ApiError> {
    let row = policies::find(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(axum::Json(row).into_response())
}

#[utoipa::path(patch, path = "/policy/{id}", tag = "policy", operation_id = "update_policy",
    description = "Merges the given keys into a policy and validates the result (admin).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The policy's id (a UUID)")),
    request_body = PolicyPatch,
    responses(
        (status = 200, description = "The updated policy", body = PolicyRow),
        (status = 400, description = "The id is not a UUID, or the merged definition is invalid", body = BackendErrorBody),
        (status = 404, description = "No such policy", body = BackendErrorBody),
        (status = 409, description = "Policy with this name already exists", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn update(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    _: RateLimit,
    UuidPath(id): UuidPath,
    client: ClientInfo,
    aegis_common::http::Json(body, _): Json<Value>,
) -> Result<Response, ApiError> {
    let mut tx = state.db.begin().await?;
    let existing =
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM policies WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if existing.is_none() {
        return Err(not_found(id));
    }
    let row = policies::find(&mut *tx, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let definition = row.definition()?;
    let policy = aegis_policy::merge_patch(&definition, &body).map_err(|e| validation(&e))?;
    let updated = policies::update(&mut *tx, id, policy.definition())
        .await
        .map_err(conflict_or)?
        .ok_or_else(|| not_found(id))?;
    tx.commit().await?;
    state.policy.changed().await;
    let fields: Vec<String> = body
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    audit_change(
        &state,
        &client,
        admin.id,
        "policy_update",
        id,
        json!({"fields": fields}),
    )
    .await;
    Ok(axum::Json(updated).into_response())
}

#[utoipa::path(delete, path = "/policy/{id}", tag = "policy", operation_id = "delete_policy",
    description = "Deletes a policy (admin).",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The policy's id (a UUID)")),
    responses(
        (status = 200, description = "Deleted", body = MessageBody),
        (status = 400, description = "The id is not a UUID", body = BackendErrorBody),
        (status = 404, description = "No such policy", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn delete_one(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    _: RateLimit,
    UuidPath(id): UuidPath,
    client: ClientInfo,
) -> Result<Response, ApiError> {
    let name = policies::delete(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    state.policy.changed().await;
    audit_change(
        &state,
        &client,
        admin.id,
        "policy_delete",
        id,
        json!({"name": name}),
    )
    .await;
    Ok(axum::Json(json!({"message": "Policy deleted successfully"})).into_response())
}

fn date(raw: Option<&String>, name: &str, errors: &mut Vec<String>) -> Option<DateTime<Utc>> {
    let raw = raw?;
    let parsed = DateTime::parse_from_rfc3339(raw)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        });
    if parsed.is_none() {
        errors.push(format!("{name} must be a valid ISO 8601 date string"));
    }
    parsed
}

#[utoipa::path(get, path = "/policy/audit/logs", tag = "policy", operation_id = "policy_audit_logs",
    description = "Recorded policy evaluations, newest first (admin, auditor).",
    security(("bearerAuth" = [])),
    params(
        ("userId" = Option<String>, Query, description = "Only evaluations for this user id"),
        ("action" = Option<String>, Query, description = "Only this action"),
        ("result" = Option<String>, Query, description = "`allow`, `deny` or `error`"),
        ("startDate" = Option<String>, Query, description = "From (RFC 3339 or YYYY-MM-DD)"),
        ("endDate" = Option<String>, Query, description = "Until (RFC 3339 or YYYY-MM-DD)"),
        ("correlationId" = Option<String>, Query, description = "Only evaluations of this correlation (trace) id: what one incident or request asked"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 100)"),
    ),
    responses(
        (status = 200, description = "The evaluations", body = Vec<PolicyAuditRow>),
        (status = 400, description = "Invalid filter (one message per invalid parameter)", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn audit_logs(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let limit = match q.get("limit") {
        None => 100,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                errors.push("limit must be an integer between 1 and 1000".to_owned());
                100
            }
        },
    };
    let result = q.get("result").cloned();
    if let Some(r) = &result
        && !["allow", "deny", "error"].contains(&r.as_str())
    {
        errors.push("result must be one of: allow, deny, error".to_owned());
    }
    let text = |k: &str| q.get(k).cloned().map(aegis_common::db::pg_text);
    let filter = PolicyAuditFilter {
        user_id: text("userId"),
        action: text("action"),
        result,
        start: date(q.get("startDate"), "startDate", &mut errors),
        end: date(q.get("endDate"), "endDate", &mut errors),
        correlation_id: text("correlationId"),
        limit,
    };
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors.into()));
    }
    Ok(axum::Json(policy_audit::list(&state.db, &filter).await?).into_response())
}

#[utoipa::path(get, path = "/metrics/policy-evaluation-counts", tag = "policy", operation_id = "policy_evaluation_counts",
    description = "Evaluations per user and action.",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The counts", body = Vec<EvaluationCount>),
        Unauthorized, Forbidden, RateLimited, ServerError,
    ))]
async fn evaluation_counts(
    State(state): State<AppState>,
    _: AuthUser,
    _: RateLimit,
) -> Result<Response, ApiError> {
    Ok(axum::Json(policy_audit::counts(&state.db).await?).into_response())
}
