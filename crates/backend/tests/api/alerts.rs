//! `/alerts` and the dashboard metrics API: alerts are raised, listed and resolved (the push
//! to sockets is in `socket.rs`), plus filters, pagination, validation and access.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    auth_support::{Tokens, assert_error, spawn_with_admin},
    helpers::TestApp,
};

const PW: &str = "Password123!";

pub async fn auditor(app: &TestApp, email: &str) -> Tokens {
    let admin = app.admin().await;
    let aud = app.signup(email, PW).await;
    let res = app
        .send(
            Method::PUT,
            &format!("/api/v1/users/{}/roles", aud.user_id()),
            Some(&admin.access),
            Some(json!({"roles": ["auditor"]})),
        )
        .await;
    assert_eq!(res.status(), 200);
    app.login_ok(email, PW).await
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let res = app
        .send(Method::POST, "/api/v1/alerts", Some(token), Some(body))
        .await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

#[tokio::test]
async fn alert_lifecycle_filters_and_fresh_counts() {
    let app = spawn_with_admin(&[]).await;
    let u1 = app.signup("u1@example.com", PW).await;

    let before: Value = app
        .get_as("/api/v1/metrics/current", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["openAlerts"], 0);

    let alert = create(
        &app,
        &u1.access,
        json!({"title":"High CPU","severity":"critical","description":"api-pod-1 at 95%"}),
    )
    .await;
    assert_eq!(alert["title"], "High CPU");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["status"], "open");
    assert_eq!(alert["description"], "api-pod-1 at 95%");
    assert_eq!(alert["metadata"], json!({}));
    assert!(alert["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(alert["updatedAt"].as_str().unwrap().ends_with('Z'));
    let id = alert["id"].as_str().unwrap().to_owned();

    // The cached count was invalidated by the write: no 60 s staleness.
    let now: Value = app
        .get_as("/api/v1/metrics/current", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["openAlerts"], 1);
    assert!(now["timestamp"].as_str().unwrap().ends_with('Z'));

    let path = format!("/api/v1/alerts/{id}");
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&u1.access),
            Some(json!({"status": "acknowledged"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let acked: Value = res.json().await.unwrap();
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(acked["title"], "High CPU", "untouched fields stay");

    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&u1.access),
            Some(json!({"status": "resolved", "metadata": {"by": "test"}})),
        )
        .await;
    let resolved: Value = res.json().await.unwrap();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["metadata"], json!({"by": "test"}));

    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&u1.access),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let res = app
        .send(
            Method::PATCH,
            &format!("/api/v1/alerts/{}", Uuid::new_v4()),
            Some(&u1.access),
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_error(res, 404, "Alert not found").await;
    let res = app
        .send(
            Method::PATCH,
            "/api/v1/alerts/not-a-uuid",
            Some(&u1.access),
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_error(res, 400, "Validation failed (uuid is expected)").await;

    let list: Vec<Value> = app
        .get_as(
            "/api/v1/alerts?severity=critical,high&status=resolved&_t=1",
            &u1.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    let open: Vec<Value> = app
        .get_as("/api/v1/alerts?status=open", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    assert!(open.is_empty());

    let hist: Vec<Value> = app
        .get_as("/api/v1/metrics/historical?days=7", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(
        hist,
        vec![json!({"date": today, "severity": "critical", "count": 1})]
    );
    for bad in ["0", "366", "abc"] {
        let res = app
            .get_as(
                &format!("/api/v1/metrics/historical?days={bad}"),
                &u1.access,
            )
            .await;
        assert_eq!(res.status(), 400, "days={bad}");
    }
}

#[tokio::test]
async fn alert_lists_are_newest_first_and_paginated() {
    let app = spawn_with_admin(&[]).await;
    let u1 = app.signup("u1@example.com", PW).await;
    for (i, sev) in [
        "info", "low", "medium", "warning", "high", "error", "critical",
    ]
    .iter()
    .enumerate()
    {
        create(
            &app,
            &u1.access,
            json!({"title": format!("a{i}"), "severity": sev, "metadata": {"i": i}}),
        )
        .await;
    }
    let all: Vec<Value> = app
        .get_as("/api/v1/alerts", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    let titles: Vec<&str> = all.iter().map(|a| a["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["a6", "a5", "a4", "a3", "a2", "a1", "a0"]);

    let page2: Vec<Value> = app
        .get_as("/api/v1/alerts?limit=3&page=2", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    let titles: Vec<&str> = page2.iter().map(|a| a["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["a3", "a2", "a1"]);
    let offset: Vec<Value> = app
        .get_as("/api/v1/alerts?limit=2&offset=5", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(offset.len(), 2);
    assert_eq!(offset[1]["title"], "a0");

    for bad in [
        "limit=0",
        "limit=1001",
        "severity=urgent",
        "status=closed",
        "page=0",
    ] {
        let res = app
            .get_as(&format!("/api/v1/alerts?{bad}"), &u1.access)
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn alert_bodies_are_validated_strictly() {
    let app = spawn_with_admin(&[]).await;
    let u1 = app.signup("u1@example.com", PW).await;
    for body in [
        json!({"severity": "critical"}),
        json!({"title": "", "severity": "critical"}),
        json!({"title": "x".repeat(256), "severity": "critical"}),
        json!({"title": "t"}),
        json!({"title": "t", "severity": "urgent"}),
        json!({"title": "t", "severity": "critical", "extra": 1}),
        json!({"title": "t", "severity": "critical", "metadata": [1]}),
        json!({"title": 5, "severity": "critical"}),
    ] {
        let res = app
            .send(
                Method::POST,
                "/api/v1/alerts",
                Some(&u1.access),
                Some(body.clone()),
            )
            .await;
        assert_eq!(res.status(), 400, "{body}");
    }
}

#[tokio::test]
async fn alert_access_follows_the_matrix() {
    let app = spawn_with_admin(&[("SERVICE_API_KEYS", "test-key")]).await;
    let aud = auditor(&app, "aud@example.com").await;
    let body = json!({"title": "t", "severity": "high"});

    let res = app.get("/api/v1/alerts").await;
    assert_eq!(res.status(), 401);
    let res = app.get("/api/v1/metrics/current").await;
    assert_eq!(res.status(), 401);

    let res = app
        .send(
            Method::POST,
            "/api/v1/alerts",
            Some(&aud.access),
            Some(body.clone()),
        )
        .await;
    assert_error(res, 403, "Insufficient permissions").await;
    let res = app.get_as("/api/v1/alerts", &aud.access).await;
    assert_eq!(res.status(), 200, "auditors read alerts");

    // A service key may list and create but not patch.
    let res = app
        .client
        .post(format!("{}/api/v1/alerts", app.address))
        .header("X-API-Key", "test-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .client
        .get(format!("{}/api/v1/alerts", app.address))
        .header("X-API-Key", "test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), 1);
    let res = app
        .client
        .patch(format!("{}/api/v1/alerts/{id}", app.address))
        .header("X-API-Key", "test-key")
        .json(&json!({"status": "resolved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .send(
            Method::PATCH,
            &format!("/api/v1/alerts/{id}"),
            Some(&aud.access),
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn nul_characters_are_removed_before_validation_and_storage() {
    let app = spawn_with_admin(&[]).await;
    let u1 = app.signup("u1@example.com", PW).await;
    let created = create(
        &app,
        &u1.access,
        json!({"title": "CPU\u{0}high", "description": "d\u{0}", "severity": "high",
               "metadata": {"k\u{0}ey": ["v\u{0}"]}}),
    )
    .await;
    assert_eq!(created["title"], "CPUhigh");
    assert_eq!(created["description"], "d");
    assert_eq!(created["metadata"], json!({"key": ["v"]}));

    // The case the fuzzer found: PATCH with U+0000 in the title answered 500.
    let path = format!("/api/v1/alerts/{}", created["id"].as_str().unwrap());
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&u1.access),
            Some(
                json!({"title": "\u{0}±,ëÓTý𝛭", "description": "x\u{0}y", "severity": null,
                        "status": null}),
            ),
        )
        .await;
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["title"], "±,ëÓTý𝛭");
    assert_eq!(patched["description"], "xy");
    assert_eq!(patched["severity"], "high", "null leaves the field alone");

    // Nothing left once NUL is removed: the title is empty, a clear 400 on both routes.
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&u1.access),
            Some(json!({"title": "\u{0}"})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let res = app
        .send(
            Method::POST,
            "/api/v1/alerts",
            Some(&u1.access),
            Some(json!({"title": "\u{0}\u{0}", "severity": "low"})),
        )
        .await;
    assert_eq!(res.status(), 400);
}
