//! `/executor/*`:
//! `POST /executor/action` keeps the original's request shape and pipe-separated HMAC (with
//! the NaN hole closed and a replay guard), then forwards the action to the real executor with
//! a v2 signature through [`crate::clients::executor`]. `GET /executor/health` is public;
//! `GET /executor/audit/{logs,statistics,verify}` proxies the executor's audit API to admins
//! and auditors.

use aegis_common::{
    contracts::ActionType,
    openapi::{BackendErrorBody, NestErrorBody},
    signing::secrets_equal,
    telemetry::TraceParent,
};
use axum::{
    Extension,
    extract::{RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::docs::{Forbidden, RateLimited, ServerError, Unauthorized};
use crate::{
    auth::{AdminOrAuditor, RateLimit, RequireRole, validate::Violations},
    clients::executor::ExecutorError,
    error::{ApiError, Json},
    state::AppState,
};

/// Accepted clock skew of the signed timestamp.
const MAX_SKEW_MS: i64 = 300_000;

/// How long a used signature is remembered: twice the accepted skew, after which its
/// timestamp alone refuses it.
const REPLAY_TTL_MS: i64 = 2 * MAX_SKEW_MS;

/// The executor routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(action))
        .routes(routes!(health))
        .routes(routes!(audit_logs))
        .routes(routes!(audit_statistics))
        .routes(routes!(audit_verify))
}

/// `GET /executor/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProxyHealth {
    /// Always `ok`.
    pub status: String,
    /// Now, RFC 3339.
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// `POST /executor/action` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionOutcome {
    /// The executor's audit row id.
    pub id: String,
    /// `completed` or `failed`.
    pub status: String,
}

#[utoipa::path(get, path = "/executor/health", tag = "executor", operation_id = "executor_proxy_health", summary = "The executor's health",
    description = "Static status of the executor proxy (does not call the executor).",
    responses((status = 200, description = "Up", body = ProxyHealth)))]
async fn health() -> Response {
    axum::Json(ProxyHealth {
        status: "ok".to_owned(),
        timestamp: aegis_common::time::now_rfc3339(),
    })
    .into_response()
}

/// `POST /executor/action` body (the original's shape).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ActionBody {
    /// An executor action type, e.g. `restart_pod`.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 1)]
    action_type: Option<String>,
    /// Namespace (must be in EXECUTOR_NAMESPACE_ALLOWLIST).
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 1)]
    namespace: Option<String>,
    /// `pod` for pod actions, `deployment` otherwise.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 1)]
    resource_type: Option<String>,
    /// The pod or deployment.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 1)]
    resource_name: Option<String>,
    /// Only the signed fields (`namespace`, `podName`|`deploymentName`) with the same values.
    #[serde(default)]
    action_params: Option<Map<String, Value>>,
    /// Logged, not signed.
    #[serde(default)]
    requested_by: Option<String>,
    /// `hex(HMAC_SHA256(secret, actionType|namespace|resourceType|resourceName|timestamp))`.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 1)]
    signature: Option<String>,
    /// Milliseconds since the epoch, within 5 minutes of now.
    #[serde(default)]
    #[schema(required = true, nullable = false, min_length = 1)]
    timestamp: Option<String>,
}

/// `hex(HMAC_SHA256(secret, actionType|namespace|resourceType|resourceName|timestamp))`.
#[must_use]
pub fn pipe_signature(secret: &[u8], fields: [&str; 5]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(fields.join("|").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn bad(message: &str) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// The resource type the action works on and the parameter that names it.
fn resource_of(action: ActionType) -> (&'static str, &'static str) {
    match action {
        ActionType::RestartPod | ActionType::DeletePod => ("pod", "podName"),
        _ => ("deployment", "deploymentName"),
    }
}

#[utoipa::path(post, path = "/executor/action", tag = "executor", operation_id = "executor_action", summary = "Run an executor action through the backend",
    description = "Verifies the pipe-separated HMAC signature, the timestamp (5 minutes) and a replay guard, then forwards the action to the executor with a v2 signature. Authenticated by the signature in the body, not by an HTTP scheme.",
    request_body = ActionBody,
    responses(
        (status = 200, description = "The executor ran the action (`failed` when the action itself failed)", body = ActionOutcome),
        (status = 400, description = "Missing fields, expired timestamp, namespace not allowed, unsupported action, mismatched resource type or unsigned parameters", body = BackendErrorBody),
        (status = 401, description = "Invalid request signature", body = BackendErrorBody),
        (status = 409, description = "Duplicate request (the signature was already used)", body = BackendErrorBody),
        (status = 502, description = "The executor refused or could not be reached", body = BackendErrorBody),
        (status = 503, description = "The replay guard cannot be checked (database unavailable)", body = BackendErrorBody),
        RateLimited, ServerError,
    ))]
async fn action(
    State(state): State<AppState>,
    _: RateLimit,
    trace: Option<Extension<TraceParent>>,
    aegis_common::http::Json(body, _): Json<ActionBody>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    for (name, value) in [
        ("actionType", &body.action_type),
        ("namespace", &body.namespace),
        ("resourceType", &body.resource_type),
        ("resourceName", &body.resource_name),
    ] {
        v.check(
            value.as_deref().is_none_or(str::is_empty),
            format!("{name} should not be empty"),
        );
    }
    v.check(
        body.signature.as_deref().is_none_or(str::is_empty),
        "Signature is required for action verification",
    );
    v.check(
        body.timestamp.as_deref().is_none_or(str::is_empty),
        "Timestamp is required for signature verification",
    );
    v.finish()?;
    let action_type = body.action_type.unwrap_or_default();
    let namespace = body.namespace.unwrap_or_default();
    let resource_type = body.resource_type.unwrap_or_default();
    let resource_name = body.resource_name.unwrap_or_default();
    let signature = body.signature.unwrap_or_default();
    let timestamp = body.timestamp.unwrap_or_default();

    // 1. The signature (an unset secret never verifies).
    let valid = state
        .config
        .executor_hmac_secret
        .as_ref()
        .is_some_and(|secret| {
            let expected = pipe_signature(
                secret.expose_secret().as_bytes(),
                [
                    &action_type,
                    &namespace,
                    &resource_type,
                    &resource_name,
                    &timestamp,
                ],
            );
            secrets_equal(expected.as_bytes(), signature.as_bytes())
        });
    if !valid {
        return Err(ApiError::Unauthorized("Invalid request signature".into()));
    }
    // 2–3. An integer timestamp within the skew (the original let NaN through).
    let fresh = timestamp.bytes().all(|b| b.is_ascii_digit())
        && timestamp
            .parse::<i64>()
            .is_ok_and(|ts| (chrono::Utc::now().timestamp_millis() - ts).abs() <= MAX_SKEW_MS);
    if !fresh {
        return Err(bad("Request timestamp expired"));
    }
    // 4. Replay guard: never fails open, so a database outage refuses the action.
    if replayed(&state, &signature).await? {
        return Err(ApiError::Conflict("Duplicate request".into()));
    }
    // 5. Namespace allowlist.
    if !state
        .config
        .executor_namespace_allowlist
        .contains(&namespace)
    {
        return Err(bad(&format!("Namespace '{namespace}' is not allowed")));
    }
    // Only signed fields reach the executor.
    let Some(kind) = ActionType::parse(&action_type) else {
        return Err(bad(&format!("actionType '{action_type}' is not supported")));
    };
    let (expected_type, resource_key) = resource_of(kind);
    if resource_type != expected_type {
        return Err(bad(&format!(
            "resourceType '{resource_type}' does not match actionType '{action_type}' (expected '{expected_type}')"
        )));
    }
    let mut params = Map::new();
    params.insert("namespace".into(), Value::String(namespace.clone()));
    params.insert(resource_key.into(), Value::String(resource_name.clone()));
    for (k, val) in body.action_params.unwrap_or_default() {
        if params.get(&k) != Some(&val) {
            return Err(bad(&format!(
                "actionParams.{k} is not allowed: only signed fields (namespace, {resource_key}) are forwarded"
            )));
        }
    }
    if let Some(by) = &body.requested_by {
        tracing::info!(requested_by = %by, "executor action requested (unsigned requestedBy)");
    }
    let trace = trace.map_or_else(TraceParent::new_root, |Extension(t)| t);
    match state.executor.execute(kind, params, None, &trace).await {
        Ok(res) => {
            let status = if res.success { "completed" } else { "failed" };
            if !res.success {
                tracing::warn!(audit_id = %res.audit_id, error = ?res.error, "executor action failed");
            }
            let outcome = ActionOutcome {
                id: res.audit_id,
                status: status.to_owned(),
            };
            Ok(axum::Json(outcome).into_response())
        }
        Err(e @ ExecutorError::NotConfigured(_)) => Err(ApiError::Internal(e.into())),
        Err(e) => {
            tracing::warn!(error = %e, "executor call failed");
            Err(ApiError::BadGateway(e.to_string()))
        }
    }
}

/// Records `signature` as used; whether it was used before. An error when it cannot tell.
async fn replayed(state: &AppState, signature: &str) -> Result<bool, ApiError> {
    let fresh = sqlx::query_scalar::<_, i32>(
        "WITH purged AS (DELETE FROM used_action_signatures WHERE expires_at < now() AND signature <> $1) \
         INSERT INTO used_action_signatures (signature, expires_at) \
         VALUES ($1, now() + make_interval(secs => $2::double precision / 1000)) \
         ON CONFLICT (signature) DO UPDATE SET expires_at = EXCLUDED.expires_at \
         WHERE used_action_signatures.expires_at < now() \
         RETURNING 1",
    )
    .bind(signature)
    .bind(REPLAY_TTL_MS)
    .fetch_optional(&state.db)
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "replay guard unavailable: refusing the action");
        ApiError::Unavailable("The replay guard is unavailable, please retry later".into())
    })?;
    Ok(fresh.is_none())
}

async fn audit_proxy(
    state: &AppState,
    path: &str,
    query: Option<String>,
    trace: Option<Extension<TraceParent>>,
) -> Result<Response, ApiError> {
    let trace = trace.map_or_else(TraceParent::new_root, |Extension(t)| t);
    match state.executor.audit(path, query.as_deref(), &trace).await {
        Ok((status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            // The executor refusing the backend's own token is not the caller's fault.
            if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                return Err(ApiError::BadGateway(format!(
                    "Executor refused the audit token ({})",
                    status.as_u16()
                )));
            }
            Ok((status, axum::Json(body)).into_response())
        }
        Err(ExecutorError::NotConfigured(name)) => {
            Err(ApiError::Unavailable(format!("{name} is not configured")))
        }
        Err(e) => Err(ApiError::BadGateway(e.to_string())),
    }
}

#[utoipa::path(get, path = "/executor/audit/logs", tag = "executor", operation_id = "executor_audit_logs", summary = "List the executor's audit trail",
    description = "Proxies the executor's `GET /audit/logs` (admin, auditor); the query string is forwarded as is (see the executor's document for its filters).",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The executor's answer, passed through", body = Vec<Object>),
        (status = 400, description = "The executor refused the query; its error body is passed through", body = NestErrorBody),
        (status = 500, description = "The executor failed; its error body is passed through", body = NestErrorBody),
        (status = 502, description = "The executor could not be reached or refused the backend's audit token", body = BackendErrorBody),
        (status = 503, description = "EXECUTOR_AUDIT_TOKEN (or the executor URL) is not configured", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited,
    ))]
async fn audit_logs(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    trace: Option<Extension<TraceParent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    audit_proxy(&state, "logs", q, trace).await
}

#[utoipa::path(get, path = "/executor/audit/statistics", tag = "executor", operation_id = "executor_audit_statistics", summary = "The executor's audit statistics",
    description = "Proxies the executor's `GET /audit/statistics` (admin, auditor).",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The executor's answer, passed through", body = Object),
        (status = 400, description = "The executor refused the query; its error body is passed through", body = NestErrorBody),
        (status = 500, description = "The executor failed; its error body is passed through", body = NestErrorBody),
        (status = 502, description = "The executor could not be reached or refused the backend's audit token", body = BackendErrorBody),
        (status = 503, description = "EXECUTOR_AUDIT_TOKEN (or the executor URL) is not configured", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited,
    ))]
async fn audit_statistics(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    trace: Option<Extension<TraceParent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    audit_proxy(&state, "statistics", q, trace).await
}

#[utoipa::path(get, path = "/executor/audit/verify", tag = "executor", operation_id = "executor_audit_verify", summary = "Verify the executor's audit hash chain",
    description = "Proxies the executor's `GET /audit/verify` (admin, auditor): the hash-chain verification report.",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The executor's answer, passed through", body = Object),
        (status = 400, description = "The executor refused the query; its error body is passed through", body = NestErrorBody),
        (status = 500, description = "The executor failed; its error body is passed through", body = NestErrorBody),
        (status = 502, description = "The executor could not be reached or refused the backend's audit token", body = BackendErrorBody),
        (status = 503, description = "EXECUTOR_AUDIT_TOKEN (or the executor URL) is not configured", body = BackendErrorBody),
        Unauthorized, Forbidden, RateLimited,
    ))]
async fn audit_verify(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    trace: Option<Extension<TraceParent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    audit_proxy(&state, "verify", q, trace).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipe_signature_matches_the_spec_vector() {
        assert_eq!(
            pipe_signature(
                b"e2e-secret",
                ["restart_pod", "default", "pod", "my-pod", "1700000000000"]
            ),
            "41f377231ce2ae03dcc18f8a859fdd0a80f5a3a001dbf73a524dafc8a4f16cb3"
        );
    }
}
