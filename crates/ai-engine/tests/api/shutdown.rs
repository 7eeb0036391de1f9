//! Graceful shutdown: SIGTERM under load finishes in-flight requests and flushes the history
//! writer, so every prediction a client received is in the database.

use std::time::Duration;

use aegis_test_support::{fresh_database, spawn_service};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_accepted_prediction() {
    let db = fresh_database("aishutdown").await;
    let mut service = spawn_service(
        env!("CARGO_BIN_EXE_aegis-ai-engine"),
        &[("DATABASE_URL", db.url.clone())],
        "/health/ready",
    )
    .await;
    let base = service.base.clone();
    let client = reqwest::Client::new();

    let body = json!({"metrics": [
        {"metric_type": "cpu_usage", "value": 40.0, "timestamp": "2024-01-25T10:00:00Z"},
        {"metric_type": "cpu_usage", "value": 41.0, "timestamp": "2024-01-25T10:00:10Z"},
        {"metric_type": "cpu_usage", "value": 42.0, "timestamp": "2024-01-25T10:00:20Z"}
    ]});
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let client = client.clone();
        let url = format!("{base}/api/v1/detect-anomaly");
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i)).await;
            matches!(client.post(url).json(&body).send().await, Ok(r) if r.status() == 200)
        }));
    }
    tokio::time::sleep(Duration::from_millis(120)).await;
    service.sigterm().await;
    let mut answered = 0i64;
    for t in tasks {
        if t.await.unwrap() {
            answered += 1;
        }
    }
    service.assert_clean_exit(Duration::from_secs(40)).await;
    assert!(answered > 0, "some requests were served before the signal");

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM prediction_history")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        stored, answered,
        "every answered prediction was flushed before exit"
    );
}
