//! The HTTP layer: authentication, fault injection, request recording and routing of the
//! Kubernetes paths onto [`crate::ops`], plus the admin (`/_sim/...`) and `/metrics` endpoints.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, Method, StatusCode, Uri, header};
use serde_json::{Value, json};

use crate::cluster::{Cluster, RecordedRequest};
use crate::discovery;
use crate::error::StatusError;
use crate::faults::FaultRule;
use crate::metrics::MetricUpdate;
use crate::ops::{self, DeleteOptions, Propagation};
use crate::patch::PatchType;
use crate::protobuf;
use crate::resource::Resource;
use crate::table::{self, IncludeObject};
use crate::watch::{self, WatchRequest};

/// State shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The simulated cluster.
    pub cluster: Cluster,
    /// The bearer token clients must present.
    pub token: Arc<str>,
    /// `host:port` the server is reachable at, reported by `/api`.
    pub server_address: Arc<str>,
}

/// The whole application: `/metrics` and health checks open, everything else behind the token.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route(
            "/_sim/faults",
            get(list_faults)
                .post(add_faults)
                .put(replace_faults)
                .delete(clear_faults),
        )
        .route(
            "/_sim/metrics",
            axum::routing::post(set_metric).delete(reset_metrics),
        )
        .route("/_sim/requests", get(list_requests).delete(clear_requests))
        .route("/_sim/crashloop", axum::routing::post(crashloop))
        .fallback(kube_api)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(ok))
        .route("/readyz", get(ok))
        .route("/livez", get(ok))
        .merge(protected)
        .with_state(state)
}

async fn ok() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.cluster.metrics_text(),
    )
        .into_response()
}

async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if presented != Some(&*state.token) {
        return StatusError::unauthorized().into_response();
    }
    next.run(request).await
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

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

async fn list_faults(State(state): State<AppState>) -> Response {
    rules_response(&state.cluster)
}

async fn add_faults(State(state): State<AppState>, body: Bytes) -> Response {
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

async fn replace_faults(State(state): State<AppState>, body: Bytes) -> Response {
    match parse_rules(&body) {
        Ok(rules) => {
            state.cluster.set_faults(rules);
            rules_response(&state.cluster)
        }
        Err(e) => e.into_response(),
    }
}

async fn clear_faults(State(state): State<AppState>) -> Response {
    state.cluster.clear_faults();
    rules_response(&state.cluster)
}

async fn set_metric(State(state): State<AppState>, body: Bytes) -> Response {
    let result = parse_json_body::<MetricUpdate>(&body)
        .and_then(|update| state.cluster.set_pod_metric(&update).map(|()| update));
    match result {
        Ok(update) => json_response(StatusCode::OK, &json!({"applied": update})),
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

async fn crashloop(State(state): State<AppState>, body: Bytes) -> Response {
    let result = parse_json_body::<CrashLoop>(&body)
        .and_then(|c| state.cluster.crash_pod(&c.namespace, &c.pod, c.restarts));
    match result {
        Ok(pod) => json_response(StatusCode::OK, &pod),
        Err(e) => e.into_response(),
    }
}

async fn reset_metrics(State(state): State<AppState>) -> Response {
    state.cluster.reset_metrics();
    json_response(StatusCode::OK, &json!({"reset": true}))
}

async fn list_requests(State(state): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"requests": state.cluster.requests()}),
    )
}

async fn clear_requests(State(state): State<AppState>) -> Response {
    state.cluster.clear_requests();
    json_response(StatusCode::OK, &json!({"requests": []}))
}

/// Decodes `application/x-www-form-urlencoded` query pairs.
fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = bytes
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    if let Some(v) = hex {
                        out.push(v);
                        i += 2;
                    } else {
                        out.push(b'%');
                    }
                }
                other => out.push(other),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// Query parameters the verbs understand.
#[derive(Debug, Default)]
struct Params {
    dry_run: bool,
    label_selector: Option<String>,
    field_selector: Option<String>,
    propagation: Option<String>,
    include_object: Option<String>,
    watch: bool,
    resource_version: Option<u64>,
    timeout_seconds: Option<u64>,
}

impl Params {
    fn parse(query: Option<&str>) -> Result<Params, StatusError> {
        let mut params = Params::default();
        for (key, value) in parse_query(query) {
            match key.as_str() {
                "dryRun" => match value.as_str() {
                    "All" => params.dry_run = true,
                    "" => {}
                    other => {
                        return Err(StatusError::bad_request(format!(
                            "Invalid dryRun value {other:?}: only \"All\" is supported"
                        )));
                    }
                },
                "labelSelector" => params.label_selector = Some(value),
                "fieldSelector" => params.field_selector = Some(value),
                "propagationPolicy" => params.propagation = Some(value),
                "includeObject" => params.include_object = Some(value),
                "watch" => params.watch = matches!(value.as_str(), "true" | "1"),
                "resourceVersion" => params.resource_version = value.parse().ok(),
                "timeoutSeconds" => params.timeout_seconds = value.parse().ok(),
                _ => {}
            }
        }
        Ok(params)
    }
}

/// Every Kubernetes path: records the request, applies faults, then serves it.
async fn kube_api(
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
        ["namespaces", ns, plural, name, sub] => {
            let resource = resource(plural)?;
            item(&state.cluster, &request, resource, ns, name, Some(sub))
        }
        _ => Err(StatusError::path_not_found()),
    }
}

struct VerbRequest<'a> {
    method: &'a Method,
    params: &'a Params,
    content_type: Option<&'a str>,
    /// The client asked for a server-side printed `Table` (kubectl get).
    table: bool,
    body: &'a [u8],
}

impl VerbRequest<'_> {
    /// Answers a read, as a `Table` when the client asked for one.
    fn read_answer(&self, resource: Resource, value: &Value) -> Response {
        if self.table {
            let include = IncludeObject::parse(self.params.include_object.as_deref());
            json_response(StatusCode::OK, &table::to_table(resource, value, include))
        } else {
            json_response(StatusCode::OK, value)
        }
    }
}

impl VerbRequest<'_> {
    /// The body of a create, update or delete: JSON, or protobuf as client-go's typed clients
    /// send it. `kind` is what the route expects, used when a protobuf body names none.
    fn object_body(&self, kind: &str) -> Result<Value, StatusError> {
        if self.media_type() == protobuf::MEDIA_TYPE {
            return protobuf::decode(self.body, kind);
        }
        self.json_body()
    }

    /// The body of a patch, which is JSON whatever patch it is.
    fn json_body(&self) -> Result<Value, StatusError> {
        let essence = self.media_type();
        if essence != "application/json" && !essence.ends_with("+json") && !essence.is_empty() {
            // CBOR or anything else: client-go falls back to JSON on 415.
            return Err(StatusError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, {} (got {essence})",
                    protobuf::MEDIA_TYPE
                ),
            ));
        }
        if self.body.is_empty() {
            return Err(StatusError::bad_request("the request body is empty"));
        }
        serde_json::from_slice(self.body).map_err(|e| {
            StatusError::bad_request(format!("the object provided is unrecognized: {e}"))
        })
    }

    /// The media type of the body without its parameters; JSON when none is named.
    fn media_type(&self) -> &str {
        self.content_type
            .and_then(|c| c.split(';').next())
            .map(str::trim)
            .unwrap_or("application/json")
    }

    fn patch_type(&self) -> Result<PatchType, StatusError> {
        let content_type = self.content_type.unwrap_or("");
        PatchType::from_content_type(content_type)
            .ok_or_else(|| StatusError::unsupported_media_type(content_type))
    }

    fn delete_options(&self) -> Result<(DeleteOptions, bool), StatusError> {
        let mut options = DeleteOptions::default();
        let mut dry_run = self.params.dry_run;
        let mut policy = self.params.propagation.clone();
        if !self.body.is_empty() {
            let body = self.object_body("DeleteOptions")?;
            if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
                policy = Some(p.to_owned());
            }
            if body.get("orphanDependents") == Some(&json!(true)) && policy.is_none() {
                policy = Some("Orphan".into());
            }
            if let Some(values) = body.get("dryRun").and_then(Value::as_array) {
                dry_run |= values.iter().any(|v| v == "All");
            }
            options.precondition_uid = body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned);
            options.precondition_resource_version = body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        if let Some(policy) = policy {
            options.propagation = Propagation::parse(&policy)?;
        }
        Ok((options, dry_run))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        let pairs = parse_query(Some("labelSelector=app%3Dapi%2Ctier+in+(a)&dryRun=All"));
        assert_eq!(
            pairs[0],
            ("labelSelector".into(), "app=api,tier in (a)".into())
        );
        assert_eq!(pairs[1], ("dryRun".into(), "All".into()));
    }
}
