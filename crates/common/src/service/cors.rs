//! The CORS layer a service adds for the dashboard's origins.

use axum::http::{HeaderName, HeaderValue};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Why a CORS configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CorsError {
    /// `*` together with credentials is invalid for browsers and unsafe.
    #[error("\"*\" is not allowed as a CORS origin when credentials are allowed; list the origins")]
    WildcardWithCredentials,
    /// An origin that is not a valid header value.
    #[error("invalid CORS origin {0:?}")]
    InvalidOrigin(String),
}

/// A restrictive CORS layer for exactly `origins` (none = no CORS headers at all). Methods and
/// request headers are the ones the dashboard uses.
pub fn cors_layer(origins: &[String], credentials: bool) -> Result<Option<CorsLayer>, CorsError> {
    if origins.is_empty() {
        return Ok(None);
    }
    if credentials && origins.iter().any(|o| o == "*") {
        return Err(CorsError::WildcardWithCredentials);
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .map(|o| HeaderValue::from_str(o).map_err(|_| CorsError::InvalidOrigin(o.clone())))
        .collect::<Result<_, _>>()?;
    use axum::http::{Method, header};
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(list))
            .allow_credentials(credentials)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::PUT,
                Method::PATCH,
                Method::POST,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-csrf-token"),
                HeaderName::from_static("x-requested-with"),
            ]),
    ))
}
