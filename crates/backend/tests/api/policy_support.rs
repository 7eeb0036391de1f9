//! Helpers for the policy tests: apps with an admin, an auditor and an API key; two replicas
//! sharing one database and Redis prefix; an app whose database sits behind a fault proxy.

use std::time::Duration;

use aegis_backend::{config::Config, startup::Application};
use aegis_test_support::FaultProxy;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{
    auth_support::{ADMIN_EMAIL, ADMIN_PASSWORD, Tokens},
    helpers::{TestApp, env_for_test},
};

pub const API_KEY: &str = "test-key";
pub const PW: &str = "Password123!";
pub const EVALUATE: &str = "/api/v1/policy/evaluate";

pub fn base_vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL),
        ("BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("SERVICE_API_KEYS", API_KEY),
    ]
}

fn test_app(app: &Application, database_url: &str) -> TestApp {
    TestApp {
        address: format!("http://127.0.0.1:{}", app.port()),
        client: reqwest::Client::new(),
        database_url: database_url.to_owned(),
        state: app.state().clone(),
    }
}

/// A backend with the bootstrap admin and the API key `test-key`.
pub async fn spawn_policy_app(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = base_vars();
    vars.extend_from_slice(extra);
    crate::helpers::spawn_app_with(&vars).await
}

/// Two replicas on one database and one Redis prefix.
pub async fn spawn_pair() -> (TestApp, TestApp) {
    let (env, url) = env_for_test(&base_vars()).await;
    let a = Application::build(Config::from_env(&env).unwrap())
        .await
        .unwrap();
    let b = Application::build(Config::from_env(&env).unwrap())
        .await
        .unwrap();
    let (ta, tb) = (test_app(&a, &url), test_app(&b, &url));
    tokio::spawn(a.run_until(std::future::pending()));
    tokio::spawn(b.run_until(std::future::pending()));
    (ta, tb)
}

/// An app whose database connection goes through a fault proxy. Not yet running.
pub async fn build_behind_proxy(
    extra: &[(&str, &str)],
) -> (Application, TestApp, FaultProxy, String) {
    let proxy = FaultProxy::start("127.0.0.1:5432".parse().unwrap())
        .await
        .unwrap();
    let mut vars = base_vars();
    vars.extend_from_slice(extra);
    let (mut env, url) = env_for_test(&vars).await;
    let proxied = url.replacen("127.0.0.1:5432", &proxy.addr().to_string(), 1);
    assert_ne!(proxied, url, "the test database must be on 127.0.0.1:5432");
    env.set("DATABASE_URL", proxied);
    let app = Application::build(Config::from_env(&env).unwrap())
        .await
        .unwrap();
    let t = test_app(&app, &url);
    (app, t, proxy, url)
}

impl TestApp {
    pub async fn evaluate_with_key(&self, body: Value) -> Response {
        self.client
            .post(format!("{}{EVALUATE}", self.address))
            .header("X-API-Key", API_KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn evaluate_ok(&self, token: &str, body: Value) -> Value {
        let res = self
            .send(Method::POST, EVALUATE, Some(token), Some(body.clone()))
            .await;
        assert_eq!(res.status(), 200, "{body}");
        res.json().await.unwrap()
    }

    /// A user holding `role` (through the admin's role endpoint).
    pub async fn user_with_role(&self, admin: &Tokens, email: &str, role: &str) -> Tokens {
        let t = self.signup(email, PW).await;
        if role != "user" {
            let res = self
                .send(
                    Method::PUT,
                    &format!("/api/v1/users/{}/roles", t.user_id()),
                    Some(&admin.access),
                    Some(json!({"roles": [role]})),
                )
                .await;
            assert_eq!(res.status(), 200);
        }
        t
    }

    pub async fn create_policy(&self, admin: &Tokens, body: Value) -> Value {
        let res = self
            .send(
                Method::POST,
                "/api/v1/policy",
                Some(&admin.access),
                Some(body.clone()),
            )
            .await;
        assert_eq!(res.status(), 201, "{body}");
        res.json().await.unwrap()
    }
}

pub async fn audit_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM policy_audit_logs")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Polls until `policy_audit_logs` holds `n` rows (the writer batches off the request path).
pub async fn wait_for_audit_rows(pool: &PgPool, n: i64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let c = audit_count(pool).await;
        if c == n {
            return;
        }
        assert!(c < n, "more audit rows than evaluations: {c} > {n}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {c} of {n} audit rows after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
