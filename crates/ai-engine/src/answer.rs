//! The JSON answers of the detection endpoints, shared by the routes and the Prometheus feed
//! (which records what the endpoint would have answered).

use aegis_common::time::now_rfc3339;
use serde_json::{Map, Value, json};

use crate::detector::AnomalyOutcome;

/// Never emit a non-finite number.
pub(crate) fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// The answer to an anomaly detection, as the endpoint sends it and the feed records it.
pub(crate) fn anomaly_body(o: &AnomalyOutcome) -> Value {
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
    json!({
        "is_anomaly": o.is_anomaly,
        "anomaly_score": finite(o.anomaly_score),
        "severity": o.severity,
        "recommended_action": o.recommended_action,
        "confidence": finite(o.confidence),
        "affected_metrics": o.affected_metrics,
        "details": details,
        "timestamp": now_rfc3339(),
    })
}
