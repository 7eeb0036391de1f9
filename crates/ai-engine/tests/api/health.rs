//! `/`, `/ping`, `/health`, `/health/ready`, `/metrics` and the FastAPI error shape.

use serde_json::Value;

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn root_ping_health_and_ready() {
    let app = spawn_app_with(&[]).await;
    let root: Value = app.get("/").await.json().await.unwrap();
    assert_eq!(root["service"], "Aegis AI Engine");
    assert!(root["timestamp"].as_str().unwrap().ends_with('Z'));
    let ping: Value = app.get("/ping").await.json().await.unwrap();
    assert_eq!(ping["status"], "ok");
    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["database_connected"], true);
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

#[tokio::test]
async fn metrics_expose_every_ai_family_before_first_use() {
    let app = spawn_app_with(&[]).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    for family in [
        "ai_predictions_total",
        "ai_inference_duration_seconds",
        "ai_anomalies_detected_total",
        "ai_failures_detected_total",
        "ai_model_confidence_score",
        "http_requests_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
}

#[tokio::test]
async fn unknown_paths_get_fastapi_bodies() {
    let app = spawn_app_with(&[]).await;
    let res = app.get("/nope").await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"detail": "Not Found"}));
    let res = app
        .client
        .delete(format!("{}/ping", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"detail": "Method Not Allowed"}));
}

#[tokio::test]
async fn cors_is_off_by_default_and_exact_when_configured() {
    let preflight = |app: &crate::helpers::TestApp, origin: &str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/v1/detect-anomaly", app.address),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let closed = spawn_app_with(&[]).await;
    let res = preflight(&closed, "http://dashboard.local").await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let open = spawn_app_with(&[("CORS_ALLOWED_ORIGINS", "http://dashboard.local")]).await;
    let res = preflight(&open, "http://dashboard.local").await.unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://dashboard.local"
    );
    let res = preflight(&open, "http://evil.local").await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = open.get("/ping").await;
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
}
