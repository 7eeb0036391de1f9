//! OpenAPI 3.1 documents generated from the handlers (utoipa), served at `GET /openapi.json`
//! with a readable reference at `GET /docs`.
//!
//! A service builds its routes as a [`utoipa_axum::router::OpenApiRouter`] with
//! `routes!(handler)` for every `#[utoipa::path]` handler, so the router and the document come
//! from the same list. [`require_security`] marks the operations of a route group with the
//! scheme its auth layer enforces (call it where the layer is added, only when the layer is
//! active), and `service::documented_with_service_layers` adds the documented `/metrics`, `/openapi.json` and
//! `/docs`, a 413 answer on every operation with a body, and the shared layers.
//!
//! The error-body schemas here ([`NestErrorBody`], [`BackendErrorBody`], [`FastApiErrorBody`])
//! are checked against what the renderers of [`crate::error`] really produce.
//!
//! `/openapi.json` and `/docs` are public by design: they describe the API, never data. The
//! `/docs` page is rendered on the server from the same document ([`crate::api_reference`]):
//! no script, nothing from another host, so it reads the same offline.

use std::sync::Arc;

use axum::{
    Extension,
    body::Bytes,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{
    ToSchema,
    openapi::{
        ContentBuilder, OpenApi, OpenApiBuilder, RefOr, ResponseBuilder,
        info::InfoBuilder,
        path::Operation,
        security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        },
    },
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::metrics::Metrics;

/// The tag of `/metrics`, `/openapi.json` and `/docs`.
pub const META_TAG: &str = "meta";

/// A new document with its `info`: the service title, version and a description.
#[must_use]
pub fn base_document(title: &str, version: &str, description: &str) -> OpenApi {
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(title)
                .version(version)
                .description(Some(description))
                .build(),
        )
        .build()
}

/// Registers a security scheme under `name` in the document's components.
pub fn add_security_scheme(doc: &mut OpenApi, name: &str, scheme: SecurityScheme) {
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(name, scheme);
}

/// An API key in a request header (e.g. `X-API-Key`).
#[must_use]
pub fn api_key_header(header: &str, description: &str) -> SecurityScheme {
    SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
        header,
        description,
    )))
}

/// `Authorization: Bearer <token>`.
#[must_use]
pub fn bearer(description: &str) -> SecurityScheme {
    SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(description))
            .build(),
    )
}

/// The operations of a document, as `(method, path, operation)`, in document order.
pub fn operations_mut(
    doc: &mut OpenApi,
) -> impl Iterator<Item = (&'static str, &str, &mut Operation)> {
    doc.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            ("GET", &mut item.get),
            ("PUT", &mut item.put),
            ("POST", &mut item.post),
            ("DELETE", &mut item.delete),
            ("OPTIONS", &mut item.options),
            ("HEAD", &mut item.head),
            ("PATCH", &mut item.patch),
            ("TRACE", &mut item.trace),
        ]
        .into_iter()
        .filter_map(move |(method, op)| op.as_mut().map(|op| (method, path.as_str(), op)))
    })
}

/// Marks every operation routed so far in `router` as requiring the security scheme `scheme`.
///
/// Call it where the auth layer is added to the same group, and only when that layer really
/// enforces something (a development setup without keys documents the routes as public).
#[must_use]
pub fn require_security<S>(mut router: OpenApiRouter<S>, scheme: &str) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    for (_, _, op) in operations_mut(router.get_openapi_mut()) {
        op.security
            .get_or_insert_with(Vec::new)
            .push(SecurityRequirement::new::<_, [&str; 0], &str>(scheme, []));
    }
    router
}

/// Adds a response to every operation that has a request body and does not declare `status`
/// itself (the body limit answers 413 on every such route).
fn add_to_body_operations(doc: &mut OpenApi, status: &str, response: &utoipa::openapi::Response) {
    for (_, _, op) in operations_mut(doc) {
        if op.request_body.is_some() && !op.responses.responses.contains_key(status) {
            op.responses
                .responses
                .insert(status.to_owned(), RefOr::T(response.clone()));
        }
    }
}

/// The schema of a service's JSON error body, named in the document's components.
pub trait ErrorBodySchema {
    /// The component name, e.g. `NestErrorBody`.
    const NAME: &'static str;
    /// Registers the schema (and the ones it refers to) in `doc`.
    fn register(doc: &mut OpenApi);
}

fn register_schema<T: ToSchema>(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    let mut schemas = Vec::new();
    T::schemas(&mut schemas);
    schemas.push((T::name().into_owned(), T::schema()));
    for (name, schema) in schemas {
        components.schemas.entry(name).or_insert(schema);
    }
}

/// A `message`: one string, or one string per violated rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ErrorMessage {
    /// A single message.
    Text(String),
    /// One entry per violated rule.
    List(Vec<String>),
}

/// The executor's Nest-style error body. The throttler, 401 and 500 bodies
/// have no `error` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NestErrorBody {
    /// The HTTP status, repeated.
    pub status_code: u16,
    /// What went wrong.
    pub message: ErrorMessage,
    /// The status's reason phrase, e.g. `Bad Request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
}

impl ErrorBodySchema for crate::error::NestStyle {
    const NAME: &'static str = "NestErrorBody";
    fn register(doc: &mut OpenApi) {
        register_schema::<NestErrorBody>(doc);
    }
}

/// The backend's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendErrorBody {
    /// The HTTP status, repeated.
    pub status_code: u16,
    /// When the error was produced (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// Request path and query string.
    pub path: String,
    /// Request method.
    pub method: String,
    /// The status's reason phrase.
    pub error: String,
    /// What went wrong.
    pub message: ErrorMessage,
}

impl ErrorBodySchema for crate::error::BackendStyle {
    const NAME: &'static str = "BackendErrorBody";
    fn register(doc: &mut OpenApi) {
        register_schema::<BackendErrorBody>(doc);
    }
}

/// One step of a FastAPI error location: a key or an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LocSegment {
    /// An object key (or `body`, `query`).
    Key(String),
    /// An array index.
    Index(u64),
}

/// One FastAPI validation item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValidationItem {
    /// Pydantic's error type, e.g. `missing`, `float_type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where: `["body", "metrics", 0, "value"]`.
    pub loc: Vec<LocSegment>,
    /// Human-readable message.
    pub msg: String,
    /// The offending input, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
}

/// A FastAPI `detail`: a message, or the list of validation items of a 422.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FastApiDetail {
    /// A message.
    Text(String),
    /// Validation items (422).
    Items(Vec<ValidationItem>),
}

/// The ai-engine's FastAPI error body: `{"detail": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FastApiErrorBody {
    /// What went wrong.
    pub detail: FastApiDetail,
}

impl ErrorBodySchema for crate::error::FastApiStyle {
    const NAME: &'static str = "FastApiErrorBody";
    fn register(doc: &mut OpenApi) {
        register_schema::<FastApiErrorBody>(doc);
    }
}

/// The serialised document, served as is.
#[derive(Debug, Clone)]
struct DocumentJson(Bytes);

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = META_TAG,
    operation_id = "openapi_document",
    summary = "Get the OpenAPI document",
    description = "This OpenAPI 3.1 document, generated from the handlers. Public by design.",
    responses((status = 200, description = "The document", content_type = "application/json", body = Object))
)]
async fn openapi_json(Extension(doc): Extension<DocumentJson>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc.0,
    )
        .into_response()
}

/// The `/docs` page, rendered once from the document, and its CSP: the page's only resource is
/// its inline style sheet, allowed by hash.
#[derive(Debug, Clone)]
struct DocsPage {
    html: Bytes,
    csp: HeaderValue,
}

impl DocsPage {
    fn new(doc: &Value) -> Self {
        use base64::Engine as _;
        use sha2::Digest as _;
        let html = crate::api_reference::render(doc);
        let hash = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(crate::api_reference::STYLE));
        let csp = format!(
            "default-src 'none'; style-src 'sha256-{hash}'; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'none'"
        );
        Self {
            html: Bytes::from(html),
            csp: HeaderValue::from_str(&csp)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'")),
        }
    }
}

/// `GET /docs`.
#[utoipa::path(
    get,
    path = "/docs",
    tag = META_TAG,
    operation_id = "api_reference",
    summary = "Read the API reference",
    description = "This document as a plain HTML page, rendered by the service: no script and nothing from another host, so it works offline. Public by design.",
    responses((status = 200, description = "The HTML page", content_type = "text/html", body = String))
)]
async fn docs(Extension(page): Extension<DocsPage>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CONTENT_SECURITY_POLICY, page.csp),
        ],
        page.html,
    )
        .into_response()
}

/// `GET /metrics`, documented.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = META_TAG,
    operation_id = "prometheus_metrics",
    summary = "Scrape the Prometheus metrics",
    description = "Prometheus metrics in the text exposition format. Unauthenticated: scraped inside the cluster; it carries no personal data or secrets.",
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String))
)]
async fn metrics(state: axum::extract::State<Arc<Metrics>>) -> Response {
    crate::metrics::metrics_handler(state).await
}

/// Adds the documented `/metrics`, `/openapi.json` and `/docs`, the error-body schema of `E`
/// and a 413 answer on every operation with a body; returns the plain router, with the
/// document attached to the routes that serve it, and the final document.
pub fn split<E: ErrorBodySchema>(
    api: OpenApiRouter,
    metrics: Arc<Metrics>,
) -> (axum::Router, OpenApi) {
    let meta = OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
        .merge(
            OpenApiRouter::<Arc<Metrics>>::new()
                .routes(routes!(self::metrics))
                .with_state(metrics),
        );
    let (router, mut doc) = api.merge(meta).split_for_parts();
    E::register(&mut doc);
    let too_large = ResponseBuilder::new()
        .description("The body is larger than the service's limit")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name(E::NAME)))
                .build(),
        )
        .build();
    add_to_body_operations(&mut doc, "413", &too_large);
    let json = serde_json::to_vec(&doc).unwrap_or_default();
    let page = DocsPage::new(&serde_json::from_slice(&json).unwrap_or(Value::Null));
    let router = router
        .layer(Extension(DocumentJson(Bytes::from(json))))
        .layer(Extension(page));
    (router, doc)
}

/// A route that answers without authentication, and why that is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicRoute {
    /// Upper-case method, e.g. `GET`.
    pub method: &'static str,
    /// The path as documented, e.g. `/health/ready`.
    pub path: &'static str,
    /// One line: why no authentication is needed.
    pub why: &'static str,
}

/// The operations of a served document (`/openapi.json`) that need no authentication, as
/// `"METHOD /path"`. An operation is authenticated when its own `security` (or, without one,
/// the document's) lists at least one requirement and none of them is empty.
#[must_use]
pub fn unauthenticated_operations(doc: &Value) -> Vec<String> {
    let secured = |security: Option<&Value>| {
        security.and_then(Value::as_array).is_some_and(|reqs| {
            !reqs.is_empty()
                && reqs
                    .iter()
                    .all(|r| r.as_object().is_some_and(|o| !o.is_empty()))
        })
    };
    let global = secured(doc.get("security"));
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if !matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
            ) {
                continue;
            }
            let authenticated = match op.get("security") {
                Some(s) => secured(Some(s)),
                None => global,
            };
            if !authenticated {
                out.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out
}

/// Compares the unauthenticated operations of a served document with the allow-list: every
/// public operation must be listed (with a reason) and every listed one must exist and be
/// public. Returns the problems, one line each (empty = in agreement).
#[must_use]
pub fn check_public_routes(doc: &Value, allowed: &[PublicRoute]) -> Vec<String> {
    let listed: Vec<(String, &str)> = allowed
        .iter()
        .map(|r| (format!("{} {}", r.method, r.path), r.why))
        .collect();
    check_public_list(doc, &listed)
}

/// [`check_public_routes`] for a list built at run time: `("METHOD /path", why)` pairs (e.g.
/// paths under a configurable prefix).
#[must_use]
pub fn check_public_list(doc: &Value, allowed: &[(String, &str)]) -> Vec<String> {
    let public = unauthenticated_operations(doc);
    let mut problems = Vec::new();
    for op in &public {
        if !allowed.iter().any(|(listed, _)| listed == op) {
            problems.push(format!(
                "{op} answers without authentication but is not in the public-route list; add it with a reason or protect it"
            ));
        }
    }
    for (op, why) in allowed {
        if why.trim().is_empty() {
            problems.push(format!("{op} is listed as public without a reason"));
        }
        if !public.contains(op) {
            problems.push(format!(
                "{op} is listed as public but is not a public operation of the document"
            ));
        }
    }
    problems
}

/// What keeps a served `/docs` page from being a complete offline reference of `doc`, empty
/// when nothing does:
/// - an operation without a summary, or one the page does not show as the renderer writes it;
/// - anything that runs or loads: a `script`, `iframe`, `object`, `embed`, `link`, `img`,
///   `form`, `base` or `meta http-equiv` element, an `on…` event attribute, a `javascript:`
///   URL, a link or `url(…)` to another host;
/// - a CSP that allows more than `default-src 'none'`, the page's own inline style (by the
///   hash of the style the page holds), and `'none'` for frames, base and forms.
#[must_use]
pub fn check_reference_page(doc: &Value, html: &str, csp: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                if op.get("responses").is_none() {
                    continue; // path-level `parameters`, `summary`, ...
                }
                let label = format!("{} {path}", method.to_uppercase());
                match op["summary"].as_str() {
                    Some(summary) if !summary.trim().is_empty() => {
                        let shown = crate::api_reference::render(&serde_json::json!({
                            "info": {}, "paths": {path: {method: {"summary": summary, "responses": {}}}}
                        }));
                        // The operation's heading as the renderer writes it, escaped alike.
                        let heading = shown
                            .split("<h3>")
                            .nth(1)
                            .and_then(|h| h.split("</h3>").next())
                            .unwrap_or_default();
                        if !html.contains(heading) {
                            problems.push(format!("{label}: the page does not show it"));
                        }
                    }
                    _ => problems.push(format!("{label} has no summary")),
                }
            }
        }
    }
    problems.extend(active_markup(html));
    problems.extend(csp_problems(html, csp));
    problems
}

/// Elements, attributes and URLs in `html` that would run code or load something.
fn active_markup(html: &str) -> Vec<String> {
    const ELEMENTS: [&str; 9] = [
        "script", "iframe", "object", "embed", "link", "img", "form", "base", "meta",
    ];
    let mut problems = Vec::new();
    let lower = html.to_ascii_lowercase();
    for tag in lower.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        // `<meta charset>` and `<meta name=viewport>` are inert; `http-equiv` can redirect.
        let inert_meta = name == "meta" && !tag.contains("http-equiv");
        if ELEMENTS.contains(&name.as_str()) && !inert_meta {
            problems.push(format!("the page holds a <{name}> element"));
        }
        for attribute in tag.split_ascii_whitespace().skip(1) {
            let (attr, value) = attribute.split_once('=').unwrap_or((attribute, ""));
            let value = value.trim_matches(['"', '\'']);
            if attr.starts_with("on") {
                problems.push(format!("the page holds an event attribute: {attr}"));
            }
            if value.starts_with("javascript:") {
                problems.push("the page holds a javascript: URL".to_owned());
            }
            if [
                "href",
                "src",
                "srcset",
                "action",
                "data",
                "formaction",
                "poster",
            ]
            .contains(&attr)
                && (value.contains("://") || value.starts_with("//"))
            {
                problems.push(format!("the page points to another host: {value}"));
            }
        }
    }
    for (at, _) in lower.match_indices("url(") {
        let target = lower[at + 4..].trim_start_matches(['"', '\'', ' ']);
        if target.contains("://") || target.starts_with("//") {
            problems.push("the page's style loads from another host".to_owned());
        }
    }
    problems
}

/// Every CSP directive beyond what the reference page needs.
fn csp_problems(html: &str, csp: &str) -> Vec<String> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let style = html
        .split("<style>")
        .nth(1)
        .and_then(|s| s.split("</style>").next());
    let style_hash = style.map(|s| {
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s))
        )
    });
    let mut problems = Vec::new();
    let mut default_none = false;
    for directive in csp.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let mut words = directive.split_ascii_whitespace();
        let name = words.next().unwrap_or_default();
        let values: Vec<&str> = words.collect();
        let allowed = match name {
            "default-src" | "frame-ancestors" | "base-uri" | "form-action" => values == ["'none'"],
            "style-src" => style_hash.as_deref().is_some_and(|h| values == [h]),
            _ => false,
        };
        default_none |= name == "default-src" && allowed;
        if !allowed {
            problems.push(format!(
                "the CSP allows more than the page needs: {directive}"
            ));
        }
    }
    if !default_none {
        problems.push(format!(
            "the CSP does not start from default-src 'none': {csp}"
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{
        BackendStyle, BodyError, DataErrorKind, ErrorReport, ErrorStyle, FastApiStyle, NestStyle,
        PathSegment, RequestInfo,
    };
    use axum::http::{Method, StatusCode};
    use serde_json::json;

    fn info() -> RequestInfo {
        RequestInfo {
            method: Method::POST,
            uri: "/x?y=1".parse().unwrap(),
        }
    }

    fn reports() -> Vec<ErrorReport> {
        vec![
            ErrorReport::new(StatusCode::BAD_REQUEST, "bad"),
            ErrorReport::new(
                StatusCode::BAD_REQUEST,
                vec!["a".to_owned(), "b".to_owned()],
            ),
            ErrorReport::new(StatusCode::TOO_MANY_REQUESTS, "slow down").without_error_key(),
        ]
    }

    #[test]
    fn nest_and_backend_bodies_match_their_schemas() {
        for report in reports() {
            let nest = NestStyle::render(&report, &info());
            serde_json::from_value::<NestErrorBody>(nest.clone()).unwrap();
            let backend = BackendStyle::render(&report, &info());
            serde_json::from_value::<BackendErrorBody>(backend).unwrap();
        }
        let missing = BodyError::Data {
            path: vec![PathSegment::Key("name".into())],
            kind: DataErrorKind::UnknownField,
            message: "unknown field".into(),
        };
        let body = NestStyle::render(&NestStyle::body_error(&missing), &info());
        serde_json::from_value::<NestErrorBody>(body).unwrap();
    }

    #[test]
    fn fastapi_bodies_match_their_schema() {
        let errors = [
            BodyError::TooLarge,
            BodyError::ContentType,
            BodyError::Syntax("eof".into()),
            BodyError::Data {
                path: vec![PathSegment::Key("metrics".into()), PathSegment::Index(0)],
                kind: DataErrorKind::InvalidType,
                message: "invalid type: string, expected f64".into(),
            },
        ];
        for e in &errors {
            let body = FastApiStyle::render(&FastApiStyle::body_error(e), &info());
            serde_json::from_value::<FastApiErrorBody>(body).unwrap();
        }
    }

    #[test]
    fn public_routes_are_checked_both_ways() {
        let doc = json!({"paths": {
            "/health": {"get": {}},
            "/open": {"post": {"security": []}},
            "/optional": {"get": {"security": [{}, {"key": []}]}},
            "/secret": {"get": {"security": [{"key": []}]}},
        }});
        assert_eq!(
            unauthenticated_operations(&doc),
            ["GET /health", "POST /open", "GET /optional"]
        );
        let allowed = [
            PublicRoute {
                method: "GET",
                path: "/health",
                why: "liveness",
            },
            PublicRoute {
                method: "POST",
                path: "/open",
                why: "signed body",
            },
            PublicRoute {
                method: "GET",
                path: "/secret",
                why: "",
            },
        ];
        let problems = check_public_routes(&doc, &allowed);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("GET /optional"));
    }

    #[test]
    fn require_security_marks_only_the_group() {
        #[utoipa::path(get, path = "/a", responses((status = 200)))]
        async fn a() {}
        #[utoipa::path(get, path = "/b", responses((status = 200)))]
        async fn b() {}
        let secured = require_security(OpenApiRouter::<()>::new().routes(routes!(a)), "key");
        let doc = secured
            .merge(OpenApiRouter::new().routes(routes!(b)))
            .into_openapi();
        let doc = serde_json::to_value(doc).unwrap();
        assert_eq!(unauthenticated_operations(&doc), ["GET /b"]);
        assert_eq!(doc["paths"]["/a"]["get"]["security"], json!([{"key": []}]));
    }

    #[test]
    fn docs_page_allows_exactly_its_inline_style() {
        let doc = json!({"openapi": "3.1.0", "info": {"title": "A <b>", "version": "1"},
            "paths": {"/x": {"get": {"summary": "Get x", "responses": {}}}}});
        let page = DocsPage::new(&doc);
        let html = std::str::from_utf8(&page.html).unwrap();
        assert!(html.contains("<title>A &lt;b&gt; API reference</title>"));
        let csp = page.csp.to_str().unwrap();
        assert!(check_reference_page(&doc, html, csp).is_empty(), "{csp}");
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(crate::api_reference::STYLE));
        assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
    }

    #[test]
    fn the_page_check_finds_what_breaks_an_offline_reference() {
        let doc = json!({"paths": {"/x": {"get": {"responses": {}}},
                                   "/y": {"get": {"summary": "Get y", "responses": {}}}}});
        let html = "<script src=\"https://cdn.example/x.js\"></script>\
                    <p onclick=\"x()\"><a href='javascript:x()'>a</a><a href=//evil.example/>b</a></p>\
                    <style>p{background:url(https://evil.example/i.png)}</style>";
        let problems = check_reference_page(
            &doc,
            html,
            "default-src 'none'; script-src https://cdn.example; style-src 'unsafe-inline'",
        );
        let text = problems.join("\n");
        for expected in [
            "GET /x has no summary",
            "GET /y: the page does not show it",
            "the page holds a <script> element",
            "points to another host: https://cdn.example/x.js",
            "an event attribute: onclick",
            "a javascript: URL",
            "points to another host: //evil.example/",
            "style loads from another host",
            "allows more than the page needs: script-src https://cdn.example",
            "allows more than the page needs: style-src 'unsafe-inline'",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        // A style hash that is not the page's own style is refused too.
        let wrong = check_reference_page(
            &json!({}),
            "<style>p{}</style>",
            "default-src 'none'; style-src 'sha256-AAAA'",
        );
        assert_eq!(wrong.len(), 1, "{wrong:?}");
    }
}
