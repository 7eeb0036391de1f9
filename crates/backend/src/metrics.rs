//! The backend's metric families, all registered at start-up.

use aegis_common::metrics::{Metrics, MetricsError};
use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

/// Handles to the backend's own families (the HTTP ones live in [`Metrics`]).
#[derive(Debug, Clone)]
pub struct BackendMetrics {
    /// `policy_evaluations_total{type,result,cached}`.
    pub policy_evaluations: IntCounterVec,
    /// `policy_evaluation_duration_seconds{type}`.
    pub policy_evaluation_duration: HistogramVec,
    /// `rate_limit_exceeded_total{endpoint}`.
    pub rate_limit_exceeded: IntCounterVec,
    /// `rate_limit_backend_errors_total`: fail-open events.
    pub rate_limit_backend_errors: IntCounter,
    /// `auth_attempts_total{type,status}`.
    pub auth_attempts: IntCounterVec,
    /// `websocket_connections_active`.
    pub websocket_connections: IntGauge,
    /// `policy_audit_buffer_depth`: evaluations accepted but not yet in `policy_audit_logs`.
    pub policy_audit_buffer_depth: IntGauge,
    /// `remediation_signals_total{source,deduplicated}`.
    pub remediation_signals: IntCounterVec,
    /// `remediation_decisions_total{outcome}`: how each incident's decision ended.
    pub remediation_decisions: IntCounterVec,
    /// `remediation_actions_total{action,result}`: executor calls of the loop.
    pub remediation_actions: IntCounterVec,
    /// `remediation_verifications_total{result}`: `resolved` or `escalated`.
    pub remediation_verifications: IntCounterVec,
    /// `remediation_loop_duration_seconds{action}`: signal to executor answer.
    pub remediation_loop_duration: HistogramVec,
    /// `remediation_mode{mode}`: 1 for the global mode in force, 0 for the others.
    pub remediation_mode: IntGaugeVec,
    /// `remediation_mode_namespace_overrides{mode}`: namespaces with their own mode, by mode.
    pub remediation_mode_overrides: IntGaugeVec,
    /// `notification_deliveries_total{channel,result}`: attempts by channel type and result
    /// (`delivered`, `retry`, `dead`).
    pub notification_deliveries: IntCounterVec,
    /// `notification_outbox_backlog`: events not yet routed plus deliveries not yet made.
    pub notification_backlog: IntGauge,
}

impl BackendMetrics {
    /// Registers every family in `metrics`.
    pub fn register(metrics: &Metrics) -> Result<Self, MetricsError> {
        Ok(Self {
            policy_evaluations: metrics.counter_vec(
                "policy_evaluations_total",
                "Policy evaluations by type, result and cache use",
                &["type", "result", "cached"],
            )?,
            policy_evaluation_duration: metrics.histogram_vec(
                "policy_evaluation_duration_seconds",
                "Policy evaluation latency",
                &["type"],
                &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
            )?,
            rate_limit_exceeded: metrics.counter_vec(
                "rate_limit_exceeded_total",
                "Requests refused by a rate limit",
                &["endpoint"],
            )?,
            rate_limit_backend_errors: metrics.counter(
                "rate_limit_backend_errors_total",
                "Rate-limit checks skipped because Redis was unavailable (fail-open)",
            )?,
            auth_attempts: metrics.counter_vec(
                "auth_attempts_total",
                "Authentication attempts by type and outcome",
                &["type", "status"],
            )?,
            websocket_connections: metrics.int_gauge(
                "websocket_connections_active",
                "Connected Socket.IO clients",
            )?,
            policy_audit_buffer_depth: metrics.int_gauge(
                "policy_audit_buffer_depth",
                "Policy evaluations waiting to be written to policy_audit_logs",
            )?,
            remediation_signals: metrics.counter_vec(
                "remediation_signals_total",
                "Remediation signals received, by source and whether they joined an open incident",
                &["source", "deduplicated"],
            )?,
            remediation_decisions: metrics.counter_vec(
                "remediation_decisions_total",
                "Remediation decisions by outcome (executed, dry_run, awaiting_approval, denied, cooldown, capped, escalated, suppressed, failed, recorded)",
                &["outcome"],
            )?,
            remediation_actions: metrics.counter_vec(
                "remediation_actions_total",
                "Executor calls made by the remediation loop, by action type and result",
                &["action", "result"],
            )?,
            remediation_verifications: metrics.counter_vec(
                "remediation_verifications_total",
                "Post-action verifications by result (resolved or escalated)",
                &["result"],
            )?,
            remediation_mode: metrics.int_gauge_vec(
                "remediation_mode",
                "The global remediation mode in force (1) and the others (0)",
                &["mode"],
            )?,
            remediation_mode_overrides: metrics.int_gauge_vec(
                "remediation_mode_namespace_overrides",
                "Namespaces with a remediation mode of their own, by mode",
                &["mode"],
            )?,
            notification_deliveries: metrics.counter_vec(
                "notification_deliveries_total",
                "Notification delivery attempts by channel type and result (delivered, retry, dead)",
                &["channel", "result"],
            )?,
            notification_backlog: metrics.int_gauge(
                "notification_outbox_backlog",
                "Notification events not yet routed plus deliveries not yet made",
            )?,
            remediation_loop_duration: metrics.histogram_vec(
                "remediation_loop_duration_seconds",
                "Time from signal intake to the executor's answer",
                &["action"],
                // Fine around the 20 ms target, so that a p99 read off the buckets is within
                // a few milliseconds of the real one.
                &[
                    0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03, 0.04, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ],
            )?,
        })
    }
}
