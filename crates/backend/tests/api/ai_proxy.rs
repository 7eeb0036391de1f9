//! The AI proxy (`/ai/predict`, `/ai/metrics`, `/ai/predictions`) against a real ai-engine
//! started in-process, plus stub engines for the retry sequences a real one cannot produce on
//! demand (5xx then 200, a 5xx forever).

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use std::time::Duration;

use aegis_common::config::Env;
use aegis_test_support::fresh_database;
use axum::{Router, http::StatusCode, routing::post};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    alerts::auditor,
    auth_support::{assert_error, spawn_with_admin},
    helpers::TestApp,
};

const PW: &str = "Password123!";
pub const ENGINE_KEY: &str = "ai-engine-test-key";

/// A real ai-engine on port 0 with its own database; returns its base URL.
pub async fn spawn_engine() -> String {
    let db = fresh_database("ai").await;
    let mut env = Env::from_pairs([
        ("APP_ENV", "test"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("API_KEY", ENGINE_KEY),
    ]);
    env.set("DATABASE_URL", db.url.clone());
    let config = aegis_ai_engine::config::Config::from_env(&env).expect("ai-engine config");
    let app = aegis_ai_engine::startup::Application::build(config)
        .await
        .expect("ai-engine builds");
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(res) = client.get(format!("{url}/health/ready")).send().await
            && res.status() == 200
        {
            return url;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("ai-engine never became ready");
}

/// A stub engine answering `POST /api/v1/detect-anomaly` with `responses` in turn (the last
/// one repeats); returns its URL and the call counter.
pub async fn spawn_stub(responses: Vec<(u16, Value)>) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let responses = Arc::new(responses);
    let app = Router::new().route(
        "/api/v1/detect-anomaly",
        post(move || {
            let counter = counter.clone();
            let responses = responses.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let (status, body) = responses[n.min(responses.len() - 1)].clone();
                (StatusCode::from_u16(status).unwrap(), axum::Json(body))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

fn request() -> Value {
    json!({"type": "anomaly", "metrics": [
        {"metric_type": "cpu_usage", "value": 0.9, "timestamp": "2024-01-25T14:00:00Z"}
    ]})
}

async fn predict(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.send(Method::POST, "/api/v1/ai/predict", Some(token), Some(body))
        .await
}

async fn rows(
    app: &TestApp,
) -> Vec<(
    String,
    Value,
    Value,
    Option<f64>,
    Option<String>,
    bool,
    Option<String>,
)> {
    sqlx::query_as(
        "SELECT prediction_type, request_payload, response_payload, score, severity, success, \
         error_message FROM prediction_results ORDER BY created_at",
    )
    .fetch_all(&app.pool().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn predictions_go_to_a_real_ai_engine_and_are_stored() {
    let engine = spawn_engine().await;
    let app = spawn_with_admin(&[
        ("AI_ENGINE_URL", engine.as_str()),
        ("AI_ENGINE_API_KEY", ENGINE_KEY),
        ("SERVICE_API_KEYS", "test-key"),
    ])
    .await;
    let u1 = app.signup("u1@example.com", PW).await;

    let res = predict(&app, &u1.access, request()).await;
    assert_eq!(res.status(), 200, "200, not the original's 201");
    let body: Value = res.json().await.unwrap();
    for key in [
        "is_anomaly",
        "anomaly_score",
        "severity",
        "confidence",
        "affected_metrics",
    ] {
        assert!(body.get(key).is_some(), "{key} missing in {body}");
    }

    let failure = json!({"type": "failure",
        "metrics": [{"metric_type": "memory_usage", "value": 97.0, "timestamp": "2024-01-25T14:00:00Z"}],
        "logs": [{"timestamp": "2024-01-25T14:00:00Z", "level": "error", "message": "OOM", "service": "api"}]});
    let res = predict(&app, &u1.access, failure).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("failure_detected").is_some(), "{body}");

    // `failure` without logs goes to anomaly detection and is recorded as `anomaly`.
    let res = predict(&app, &u1.access, json!({"type": "failure", "metrics": []})).await;
    assert_eq!(res.status(), 200);

    // A service key may predict.
    let res = app
        .client
        .post(format!("{}/api/v1/ai/predict", app.address))
        .header("X-API-Key", "test-key")
        .json(&request())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let stored = rows(&app).await;
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[0].0, "anomaly");
    assert_eq!(
        stored[0].1,
        json!({"type": "anomaly", "metricsCount": 1, "logsCount": 0})
    );
    assert!(stored[0].2.get("is_anomaly").is_some(), "response stored");
    assert!(stored[0].3.is_some(), "score stored");
    assert!(stored[0].5);
    assert_eq!(stored[1].0, "failure");
    assert_eq!(
        stored[1].1,
        json!({"type": "failure", "metricsCount": 1, "logsCount": 1})
    );
    assert_eq!(stored[2].0, "anomaly");

    let stats: Value = app
        .get_as("/api/v1/ai/metrics", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats,
        json!({"totalPredictions": 4, "byType": {"anomaly": 3, "failure": 1},
               "successRate": 1.0, "last24h": 4})
    );
    let list: Vec<Value> = app
        .get_as("/api/v1/ai/predictions?limit=2", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    for key in [
        "id",
        "predictionType",
        "score",
        "severity",
        "success",
        "errorMessage",
        "responsePayload",
        "createdAt",
    ] {
        assert!(list[0].get(key).is_some(), "{key} missing");
    }
    let res = app
        .get_as("/api/v1/ai/predictions?limit=501", &u1.access)
        .await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn an_engine_validation_error_passes_through_without_retry() {
    let engine = spawn_engine().await;
    let app = spawn_with_admin(&[
        ("AI_ENGINE_URL", engine.as_str()),
        ("AI_ENGINE_API_KEY", ENGINE_KEY),
    ])
    .await;
    let u1 = app.signup("u1@example.com", PW).await;
    // The backend does not enforce the metric vocabulary; the real engine answers 422.
    let body = json!({"type": "anomaly", "metrics": [
        {"metric_type": "temperature", "value": 1.0, "timestamp": "2024-01-25T14:00:00Z"}]});
    let res = predict(&app, &u1.access, body).await;
    assert_eq!(res.status(), 422);
    let detail: Value = res.json().await.unwrap();
    assert!(
        detail["detail"].is_array(),
        "the engine's body as it is: {detail}"
    );
    let stored = rows(&app).await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].5);
    assert!(stored[0].6.as_deref().unwrap().contains("422"));
}

#[tokio::test]
async fn a_wrong_engine_key_is_a_bad_gateway_not_a_401() {
    let engine = spawn_engine().await;
    let app = spawn_with_admin(&[
        ("AI_ENGINE_URL", engine.as_str()),
        ("AI_ENGINE_API_KEY", "not-the-key"),
    ])
    .await;
    let u1 = app.signup("u1@example.com", PW).await;
    let res = predict(&app, &u1.access, request()).await;
    assert_eq!(res.status(), 502);
}

#[tokio::test]
async fn server_errors_are_retried_until_the_engine_answers() {
    let ok = json!({"is_anomaly": true, "anomaly_score": 0.85, "severity": "high",
        "recommended_action": "scale_up", "confidence": 0.9, "affected_metrics": ["cpu_usage"], "details": {}});
    let (url, calls) = spawn_stub(vec![
        (503, json!({"detail": "warming up"})),
        (500, json!({})),
        (200, ok.clone()),
    ])
    .await;
    let app = spawn_with_admin(&[
        ("AI_ENGINE_URL", url.as_str()),
        ("AI_ENGINE_RETRY_BACKOFF_MS", "20"),
    ])
    .await;
    let u1 = app.signup("u1@example.com", PW).await;
    let res = predict(&app, &u1.access, request()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        ok,
        "exactly the upstream body"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let stored = rows(&app).await;
    assert_eq!(stored[0].3, Some(0.85));
    assert_eq!(stored[0].4.as_deref(), Some("high"));
}

#[tokio::test]
async fn an_engine_that_keeps_failing_yields_502_after_three_attempts() {
    let (url, calls) = spawn_stub(vec![(500, json!({}))]).await;
    let app = spawn_with_admin(&[
        ("AI_ENGINE_URL", url.as_str()),
        ("AI_ENGINE_RETRY_BACKOFF_MS", "20"),
    ])
    .await;
    let u1 = app.signup("u1@example.com", PW).await;
    let res = predict(&app, &u1.access, request()).await;
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("AI Engine unavailable after 3 attempts:"),
        "{body}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // A stopped engine (nothing listens) is retried as well.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let app2 = spawn_with_admin(&[
        ("AI_ENGINE_URL", closed.as_str()),
        ("AI_ENGINE_RETRY_BACKOFF_MS", "20"),
    ])
    .await;
    let u = app2.signup("u2@example.com", PW).await;
    let res = predict(&app2, &u.access, request()).await;
    assert_eq!(res.status(), 502);
    let stored = rows(&app2).await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].5);
    assert_eq!(stored[0].2, json!({}));
    assert!(!stored[0].6.as_deref().unwrap().is_empty());
    let stats: Value = app2
        .get_as("/api/v1/ai/metrics", &u.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["successRate"], 0.0);
}

#[tokio::test]
async fn predict_checks_access_and_input() {
    let app = spawn_with_admin(&[]).await;
    let u1 = app.signup("u1@example.com", PW).await;
    let aud = auditor(&app, "aud@example.com").await;

    let res = app.post("/api/v1/ai/predict", request()).await;
    assert_eq!(res.status(), 401);
    let res = predict(&app, &aud.access, request()).await;
    assert_error(res, 403, "Insufficient permissions").await;
    let res = app.get("/api/v1/ai/metrics").await;
    assert_eq!(res.status(), 401);
    let res = app.get_as("/api/v1/ai/metrics", &aud.access).await;
    assert_eq!(res.status(), 200, "auditors read stats");

    for bad in [
        json!({"type": "other", "metrics": []}),
        json!({"metrics": []}),
        json!({"type": "anomaly"}),
        json!({"type": "anomaly", "metrics": [{"metric_type": "cpu_usage", "timestamp": "2024-01-25T14:00:00Z"}]}),
        json!({"type": "anomaly", "metrics": [{"metric_type": "cpu_usage", "value": "0.9", "timestamp": "2024-01-25T14:00:00Z"}]}),
        json!({"type": "anomaly", "metrics": [{"metric_type": "cpu_usage", "value": 0.9, "timestamp": "yesterday"}]}),
        json!({"type": "failure", "metrics": [], "logs": [{"message": "no timestamp"}]}),
        json!({"type": "anomaly", "metrics": [], "extra": 1}),
    ] {
        let res = predict(&app, &u1.access, bad.clone()).await;
        assert_eq!(res.status(), 400, "{bad}");
    }
}
