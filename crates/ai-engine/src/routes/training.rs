//! Labelled windows for the failure forest and retraining.
//!
//! * `POST /api/v1/training-data` (API key): `{failure_type, metrics, logs, features?, source,
//!   incident_id?}` → 201 `{id, label}`. Features come from the window (log features are taken
//!   relative to the window's newest log, so old windows keep their counts) or from the given
//!   55-value vector.
//! * `POST /api/v1/models/failure/train` (admin key): retrains now and reports what happened.

use aegis_common::{
    contracts::{TrainingDataCreated, TrainingDataRequest},
    error::{ErrorReport, Message},
    openapi::FastApiErrorBody,
};
use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    detector::{
        FeatureSet,
        failure::FailureClass,
        features::{RF_FEATURE_COUNT, log_features, metric_features, rf_feature_set},
    },
    models::train_failure,
    request::{Kind, parse_detect_value, parse_lenient_json},
    state::AppState,
};

/// `POST /training-data`.
pub fn data_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

/// `POST /models/failure/train`.
pub fn train_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(train))
}

/// `POST /models/failure/train`: the training report plus the active method.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TrainedModel {
    /// Whether a forest was trained (false: not enough rows per class yet).
    trained: bool,
    /// Labelled rows used.
    rows: usize,
    /// Rows per class name.
    class_counts: std::collections::BTreeMap<String, usize>,
    /// Model version when trained.
    #[schema(required = true)]
    model_version: Option<String>,
    /// Cross-validated accuracy when trained.
    #[schema(required = true)]
    cv_accuracy: Option<f64>,
    /// `random_forest` or `heuristic`: what answers `detect-failure` now.
    method: &'static str,
    /// The configured minimum rows per class.
    min_rows_per_class: usize,
}

fn unprocessable(items: Vec<Value>) -> Response {
    ErrorReport::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        Message::Detail(Value::Array(items)),
    )
    .into_response()
}

fn field_error(ty: &str, field: &str, msg: &str) -> Response {
    unprocessable(vec![
        json!({"type": ty, "loc": ["body", field], "msg": msg}),
    ])
}

#[utoipa::path(post, path = "/training-data", tag = "training", operation_id = "create_training_data", summary = "Store a labelled training window",
    request_body = TrainingDataRequest,
    responses(
        (status = 201, description = "Stored", body = TrainingDataCreated),
        (status = 422, description = "Invalid body (FastAPI validation items)", body = FastApiErrorBody),
        (status = 403, description = "Missing or wrong `X-API-Key` (when `API_KEY` is set)", body = FastApiErrorBody),
        (status = 503, description = "Database unavailable", body = FastApiErrorBody),
    ))]
async fn create(State(state): State<AppState>, body: Bytes) -> Response {
    let raw = match parse_lenient_json(&body) {
        Ok(v) => v,
        Err(items) => return unprocessable(items),
    };
    let Some(obj) = raw.as_object() else {
        return field_error("model_attributes_type", "body", "Input should be an object");
    };
    const KNOWN: [&str; 6] = [
        "failure_type",
        "metrics",
        "logs",
        "features",
        "source",
        "incident_id",
    ];
    if let Some(extra) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return field_error("extra_forbidden", extra, "Extra inputs are not permitted");
    }
    let Some(class) = obj
        .get("failure_type")
        .and_then(Value::as_str)
        .and_then(FailureClass::parse)
    else {
        let names: Vec<&str> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
        return field_error(
            "enum",
            "failure_type",
            &format!("Input should be one of: {}", names.join(", ")),
        );
    };
    let source = match obj.get("source").and_then(Value::as_str) {
        Some(s @ ("operator" | "api")) => s.to_owned(),
        _ => return field_error("enum", "source", "Input should be 'operator' or 'api'"),
    };
    let incident_id = match obj.get("incident_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return field_error(
                "string_type",
                "incident_id",
                "Input should be a valid string",
            );
        }
    };
    let features: FeatureSet = match obj.get("features") {
        Some(Value::Array(values)) => {
            let parsed: Option<Vec<f64>> = values.iter().map(Value::as_f64).collect();
            match parsed.and_then(|v| <[f64; RF_FEATURE_COUNT]>::try_from(v).ok()) {
                Some(vector) => rf_feature_set(&vector),
                None => {
                    return field_error(
                        "value_error",
                        "features",
                        &format!(
                            "features must be {RF_FEATURE_COUNT} numbers in feature-name order"
                        ),
                    );
                }
            }
        }
        Some(Value::Null) | None => {
            let mut window = serde_json::Map::new();
            window.insert(
                "metrics".into(),
                obj.get("metrics").cloned().unwrap_or_else(|| json!([])),
            );
            window.insert(
                "logs".into(),
                obj.get("logs").cloned().unwrap_or_else(|| json!([])),
            );
            let req = match parse_detect_value(
                Value::Object(window),
                Kind::Failure,
                state.config.max_items,
            ) {
                Ok(r) => r,
                Err(items) => return unprocessable(items),
            };
            let points: Vec<_> = req.metrics.iter().map(|m| m.point).collect();
            let newest = req
                .logs
                .iter()
                .map(|l| l.timestamp)
                .max()
                .unwrap_or_else(chrono::Utc::now);
            metric_features(&points).concat(log_features(
                &req.logs,
                newest,
                state.config.failure_window,
            ))
        }
        Some(_) => return field_error("list_type", "features", "Input should be a valid list"),
    };
    if features.is_empty() {
        return field_error("value_error", "metrics", "the window produced no features");
    }
    let features_json: Value = Value::Object(
        features
            .iter()
            .map(|(k, v)| (k.to_owned(), json!(if v.is_finite() { v } else { 0.0 })))
            .collect(),
    );
    let label = i32::try_from(class.id()).unwrap_or_default();
    let mut metadata = json!({"failure_type": class.as_str()});
    if let (Some(id), Some(m)) = (incident_id, metadata.as_object_mut()) {
        m.insert("incident_id".into(), json!(id));
    }
    let inserted: Result<(i32,), _> = sqlx::query_as(
        "INSERT INTO training_data (model_type, features, label, source, metadata) \
         VALUES ('failure', $1, $2, $3, $4) RETURNING id",
    )
    .bind(&features_json)
    .bind(label)
    .bind(&source)
    .bind(&metadata)
    .fetch_one(&state.db)
    .await;
    match inserted {
        Ok((id,)) => (
            StatusCode::CREATED,
            Json(TrainingDataCreated {
                id: id.to_string(),
                label,
            }),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "storing training data failed");
            ErrorReport::new(StatusCode::SERVICE_UNAVAILABLE, "Database unavailable")
                .into_response()
        }
    }
}

#[utoipa::path(post, path = "/models/failure/train", tag = "training", operation_id = "train_failure_model", summary = "Retrain the failure model",
    description = "Retrains the failure forest now. The answer is the training report with `method` (`random_forest` or `heuristic`) and `min_rows_per_class` added.",
    responses(
        (status = 200, description = "What happened", body = TrainedModel),
        (status = 403, description = "Missing or wrong admin key", body = FastApiErrorBody),
        (status = 500, description = "Training failed", body = FastApiErrorBody),
    ))]
async fn train(State(state): State<AppState>) -> Response {
    let started = std::time::Instant::now();
    match train_failure(&state.db, &state.engine, state.config.rf_min_rows_per_class).await {
        Ok(report) => {
            if report.trained {
                let m = &state.ai_metrics;
                m.training_duration
                    .with_label_values(&["failure"])
                    .observe(started.elapsed().as_secs_f64());
                m.training_samples
                    .with_label_values(&["failure"])
                    .inc_by(report.rows as u64);
            }
            let method = if state.engine.failure_forest().is_some() {
                "random_forest"
            } else {
                "heuristic"
            };
            Json(TrainedModel {
                trained: report.trained,
                rows: report.rows,
                class_counts: report.class_counts,
                model_version: report.model_version,
                cv_accuracy: report.cv_accuracy,
                method,
                min_rows_per_class: state.config.rf_min_rows_per_class,
            })
            .into_response()
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "failure forest training failed");
            ErrorReport::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal inference error",
            )
            .into_response()
        }
    }
}
