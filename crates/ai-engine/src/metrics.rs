//! The ai-engine's metric families, all registered at start-up.

use aegis_common::metrics::{Metrics, MetricsError};
use prometheus::{HistogramVec, IntCounterVec, IntGauge};

/// Handles to the `ai_*` families.
#[derive(Debug, Clone)]
pub struct AiMetrics {
    /// `ai_predictions_total{model_type,status}`.
    pub predictions: IntCounterVec,
    /// `ai_inference_duration_seconds{model_type}`.
    pub inference_duration: HistogramVec,
    /// `ai_anomalies_detected_total{severity}`.
    pub anomalies_detected: IntCounterVec,
    /// `ai_failures_detected_total{failure_type}`.
    pub failures_detected: IntCounterVec,
    /// `ai_model_confidence_score{model_type}`.
    pub confidence: HistogramVec,
    /// `ai_features_processed_total{feature_type}`.
    pub features_processed: IntCounterVec,
    /// `ai_preprocessing_duration_seconds{pipeline_stage}`.
    pub preprocessing_duration: HistogramVec,
    /// `ai_model_training_duration_seconds{model_type}`.
    pub training_duration: HistogramVec,
    /// `ai_training_samples_total{model_type}`.
    pub training_samples: IntCounterVec,
    /// `ai_active_models`.
    pub active_models: IntGauge,
    /// `ai_watcher_leader`: 1 while this replica's Kubernetes watcher holds the lease.
    pub watcher_leader: IntGauge,
    /// `ai_watcher_signals_total{failure,result}`: the watcher's reports, by failure kind and
    /// whether the backend accepted them.
    pub watcher_signals: IntCounterVec,
    /// `ai_series_routing_total{result}`: anomaly requests for a series another replica owns,
    /// `forwarded` to it or answered here as a `fallback` (the owner was unreachable).
    pub series_routing: IntCounterVec,
    /// `ai_anomaly_series`: anomaly series held in memory.
    pub anomaly_series: IntGauge,
}

impl AiMetrics {
    /// Registers every family in `metrics`.
    pub fn register(m: &Metrics) -> Result<Self, MetricsError> {
        Ok(Self {
            predictions: m.counter_vec(
                "ai_predictions_total",
                "Inferences by model type and status",
                &["model_type", "status"],
            )?,
            inference_duration: m.histogram_vec(
                "ai_inference_duration_seconds",
                "Inference wall time",
                &["model_type"],
                &[0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0],
            )?,
            anomalies_detected: m.counter_vec(
                "ai_anomalies_detected_total",
                "Anomalies detected by severity",
                &["severity"],
            )?,
            failures_detected: m.counter_vec(
                "ai_failures_detected_total",
                "Failure patterns detected by type",
                &["failure_type"],
            )?,
            confidence: m.histogram_vec(
                "ai_model_confidence_score",
                "Confidence of successful inferences",
                &["model_type"],
                &[0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99],
            )?,
            features_processed: m.counter_vec(
                "ai_features_processed_total",
                "Features computed by kind",
                &["feature_type"],
            )?,
            preprocessing_duration: m.histogram_vec(
                "ai_preprocessing_duration_seconds",
                "Preprocessing time per stage",
                &["pipeline_stage"],
                &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
            )?,
            training_duration: m.histogram_vec(
                "ai_model_training_duration_seconds",
                "Forest fit time",
                &["model_type"],
                &[1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0],
            )?,
            training_samples: m.counter_vec(
                "ai_training_samples_total",
                "Rows used for fitting",
                &["model_type"],
            )?,
            active_models: m.int_gauge("ai_active_models", "Trained forests in memory")?,
            watcher_leader: m.int_gauge(
                "ai_watcher_leader",
                "1 while this replica's Kubernetes watcher holds the lease",
            )?,
            watcher_signals: m.counter_vec(
                "ai_watcher_signals_total",
                "Kubernetes failures reported, by failure kind and result (accepted, rejected)",
                &["failure", "result"],
            )?,
            series_routing: m.counter_vec(
                "ai_series_routing_total",
                "Anomaly requests for a series another replica owns: forwarded, or answered here as a fallback",
                &["result"],
            )?,
            anomaly_series: m.int_gauge(
                "ai_anomaly_series",
                "Anomaly series held in memory (each a workload and a metric signature)",
            )?,
        })
    }
}
