//! `POST /executor/generate-signature`: only routed when
//! `ENABLE_SIGNATURE_HELPER=true`, which production refuses at start-up.

use aegis_common::openapi::NestErrorBody;
use aegis_common::signing::{
    RequestedBy, SignedFields, V2Fields, is_valid_nonce, sign_v1, sign_v2,
};
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::{error::ApiError, state::AppState};

/// The fields a signature covers (the same as in an execute body).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "documents the body; the handler reads it as JSON to keep the signed key order"
)]
pub struct SignatureRequest {
    /// Any action name (not checked here).
    action_type: String,
    /// The parameters, in the order they will be sent.
    action_params: Map<String, Value>,
    /// Who will ask.
    requested_by: Option<String>,
    /// v2: decimal milliseconds since the epoch (with `nonce`).
    timestamp: Option<String>,
    /// v2: 16..64 chars of `[A-Za-z0-9_-]` (with `timestamp`).
    #[schema(pattern = "^[A-Za-z0-9_-]{16,64}$")]
    nonce: Option<String>,
}

/// The computed signature.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignatureResponse {
    /// Lowercase hex HMAC-SHA256.
    signature: String,
}

/// Computes the v1 signature of `{actionType, actionParams, requestedBy}`, or the v2 one when
/// `timestamp` and `nonce` are given.
#[utoipa::path(
    post,
    path = "/executor/generate-signature",
    tag = "execute",
    operation_id = "generate_signature", summary = "Compute a request signature (development only)",
    description = "Development helper: computes the signature of a body. Routed only when ENABLE_SIGNATURE_HELPER=true (refused in production). Throttled like execute.",
    request_body = SignatureRequest,
    responses(
        (status = 200, description = "The signature", body = SignatureResponse),
        (status = 400, description = "Invalid body", body = NestErrorBody),
        (status = 429, description = "HTTP throttle", body = NestErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))),
    )
)]
pub async fn generate_signature(
    State(state): State<AppState>,
    aegis_common::http::Json(body, _): crate::error::Json<Value>,
) -> Result<Json<SignatureResponse>, ApiError> {
    let action_type = body
        .get("actionType")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::BadRequest(vec!["actionType must be a string".to_owned()].into())
        })?;
    let Some(Value::Object(params)) = body.get("actionParams") else {
        return Err(ApiError::BadRequest(
            vec!["actionParams must be an object".to_owned()].into(),
        ));
    };
    let requested_by = RequestedBy::from_json(body.get("requestedBy")).ok_or_else(|| {
        ApiError::BadRequest(vec!["requestedBy must be a string".to_owned()].into())
    })?;
    let fields = SignedFields {
        action_type,
        action_params: params,
        requested_by,
    };
    let key = state.config.hmac_key_bytes();
    let timestamp = body.get("timestamp").and_then(Value::as_str);
    let nonce = body.get("nonce").and_then(Value::as_str);
    let signature = match (timestamp, nonce) {
        (Some(timestamp), Some(nonce)) if is_valid_nonce(nonce) => {
            sign_v2(key, &fields, &V2Fields { timestamp, nonce })
        }
        (None, None) => sign_v1(key, &fields),
        _ => {
            return Err(ApiError::BadRequest(
                vec!["timestamp and a valid nonce go together".to_owned()].into(),
            ));
        }
    };
    Ok(Json(SignatureResponse { signature }))
}
