//! Health, readiness and metrics.

use std::net::SocketAddr;

use aegis_test_support::FaultProxy;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_ping_and_ready() {
    let app = spawn_app().await;
    let v: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["service"], "aegis-executor");
    assert!(v["uptime"].as_f64().unwrap() >= 0.0);
    let v: Value = app.get("/health/ping").await.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    let res = app.get("/health/ready").await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v,
        serde_json::json!({"status":"ready","checks":{"database":"up","kubernetes":"up"}})
    );
}

#[tokio::test]
async fn ready_is_503_when_the_database_is_down() {
    let pg: SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let proxy = FaultProxy::start(pg).await.unwrap();
    let db = aegis_test_support::fresh_database("executor").await;
    let url = db.url.replace("127.0.0.1:5432", &proxy.addr().to_string());
    let app = spawn_app_with(&[("DATABASE_URL", &url)]).await;
    assert_eq!(app.get("/health/ready").await.status(), 200);
    proxy.cut();
    let res = app.get("/health/ready").await;
    assert_eq!(res.status(), 503);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["checks"]["database"], "down");
    assert_eq!(app.get("/health/ping").await.status(), 200);
    proxy.restore();
}

#[tokio::test]
async fn every_executor_metric_family_is_registered_at_start_up() {
    let app = spawn_app().await;
    let text = app.metrics().await;
    for family in [
        "executor_actions_total",
        "executor_action_duration_seconds",
        "executor_pending_actions",
        "executor_pod_restarts_total",
        "executor_scaling_operations_total",
        "executor_rollbacks_total",
        "executor_policy_checks_total",
        "executor_policy_check_duration_seconds",
        "executor_audit_logs_created_total",
        "executor_audit_log_size_bytes",
        "executor_rate_limit_hits_total",
        "executor_k8s_api_calls_total",
        "executor_k8s_api_duration_seconds",
        "executor_errors_total",
        "executor_dry_runs_total",
        "executor_loki_push_failures_total",
        "executor_loki_outbox_backlog",
        "http_requests_total",
        "http_request_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
}

#[tokio::test]
async fn unknown_routes_get_the_nest_body() {
    let app = spawn_app().await;
    let res = app.get("/nope").await;
    assert_eq!(res.status(), 404);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v,
        serde_json::json!({"statusCode":404,"message":"Cannot GET /nope","error":"Not Found"})
    );
}

#[tokio::test]
async fn healthcheck_flag_succeeds_against_a_running_executor() {
    let app = spawn_app().await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_aegis-executor"))
            .arg("--healthcheck")
            .env_clear()
            .env("PORT", port)
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
}
