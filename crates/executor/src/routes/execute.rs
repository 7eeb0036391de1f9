//! `POST /executor/execute` with the processing order, which decides which
//! error wins: (0) HTTP throttle (a layer), (1) body, (2) namespace, (3) signature, (4) v2
//! freshness and replay, parameter schema, policy decision, rate limit, cooldown, concurrency,
//! (5) `pending`, (6) `in_progress`, (7) the action, (8) `completed` | `failed`.
//! Rejections at steps 2–4 are audited as `rejected`.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use aegis_common::{
    contracts::{ActionType, ExecuteRequest, ExecuteResponse},
    error::{ErrorStyle, NestStyle},
    http::{has_json_content_type, parse_json},
    openapi::NestErrorBody,
    signing::{RequestedBy, SignedFields, V2Fields, verify_v1, verify_v2},
    telemetry::TraceParent,
};
use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
};
use serde_json::Value;

use crate::{
    audit::store::{AuditRow, AuditStore, AuditSubject, FinalStatus},
    error::ApiError,
    k8s::actions::{self, ActionError},
    request::{ActionKind, ActionParams, ExecuteBody, parse_envelope, validate_params},
    safety::{self, ResourceLock},
    state::AppState,
};

/// The correlation id: the trace id of an incoming `traceparent`, else of a trace-id shaped
/// `X-Correlation-Id`, else a new trace id. The shared telemetry
/// layer has usually decided already (and echoes it); its decision wins so both agree.
#[must_use]
pub fn correlation_id(headers: &HeaderMap, decided: Option<&TraceParent>) -> String {
    if let Some(tp) = decided {
        return tp.trace_id();
    }
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
        .or_else(|| {
            headers
                .get("x-correlation-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| TraceParent::from_trace_id(v.trim()))
        })
        .unwrap_or_else(TraceParent::new_root)
        .trace_id()
}

/// The client IP: the socket peer, or the first `X-Forwarded-For` hop with `TRUST_PROXY`.
#[must_use]
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_proxy: bool,
) -> Option<std::net::IpAddr> {
    if trust_proxy
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return Some(ip);
    }
    peer.map(|p| p.ip())
}

/// The handler.
#[utoipa::path(
    post,
    path = "/executor/execute",
    tag = "execute",
    operation_id = "execute_action", summary = "Run a signed action",
    description = "Runs one action after these checks, in this order: HTTP throttle, body, namespace, HMAC signature (v1, or v2 with `timestamp` and `nonce`), freshness and replay, parameter schema, policy decision, rate limit, cooldown, concurrency. A failed action is still a 200 with `success: false`.",
    request_body = ExecuteRequest,
    responses(
        (status = 200, description = "The action ran; `success` tells whether it succeeded", body = ExecuteResponse,
            headers(("x-correlation-id" = String, description = "The trace id of the request"))),
        (status = 400, description = "Invalid body, missing signature, expired timestamp or invalid parameters", body = NestErrorBody),
        (status = 403, description = "Namespace not allowed, invalid signature, replayed request or policy denied", body = NestErrorBody),
        (status = 409, description = "Another action is in progress for the same resource", body = NestErrorBody),
        (status = 429, description = "HTTP throttle, per-action rate limit or per-target cooldown", body = NestErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))),
        (status = 500, description = "The audit store failed", body = NestErrorBody),
        (status = 503, description = "Executor busy: every action slot of this replica is taken", body = NestErrorBody),
    )
)]
pub async fn execute(State(state): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let correlation = correlation_id(&headers, parts.extensions.get::<TraceParent>());
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = client_ip(&headers, peer, state.config.trust_proxy);
    let body = match axum::body::to_bytes(body, crate::request::BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return NestStyle::body_error(&aegis_common::error::BodyError::TooLarge)
                .into_response();
        }
    };
    // The action runs in its own task: a caller that disconnects must not cut an action (and
    // its audit progression) in half.
    let task = {
        let correlation = correlation.clone();
        tokio::spawn(async move {
            match run(&state, &headers, &body, ip, &correlation, started).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        })
    };
    let mut res = match task.await {
        Ok(r) => r,
        Err(e) => ApiError::Internal(anyhow::anyhow!("execute task failed: {e}")).into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&correlation) {
        res.headers_mut().insert("x-correlation-id", v);
    }
    res
}

fn elapsed_ms(started: Instant) -> i32 {
    i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX)
}

/// One execute request on its way through the checks: what its audit row and its metrics
/// need, whichever step ends it.
struct Attempt<'a> {
    state: &'a AppState,
    body: &'a ExecuteBody,
    subject: AuditSubject,
    started: Instant,
}

impl Attempt<'_> {
    /// Audits a rejection (steps 2–4) and turns it into the response.
    async fn reject(&self, err: ApiError) -> Result<Response, ApiError> {
        let (error_type, category) = err.kind();
        let action = self.body.action_type.as_str();
        let m = &self.state.executor_metrics;
        m.errors.with_label_values(&[error_type, action]).inc();
        m.actions
            .with_label_values(&[
                action,
                safety::namespace_label(&self.state.config, &self.subject.namespace),
                "rejected",
            ])
            .inc();
        let store = AuditStore::new(self.state.db.clone(), self.state.config.loki_url.is_some())
            .with_head_gauge(self.state.executor_metrics.audit_chain_head.clone());
        let message = err.audit_message();
        store
            .insert_rejected(
                self.subject.clone(),
                &message,
                category,
                elapsed_ms(self.started),
            )
            .await?;
        m.audit_logs_created.inc();
        self.state.outbox_notify.notify_one();
        tracing::info!(
            action_type = action,
            namespace = %self.subject.namespace,
            resource_name = %self.subject.resource_name,
            status = "rejected",
            reason = %message,
            "action rejected"
        );
        Err(err)
    }
}

async fn run(
    state: &AppState,
    headers: &HeaderMap,
    raw: &Bytes,
    ip: Option<std::net::IpAddr>,
    correlation: &str,
    started: Instant,
) -> Result<Response, ApiError> {
    let config = &state.config;
    let metrics = &state.executor_metrics;

    // (1) Body.
    if !has_json_content_type(headers) {
        return Ok(
            NestStyle::body_error(&aegis_common::error::BodyError::ContentType).into_response(),
        );
    }
    let value: Value = match parse_json(raw) {
        Ok(v) => v,
        Err(e) => return Ok(NestStyle::body_error(&e).into_response()),
    };
    let body = match parse_envelope(value) {
        Ok(b) => b,
        Err(messages) => {
            metrics
                .errors
                .with_label_values(&["validation", "unknown"])
                .inc();
            return Err(ApiError::BadRequest(messages.into()));
        }
    };
    let subject = AuditSubject {
        action_type: body.action_type,
        namespace: body.namespace_display(),
        resource_type: body.resource_type(),
        resource_name: body.resource_name(),
        action_params: Value::Object(body.action_params.clone()),
        requested_by: body.requested_by().map(str::to_owned),
        policy_decision: body.policy_decision.clone(),
        ip_address: ip.map(|i| i.to_string()),
        signature: body.signature.clone(),
        correlation_id: Some(correlation.to_owned()),
    };
    let attempt = Attempt {
        state,
        body: &body,
        subject,
        started,
    };

    // (2) Namespace, before the signature.
    if let Err(e) = safety::check_namespace(config, body.namespace(), &body.namespace_display()) {
        return attempt.reject(e).await;
    }

    // (3) Signature, (4a) freshness; the nonce is claimed by the gate below.
    let mut claim = None;
    if config.require_signature {
        let Some(signature) = body.signature.as_deref() else {
            return attempt
                .reject(ApiError::bad_request("Action signature is required"))
                .await;
        };
        if body.timestamp.is_none() && config.require_signature_timestamp {
            return attempt
                .reject(ApiError::bad_request("Request timestamp is required"))
                .await;
        }
        let fields = SignedFields {
            action_type: body.action_type.as_str(),
            action_params: &body.action_params,
            requested_by: RequestedBy::from_json(body.requested_by_raw.as_ref())
                .unwrap_or(RequestedBy::Absent),
        };
        let key = config.hmac_key_bytes();
        let valid = match (&body.timestamp, &body.nonce) {
            (Some(timestamp), Some(nonce)) => {
                verify_v2(key, &fields, &V2Fields { timestamp, nonce }, signature)
            }
            _ => verify_v1(key, &fields, signature),
        };
        if !valid {
            return attempt
                .reject(ApiError::Forbidden("Invalid action signature".into()))
                .await;
        }
        if let (Some(timestamp), Some(nonce)) = (&body.timestamp, &body.nonce) {
            let fresh = timestamp.bytes().all(|b| b.is_ascii_digit())
                && timestamp.parse::<i64>().is_ok_and(|ts| {
                    let now = chrono::Utc::now().timestamp_millis();
                    let skew = i64::try_from(config.max_skew.as_millis()).unwrap_or(i64::MAX);
                    now.abs_diff(ts) <= skew.unsigned_abs()
                });
            if !fresh {
                return attempt
                    .reject(ApiError::bad_request("Request timestamp expired"))
                    .await;
            }
            claim = Some(nonce.as_str());
        }
    }

    // (4b) Parameter schema and (4c) the policy decision (advisory, unsigned): decided here,
    // reported after the replay check.
    let params = validate_params(&body, config);
    let policy = match body.policy_allowed {
        Some(true) => Ok(true),
        Some(false) => Err(ApiError::Forbidden(
            "Policy decision denies this action".into(),
        )),
        None if config.require_policy_decision => {
            Err(ApiError::bad_request("policyDecision is required"))
        }
        None => Ok(false),
    };
    // Only reached with a valid namespace.
    let namespace = body.namespace().unwrap_or_default().to_owned();
    let who = body.requested_by().unwrap_or("anonymous");
    let kind = body.resource_type();
    let resource_name = body.resource_name();

    // (4a) replay, (4d) rate, (4e) cooldown and (4f) the resource lock, in one statement.
    let gate = safety::gate(
        &state.db,
        config,
        &safety::GateRequest {
            nonce: claim,
            reached_rate: params.is_ok() && policy.is_ok(),
            action: body.action_type,
            namespace: &namespace,
            requested_by: who,
            resource_type: kind,
            resource_name: &resource_name,
        },
    )
    .await?;
    if !gate.fresh {
        return attempt
            .reject(ApiError::Forbidden("Replayed request".into()))
            .await;
    }
    let params = match params {
        Ok(p) => p,
        Err(messages) => return attempt.reject(ApiError::BadRequest(messages.into())).await,
    };
    match policy {
        Ok(true) => metrics.policy_checks.with_label_values(&["approved"]).inc(),
        Ok(false) => {}
        Err(e) => {
            if body.policy_allowed == Some(false) {
                metrics.policy_checks.with_label_values(&["denied"]).inc();
            }
            return attempt.reject(e).await;
        }
    }
    if let Err(retry_after) = gate.rate {
        metrics
            .rate_limit_hits
            .with_label_values(&[body.action_type.as_str(), &namespace])
            .inc();
        return attempt
            .reject(ApiError::TooManyRequests {
                message: format!(
                    "Action rate limit exceeded for {} in {namespace}",
                    body.action_type.as_str()
                ),
                retry_after,
                throttler: false,
            })
            .await;
    }
    if let Err(retry_after) = gate.cooldown {
        return attempt
            .reject(ApiError::TooManyRequests {
                message: format!("Action cooldown active for {kind} {namespace}/{resource_name}"),
                retry_after,
                throttler: false,
            })
            .await;
    }
    // The replica's slots come before the lock; a lock taken for a request that finds
    // no slot is let go at once.
    let Ok(_slot) = state.action_slots.clone().try_acquire_owned() else {
        if let Some(lock) = gate.lock {
            lock.release().await;
        }
        return attempt
            .reject(ApiError::Unavailable("Executor busy".into()))
            .await;
    };
    let Some(lock) = gate.lock else {
        return attempt
            .reject(ApiError::Conflict(format!(
                "Another action is in progress for {kind} {namespace}/{resource_name}"
            )))
            .await;
    };

    metrics.pending_actions.inc();
    let span = tracing::info_span!(
        "executor.execute_action",
        action.type = body.action_type.as_str(),
        k8s.namespace = %namespace,
        k8s.resource = %resource_name,
        correlation_id = %correlation,
    );
    let outcome = tracing::Instrument::instrument(perform(&attempt, params, lock), span).await;
    metrics.pending_actions.dec();
    outcome
}

/// Steps 5 to 8 under the resource lock, which is released once the cluster call is over,
/// at the same time as the terminal audit write (the `in_progress` row is committed by then,
/// so the cooldown of a next action already sees this one).
async fn perform(
    attempt: &Attempt<'_>,
    params: ActionParams,
    lock: ResourceLock,
) -> Result<Response, ApiError> {
    let state = attempt.state;
    let namespace = params.namespace.as_str();
    let metrics = &state.executor_metrics;
    let action = attempt.body.action_type;
    let store = AuditStore::new(state.db.clone(), state.config.loki_url.is_some())
        .with_head_gauge(state.executor_metrics.audit_chain_head.clone());

    // (5) pending, (6) in_progress.
    let row = match store.insert_in_progress(attempt.subject.clone()).await {
        Ok(row) => row,
        Err(e) => {
            lock.release().await;
            return Err(e.into());
        }
    };
    metrics.audit_logs_created.inc();
    metrics
        .audit_log_size
        .observe(attempt.subject.action_params.to_string().len() as f64 + 300.0);
    state.outbox_notify.notify_one();

    // (7) The action, bounded by ACTION_TIMEOUT_MS.
    let dry_run = attempt.body.dry_run();
    if dry_run {
        metrics.dry_runs.with_label_values(&[action.as_str()]).inc();
    }
    let timeout = state.config.action_timeout;
    let result =
        match tokio::time::timeout(timeout, run_action(state, action, &params, dry_run)).await {
            Ok(r) => r,
            Err(_) => Err(ActionError::Timeout(timeout.as_millis())),
        };

    // (8) completed | failed.
    let duration = elapsed_ms(attempt.started);
    let labels = [action.as_str(), namespace];
    metrics
        .action_duration
        .with_label_values(&labels)
        .observe(attempt.started.elapsed().as_secs_f64());
    match result {
        Ok(result) => {
            let (finished, ()) = tokio::join!(
                finish_with_retry(
                    &store,
                    &row,
                    FinalStatus::Completed,
                    Some(&result),
                    None,
                    duration,
                ),
                lock.release(),
            );
            finished?;
            state.outbox_notify.notify_one();
            metrics
                .actions
                .with_label_values(&[action.as_str(), namespace, "completed"])
                .inc();
            count_success(attempt, &result, namespace);
            tracing::info!(
                action_type = action.as_str(),
                namespace,
                resource_type = attempt.subject.resource_type,
                resource_name = %attempt.subject.resource_name,
                status = "completed",
                duration_ms = duration,
                requested_by = ?attempt.subject.requested_by,
                audit_id = %row.id,
                "action completed"
            );
            Ok(Json(ExecuteResponse {
                success: true,
                audit_id: row.id.to_string(),
                result: Some(result),
                error: None,
            })
            .into_response())
        }
        Err(err) => {
            let message = err.to_string();
            let (error_type, category) = err.kind();
            let (finished, ()) = tokio::join!(
                finish_with_retry(
                    &store,
                    &row,
                    FinalStatus::Failed,
                    None,
                    Some((&message, category)),
                    duration,
                ),
                lock.release(),
            );
            finished?;
            state.outbox_notify.notify_one();
            metrics
                .actions
                .with_label_values(&[action.as_str(), namespace, "failed"])
                .inc();
            metrics
                .errors
                .with_label_values(&[error_type, action.as_str()])
                .inc();
            tracing::warn!(
                action_type = action.as_str(),
                namespace,
                resource_name = %attempt.subject.resource_name,
                status = "failed",
                duration_ms = duration,
                audit_id = %row.id,
                error = %message,
                "action failed"
            );
            Ok(Json(ExecuteResponse {
                success: false,
                audit_id: row.id.to_string(),
                result: None,
                error: Some(message),
            })
            .into_response())
        }
    }
}

async fn run_action(
    state: &AppState,
    action: ActionType,
    params: &ActionParams,
    dry_run: bool,
) -> Result<Value, ActionError> {
    let kube = &state.kube;
    let namespace = &params.namespace;
    match (action, &params.kind) {
        (ActionType::RestartPod, ActionKind::Pod { pod_name }) => {
            actions::restart_pod(kube, namespace, pod_name, dry_run).await
        }
        (
            ActionType::ScaleDeployment,
            ActionKind::Scale {
                deployment_name,
                replicas,
            },
        ) => actions::scale_deployment(kube, namespace, deployment_name, *replicas, dry_run).await,
        (
            ActionType::RollbackDeployment,
            ActionKind::Rollback {
                deployment_name,
                revision,
            },
        ) => {
            actions::rollback_deployment(kube, namespace, deployment_name, *revision, dry_run).await
        }
        (other, _) => Err(ActionError::Refused(format!(
            "Unsupported action type: {}",
            other.as_str()
        ))),
    }
}

fn count_success(attempt: &Attempt<'_>, result: &Value, namespace: &str) {
    let m = &attempt.state.executor_metrics;
    match attempt.body.action_type {
        ActionType::RestartPod => m.pod_restarts.with_label_values(&[namespace]).inc(),
        ActionType::ScaleDeployment => {
            let direction = result["direction"].as_str().unwrap_or("none");
            m.scaling_operations
                .with_label_values(&[namespace, direction])
                .inc();
        }
        ActionType::RollbackDeployment => m.rollbacks.with_label_values(&[namespace]).inc(),
        ActionType::DeletePod | ActionType::UpdateConfig => {}
    }
}

/// after a cluster change, the terminal audit write is retried (3 attempts with backoff);
/// if it still fails the caller gets a 500, never a false failure.
async fn finish_with_retry(
    store: &AuditStore,
    row: &AuditRow,
    status: FinalStatus,
    result: Option<&Value>,
    error: Option<(&str, &str)>,
    duration: i32,
) -> Result<(), ApiError> {
    let mut delay = Duration::from_millis(100);
    let mut last = None;
    for _ in 0..3 {
        match store.finish(row, status, result, error, duration).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, audit_id = %row.id, "terminal audit write failed; retrying");
                last = Some(e);
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    tracing::error!(
        audit_id = %row.id,
        status = ?status,
        "terminal audit write failed three times; the cluster state may have changed"
    );
    Err(last.map_or_else(
        || ApiError::Internal(anyhow::anyhow!("audit write failed")),
        ApiError::Db,
    ))
}
