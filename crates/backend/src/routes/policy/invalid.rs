//! The 400 answers the policy routes share.

use aegis_common::error::Message;
use aegis_policy::ValidationError;

use crate::error::ApiError;

/// 400 with the message as text.
pub(super) fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(Message::Text(msg.into()))
}

/// 400 with the message as a one-item list.
pub(super) fn bad_list(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(Message::List(vec![msg.into()]))
}

/// A validation error as a 400 naming the field (`priority: priority must be …`); the bare
/// sentence for non-object conditions, which clients match on.
pub(super) fn validation(e: &ValidationError) -> ApiError {
    match e.kind {
        aegis_policy::ValidationErrorKind::ConditionsNotObject => bad_list(e.message()),
        _ => bad_list(e.to_string()),
    }
}
