//! `/executor/*` (backend.md §8, executor.md Appendix A, spec README "Corrections"):
//! `POST /executor/action` keeps the original's request shape and pipe-separated HMAC (with
//! the NaN hole closed and a replay guard), then forwards the action to the real executor with
//! a v2 signature through [`crate::clients::executor`]. `GET /executor/health` is public;
//! `GET /executor/audit/{logs,statistics,verify}` proxies the executor's audit API to admins
//! and auditors.

use aegis_common::{contracts::ActionType, signing::secrets_equal, telemetry::TraceParent};
use axum::{
    Extension, Router,
    extract::{RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::{
    auth::{AdminOrAuditor, RateLimit, RequireRole, validate::Violations},
    clients::executor::ExecutorError,
    error::{ApiError, Json},
    state::AppState,
};

/// Accepted clock skew of the signed timestamp.
const MAX_SKEW_MS: i64 = 300_000;

/// How long a used signature is remembered (Redis `executor:sig:*`).
const REPLAY_TTL_SECS: u64 = 600;

/// The executor routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/executor/action", post(action))
        .route("/executor/health", get(health))
        .route("/executor/audit/logs", get(audit_logs))
        .route("/executor/audit/statistics", get(audit_statistics))
        .route("/executor/audit/verify", get(audit_verify))
}

async fn health() -> Response {
    axum::Json(json!({"status": "ok", "timestamp": aegis_common::time::now_rfc3339()}))
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ActionBody {
    #[serde(default)]
    action_type: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    resource_type: Option<String>,
    #[serde(default)]
    resource_name: Option<String>,
    #[serde(default)]
    action_params: Option<Map<String, Value>>,
    #[serde(default)]
    requested_by: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
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
    // 4. Replay guard (fail-open without Redis).
    if replayed(&state, &signature).await {
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
            Ok(axum::Json(json!({"id": res.audit_id, "status": status})).into_response())
        }
        Err(e @ ExecutorError::NotConfigured(_)) => Err(ApiError::Internal(e.into())),
        Err(e) => {
            tracing::warn!(error = %e, "executor call failed");
            Err(ApiError::BadGateway(e.to_string()))
        }
    }
}

/// `SET executor:sig:<signature> 1 NX EX 600`: whether the signature was already used.
async fn replayed(state: &AppState, signature: &str) -> bool {
    let Some(mut conn) = state.redis.connection().await else {
        state.backend_metrics.rate_limit_backend_errors.inc();
        return false;
    };
    let mut cmd = redis::cmd("SET");
    cmd.arg(state.redis.key(&format!("executor:sig:{signature}")))
        .arg(1)
        .arg("NX")
        .arg("EX")
        .arg(REPLAY_TTL_SECS);
    let call = cmd.query_async::<Option<String>>(&mut conn);
    match tokio::time::timeout(state.redis.timeout(), call).await {
        Ok(Ok(set)) => set.is_none(),
        _ => {
            tracing::warn!("replay guard skipped: Redis unavailable");
            state.backend_metrics.rate_limit_backend_errors.inc();
            false
        }
    }
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

async fn audit_logs(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    trace: Option<Extension<TraceParent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    audit_proxy(&state, "logs", q, trace).await
}

async fn audit_statistics(
    State(state): State<AppState>,
    _: RequireRole<AdminOrAuditor>,
    _: RateLimit,
    trace: Option<Extension<TraceParent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    audit_proxy(&state, "statistics", q, trace).await
}

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
