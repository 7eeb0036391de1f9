//! `POST /alerts/webhook/alertmanager`: Alertmanager's webhook (payload version 4), behind its
//! own bearer (`ALERTMANAGER_WEBHOOK_TOKEN`), so it is in `PUBLIC_ROUTES`. Firing alerts become
//! remediation signals through the same intake as the ai-engine's; resolved ones are noted on
//! their open incident. The parsing is in [`crate::remediation::alertmanager`].

use aegis_common::{openapi::BackendErrorBody, signing::secrets_equal, telemetry::TraceParent};
use aegis_remediation::Step;
use axum::{
    Extension,
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::docs::ServerError;
use crate::{
    db::incidents,
    error::{ApiError, Json},
    remediation::{
        alertmanager::{self, AlertSignal},
        engine,
    },
    state::AppState,
};

/// The webhook's route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(alertmanager_webhook))
}

/// What the webhook did with one alert.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum WebhookAlertResult {
    /// It became a signal: an incident was opened or joined.
    Firing {
        /// The alert's fingerprint.
        fingerprint: Option<String>,
        /// The incident opened or joined.
        #[serde(rename = "incidentId")]
        incident_id: String,
        /// The incident's correlation id.
        #[serde(rename = "correlationId")]
        correlation_id: String,
        /// Whether it joined an open incident.
        deduplicated: bool,
    },
    /// It was noted on its open incident, if there was one.
    Resolved {
        /// The alert's fingerprint.
        fingerprint: String,
        /// The open incident, or null.
        #[serde(rename = "incidentId")]
        incident_id: Option<uuid::Uuid>,
    },
    /// It was malformed and skipped (never failing the batch).
    Skipped {
        /// The alert's fingerprint, when it had one.
        fingerprint: Option<String>,
        /// Why.
        reason: String,
    },
}

/// `POST /alerts/webhook/alertmanager` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResult {
    /// How many alerts the payload held.
    pub received: usize,
    /// One entry per alert, in order.
    pub alerts: Vec<WebhookAlertResult>,
}

/// `POST /alerts/webhook/alertmanager`: bearer `ALERTMANAGER_WEBHOOK_TOKEN`. Firing alerts
/// become signals; resolved ones are noted on their open incident. Answers 200 with what was
/// done per alert (a malformed alert is skipped, never failing the batch, so Alertmanager does
/// not retry it forever).
#[utoipa::path(post, path = "/alerts/webhook/alertmanager", tag = "remediation", operation_id = "alertmanager_webhook", summary = "Receive Alertmanager's webhook",
    description = "Alertmanager's webhook (payload version 4): firing alerts become signals, resolved ones are noted on their open incident; a malformed alert is skipped, never failing the batch. Not configured (no ALERTMANAGER_WEBHOOK_TOKEN) = always 401.",
    security(("alertmanagerToken" = [])),
    request_body(content = Object, description = "Alertmanager's webhook payload"),
    responses(
        (status = 200, description = "What was done with each alert", body = WebhookResult),
        (status = 400, description = "Not an Alertmanager webhook payload", body = BackendErrorBody),
        (status = 401, description = "Missing or wrong token, or the webhook is not configured", body = BackendErrorBody),
        ServerError,
    ))]
async fn alertmanager_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    trace: Option<Extension<TraceParent>>,
    aegis_common::http::Json(body, _): Json<Value>,
) -> Result<Response, ApiError> {
    let expected = state
        .remediation
        .config
        .alertmanager_token
        .as_ref()
        .ok_or_else(|| ApiError::Unauthorized("Alertmanager webhook is not configured".into()))?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !secrets_equal(presented.as_bytes(), expected.expose_secret().as_bytes()) {
        return Err(ApiError::Unauthorized("Invalid webhook token".into()));
    }
    let hook = alertmanager::parse(&body).map_err(|m| ApiError::BadRequest(m.into()))?;
    let items = alertmanager::signals(&hook);
    // One correlation id per incident: the request's trace when the batch holds one firing
    // alert, a fresh trace for each otherwise.
    let firing = items
        .iter()
        .filter(|i| matches!(i, AlertSignal::Firing(_)))
        .count();
    let trace = trace.map(|Extension(t)| t).filter(|_| firing == 1);
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        results.push(match item {
            AlertSignal::Firing(signal) => {
                let fingerprint = signal.fingerprint.clone();
                let accepted = super::remediation::intake(&state, *signal, trace).await?;
                WebhookAlertResult::Firing {
                    fingerprint,
                    incident_id: accepted.body.incident_id,
                    correlation_id: accepted.body.correlation_id,
                    deduplicated: accepted.body.deduplicated,
                }
            }
            AlertSignal::Resolved { fingerprint } => {
                let joined = incidents::join_open(
                    &state.db,
                    &fingerprint,
                    Step::AlertResolved,
                    &json!({"fingerprint": fingerprint}),
                )
                .await?;
                if let Some((incident, event)) = &joined {
                    engine::emit(&state.remediation, incident, event);
                }
                WebhookAlertResult::Resolved {
                    fingerprint,
                    incident_id: joined.map(|(i, _)| i.id),
                }
            }
            AlertSignal::Skipped {
                fingerprint,
                reason,
            } => {
                tracing::warn!(fingerprint = ?fingerprint, %reason, "Alertmanager alert skipped");
                WebhookAlertResult::Skipped {
                    fingerprint,
                    reason,
                }
            }
        });
    }
    Ok(axum::Json(WebhookResult {
        received: results.len(),
        alerts: results,
    })
    .into_response())
}
