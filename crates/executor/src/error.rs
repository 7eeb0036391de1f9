//! The executor's error type, rendered as the Nest-style body:
//! `{"statusCode", "message", "error"}` (the throttler and 500 bodies carry no `error` key).

use aegis_common::error::{ErrorReport, Message, NestStyle};
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// JSON extractor whose rejections use the executor's error body.
pub type Json<T> = aegis_common::http::Json<T, NestStyle>;

/// Every way an executor request can fail before an action runs.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with one message or a list.
    #[error("bad request: {0:?}")]
    BadRequest(Message),
    /// 401.
    #[error("unauthorized")]
    Unauthorized,
    /// 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 429 with `Retry-After`.
    #[error("too many requests: {message}")]
    TooManyRequests {
        /// Message.
        message: String,
        /// Seconds until a retry may succeed.
        retry_after: u64,
        /// The HTTP throttler's body has no `error` key.
        throttler: bool,
    },
    /// 502: the Kubernetes API answered with an error.
    #[error("bad gateway: {0}")]
    BadGateway(String),
    /// 503.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// 504.
    #[error("gateway timeout: {0}")]
    GatewayTimeout(String),
    /// A database failure: logged, answered with a generic 500.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Anything else unexpected: logged, answered with a generic 500.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 with a single message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(Message::Text(message.into()))
    }

    /// The message a rejected audit row records.
    #[must_use]
    pub fn audit_message(&self) -> String {
        match self {
            Self::BadRequest(Message::Text(m)) => m.clone(),
            Self::BadRequest(Message::List(items)) => items.join("; "),
            Self::BadRequest(Message::Detail(v)) => v.to_string(),
            Self::Unauthorized => "Unauthorized".into(),
            Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::BadGateway(m)
            | Self::Unavailable(m)
            | Self::GatewayTimeout(m) => m.clone(),
            Self::TooManyRequests { message, .. } => message.clone(),
            Self::Db(_) | Self::Internal(_) => "Internal server error".into(),
        }
    }

    /// `executor_errors_total{error_type}` and `execution_errors.error_category`.
    #[must_use]
    pub fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest(_) => ("validation", "validation"),
            Self::Unauthorized | Self::Forbidden(_) => ("authorization", "authorization"),
            Self::TooManyRequests { .. } | Self::Conflict(_) | Self::Unavailable(_) => {
                ("rate_limit", "authorization")
            }
            Self::NotFound(_) | Self::BadGateway(_) => ("k8s_api", "kubernetes_api"),
            Self::GatewayTimeout(_) => ("timeout", "timeout"),
            Self::Db(_) | Self::Internal(_) => ("audit", "unknown"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let report = match self {
            ApiError::BadRequest(m) => ErrorReport::new(StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized => {
                ErrorReport::new(StatusCode::UNAUTHORIZED, "Unauthorized").without_error_key()
            }
            ApiError::Forbidden(m) => ErrorReport::new(StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => ErrorReport::new(StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => ErrorReport::new(StatusCode::CONFLICT, m),
            ApiError::TooManyRequests {
                message,
                retry_after,
                throttler,
            } => {
                let mut report = ErrorReport::new(StatusCode::TOO_MANY_REQUESTS, message);
                if throttler {
                    report = report.without_error_key();
                }
                let mut res = report.into_response();
                if let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return res;
            }
            ApiError::BadGateway(m) => ErrorReport::new(StatusCode::BAD_GATEWAY, m),
            ApiError::Unavailable(m) => ErrorReport::new(StatusCode::SERVICE_UNAVAILABLE, m),
            ApiError::GatewayTimeout(m) => ErrorReport::new(StatusCode::GATEWAY_TIMEOUT, m),
            err @ (ApiError::Db(_) | ApiError::Internal(_)) => {
                tracing::error!(error = %err, "request failed");
                ErrorReport::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
                    .without_error_key()
            }
        };
        report.into_response()
    }
}
