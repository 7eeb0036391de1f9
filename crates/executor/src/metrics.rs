//! The executor's metric families, all registered at start-up so that each
//! appears in `/metrics` before its first increment.

use aegis_common::metrics::{Metrics, MetricsError};
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge};

/// Handles to the executor's own families (the HTTP ones live in [`Metrics`]).
#[derive(Debug, Clone)]
pub struct ExecutorMetrics {
    /// `executor_actions_total{action_type,namespace,status}`.
    pub actions: IntCounterVec,
    /// `executor_action_duration_seconds{action_type,namespace}`.
    pub action_duration: HistogramVec,
    /// `executor_pending_actions`.
    pub pending_actions: IntGauge,
    /// `executor_pod_restarts_total{namespace}`.
    pub pod_restarts: IntCounterVec,
    /// `executor_scaling_operations_total{namespace,direction}`.
    pub scaling_operations: IntCounterVec,
    /// `executor_rollbacks_total{namespace}`.
    pub rollbacks: IntCounterVec,
    /// `executor_policy_checks_total{result}`.
    pub policy_checks: IntCounterVec,
    /// `executor_policy_check_duration_seconds` (registered; no policy call is made).
    pub policy_check_duration: Histogram,
    /// `executor_audit_logs_created_total`.
    pub audit_logs_created: IntCounter,
    /// `executor_audit_log_size_bytes`.
    pub audit_log_size: Histogram,
    /// `executor_rate_limit_hits_total{action_type,namespace}`.
    pub rate_limit_hits: IntCounterVec,
    /// `executor_k8s_api_calls_total{operation,resource_type,status}`.
    pub k8s_api_calls: IntCounterVec,
    /// `executor_k8s_api_duration_seconds{operation,resource_type}`.
    pub k8s_api_duration: HistogramVec,
    /// `executor_errors_total{error_type,action_type}`.
    pub errors: IntCounterVec,
    /// `executor_dry_runs_total{action_type}`.
    pub dry_runs: IntCounterVec,
    /// `executor_loki_push_failures_total`.
    pub loki_push_failures: IntCounter,
    /// `executor_loki_outbox_backlog`: lines waiting to be shipped.
    pub loki_outbox_backlog: IntGauge,
    /// `executor_loki_lines_shipped_total`.
    pub loki_lines_shipped: IntCounter,
    /// `executor_audit_chain_head_seq`: the newest `chain_seq` of the audit chain. Watched
    /// from outside the database, it must never go backwards.
    pub audit_chain_head: IntGauge,
}

impl ExecutorMetrics {
    /// Registers every family in `metrics`.
    pub fn register(m: &Metrics) -> Result<Self, MetricsError> {
        let single = |name: &str, help: &str, buckets: &[f64]| -> Result<Histogram, MetricsError> {
            let h = Histogram::with_opts(
                prometheus::HistogramOpts::new(name, help).buckets(buckets.to_vec()),
            )?;
            m.registry().register(Box::new(h.clone()))?;
            Ok(h)
        };
        Ok(Self {
            actions: m.counter_vec(
                "executor_actions_total",
                "Actions by type, namespace and terminal status",
                &["action_type", "namespace", "status"],
            )?,
            action_duration: m.histogram_vec(
                "executor_action_duration_seconds",
                "Action duration from request entry to the terminal audit update",
                &["action_type", "namespace"],
                &[0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0],
            )?,
            pending_actions: m.int_gauge("executor_pending_actions", "In-flight actions")?,
            pod_restarts: m.counter_vec(
                "executor_pod_restarts_total",
                "Completed pod restarts",
                &["namespace"],
            )?,
            scaling_operations: m.counter_vec(
                "executor_scaling_operations_total",
                "Completed scale operations",
                &["namespace", "direction"],
            )?,
            rollbacks: m.counter_vec(
                "executor_rollbacks_total",
                "Completed rollbacks",
                &["namespace"],
            )?,
            policy_checks: m.counter_vec(
                "executor_policy_checks_total",
                "Supplied policy decisions by result",
                &["result"],
            )?,
            policy_check_duration: single(
                "executor_policy_check_duration_seconds",
                "Policy check latency",
                &[0.01, 0.05, 0.1, 0.5, 1.0],
            )?,
            audit_logs_created: m
                .counter("executor_audit_logs_created_total", "Audit rows inserted")?,
            audit_chain_head: m.int_gauge(
                "executor_audit_chain_head_seq",
                "The newest chain_seq of the audit hash chain (must never go backwards)",
            )?,
            audit_log_size: single(
                "executor_audit_log_size_bytes",
                "Size of the serialised audit row",
                &[100.0, 500.0, 1000.0, 5000.0, 10000.0],
            )?,
            rate_limit_hits: m.counter_vec(
                "executor_rate_limit_hits_total",
                "Requests refused by a rate limit (action_type=http for the HTTP throttle)",
                &["action_type", "namespace"],
            )?,
            k8s_api_calls: m.counter_vec(
                "executor_k8s_api_calls_total",
                "Kubernetes API calls",
                &["operation", "resource_type", "status"],
            )?,
            k8s_api_duration: m.histogram_vec(
                "executor_k8s_api_duration_seconds",
                "Kubernetes API call latency",
                &["operation", "resource_type"],
                &[0.1, 0.5, 1.0, 2.0, 5.0, 10.0],
            )?,
            errors: m.counter_vec(
                "executor_errors_total",
                "Errors by type and action",
                &["error_type", "action_type"],
            )?,
            dry_runs: m.counter_vec(
                "executor_dry_runs_total",
                "Dry-run actions",
                &["action_type"],
            )?,
            loki_push_failures: m.counter(
                "executor_loki_push_failures_total",
                "Loki pushes that failed (the lines stay in the outbox and are retried)",
            )?,
            loki_outbox_backlog: m.int_gauge(
                "executor_loki_outbox_backlog",
                "Audit lines waiting in the outbox for Loki",
            )?,
            loki_lines_shipped: m.counter(
                "executor_loki_lines_shipped_total",
                "Audit lines accepted by Loki",
            )?,
        })
    }
}
