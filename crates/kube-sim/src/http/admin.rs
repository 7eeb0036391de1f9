//! The admin endpoints tests drive kube-sim with: fault rules, pod metrics, crash loops and the
//! request log, under `/_sim/`.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use super::{AppState, json_response};
use crate::cluster::Cluster;
use crate::error::StatusError;
use crate::faults::FaultRule;
use crate::metrics::MetricUpdate;

fn parse_json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, StatusError> {
    serde_json::from_slice(body)
        .map_err(|e| StatusError::bad_request(format!("invalid request body: {e}")))
}

fn parse_rules(body: &[u8]) -> Result<Vec<FaultRule>, StatusError> {
    let value: Value = parse_json_body(body)?;
    let rules: Vec<FaultRule> = match value {
        Value::Array(_) => serde_json::from_value(value),
        other => serde_json::from_value(other).map(|r| vec![r]),
    }
    .map_err(|e| StatusError::bad_request(format!("invalid fault rule: {e}")))?;
    for rule in &rules {
        rule.validate().map_err(StatusError::bad_request)?;
    }
    Ok(rules)
}

fn rules_response(cluster: &Cluster) -> Response {
    json_response(StatusCode::OK, &json!({"rules": cluster.faults()}))
}

pub(super) async fn list_faults(State(state): State<AppState>) -> Response {
    rules_response(&state.cluster)
}

pub(super) async fn add_faults(State(state): State<AppState>, body: Bytes) -> Response {
    match parse_rules(&body) {
        Ok(rules) => {
            for rule in rules {
                state.cluster.add_fault(rule);
            }
            rules_response(&state.cluster)
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn replace_faults(State(state): State<AppState>, body: Bytes) -> Response {
    match parse_rules(&body) {
        Ok(rules) => {
            state.cluster.set_faults(rules);
            rules_response(&state.cluster)
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn clear_faults(State(state): State<AppState>) -> Response {
    state.cluster.clear_faults();
    rules_response(&state.cluster)
}

pub(super) async fn set_metric(State(state): State<AppState>, body: Bytes) -> Response {
    let result = parse_json_body::<MetricUpdate>(&body)
        .and_then(|update| state.cluster.set_pod_metric(&update).map(|()| update));
    match result {
        Ok(update) => json_response(StatusCode::OK, &json!({"applied": update})),
        Err(e) => e.into_response(),
    }
}

/// `POST /_sim/logs` body: lines appended to a pod's running container (its only or first
/// one when `container` is absent).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LogLines {
    namespace: String,
    pod: String,
    #[serde(default)]
    container: Option<String>,
    lines: Vec<String>,
}

pub(super) async fn append_logs(State(state): State<AppState>, body: Bytes) -> Response {
    let result = parse_json_body::<LogLines>(&body).and_then(|l| {
        state
            .cluster
            .append_log(&l.namespace, &l.pod, l.container.as_deref(), &l.lines)
            .map(|()| l.lines.len())
    });
    match result {
        Ok(appended) => json_response(StatusCode::OK, &json!({"appended": appended})),
        Err(e) => e.into_response(),
    }
}

/// `POST /_sim/crashloop` body.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CrashLoop {
    namespace: String,
    pod: String,
    #[serde(default = "default_restarts")]
    restarts: u32,
}

fn default_restarts() -> u32 {
    5
}

pub(super) async fn crashloop(State(state): State<AppState>, body: Bytes) -> Response {
    let result = parse_json_body::<CrashLoop>(&body)
        .and_then(|c| state.cluster.crash_pod(&c.namespace, &c.pod, c.restarts));
    match result {
        Ok(pod) => json_response(StatusCode::OK, &pod),
        Err(e) => e.into_response(),
    }
}

/// `POST /_sim/images` body: what containers of an image do from now on.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageBehaviour {
    image: String,
    behaviour: crate::node::Behaviour,
}

pub(super) async fn set_image_behaviour(State(state): State<AppState>, body: Bytes) -> Response {
    match parse_json_body::<ImageBehaviour>(&body) {
        Ok(b) if b.image.trim().is_empty() => {
            StatusError::bad_request("image must not be empty").into_response()
        }
        Ok(b) => {
            state.cluster.set_image_behaviour(&b.image, b.behaviour);
            json_response(StatusCode::OK, &json!(state.cluster.image_behaviours()))
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn list_image_behaviours(State(state): State<AppState>) -> Response {
    json_response(StatusCode::OK, &json!(state.cluster.image_behaviours()))
}

pub(super) async fn reset_metrics(State(state): State<AppState>) -> Response {
    state.cluster.reset_metrics();
    json_response(StatusCode::OK, &json!({"reset": true}))
}

pub(super) async fn list_requests(State(state): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"requests": state.cluster.requests()}),
    )
}

pub(super) async fn clear_requests(State(state): State<AppState>) -> Response {
    state.cluster.clear_requests();
    json_response(StatusCode::OK, &json!({"requests": []}))
}
