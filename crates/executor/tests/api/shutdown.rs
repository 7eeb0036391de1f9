//! Graceful shutdown of the real binary (issue 12): SIGTERM under load lets the actions in
//! flight finish, so every answered action has its audit row in a final state, linked into the
//! hash chain.

use std::{collections::HashSet, net::TcpListener, process::Stdio, time::Duration};

use aegis_test_support::fresh_database;
use serde_json::{Value, json};

use crate::helpers::{KEY, TempFile, sign2, start_sim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_leaves_every_answered_action_audited_and_final() {
    let sim = start_sim().await;
    let kubeconfig = TempFile(std::env::temp_dir().join(format!(
        "aegis-executor-shutdown-{}.kubeconfig",
        uuid::Uuid::new_v4().simple()
    )));
    sim.write_kubeconfig(&kubeconfig.0).unwrap();
    let db = fresh_database("exshutdown").await;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_aegis-executor"))
        .env("APP_ENV", "test")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("DATABASE_URL", &db.url)
        .env("KUBECONFIG_PATH", kubeconfig.0.display().to_string())
        .env("ALLOWED_NAMESPACES", "default,production")
        .env("EXECUTOR_HMAC_SECRET", KEY)
        .env("AUDIT_API_TOKEN", "shutdown-audit-token")
        .env("HTTP_RATE_LIMIT_MAX", "100000")
        .env("RATE_LIMIT_SCALE_MAX", "100000")
        .env("MAX_CONCURRENT_ACTIONS", "64")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/health/ping")).send().await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "executor did not become ready");

    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let client = client.clone();
        let url = format!("{base}/executor/execute");
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i)).await;
            // Dry runs on one deployment: validated by the API server, audited, nothing changes.
            let body = sign2(json!({
                "actionType": "scale_deployment",
                "actionParams": {"namespace": "production", "deploymentName": "api-deployment",
                                 "replicas": 3, "dryRun": true},
                "requestedBy": format!("load-{}", i % 7),
            }));
            match client.post(url).json(&body).send().await {
                Ok(r) if r.status() == 200 => {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    body["auditId"].as_str().map(str::to_owned)
                }
                _ => None,
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(80)).await;
    let pid = child.id().unwrap();
    let kill = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    let mut answered = HashSet::new();
    for t in tasks {
        if let Some(id) = t.await.unwrap() {
            answered.insert(id);
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("executor exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "clean exit: {status}");
    assert!(
        !answered.is_empty(),
        "some actions were answered before the signal"
    );

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let rows: Vec<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT id::text, status, chain_seq FROM action_audit_logs")
            .fetch_all(&pool)
            .await
            .unwrap();
    let stored: HashSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let missing: Vec<&String> = answered
        .iter()
        .filter(|id| !stored.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "answered actions without an audit row: {missing:?}"
    );
    // Nothing is left half-done: every row the executor wrote reached a final state and joined
    // the hash chain, answered or not.
    for (id, status, chain) in &rows {
        assert!(
            matches!(status.as_str(), "completed" | "failed" | "rejected"),
            "{id} left in {status}"
        );
        assert!(chain.is_some(), "{id} not chained");
    }
}
