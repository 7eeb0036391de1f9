//! The policy engine's routes (backend.md §5.6–§5.8): CRUD (admin writes, admin/auditor reads),
//! evaluation (`GET`/`POST /policy/evaluate`, `?explain=true`), `POST /policy/dry-run` against a
//! draft set, the evaluation audit log and the per-user evaluation counts.
//!
//! The evaluate routes are merged *after* the deny-by-default layer because they authenticate
//! themselves: a JWT or a service API key, or nothing at all when `POLICY_EVALUATE_PUBLIC=true`.

use std::collections::HashMap;

use aegis_common::{
    error::Message,
    telemetry::{CORRELATION_HEADER, TraceParent},
};
use aegis_policy::{OwnedContext, OwnedRequest, PolicySet, PolicyType, ValidationError};
use axum::{
    Router,
    extract::{FromRequestParts, Query, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    auth::{Admin, AdminOrAuditor, AuthUser, ClientInfo, Principal, RateLimit, RequireRole},
    db::{
        self,
        audit::{NewAuditEvent, record},
        policies::{self, PolicyFilter},
        policy_audit::{self, PolicyAuditFilter},
    },
    error::{ApiError, Json, UuidPath},
    policy::EvaluationMeta,
    state::AppState,
};

/// CRUD, dry-run, audit log and counts (behind the deny-by-default layer).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/policy", post(create).get(list))
        .route("/policy/dry-run", post(dry_run))
        .route("/policy/audit/logs", get(audit_logs))
        .route(
            "/policy/{id}",
            get(get_one).patch(update).delete(delete_one),
        )
        .route("/metrics/policy-evaluation-counts", get(evaluation_counts))
}

/// `GET`/`POST /policy/evaluate`; merge after the `require_auth` route layer.
pub fn evaluate_router() -> Router<AppState> {
    Router::new().route("/policy/evaluate", get(evaluate_get).post(evaluate_post))
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
    request: &OwnedRequest,
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

fn check_request(r: &OwnedRequest) -> Result<(), ApiError> {
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

async fn evaluate_post(
    State(state): State<AppState>,
    _: EvaluateCaller,
    _: RateLimit,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    aegis_common::http::Json(request, _): Json<OwnedRequest>,
) -> Result<Response, ApiError> {
    let explain = explain_flag(&q)?;
    check_request(&request)?;
    Ok(run_evaluation(&state, &headers, &request, explain).await)
}

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
    let request = OwnedRequest {
        policy_type,
        action,
        resource,
        context: OwnedContext {
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunBody {
    policies: Value,
    request: OwnedRequest,
}

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
    let explanation = set.explain(&body.request.as_request(), Utc::now());
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
    let filter = PolicyAuditFilter {
        user_id: q.get("userId").cloned(),
        action: q.get("action").cloned(),
        result,
        start: date(q.get("startDate"), "startDate", &mut errors),
        end: date(q.get("endDate"), "endDate", &mut errors),
        correlation_id: q.get("correlationId").cloned(),
        limit,
    };
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors.into()));
    }
    Ok(axum::Json(policy_audit::list(&state.db, &filter).await?).into_response())
}

async fn evaluation_counts(
    State(state): State<AppState>,
    _: AuthUser,
    _: RateLimit,
) -> Result<Response, ApiError> {
    Ok(axum::Json(policy_audit::counts(&state.db).await?).into_response())
}
