//! `/users*`, roles, the audit API and RBAC: user administration plus the access matrix.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    auth_support::{ADMIN_EMAIL, ADMIN_PASSWORD, assert_error, spawn_with_admin},
    helpers::spawn_app_with,
};

const PW: &str = "Password123!";

#[tokio::test]
async fn profile_ownership_and_admin_only_routes() {
    let app = spawn_with_admin(&[]).await;
    let admin = app.admin().await;
    let u1 = app.signup("u1@example.com", PW).await;
    let u2 = app.signup("u2@example.com", PW).await;

    let res = app
        .get_as("/api/v1/users/me?_t=1700000000000", &u1.access)
        .await;
    assert_eq!(res.status(), 200, "unknown query parameters are ignored");
    let text = res.text().await.unwrap();
    for secret in ["password", "refreshToken", "passwordResetToken", "$argon2"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let me: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(me["id"], u1.user_id().to_string());
    assert_eq!(me["email"], "u1@example.com");
    assert_eq!(me["firstName"], "E2E");
    assert_eq!(me["avatar"], Value::Null);
    assert_eq!(me["preferences"], json!({}));
    assert_eq!(me["roles"][0]["name"], "user");
    assert_eq!(
        me["roles"][0]["permissions"],
        json!({"api": ["read", "update"], "data": ["read"]})
    );
    assert!(me["createdAt"].as_str().unwrap().ends_with('Z'));

    assert_error(
        app.get_as("/api/v1/users", &u1.access).await,
        403,
        "Insufficient permissions",
    )
    .await;
    let other = format!("/api/v1/users/{}", u2.user_id());
    assert_error(
        app.get_as(&other, &u1.access).await,
        403,
        "You can only access your own resource",
    )
    .await;
    assert_eq!(app.get_as(&other, &admin.access).await.status(), 200);
    assert_eq!(
        app.get_as(&format!("/api/v1/users/{}", u1.user_id()), &u1.access)
            .await
            .status(),
        200
    );
    assert_error(
        app.get_as("/api/v1/users/not-a-uuid", &admin.access).await,
        400,
        "Validation failed (uuid is expected)",
    )
    .await;
    assert_error(
        app.get_as("/api/v1/users/not-a-uuid", &u1.access).await,
        403,
        "You can only access your own resource",
    )
    .await;
    let missing = Uuid::new_v4();
    assert_error(
        app.get_as(&format!("/api/v1/users/{missing}"), &admin.access)
            .await,
        404,
        &format!("User with ID {missing} not found"),
    )
    .await;

    let pw_path = format!("/api/v1/users/{}/password", u1.user_id());
    let res = app
        .send(
            Method::PATCH,
            &pw_path,
            Some(&u1.access),
            Some(json!({"currentPassword":"wrong-pass","newPassword":"Another123"})),
        )
        .await;
    assert_error(res, 400, "Current password is incorrect").await;
    assert_error(app.get("/api/v1/users/me").await, 401, "Unauthorized").await;

    let list: Value = app
        .get_as("/api/v1/users", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"http_requests_total{method="GET",path="/api/v1/users/{id}",status="403"}"#
        ) || metrics.contains(r#"path="/api/v1/users/:id",status="403""#),
        "{metrics}"
    );
}

#[tokio::test]
async fn admin_creates_users_and_non_admins_cannot() {
    let app = spawn_with_admin(&[]).await;
    let admin = app.admin().await;
    let body =
        json!({"email":"New@Example.com","password":PW,"firstName":"N","avatar":"https://x/a.png"});
    let res = app
        .send(
            Method::POST,
            "/api/v1/users",
            Some(&admin.access),
            Some(body.clone()),
        )
        .await;
    assert_eq!(res.status(), 201);
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["email"], "new@example.com");
    assert_eq!(user["avatar"], "https://x/a.png");
    assert_eq!(user["roles"][0]["name"], "user");
    let res = app
        .send(
            Method::POST,
            "/api/v1/users",
            Some(&admin.access),
            Some(body),
        )
        .await;
    assert_error(res, 409, "User with this email already exists").await;
    let res = app
        .send(
            Method::POST,
            "/api/v1/users",
            Some(&admin.access),
            Some(json!({"email":"a@b.co","password":PW,"avatar":"x".repeat(501)})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let u = app.login_ok("new@example.com", PW).await;
    let res = app
        .send(
            Method::POST,
            "/api/v1/users",
            Some(&u.access),
            Some(json!({"email":"z@b.co","password":PW})),
        )
        .await;
    assert_error(res, 403, "Insufficient permissions").await;
    let created = app
        .audit_events()
        .await
        .into_iter()
        .filter(|(t, _)| t == "user_create")
        .count();
    assert_eq!(created, 2, "bootstrap admin and the admin-created user");
}

#[tokio::test]
async fn patch_updates_own_profile_and_audits_the_fields() {
    let app = spawn_with_admin(&[]).await;
    let admin = app.admin().await;
    let u1 = app.signup("u1@example.com", PW).await;
    let path = format!("/api/v1/users/{}", u1.user_id());
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&u1.access),
            Some(json!({"firstName":"Ada","avatar":""})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let user: Value = res.json().await.unwrap();
    assert_eq!(
        (
            user["firstName"].as_str(),
            user["lastName"].as_str(),
            user["avatar"].as_str()
        ),
        (Some("Ada"), Some("User"), Some(""))
    );
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&u1.access),
            Some(json!({"email":"x@y.zz"})),
        )
        .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        json!(["property email should not exist"])
    );
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&u1.access),
            Some(json!({"lastName":"n".repeat(51)})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&u1.access),
            Some(json!({"isActive":"false"})),
        )
        .await;
    assert_eq!(res.status(), 400, "the string \"false\" is not a boolean");
    let missing = format!("/api/v1/users/{}", Uuid::new_v4());
    assert_eq!(
        app.send(
            Method::PATCH,
            &missing,
            Some(&admin.access),
            Some(json!({"firstName":"x"}))
        )
        .await
        .status(),
        404
    );
    let details: Vec<Value> = app
        .audit_events()
        .await
        .into_iter()
        .filter(|(t, _)| t == "user_update")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(details, [json!({"fields": ["firstName", "avatar"]})]);
}

#[tokio::test]
async fn changing_the_password_revokes_refresh_tokens() {
    let app = spawn_with_admin(&[]).await;
    let admin = app.admin().await;
    let u1 = app.signup("u1@example.com", PW).await;
    let path = format!("/api/v1/users/{}/password", u1.user_id());
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&u1.access),
            Some(json!({"currentPassword":PW,"newPassword":"short"})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&u1.access),
            Some(json!({"currentPassword":PW,"newPassword":"Another123"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.unwrap().is_empty());
    assert_eq!(app.refresh_header(&u1.refresh).await.status(), 403);
    assert_eq!(app.login("u1@example.com", PW).await.status(), 401);
    let u1 = app.login_ok("u1@example.com", "Another123").await;
    // An admin also needs the target's current password ([O], kept).
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(json!({"currentPassword":"Another123","newPassword":"Third12345"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    app.login_ok("u1@example.com", "Third12345").await;
    assert_eq!(app.refresh_header(&u1.refresh).await.status(), 403);
    assert_eq!(
        app.audit_events()
            .await
            .iter()
            .filter(|(t, _)| t == "user_password_change")
            .count(),
        2
    );
}

#[tokio::test]
async fn users_may_delete_themselves_and_admins_anyone() {
    let app = spawn_with_admin(&[]).await;
    let admin = app.admin().await;
    let u1 = app.signup("u1@example.com", PW).await;
    let u2 = app.signup("u2@example.com", PW).await;
    let p1 = format!("/api/v1/users/{}", u1.user_id());
    let p2 = format!("/api/v1/users/{}", u2.user_id());
    assert_eq!(
        app.send(Method::DELETE, &p2, Some(&u1.access), None)
            .await
            .status(),
        403
    );
    let res = app.send(Method::DELETE, &p1, Some(&u1.access), None).await;
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.unwrap().is_empty());
    assert_eq!(
        app.get_as("/api/v1/users/me", &u1.access).await.status(),
        401
    );
    assert_eq!(
        app.send(Method::DELETE, &p2, Some(&admin.access), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.send(Method::DELETE, &p2, Some(&admin.access), None)
            .await
            .status(),
        404
    );
    let deleted: Vec<Value> = app
        .audit_events()
        .await
        .into_iter()
        .filter(|(t, _)| t == "user_delete")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        deleted,
        [
            json!({"email": "u1@example.com"}),
            json!({"email": "u2@example.com"})
        ]
    );
}

#[tokio::test]
async fn role_assignment_gives_auditors_the_audit_trail() {
    let app = spawn_with_admin(&[]).await;
    let admin = app.admin().await;
    let aud = app.signup("aud@example.com", PW).await;
    let u1 = app.signup("u1@example.com", PW).await;
    let path = format!("/api/v1/users/{}/roles", aud.user_id());
    let res = app
        .send(
            Method::PUT,
            &path,
            Some(&u1.access),
            Some(json!({"roles":["auditor"]})),
        )
        .await;
    assert_error(res, 403, "Insufficient permissions").await;
    for bad in [
        json!({"roles":[]}),
        json!({"roles":["root"]}),
        json!({"roles":["user","user"]}),
        json!({}),
    ] {
        let res = app
            .send(Method::PUT, &path, Some(&admin.access), Some(bad.clone()))
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    let res = app
        .send(
            Method::PUT,
            &path,
            Some(&admin.access),
            Some(json!({"roles":["auditor"]})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["roles"].as_array().unwrap().len(), 1);
    assert_eq!(user["roles"][0]["name"], "auditor");
    let missing = format!("/api/v1/users/{}/roles", Uuid::new_v4());
    assert_eq!(
        app.send(
            Method::PUT,
            &missing,
            Some(&admin.access),
            Some(json!({"roles":["user"]}))
        )
        .await
        .status(),
        404
    );

    assert_error(
        app.get_as("/api/v1/audit/events", &u1.access).await,
        403,
        "Insufficient permissions",
    )
    .await;
    let events: Value = app
        .get_as(
            "/api/v1/audit/events?eventType=user_update&_t=1",
            &aud.access,
        )
        .await
        .json()
        .await
        .unwrap();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["details"]["fields"], json!(["roles"]));
    assert_eq!(events[0]["userId"], admin.user_id().to_string());
    let limited: Value = app
        .get_as("/api/v1/audit/events?limit=2", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 2);
    let mine: Value = app
        .get_as(
            &format!(
                "/api/v1/audit/events?userId={}&startDate=2020-01-01",
                u1.user_id()
            ),
            &admin.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .all(|e| e["userId"] == u1.user_id().to_string())
    );
    assert_eq!(
        app.get_as("/api/v1/audit/events?limit=5000", &admin.access)
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get_as("/api/v1/audit/events?startDate=yesterday", &admin.access)
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn a_role_less_user_counts_as_user_and_cannot_reach_admin_routes() {
    let app = spawn_with_admin(&[]).await;
    let u1 = app.signup("u1@example.com", PW).await;
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
        .bind(u1.user_id())
        .execute(&app.pool().await)
        .await
        .unwrap();
    let me: Value = app
        .get_as("/api/v1/users/me", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"], json!([]));
    assert_eq!(app.get_as("/api/v1/users", &u1.access).await.status(), 403);
    assert_eq!(
        app.get_as("/api/v1/audit/events", &u1.access)
            .await
            .status(),
        403
    );
    let roles = format!("/api/v1/users/{}/roles", u1.user_id());
    assert_eq!(
        app.send(
            Method::PUT,
            &roles,
            Some(&u1.access),
            Some(json!({"roles":["admin"]}))
        )
        .await
        .status(),
        403
    );
    let list: Value = app
        .get_as("/api/v1/policy/roles/list", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "auditor", "operator", "service", "user"]);
    assert_eq!(app.get("/api/v1/policy/roles/list").await.status(), 401);
}

#[tokio::test]
async fn the_bootstrap_admin_is_created_once() {
    let first = spawn_with_admin(&[]).await;
    let url = first.database_url.clone();
    // A second start on the same database (and with the alias names) changes nothing.
    let _second = spawn_app_with(&[
        ("DATABASE_URL", &url),
        ("ADMIN_EMAIL", ADMIN_EMAIL),
        ("ADMIN_PASSWORD", "Different123"),
    ])
    .await;
    let pool = first.pool().await;
    let admins: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id WHERE r.name = 'admin'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(admins, 1);
    first.login_ok(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let me: Value = first
        .get_as("/api/v1/users/me", &first.admin().await.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"][0]["name"], "admin");
}

#[tokio::test]
async fn body_shape_errors_use_the_error_body() {
    let app = spawn_with_admin(&[]).await;
    let res = app
        .client
        .post(format!("{}/api/v1/auth/login", app.address))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["path"], "/api/v1/auth/login");
    assert_eq!(body["method"], "POST");
}

#[tokio::test]
async fn role_checks_come_before_the_rate_limit() {
    let app = spawn_with_admin(&[]).await;
    let u1 = app.signup("u1@example.com", PW).await;
    // GET /users allows 20 a minute per user, counted only after the admin check.
    for _ in 0..25 {
        assert_eq!(app.get_as("/api/v1/users", &u1.access).await.status(), 403);
    }
    let admin = app.admin().await;
    let mut codes = Vec::new();
    for _ in 0..21 {
        codes.push(
            app.get_as("/api/v1/users", &admin.access)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(codes[..20], [200; 20]);
    assert_eq!(codes[20], 429);
    // Buckets are per user and route: /users/me for u1 is unaffected.
    assert_eq!(
        app.get_as("/api/v1/users/me", &u1.access).await.status(),
        200
    );
}
