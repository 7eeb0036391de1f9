//! The answers of the detection endpoints, shared by the routes and the Prometheus feed
//! (which records what the endpoint would have answered). Each answer is built as the type
//! its OpenAPI schema documents, so the two cannot drift apart.

use aegis_common::contracts::{AnomalyResult, FailureResult, RemediationAction, Severity};
use aegis_common::time::now_rfc3339;
use serde_json::{Map, Value, json};

use crate::detector::{AnomalyOutcome, failure::FailureOutcome};

/// Never emit a non-finite number.
pub(crate) fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// The answer to an anomaly detection.
pub(crate) fn anomaly_result(o: &AnomalyOutcome) -> AnomalyResult {
    let mut details = Map::new();
    details.insert("anomaly_score".into(), json!(finite(o.anomaly_score)));
    details.insert("affected_features".into(), json!(o.affected_features));
    details.insert("model_confidence".into(), json!(finite(o.confidence)));
    if let Some(t) = o.threshold_used {
        details.insert("threshold_used".into(), json!(t));
    }
    details.insert("method".into(), json!(o.method.as_str()));
    if let Some(n) = o.baseline_size {
        details.insert("baseline_size".into(), json!(n));
    }
    if let Some(z) = o.max_abs_z {
        details.insert("max_abs_z".into(), json!(finite(z)));
    }
    AnomalyResult {
        is_anomaly: o.is_anomaly,
        anomaly_score: finite(o.anomaly_score),
        severity: o.severity,
        recommended_action: o.recommended_action,
        confidence: finite(o.confidence),
        affected_metrics: o.affected_metrics.clone(),
        details: Value::Object(details),
        timestamp: now_rfc3339(),
    }
}

/// The answer to an anomaly detection whose window produced no features.
pub(crate) fn no_features() -> AnomalyResult {
    AnomalyResult {
        is_anomaly: false,
        anomaly_score: 0.0,
        severity: Severity::Low,
        recommended_action: RemediationAction::NoAction,
        confidence: 0.0,
        affected_metrics: Vec::new(),
        details: json!({"error": "No features extracted"}),
        timestamp: now_rfc3339(),
    }
}

/// The answer to a failure detection. `details.method` says which method answered, except
/// when nothing could (no features).
pub(crate) fn failure_result(o: &FailureOutcome) -> FailureResult {
    let mut details = serde_json::to_value(&o.details).unwrap_or_else(|_| json!({}));
    if let Some(obj) = details.as_object_mut()
        && o.details.error.is_none()
    {
        obj.insert(
            "method".into(),
            serde_json::to_value(o.method).unwrap_or_default(),
        );
    }
    FailureResult {
        failure_detected: o.failure_detected,
        failure_type: o.failure_type.map(|c| c.as_str().to_owned()),
        severity: o.severity,
        recommended_actions: o.recommended_actions.clone(),
        confidence: finite(o.confidence),
        root_cause: o.root_cause.clone(),
        affected_services: o.affected_services.clone(),
        details,
        timestamp: now_rfc3339(),
    }
}
