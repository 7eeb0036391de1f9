//! Graceful shutdown of the real binary (issue 12): SIGTERM under load finishes the requests
//! in flight and drains the evaluation audit, so every decision a client received has its
//! `policy_audit_logs` row, and every accepted remediation signal its incident.

use std::{collections::HashSet, time::Duration};

use aegis_test_support::{fresh_database, redis_prefix, redis_url, spawn_service};
use serde_json::{Value, json};

const KEY: &str = "shutdown-service-key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_answered_decision_or_signal() {
    let db = fresh_database("beshutdown").await;
    let env = [
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis_url()),
        ("REDIS_KEY_PREFIX", redis_prefix()),
        (
            "JWT_SECRET",
            "shutdown-access-secret-0123456789abcdef".into(),
        ),
        (
            "JWT_REFRESH_SECRET",
            "shutdown-refresh-secret-0123456789abcdef".into(),
        ),
        ("SERVICE_API_KEYS", KEY.into()),
        ("RATE_LIMIT_DISABLED", "true".into()),
        ("HEALTH_CHECK_AI_ENGINE", "false".into()),
        ("REMEDIATION_MODE", "off".into()),
    ];
    let mut service = spawn_service(
        env!("CARGO_BIN_EXE_aegis-backend"),
        &env,
        "/api/v1/health/ping",
    )
    .await;
    let base = service.base.clone();
    let client = reqwest::Client::new();

    // Distinct evaluations (cache misses: each one is audited) and signals, spread over time so
    // the signal lands in the middle of them.
    let mut tasks = Vec::new();
    for i in 0..400u64 {
        let client = client.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i / 2)).await;
            let res = if i % 10 == 0 {
                client
                    .post(format!("{base}/api/v1/remediation/signals"))
                    .header("X-API-Key", KEY)
                    .json(&json!({
                        "source": "ai-engine", "kind": "anomaly",
                        "observedAt": "2026-11-25T10:00:00Z",
                        "target": {"namespace": "shop", "deployment": format!("web-{i}")},
                        "severity": "high", "score": 0.9, "confidence": 0.9,
                        "recommendedAction": "scale_up", "window": {"metrics": []},
                        "prediction": {}
                    }))
                    .send()
                    .await
            } else {
                client
                    .post(format!("{base}/api/v1/policy/evaluate"))
                    .header("X-API-Key", KEY)
                    .json(&json!({
                        "type": "api_access", "action": "read", "resource": format!("/api/items/{i}"),
                        "context": {"userId": format!("user-{i}"), "role": "user"}
                    }))
                    .send()
                    .await
            };
            match res {
                Ok(r) if r.status().is_success() => {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    let decision = body["decisionId"].as_str().map(str::to_owned);
                    let incident = body["incidentId"].as_str().map(str::to_owned);
                    Some((decision, incident))
                }
                _ => None,
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    service.sigterm().await;
    let mut decisions = HashSet::new();
    let mut incidents = HashSet::new();
    for t in tasks {
        if let Some((d, i)) = t.await.unwrap() {
            decisions.extend(d);
            incidents.extend(i);
        }
    }
    service.assert_clean_exit(Duration::from_secs(60)).await;
    assert!(
        !decisions.is_empty(),
        "some evaluations were answered before the signal"
    );

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let stored: HashSet<String> =
        sqlx::query_scalar::<_, String>("SELECT id::text FROM policy_audit_logs")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let missing: Vec<&String> = decisions.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "answered decisions without an audit row: {missing:?}"
    );
    let opened: HashSet<String> = sqlx::query_scalar::<_, String>("SELECT id::text FROM incidents")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert!(
        incidents.is_subset(&opened),
        "every accepted signal has its incident"
    );
}
