//! End-to-end scenarios over HTTP against PostgreSQL: detection, history, training and
//! validation as a client sees them. Failure answers carry `details.method` (`heuristic` or
//! `random_forest`), so a client knows which model answered.

use serde_json::{Value, json};

use crate::helpers::{ago, spawn_app, spawn_app_with};

fn cpu(values: &[f64]) -> Value {
    let n = values.len() as i64;
    let metrics: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"metric_type": "cpu_usage", "value": v, "timestamp": ago(10 * (n - i as i64))}))
        .collect();
    json!({ "metrics": metrics })
}

#[tokio::test]
async fn health_ping_and_root_need_no_key() {
    let app = spawn_app_with(&[("API_KEY", "k1")]).await;
    let health: Value = app.get("/health").await.json().await.unwrap();
    let mut keys: Vec<&str> = health
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "database_connected",
            "models_loaded",
            "status",
            "timestamp",
            "uptime"
        ]
    );
    assert_eq!(health["models_loaded"], true);
    assert_eq!(app.get("/ping").await.status(), 200);
    assert_eq!(app.get("/").await.status(), 200);
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

#[tokio::test]
async fn api_key_is_checked_before_validation() {
    let app = spawn_app_with(&[("API_KEY", "k1")]).await;
    let body = json!({"metrics":[{"metric_type":"cpu_usage","value":1.0,"timestamp":"2024-01-25T10:00:00Z"}]});
    let url = format!("{}/api/v1/detect-anomaly", app.address);
    let res = app.client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": "Invalid API key"})
    );
    let res = app
        .client
        .post(&url)
        .header("X-API-Key", "nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app.client.post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(res.status(), 403, "auth before validation");
    let res = app
        .client
        .post(&url)
        .header("x-api-key", "k1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.get("/api/v1/metrics/stats").await.status(), 403);
}

#[tokio::test]
async fn empty_metrics_store_nothing() {
    let app = spawn_app().await;
    let res = app
        .post_json("/api/v1/detect-anomaly", &json!({"metrics": []}))
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["is_anomaly"], false);
    assert_eq!(body["recommended_action"], "no_action");
    assert_eq!(body["affected_metrics"], json!([]));
    assert_eq!(body["details"], json!({"error": "No features extracted"}));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let stats: Value = app.get("/api/v1/metrics/stats").await.json().await.unwrap();
    assert_eq!(stats["total_predictions"], 0);
}

#[tokio::test]
async fn validation_locations() {
    let app = spawn_app().await;
    let m = |field: &str, value: Value| {
        let mut metric =
            json!({"metric_type":"cpu_usage","value":1.0,"timestamp":"2024-01-25T10:00:00Z"});
        metric[field] = value;
        json!({ "metrics": [metric] })
    };
    let cases = [
        (json!({}), json!(["body", "metrics"]), Some("missing")),
        (
            m("metric_type", json!("latency_p95")),
            json!(["body", "metrics", 0, "metric_type"]),
            Some("enum"),
        ),
        (
            m("metric_type", json!("CPU_USAGE")),
            json!(["body", "metrics", 0, "metric_type"]),
            Some("enum"),
        ),
        (
            m("value", Value::Null),
            json!(["body", "metrics", 0, "value"]),
            None,
        ),
        (
            m("timestamp", json!("2024-01-25")),
            json!(["body", "metrics", 0, "timestamp"]),
            None,
        ),
        (
            m("labels", json!({"n": 1})),
            json!(["body", "metrics", 0, "labels", "n"]),
            None,
        ),
        (json!({"metrics": {}}), json!(["body", "metrics"]), None),
        (
            json!({"metrics": [], "context": [1]}),
            json!(["body", "context"]),
            None,
        ),
    ];
    for (body, loc, ty) in cases {
        let res = app.post_json("/api/v1/detect-anomaly", &body).await;
        assert_eq!(res.status(), 422, "{body}");
        let detail: Value = res.json().await.unwrap();
        assert_eq!(detail["detail"][0]["loc"], loc, "{body}");
        if let Some(ty) = ty {
            assert_eq!(detail["detail"][0]["type"], ty, "{body}");
        }
    }
    assert_eq!(
        app.post_raw("/api/v1/detect-anomaly", "{bad")
            .await
            .status(),
        422
    );
    let res = app
        .post_json("/api/v1/detect-failure", &json!({"metrics": []}))
        .await;
    let detail: Value = res.json().await.unwrap();
    assert_eq!(detail["detail"][0]["loc"], json!(["body", "logs"]));
    assert_eq!(detail["detail"][0]["type"], "missing");
    for ok in [
        json!({"metrics": [], "foo": 1}),
        json!({"metrics": [], "context": null}),
    ] {
        assert_eq!(
            app.post_json("/api/v1/detect-anomaly", &ok).await.status(),
            200
        );
    }
    let res = app
        .client
        .post(format!("{}/api/v1/detect-anomaly", app.address))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn non_finite_values_never_reach_the_response() {
    let app = spawn_app().await;
    let res = app
        .post_raw(
            "/api/v1/detect-anomaly",
            r#"{"metrics":[{"metric_type":"cpu_usage","value":NaN,"timestamp":"2024-01-25T10:00:00Z"}]}"#,
        )
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        !text.contains("NaN") && !text.contains("Infinity"),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["is_anomaly"], false);
    assert_eq!(body["severity"], "low");
    assert_eq!(body["details"]["error"], "No features extracted");
    assert_eq!(body["affected_metrics"], json!([]));
}

fn high_error_rate_window() -> Value {
    json!({
        "metrics": [{"metric_type": "error_rate", "value": 0.35, "timestamp": ago(5)}],
        "logs": [
            {"timestamp": ago(5), "level": "error", "message": "Connection timeout to database", "service": "api-service"},
            {"timestamp": ago(5), "level": "error", "message": "Failed to connect", "service": "api-service"}
        ]
    })
}

#[tokio::test]
async fn failure_high_error_rate() {
    let app = spawn_app().await;
    let body: Value = app
        .post_json("/api/v1/detect-failure", &high_error_rate_window())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["failure_detected"], true);
    assert_eq!(body["failure_type"], "high_error_rate");
    assert_eq!(body["severity"], "high");
    assert_eq!(
        body["recommended_actions"],
        json!(["restart_pod", "alert_admin"])
    );
    assert_eq!(body["confidence"], 0.8);
    assert_eq!(body["root_cause"], "High error rate detected: 100.00%");
    assert_eq!(body["affected_services"], json!(["api-service"]));
    assert_eq!(
        body["details"],
        json!({"heuristic": true, "error_rate": 1.0, "method": "heuristic"})
    );
}

fn logs(spec: &[(usize, &str, &str, &str)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (n, level, message, service) in spec {
        for _ in 0..*n {
            out.push(json!({"timestamp": ago(5), "level": level, "message": message, "service": service}));
        }
    }
    out
}

#[tokio::test]
async fn failure_boundaries_and_connection_heuristic() {
    let app = spawn_app().await;
    let post = |l: Vec<Value>| {
        let app = &app;
        async move {
            app.post_json("/api/v1/detect-failure", &json!({"metrics": [], "logs": l}))
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let quiet = post(logs(&[(1, "error", "x", "api"), (4, "info", "ok", "api")])).await;
    assert_eq!(quiet["failure_detected"], false);
    assert_eq!(quiet["failure_type"], Value::Null);
    assert_eq!(quiet["recommended_actions"], json!(["no_action"]));
    assert_eq!(quiet["root_cause"], Value::Null);
    assert_eq!(quiet["details"], json!({"method": "heuristic"}));

    let many = post(logs(&[
        (51, "error", "boom", "api-service"),
        (300, "info", "ok", "web"),
    ]))
    .await;
    assert_eq!(many["failure_type"], "high_error_rate");
    assert_eq!(many["root_cause"], "High error rate detected: 14.53%");
    assert_eq!(many["details"]["error_rate"], 0.1452991452991453);

    let upper = post(logs(&[
        (2, "ERROR", "Connection refused", "api"),
        (10, "info", "ok", "api"),
    ]))
    .await;
    assert_eq!(upper["failure_detected"], false);

    let conn = post(logs(&[
        (11, "error", "connection refused", "api-service"),
        (100, "info", "ok", "web"),
    ]))
    .await;
    assert_eq!(conn["failure_type"], "connection_timeout");
    assert_eq!(conn["severity"], "medium");
    assert_eq!(conn["recommended_actions"], json!(["restart_pod"]));
    assert_eq!(conn["confidence"], 0.7);
    assert_eq!(
        conn["root_cause"],
        "Multiple connection timeout errors detected"
    );
    assert_eq!(conn["affected_services"], json!(["api-service"]));
}

#[tokio::test]
async fn window_and_empty_cases() {
    let app = spawn_app().await;
    let post = |body: Value| {
        let app = &app;
        async move {
            app.post_json("/api/v1/detect-failure", &body)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let empty = post(json!({"metrics": [], "logs": []})).await;
    assert_eq!(empty["details"], json!({"error": "No features extracted"}));
    let old = post(json!({"metrics": [], "logs": [{"timestamp": ago(400), "level": "error", "message": "x", "service": "a"}]})).await;
    assert_eq!(old["details"], json!({"error": "No features extracted"}));
    let metric_only = post(json!({"metrics": [{"metric_type": "error_rate", "value": 0.9, "timestamp": ago(5)}], "logs": []})).await;
    assert_eq!(metric_only["failure_detected"], false);
    let future = post(json!({"metrics": [], "logs": [{"timestamp": ago(-86_400), "level": "error", "message": "x", "service": "a"}]})).await;
    assert_eq!(future["failure_type"], "high_error_rate");
    assert_eq!(future["root_cause"], "High error rate detected: 100.00%");
}

#[tokio::test]
async fn zscore_cold_start() {
    let app = spawn_app().await;
    let spike: Value = app
        .post_json(
            "/api/v1/detect-anomaly",
            &cpu(&[85.0, 86.0, 84.0, 85.0, 99.0]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(spike["is_anomaly"], true);
    assert_eq!(spike["anomaly_score"], 1.0);
    assert_eq!(spike["severity"], "critical");
    assert_eq!(spike["recommended_action"], "scale_up");
    assert_eq!(spike["confidence"], 1.0);
    assert_eq!(spike["affected_metrics"], json!(["cpu_usage"]));
    assert_eq!(spike["details"]["method"], "zscore");
    assert!((spike["details"]["max_abs_z"].as_f64().unwrap() - 19.79899).abs() < 1e-4);
    assert_eq!(spike["details"]["threshold_used"], 3.0);
    assert_eq!(
        spike["details"]["affected_features"],
        json!([
            "cpu_usage_max",
            "cpu_usage_mean",
            "cpu_usage_median",
            "cpu_usage_min",
            "cpu_usage_std"
        ])
    );
    let flat: Value = app
        .post_json("/api/v1/detect-anomaly", &cpu(&[50.0; 5]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(flat["is_anomaly"], false);
    assert_eq!(flat["anomaly_score"], 0.0);
    assert_eq!(flat["recommended_action"], "no_action");
    assert_eq!(
        flat["confidence"], 0.0,
        "a point at the mean is not unusual"
    );
    let single: Value = app
        .post_json("/api/v1/detect-anomaly", &cpu(&[95.0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(single["details"]["method"], "insufficient_data");
    assert_eq!(single["is_anomaly"], false);
    assert_eq!(single["confidence"], 0.0);
    assert_eq!(single["affected_metrics"], json!(["cpu_usage"]));
}

#[tokio::test]
async fn persistence_stats_and_metrics() {
    let app = spawn_app().await;
    let stats: Value = app.get("/api/v1/metrics/stats").await.json().await.unwrap();
    assert_eq!(stats["total_predictions"], 0);
    app.post_json(
        "/api/v1/detect-anomaly",
        &cpu(&[85.0, 86.0, 84.0, 85.0, 99.0]),
    )
    .await;
    app.post_json("/api/v1/detect-failure", &high_error_rate_window())
        .await;
    let stats = app.wait_stats(|s| s["total_predictions"] == 2).await;
    assert_eq!(stats["predictions_last_24h"], 2);
    assert_eq!(stats["total_anomalies_detected"], 1);
    assert_eq!(stats["total_failures_detected"], 1);
    let latest: Value = app
        .get("/api/v1/metrics/predictions?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(latest["total"], 1);
    assert_eq!(latest["predictions"][0]["model_type"], "failure");
    assert_eq!(
        latest["predictions"][0]["recommended_action"],
        "restart_pod"
    );
    assert_eq!(latest["predictions"][0]["severity_score"], 0.8);
    assert_eq!(
        latest["predictions"][0]["prediction"]["failure_detected"],
        true
    );
    assert_eq!(
        app.get("/api/v1/metrics/predictions?limit=abc")
            .await
            .status(),
        422
    );
    let perf: Value = app
        .get("/api/v1/metrics/model-performance")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(perf, json!({"metrics": []}));
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(r#"ai_predictions_total{model_type="anomaly",status="success"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"ai_anomalies_detected_total{severity="critical"} 1"#));
    assert!(text.contains(r#"ai_failures_detected_total{failure_type="high_error_rate"} 1"#));
    assert!(
        text.contains(r#"ai_inference_duration_seconds_bucket{model_type="anomaly",le="0.01"}"#)
    );
    assert!(text.contains(r#"ai_inference_duration_seconds_bucket{model_type="anomaly",le="10"}"#));
}

#[tokio::test]
async fn correlation_ids_reach_prediction_history() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/api/v1/detect-anomaly", app.address))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&cpu(&[1.0, 2.0, 3.0]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.wait_stats(|s| s["total_predictions"] == 1).await;
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let id: Option<String> =
        sqlx::query_scalar("SELECT metadata ->> 'correlation_id' FROM prediction_history")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
}

#[tokio::test]
async fn baselines_train_a_forest_and_survive_a_restart() {
    let app = spawn_app_with(&[("MIN_SAMPLES_FOR_TRAINING", "10")]).await;
    // A varied, deterministic baseline around 50 %.
    for i in 0..20 {
        let j = f64::from((i * 7) % 11);
        let v = 48.0 + j * 0.4;
        let window = [
            v,
            v + 1.0 - j * 0.1,
            v - 0.5 + j * 0.05,
            v + 0.2 * f64::from(i % 4),
        ];
        let body: Value = app
            .post_json("/api/v1/detect-anomaly", &cpu(&window))
            .await
            .json()
            .await
            .unwrap();
        assert!(body["details"]["method"].is_string());
    }
    let trained: Value = app
        .post_json("/api/v1/detect-anomaly", &cpu(&[50.0, 51.0, 49.0, 50.0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        trained["details"]["method"], "isolation_forest",
        "{trained}"
    );
    let spike: Value = app
        .post_json("/api/v1/detect-anomaly", &cpu(&[95.0, 99.0, 97.0, 99.0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(spike["details"]["method"], "isolation_forest");
    assert_eq!(spike["is_anomaly"], true, "{spike}");
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.contains("ai_active_models 1"), "one trained signature");

    // A new instance on the same database restores the baseline and answers with the forest.
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    // Rows are written off the request path: wait for all 22 (one per scored request).
    let mut rows: i64 = 0;
    for _ in 0..100 {
        rows =
            sqlx::query_scalar("SELECT count(*) FROM training_data WHERE model_type = 'anomaly'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if rows >= 22 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        rows, 22,
        "every scored request appended a persisted baseline row"
    );
    let mut env = aegis_common::config::Env::from_pairs([
        ("APP_ENV", "test"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("MIN_SAMPLES_FOR_TRAINING", "10"),
    ]);
    env.set("DATABASE_URL", app.database_url.clone());
    let config = aegis_ai_engine::config::Config::from_env(&env).unwrap();
    let second = aegis_ai_engine::startup::Application::build(config)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", second.port());
    let state = second.state().clone();
    tokio::spawn(second.run_until(std::future::pending()));
    let restarted = crate::helpers::TestApp {
        address,
        client: reqwest::Client::new(),
        database_url: app.database_url.clone(),
        state,
    };
    restarted.wait_ready().await;
    let again: Value = restarted
        .post_json("/api/v1/detect-anomaly", &cpu(&[50.0, 51.0, 49.0, 50.0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["details"]["method"], "isolation_forest", "{again}");
}

/// History keeps the body as the client sent it: a body that parses unmodified is stored as
/// received (every digit of its numbers), one with bare non-finite tokens as parsed (the
/// tokens quoted); the stored prediction is the answer the client got.
#[tokio::test]
async fn history_stores_the_body_as_sent_and_the_answer_as_given() {
    let app = spawn_app().await;
    let exact = format!(
        r#"{{"metrics": [{{"metric_type": "cpu_usage", "value": 45.123456789012345678, "timestamp": "{}"}}, {{"metric_type": "cpu_usage", "value": 46, "timestamp": "{}"}}], "extra": "kept"}}"#,
        ago(20),
        ago(10)
    );
    let res = app.post_raw("/api/v1/detect-anomaly", &exact).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let answer: Value = res.json().await.unwrap();
    app.wait_stats(|s| s["total_predictions"] == 1).await;

    let non_finite = exact.replace("46,", "NaN,");
    let res = app.post_raw("/api/v1/detect-anomaly", &non_finite).await;
    assert_eq!(res.status(), 200);
    app.wait_stats(|s| s["total_predictions"] == 2).await;

    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT input_data->'metrics'->0->>'value', input_data->'metrics'->1->>'value', \
         input_data->>'extra', prediction::text, features::text \
         FROM prediction_history ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    let (first, second, extra, prediction, features) = &rows[0];
    assert_eq!(first, "45.123456789012345678");
    assert_eq!(second, "46");
    assert_eq!(extra, "kept");
    let prediction: Value = serde_json::from_str(prediction).unwrap();
    let features: Value = serde_json::from_str(features).unwrap();
    assert_eq!(prediction, answer);
    assert!(
        features["cpu_usage_mean"].is_f64(),
        "features as numbers: {features}"
    );
    let (first, second, ..) = &rows[1];
    assert_eq!(first, "45.123456789012344", "parsed as f64");
    assert_eq!(second, "NaN", "the non-finite token, quoted");
}
