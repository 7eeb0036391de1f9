//! The original dashboard's calls, in the order its pages make them, each answered 2xx with
//! the shape the client reads (numbers as numbers, UTC timestamps with `Z`, lists as lists).

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    ai_proxy::{ENGINE_KEY, spawn_engine},
    auth_support::{ADMIN_EMAIL, ADMIN_PASSWORD, spawn_with_admin},
};

fn is_utc(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

#[tokio::test]
async fn the_dashboard_client_walks_through_every_page() {
    let engine = spawn_engine().await;
    let app = spawn_with_admin(&[
        ("AI_ENGINE_URL", engine.as_str()),
        ("AI_ENGINE_API_KEY", ENGINE_KEY),
    ])
    .await;
    let t = "_t=1764100000000";

    // Login page, then the silent refresh with the token in the body.
    let res = app
        .post(
            "/api/v1/auth/login",
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let refresh = tokens["refreshToken"].as_str().unwrap();
    let res = app
        .post("/api/v1/auth/refresh", json!({"refreshToken": refresh}))
        .await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let token = tokens["accessToken"].as_str().unwrap().to_owned();
    let get = |path: String| {
        let app = &app;
        let token = token.clone();
        async move {
            let res = app.get_as(&path, &token).await;
            assert!(res.status().is_success(), "GET {path}: {}", res.status());
            res.json::<Value>().await.unwrap()
        }
    };
    let send = |method: Method, path: &'static str, body: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            let res = app.send(method, path, Some(&token), Some(body)).await;
            assert!(res.status().is_success(), "{path}: {}", res.status());
            res.json::<Value>().await.unwrap()
        }
    };

    // Profile and settings pages.
    let me = get(format!("/api/v1/users/me?{t}")).await;
    assert!(me["email"].is_string() && me["roles"].is_array());
    let settings = get(format!("/api/v1/settings?{t}")).await;
    assert!(settings["ui"]["itemsPerPage"].is_u64());
    let saved = send(
        Method::PATCH,
        "/api/v1/settings",
        json!({"notifications": {"alertSeverities": ["critical", "high", "medium"]},
               "ui": {"theme": "dark", "itemsPerPage": 25}}),
    )
    .await;
    assert_eq!(saved["ui"]["itemsPerPage"], 25);
    assert_eq!(
        saved["notifications"]["alertSeverities"],
        json!(["critical", "high", "medium"])
    );

    // Alerts page: list with the dashboard's filter, create, acknowledge.
    let alerts = get(format!("/api/v1/alerts?severity=critical,high&{t}")).await;
    assert!(alerts.as_array().unwrap().is_empty());
    let created = send(
        Method::POST,
        "/api/v1/alerts",
        json!({"title": "High CPU", "severity": "high", "metadata": {"pod": "api-1"}}),
    )
    .await;
    assert!(is_utc(&created["createdAt"]) && is_utc(&created["updatedAt"]));
    let res = app
        .send(
            Method::PATCH,
            &format!("/api/v1/alerts/{}", created["id"].as_str().unwrap()),
            Some(&token),
            Some(json!({"status": "acknowledged"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let alerts = get(format!(
        "/api/v1/alerts?severity=critical,high&limit=100&{t}"
    ))
    .await;
    assert_eq!(alerts[0]["status"], "acknowledged");
    assert_eq!(alerts[0]["metadata"]["pod"], "api-1");

    // Overview page: counters and the historical chart.
    send(
        Method::POST,
        "/api/v1/alerts",
        json!({"title": "Disk", "severity": "critical"}),
    )
    .await;
    let current = get(format!("/api/v1/metrics/current?{t}")).await;
    assert_eq!(current["openAlerts"], 1);
    assert!(current["openAlerts"].is_i64());
    assert!(is_utc(&current["timestamp"]));
    let hist = get(format!("/api/v1/metrics/historical?days=7&{t}")).await;
    let hist = hist.as_array().unwrap();
    assert_eq!(hist.len(), 2);
    for row in hist {
        assert!(row["count"].is_i64(), "count is a number: {row}");
        let date = row["date"].as_str().unwrap();
        assert!(
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
            "{date}"
        );
    }

    // AI page: a prediction through the real engine, then the stats and the list.
    let prediction = send(
        Method::POST,
        "/api/v1/ai/predict",
        json!({"type": "anomaly", "metrics": [
            {"metric_type": "cpu_usage", "value": 0.95, "timestamp": "2024-01-25T14:00:00Z"},
            {"metric_type": "memory_usage", "value": 0.5, "timestamp": "2024-01-25T14:00:00Z"}]}),
    )
    .await;
    assert!(prediction["is_anomaly"].is_boolean());
    let stats = get(format!("/api/v1/ai/metrics?{t}")).await;
    assert_eq!(stats["totalPredictions"], 1);
    assert!(stats["successRate"].is_f64() || stats["successRate"].is_i64());
    let list = get(format!("/api/v1/ai/predictions?{t}")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(is_utc(&list[0]["createdAt"]));

    // Logs page.
    let logs = get(format!("/api/v1/logs?page=1&limit=50&level=error,warn&{t}")).await;
    assert!(logs["total"].is_i64() && logs["logs"].is_array());
    assert_eq!(logs["page"], 1);

    // Health page.
    let ping = get(format!("/api/v1/health/ping?{t}")).await;
    assert_eq!(ping["status"], "ok");
    let health = get(format!("/api/v1/health?{t}")).await;
    assert_eq!(health["status"], "ok");
    let executor = get(format!("/api/v1/executor/health?{t}")).await;
    assert_eq!(executor["status"], "ok");
}

#[tokio::test]
async fn the_dashboard_origin_passes_cors_and_others_do_not() {
    let app = spawn_with_admin(&[(
        "CORS_ORIGIN",
        "http://localhost:3001, https://aegis.example",
    )])
    .await;
    for (origin, allowed) in [
        ("http://localhost:3001", true),
        ("https://aegis.example", true),
        ("https://evil.example", false),
    ] {
        let res = app
            .client
            .request(Method::OPTIONS, format!("{}/api/v1/alerts", app.address))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PATCH")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap();
        let echoed = res
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(echoed.as_deref() == Some(origin), allowed, "{origin}");
        if allowed {
            assert_eq!(res.headers()["access-control-allow-credentials"], "true");
        }
    }
    // Socket.IO polling answers carry the same header.
    let res = app
        .client
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling",
            app.address
        ))
        .header("Origin", "http://localhost:3001")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://localhost:3001"
    );

    let (env, _) = crate::helpers::env_for_test(&[("CORS_ORIGIN", "*")]).await;
    let err = aegis_backend::config::Config::from_env(&env).unwrap_err();
    assert!(err.to_string().contains("CORS_ORIGIN"), "{err}");
}
