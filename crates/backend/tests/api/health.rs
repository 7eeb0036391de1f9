//! Health, readiness, liveness and metrics.

use std::{net::SocketAddr, time::Duration};

use aegis_test_support::FaultProxy;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn ping_is_live_with_uptime() {
    let app = spawn_app().await;
    for path in ["/health/ping", "/api/v1/health/ping"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ok");
        assert!(body["uptime"].as_f64().unwrap() >= 0.0);
    }
}

#[tokio::test]
async fn health_is_ok_when_database_and_redis_are_up() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/health").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["info"]["database"]["status"], "up");
    assert_eq!(body["info"]["redis"]["status"], "up");
}

#[tokio::test]
async fn redis_outage_makes_health_503_but_readiness_stays_up() {
    let redis: SocketAddr = "127.0.0.1:6379".parse().unwrap();
    let proxy = FaultProxy::start(redis).await.unwrap();
    let url = format!("redis://{}", proxy.addr());
    let app = spawn_app_with(&[("REDIS_URL", &url)]).await;
    assert_eq!(app.get("/api/v1/health").await.status(), 200);

    proxy.cut();
    let res = app.get("/api/v1/health").await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "error");
    assert_eq!(body["error"]["redis"]["status"], "down");
    assert_eq!(body["info"]["database"]["status"], "up");

    let ready = app.get("/api/v1/health/ready").await;
    assert_eq!(
        ready.status(),
        200,
        "Redis is fail-open: readiness must not depend on it"
    );
}

#[tokio::test]
async fn unreachable_ai_engine_makes_health_503() {
    let app = spawn_app_with(&[
        ("HEALTH_CHECK_AI_ENGINE", "true"),
        ("AI_ENGINE_URL", "http://127.0.0.1:9"),
    ])
    .await;
    let res = app.get("/health").await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["aiEngine"]["status"], "down");
}

#[tokio::test]
async fn metrics_are_scraped_at_root_and_alias_with_route_templates() {
    let app = spawn_app().await;
    app.get("/api/v1/health/ping").await;
    app.get("/api/v1/no/such/route").await;
    for path in ["/metrics", "/api/v1/prometheus"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let text = res.text().await.unwrap();
        assert!(
            text.contains(
                r#"http_requests_total{method="GET",path="/api/v1/health/ping",status="200"}"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"path="unmatched",status="404""#));
        for family in [
            "policy_evaluations_total",
            "policy_evaluation_duration_seconds",
            "rate_limit_exceeded_total",
            "rate_limit_backend_errors_total",
            "auth_attempts_total",
            "websocket_connections_active",
            "process_resident_memory_bytes",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} missing"
            );
        }
    }
}

#[tokio::test]
async fn unknown_routes_get_the_json_error_body() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/nope?x=1").await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["message"], "Cannot GET /api/v1/nope");
    assert_eq!(body["path"], "/api/v1/nope?x=1");
    assert_eq!(body["error"], "Not Found");
}

#[tokio::test]
async fn readiness_checks_database_and_migrations() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/health/ready").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["info"]["migrations"]["status"], "up");
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_name = '_sqlx_migrations')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(exists, "start-up ran the migrator");
}

/// A Redis that accepts connections but never answers costs one timeout, not one per request:
/// the breaker opens, commands are skipped without being sent, and a background probe closes
/// it once Redis answers again.
#[tokio::test]
async fn a_hung_redis_opens_the_breaker_and_the_probe_closes_it() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aegis_common::redis_conn::{RedisUnavailable, SharedRedis};

    let proxy = aegis_test_support::FaultProxy::start("127.0.0.1:6379".parse().unwrap())
        .await
        .unwrap();
    let redis = SharedRedis::connect(
        &format!("redis://{}", proxy.addr()),
        &aegis_test_support::redis_prefix(),
        Duration::from_millis(300),
    )
    .unwrap();
    let sent = AtomicUsize::new(0);
    let ping = || {
        let sent = &sent;
        let redis = &redis;
        async move {
            redis
                .run(|mut conn| async move {
                    sent.fetch_add(1, Ordering::SeqCst);
                    redis::cmd("PING").query_async::<String>(&mut conn).await
                })
                .await
        }
    };
    let mut up = false;
    for _ in 0..100 {
        if ping().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "Redis never answered through the proxy");

    proxy.stall();
    assert!(ping().await.is_err(), "a hung Redis cannot answer");
    assert!(redis.is_open(), "the timeout opened the breaker");
    let before = sent.load(Ordering::SeqCst);
    for _ in 0..50 {
        assert!(matches!(ping().await, Err(RedisUnavailable::Down)));
    }
    assert_eq!(
        sent.load(Ordering::SeqCst),
        before,
        "nothing is sent while the breaker is open"
    );
    assert!(
        redis.ping().await.is_err(),
        "health checks see the outage at once"
    );

    proxy.restore();
    let mut closed = false;
    for _ in 0..200 {
        if !redis.is_open() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "the probe never closed the breaker");
    assert_eq!(ping().await.unwrap(), "PONG");
}
