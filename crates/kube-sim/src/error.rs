//! Kubernetes `Status` error bodies, shaped exactly as the real API server shapes them.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::{Map, Value, json};

use crate::resource::Resource;

/// An API error rendered as a `kind: Status` body with the matching HTTP code.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `Conflict`, ...).
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// Optional `details` object (boxed to keep `Result<_, StatusError>` small).
    pub details: Option<Box<Value>>,
}

/// One field error inside an `Invalid` status.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldCause {
    /// `FieldValueInvalid`, `FieldValueRequired`, ...
    pub reason: &'static str,
    /// Dotted field path (`spec.replicas`).
    pub field: String,
    /// Cause message (`Invalid value: -1: must be greater than or equal to 0`).
    pub message: String,
}

impl FieldCause {
    /// A `FieldValueInvalid` cause.
    pub fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        let shown = match value {
            Value::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        FieldCause {
            reason: "FieldValueInvalid",
            field: field.to_owned(),
            message: format!("Invalid value: {shown}: {detail}"),
        }
    }

    /// A `FieldValueRequired` cause.
    pub fn required(field: &str) -> Self {
        FieldCause {
            reason: "FieldValueRequired",
            field: field.to_owned(),
            message: "Required value".to_owned(),
        }
    }
}

/// The standard reason for an HTTP status code, as the API server uses it.
pub fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

fn name_details(resource: Resource, name: &str) -> Map<String, Value> {
    let mut details = Map::new();
    details.insert("name".into(), json!(name));
    if !resource.group().is_empty() {
        details.insert("group".into(), json!(resource.group()));
    }
    details.insert("kind".into(), json!(resource.plural()));
    details
}

impl StatusError {
    /// A status error with a code, reason and message and no details.
    pub fn new(code: u16, reason: impl Into<String>, message: impl Into<String>) -> Self {
        StatusError {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }

    /// `404 NotFound`: `deployments.apps "x" not found`.
    pub fn not_found(resource: Resource, name: &str) -> Self {
        StatusError {
            code: 404,
            reason: "NotFound".into(),
            message: format!("{} \"{name}\" not found", resource.qualified()),
            details: Some(Box::new(Value::Object(name_details(resource, name)))),
        }
    }

    /// `409 AlreadyExists`: `pods "x" already exists`.
    pub fn already_exists(resource: Resource, name: &str) -> Self {
        StatusError {
            code: 409,
            reason: "AlreadyExists".into(),
            message: format!("{} \"{name}\" already exists", resource.qualified()),
            details: Some(Box::new(Value::Object(name_details(resource, name)))),
        }
    }

    /// `409 Conflict` for a stale `resourceVersion`.
    pub fn conflict(resource: Resource, name: &str) -> Self {
        StatusError {
            code: 409,
            reason: "Conflict".into(),
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                resource.qualified()
            ),
            details: Some(Box::new(Value::Object(name_details(resource, name)))),
        }
    }

    /// `422 Invalid` with field causes.
    pub fn invalid(resource: Resource, name: &str, causes: &[FieldCause]) -> Self {
        let rendered: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let summary = if rendered.len() == 1 {
            rendered.concat()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let mut details = Map::new();
        details.insert("name".into(), json!(name));
        if !resource.group().is_empty() {
            details.insert("group".into(), json!(resource.group()));
        }
        details.insert("kind".into(), json!(resource.kind()));
        details.insert(
            "causes".into(),
            Value::Array(
                causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect(),
            ),
        );
        StatusError {
            code: 422,
            reason: "Invalid".into(),
            message: format!(
                "{} \"{name}\" is invalid: {summary}",
                resource.qualified_kind()
            ),
            details: Some(Box::new(Value::Object(details))),
        }
    }

    /// `403 Forbidden` on a named object: `namespaces "default" is forbidden: <why>`.
    pub fn forbidden(resource: Resource, name: &str, why: &str) -> Self {
        StatusError {
            code: 403,
            reason: "Forbidden".into(),
            message: format!("{} \"{name}\" is forbidden: {why}", resource.qualified()),
            details: Some(Box::new(Value::Object(name_details(resource, name)))),
        }
    }

    /// `400 BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        StatusError::new(400, "BadRequest", message)
    }

    /// `401 Unauthorized`, as the API server answers a missing or wrong token.
    pub fn unauthorized() -> Self {
        StatusError::new(401, "Unauthorized", "Unauthorized")
    }

    /// `405 MethodNotAllowed`.
    pub fn method_not_allowed(method: &str) -> Self {
        StatusError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    /// `404 NotFound` for a path the server does not serve.
    pub fn path_not_found() -> Self {
        StatusError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// `415 UnsupportedMediaType`.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        StatusError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// Adds a `details` object.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// The `Status` JSON body.
    pub fn to_status(&self) -> Value {
        let mut status = Map::new();
        status.insert("kind".into(), json!("Status"));
        status.insert("apiVersion".into(), json!("v1"));
        status.insert("metadata".into(), json!({}));
        status.insert("status".into(), json!("Failure"));
        status.insert("message".into(), json!(self.message));
        status.insert("reason".into(), json!(self.reason));
        if let Some(details) = &self.details {
            status.insert("details".into(), (**details).clone());
        }
        status.insert("code".into(), json!(self.code));
        Value::Object(status)
    }
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for StatusError {}

impl IntoResponse for StatusError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.to_status().to_string();
        (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
