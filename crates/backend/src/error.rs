//! The backend's error type, rendered as the body.

use aegis_common::error::{BackendStyle, ErrorReport, Message};
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

/// JSON extractor whose rejections use the backend's error body.
pub type Json<T> = aegis_common::http::Json<T, BackendStyle>;

/// Every way a backend request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with one message or a list.
    #[error("bad request")]
    BadRequest(Message),
    /// 401.
    #[error("unauthorized")]
    Unauthorized(String),
    /// 403.
    #[error("forbidden")]
    Forbidden(String),
    /// 404.
    #[error("not found")]
    NotFound(String),
    /// 409.
    #[error("conflict")]
    Conflict(String),
    /// 429 with seconds until the window resets.
    #[error("too many requests")]
    TooManyRequests {
        /// Message.
        message: String,
        /// `Retry-After` seconds.
        retry_after: u64,
    },
    /// 502 from an upstream.
    #[error("bad gateway")]
    BadGateway(String),
    /// 503.
    #[error("service unavailable")]
    Unavailable(String),
    /// A database failure: logged, answered with a generic 500.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Anything else unexpected: logged, answered with a generic 500.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// PostgreSQL refused a string for holding U+0000: SQLSTATE 22021 for `text`
    /// ("invalid byte sequence"), 22P05 for `jsonb` ("unsupported Unicode escape sequence").
    fn is_refused_nul(&self) -> bool {
        let refused = |e: &sqlx::Error| {
            e.as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "22021" || c == "22P05")
        };
        match self {
            ApiError::Db(e) => refused(e),
            ApiError::Internal(e) => e
                .chain()
                .filter_map(|c| c.downcast_ref::<sqlx::Error>())
                .any(refused),
            _ => false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, Message::Text(m)),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, Message::Text(m)),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, Message::Text(m)),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, Message::Text(m)),
            ApiError::TooManyRequests {
                message,
                retry_after,
            } => {
                let mut res =
                    ErrorReport::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
                if let Ok(v) = retry_after.to_string().parse() {
                    res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
                }
                return res;
            }
            ApiError::BadGateway(m) => (StatusCode::BAD_GATEWAY, Message::Text(m)),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, Message::Text(m)),
            // A string with U+0000 that reached PostgreSQL (`text` and `jsonb` refuse it) is
            // the caller's input, not a server fault. Routes strip it where they can; this
            // is the net for the rest.
            err @ (ApiError::Db(_) | ApiError::Internal(_)) if err.is_refused_nul() => (
                StatusCode::BAD_REQUEST,
                Message::Text("Text must not contain the character U+0000".into()),
            ),
            err @ (ApiError::Db(_) | ApiError::Internal(_)) => {
                tracing::error!(error = %err, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Message::Text("Internal server error".into()),
                )
            }
        };
        ErrorReport::new(status, message).into_response()
    }
}

/// A `:id` path parameter that must be a UUID; anything else is 400
/// `"Validation failed (uuid is expected)"`. For routes with one parameter.
#[derive(Debug, Clone, Copy)]
pub struct UuidPath(pub uuid::Uuid);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for UuidPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let invalid =
            || ApiError::BadRequest(Message::Text("Validation failed (uuid is expected)".into()));
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| invalid())?;
        // Canonical 8-4-4-4-12 form only (the uuid crate also accepts braces and URNs).
        if raw.len() != 36 {
            return Err(invalid());
        }
        uuid::Uuid::parse_str(&raw)
            .map(UuidPath)
            .map_err(|_| invalid())
    }
}
