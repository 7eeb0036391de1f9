//! One request to a Kubernetes path as a verb sees it: its parameters, and its body decoded
//! from JSON or protobuf according to what the client sent.

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::json_response;
use super::params::Params;
use crate::error::StatusError;
use crate::ops::{DeleteOptions, Propagation};
use crate::patch::PatchType;
use crate::protobuf;
use crate::resource::Resource;
use crate::table::{self, IncludeObject};

/// A request to a resource path, as the verbs read it.
pub(super) struct VerbRequest<'a> {
    pub(super) method: &'a Method,
    pub(super) params: &'a Params,
    pub(super) content_type: Option<&'a str>,
    /// The client asked for a server-side printed `Table` (kubectl get).
    pub(super) table: bool,
    pub(super) body: &'a [u8],
}

impl VerbRequest<'_> {
    /// Answers a read, as a `Table` when the client asked for one.
    pub(super) fn read_answer(&self, resource: Resource, value: &Value) -> Response {
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
    pub(super) fn object_body(&self, kind: &str) -> Result<Value, StatusError> {
        if self.media_type() == protobuf::MEDIA_TYPE {
            return protobuf::decode(self.body, kind);
        }
        self.json_body()
    }

    /// The body of a patch, which is JSON whatever patch it is.
    pub(super) fn json_body(&self) -> Result<Value, StatusError> {
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

    pub(super) fn patch_type(&self) -> Result<PatchType, StatusError> {
        let content_type = self.content_type.unwrap_or("");
        PatchType::from_content_type(content_type)
            .ok_or_else(|| StatusError::unsupported_media_type(content_type))
    }

    pub(super) fn delete_options(&self) -> Result<(DeleteOptions, bool), StatusError> {
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
