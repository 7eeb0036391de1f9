//! PostgreSQL restarted under load (issue 12), on a private cluster (`initdb`, never the
//! machine's server): evaluations keep being answered while it is down, every answered
//! decision's audit row is written once it is back, and the backend serves database-backed
//! requests again without being restarted.

use std::{collections::HashSet, time::Duration};

use aegis_backend::{config::Config, startup::Application};
use aegis_common::config::Env;
use aegis_test_support::{PrivatePostgres, redis_prefix, redis_url};
use serde_json::{Value, json};

const KEY: &str = "pg-restart-service-key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_load_loses_no_accepted_write() {
    let pg = PrivatePostgres::start().expect("a private PostgreSQL cluster");
    let database_url = pg.url("aegis_backend");
    let mut env = Env::from_pairs([
        ("APP_ENV", "test"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("JWT_SECRET", "pg-restart-access-secret-0123456789abcdef"),
        (
            "JWT_REFRESH_SECRET",
            "pg-restart-refresh-secret-0123456789abcdef",
        ),
        ("SERVICE_API_KEYS", KEY),
        ("RATE_LIMIT_DISABLED", "true"),
        ("HEALTH_CHECK_AI_ENGINE", "false"),
        ("REMEDIATION_MODE", "off"),
        ("LOG_TO_DB", "false"),
    ]);
    env.set("DATABASE_URL", database_url.clone());
    env.set("REDIS_URL", redis_url());
    env.set("REDIS_KEY_PREFIX", redis_prefix());
    let app = Application::build(Config::from_env(&env).unwrap())
        .await
        .expect("backend builds on the private cluster");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let client = client.clone();
        let url = format!("{base}/api/v1/policy/evaluate");
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 5)).await;
            let res = client
                .post(url)
                .header("X-API-Key", KEY)
                .json(&json!({"type": "api_access", "action": "read",
                              "resource": format!("/api/items/{i}"),
                              "context": {"userId": format!("user-{i}")}}))
                .send()
                .await;
            match res {
                Ok(r) if r.status() == 200 => r.json::<Value>().await.ok()?["decisionId"]
                    .as_str()
                    .map(str::to_owned),
                _ => None,
            }
        }));
    }
    // Down for about half a second in the middle of the load, then back on the same port.
    tokio::time::sleep(Duration::from_millis(400)).await;
    pg.stop().expect("fast shutdown");
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.start_again().expect("restart");

    let mut answered = HashSet::new();
    for t in tasks {
        answered.extend(t.await.unwrap());
    }
    assert!(
        answered.len() >= 250,
        "evaluations are answered through the outage: {}",
        answered.len()
    );

    // Every answered decision reaches policy_audit_logs once PostgreSQL is back.
    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stored: HashSet<String> =
            sqlx::query_scalar::<_, String>("SELECT id::text FROM policy_audit_logs")
                .fetch_all(&pool)
                .await
                .unwrap()
                .into_iter()
                .collect();
        let missing = answered.difference(&stored).count();
        if missing == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} answered decisions still without an audit row"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The same process serves database writes again: a signal opens an incident.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let res = client
            .post(format!("{base}/api/v1/remediation/signals"))
            .header("X-API-Key", KEY)
            .json(&json!({
                "source": "ai-engine", "kind": "anomaly", "observedAt": "2026-11-25T10:00:00Z",
                "target": {"namespace": "shop", "deployment": "web"},
                "severity": "high", "score": 0.9, "confidence": 0.9,
                "recommendedAction": "scale_up", "window": {"metrics": []}, "prediction": {}
            }))
            .send()
            .await
            .unwrap();
        if res.status() == 202 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backend did not recover: {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let incidents: i64 = sqlx::query_scalar("SELECT count(*) FROM incidents")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(incidents, 1);
}
