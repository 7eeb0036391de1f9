#!/usr/bin/env python3
"""Writes the provisionable Grafana dashboards into dashboards/*.json.

Raw dashboard JSON (no API envelope): top-level uid/title, schemaVersion 39, timeseries/stat/logs
panels, datasources referenced by the fixed uids of provisioning/datasources/datasources.yml.
Re-run after editing: python3 observability/grafana/generate-dashboards.py
"""
import json
import pathlib

PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
OUT = pathlib.Path(__file__).resolve().parent / "dashboards"


def ts(title, exprs, x, y, w=12, h=8, unit="short", kind="timeseries"):
    targets = []
    for i, e in enumerate(exprs):
        expr, legend = e if isinstance(e, tuple) else (e, "")
        targets.append({"datasource": PROM, "refId": chr(65 + i), "expr": expr,
                        "legendFormat": legend or "__auto"})
    return {"type": kind, "title": title, "datasource": PROM, "targets": targets,
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
            if kind == "timeseries" else {"reduceOptions": {"calcs": ["lastNotNull"]}}}


def logs(title, expr, x, y, w=24, h=10):
    return {"type": "logs", "title": title, "datasource": LOKI,
            "targets": [{"datasource": LOKI, "refId": "A", "expr": expr}],
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "options": {"showTime": True, "wrapLogMessage": True, "sortOrder": "Descending"}}


def dashboard(uid, title, tags, panels):
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {"uid": uid, "title": title, "tags": ["aegis"] + tags, "timezone": "browser",
            "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
            "time": {"from": "now-1h", "to": "now"}, "templating": {"list": []},
            "annotations": {"list": []}, "panels": panels}


R = "[5m]"
DASHBOARDS = [
    dashboard("aegis-overview", "Aegis Platform Overview", ["overview"], [
        ts("API Request Rate", [("sum by (service) (rate(http_requests_total" + R + "))", "{{service}}")], 0, 0, unit="reqps"),
        ts("API Error Rate", [("sum by (service) (rate(http_requests_total{status=~\"5..\"}" + R + ")) / sum by (service) (rate(http_requests_total" + R + "))", "{{service}}")], 12, 0, unit="percentunit"),
        ts("API Latency (P95)", [("histogram_quantile(0.95, sum by (le, service) (rate(http_request_duration_seconds_bucket" + R + ")))", "{{service}}")], 0, 8, unit="s"),
        ts("Anomalies Detected", [("sum by (severity) (rate(ai_anomalies_detected_total" + R + "))", "{{severity}}")], 12, 8),
        ts("Executor Actions", [("sum by (action_type, status) (rate(executor_actions_total" + R + "))", "{{action_type}} {{status}}")], 0, 16),
        ts("Policy Evaluations", [("sum by (result) (rate(policy_evaluations_total" + R + "))", "{{result}}")], 12, 16),
        ts("CPU Usage", [("100 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}" + R + ")) * 100", "{{instance}}")], 0, 24, 8, unit="percent"),
        ts("Memory Usage", [("(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) / node_memory_MemTotal_bytes * 100", "{{instance}}")], 8, 24, 8, unit="percent"),
        ts("Active Services", ["count(up{job=~\"aegis-.*\"} == 1)"], 16, 24, 8, kind="stat"),
    ]),
    dashboard("aegis-api", "Aegis API Performance", ["api"], [
        ts("Request rate by path", [("sum by (path) (rate(http_requests_total{service=\"backend\"}" + R + "))", "{{path}}")], 0, 0, unit="reqps"),
        ts("Error rate by path", [("sum by (path) (rate(http_errors_total{service=\"backend\"}" + R + "))", "{{path}}")], 12, 0, unit="reqps"),
        ts("Latency p50 / p95 / p99", [
            ("histogram_quantile(0.50, sum by (le) (rate(http_request_duration_seconds_bucket{service=\"backend\"}" + R + ")))", "p50"),
            ("histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service=\"backend\"}" + R + ")))", "p95"),
            ("histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service=\"backend\"}" + R + ")))", "p99"),
        ], 0, 8, unit="s"),
        ts("Rate-limit hits", [("sum by (endpoint) (rate(rate_limit_exceeded_total" + R + "))", "{{endpoint}}"), ("rate(rate_limit_backend_errors_total" + R + ")", "fail-open (Redis down)")], 12, 8),
        ts("Auth attempts", [("sum by (type, status) (rate(auth_attempts_total" + R + "))", "{{type}} {{status}}")], 0, 16),
        ts("Socket.IO connections", [("sum(websocket_connections_active)", "connections")], 12, 16),
    ]),
    dashboard("aegis-policy", "Aegis Policy Decisions", ["policy"], [
        ts("Evaluations by type and result", [("sum by (type, result) (rate(policy_evaluations_total" + R + "))", "{{type}} {{result}}")], 0, 0),
        ts("Deny ratio", [("sum(rate(policy_evaluations_total{result=\"deny\"}" + R + ")) / sum(rate(policy_evaluations_total" + R + "))", "deny ratio")], 12, 0, unit="percentunit"),
        ts("Evaluation latency p95 by type", [("histogram_quantile(0.95, sum by (le, type) (rate(policy_evaluation_duration_seconds_bucket" + R + ")))", "{{type}}")], 0, 8, unit="s"),
        ts("Cache hit ratio", [("sum(rate(policy_evaluations_total{cached=\"true\"}" + R + ")) / sum(rate(policy_evaluations_total" + R + "))", "cached")], 12, 8, unit="percentunit"),
    ]),
    dashboard("aegis-ai-engine", "Aegis AI Detections", ["ai-engine"], [
        ts("Inference latency p95", [("histogram_quantile(0.95, sum by (le, model_type) (rate(ai_inference_duration_seconds_bucket" + R + ")))", "{{model_type}}")], 0, 0, unit="s"),
        ts("Predictions by status", [("sum by (model_type, status) (rate(ai_predictions_total" + R + "))", "{{model_type}} {{status}}")], 12, 0),
        ts("Anomalies by severity", [("sum by (severity) (increase(ai_anomalies_detected_total" + R + "))", "{{severity}}")], 0, 8),
        ts("Failures by type", [("sum by (failure_type) (increase(ai_failures_detected_total" + R + "))", "{{failure_type}}")], 12, 8),
        ts("Confidence p50", [("histogram_quantile(0.5, sum by (le, model_type) (rate(ai_model_confidence_score_bucket" + R + ")))", "{{model_type}}")], 0, 16, unit="percentunit"),
        ts("Active models", [("max(ai_active_models)", "models")], 12, 16, kind="stat"),
        ts("Features processed", [("sum by (feature_type) (rate(ai_features_processed_total" + R + "))", "{{feature_type}}")], 0, 24),
        ts("Training duration p95", [("histogram_quantile(0.95, sum by (le, model_type) (rate(ai_model_training_duration_seconds_bucket[1h])))", "{{model_type}}")], 12, 24, unit="s"),
    ]),
    dashboard("aegis-executor", "Aegis Executor Actions and Audit", ["executor", "audit"], [
        ts("Actions by type and status", [("sum by (action_type, status) (rate(executor_actions_total" + R + "))", "{{action_type}} {{status}}")], 0, 0),
        ts("Action duration p95", [("histogram_quantile(0.95, sum by (le, action_type) (rate(executor_action_duration_seconds_bucket" + R + ")))", "{{action_type}}")], 12, 0, unit="s"),
        ts("Failures by namespace", [("sum by (namespace) (increase(executor_actions_total{status=\"failed\"}" + R + "))", "{{namespace}}")], 0, 8),
        ts("Rate-limit hits", [("sum by (action_type, namespace) (rate(executor_rate_limit_hits_total" + R + "))", "{{action_type}} {{namespace}}")], 12, 8),
        ts("Kubernetes API errors", [("sum by (operation, resource_type) (rate(executor_k8s_api_calls_total{status=\"error\"}" + R + "))", "{{operation}} {{resource_type}}")], 0, 16),
        ts("Pending actions", [("sum(executor_pending_actions)", "pending")], 12, 16, kind="stat"),
        ts("Audit rows and Loki shipping", [
            ("sum(rate(executor_audit_logs_created_total" + R + "))", "audit rows/s"),
            ("sum(rate(executor_loki_lines_shipped_total" + R + "))", "lines shipped/s"),
            ("sum(rate(executor_loki_push_failures_total" + R + "))", "push failures/s"),
        ], 0, 24),
        ts("Errors by type", [("sum by (error_type) (rate(executor_errors_total" + R + "))", "{{error_type}}")], 12, 24),
        logs("Audit trail (Loki)", "{job=\"aegis-executor\"} | json", 0, 32),
    ]),
    dashboard("aegis-remediation", "Aegis Remediation Loop", ["remediation"], [
        ts("Signals: anomalies by severity", [("sum by (severity) (increase(ai_anomalies_detected_total" + R + "))", "{{severity}}")], 0, 0),
        ts("Signals: firing alerts", [("sum by (alertname) (ALERTS{alertstate=\"firing\"})", "{{alertname}}")], 12, 0),
        ts("Self-healing policy decisions", [("sum by (result) (increase(policy_evaluations_total{type=\"self_healing\"}" + R + "))", "{{result}}")], 0, 8),
        ts("Executor outcomes", [("sum by (action_type, status) (increase(executor_actions_total" + R + "))", "{{action_type}} {{status}}")], 12, 8),
        ts("Scaling operations", [("sum by (namespace, direction) (increase(executor_scaling_operations_total" + R + "))", "{{namespace}} {{direction}}")], 0, 16),
        ts("Restarts and rollbacks", [
            ("sum by (namespace) (increase(executor_pod_restarts_total" + R + "))", "restarts {{namespace}}"),
            ("sum by (namespace) (increase(executor_rollbacks_total" + R + "))", "rollbacks {{namespace}}"),
        ], 12, 16),
        logs("Loop timeline (all services)", "{job=~\"aegis-.*\"} | json | level=~\"info|warn|error\"", 0, 24),
    ]),
    dashboard("aegis-infrastructure", "Aegis Infrastructure", ["infrastructure"], [
        ts("CPU usage", [("100 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}" + R + ")) * 100", "{{instance}}")], 0, 0, 8, unit="percent"),
        ts("Memory usage", [("(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) / node_memory_MemTotal_bytes * 100", "{{instance}}")], 8, 0, 8, unit="percent"),
        ts("Root disk free", [("node_filesystem_avail_bytes{mountpoint=\"/\"} / node_filesystem_size_bytes{mountpoint=\"/\"} * 100", "{{instance}}")], 16, 0, 8, unit="percent"),
        ts("PostgreSQL connections", [("sum by (database) (pg_stat_activity_count)", "{{database}}"), ("max by (database) (pg_settings_max_connections)", "max {{database}}")], 0, 8),
        ts("Redis memory", [("redis_memory_used_bytes", "used"), ("redis_memory_max_bytes", "max")], 12, 8, unit="bytes"),
        ts("Redis evictions", [("rate(redis_evicted_keys_total" + R + ")", "evicted/s")], 0, 16),
        ts("Service resident memory", [("process_resident_memory_bytes{job=~\"aegis-.*\"}", "{{service}}")], 12, 16, unit="bytes"),
    ]),
]

if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for d in DASHBOARDS:
        (OUT / f"{d['uid']}.json").write_text(json.dumps(d, indent=2) + "\n")
        print(f"wrote dashboards/{d['uid']}.json")
