//! Training data and the switch from the heuristic to the random forest.

use serde_json::{Value, json};

use crate::helpers::{ago, spawn_app, spawn_app_with};

fn window(errors: usize, infos: usize, keyword: &str) -> Value {
    let mut logs = Vec::new();
    for i in 0..errors {
        logs.push(json!({"timestamp": ago(5 + i as i64), "level": "error", "message": format!("{keyword} {i}"), "service": "api"}));
    }
    for i in 0..infos {
        logs.push(json!({"timestamp": ago(5 + i as i64), "level": "info", "message": "ok", "service": "web"}));
    }
    json!({"metrics": [{"metric_type": "cpu_usage", "value": 40.0 + errors as f64, "timestamp": ago(5)}], "logs": logs})
}

#[tokio::test]
async fn training_data_is_stored_with_its_class_id() {
    let app = spawn_app().await;
    let mut body = window(3, 5, "connection refused");
    body["failure_type"] = json!("connection_timeout");
    body["source"] = json!("operator");
    body["incident_id"] = json!("inc-1");
    let res = app.post_json("/api/v1/training-data", &body).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["label"], 2);
    assert!(created["id"].is_string());

    let mut bad = window(1, 1, "x");
    bad["failure_type"] = json!("alien_invasion");
    bad["source"] = json!("api");
    let res = app.post_json("/api/v1/training-data", &bad).await;
    assert_eq!(res.status(), 422);

    let mut vector = json!({"failure_type": "none", "source": "api", "features": vec![0.0; 55]});
    assert_eq!(
        app.post_json("/api/v1/training-data", &vector)
            .await
            .status(),
        201
    );
    vector["features"] = json!(vec![0.0; 3]);
    assert_eq!(
        app.post_json("/api/v1/training-data", &vector)
            .await
            .status(),
        422
    );
}

#[tokio::test]
async fn the_forest_answers_once_every_class_has_enough_rows() {
    let app = spawn_app_with(&[("RF_MIN_ROWS_PER_CLASS", "10")]).await;
    let train = || async {
        app.client
            .post(format!("{}/api/v1/models/failure/train", app.address))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    for i in 0..10 {
        let mut quiet = window(0, 10 + i, "x");
        quiet["failure_type"] = json!("none");
        quiet["source"] = json!("api");
        assert_eq!(
            app.post_json("/api/v1/training-data", &quiet)
                .await
                .status(),
            201
        );
    }
    let report = train().await;
    assert_eq!(
        report["trained"], false,
        "one class is not enough: {report}"
    );
    assert_eq!(report["method"], "heuristic");

    for i in 0..10 {
        let mut bad = window(20 + i, 2, "connection refused");
        bad["failure_type"] = json!("connection_timeout");
        bad["source"] = json!("operator");
        assert_eq!(
            app.post_json("/api/v1/training-data", &bad).await.status(),
            201
        );
    }
    let report = train().await;
    assert_eq!(report["trained"], true, "{report}");
    assert_eq!(report["method"], "random_forest");

    let mut probe = window(25, 2, "connection refused");
    probe.as_object_mut().unwrap().remove("failure_type");
    let answer: Value = app
        .post_json("/api/v1/detect-failure", &probe)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["details"]["method"], "random_forest", "{answer}");
    assert_eq!(answer["failure_type"], "connection_timeout");

    let perf: Value = app
        .get("/api/v1/metrics/model-performance")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(perf["metrics"][0]["model_type"], "failure");
    assert!(
        perf["metrics"][0]["accuracy"].as_f64().unwrap() > 0.9,
        "{perf}"
    );
}

#[tokio::test]
async fn training_needs_the_admin_key_when_auth_is_on() {
    let app = spawn_app_with(&[("API_KEY", "k1"), ("ADMIN_API_KEY", "admin-key")]).await;
    let url = format!("{}/api/v1/models/failure/train", app.address);
    let res = app
        .client
        .post(&url)
        .header("x-api-key", "k1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .client
        .post(&url)
        .header("x-api-key", "admin-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/api/v1/models/failure/train", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "keyless development setup");
}
