//! The binary's start-up rules.

use std::process::Command;

#[test]
fn production_with_a_placeholder_jwt_secret_refuses_to_start_and_names_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_aegis-backend"))
        .env_clear()
        .env("APP_ENV", "production")
        .env("JWT_SECRET", "change_this")
        .env(
            "JWT_REFRESH_SECRET",
            "another-value-that-is-long-enough-0123",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
    assert!(
        !stderr.contains("change_this"),
        "the secret itself is never printed"
    );
}

#[test]
fn unknown_commands_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_aegis-backend"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A PostgreSQL that accepts connections but never answers: creating the database and
/// migrating give up within their timeouts, and the error names the cause.
#[tokio::test]
async fn start_up_against_a_hung_postgres_fails_within_its_timeouts() {
    use std::time::Duration;

    use aegis_common::db::{DbConfig, create_database_if_missing, migrate_with_retry};

    let proxy = aegis_test_support::FaultProxy::start("127.0.0.1:5432".parse().unwrap())
        .await
        .unwrap();
    proxy.stall();
    let url = format!("postgres://postgres@{}/aegis_hung", proxy.addr());
    let mut cfg = DbConfig::from_url(&url.into()).unwrap();
    cfg.acquire_timeout = Duration::from_millis(500);
    let bounded = Duration::from_secs(30);

    let created = tokio::time::timeout(bounded, create_database_if_missing(&cfg)).await;
    let err = created.expect("creating the database hung").unwrap_err();
    assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err}");

    let pool = cfg.pool();
    let migrated = tokio::time::timeout(
        bounded,
        migrate_with_retry(&pool, &aegis_backend::startup::MIGRATOR, 2),
    )
    .await;
    let err = migrated.expect("migrating hung").unwrap_err();
    let boxed: aegis_common::service::BoxError = anyhow::Error::new(err)
        .context("failed to migrate the aegis_backend database")
        .into();
    let chain = aegis_common::service::error_chain(boxed.as_ref());
    assert!(
        chain.starts_with("failed to migrate the aegis_backend database: "),
        "{chain}"
    );
    assert!(chain.contains("timed out"), "{chain}");
}

/// While it waits for its database, the service answers liveness (so that Kubernetes does not
/// restart a service that is only waiting) and refuses everything else with 503; SIGTERM then
/// ends it cleanly.
#[tokio::test]
async fn a_starting_service_answers_liveness_and_stops_cleanly_while_it_waits_for_postgres() {
    use std::time::Duration;

    let proxy = aegis_test_support::FaultProxy::start("127.0.0.1:5432".parse().unwrap())
        .await
        .unwrap();
    proxy.stall();
    let port = aegis_common::server::unused_port().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_aegis-backend"))
        .env_clear()
        .env("APP_ENV", "test")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LOG_LEVEL", "warn")
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@{}/aegis_starting", proxy.addr()),
        )
        .env("REDIS_URL", aegis_test_support::redis_url())
        .env("JWT_SECRET", "starting-access-secret-0123456789abcdef")
        .env(
            "JWT_REFRESH_SECRET",
            "starting-refresh-secret-0123456789abcdef",
        )
        .env("HEALTH_CHECK_AI_ENGINE", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{base}{path}")).send();
    let mut live = false;
    for _ in 0..200 {
        if get("/api/v1/health/ping")
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            live = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(live, "liveness was not served while the database hangs");
    assert_eq!(get("/health/ping").await.unwrap().status(), 200);
    assert_eq!(get("/health/ready").await.unwrap().status(), 503);
    let res = get("/api/v1/alerts").await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "starting");

    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("SIGTERM during start-up ends the process")
        .unwrap();
    assert!(
        status.success(),
        "a clean exit, not death by signal: {status}"
    );
}
