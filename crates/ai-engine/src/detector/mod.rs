//! Pure numeric detection code: features, isolation forest, random forest and the rule tables.
//! No HTTP types, no I/O, no storage: the service maps its DTOs into
//! [`features::MetricPoint`] / [`features::LogEntry`], keeps the baselines it persists, and calls
//! the functions here.
//!
//! Both forests follow scikit-learn's semantics, store their trees as flat
//! arrays, are seeded (ChaCha8, one stream per tree, so results do not depend on the thread
//! count), implement linfa's `Fit`/`Predict`, and serialise with serde.

pub mod anomaly;
pub mod failure;
pub mod features;
pub mod isolation_forest;
pub mod random_forest;
pub mod temporal;

pub use anomaly::{
    AnomalyConfig, AnomalyDetector, AnomalyMethod, AnomalyOutcome, Detected, Observation,
    RemediationAction, SeriesState, Severity, SeverityFromScore, TrainedForest, TrainingJob,
    series_key,
};
pub use failure::{
    FailureClass, FailureDetails, FailureMethod, FailureOutcome, heuristic_failure, trained_failure,
};
pub use features::{FeatureSet, LogEntry, MetricPoint, MetricType, RF_FEATURE_NAMES};
pub use isolation_forest::{Contamination, IsolationForest, IsolationForestParams};
pub use random_forest::{ClassWeight, MaxFeatures, RandomForest, RandomForestParams};

/// Errors of fitting or using a detector model.
#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    /// A hyper-parameter is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The training set is too small for the model.
    #[error("not enough samples: need at least {needed}, got {got}")]
    NotEnoughSamples {
        /// Minimum number of rows.
        needed: usize,
        /// Rows provided.
        got: usize,
    },
    /// Input shape does not match the model or the targets.
    #[error("shape mismatch: expected {expected} {what}, got {got}")]
    ShapeMismatch {
        /// What was measured (columns, rows, targets).
        what: &'static str,
        /// Expected count.
        expected: usize,
        /// Actual count.
        got: usize,
    },
    /// The input contains NaN or an infinity.
    #[error("input contains non-finite values")]
    NonFinite,
    /// A deserialised model is internally inconsistent.
    #[error("corrupt model: {0}")]
    CorruptModel(String),
    /// An error reported by linfa.
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}
