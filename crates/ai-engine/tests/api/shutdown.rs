//! Graceful shutdown: SIGTERM under load finishes in-flight requests and flushes the history
//! writer, so every prediction a client received is in the database.

use std::{net::TcpListener, process::Stdio, time::Duration};

use aegis_test_support::fresh_database;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_accepted_prediction() {
    let db = fresh_database("aishutdown").await;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_aegis-ai-engine"))
        .env("APP_ENV", "test")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("DATABASE_URL", &db.url)
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "ai-engine did not become ready");

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
    let pid = child.id().unwrap();
    let kill = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    let mut answered = 0i64;
    for t in tasks {
        if t.await.unwrap() {
            answered += 1;
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(40), child.wait())
        .await
        .expect("ai-engine exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "clean exit: {status}");
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
