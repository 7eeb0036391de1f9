//! Loki shipping through the outbox.

use std::{collections::HashSet, time::Duration};

use aegis_test_support::LokiFake;
use serde_json::{Value, json};

use crate::helpers::*;

async fn wait_for(loki: &LokiFake, n: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while loki.entries().len() < n && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn pushes_three_lines_with_labels_and_the_spec_line_format() {
    let loki = LokiFake::start().await.unwrap();
    let app = spawn_app_with(&[("LOKI_URL", &loki.url())]).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = app
        .client
        .post(format!("{}/executor/execute", app.address))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&sign(body_a()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    wait_for(&loki, 3, Duration::from_secs(10)).await;
    let entries = loki.entries();
    assert_eq!(entries.len(), 3);
    let statuses: Vec<&str> = entries
        .iter()
        .map(|e| e.labels["status"].as_str())
        .collect();
    assert_eq!(statuses, vec!["pending", "in_progress", "completed"]);
    for e in &entries {
        assert_eq!(e.labels["job"], "aegis-executor");
        assert_eq!(e.labels["level"], "info");
        assert_eq!(e.labels["action_type"], "restart_pod");
        assert_eq!(e.labels["namespace"], "default");
    }
    let line: serde_json::Map<String, Value> = serde_json::from_str(&entries[2].line).unwrap();
    let keys: Vec<&str> = line.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "audit_id",
            "action_type",
            "status",
            "namespace",
            "resource_type",
            "resource_name",
            "requested_by",
            "error_message",
            "execution_duration",
            "timestamp",
            "correlation_id",
            "chain_seq",
            "chain_hash"
        ]
    );
    // A final line carries its link of the audit chain: the head leaves the database.
    let verify: Value = app.audit_get("/audit/verify").await.json().await.unwrap();
    assert_eq!(line["chain_seq"], verify["headSeq"], "{verify}");
    assert_eq!(line["chain_hash"], verify["headHash"], "{verify}");
    let first: serde_json::Map<String, Value> = serde_json::from_str(&entries[0].line).unwrap();
    assert!(
        !first.contains_key("chain_seq"),
        "a pending row has no link yet"
    );
    assert_eq!(line["correlation_id"], trace);
    assert_eq!(line["status"], "completed");
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(!entries[0].line.contains(' '), "compact JSON");

    // A failed action's final line is labelled error; a rejection is one warn line.
    let ghost = sign(body(
        "restart_pod",
        json!({"namespace":"default","podName":"ghost"}),
        None,
    ));
    app.execute(&ghost).await;
    app.execute(&body_a()).await;
    wait_for(&loki, 7, Duration::from_secs(10)).await;
    let entries = loki.entries();
    assert_eq!(entries.len(), 7);
    assert!(
        entries
            .iter()
            .any(|e| e.labels["status"] == "failed" && e.labels["level"] == "error")
    );
    let rejected = entries
        .iter()
        .find(|e| e.labels["status"] == "rejected" && e.labels["level"] == "warn")
        .expect("a rejection line");
    let rejected: Value = serde_json::from_str(&rejected.line).unwrap();
    assert!(rejected["chain_seq"].is_i64(), "{rejected}");
    let metrics = app.metrics().await;
    let verify: Value = app.audit_get("/audit/verify").await.json().await.unwrap();
    assert_eq!(
        metric(&metrics, "executor_audit_chain_head_seq"),
        verify["headSeq"].as_f64().unwrap(),
        "the head is exported as a metric"
    );
}

#[tokio::test]
async fn a_loki_outage_delays_but_never_loses_or_duplicates_a_line() {
    let mut loki = LokiFake::start().await.unwrap();
    let app = spawn_app_with(&[
        ("LOKI_URL", &loki.url()),
        ("RATE_LIMIT_SCALE_MAX", "1000"),
        ("LOKI_BATCH_SIZE", "40"),
    ])
    .await;
    loki.stop();
    let mut ids = Vec::new();
    for i in 0..50 {
        let b = sign(body(
            "scale_deployment",
            json!({"namespace":"production","deploymentName":"api-deployment","replicas": 1 + i % 5}),
            Some("ai-engine"),
        ));
        let (status, res) = app.execute(&b).await;
        assert_eq!(
            status, 200,
            "action {i} is not blocked by the outage: {res}"
        );
        assert_eq!(res["success"], true);
        ids.push(res["auditId"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = app.metrics().await;
    assert!(metric(&m, "executor_loki_outbox_backlog") > 0.0, "{m}");
    assert!(metric(&m, "executor_loki_push_failures_total") >= 1.0);
    assert!(loki.entries().is_empty());

    loki.restart().await.unwrap();
    wait_for(&loki, 150, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let entries = loki.entries();
    assert_eq!(entries.len(), 150, "3 lines per action, each exactly once");
    let unique: HashSet<(String, i128)> = entries
        .iter()
        .map(|e| (e.line.clone(), e.timestamp_ns))
        .collect();
    assert_eq!(unique.len(), 150);
    for id in &ids {
        let lines: Vec<_> = entries
            .iter()
            .filter(|e| e.line.contains(id.as_str()))
            .collect();
        assert_eq!(lines.len(), 3, "{id}");
    }
    // A row is marked shipped once Loki has answered, a moment after Loki holds its lines.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let backlog: i64 =
            sqlx::query_scalar("SELECT count(*) FROM loki_outbox WHERE shipped_at IS NULL")
                .fetch_one(&app.db)
                .await
                .unwrap();
        if backlog == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{backlog} rows never marked shipped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Loki slower than `LOKI_PUSH_TIMEOUT_MS` gets lines again (delivery is at least once);
/// every copy is identical, so Loki's own deduplication leaves each line once.
#[tokio::test]
async fn a_slow_loki_gets_identical_copies_and_every_line_at_least_once() {
    let loki = LokiFake::start().await.unwrap();
    loki.set_answer_delay(Duration::from_millis(600));
    let app = spawn_app_with(&[
        ("LOKI_URL", &loki.url()),
        ("LOKI_PUSH_TIMEOUT_MS", "200"),
        ("RATE_LIMIT_SCALE_MAX", "1000"),
    ])
    .await;
    for i in 0..3 {
        let b = sign(body(
            "scale_deployment",
            json!({"namespace":"production","deploymentName":"api-deployment","replicas": 1 + i}),
            Some("ai-engine"),
        ));
        assert_eq!(app.execute(&b).await.0, 200);
    }
    // Wait until the slow Loki has been sent some line twice, then let it answer in time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while loki.entries().len() <= 9 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loki.set_answer_delay(Duration::ZERO);
    let shipped = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM loki_outbox WHERE shipped_at IS NULL")
            .fetch_one(&app.db)
            .await
            .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while shipped().await > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shipped().await, 0, "every line is eventually acknowledged");
    let entries = loki.entries();
    assert!(
        entries.len() > 9,
        "a timed-out push is sent again: {}",
        entries.len()
    );
    let distinct: HashSet<(String, i128, String)> = entries
        .iter()
        .map(|e| (format!("{:?}", e.labels), e.timestamp_ns, e.line.clone()))
        .collect();
    assert_eq!(
        distinct.len(),
        9,
        "3 lines per action; the copies are identical"
    );
}

#[tokio::test]
async fn a_failing_loki_is_retried_until_it_accepts() {
    let loki = LokiFake::start().await.unwrap();
    loki.set_failing(Some(500));
    let app = spawn_app_with(&[("LOKI_URL", &loki.url())]).await;
    app.execute(&sign(body_a())).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(loki.entries().is_empty());
    loki.set_failing(None);
    wait_for(&loki, 3, Duration::from_secs(10)).await;
    assert_eq!(loki.entries().len(), 3);
}
