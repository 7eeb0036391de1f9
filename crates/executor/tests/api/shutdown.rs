//! Graceful shutdown of the real binary (issue 12): SIGTERM under load lets the actions in
//! flight finish, so every answered action has its audit row in a final state, linked into the
//! hash chain.

use std::{collections::HashSet, time::Duration};

use aegis_test_support::{fresh_database, spawn_service};
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
    let env = [
        ("DATABASE_URL", db.url.clone()),
        ("KUBECONFIG_PATH", kubeconfig.0.display().to_string()),
        ("ALLOWED_NAMESPACES", "default,production".into()),
        ("EXECUTOR_HMAC_SECRET", KEY.into()),
        ("AUDIT_API_TOKEN", "shutdown-audit-token".into()),
        ("HTTP_RATE_LIMIT_MAX", "100000".into()),
        ("RATE_LIMIT_SCALE_MAX", "100000".into()),
        ("MAX_CONCURRENT_ACTIONS", "64".into()),
    ];
    let mut service =
        spawn_service(env!("CARGO_BIN_EXE_aegis-executor"), &env, "/health/ping").await;
    let base = service.base.clone();
    let client = reqwest::Client::new();

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
    service.sigterm().await;
    let mut answered = HashSet::new();
    for t in tasks {
        if let Some(id) = t.await.unwrap() {
            answered.insert(id);
        }
    }
    service.assert_clean_exit(Duration::from_secs(60)).await;
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
