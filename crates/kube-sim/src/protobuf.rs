//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`).
//!
//! client-go's typed clients send built-in objects as protobuf: `kubectl create namespace` and
//! `kubectl create deployment` do, and so do controllers. Such a body is the four bytes `k8s\0`
//! followed by a `runtime.Unknown` message whose `typeMeta` names the object's `apiVersion` and
//! `kind` and whose `raw` holds the object itself. [`decode`] turns it into the JSON object the
//! same request would have carried as JSON, so everything after the HTTP layer sees one form.
//!
//! The messages are read through descriptors compiled at build time from the vendored
//! `proto/` files (Kubernetes v1.32). The JSON follows the Go types, not protobuf's own JSON
//! mapping:
//!
//! - `Time` is an RFC 3339 string to the second and `MicroTime` to the microsecond; a zero
//!   time (an empty message) is left out, as Go leaves the field unset.
//! - `Quantity` is its string, `IntOrString` a number or a string, and `FieldsV1` and
//!   `RawExtension` the JSON they carry.
//! - Go structs embedded with `json:",inline"` (a volume's source, a probe's handler, the
//!   `name` of a config map or secret reference) are fields in protobuf and are merged into
//!   their parent, as listed in [`INLINE`].
//! - 64-bit integers stay JSON numbers, and bytes are base64.
//! - A field holding the empty string is left out. Go's encoder writes every non-pointer string
//!   and Go reads `""` as unset, so keeping them would turn "unset" into "set to empty".
//!   Numbers and booleans are kept, because a pointer set to zero (`replicas: 0`) must stay.
//!
//! Limits: only the kinds in [`ACCEPTED`] are read, answers stay JSON (client-go reads the
//! answer by its content type), and `contentEncoding` (never set by client-go) is refused.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat};
use prost_reflect::{
    DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, ReflectMessage as _, Value as Proto,
};
use serde_json::{Map, Number, Value};

use crate::error::StatusError;

/// The media type of protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The prefix of every Kubernetes protobuf body.
const MAGIC: &[u8; 4] = b"k8s\0";

/// The kinds whose protobuf form kube-sim reads, with their message names in the vendored
/// descriptors. `DeleteOptions` is read whatever group version names it.
pub const ACCEPTED: [(&str, &str); 6] = [
    ("Namespace", "api.core.v1.Namespace"),
    ("Pod", "api.core.v1.Pod"),
    ("Deployment", "api.apps.v1.Deployment"),
    ("ReplicaSet", "api.apps.v1.ReplicaSet"),
    ("Scale", "api.autoscaling.v1.Scale"),
    (
        "DeleteOptions",
        "apimachinery.pkg.apis.meta.v1.DeleteOptions",
    ),
];

/// The fields (`message.field`) that hold a Go struct embedded inline: protobuf nests them,
/// JSON merges their fields into the parent. These are all of them in the vendored messages
/// of the accepted kinds.
const INLINE: [&str; 11] = [
    "api.core.v1.Probe.handler",
    "api.core.v1.Volume.volumeSource",
    "api.core.v1.EphemeralContainer.ephemeralContainerCommon",
    "api.core.v1.PersistentVolumeSpec.persistentVolumeSource",
    "api.core.v1.ConfigMapEnvSource.localObjectReference",
    "api.core.v1.ConfigMapKeySelector.localObjectReference",
    "api.core.v1.ConfigMapProjection.localObjectReference",
    "api.core.v1.ConfigMapVolumeSource.localObjectReference",
    "api.core.v1.SecretEnvSource.localObjectReference",
    "api.core.v1.SecretKeySelector.localObjectReference",
    "api.core.v1.SecretProjection.localObjectReference",
];

const UNKNOWN: &str = "apimachinery.pkg.runtime.Unknown";
const TIME: &str = "apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "apimachinery.pkg.apis.meta.v1.MicroTime";
const FIELDS_V1: &str = "apimachinery.pkg.apis.meta.v1.FieldsV1";
const RAW_EXTENSION: &str = "apimachinery.pkg.runtime.RawExtension";
const QUANTITY: &str = "apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "apimachinery.pkg.util.intstr.IntOrString";

/// The descriptors built from `proto/` by `build.rs`. They are part of the binary, so failing
/// to read them is a build defect; it is reported per request rather than by a panic.
static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(&include_bytes!(concat!(env!("OUT_DIR"), "/kubernetes.binpb"))[..])
        .map_err(|e| e.to_string())
});

/// Decodes a protobuf request body into the JSON object it stands for, with `apiVersion` and
/// `kind` from its `typeMeta`. `expected_kind` is used when `typeMeta` names no kind.
///
/// # Errors
/// `400 BadRequest` for a body that is not a well-formed Kubernetes protobuf message, and
/// `415 UnsupportedMediaType` for a kind outside [`ACCEPTED`].
pub fn decode(body: &[u8], expected_kind: &str) -> Result<Value, StatusError> {
    let pool = POOL.as_ref().map_err(|e| {
        StatusError::new(500, "InternalError", format!("protobuf descriptors: {e}"))
    })?;
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        StatusError::bad_request(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
        )
    })?;
    let unknown =
        DynamicMessage::decode(message(pool, UNKNOWN)?, envelope).map_err(|e| unrecognized(&e))?;
    let type_meta = unknown
        .get_field_by_name("typeMeta")
        .and_then(|v| v.as_message().cloned());
    let api_version = type_meta.as_ref().and_then(|m| text(m, "apiVersion"));
    let kind = type_meta
        .as_ref()
        .and_then(|m| text(m, "kind"))
        .unwrap_or_else(|| expected_kind.to_owned());
    if let Some(encoding) = text(&unknown, "contentEncoding") {
        return Err(StatusError::bad_request(format!(
            "the content encoding {encoding:?} of the protobuf body is not supported"
        )));
    }
    if let Some(inner) = text(&unknown, "contentType")
        && inner != MEDIA_TYPE
    {
        return Err(StatusError::bad_request(format!(
            "the protobuf envelope holds {inner:?}, not {MEDIA_TYPE}"
        )));
    }
    let name = ACCEPTED
        .iter()
        .find(|(accepted, _)| *accepted == kind)
        .map(|(_, name)| *name)
        .ok_or_else(|| {
            StatusError::new(
                415,
                "UnsupportedMediaType",
                format!("kube-sim does not read {kind} objects as protobuf; send them as JSON"),
            )
        })?;
    let raw = unknown
        .get_field_by_name("raw")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    let object = DynamicMessage::decode(message(pool, name)?, raw).map_err(|e| unrecognized(&e))?;
    let mut json = match message_json(&object)? {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if let Some(api_version) = api_version {
        json.insert("apiVersion".into(), Value::String(api_version));
    }
    json.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(json))
}

fn message(pool: &DescriptorPool, name: &str) -> Result<MessageDescriptor, StatusError> {
    pool.get_message_by_name(name).ok_or_else(|| {
        StatusError::new(
            500,
            "InternalError",
            format!("protobuf descriptors lack {name}"),
        )
    })
}

fn unrecognized(error: &impl std::fmt::Display) -> StatusError {
    StatusError::bad_request(format!("the object provided is unrecognized: {error}"))
}

/// A non-empty string field.
fn text(message: &DynamicMessage, field: &str) -> Option<String> {
    message
        .get_field_by_name(field)
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty())
}

/// The JSON form of a message, or `None` where Go leaves the field unset.
fn message_json(message: &DynamicMessage) -> Result<Option<Value>, StatusError> {
    let descriptor = message.descriptor();
    match descriptor.full_name() {
        TIME => time(message, SecondsFormat::Secs),
        MICRO_TIME => time(message, SecondsFormat::Micros),
        QUANTITY => Ok(text(message, "string").map(Value::String)),
        INT_OR_STRING => Ok(Some(int_or_string(message))),
        FIELDS_V1 => embedded(message, "Raw"),
        RAW_EXTENSION => embedded(message, "raw"),
        _ => {
            let mut object = Map::new();
            for (field, value) in message.fields() {
                match field_json(value)? {
                    Some(Value::Object(inner)) if INLINE.contains(&field.full_name()) => {
                        object.extend(inner);
                    }
                    Some(json) => {
                        object.insert(field.name().to_owned(), json);
                    }
                    None => {}
                }
            }
            Ok(Some(Value::Object(object)))
        }
    }
}

/// The JSON form of one field's value; `None` leaves the field out.
fn field_json(value: &Proto) -> Result<Option<Value>, StatusError> {
    match value {
        Proto::String(s) if s.is_empty() => Ok(None),
        Proto::List(items) => {
            let items = items
                .iter()
                .map(|item| Ok(element_json(item)?.unwrap_or(Value::Null)))
                .collect::<Result<Vec<_>, StatusError>>()?;
            Ok(Some(Value::Array(items)))
        }
        Proto::Map(entries) => {
            let mut object = Map::new();
            for (key, value) in entries {
                let key = match key {
                    MapKey::String(s) => s.clone(),
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(n) => n.to_string(),
                    MapKey::I64(n) => n.to_string(),
                    MapKey::U32(n) => n.to_string(),
                    MapKey::U64(n) => n.to_string(),
                };
                object.insert(key, element_json(value)?.unwrap_or(Value::Null));
            }
            Ok(Some(Value::Object(object)))
        }
        other => element_json(other),
    }
}

/// The JSON form of a single value, where an empty string is a value like any other (a label
/// value or a list element).
fn element_json(value: &Proto) -> Result<Option<Value>, StatusError> {
    Ok(Some(match value {
        Proto::Bool(b) => Value::Bool(*b),
        Proto::I32(n) | Proto::EnumNumber(n) => Value::from(*n),
        Proto::I64(n) => Value::from(*n),
        Proto::U32(n) => Value::from(*n),
        Proto::U64(n) => Value::from(*n),
        Proto::F32(n) => float(f64::from(*n))?,
        Proto::F64(n) => float(*n)?,
        Proto::String(s) => Value::String(s.clone()),
        Proto::Bytes(b) => Value::String(BASE64.encode(b)),
        Proto::Message(m) => return message_json(m),
        Proto::List(_) | Proto::Map(_) => return field_json(value),
    }))
}

fn float(n: f64) -> Result<Value, StatusError> {
    Number::from_f64(n)
        .map(Value::Number)
        .ok_or_else(|| StatusError::bad_request(format!("{n} is not a number JSON can carry")))
}

/// `Time` and `MicroTime`: an empty message is Go's zero time, which is left out. `Time` keeps
/// whole seconds only, as the API server does.
fn time(message: &DynamicMessage, precision: SecondsFormat) -> Result<Option<Value>, StatusError> {
    let seconds = message
        .get_field_by_name("seconds")
        .and_then(|v| v.as_i64());
    let nanos = message.get_field_by_name("nanos").and_then(|v| v.as_i32());
    if !message.has_field_by_name("seconds") && !message.has_field_by_name("nanos") {
        return Ok(None);
    }
    let nanos = match precision {
        SecondsFormat::Secs => 0,
        _ => nanos.unwrap_or(0),
    };
    let at = u32::try_from(nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(seconds.unwrap_or(0), nanos))
        .ok_or_else(|| {
            StatusError::bad_request(format!(
                "the time {}s {nanos}ns is out of range",
                seconds.unwrap_or(0)
            ))
        })?;
    Ok(Some(Value::String(at.to_rfc3339_opts(precision, true))))
}

fn int_or_string(message: &DynamicMessage) -> Value {
    let is_string = message.get_field_by_name("type").and_then(|v| v.as_i64()) == Some(1);
    if is_string {
        let text = message
            .get_field_by_name("strVal")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Value::String(text)
    } else {
        let number = message
            .get_field_by_name("intVal")
            .and_then(|v| v.as_i32())
            .unwrap_or(0);
        Value::from(number)
    }
}

/// `FieldsV1` and `RawExtension` carry JSON as bytes.
fn embedded(message: &DynamicMessage, field: &str) -> Result<Option<Value>, StatusError> {
    let Some(raw) = message
        .get_field_by_name(field)
        .and_then(|v| v.as_bytes().cloned())
        .filter(|raw| !raw.is_empty())
    else {
        return Ok(None);
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| StatusError::bad_request(format!("embedded JSON in {field}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_kind_and_every_special_form_has_a_descriptor() {
        let pool = POOL.as_ref().unwrap_or_else(|e| panic!("{e}"));
        let names = ACCEPTED.iter().map(|(_, name)| *name).chain([
            UNKNOWN,
            TIME,
            MICRO_TIME,
            FIELDS_V1,
            RAW_EXTENSION,
            QUANTITY,
            INT_OR_STRING,
        ]);
        for name in names {
            assert!(
                pool.get_message_by_name(name).is_some(),
                "{name} is missing"
            );
        }
        for inline in INLINE {
            let (message, field) = inline.rsplit_once('.').unwrap_or_default();
            let field = pool
                .get_message_by_name(message)
                .and_then(|m| m.get_field_by_name(field));
            assert!(field.is_some(), "{inline} is missing");
        }
    }
}
