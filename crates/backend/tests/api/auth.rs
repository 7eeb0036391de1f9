//! `/auth/*`: signup, login, refresh, logout, password reset and change, plus token hardening.

use std::{net::SocketAddr, time::Duration};

use aegis_test_support::FaultProxy;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    auth_support::{ACCESS_SECRET, REFRESH_SECRET, Tokens, assert_error, claims, spawn_with_admin},
    helpers::{spawn_app, spawn_app_with},
};

const PW: &str = "Password123!";

#[tokio::test]
async fn signup_returns_tokens_with_the_documented_claims_and_validates_input() {
    // Refused requests count toward the signup limit (5/h), so it is off here.
    let app = spawn_app_with(&[("RATE_LIMIT_DISABLED", "true")]).await;
    let body =
        json!({"email":"e2e-signup@example.com","password":PW,"firstName":"E2E","lastName":"User"});
    let res = app.post("/api/v1/auth/signup", body.clone()).await;
    assert_eq!(res.status(), 201);
    let tokens = Tokens::from_body(&res.json().await.unwrap());
    let c = claims(&tokens.access);
    assert_eq!(c["email"], "e2e-signup@example.com");
    assert_eq!(c["type"], "access");
    assert!(c["jti"].is_string());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
    let r = claims(&tokens.refresh);
    assert_eq!(r["type"], "refresh");
    assert_eq!(
        r["exp"].as_i64().unwrap() - r["iat"].as_i64().unwrap(),
        7 * 86_400
    );

    assert_error(
        app.post("/api/v1/auth/signup", body.clone()).await,
        409,
        "User with this email already exists",
    )
    .await;
    let upper = json!({"email":"E2E-Signup@Example.COM","password":PW});
    assert_error(
        app.post("/api/v1/auth/signup", upper).await,
        409,
        "User with this email already exists",
    )
    .await;

    let res = app
        .post(
            "/api/v1/auth/signup",
            json!({"email":"not-an-email","password":PW}),
        )
        .await;
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["message"], json!(["email must be an email"]));
    assert_eq!(err["error"], "Bad Request");

    let res = app
        .post(
            "/api/v1/auth/signup",
            json!({"email":"short@example.com","password":"short"}),
        )
        .await;
    let err: Value = res.json().await.unwrap();
    assert_eq!(
        err["message"],
        json!(["Password must be at least 8 characters long"])
    );
    let long = "x".repeat(101);
    let res = app
        .post(
            "/api/v1/auth/signup",
            json!({"email":"long@example.com","password":long,"firstName":"n".repeat(51)}),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let res = app
        .post(
            "/api/v1/auth/signup",
            json!({"email":"x@example.com","password":PW,"avatar":"x"}),
        )
        .await;
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["message"], json!(["property avatar should not exist"]));
    let res = app
        .post("/api/v1/auth/signup", json!({"email":42,"password":PW}))
        .await;
    assert_eq!(res.status(), 400, "types are strict");

    let me: Value = app
        .get_as("/api/v1/users/me", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["roles"][0]["name"], "user",
        "signup grants the user role"
    );
    let events: Vec<String> = app
        .audit_events()
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(events, ["user_create", "auth_signup"]);
}

#[tokio::test]
async fn login_is_case_insensitive_and_failures_are_audited() {
    let app = spawn_app().await;
    app.signup("e2e-signup@example.com", PW).await;
    app.login_ok("e2e-signup@example.com", PW).await;
    app.login_ok("E2E-Signup@Example.com", PW).await;
    assert_error(
        app.login("e2e-signup@example.com", "WrongPassword").await,
        401,
        "Invalid credentials",
    )
    .await;
    assert_error(
        app.login("nonexistent@example.com", PW).await,
        401,
        "Invalid credentials",
    )
    .await;
    let res = app
        .post("/api/v1/auth/login", json!({"email":"nope"}))
        .await;
    assert_eq!(res.status(), 400);

    let events = app.audit_events().await;
    let login: Vec<(String, Value)> = events
        .into_iter()
        .filter(|(t, _)| t.starts_with("auth_login"))
        .collect();
    assert_eq!(login.len(), 4);
    assert_eq!(login[0].0, "auth_login_success");
    assert_eq!(login[2].1["reason"], "invalid_password");
    assert_eq!(login[3].1["reason"], "user_not_found");
    assert_eq!(login[3].1["success"], false);
    let last_login: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_login_at FROM users")
            .fetch_one(&app.pool().await)
            .await
            .unwrap();
    assert!(last_login.is_some());
}

#[tokio::test]
async fn deactivated_accounts_cannot_log_in_use_tokens_or_refresh() {
    let app = spawn_with_admin(&[]).await;
    let admin = app.admin().await;
    let u1 = app.signup("u1@example.com", PW).await;
    let u2 = app.signup("u2@example.com", PW).await;
    let path = format!("/api/v1/users/{}", u2.user_id());
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(json!({"isActive": false})),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["isActive"], false);

    assert_error(
        app.login("u2@example.com", PW).await,
        403,
        "User account is deactivated",
    )
    .await;
    assert_error(
        app.get_as("/api/v1/users/me", &u2.access).await,
        401,
        "User not found or inactive",
    )
    .await;
    assert_error(app.refresh_header(&u2.refresh).await, 403, "Access Denied").await;

    let own = format!("/api/v1/users/{}", u1.user_id());
    let res = app
        .send(
            Method::PATCH,
            &own,
            Some(&u1.access),
            Some(json!({"isActive": false})),
        )
        .await;
    assert_error(res, 403, "Insufficient permissions").await;
    let reasons: Vec<Value> = app
        .audit_events()
        .await
        .into_iter()
        .filter(|(t, _)| t == "auth_login_failure")
        .map(|(_, d)| d["reason"].clone())
        .collect();
    assert_eq!(reasons, [json!("account_deactivated")]);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = spawn_app().await;
    let t1 = app.signup("u1@example.com", PW).await;
    let res = app.refresh_header(&t1.refresh).await;
    assert_eq!(res.status(), 200);
    let t2 = Tokens::from_body(&res.json().await.unwrap());
    assert_ne!(t2.refresh, t1.refresh);
    let res = app
        .post("/api/v1/auth/refresh", json!({"refreshToken": t2.refresh}))
        .await;
    assert_eq!(res.status(), 200, "body form");
    let t3 = Tokens::from_body(&res.json().await.unwrap());
    assert_eq!(
        app.get_as("/api/v1/users/me", &t3.access).await.status(),
        200
    );

    assert_error(app.refresh_header(&t1.refresh).await, 403, "Access Denied").await;
    assert_error(app.refresh_header(&t3.refresh).await, 403, "Access Denied").await;
    assert_error(
        app.refresh_header("invalid-token").await,
        401,
        "Unauthorized",
    )
    .await;
    assert_error(
        app.refresh_header(&t3.access).await,
        401,
        "Invalid token type",
    )
    .await;
    let res = app
        .send(Method::POST, "/api/v1/auth/refresh", None, None)
        .await;
    assert_error(res, 401, "Refresh token not found").await;
    let res = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refreshToken": t3.refresh, "extra": 1}),
        )
        .await;
    assert_eq!(res.status(), 400);

    let refresh_events: Vec<Value> = app
        .audit_events()
        .await
        .into_iter()
        .filter(|(t, _)| t == "auth_refresh")
        .map(|(_, d)| d)
        .collect();
    // Two rotations, then R1's reuse and R3 (revoked with its family) are both reuse.
    assert_eq!(refresh_events.len(), 4);
    assert_eq!(
        refresh_events[..2],
        [json!({"success": true}), json!({"success": true})]
    );
    assert_eq!(
        refresh_events[2],
        json!({"success": false, "reason": "reuse_detected"})
    );
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL")
            .fetch_one(&app.pool().await)
            .await
            .unwrap();
    assert_eq!(active, 0);
}

#[tokio::test]
async fn refresh_tokens_equal_in_their_first_72_bytes_are_still_distinct() {
    // bcrypt looks at 72 bytes only, which for these JWTs is the header plus the user id.
    let app = spawn_app().await;
    let first = app.signup("u1@example.com", PW).await;
    let second = app.login_ok("u1@example.com", PW).await;
    assert_eq!(
        first.refresh.as_bytes()[..72],
        second.refresh.as_bytes()[..72]
    );
    assert_ne!(first.refresh, second.refresh);
    assert_error(
        app.refresh_header(&first.refresh).await,
        403,
        "Access Denied",
    )
    .await;
    // The first token's reuse revoked the family of the second login? No: it belongs to the
    // signup's family, which the login already revoked; the login's own family is untouched.
    assert_eq!(app.refresh_header(&second.refresh).await.status(), 200);
}

#[tokio::test]
async fn concurrent_use_of_one_refresh_token_yields_one_rotation_and_a_revoked_family() {
    let app = spawn_app().await;
    let t = app.signup("u1@example.com", PW).await;
    let (a, b) = tokio::join!(
        app.refresh_header(&t.refresh),
        app.refresh_header(&t.refresh)
    );
    let mut codes = [a.status().as_u16(), b.status().as_u16()];
    codes.sort_unstable();
    assert_eq!(codes, [200, 403]);
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL")
            .fetch_one(&app.pool().await)
            .await
            .unwrap();
    assert_eq!(
        active, 0,
        "the loser's reuse revoked the winner's new token too"
    );
}

#[tokio::test]
async fn logout_revokes_refresh_tokens() {
    let app = spawn_app().await;
    let t = app.signup("u1@example.com", PW).await;
    let res = app
        .send(Method::POST, "/api/v1/auth/logout", Some(&t.access), None)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"message": "Logged out successfully"})
    );
    assert_error(
        app.send(Method::POST, "/api/v1/auth/logout", None, None)
            .await,
        401,
        "Unauthorized",
    )
    .await;
    assert_error(app.refresh_header(&t.refresh).await, 403, "Access Denied").await;
    assert!(
        app.audit_events()
            .await
            .iter()
            .any(|(t, d)| t == "auth_logout" && d["success"] == true)
    );
}

/// The stored reset-token hash and its minutes to expiry, once a reset request has stored it.
async fn stored_reset_token(pool: &sqlx::PgPool) -> (String, f64) {
    for _ in 0..100 {
        let row: Option<(String, f64)> = sqlx::query_as(
            "SELECT password_reset_token_hash, EXTRACT(EPOCH FROM password_reset_expires_at - now())::float8 / 60 \
             FROM users WHERE password_reset_token_hash IS NOT NULL",
        )
        .fetch_optional(pool)
        .await
        .unwrap();
        if let Some(row) = row {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no reset token was stored within 5 s");
}

/// Whether an account exists must not show in forgot-password's answer or its timing: the
/// lookup and the token write happen after the answer, so the answer does not even wait for
/// the database.
#[tokio::test]
async fn forgot_password_answers_without_waiting_for_the_account_lookup() {
    let (app, t, proxy, url) = crate::policy_support::build_behind_proxy(&[]).await;
    tokio::spawn(app.run_until(std::future::pending()));
    t.signup("e2e-signup@example.com", PW).await;
    proxy.stall();
    for email in ["e2e-signup@example.com", "nobody@example.com"] {
        let res = t
            .client
            .post(format!("{}/api/v1/auth/forgot-password", t.address))
            .timeout(Duration::from_secs(3))
            .json(&json!({"email": email}))
            .send()
            .await
            .expect("answered while the database hangs");
        assert_eq!(res.status(), 200);
    }
    proxy.restore();
    assert_eq!(
        t.post(
            "/api/v1/auth/forgot-password",
            json!({"email": "e2e-signup@example.com"})
        )
        .await
        .status(),
        200
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (hash, _) = stored_reset_token(&pool).await;
    assert_eq!(hash.len(), 64);
}

#[tokio::test]
async fn forgot_and_reset_password() {
    let app = spawn_app().await;
    let before = app.signup("e2e-signup@example.com", PW).await;
    let expected =
        json!({"success": true, "message": "Password reset email sent if account exists."});
    for email in ["e2e-signup@example.com", "nobody@example.com"] {
        let res = app
            .post("/api/v1/auth/forgot-password", json!({"email": email}))
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap(), expected);
    }
    assert_eq!(
        app.post("/api/v1/auth/forgot-password", json!({"email": "x"}))
            .await
            .status(),
        400
    );
    let pool = app.pool().await;
    // The token is stored after the answer (so that its timing reveals nothing).
    let (hash, minutes) = stored_reset_token(&pool).await;
    assert_eq!(hash.len(), 64, "only a SHA-256 hex digest is stored");
    assert!((59.0..=60.5).contains(&minutes), "{minutes}");

    let reset = |token: &str, pw: &str| {
        app.post(
            "/api/v1/auth/reset-password",
            json!({"token": token, "newPassword": pw}),
        )
    };
    assert_error(
        reset("deadbeef", "NewPass1234").await,
        400,
        "Invalid or expired reset token",
    )
    .await;
    let res = reset("deadbeef", "short").await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        json!(["Password must be at least 8 characters"])
    );
    assert_eq!(
        reset("deadbeef", &"x".repeat(101)).await.status(),
        400,
        "reset has a maximum now"
    );

    // The token only travels by mail; plant a known one the way forgot-password stores it.
    let token = "a".repeat(64);
    let digest = aegis_backend::auth::sha256_hex(token.as_bytes());
    sqlx::query("UPDATE users SET password_reset_token_hash = $1")
        .bind(&digest)
        .execute(&pool)
        .await
        .unwrap();
    let res = reset(&token, "NewPass1234").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"success": true, "message": "Password updated successfully."})
    );
    assert_error(
        reset(&token, "NewPass1234").await,
        400,
        "Invalid or expired reset token",
    )
    .await;
    assert_error(
        app.login("e2e-signup@example.com", PW).await,
        401,
        "Invalid credentials",
    )
    .await;
    app.login_ok("e2e-signup@example.com", "NewPass1234").await;
    assert_error(
        app.refresh_header(&before.refresh).await,
        403,
        "Access Denied",
    )
    .await;

    // Expired: refused, and the stored token is cleared.
    sqlx::query("UPDATE users SET password_reset_token_hash = $1, password_reset_expires_at = now() - interval '1 minute'")
        .bind(&digest)
        .execute(&pool)
        .await
        .unwrap();
    assert_error(
        reset(&token, "Another1234").await,
        400,
        "Invalid or expired reset token",
    )
    .await;
    let cleared: Option<String> = sqlx::query_scalar("SELECT password_reset_token_hash FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(cleared.is_none());
    let types: Vec<String> = app
        .audit_events()
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert!(types.contains(&"auth_password_reset_request".to_owned()));
    assert!(types.contains(&"auth_password_reset".to_owned()));
}

#[tokio::test]
async fn legacy_bcrypt_user_logs_in_and_is_upgraded_to_argon2id() {
    let app = spawn_app().await;
    let pool = app.pool().await;
    let legacy = bcrypt::hash("Legacy12345", 10).unwrap();
    assert!(legacy.starts_with("$2"));
    sqlx::query("INSERT INTO users (email, password) VALUES ('legacy@example.com', $1)")
        .bind(&legacy)
        .execute(&pool)
        .await
        .unwrap();
    app.login_ok("legacy@example.com", "Legacy12345").await;
    let stored: String = sqlx::query_scalar("SELECT password FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    app.login_ok("legacy@example.com", "Legacy12345").await;
    assert_error(
        app.login("legacy@example.com", "Legacy1234").await,
        401,
        "Invalid credentials",
    )
    .await;
}

#[tokio::test]
async fn signup_rate_limit_answers_429_with_retry_after() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.signup(&format!("u{i}@example.com"), PW).await;
    }
    let res = app
        .post(
            "/api/v1/auth/signup",
            json!({"email":"u5@example.com","password":PW}),
        )
        .await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    let body = assert_error(res, 429, "Too many requests, please try again later").await;
    assert_eq!(body["error"], "Too Many Requests");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"rate_limit_exceeded_total{endpoint="/api/v1/auth/signup"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn rate_limit_fails_open_when_redis_is_down() {
    let redis: SocketAddr = "127.0.0.1:6379".parse().unwrap();
    let proxy = FaultProxy::start(redis).await.unwrap();
    let url = format!("redis://{}", proxy.addr());
    let app = spawn_app_with(&[("REDIS_URL", &url)]).await;
    for i in 0..5 {
        app.signup(&format!("u{i}@example.com"), PW).await;
    }
    proxy.cut();
    app.signup("u5@example.com", PW).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("rate_limit_backend_errors_total "))
        .unwrap();
    assert_ne!(line, "rate_limit_backend_errors_total 0");
}

#[tokio::test]
async fn rate_limit_uses_the_right_most_untrusted_forwarded_hop_only_behind_trusted_proxies() {
    let send = |app: &crate::helpers::TestApp, i: usize, xff: &'static str| {
        let req = app
            .client
            .post(format!("{}/api/v1/auth/forgot-password", app.address))
            .header("x-forwarded-for", xff)
            .json(&json!({"email": format!("u{i}@example.com")}));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let untrusted = spawn_app().await;
    let mut codes = Vec::new();
    for (i, ip) in [
        "1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4", "5.5.5.5", "6.6.6.6",
    ]
    .into_iter()
    .enumerate()
    {
        codes.push(send(&untrusted, i, ip).await);
    }
    assert_eq!(
        codes,
        [200, 200, 200, 200, 200, 429],
        "X-Forwarded-For is ignored without TRUST_PROXY"
    );

    let trusted = spawn_app_with(&[("TRUST_PROXY", "127.0.0.1/32")]).await;
    for i in 0..5 {
        assert_eq!(send(&trusted, i, "9.9.9.9, 1.1.1.1").await, 200);
    }
    assert_eq!(send(&trusted, 5, "9.9.9.9, 1.1.1.1").await, 429);
    assert_eq!(
        send(&trusted, 6, "1.1.1.1, 2.2.2.2").await,
        200,
        "another client has its own bucket"
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_doubling_and_without_revealing_existence() {
    let app = spawn_app_with(&[
        ("LOGIN_LOCKOUT_THRESHOLD", "3"),
        ("LOGIN_LOCKOUT_SECONDS", "1"),
        ("RATE_LIMIT_DISABLED", "true"),
    ])
    .await;
    app.signup("u1@example.com", PW).await;
    let locked = "Too many failed login attempts, please try again later";
    for email in ["u1@example.com", "ghost@example.com"] {
        for _ in 0..3 {
            assert_eq!(app.login(email, "wrong-password").await.status(), 401);
        }
        let res = app.login(email, PW).await;
        assert!(res.headers().contains_key("retry-after"));
        assert_error(res, 429, locked).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.login_ok("u1@example.com", PW).await;
    // The ghost's first lockout (1 s) is over; its next lockout in a row doubles to 2 s.
    assert_eq!(app.login("ghost@example.com", PW).await.status(), 401);
    for _ in 0..2 {
        assert_eq!(
            app.login("ghost@example.com", "wrong-password")
                .await
                .status(),
            401
        );
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        app.login("ghost@example.com", PW).await.status(),
        429,
        "second lockout lasts 2 s"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.login("ghost@example.com", PW).await.status(), 401);
    let reasons = app
        .audit_events()
        .await
        .into_iter()
        .filter(|(_, d)| d["reason"] == "locked_out")
        .count();
    assert!(reasons >= 4, "{reasons}");
}

#[tokio::test]
async fn a_burst_of_guesses_checks_at_most_the_threshold_and_raises_the_lockout_once() {
    let app = spawn_app_with(&[
        ("LOGIN_LOCKOUT_THRESHOLD", "5"),
        ("LOGIN_LOCKOUT_SECONDS", "60"),
        ("RATE_LIMIT_DISABLED", "true"),
    ])
    .await;
    app.signup("u1@example.com", PW).await;
    let guesses = (0..40).map(|_| app.login("u1@example.com", "wrong-password"));
    let mut codes: Vec<u16> = futures::future::join_all(guesses)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    codes.sort_unstable();
    assert_eq!(codes[..5], [401; 5], "the threshold is checked: {codes:?}");
    assert_eq!(codes[5..], [429; 35], "the rest is not: {codes:?}");
    // The right password is refused now, and the lockout is the first one (60 s), not one
    // doubled per request of the burst.
    let res = app.login("u1@example.com", PW).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

#[tokio::test]
async fn the_lockout_holds_while_redis_is_down() {
    let redis: SocketAddr = "127.0.0.1:6379".parse().unwrap();
    let proxy = FaultProxy::start(redis).await.unwrap();
    let url = format!("redis://{}", proxy.addr());
    let app = spawn_app_with(&[
        ("REDIS_URL", &url),
        ("LOGIN_LOCKOUT_THRESHOLD", "3"),
        ("RATE_LIMIT_DISABLED", "true"),
    ])
    .await;
    app.signup("u1@example.com", PW).await;
    proxy.cut();
    for _ in 0..3 {
        assert_eq!(
            app.login("u1@example.com", "wrong-password").await.status(),
            401
        );
    }
    assert_eq!(app.login("u1@example.com", PW).await.status(), 429);
}

fn forge(alg: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn access_tokens_with_alg_none_wrong_algorithm_expired_or_wrong_type_are_rejected() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let t = app.signup("u1@example.com", PW).await;
    let mut c = claims(&t.access);
    assert_eq!(
        app.get_as(
            "/api/v1/users/me",
            &forge(Algorithm::HS256, ACCESS_SECRET, &c)
        )
        .await
        .status(),
        200
    );

    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&c.to_string())
    );
    assert_error(
        app.get_as("/api/v1/users/me", &none).await,
        401,
        "Unauthorized",
    )
    .await;
    let hs512 = forge(Algorithm::HS512, ACCESS_SECRET, &c);
    assert_error(
        app.get_as("/api/v1/users/me", &hs512).await,
        401,
        "Unauthorized",
    )
    .await;
    let wrong_key = forge(Algorithm::HS256, "some-other-secret", &c);
    assert_error(
        app.get_as("/api/v1/users/me", &wrong_key).await,
        401,
        "Unauthorized",
    )
    .await;
    assert_error(
        app.get_as("/api/v1/users/me", &t.refresh).await,
        401,
        "Invalid token type",
    )
    .await;
    c["type"] = json!("refresh");
    let typed = forge(Algorithm::HS256, ACCESS_SECRET, &c);
    assert_error(
        app.get_as("/api/v1/users/me", &typed).await,
        401,
        "Invalid token type",
    )
    .await;
    c["type"] = json!("access");
    c["exp"] = json!(chrono::Utc::now().timestamp() - 1);
    let expired = forge(Algorithm::HS256, ACCESS_SECRET, &c);
    assert_error(
        app.get_as("/api/v1/users/me", &expired).await,
        401,
        "Unauthorized",
    )
    .await;
    // And the refresh endpoint wants the refresh key.
    let mut r = claims(&t.refresh);
    r["exp"] = json!(chrono::Utc::now().timestamp() - 1);
    assert_error(
        app.refresh_header(&forge(Algorithm::HS256, REFRESH_SECRET, &r))
            .await,
        401,
        "Unauthorized",
    )
    .await;
    assert_error(app.get("/api/v1/users/me").await, 401, "Unauthorized").await;
}

#[tokio::test]
async fn deleted_users_tokens_get_401() {
    let app = spawn_app().await;
    let t = app.signup("u1@example.com", PW).await;
    sqlx::query("DELETE FROM users")
        .execute(&app.pool().await)
        .await
        .unwrap();
    assert_error(
        app.get_as("/api/v1/users/me", &t.access).await,
        401,
        "User not found or inactive",
    )
    .await;
    assert_error(app.refresh_header(&t.refresh).await, 403, "Access Denied").await;
}

#[tokio::test]
async fn service_api_keys_authenticate_but_do_not_reach_user_routes() {
    let app = spawn_app_with(&[("SERVICE_API_KEYS", "test-key, other-key")]).await;
    let call = |key: &'static str| {
        app.client
            .get(format!("{}/api/v1/users/me", app.address))
            .header("x-api-key", key)
            .send()
    };
    assert_error(
        call("test-key").await.unwrap(),
        403,
        "Insufficient permissions",
    )
    .await;
    assert_error(call("wrong-key").await.unwrap(), 401, "Invalid API key").await;
}

#[tokio::test]
async fn reset_mail_is_not_attempted_without_smtp_and_bad_smtp_settings_fail_start_up() {
    let (env, _) = crate::helpers::env_for_test(&[
        ("SMTP_URL", "ftp://nope"),
        ("SMTP_FROM", "not an address"),
    ])
    .await;
    let config = aegis_backend::config::Config::from_env(&env).unwrap();
    let err = aegis_backend::startup::Application::build(config)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("SMTP"), "{err:#}");
}

/// Login throughput with the real argon2id cost (19 MiB, t=2, p=1): 64 concurrent clients for
/// 10 s against one in-process backend. Run with
/// `cargo nextest run -p aegis-backend --run-ignored only login_throughput --no-capture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement, not a test"]
async fn login_throughput_with_real_argon2_parameters() {
    let app = spawn_app_with(&[
        ("ARGON2_MEMORY_KIB", "19456"),
        ("ARGON2_ITERATIONS", "2"),
        ("ARGON2_PARALLELISM", "1"),
        ("RATE_LIMIT_DISABLED", "true"),
        ("LOGIN_LOCKOUT_THRESHOLD", "0"),
    ])
    .await;
    app.signup("load@example.com", PW).await;
    let app = std::sync::Arc::new(app);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let (mut ok, mut other) = (0u64, 0u64);
                while tokio::time::Instant::now() < deadline {
                    if app.login("load@example.com", PW).await.status() == 200 {
                        ok += 1
                    } else {
                        other += 1
                    }
                }
                (ok, other)
            })
        })
        .collect();
    let (mut ok, mut other) = (0, 0);
    for t in tasks {
        let (a, b) = t.await.unwrap();
        ok += a;
        other += b;
    }
    let secs = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?")
        .to_owned();
    println!(
        "logins: {ok} ok, {other} failed in {secs:.1} s = {:.1}/s with 64 clients, {} cores; peak RSS {hwm}",
        ok as f64 / secs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    assert_eq!(other, 0);
}
