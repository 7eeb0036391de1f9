//! `GET /logs` and `POST /logs` (store, filter and page) and the
//! tracing layer that stores the backend's own warn-and-above events.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    alerts::auditor,
    auth_support::{assert_error, spawn_with_admin},
};

#[tokio::test]
async fn logs_are_ingested_filtered_and_paginated() {
    let app = spawn_with_admin(&[("SERVICE_API_KEYS", "test-key")]).await;
    let admin = app.admin().await;
    let aud = auditor(&app, "aud@example.com").await;
    let user = app.signup("u1@example.com", "Password123!").await;

    let batch = json!([
        {"timestamp": "2024-01-25T10:00:00Z", "level": "info", "service": "api", "message": "started"},
        {"timestamp": "2024-01-25T11:00:00Z", "level": "error", "service": "api", "message": "Out of memory: 100%_used", "context": {"pod": "api-1"}, "traceId": "abc"},
        {"timestamp": "2024-01-25T12:00:00Z", "level": "warn", "service": "worker", "message": "slow job"},
    ]);
    let res = app
        .client
        .post(format!("{}/api/v1/logs", app.address))
        .header("X-API-Key", "test-key")
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"accepted": 3}));
    let res = app
        .send(
            Method::POST,
            "/api/v1/logs",
            Some(&admin.access),
            Some(json!({"level": "fatal", "service": "db", "message": "down"})),
        )
        .await;
    assert_eq!(
        res.status(),
        202,
        "a single entry, timestamp defaults to now"
    );

    let page: Value = app
        .get_as("/api/v1/logs?page=1&limit=50&level=error&_t=1", &aud.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["page"], 1);
    assert_eq!(page["limit"], 50);
    let log = &page["logs"][0];
    assert_eq!(log["service"], "api");
    assert_eq!(log["level"], "error");
    assert_eq!(log["context"], json!({"pod": "api-1"}));
    assert_eq!(log["timestamp"], "2024-01-25T11:00:00.000Z");
    assert!(log["id"].is_string());

    let all: Value = app
        .get_as("/api/v1/logs", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["total"], 4);
    assert_eq!(all["logs"][0]["service"], "db", "newest first");

    let page2: Value = app
        .get_as(
            "/api/v1/logs?page=2&limit=2&service=api,worker",
            &admin.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page2["total"], 3);
    assert_eq!(page2["logs"].as_array().unwrap().len(), 1);
    assert_eq!(page2["logs"][0]["message"], "started");

    // datetime-local bounds (no zone, read as UTC), inclusive; case-insensitive search with
    // LIKE metacharacters taken literally.
    let window: Value = app
        .get_as(
            "/api/v1/logs?from=2024-01-25T11:00&to=2024-01-25T12:00:00Z",
            &admin.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(window["total"], 2);
    let found: Value = app
        .get_as("/api/v1/logs?search=MEMORY:%20100%25_", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["total"], 1);
    let none: Value = app
        .get_as("/api/v1/logs?search=%25", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["total"], 1, "only the message containing a literal %");

    for bad in ["page=0", "limit=501", "level=loud", "from=yesterday"] {
        let res = app
            .get_as(&format!("/api/v1/logs?{bad}"), &admin.access)
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    let res = app.get_as("/api/v1/logs", &user.access).await;
    assert_error(res, 403, "Insufficient permissions").await;
    let res = app
        .send(
            Method::POST,
            "/api/v1/logs",
            Some(&user.access),
            Some(json!({"level": "info", "service": "x", "message": "m"})),
        )
        .await;
    assert_eq!(res.status(), 403);
    for bad in [
        json!({"level": "loud", "service": "x", "message": "m"}),
        json!({"level": "info", "service": "", "message": "m"}),
        json!({"level": "info", "service": "x", "message": "m", "extra": 1}),
        json!({"level": "info", "service": "x"}),
        json!([]),
        Value::Array(vec![
            json!({"level": "info", "service": "x", "message": "m"});
            501
        ]),
    ] {
        let res = app
            .send(Method::POST, "/api/v1/logs", Some(&admin.access), Some(bad))
            .await;
        assert_eq!(res.status(), 400);
    }
}

#[tokio::test]
async fn the_backends_own_warnings_and_errors_reach_the_table_off_the_request_path() {
    use aegis_backend::db::logs::sink::{DbLogLayer, spawn_writer};
    use tracing_subscriber::layer::SubscriberExt as _;

    let app = spawn_with_admin(&[]).await;
    let admin = app.admin().await;
    let (layer, rx) = DbLogLayer::new("aegis-backend");
    let writer = spawn_writer(app.pool().await, rx);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("too chatty for the table");
        tracing::warn!(pod = "api-1", attempts = 3, "disk nearly full");
        tracing::error!(
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
            "request failed"
        );
        tracing::error!(target: "sqlx::query", "skipped: the writer's own driver");
        tracing::error!(target: "aegis_backend::db::logs::sink", "skipped: the writer itself");
    });

    let mut page = Value::Null;
    for _ in 0..100 {
        page = app
            .get_as("/api/v1/logs?service=aegis-backend", &admin.access)
            .await
            .json()
            .await
            .unwrap();
        if page["total"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(page["total"], 2, "{page}");
    let rows = page["logs"].as_array().unwrap();
    let warn = rows.iter().find(|r| r["level"] == "warn").unwrap();
    assert_eq!(warn["message"], "disk nearly full");
    assert_eq!(warn["context"]["pod"], "api-1");
    assert_eq!(warn["context"]["attempts"], 3);
    let error = rows.iter().find(|r| r["level"] == "error").unwrap();
    assert_eq!(error["message"], "request failed");
    assert_eq!(error["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    writer.abort();
}

/// Counts every event the subscriber sees.
struct Counter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counter {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_failing_log_insert_is_not_reported_through_tracing() {
    use aegis_backend::db::logs::sink::{DbLogLayer, spawn_writer};
    use tracing_subscriber::layer::SubscriberExt as _;

    // A pool to a port nothing listens on: every insert fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://nobody:nothing@127.0.0.1:{}/none",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(200))
        .connect_lazy(&url)
        .unwrap();
    let events = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (layer, rx) = DbLogLayer::new("aegis-backend");
    // The writer runs on this (current-thread) runtime under the same subscriber, so anything
    // it reported through tracing would be counted here and queued for the table again.
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(Counter(events.clone()));
    let guard = tracing::subscriber::set_default(subscriber);
    let writer = spawn_writer(pool, rx);
    tracing::error!("one event");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let seen = events.load(std::sync::atomic::Ordering::SeqCst);
    drop(guard);
    writer.abort();
    assert_eq!(
        seen, 1,
        "only the original event; the failed insert went to stderr"
    );
}
