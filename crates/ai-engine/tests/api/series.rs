//! Models per series over HTTP: replicas that share the series out agree with a single
//! replica, a restart or an eviction rebuilds a series from its stored windows, and an
//! unreachable owner never costs an answer.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const MIN_SAMPLES: &str = "20";

/// The points of a series: noise around `level`, with a spike from point 120 to 125.
fn points(seed: u64, level: f64, n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let spike = if (120..126).contains(&i) { 40.0 } else { 0.0 };
            level + spike + rng.random_range(-3.0..3.0)
        })
        .collect()
}

/// The sliding 5-point window ending at point `end` of a series of `deployment`.
fn window(deployment: &str, values: &[f64], end: usize) -> Value {
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap();
    let metrics: Vec<Value> = (end - 4..=end)
        .map(|i| {
            json!({
                "metric_type": "cpu_usage",
                "value": values[i],
                "timestamp": (t0 + chrono::Duration::seconds(15 * i as i64)).to_rfc3339(),
                "labels": {"namespace": "shop", "deployment": deployment},
            })
        })
        .collect();
    json!({"metrics": metrics})
}

/// The parts of an answer that depend on the model (not the `timestamp`).
async fn verdict(app: &TestApp, body: &Value) -> Value {
    let res = app.post_json("/api/v1/detect-anomaly", body).await;
    assert_eq!(res.status(), 200);
    let a: Value = res.json().await.unwrap();
    json!([
        a["is_anomaly"],
        a["anomaly_score"],
        a["confidence"],
        a["severity"],
        a["recommended_action"],
        a["details"]["method"],
        a["details"]["baseline_size"],
    ])
}

async fn stored_windows(app: &TestApp, deployment: &str) -> i64 {
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let n =
        sqlx::query_scalar("SELECT count(*) FROM training_data WHERE metadata ->> 'series' = $1")
            .bind(format!("shop/{deployment}"))
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    n
}

/// Waits until the history writer has stored `n` windows of the series.
async fn wait_stored(app: &TestApp, deployment: &str, n: i64) {
    for _ in 0..200 {
        if stored_windows(app, deployment).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{deployment}: never {n} windows stored");
}

fn counter(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn replicas_taking_alternate_requests_answer_as_one_replica_would() {
    let settings = [("MIN_SAMPLES_FOR_TRAINING", MIN_SAMPLES)];
    let one = spawn_app_with(&settings).await;
    let a = spawn_app_with(&settings).await;
    let shared = [
        ("MIN_SAMPLES_FOR_TRAINING", MIN_SAMPLES),
        ("DATABASE_URL", a.database_url.as_str()),
    ];
    let b = spawn_app_with(&shared).await;
    let members = vec![a.address.clone(), b.address.clone()];
    a.state.ring.set(a.address.clone(), members.clone());
    b.state.ring.set(b.address.clone(), members);

    // Enough workloads that each replica owns some.
    let deployments: Vec<String> = (0..6).map(|i| format!("app-{i}")).collect();
    let owners: Vec<bool> = deployments
        .iter()
        .map(|d| a.state.ring.owner(&format!("shop/{d}|cpu_usage")).is_none())
        .collect();
    assert!(
        owners.contains(&true) && owners.contains(&false),
        "both replicas own series: {owners:?}"
    );
    let n = 160;
    let series: Vec<Vec<f64>> = (0..deployments.len())
        .map(|i| points(i as u64, 20.0 + 10.0 * i as f64, n))
        .collect();
    let mut anomalies = 0;
    for end in 4..n {
        for (d, values) in deployments.iter().zip(&series) {
            let body = window(d, values, end);
            let replica = if end % 2 == 0 { &a } else { &b };
            let pair = verdict(replica, &body).await;
            let single = verdict(&one, &body).await;
            assert_eq!(pair, single, "{d}, window ending at {end}");
            anomalies += usize::from(pair[0] == json!(true));
        }
    }
    assert!(anomalies > 0, "the spikes were found");
    // Each window was scored and stored once, by its series' owner.
    for d in &deployments {
        wait_stored(&a, d, (n - 4) as i64).await;
        assert_eq!(stored_windows(&a, d).await, (n - 4) as i64, "{d}");
    }
    let (held_a, held_b) = (a.state.engine.series_count(), b.state.engine.series_count());
    assert_eq!(
        held_a + held_b,
        deployments.len(),
        "each series is held once"
    );
    let metrics = a.get("/metrics").await.text().await.unwrap();
    assert!(
        counter(&metrics, "ai_series_routing_total{result=\"forwarded\"}") > 0.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unreachable_owner_costs_no_answer() {
    let app = spawn_app_with(&[("MIN_SAMPLES_FOR_TRAINING", MIN_SAMPLES)]).await;
    // A member that is gone: its port refuses connections.
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    app.state
        .ring
        .set(app.address.clone(), vec![app.address.clone(), gone.clone()]);
    let d = (0..100)
        .map(|i| format!("app-{i}"))
        .find(|d| {
            app.state
                .ring
                .owner(&format!("shop/{d}|cpu_usage"))
                .as_deref()
                == Some(&gone)
        })
        .expect("the gone member owns some series");
    let values = points(9, 30.0, 40);
    for end in 4..40 {
        let res = app
            .post_json("/api/v1/detect-anomaly", &window(&d, &values, end))
            .await;
        assert_eq!(res.status(), 200);
    }
    assert_eq!(app.state.engine.series_count(), 1, "answered here");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        counter(&metrics, "ai_series_routing_total{result=\"fallback\"}"),
        36.0
    );
}

#[tokio::test]
async fn a_restarted_replica_rebuilds_each_series_from_its_stored_windows() {
    let first = spawn_app_with(&[("MIN_SAMPLES_FOR_TRAINING", MIN_SAMPLES)]).await;
    let values = points(4, 30.0, 200);
    // Normal windows only: the spike starts at point 120.
    for end in 4..110 {
        first
            .post_json("/api/v1/detect-anomaly", &window("api", &values, end))
            .await;
    }
    wait_stored(&first, "api", 106).await;
    // A second process on the same database: what a restart finds.
    let restarted = spawn_app_with(&[
        ("MIN_SAMPLES_FOR_TRAINING", MIN_SAMPLES),
        ("DATABASE_URL", first.database_url.as_str()),
    ])
    .await;
    let calm = verdict(&restarted, &window("api", &values, 110)).await;
    assert_eq!(calm[5], "isolation_forest", "{calm}");
    assert_eq!(
        calm[6], 106,
        "every stored window is in the baseline: {calm}"
    );
    assert_eq!(calm[0], false, "{calm}");
    let spike = verdict(&restarted, &window("api", &values, 121)).await;
    assert_eq!(spike[0], true, "{spike}");
}

#[tokio::test]
async fn an_evicted_series_comes_back_with_its_model() {
    let app = spawn_app_with(&[
        ("MIN_SAMPLES_FOR_TRAINING", MIN_SAMPLES),
        ("ANOMALY_MAX_SERIES", "1"),
    ])
    .await;
    let values = points(5, 30.0, 200);
    for end in 4..60 {
        app.post_json("/api/v1/detect-anomaly", &window("api", &values, end))
            .await;
    }
    wait_stored(&app, "api", 56).await;
    // Another workload takes the only place.
    let other = verdict(&app, &window("worker", &values, 4)).await;
    assert_eq!(other[5], "zscore");
    assert_eq!(app.state.engine.series_count(), 1);
    // The first comes back: rebuilt from its 56 stored windows, not cold.
    let back = verdict(&app, &window("api", &values, 60)).await;
    assert_eq!(back[5], "isolation_forest", "{back}");
    assert_eq!(back[6], 56, "{back}");
}
