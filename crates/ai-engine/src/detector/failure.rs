//! Failure-pattern detection: the class table, the
//! normative heuristic, the trained-path rules and helpers to train the
//! multi-class forest on the fixed 55-feature vector.

use std::collections::BTreeMap;
use std::fmt;

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::DetectorError;
use super::anomaly::{RemediationAction, Severity, SeverityFromScore as _};
use super::features::{FeatureSet, RF_FEATURE_COUNT, RF_FEATURE_NAMES, rf_feature_vector};
use super::random_forest::{RandomForest, RandomForestParams, argmax};

/// `RF_MIN_ROWS_PER_CLASS` default.
pub const RF_MIN_ROWS_PER_CLASS: usize = 20;

/// The `failure_classes` table: `none` = 0, then the types in the order names them.
/// The id is `training_data.label` and the random forest's class index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// 0: no failure.
    None = 0,
    /// 1: `high_error_rate`.
    HighErrorRate = 1,
    /// 2: `connection_timeout`.
    ConnectionTimeout = 2,
    /// 3: `service_down`.
    ServiceDown = 3,
    /// 4: `unhandled_exception`.
    UnhandledException = 4,
    /// 5: `unknown`.
    Unknown = 5,
    /// 6: `high_latency`.
    HighLatency = 6,
    /// 7: `memory_leak`.
    MemoryLeak = 7,
}

impl FailureClass {
    /// Number of classes (columns of the forest's `predict_proba`).
    pub const COUNT: usize = 8;

    /// All classes by id.
    pub const ALL: [Self; Self::COUNT] = [
        Self::None,
        Self::HighErrorRate,
        Self::ConnectionTimeout,
        Self::ServiceDown,
        Self::UnhandledException,
        Self::Unknown,
        Self::HighLatency,
        Self::MemoryLeak,
    ];

    /// The class id (`failure_classes.id`).
    pub const fn id(self) -> usize {
        self as usize
    }

    /// The class of an id.
    pub fn from_id(id: usize) -> Option<Self> {
        Self::ALL.get(id).copied()
    }

    /// `failure_classes.name` / the wire `failure_type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::HighErrorRate => "high_error_rate",
            Self::ConnectionTimeout => "connection_timeout",
            Self::ServiceDown => "service_down",
            Self::UnhandledException => "unhandled_exception",
            Self::Unknown => "unknown",
            Self::HighLatency => "high_latency",
            Self::MemoryLeak => "memory_leak",
        }
    }

    /// Parses a class name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which method answered (`details.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMethod {
    /// .
    Heuristic,
    /// with the trained forest.
    RandomForest,
}

/// The `details` object; absent keys are not serialised (an all-`None` value is `{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailureDetails {
    /// `"No features extracted"` (row 0 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `true` for heuristic rules 1–2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heuristic: Option<bool>,
    /// The log `error_rate` (heuristic rule 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Trained path: the largest class probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Trained path: probability of any failure, `1 − P(none)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction_probability: Option<f64>,
    /// Trained path: the forest's importances by feature name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_importance: Option<BTreeMap<String, f64>>,
}

/// Everything the service needs for a failure response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureOutcome {
    /// `failure_detected`
    pub failure_detected: bool,
    /// `failure_type` (`null` when nothing is detected)
    pub failure_type: Option<FailureClass>,
    /// `severity`
    pub severity: Severity,
    /// `recommended_actions`
    pub recommended_actions: Vec<RemediationAction>,
    /// `confidence`
    pub confidence: f64,
    /// `root_cause`
    pub root_cause: Option<String>,
    /// `affected_services`
    pub affected_services: Vec<String>,
    /// `details` (without `method`, which the service adds from [`Self::method`])
    pub details: FailureDetails,
    /// Which method answered.
    pub method: FailureMethod,
}

impl FailureOutcome {
    fn quiet(details: FailureDetails, method: FailureMethod, confidence: f64) -> Self {
        Self {
            failure_detected: false,
            failure_type: None,
            severity: Severity::Low,
            recommended_actions: vec![RemediationAction::NoAction],
            confidence,
            root_cause: None,
            affected_services: Vec::new(),
            details,
            method,
        }
    }

    /// The answer when there are no features at all.
    pub fn no_features() -> Self {
        Self::quiet(
            FailureDetails {
                error: Some("No features extracted".into()),
                ..FailureDetails::default()
            },
            FailureMethod::Heuristic,
            0.0,
        )
    }
}

/// `P` of the root-cause messages: `error_rate × 100` with two decimals.
pub fn percent(error_rate: f64) -> String {
    format!("{:.2}", error_rate * 100.0)
}

/// (normative) on the combined feature set. Only the **log** features `error_rate`,
/// `error_count` and `keyword_connection` are read. `error_services` is
/// [`super::features::error_services`] over the same logs.
pub fn heuristic_failure(features: &FeatureSet, error_services: Vec<String>) -> FailureOutcome {
    if features.is_empty() {
        return FailureOutcome::no_features();
    }
    let get = |name: &str| features.get(name).unwrap_or(0.0);
    let (rate, count, connection) = (
        get("error_rate"),
        get("error_count"),
        get("keyword_connection"),
    );
    if rate > 0.2 || count > 50.0 {
        FailureOutcome {
            failure_detected: true,
            failure_type: Some(FailureClass::HighErrorRate),
            severity: Severity::High,
            recommended_actions: vec![RemediationAction::RestartPod, RemediationAction::AlertAdmin],
            confidence: 0.8,
            root_cause: Some(format!("High error rate detected: {}%", percent(rate))),
            affected_services: error_services,
            details: FailureDetails {
                heuristic: Some(true),
                error_rate: Some(rate),
                ..FailureDetails::default()
            },
            method: FailureMethod::Heuristic,
        }
    } else if connection > 10.0 {
        FailureOutcome {
            failure_detected: true,
            failure_type: Some(FailureClass::ConnectionTimeout),
            severity: Severity::Medium,
            recommended_actions: vec![RemediationAction::RestartPod],
            confidence: 0.7,
            root_cause: Some("Multiple connection timeout errors detected".into()),
            affected_services: error_services,
            details: FailureDetails {
                heuristic: Some(true),
                ..FailureDetails::default()
            },
            method: FailureMethod::Heuristic,
        }
    } else {
        FailureOutcome::quiet(FailureDetails::default(), FailureMethod::Heuristic, 0.0)
    }
}

/// `failure_type` rule for a binary failure model (kept for reference; the multi-class
/// forest names the type itself).
pub fn rule_failure_type(features: &FeatureSet) -> FailureClass {
    let get = |name: &str| features.get(name).unwrap_or(0.0);
    if features.is_empty() {
        FailureClass::Unknown
    } else if get("error_rate") > 0.3 {
        FailureClass::ServiceDown
    } else if get("keyword_timeout") > 5.0 {
        FailureClass::ConnectionTimeout
    } else if get("keyword_exception") > 10.0 {
        FailureClass::UnhandledException
    } else {
        FailureClass::Unknown
    }
}

/// actions for a failure type, with `alert_admin` appended for high/critical severity.
pub fn failure_actions(class: FailureClass, severity: Severity) -> Vec<RemediationAction> {
    use RemediationAction::{AlertAdmin, RestartPod, ScaleUp, ThrottleApi};
    let mut actions = match class {
        FailureClass::ServiceDown | FailureClass::MemoryLeak => vec![RestartPod, AlertAdmin],
        FailureClass::HighLatency => vec![ScaleUp, ThrottleApi],
        FailureClass::ConnectionTimeout => vec![RestartPod, ScaleUp],
        _ => vec![AlertAdmin],
    };
    if severity >= Severity::High && !actions.contains(&AlertAdmin) {
        actions.push(AlertAdmin);
    }
    actions
}

/// `root_cause` from the log features.
pub fn root_cause(features: &FeatureSet) -> String {
    if features.is_empty() {
        return "Unable to determine root cause".into();
    }
    let get = |name: &str| features.get(name).unwrap_or(0.0);
    let mut causes = Vec::new();
    if get("error_rate") > 0.2 {
        causes.push(format!("High error rate ({}%)", percent(get("error_rate"))));
    }
    if get("keyword_timeout") > 5.0 {
        causes.push("Multiple timeout errors".to_owned());
    }
    if get("keyword_connection") > 5.0 {
        causes.push("Connection failures".to_owned());
    }
    if causes.is_empty() {
        "Anomalous behavior detected".into()
    } else {
        causes.join(" and ")
    }
}

/// with the multi-class forest: the predicted class is the arg-max of the
/// forest's probabilities over [`rf_feature_vector`]; `confidence` is that probability.
/// Differences from the binary reference, by design: `failure_type` is the predicted class
/// itself, and `affected_services` is derived from the error logs
/// instead of the hard-coded pair.
pub fn trained_failure(
    forest: &RandomForest,
    features: &FeatureSet,
    error_services: Vec<String>,
) -> Result<FailureOutcome, DetectorError> {
    if features.is_empty() {
        return Ok(FailureOutcome::no_features());
    }
    let vector = rf_feature_vector(features);
    let proba = forest.predict_proba_row(&vector)?;
    let class = argmax(proba.iter());
    let confidence = proba.get(class).copied().unwrap_or(0.0);
    let p_none = proba.first().copied().unwrap_or(0.0);
    let importance = RF_FEATURE_NAMES
        .iter()
        .zip(forest.feature_importances())
        .map(|(n, v)| ((*n).to_owned(), *v))
        .collect();
    let details = FailureDetails {
        confidence: Some(confidence),
        prediction_probability: Some(if proba.len() > 1 {
            1.0 - p_none
        } else {
            confidence
        }),
        feature_importance: Some(importance),
        ..FailureDetails::default()
    };
    let Some(failure) = FailureClass::from_id(class).filter(|c| *c != FailureClass::None) else {
        return Ok(FailureOutcome::quiet(
            details,
            FailureMethod::RandomForest,
            confidence,
        ));
    };
    let severity = Severity::from_score(confidence);
    Ok(FailureOutcome {
        failure_detected: true,
        failure_type: Some(failure),
        severity,
        recommended_actions: failure_actions(failure, severity),
        confidence,
        root_cause: Some(root_cause(features)),
        affected_services: error_services,
        details,
        method: FailureMethod::RandomForest,
    })
}

/// Decision 2's gate: the forest may answer once at least two classes are labelled and every
/// labelled class has `min_rows_per_class` rows (`RF_MIN_ROWS_PER_CLASS`).
pub fn enough_training_rows(labels: &[FailureClass], min_rows_per_class: usize) -> bool {
    let mut counts = [0usize; FailureClass::COUNT];
    for l in labels {
        counts[l.id()] += 1;
    }
    let present: Vec<usize> = counts.into_iter().filter(|c| *c > 0).collect();
    present.len() >= 2 && present.iter().all(|c| *c >= min_rows_per_class)
}

/// Trains the failure forest on labelled feature sets (the `training_data` rows). Use
/// [`RandomForestParams::service_defaults`] for's settings; the class count is forced to
/// [`FailureClass::COUNT`].
pub fn train_failure_forest(
    rows: &[(FeatureSet, FailureClass)],
    params: &RandomForestParams,
) -> Result<RandomForest, DetectorError> {
    let mut x = Array2::zeros((rows.len(), RF_FEATURE_COUNT));
    let mut y = Array1::zeros(rows.len());
    for (i, (features, class)) in rows.iter().enumerate() {
        x.row_mut(i)
            .assign(&ndarray::ArrayView1::from(&rf_feature_vector(features)));
        y[i] = class.id();
    }
    params
        .clone()
        .n_classes(FailureClass::COUNT)
        .fit_array(x.view(), y.view())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(error_rate: f64, error_count: f64, connection: f64) -> FeatureSet {
        let mut f = FeatureSet::new();
        f.push("error_count", error_count);
        f.push("error_rate", error_rate);
        f.push("keyword_connection", connection);
        f
    }

    #[test]
    fn class_table_is_none_then_section_6_5_order() {
        let names: Vec<_> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "none",
                "high_error_rate",
                "connection_timeout",
                "service_down",
                "unhandled_exception",
                "unknown",
                "high_latency",
                "memory_leak"
            ]
        );
        for (i, c) in FailureClass::ALL.iter().enumerate() {
            assert_eq!(c.id(), i);
            assert_eq!(FailureClass::parse(c.as_str()), Some(*c));
        }
    }

    #[test]
    fn high_error_rate() {
        let out = heuristic_failure(&logs(1.0, 2.0, 1.0), vec!["api-service".into()]);
        assert!(out.failure_detected);
        assert_eq!(out.failure_type, Some(FailureClass::HighErrorRate));
        assert_eq!(
            out.root_cause.as_deref(),
            Some("High error rate detected: 100.00%")
        );
        assert_eq!(out.confidence, 0.8);
        assert_eq!(
            serde_json::to_value(&out.details).unwrap(),
            serde_json::json!({"heuristic": true, "error_rate": 1.0})
        );
    }

    #[test]
    fn boundaries() {
        let out = heuristic_failure(&logs(0.2, 1.0, 0.0), vec![]);
        assert!(!out.failure_detected);
        assert_eq!(out.recommended_actions, [RemediationAction::NoAction]);
        assert_eq!(
            serde_json::to_value(&out.details).unwrap(),
            serde_json::json!({})
        );
        let out = heuristic_failure(&logs(51.0 / 351.0, 51.0, 0.0), vec![]);
        assert_eq!(
            out.root_cause.as_deref(),
            Some("High error rate detected: 14.53%")
        );
        assert_eq!(out.details.error_rate, Some(0.1452991452991453));
    }

    #[test]
    fn connection_rule_and_empty_features() {
        let out = heuristic_failure(&logs(0.0991, 11.0, 11.0), vec!["api-service".into()]);
        assert_eq!(out.failure_type, Some(FailureClass::ConnectionTimeout));
        assert_eq!(out.severity, Severity::Medium);
        assert_eq!(out.recommended_actions, [RemediationAction::RestartPod]);
        assert_eq!(out.affected_services, ["api-service"]);
        let out = heuristic_failure(&FeatureSet::new(), vec![]);
        assert_eq!(out.details.error.as_deref(), Some("No features extracted"));
        // Only metric features: a metric error_rate never counts.
        let mut metric = FeatureSet::new();
        metric.push("error_rate_mean", 90.0);
        assert!(!heuristic_failure(&metric, vec![]).failure_detected);
    }

    #[test]
    fn section_6_3_rules() {
        let mut f = logs(0.25, 3.0, 6.0);
        f.push("keyword_timeout", 6.0);
        assert_eq!(
            root_cause(&f),
            "High error rate (25.00%) and Multiple timeout errors and Connection failures"
        );
        assert_eq!(rule_failure_type(&f), FailureClass::ConnectionTimeout);
        assert_eq!(
            root_cause(&logs(0.0, 0.0, 0.0)),
            "Anomalous behavior detected"
        );
        assert_eq!(
            root_cause(&FeatureSet::new()),
            "Unable to determine root cause"
        );
        use RemediationAction::*;
        assert_eq!(
            failure_actions(FailureClass::ConnectionTimeout, Severity::Critical),
            [RestartPod, ScaleUp, AlertAdmin]
        );
        assert_eq!(
            failure_actions(FailureClass::Unknown, Severity::Low),
            [AlertAdmin]
        );
        assert_eq!(
            failure_actions(FailureClass::HighLatency, Severity::Medium),
            [ScaleUp, ThrottleApi]
        );
    }

    #[test]
    fn trained_path_on_a_small_forest() {
        let mut rows = Vec::new();
        for i in 0..40 {
            let bad = i % 2 == 0;
            let mut f = logs(if bad { 0.9 } else { 0.01 }, i as f64, 0.0);
            f.push("total_logs", 100.0);
            let label = if bad {
                FailureClass::ServiceDown
            } else {
                FailureClass::None
            };
            rows.push((f, label));
        }
        let labels: Vec<_> = rows.iter().map(|r| r.1).collect();
        assert!(enough_training_rows(&labels, 20));
        assert!(!enough_training_rows(&labels, 21));
        let forest = train_failure_forest(
            &rows,
            &RandomForestParams::service_defaults().n_estimators(20),
        )
        .unwrap();
        assert_eq!(forest.n_classes(), FailureClass::COUNT);
        let out = trained_failure(&forest, &logs(0.95, 7.0, 0.0), vec!["db".into()]).unwrap();
        assert!(out.failure_detected);
        assert_eq!(out.failure_type, Some(FailureClass::ServiceDown));
        assert_eq!(out.method, FailureMethod::RandomForest);
        assert!(
            out.recommended_actions
                .contains(&RemediationAction::AlertAdmin)
        );
        let imp = out.details.feature_importance.unwrap();
        assert_eq!(imp.len(), 55);
        assert!(imp["error_rate"] > 0.5);
        let quiet = trained_failure(&forest, &logs(0.0, 3.0, 0.0), vec![]).unwrap();
        assert!(!quiet.failure_detected);
        assert_eq!(quiet.recommended_actions, [RemediationAction::NoAction]);
    }
}
