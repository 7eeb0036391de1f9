//! Request helpers for the auth and user tests (kept out of `helpers.rs`, which is shared).

use base64::Engine as _;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_with};

pub const ADMIN_EMAIL: &str = "admin@aegis.local";
pub const ADMIN_PASSWORD: &str = "Admin123456";
pub const ACCESS_SECRET: &str = "test-access-secret-0123456789abcdef";
pub const REFRESH_SECRET: &str = "test-refresh-secret-0123456789abcdef";

pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl Tokens {
    pub fn from_body(body: &Value) -> Self {
        Self {
            access: body["accessToken"]
                .as_str()
                .expect("accessToken")
                .to_owned(),
            refresh: body["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_owned(),
        }
    }

    pub fn user_id(&self) -> Uuid {
        claims(&self.access)["sub"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// The unverified payload of a JWT.
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// A backend with the bootstrap admin configured.
pub async fn spawn_with_admin(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL),
        ("BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ];
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

impl TestApp {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.address, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.send(Method::POST, path, None, Some(body)).await
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn pool(&self) -> PgPool {
        PgPool::connect(&self.database_url).await.unwrap()
    }

    pub async fn signup(&self, email: &str, password: &str) -> Tokens {
        let res = self
            .post("/api/v1/auth/signup", json!({"email": email, "password": password, "firstName": "E2E", "lastName": "User"}))
            .await;
        assert_eq!(res.status(), 201, "signup {email}");
        Tokens::from_body(&res.json().await.unwrap())
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn login_ok(&self, email: &str, password: &str) -> Tokens {
        let res = self.login(email, password).await;
        assert_eq!(res.status(), 200, "login {email}");
        Tokens::from_body(&res.json().await.unwrap())
    }

    pub async fn admin(&self) -> Tokens {
        self.login_ok(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    pub async fn refresh_header(&self, token: &str) -> Response {
        self.send(Method::POST, "/api/v1/auth/refresh", Some(token), None)
            .await
    }

    /// `(event_type, details)` of every audit row, oldest first.
    pub async fn audit_events(&self) -> Vec<(String, Value)> {
        sqlx::query_as("SELECT event_type, details FROM audit_events ORDER BY created_at, id")
            .fetch_all(&self.pool().await)
            .await
            .unwrap()
    }
}

/// Asserts the error body.
pub async fn assert_error(res: Response, status: u16, message: &str) -> Value {
    assert_eq!(res.status(), status);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], status);
    assert_eq!(body["message"], message, "{body}");
    assert!(
        body["timestamp"].is_string() && body["path"].is_string() && body["method"].is_string()
    );
    body
}
