//! SQL metacharacters in string fields (issue 12) are data, never SQL: they are stored and read
//! back verbatim, filters match them literally, and nothing else in the database changes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth_support::spawn_with_admin;

const NASTY: &[&str] = &[
    "'; DROP TABLE users; --",
    "Robert'); DROP TABLE alerts;--",
    "' OR '1'='1",
    "\" OR \"\"=\"",
    "%_\\%",
    "$1 $$ $tag$ ::text",
    "*/ /* -- ;",
    "😀 ' \" ` \\",
];

/// No rate limits and no lockout: the hostile logins below are about input, not brute force.
async fn spawn_unthrottled() -> crate::helpers::TestApp {
    spawn_with_admin(&[
        ("RATE_LIMIT_DISABLED", "true"),
        ("LOGIN_LOCKOUT_THRESHOLD", "0"),
    ])
    .await
}

#[tokio::test]
async fn sql_metacharacters_in_string_fields_are_harmless() {
    let app = spawn_unthrottled().await;
    let admin = app.admin().await;
    let token = Some(admin.access.as_str());
    let pool = app.pool().await;
    let users_before: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    let policies_before: i64 = sqlx::query_scalar("SELECT count(*) FROM policies")
        .fetch_one(&pool)
        .await
        .unwrap();

    for (i, nasty) in NASTY.iter().enumerate() {
        // Login with a hostile e-mail or password: refused, not an error, never a session.
        let res = app
            .post(
                "/api/v1/auth/login",
                json!({"email": nasty, "password": nasty}),
            )
            .await;
        assert!(
            matches!(res.status().as_u16(), 400 | 401),
            "{nasty}: login answered {}",
            res.status()
        );
        let res = app
            .post(
                "/api/v1/auth/login",
                json!({"email": "admin@aegis.local", "password": nasty}),
            )
            .await;
        assert_eq!(res.status(), 401, "{nasty}");

        // Stored and read back verbatim.
        let res = app
            .send(
                Method::POST,
                "/api/v1/alerts",
                token,
                Some(
                    json!({"title": nasty, "description": nasty, "severity": "high",
                            "metadata": {"note": nasty}}),
                ),
            )
            .await;
        assert_eq!(res.status(), 201, "{nasty}");
        let alert: Value = res.json().await.unwrap();
        let res = app
            .send(Method::GET, "/api/v1/alerts?limit=1000", token, None)
            .await;
        let list: Vec<Value> = res.json().await.unwrap();
        let back = list
            .iter()
            .find(|a| a["id"] == alert["id"])
            .expect("the new alert is listed");
        assert_eq!(back["title"], *nasty);
        assert_eq!(back["description"], *nasty);
        assert_eq!(back["metadata"]["note"], *nasty);

        let name = format!("policy {i} {nasty}");
        let res = app
            .send(
                Method::POST,
                "/api/v1/policy",
                token,
                Some(
                    json!({"name": name, "description": nasty, "type": "api_access",
                            "effect": "allow", "priority": 10, "conditions": {"role": nasty},
                            "actions": ["read"], "resources": [format!("/x/{nasty}")],
                            "isActive": true}),
                ),
            )
            .await;
        assert_eq!(res.status(), 201, "{nasty}: {}", res.text().await.unwrap());

        // Filters match literally: a hostile filter value finds nothing (and is no error).
        let res = app
            .send(
                Method::GET,
                &format!(
                    "/api/v1/policy/audit/logs?userId={}&action={}",
                    urlencode(nasty),
                    urlencode(nasty)
                ),
                token,
                None,
            )
            .await;
        assert_eq!(res.status(), 200, "{nasty}");
        assert_eq!(res.json::<Value>().await.unwrap(), json!([]));
        let res = app
            .send(
                Method::GET,
                &format!("/api/v1/alerts?severity={}", urlencode(nasty)),
                token,
                None,
            )
            .await;
        assert_eq!(res.status(), 400, "{nasty}");
    }

    // Nothing else changed: every user is still there, every alert and policy was added.
    let users_after: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users_after, users_before);
    let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(alerts, NASTY.len() as i64);
    let policies: i64 = sqlx::query_scalar("SELECT count(*) FROM policies")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(policies, policies_before + NASTY.len() as i64);
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM policies WHERE name LIKE 'policy %' ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    for (i, nasty) in NASTY.iter().enumerate() {
        assert!(names.contains(&format!("policy {i} {nasty}")), "{nasty}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// U+0000, which PostgreSQL's `text` and `jsonb` refuse, in every free-text field of the write
/// routes: a clear answer (stored without it, or a 4xx), never a 500.
#[tokio::test]
async fn nul_characters_in_string_fields_never_cause_a_server_error() {
    let app = spawn_unthrottled().await;
    let admin = app.admin().await;
    let token = Some(admin.access.as_str());
    let n = "a\u{0}b";
    let calls: Vec<(Method, &str, Value)> = vec![
        (
            Method::POST,
            "/api/v1/auth/login",
            json!({"email": n, "password": n}),
        ),
        (
            Method::POST,
            "/api/v1/auth/signup",
            json!({"email": "x@example.com", "password": "Password123!", "firstName": n, "lastName": n}),
        ),
        (
            Method::POST,
            "/api/v1/auth/forgot-password",
            json!({"email": n}),
        ),
        (
            Method::POST,
            "/api/v1/logs",
            json!({"level": "error", "message": n, "service": n, "context": {"k\u{0}": n}}),
        ),
        (
            Method::POST,
            "/api/v1/policy",
            json!({"name": n, "description": n, "type": "api_access", "effect": "allow", "priority": 10, "conditions": {"role": n}, "actions": [n], "resources": [n], "isActive": true}),
        ),
        (
            Method::POST,
            "/api/v1/policy/evaluate",
            json!({"type": "api_access", "action": n, "resource": n, "context": {"userId": n, "role": n, "metadata": {"k\u{0}": n}}}),
        ),
        (
            Method::POST,
            "/api/v1/policy/dry-run",
            json!({"policy": {"name": n, "type": "api_access", "effect": "allow", "priority": 1, "conditions": {}, "actions": ["*"], "resources": ["*"]}, "request": {"type": "api_access", "action": n, "resource": n, "context": {}}}),
        ),
        (
            Method::POST,
            "/api/v1/remediation/incidents",
            json!({"target": {"namespace": n, "deployment": n}, "recommendedAction": "alert_admin", "reason": n}),
        ),
        (
            Method::PUT,
            "/api/v1/settings",
            json!({"settings": {"k\u{0}": n}}),
        ),
        (
            Method::POST,
            "/api/v1/users",
            json!({"email": "y@example.com", "password": "Password123!", "firstName": n, "lastName": n}),
        ),
    ];
    for (method, path, body) in calls {
        let res = app.send(method.clone(), path, token, Some(body)).await;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert!(
            status.as_u16() < 500,
            "{method} {path} answered {status}: {text}"
        );
    }
    for path in [
        "/api/v1/logs?service=a%00b&level=error",
        "/api/v1/policy/audit/logs?userId=a%00b&action=a%00b",
        "/api/v1/remediation/incidents?namespace=a%00b",
        "/api/v1/users?search=a%00b",
    ] {
        let res = app.send(Method::GET, path, token, None).await;
        assert!(
            res.status().as_u16() < 500,
            "GET {path} answered {}",
            res.status()
        );
    }
}
