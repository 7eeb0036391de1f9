//! `POST /executor/generate-signature` (executor.md §5.6): only routed when
//! `ENABLE_SIGNATURE_HELPER=true`, which production refuses at start-up.

use aegis_common::signing::{
    RequestedBy, SignedFields, V2Fields, is_valid_nonce, sign_v1, sign_v2,
};
use axum::{Json, extract::State};
use serde_json::{Value, json};

use crate::{error::ApiError, state::AppState};

/// Computes the v1 signature of `{actionType, actionParams, requestedBy}`, or the v2 one when
/// `timestamp` and `nonce` are given.
pub async fn generate_signature(
    State(state): State<AppState>,
    aegis_common::http::Json(body, _): crate::error::Json<Value>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "signature": signature })))
}
