//! HTTP plumbing shared by the services: the JSON extractor whose rejections use the service's
//! error body, and small header helpers.

use std::marker::PhantomData;

use axum::{
    extract::{FromRequest, Request},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::{BodyError, DataErrorKind, ErrorStyle, PathSegment};

/// `Json<T>` whose rejections (bad content type, bad JSON, wrong shape, too large) are rendered
/// in error style `S`. Each service aliases it: `type Json<T> = aegis_common::http::Json<T, BackendStyle>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T, S>(pub T, pub PhantomData<S>);

impl<T, S> Json<T, S> {
    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T, S, St> FromRequest<St> for Json<T, S>
where
    T: DeserializeOwned,
    S: ErrorStyle,
    St: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &St) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(S::body_error(&BodyError::ContentType).into_response());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| S::body_error(&bytes_error(&rejection)).into_response())?;
        parse_json(&bytes)
            .map(|v| Json(v, PhantomData))
            .map_err(|e| S::body_error(&e).into_response())
    }
}

fn bytes_error(rejection: &axum::extract::rejection::BytesRejection) -> BodyError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        BodyError::TooLarge
    } else {
        BodyError::Unreadable(rejection.body_text())
    }
}

/// Whether the request declares a JSON body (`application/json` or any `+json` type).
#[must_use]
pub fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/json")
        || (mime.len() > 5
            && mime.starts_with("application/")
            && mime.to_ascii_lowercase().ends_with("+json"))
}

/// Parses `bytes` as `T`, classifying failures with the offending field path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = to_segments(e.path());
        classify(e.into_inner(), path)
    })?;
    de.end()
        .map_err(|e| BodyError::Syntax(strip_position(&e.to_string())))?;
    Ok(value)
}

fn to_segments(path: &serde_path_to_error::Path) -> Vec<PathSegment> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|seg| match seg {
            Segment::Seq { index } => Some(PathSegment::Index(*index)),
            Segment::Map { key } => Some(PathSegment::Key(key.clone())),
            Segment::Enum { variant } => Some(PathSegment::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

fn classify(err: serde_json::Error, mut path: Vec<PathSegment>) -> BodyError {
    use serde_json::error::Category;
    let message = strip_position(&err.to_string());
    match err.classify() {
        Category::Io | Category::Eof | Category::Syntax => BodyError::Syntax(message),
        Category::Data => {
            let mut push_field = |field: &str| {
                // serde_path_to_error already ends the path at an unknown field.
                if path.last() != Some(&PathSegment::Key(field.to_owned())) {
                    path.push(PathSegment::Key(field.to_owned()));
                }
            };
            let kind = if let Some(field) = between(&message, "unknown field `", "`") {
                push_field(field);
                DataErrorKind::UnknownField
            } else if let Some(field) = between(&message, "missing field `", "`") {
                push_field(field);
                DataErrorKind::Missing
            } else if message.starts_with("unknown variant") {
                DataErrorKind::UnknownVariant
            } else if message.starts_with("invalid type") {
                DataErrorKind::InvalidType
            } else {
                DataErrorKind::InvalidValue
            };
            BodyError::Data {
                path,
                kind,
                message,
            }
        }
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(start)?;
    rest.find(end).and_then(|i| rest.get(..i))
}

/// serde_json appends " at line L column C"; clients get the message without it.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        value: f64,
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse_json::<Body>(br#"{"name":"a","items":[],"extra":1}"#).unwrap_err();
        assert!(matches!(
            &err,
            BodyError::Data { kind: DataErrorKind::UnknownField, path, .. }
                if path == &vec![PathSegment::Key("extra".into())]
        ));
    }

    #[test]
    fn nested_type_error_has_a_path() {
        let err = parse_json::<Body>(br#"{"name":"a","items":[{"value":"x"}]}"#).unwrap_err();
        assert_eq!(err.dotted_path(), "items.0.value");
        assert!(matches!(
            err,
            BodyError::Data {
                kind: DataErrorKind::InvalidType,
                ..
            }
        ));
    }

    #[test]
    fn missing_field_is_named() {
        let err = parse_json::<Body>(br#"{"items":[]}"#).unwrap_err();
        assert_eq!(err.dotted_path(), "name");
    }

    #[test]
    fn syntax_errors_have_no_position() {
        let err = parse_json::<Body>(br#"{"name": "#).unwrap_err();
        assert!(matches!(&err, BodyError::Syntax(m) if !m.contains("line")));
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(!has_json_content_type(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(has_json_content_type(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(has_json_content_type(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!has_json_content_type(&h));
    }
}
