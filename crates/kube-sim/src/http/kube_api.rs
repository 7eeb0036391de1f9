//! Every Kubernetes path: the request is recorded, faults apply, then discovery documents are
//! answered and the resource paths are routed onto [`crate::ops`] and [`crate::watch`].

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri, header};

use super::params::Params;
use super::verb::VerbRequest;
use super::{AppState, json_response};
use crate::cluster::{Cluster, RecordedRequest};
use crate::discovery;
use crate::error::StatusError;
use crate::ops;
use crate::resource::Resource;
use crate::table::{self, IncludeObject};
use crate::watch::{self, WatchRequest};

/// Every Kubernetes path: records the request, applies faults, then serves it.
pub(super) async fn kube_api(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state.cluster.record_request(RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().map(str::to_owned),
        content_type: content_type.clone(),
        body: serde_json::from_slice(&body).ok(),
    });
    tracing::debug!(%method, %uri, content_type = content_type.as_deref().unwrap_or(""), "request");
    if let Some(fault) = state.cluster.decide_fault(method.as_str(), &path) {
        if fault.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
        }
        if fault.hang {
            std::future::pending::<()>().await;
        }
        if let Some(error) = fault.error {
            return error.into_response();
        }
    }
    match serve(
        &state,
        &method,
        &uri,
        content_type.as_deref(),
        accept.as_deref(),
        &body,
    ) {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%method, %uri, code = error.code, reason = %error.reason, "error");
            error.into_response()
        }
    }
}

fn serve(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: &[u8],
) -> Result<Response, StatusError> {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let discovery_doc = match segments.as_slice() {
        ["api"] => Some(discovery::api_versions(&state.server_address)),
        ["apis"] => Some(discovery::api_group_list()),
        ["apis", "apps"] => Some(discovery::apps_api_group()),
        ["api", "v1"] => Some(discovery::core_v1_resources()),
        ["apis", "apps", "v1"] => Some(discovery::apps_v1_resources()),
        ["apis", "coordination.k8s.io"] => Some(discovery::coordination_api_group()),
        ["apis", "coordination.k8s.io", "v1"] => Some(discovery::coordination_v1_resources()),
        ["version"] => Some(discovery::version()),
        _ => None,
    };
    if let Some(doc) = discovery_doc {
        if method != Method::GET {
            return Err(StatusError::method_not_allowed(method.as_str()));
        }
        return Ok(json_response(StatusCode::OK, &doc));
    }
    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", "apps", "v1", rest @ ..] => ("apps", rest),
        ["apis", "coordination.k8s.io", "v1", rest @ ..] => ("coordination.k8s.io", rest),
        _ => return Err(StatusError::path_not_found()),
    };
    let resource = |plural: &str| {
        Resource::from_group_plural(group, plural).ok_or_else(StatusError::path_not_found)
    };
    let params = Params::parse(uri.query())?;
    let request = VerbRequest {
        method,
        params: &params,
        content_type,
        table: table::wants_table(accept),
        body,
    };
    match rest {
        [plural] => {
            let resource = resource(plural)?;
            collection(&state.cluster, &request, resource, None)
        }
        ["namespaces", name] if group.is_empty() => item(
            &state.cluster,
            &request,
            Resource::Namespace,
            "",
            name,
            None,
        ),
        ["namespaces", name, "status"] if group.is_empty() => item(
            &state.cluster,
            &request,
            Resource::Namespace,
            "",
            name,
            Some("status"),
        ),
        ["namespaces", ns, plural] => {
            let resource = resource(plural)?;
            if !resource.namespaced() {
                return Err(StatusError::path_not_found());
            }
            collection(&state.cluster, &request, resource, Some(ns))
        }
        ["namespaces", ns, plural, name] => {
            let resource = resource(plural)?;
            item(&state.cluster, &request, resource, ns, name, None)
        }
        ["namespaces", ns, "pods", name, "log"] if group.is_empty() => {
            if method != Method::GET {
                return Err(StatusError::method_not_allowed(method.as_str()));
            }
            pod_log(&state.cluster, ns, name, uri.query())
        }
        ["namespaces", ns, plural, name, sub] => {
            let resource = resource(plural)?;
            item(&state.cluster, &request, resource, ns, name, Some(sub))
        }
        _ => Err(StatusError::path_not_found()),
    }
}

fn collection(
    cluster: &Cluster,
    request: &VerbRequest<'_>,
    resource: Resource,
    namespace: Option<&str>,
) -> Result<Response, StatusError> {
    match *request.method {
        Method::GET if request.params.watch => watch::watch(
            cluster.clone(),
            WatchRequest {
                resource,
                namespace: namespace.map(str::to_owned),
                label_selector: request.params.label_selector.clone(),
                field_selector: request.params.field_selector.clone(),
                resource_version: request.params.resource_version,
                table: request
                    .table
                    .then(|| IncludeObject::parse(request.params.include_object.as_deref())),
                timeout: Duration::from_secs(request.params.timeout_seconds.unwrap_or(1800)),
            },
        ),
        Method::GET => {
            let list = cluster.with_store(|s| {
                ops::list(
                    s,
                    resource,
                    namespace,
                    request.params.label_selector.as_deref(),
                    request.params.field_selector.as_deref(),
                )
            })?;
            Ok(request.read_answer(resource, &list))
        }
        Method::POST => {
            let body = request.object_body(resource.kind())?;
            let created = cluster.with_store(|s| {
                ops::create(s, resource, namespace, body, request.params.dry_run)
            })?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        _ => Err(StatusError::method_not_allowed(request.method.as_str())),
    }
}

fn item(
    cluster: &Cluster,
    request: &VerbRequest<'_>,
    resource: Resource,
    namespace: &str,
    name: &str,
    sub: Option<&str>,
) -> Result<Response, StatusError> {
    let dry_run = request.params.dry_run;
    let scalable = matches!(resource, Resource::Deployment | Resource::ReplicaSet);
    let result = match (sub, request.method.clone()) {
        (None, Method::GET) | (Some("status"), Method::GET) => {
            let found = cluster.with_store(|s| ops::get(s, resource, namespace, name))?;
            return Ok(request.read_answer(resource, &found));
        }
        (None, Method::PUT) => {
            let body = request.object_body(resource.kind())?;
            cluster.with_store(|s| ops::update(s, resource, namespace, name, body, dry_run))
        }
        (None, Method::PATCH) => {
            let patch_type = request.patch_type()?;
            let body = request.json_body()?;
            cluster.with_store(|s| {
                ops::patch(s, resource, namespace, name, &body, patch_type, dry_run)
            })
        }
        (None, Method::DELETE) => {
            let (options, dry_run) = request.delete_options()?;
            cluster.with_store(|s| ops::delete(s, resource, namespace, name, &options, dry_run))
        }
        (Some("scale"), Method::GET) if scalable => {
            cluster.with_store(|s| ops::get_scale(s, resource, namespace, name))
        }
        (Some("scale"), Method::PUT) if scalable => {
            let body = request.object_body("Scale")?;
            cluster.with_store(|s| ops::update_scale(s, resource, namespace, name, &body, dry_run))
        }
        (Some("scale"), Method::PATCH) if scalable => {
            let patch_type = request.patch_type()?;
            let body = request.json_body()?;
            cluster.with_store(|s| {
                ops::patch_scale(s, resource, namespace, name, &body, patch_type, dry_run)
            })
        }
        (Some("status"), Method::PUT) => {
            let body = request.object_body(resource.kind())?;
            cluster.with_store(|s| ops::update_status(s, resource, namespace, name, &body, dry_run))
        }
        (Some("status"), Method::PATCH) => {
            let patch_type = request.patch_type()?;
            let body = request.json_body()?;
            cluster.with_store(|s| {
                ops::patch_status(s, resource, namespace, name, &body, patch_type, dry_run)
            })
        }
        (Some("scale" | "status"), method) | (None, method) => {
            return Err(StatusError::method_not_allowed(method.as_str()));
        }
        (Some(_), _) => return Err(StatusError::path_not_found()),
    }?;
    Ok(json_response(StatusCode::OK, &result))
}

/// `GET .../pods/{name}/log`: `container`, `previous` and `tailLines` as the API server reads
/// them; the answer is plain text, one line per log line. `follow` is not served.
fn pod_log(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
    query: Option<&str>,
) -> Result<Response, StatusError> {
    let (mut container, mut previous, mut tail) = (None, false, None);
    for (key, value) in super::params::parse_query(query) {
        match key.as_str() {
            "container" => container = Some(value),
            "previous" => previous = matches!(value.as_str(), "true" | "1"),
            "tailLines" => {
                tail = Some(value.parse::<usize>().map_err(|_| {
                    StatusError::bad_request(format!(
                        "tailLines must be a non-negative integer: {value}"
                    ))
                })?);
            }
            "follow" if matches!(value.as_str(), "true" | "1") => {
                return Err(StatusError::bad_request("kube-sim does not follow logs"));
            }
            _ => {}
        }
    }
    let lines = cluster.read_log(namespace, pod, container.as_deref(), previous, tail)?;
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response())
}
