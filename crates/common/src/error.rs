//! The JSON error bodies of the three services and the middleware that guarantees them.
//!
//! Handlers (and extractors) return an [`ErrorReport`]: a status and a message. The
//! [`envelope`] middleware renders it in the service's [`ErrorStyle`], adding what only the
//! request knows (the backend's `path`, `method` and `timestamp`). The same middleware replaces
//! any framework default error (405, 413, 415, an unmatched route) with the service's body, so a
//! client never sees plain text.

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, Method, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

/// What an error says: one message, a list of validation messages, or (FastAPI) a structured
/// `detail` value.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A single message string.
    Text(String),
    /// One entry per violated rule.
    List(Vec<String>),
    /// A structured detail, rendered as is (FastAPI's 422 list).
    Detail(Value),
}

impl Message {
    fn to_value(&self) -> Value {
        match self {
            Message::Text(s) => Value::String(s.clone()),
            Message::List(items) => json!(items),
            Message::Detail(v) => v.clone(),
        }
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(s.to_owned())
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(s)
    }
}

impl From<Vec<String>> for Message {
    fn from(items: Vec<String>) -> Self {
        Message::List(items)
    }
}

/// An error on its way to the client; rendered by [`envelope`].
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReport {
    /// HTTP status.
    pub status: StatusCode,
    /// The message.
    pub message: Message,
    /// The executor's throttler body and a few others carry no `error` key.
    pub omit_error_key: bool,
}

impl ErrorReport {
    /// A report with the given status and message.
    pub fn new(status: StatusCode, message: impl Into<Message>) -> Self {
        Self {
            status,
            message: message.into(),
            omit_error_key: false,
        }
    }

    /// Drops the `error` key from Nest-style bodies.
    #[must_use]
    pub fn without_error_key(mut self) -> Self {
        self.omit_error_key = true;
        self
    }
}

impl IntoResponse for ErrorReport {
    fn into_response(self) -> Response {
        // A minimal body in case the envelope middleware is not installed (e.g. a unit test);
        // the middleware replaces it with the service's full shape.
        let body = json!({"statusCode": self.status.as_u16(), "message": self.message.to_value()});
        let mut res = (self.status, axum::Json(body)).into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// The request facts an error body may need.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// HTTP method.
    pub method: Method,
    /// Request target as received.
    pub uri: Uri,
}

impl RequestInfo {
    /// Path and query string, as the backend's `path` field wants it.
    #[must_use]
    pub fn path_and_query(&self) -> &str {
        self.uri
            .path_and_query()
            .map_or_else(|| self.uri.path(), |pq| pq.as_str())
    }
}

/// Why a JSON body was refused; each style maps it to its own status and wording.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyError {
    /// Missing or non-JSON `Content-Type`.
    ContentType,
    /// Larger than the configured limit.
    TooLarge,
    /// The body could not be read.
    Unreadable(String),
    /// Not syntactically valid JSON.
    Syntax(String),
    /// Valid JSON of the wrong shape; `path` locates the offending field.
    Data {
        /// Field path from the root, e.g. `["metrics", 0, "value"]`.
        path: Vec<PathSegment>,
        /// What was wrong.
        kind: DataErrorKind,
        /// The deserializer's message (without position information).
        message: String,
    },
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A rough classification of deserialisation errors (FastAPI's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataErrorKind {
    /// A required field is missing.
    Missing,
    /// A field that the schema does not have.
    UnknownField,
    /// A string outside an enum.
    UnknownVariant,
    /// Wrong JSON type (expected number, string, list, object ...).
    InvalidType,
    /// Right type, unacceptable value.
    InvalidValue,
}

impl BodyError {
    /// The offending field as a dotted path (`metrics.0.value`), or `""` at the root.
    #[must_use]
    pub fn dotted_path(&self) -> String {
        match self {
            BodyError::Data { path, .. } => dotted(path),
            _ => String::new(),
        }
    }
}

pub(crate) fn dotted(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for seg in path {
        if !out.is_empty() {
            out.push('.');
        }
        match seg {
            PathSegment::Key(k) => out.push_str(k),
            PathSegment::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

/// How a service shapes its errors.
pub trait ErrorStyle: Send + Sync + 'static {
    /// Renders a report as the JSON body.
    fn render(report: &ErrorReport, req: &RequestInfo) -> Value;
    /// Maps a refused JSON body to a report.
    fn body_error(err: &BodyError) -> ErrorReport;
    /// The report for a framework-generated error (unmatched route, wrong method ...).
    fn framework_error(status: StatusCode, req: &RequestInfo) -> ErrorReport;
}

/// The canonical reason phrase of a status.
#[must_use]
pub fn reason_phrase(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

fn cannot(req: &RequestInfo) -> String {
    format!("Cannot {} {}", req.method, req.uri.path())
}

/// The backend's body:
/// `{statusCode, timestamp, path, method, error, message}`.
#[derive(Debug, Clone, Copy)]
pub struct BackendStyle;

impl ErrorStyle for BackendStyle {
    fn render(report: &ErrorReport, req: &RequestInfo) -> Value {
        json!({
            "statusCode": report.status.as_u16(),
            "timestamp": crate::time::now_rfc3339(),
            "path": req.path_and_query(),
            "method": req.method.as_str(),
            "error": reason_phrase(report.status),
            "message": report.message.to_value(),
        })
    }

    fn body_error(err: &BodyError) -> ErrorReport {
        nest_body_error(err)
    }

    fn framework_error(status: StatusCode, req: &RequestInfo) -> ErrorReport {
        nest_framework_error(status, req)
    }
}

/// The executor's Nest-style body: `{statusCode, message, error}`.
#[derive(Debug, Clone, Copy)]
pub struct NestStyle;

impl ErrorStyle for NestStyle {
    fn render(report: &ErrorReport, _req: &RequestInfo) -> Value {
        let mut body = json!({
            "statusCode": report.status.as_u16(),
            "message": report.message.to_value(),
        });
        if !report.omit_error_key
            && let Some(map) = body.as_object_mut()
        {
            map.insert("error".into(), reason_phrase(report.status).into());
        }
        body
    }

    fn body_error(err: &BodyError) -> ErrorReport {
        nest_body_error(err)
    }

    fn framework_error(status: StatusCode, req: &RequestInfo) -> ErrorReport {
        nest_framework_error(status, req)
    }
}

fn nest_body_error(err: &BodyError) -> ErrorReport {
    match err {
        BodyError::ContentType => ErrorReport::new(
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/json",
        ),
        BodyError::TooLarge => {
            ErrorReport::new(StatusCode::PAYLOAD_TOO_LARGE, "request entity too large")
        }
        BodyError::Unreadable(m) | BodyError::Syntax(m) => {
            ErrorReport::new(StatusCode::BAD_REQUEST, m.as_str())
        }
        BodyError::Data {
            kind: DataErrorKind::UnknownField,
            path,
            ..
        } => {
            let name = dotted(path);
            ErrorReport::new(
                StatusCode::BAD_REQUEST,
                vec![format!("property {name} should not exist")],
            )
        }
        BodyError::Data { path, message, .. } => {
            let at = dotted(path);
            let text = if at.is_empty() {
                message.clone()
            } else {
                format!("{at}: {message}")
            };
            ErrorReport::new(StatusCode::BAD_REQUEST, vec![text])
        }
    }
}

fn nest_framework_error(status: StatusCode, req: &RequestInfo) -> ErrorReport {
    match status {
        StatusCode::NOT_FOUND => ErrorReport::new(status, cannot(req)),
        StatusCode::INTERNAL_SERVER_ERROR => {
            ErrorReport::new(status, "Internal server error").without_error_key()
        }
        _ => ErrorReport::new(status, reason_phrase(status)),
    }
}

/// The ai-engine's FastAPI body: `{"detail": ...}`.
#[derive(Debug, Clone, Copy)]
pub struct FastApiStyle;

impl ErrorStyle for FastApiStyle {
    fn render(report: &ErrorReport, _req: &RequestInfo) -> Value {
        json!({ "detail": report.message.to_value() })
    }

    fn body_error(err: &BodyError) -> ErrorReport {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        let item = |ty: &str, loc: Value, msg: &str| {
            ErrorReport::new(
                unprocessable,
                Message::Detail(json!([{ "type": ty, "loc": loc, "msg": msg }])),
            )
        };
        match err {
            BodyError::TooLarge => {
                ErrorReport::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
            }
            BodyError::ContentType => item(
                "model_attributes_type",
                json!(["body"]),
                "Input should be a valid dictionary or object to extract fields from",
            ),
            BodyError::Unreadable(m) | BodyError::Syntax(m) => item(
                "json_invalid",
                json!(["body", 0]),
                &format!("JSON decode error: {m}"),
            ),
            BodyError::Data {
                path,
                kind,
                message,
            } => {
                let mut loc = vec![Value::from("body")];
                loc.extend(path.iter().map(|seg| match seg {
                    PathSegment::Key(k) => Value::from(k.as_str()),
                    PathSegment::Index(i) => Value::from(*i),
                }));
                let ty = match kind {
                    DataErrorKind::Missing => "missing",
                    DataErrorKind::UnknownVariant => "enum",
                    DataErrorKind::UnknownField => "extra_forbidden",
                    DataErrorKind::InvalidType => fastapi_type_name(message),
                    DataErrorKind::InvalidValue => "value_error",
                };
                item(ty, Value::Array(loc), message)
            }
        }
    }

    fn framework_error(status: StatusCode, _req: &RequestInfo) -> ErrorReport {
        match status {
            StatusCode::INTERNAL_SERVER_ERROR => {
                ErrorReport::new(status, "Internal inference error")
            }
            _ => ErrorReport::new(status, reason_phrase(status)),
        }
    }
}

/// Pydantic's type names for "expected X" serde messages.
fn fastapi_type_name(message: &str) -> &'static str {
    let expected = message.split("expected").nth(1).unwrap_or_default();
    if expected.contains("f64") || expected.contains("float") || expected.contains("number") {
        "float_type"
    } else if expected.contains("sequence") || expected.contains("list") {
        "list_type"
    } else if expected.contains("map") || expected.contains("struct") || expected.contains("object")
    {
        "dict_type"
    } else if expected.contains("bool") {
        "bool_type"
    } else if expected.contains("integer") || expected.contains("i64") || expected.contains("u64") {
        "int_type"
    } else {
        "string_type"
    }
}

/// Middleware that renders [`ErrorReport`]s and replaces framework defaults in style `S`.
///
/// Install it as the outermost layer that still sees every response:
/// `router.layer(axum::middleware::from_fn(envelope::<BackendStyle>))`.
pub async fn envelope<S: ErrorStyle>(req: Request, next: Next) -> Response {
    let info = RequestInfo {
        method: req.method().clone(),
        uri: req.uri().clone(),
    };
    let res = next.run(req).await;
    let status = res.status();
    if status.as_u16() < 400 {
        return res;
    }
    let report = match res.extensions().get::<ErrorReport>() {
        Some(report) => report.clone(),
        // A body a handler rendered itself (JSON, or a page such as the backend's console)
        // is the answer; only the framework's plain-text defaults are replaced.
        None if is_json(&res) || is_html(&res) => return res,
        None => S::framework_error(status, &info),
    };
    let body = S::render(&report, &info);
    let (mut parts, _) = res.into_parts();
    parts.status = report.status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    Response::from_parts(parts, Body::from(bytes))
}

fn is_html(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"))
}

fn is_json(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"))
}
