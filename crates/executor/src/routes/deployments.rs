//! `GET /executor/deployments/{namespace}/{name}`: the closed loop
//! reads the current replica count here before scaling relatively. `X-API-Key` must be one of
//! `SERVICE_API_KEYS`; the namespace rules are those. Not audited, not throttled.

use aegis_common::{
    contracts::DeploymentStatus,
    names::{Namespace, ResourceName},
    openapi::NestErrorBody,
    signing::secret_in,
};
use axum::{
    Json,
    extract::{Path, State},
    http::HeaderMap,
};
use secrecy::ExposeSecret;

use crate::{
    error::ApiError,
    k8s::{K8sError, actions},
    safety,
    state::AppState,
};

/// The handler.
#[utoipa::path(
    get,
    path = "/executor/deployments/{namespace}/{name}",
    tag = "deployments",
    operation_id = "get_deployment", summary = "Show a deployment",
    description = "The current replica counts and revision of a deployment in an allowed namespace. Not audited, not throttled.",
    params(
        ("namespace" = String, Path, description = "An allowed namespace (DNS-1123 label)"),
        ("name" = String, Path, description = "The deployment (DNS-1123 subdomain)"),
    ),
    responses(
        (status = 200, description = "The deployment's status", body = DeploymentStatus),
        (status = 400, description = "The namespace or name is not a valid DNS-1123 name", body = NestErrorBody),
        (status = 401, description = "Missing or unknown `X-API-Key`", body = NestErrorBody),
        (status = 403, description = "The namespace is not allowed", body = NestErrorBody),
        (status = 404, description = "No such deployment", body = NestErrorBody),
        (status = 502, description = "The Kubernetes API answered with an error", body = NestErrorBody),
        (status = 504, description = "The Kubernetes API did not answer in time", body = NestErrorBody),
    )
)]
pub async fn get_deployment(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<DeploymentStatus>, ApiError> {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let accepted = state
        .config
        .service_api_keys
        .iter()
        .map(|k| k.expose_secret().as_bytes());
    if key.is_empty() || !secret_in(key.as_bytes(), accepted) {
        return Err(ApiError::Unauthorized);
    }
    safety::check_namespace(&state.config, Some(&namespace), &namespace)?;
    let (Ok(namespace), Ok(name)) = (Namespace::new(namespace), ResourceName::new(name)) else {
        return Err(ApiError::BadRequest(
            vec!["namespace and name must be valid DNS-1123 names".to_owned()].into(),
        ));
    };
    match actions::deployment_status(&state.kube, &namespace, &name).await {
        Ok(Some(status)) => Ok(Json(status)),
        Ok(None) => Err(ApiError::NotFound(format!(
            "Deployment {name} not found in namespace {namespace}"
        ))),
        Err(e @ K8sError::Timeout(_)) => Err(ApiError::GatewayTimeout(e.to_string())),
        Err(e) => Err(ApiError::BadGateway(e.to_string())),
    }
}
