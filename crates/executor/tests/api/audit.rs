//! The audit trail: queries, auth,
//! immutability, the hash chain and tamper detection.

use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::helpers::*;

async fn run_scenarios_1_5_7(app: &TestApp) {
    let mut a = body_a();
    a["signature"] = json!(SIG_A);
    assert_eq!(app.execute(&a).await.0, 200);
    let mut b = body(
        "scale_deployment",
        json!({"namespace":"production","deploymentName":"api-deployment","replicas":5}),
        Some("ai-engine"),
    );
    b["signature"] = json!(SIG_B);
    assert_eq!(app.execute(&b).await.0, 200);
    let ghost = sign(body(
        "restart_pod",
        json!({"namespace":"default","podName":"ghost"}),
        Some("admin"),
    ));
    assert_eq!(app.execute(&ghost).await.1["success"], false);
}

#[tokio::test]
async fn audit_queries() {
    let app = spawn_app().await;
    run_scenarios_1_5_7(&app).await;
    let res = app
        .audit_get("/audit/logs?actionType=restart_pod&limit=1")
        .await;
    assert_eq!(res.status(), 200);
    let rows: Vec<Value> = res.json().await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["resourceName"], "ghost", "the newest restart row");
    assert_eq!(row["signature"], "[REDACTED]");
    for key in [
        "id",
        "actionType",
        "status",
        "namespace",
        "resourceType",
        "resourceName",
        "actionParams",
        "requestedBy",
        "policyDecision",
        "executionDuration",
        "errorMessage",
        "result",
        "ipAddress",
        "signature",
        "createdAt",
        "completedAt",
    ] {
        assert!(row.get(key).is_some(), "{key} missing");
    }
    assert!(row["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        app.audit_get("/audit/logs?status=bogus").await.status(),
        400
    );
    assert_eq!(app.audit_get("/audit/logs?limit=0").await.status(), 400);
    assert_eq!(app.audit_get("/audit/logs?limit=1001").await.status(), 400);

    let stats: Value = app
        .audit_get("/audit/statistics")
        .await
        .json()
        .await
        .unwrap();
    let db = |sql: &'static str| {
        let pool = app.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        stats["total"],
        db("SELECT count(*) FROM action_audit_logs").await
    );
    assert_eq!(stats["total"], 3);
    assert_eq!(stats["completed"], 2);
    assert_eq!(stats["failed"], 1);
    assert_eq!(
        stats["byType"],
        json!({"restart_pod": 2, "scale_deployment": 1})
    );
}

#[tokio::test]
async fn audit_api_requires_the_bearer_token() {
    let app = spawn_app().await;
    for path in ["/audit/logs", "/audit/statistics", "/audit/verify"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 401, "{path}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v, json!({"statusCode":401,"message":"Unauthorized"}));
        let res = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth("wrong-token")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(app.audit_get(path).await.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn the_chain_verifies_and_tampering_as_superuser_is_detected() {
    let app = spawn_app().await;
    run_scenarios_1_5_7(&app).await;
    // A rejected row joins the chain too.
    assert_eq!(app.execute(&body_a()).await.0, 400);
    let v: Value = app.audit_get("/audit/verify").await.json().await.unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["checked"], 4);
    assert_eq!(v["headSeq"], 4);

    let mut conn = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE action_audit_logs SET namespace = 'tampered' WHERE chain_seq = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    let v: Value = app.audit_get("/audit/verify").await.json().await.unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["firstBroken"]["chainSeq"], 2);
    assert_eq!(
        v["firstBroken"]["reason"],
        "hash does not match the row's content"
    );

    // The same with the trigger disabled and a recomputed hash: the next link breaks.
    let other = spawn_app().await;
    run_scenarios_1_5_7(&other).await;
    let mut conn = sqlx::PgConnection::connect(&other.database_url)
        .await
        .unwrap();
    for sql in [
        "ALTER TABLE action_audit_logs DISABLE TRIGGER action_audit_logs_guard",
        "UPDATE action_audit_logs SET error_message = 'nothing happened' WHERE chain_seq = 1",
        "UPDATE action_audit_logs r SET hash = audit_row_hash(prev_hash, r) WHERE chain_seq = 1",
        "ALTER TABLE action_audit_logs ENABLE TRIGGER action_audit_logs_guard",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    let v: Value = other.audit_get("/audit/verify").await.json().await.unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["firstBroken"]["chainSeq"], 2);
    assert_eq!(
        v["firstBroken"]["reason"],
        "prev_hash does not match the previous row's hash"
    );

    // A row deleted behind the trigger's back leaves a gap.
    let third = spawn_app().await;
    run_scenarios_1_5_7(&third).await;
    let mut conn = sqlx::PgConnection::connect(&third.database_url)
        .await
        .unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM action_audit_logs WHERE chain_seq = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    let v: Value = third.audit_get("/audit/verify").await.json().await.unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(
        v["firstBroken"]["reason"],
        "row with chain_seq 2 is missing"
    );
}

#[tokio::test]
async fn immutability_as_the_app_role() {
    let app = spawn_app().await;
    run_scenarios_1_5_7(&app).await;
    let mut conn = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::query("SET ROLE aegis_executor_app")
        .execute(&mut conn)
        .await
        .unwrap();
    let completed: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM action_audit_logs WHERE status = 'completed' LIMIT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let err = sqlx::query("UPDATE action_audit_logs SET namespace = 'x' WHERE id = $1")
        .bind(completed)
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("final"), "{err}");
    let err = sqlx::query("DELETE FROM action_audit_logs WHERE id = $1")
        .bind(completed)
        .execute(&mut conn)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot be deleted") || text.contains("permission denied"),
        "{text}"
    );
    let pending: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO action_audit_logs (action_type, status, namespace, resource_type, resource_name, action_params)
         VALUES ('restart_pod', 'pending', 'default', 'pod', 'p', '{}') RETURNING id",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let err = sqlx::query("UPDATE action_audit_logs SET status = 'completed' WHERE id = $1")
        .bind(pending)
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot go from pending to completed"),
        "{err}"
    );
    let err = sqlx::query(
        "UPDATE action_audit_logs SET status = 'in_progress', namespace = 'y' WHERE id = $1",
    )
    .bind(pending)
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("may change"), "{err}");
}

#[tokio::test]
async fn retention_purge_writes_an_anchor_and_the_chain_still_verifies() {
    let app = spawn_app().await;
    run_scenarios_1_5_7(&app).await;
    let purged: i64 = sqlx::query_scalar("SELECT purge_audit_logs(0)")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(purged, 2, "the newest row stays as the chain's end");
    let mut a = sign(body(
        "restart_pod",
        json!({"namespace":"default","podName":"bare-0"}),
        None,
    ));
    a["requestedBy"] = json!("someone");
    let a = sign(a);
    assert_eq!(app.execute(&a).await.1["success"], false);
    let v: Value = app.audit_get("/audit/verify").await.json().await.unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["anchor"]["afterSeq"], 2);
    assert_eq!(v["anchor"]["purgedRows"], 2);
    assert_eq!(v["checked"], 2);
    assert_eq!(v["headSeq"], 4);
    let head: String =
        sqlx::query_scalar("SELECT hash::text FROM action_audit_logs WHERE chain_seq = 4")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(v["headHash"], head);
}

/// Rows leave the chain only from its old end, through an anchor that was true when written;
/// no session setting opens the way, and a forged anchor cannot hide a gap.
#[tokio::test]
async fn the_chain_cannot_be_cut_at_its_end_or_re_anchored() {
    let app = spawn_app().await;
    run_scenarios_1_5_7(&app).await;
    let mut conn = app.db.acquire().await.unwrap();
    // The purge guard of old: a session setting anyone could set.
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query("SET LOCAL aegis.retention = 'on'")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("DELETE FROM action_audit_logs WHERE chain_seq = 3")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot be deleted"), "{err}");
    drop(tx);

    let hash_of = |seq: i64| {
        sqlx::query_scalar::<_, String>(
            "SELECT hash::text FROM action_audit_logs WHERE chain_seq = $1",
        )
        .bind(seq)
    };
    let h3 = hash_of(3).fetch_one(&mut *conn).await.unwrap();
    let h1 = hash_of(1).fetch_one(&mut *conn).await.unwrap();
    for (after, hash, purged, why) in [
        (3, h3.as_str(), 3, "covers the newest row"),
        (1, h3.as_str(), 1, "names the wrong hash"),
        (1, h1.as_str(), 5, "miscounts its rows"),
    ] {
        let err = sqlx::query(
            "INSERT INTO audit_chain_anchors (after_seq, after_hash, purged_rows) VALUES ($1, $2, $3)",
        )
        .bind(after)
        .bind(hash)
        .bind(purged)
        .execute(&mut *conn)
        .await
        .unwrap_err();
        assert!(err.to_string().contains("anchor"), "{why}: {err}");
    }

    // Behind the triggers' back (as a database owner could): a gap, then a forged anchor
    // over it. The gap is found, and so is the anchor.
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM action_audit_logs WHERE chain_seq = 2")
        .execute(&mut *conn)
        .await
        .unwrap();
    let v: Value = app.audit_get("/audit/verify").await.json().await.unwrap();
    assert_eq!(v["valid"], false, "{v}");
    sqlx::query(
        "INSERT INTO audit_chain_anchors (after_seq, after_hash, purged_rows) VALUES (3, $1, 3)",
    )
    .bind(&h3)
    .execute(&mut *conn)
    .await
    .unwrap();
    let v: Value = app.audit_get("/audit/verify").await.json().await.unwrap();
    assert_eq!(
        v["valid"], false,
        "a forged anchor over rows still there: {v}"
    );
    assert!(
        v["firstBroken"]["reason"]
            .as_str()
            .unwrap()
            .contains("not purged"),
        "{v}"
    );
    // Anchors cannot be rewritten either (with the triggers on).
    sqlx::query("SET session_replication_role = origin")
        .execute(&mut *conn)
        .await
        .unwrap();
    let err = sqlx::query("DELETE FROM audit_chain_anchors")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot be changed"), "{err}");
}

#[tokio::test]
async fn concurrent_final_rows_chain_without_gaps_and_fill_the_statistics() {
    let app = spawn_app_with(&[("HTTP_RATE_LIMIT_MAX", "1000")]).await;
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let client = app.client.clone();
        let url = format!("{}/executor/execute", app.address);
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&body_a())
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 400);
    }
    let v: Value = app.audit_get("/audit/verify").await.json().await.unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["checked"], 30);
    let seqs: Vec<i64> =
        sqlx::query_scalar("SELECT chain_seq FROM action_audit_logs ORDER BY chain_seq")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(seqs, (1..=30).collect::<Vec<i64>>());
    let rejected: i32 = sqlx::query_scalar(
        "SELECT count FROM action_statistics WHERE status = 'rejected' AND action_type = 'restart_pod'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(rejected, 30);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = spawn_app().await;
    let mut b = body_a();
    b["actionParams"]["podName"] = json!("x".repeat(200 * 1024));
    let res = app.post_raw("/executor/execute", &b).await;
    assert_eq!(res.status(), 413);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["statusCode"], 413);
}

#[tokio::test]
async fn the_audit_api_may_be_open_outside_production() {
    let app = spawn_app_with(&[("AUDIT_API_AUTH", "none")]).await;
    assert_eq!(app.get("/audit/statistics").await.status(), 200);
}
