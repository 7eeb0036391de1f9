//! Policy engine API: create, list, update, delete, evaluate (cached and audited), explain.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    auth_support::assert_error,
    policy_support::{
        API_KEY, EVALUATE, audit_count, build_behind_proxy, spawn_pair, spawn_policy_app,
        wait_for_audit_rows,
    },
};

const WAIT: Duration = Duration::from_secs(20);

fn policy_p1() -> Value {
    json!({"name":"Allow User Read","type":"api_access","effect":"allow","priority":100,
           "conditions":{"role":"user"},"actions":["read"],"resources":["/api/users"]})
}

fn policy_p2() -> Value {
    json!({"name":"Deny Specific User","type":"api_access","effect":"deny","priority":200,
           "conditions":{"userId":"user-123"},"actions":["*"],"resources":["/api/users"]})
}

#[tokio::test]
async fn seed_policies_answer_the_quick_start_scenarios() {
    let app = spawn_policy_app(&[]).await;
    let u1 = app.signup("u1@example.com", "Password123!").await;
    let t = u1.access.as_str();

    let body = app
        .evaluate_ok(t, json!({"action":"read","resource":"/api/users/me","type":"api_access","context":{"userId":"user-123","role":"user"}}))
        .await;
    assert_eq!(body["allowed"], true);
    assert_eq!(body["reason"], "Allowed by policy: Allow User Read Access");
    assert_eq!(body["appliedPolicies"], json!(["Allow User Read Access"]));
    assert!(uuid::Uuid::parse_str(body["decisionId"].as_str().unwrap()).is_ok());

    let body = app
        .evaluate_ok(t, json!({"action":"delete","resource":"/api/users/456","type":"api_access","context":{"userId":"user-123","role":"user","ipAddress":"192.168.1.1","userAgent":"Mozilla/5.0"}}))
        .await;
    assert_eq!(
        (
            body["allowed"].clone(),
            body["reason"].clone(),
            body["appliedPolicies"].clone()
        ),
        (
            json!(false),
            json!("Denied by policy: Deny User Delete Operations"),
            json!(["Deny User Delete Operations"])
        )
    );

    let body = app
        .evaluate_ok(t, json!({"action":"delete","resource":"/api/users/456","type":"api_access","context":{"role":"admin"}}))
        .await;
    assert_eq!(body["reason"], "Allowed by policy: Allow Admin Full Access");
    assert_eq!(body["allowed"], true);

    let res = app
        .get_as(
            "/api/v1/policy/evaluate?action=read&resource=/api/logs/app&type=api_access&role=auditor",
            t,
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["allowed"], true);
    assert_eq!(
        body["reason"],
        "Allowed by policy: Allow Auditor Read-Only Access"
    );

    let body = app
        .evaluate_ok(t, json!({"action":"unknown","resource":"/api/secret","type":"api_access","context":{"role":"user"}}))
        .await;
    assert_eq!(
        body,
        json!({"allowed":false,"reason":"No matching policy found","appliedPolicies":[],"decisionId":body["decisionId"]})
    );

    // Each call adds exactly one audit row with the matching result.
    let pool = app.pool().await;
    wait_for_audit_rows(&pool, 5, WAIT).await;
    let results: Vec<String> =
        sqlx::query_scalar("SELECT result FROM policy_audit_logs ORDER BY created_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(results, ["allow", "deny", "allow", "allow", "deny"]);

    // No credential → 401; the API key is accepted.
    let req = json!({"action":"read","resource":"/x","type":"api_access","context":{}});
    let res = app.post(EVALUATE, req.clone()).await;
    assert_eq!(res.status(), 401);
    assert_eq!(app.evaluate_with_key(req).await.status(), 200);
}

#[tokio::test]
async fn public_mode_evaluates_without_credentials_but_still_rejects_bad_ones() {
    let app = spawn_policy_app(&[("POLICY_EVALUATE_PUBLIC", "true")]).await;
    let req = json!({"action":"read","resource":"/x","type":"api_access","context":{}});
    let res = app.post(EVALUATE, req.clone()).await;
    assert_eq!(res.status(), 200);
    let res = app
        .send(Method::POST, EVALUATE, Some("not-a-jwt"), Some(req))
        .await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn evaluate_input_is_validated() {
    let app = spawn_policy_app(&[]).await;
    let u1 = app.signup("u1@example.com", "Password123!").await;
    for bad in [
        json!({"action":"read","resource":"/x","type":"nope","context":{}}),
        json!({"action":"read","resource":"/x","type":"api_access"}),
        json!({"action":"read","resource":"/x","type":"api_access","context":{"tenant":"a"}}),
        json!({"action":"","resource":"/x","type":"api_access","context":{}}),
        json!({"action":"read","resource":"/x","type":"api_access","context":{},"extra":1}),
    ] {
        let res = app
            .send(Method::POST, EVALUATE, Some(&u1.access), Some(bad.clone()))
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    let res = app
        .get_as(
            "/api/v1/policy/evaluate?action=read&type=api_access",
            &u1.access,
        )
        .await;
    assert_error(
        res,
        400,
        "Query params action, resource, and type are required",
    )
    .await;
    let res = app
        .get_as(
            "/api/v1/policy/evaluate?action=read&resource=/x&type=nope",
            &u1.access,
        )
        .await;
    assert_error(
        res,
        400,
        "type must be one of: api_access, self_healing, data_access, resource_limit",
    )
    .await;
}

#[tokio::test]
async fn policy_crud_is_admin_only_validated_and_audited() {
    let app = spawn_policy_app(&[]).await;
    let admin = app.admin().await;
    let user = app.signup("u1@example.com", "Password123!").await;
    let aud = app
        .user_with_role(&admin, "aud@example.com", "auditor")
        .await;

    // Writes: user and auditor 403.
    for t in [&user.access, &aud.access] {
        let res = app
            .send(Method::POST, "/api/v1/policy", Some(t), Some(policy_p1()))
            .await;
        assert_error(res, 403, "Insufficient permissions").await;
    }
    let p1 = app.create_policy(&admin, policy_p1()).await;
    assert_eq!(p1["isActive"], true);
    assert_eq!(p1["priority"], 100);
    assert_eq!(p1["createdBy"], admin.user_id().to_string());
    let id = p1["id"].as_str().unwrap().to_owned();

    // Validation: 400 naming the field, 409 on a duplicate name.
    let with = |patch: Value| {
        let mut b = policy_p1();
        b["name"] = json!("Other");
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases = [
        (with(json!({"priority":1001})), "priority"),
        (with(json!({"priority":50.5})), "priority"),
        (with(json!({"conditions":[]})), "conditions"),
        (with(json!({"type":"foo"})), "type"),
        (with(json!({"actions":[]})), "actions"),
        (with(json!({"resources":[]})), "resources"),
        (
            with(json!({"conditions":{"metadata":{"cpu":{"$gtt":3}}}})),
            "$gtt",
        ),
        (
            with(json!({"conditions":{"ipRange":"10.0.0.0/33"}})),
            "ipRange",
        ),
        (
            with(json!({"conditions":{"metadata":{"host":{"$regex":"("}}}})),
            "$regex",
        ),
    ];
    for (body, field) in cases {
        let res = app
            .send(
                Method::POST,
                "/api/v1/policy",
                Some(&admin.access),
                Some(body.clone()),
            )
            .await;
        assert_eq!(res.status(), 400, "{body}");
        let err: Value = res.json().await.unwrap();
        assert!(err["message"].to_string().contains(field), "{field}: {err}");
    }
    let res = app
        .send(
            Method::POST,
            "/api/v1/policy",
            Some(&admin.access),
            Some(policy_p1()),
        )
        .await;
    assert_error(res, 409, "Policy with this name already exists").await;

    // Reads: admin and auditor, not user.
    let res = app.get_as("/api/v1/policy", &aud.access).await;
    assert_eq!(res.status(), 200);
    let all: Vec<Value> = res.json().await.unwrap();
    let seeds = aegis_policy::seed_policy_definitions().len();
    assert_eq!(all.len(), seeds + 1, "the seeds and P1");
    let prios: Vec<i64> = all
        .iter()
        .map(|p| p["priority"].as_i64().unwrap())
        .collect();
    assert!(prios.windows(2).all(|w| w[0] >= w[1]), "{prios:?}");
    let res = app
        .get_as("/api/v1/policy?type=self_healing", &aud.access)
        .await;
    let self_healing_seeds = aegis_policy::seed_policies()
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "self_healing")
        .count();
    assert_eq!(
        res.json::<Vec<Value>>().await.unwrap().len(),
        self_healing_seeds
    );
    assert_eq!(
        app.get_as("/api/v1/policy", &user.access).await.status(),
        403
    );
    let res = app
        .get_as(&format!("/api/v1/policy/{id}"), &aud.access)
        .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["name"],
        "Allow User Read"
    );
    let res = app
        .get_as(
            "/api/v1/policy/00000000-0000-4000-8000-000000000000",
            &admin.access,
        )
        .await;
    assert_error(
        res,
        404,
        "Policy with ID 00000000-0000-4000-8000-000000000000 not found",
    )
    .await;
    let res = app.get_as("/api/v1/policy/not-a-uuid", &admin.access).await;
    assert_error(res, 400, "Validation failed (uuid is expected)").await;

    // PATCH: `enabled` alias, validation, rename conflict, auditor 403.
    let path = format!("/api/v1/policy/{id}");
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(json!({"enabled":false,"priority":7})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(
        (patched["isActive"].clone(), patched["priority"].clone()),
        (json!(false), json!(7))
    );
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(json!({"priority":1.5})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(json!({"name":"Allow Admin Full Access"})),
        )
        .await;
    assert_eq!(res.status(), 409);
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(&aud.access),
            Some(json!({"priority":8})),
        )
        .await;
    assert_eq!(res.status(), 403);

    // DELETE.
    let res = app
        .send(Method::DELETE, &path, Some(&aud.access), None)
        .await;
    assert_eq!(res.status(), 403);
    let res = app
        .send(Method::DELETE, &path, Some(&admin.access), None)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"message":"Policy deleted successfully"})
    );
    let res = app
        .send(Method::DELETE, &path, Some(&admin.access), None)
        .await;
    assert_eq!(res.status(), 404);

    // Every change is in audit_events.
    let events: Vec<(String, Value)> = app
        .audit_events()
        .await
        .into_iter()
        .filter(|(t, _)| t.starts_with("policy_"))
        .collect();
    assert_eq!(
        events,
        vec![
            (
                "policy_create".to_owned(),
                json!({"name":"Allow User Read"})
            ),
            (
                "policy_update".to_owned(),
                json!({"fields":["enabled","priority"]})
            ),
            (
                "policy_delete".to_owned(),
                json!({"name":"Allow User Read"})
            ),
        ]
    );
}

#[tokio::test]
async fn every_example_policy_file_entry_is_accepted() {
    let app = spawn_policy_app(&[]).await;
    let admin = app.admin().await;
    let examples = [
        json!({"name":"Restrict PII Access X","type":"data_access","effect":"allow","priority":150,"conditions":{"roles":["admin","auditor"]},"actions":["read","export"],"resources":["data:pii:*","table:users:email","table:users:phone"]}),
        json!({"name":"Emergency Lockdown X","type":"api_access","effect":"deny","priority":1000,"conditions":{"metadata":{"emergencyMode":true},"role":"user"},"actions":["*"],"resources":["/api/*"],"isActive":false}),
        json!({"name":"Deny Destructive Actions During Peak Hours X","type":"self_healing","effect":"deny","priority":200,"conditions":{"timeRange":{"start":"09:00","end":"17:00"}},"actions":["delete","truncate","drop"],"resources":["database:*"]}),
        json!({"name":"Limit User API Calls X","type":"resource_limit","effect":"allow","priority":50,"conditions":{"role":"user","metadata":{"hourlyCallCount":{"$lt":1000}}},"actions":["*"],"resources":["/api/*"]}),
        json!({"name":"Office Network X","type":"api_access","effect":"allow","conditions":{"ipRange":["10.0.0.0/8","192.168.1.7"]},"actions":["read"],"resources":["/api/*"]}),
    ];
    for e in examples {
        app.create_policy(&admin, e).await;
    }
}

#[tokio::test]
async fn deny_overrides_and_a_change_invalidates_the_cache_at_once() {
    let app = spawn_policy_app(&[]).await;
    let admin = app.admin().await;
    let t = admin.access.as_str();
    let p1 = app.create_policy(&admin, policy_p1()).await;
    let p2 = app.create_policy(&admin, policy_p2()).await;
    let ask = |user: &str| json!({"action":"read","resource":"/api/users","type":"api_access","context":{"userId":user,"role":"user"}});

    let body = app.evaluate_ok(t, ask("user-123")).await;
    assert_eq!(body["allowed"], false);
    assert_eq!(body["reason"], "Denied by policy: Deny Specific User");
    assert_eq!(body["appliedPolicies"], json!(["Deny Specific User"]));

    let res = app
        .send(
            Method::PATCH,
            &format!("/api/v1/policy/{}", p2["id"].as_str().unwrap()),
            Some(t),
            Some(json!({"priority":10})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body = app.evaluate_ok(t, ask("user-123")).await;
    assert_eq!(body["allowed"], false);
    assert_eq!(body["reason"], "Denied by policy: Deny Specific User");
    assert_eq!(
        body["appliedPolicies"],
        json!(["Allow User Read", "Deny Specific User"])
    );

    // A repeated evaluation is a cache hit, audited too.
    let pool = app.pool().await;
    wait_for_audit_rows(&pool, 2, WAIT).await;
    for _ in 0..2 {
        let body = app.evaluate_ok(t, ask("user-999")).await;
        assert_eq!(body["reason"], "Allowed by policy: Allow User Read");
    }
    wait_for_audit_rows(&pool, 4, WAIT).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("policy_evaluations_total{")
                && l.contains(r#"cached="true""#)
                && l.contains(r#"result="allow""#)
                && l.ends_with(" 1")),
        "{metrics}"
    );

    let res = app
        .send(
            Method::PATCH,
            &format!("/api/v1/policy/{}", p1["id"].as_str().unwrap()),
            Some(t),
            Some(json!({"enabled":false})),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["isActive"], false);
    let body = app.evaluate_ok(t, ask("user-999")).await;
    assert_eq!(body["allowed"], false);
    assert_eq!(body["reason"], "No matching policy found");
    assert_eq!(body["appliedPolicies"], json!([]));
}

#[tokio::test]
async fn a_change_through_one_replica_changes_the_next_decision_of_the_other() {
    let (a, b) = spawn_pair().await;
    let admin = a.admin().await;
    let ask = json!({"action":"read","resource":"/api/users","type":"api_access","context":{"userId":"user-999","role":"user"}});
    // B caches "no match".
    for _ in 0..2 {
        let body: Value = b.evaluate_with_key(ask.clone()).await.json().await.unwrap();
        assert_eq!(body["reason"], "No matching policy found");
    }
    let p1 = a.create_policy(&admin, policy_p1()).await;
    let body: Value = b.evaluate_with_key(ask.clone()).await.json().await.unwrap();
    assert_eq!(body["reason"], "Allowed by policy: Allow User Read");
    let res = a
        .send(
            Method::DELETE,
            &format!("/api/v1/policy/{}", p1["id"].as_str().unwrap()),
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = b.evaluate_with_key(ask).await.json().await.unwrap();
    assert_eq!(body["reason"], "No matching policy found");
}

#[tokio::test]
async fn audit_rows_carry_the_decision_id_the_metadata_and_only_a_sent_correlation_id() {
    let app = spawn_policy_app(&[]).await;
    let req = json!({"action":"restart","resource":"service:api","type":"self_healing","context":{"userId":"svc","metadata":{"healthStatus":"unhealthy","failureCount":3}}});
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let first: Value = app
        .client
        .post(format!("{}{EVALUATE}", app.address))
        .header("X-API-Key", API_KEY)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Same request without a trace: a cache hit (the trace is not in the key), audited.
    let second: Value = app.evaluate_with_key(req).await.json().await.unwrap();
    assert_eq!(first["allowed"], true);
    assert_eq!(second["allowed"], true);
    let pool = app.pool().await;
    wait_for_audit_rows(&pool, 2, WAIT).await;
    let rows: Vec<(uuid::Uuid, Option<String>, Value, String)> = sqlx::query_as(
        "SELECT id, correlation_id, context, result FROM policy_audit_logs ORDER BY created_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows[0].0.to_string(), first["decisionId"].as_str().unwrap());
    assert_eq!(
        rows[1].0.to_string(),
        second["decisionId"].as_str().unwrap()
    );
    assert_eq!(rows[0].1.as_deref(), Some(trace));
    assert_eq!(rows[1].1, None);
    assert_eq!(
        rows[0].2,
        json!({"healthStatus":"unhealthy","failureCount":3})
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("policy_evaluations_total{")
                && l.contains(r#"cached="true""#)
                && l.contains(r#"type="self_healing""#))
    );
}

#[tokio::test]
async fn self_healing_requests_evaluate_against_the_seeds() {
    let app = spawn_policy_app(&[]).await;
    let ask = |action: &str, resource: &str, metadata: Value| json!({"action":action,"resource":resource,"type":"self_healing","context":{"metadata":metadata}});
    let decide = |body: Value| {
        let app = &app;
        async move {
            app.evaluate_with_key(body)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let r = decide(ask(
        "restart",
        "service:api",
        json!({"healthStatus":"unhealthy","failureCount":3}),
    ))
    .await;
    assert_eq!(
        r["reason"],
        "Allowed by policy: Auto Restart Failed Services"
    );
    let r = decide(ask(
        "restart",
        "service:api",
        json!({"healthStatus":"unhealthy","failureCount":5}),
    ))
    .await;
    assert_eq!(r["allowed"], true);
    let r = decide(ask(
        "restart",
        "service:api",
        json!({"healthStatus":"healthy","failureCount":5}),
    ))
    .await;
    assert_eq!(r["reason"], "No matching policy found");
    let r = decide(
        json!({"action":"restart","resource":"service:api","type":"self_healing","context":{}}),
    )
    .await;
    assert_eq!(r["reason"], "No matching policy found");
    let r = decide(ask(
        "scale_up",
        "service:worker",
        json!({"cpuUsage":92,"duration":600}),
    ))
    .await;
    assert_eq!(r["reason"], "Allowed by policy: Scale Up on High Load");

    // What the remediation loop sends.
    let loop_request = |action: &str, deployment: &str, cpu: f64| {
        json!({"type":"self_healing","action":action,"resource":format!("service:{deployment}"),
               "context":{"userId":"aegis-remediation","role":"service","metadata":{
                   "namespace":"production","deployment":deployment,"pod":"api-7c9-x",
                   "severity":"high","confidence":0.9,"anomalyScore":0.85,"cpuUsage":cpu,
                   "memoryUsage":55.0,"errorRate":0.01,"failureCount":0,"duration":600}}})
    };
    let r = decide(loop_request("scale_up", "api", 92.5)).await;
    assert_eq!(r["allowed"], true);
    assert_eq!(r["reason"], "Allowed by policy: Scale Up on High Load");
    let r = decide(loop_request("scale_up", "api", 40.0)).await;
    assert_eq!(r["allowed"], false);
    let r = decide(loop_request("scale_up", "checkout", 95.0)).await;
    assert_eq!(r["reason"], "No matching policy found");
    let r = decide(loop_request("rollback", "api", 95.0)).await;
    assert_eq!(r["allowed"], false);
}

#[tokio::test]
async fn explain_and_dry_run_show_why() {
    let app = spawn_policy_app(&[]).await;
    let admin = app.admin().await;
    let res = app
        .client
        .post(format!("{}{EVALUATE}?explain=true", app.address))
        .header("X-API-Key", API_KEY)
        .json(&json!({"action":"scale_up","resource":"service:api","type":"self_healing","context":{"metadata":{"cpuUsage":50,"duration":600}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["allowed"], false);
    let traces = body["explanation"]["policies"].as_array().unwrap();
    let scale = traces
        .iter()
        .find(|t| t["name"] == "Scale Up on High Load")
        .unwrap();
    assert_eq!(scale["matched"], false);
    assert!(
        scale["message"].as_str().unwrap().contains("cpuUsage"),
        "{scale}"
    );

    let draft = json!({
        "policies": [policy_p1(), policy_p2()],
        "request": {"action":"read","resource":"/api/users","type":"api_access","context":{"userId":"user-999","role":"user"}}
    });
    let res = app
        .send(
            Method::POST,
            "/api/v1/policy/dry-run",
            Some(&admin.access),
            Some(draft),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["reason"], "Allowed by policy: Allow User Read");
    assert_eq!(body["explanation"]["policies"].as_array().unwrap().len(), 2);
    // Nothing was saved and nothing audited by the dry run: only the seeds are there.
    let all: Vec<Value> = app
        .get_as("/api/v1/policy", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), aegis_policy::seed_policy_definitions().len());
    let bad = json!({"policies":[{"name":"x","type":"api_access","effect":"allow","conditions":{},"actions":[],"resources":["/"]}],
                     "request":{"action":"read","resource":"/","type":"api_access","context":{}}});
    let res = app
        .send(
            Method::POST,
            "/api/v1/policy/dry-run",
            Some(&admin.access),
            Some(bad),
        )
        .await;
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert!(
        err["message"].to_string().contains("policies[0].actions"),
        "{err}"
    );
    wait_for_audit_rows(&app.pool().await, 1, WAIT).await;
}

#[tokio::test]
async fn audit_log_endpoint_filters_and_counts() {
    let app = spawn_policy_app(&[]).await;
    let admin = app.admin().await;
    let aud = app
        .user_with_role(&admin, "aud@example.com", "auditor")
        .await;
    let user = app.signup("u1@example.com", "Password123!").await;
    for (uid, action) in [
        ("user-123", "read"),
        ("user-123", "delete"),
        ("user-9", "read"),
    ] {
        app.evaluate_with_key(json!({"action":action,"resource":"/api/users/1","type":"api_access","context":{"userId":uid,"role":"user"}}))
            .await;
    }
    wait_for_audit_rows(&app.pool().await, 3, WAIT).await;
    let res = app
        .get_as(
            "/api/v1/policy/audit/logs?userId=user-123&limit=2",
            &aud.access,
        )
        .await;
    assert_eq!(res.status(), 200);
    let items: Vec<Value> = res.json().await.unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["action"], "delete", "newest first");
    assert_eq!(items[0]["result"], "deny");
    assert_eq!(items[0]["timestamp"], items[0]["createdAt"]);
    // No seed lets a user read /api/users/1: all three were denied.
    for (filter, n) in [("result=deny", 3), ("result=allow", 0), ("action=read", 2)] {
        let res = app
            .get_as(
                &format!("/api/v1/policy/audit/logs?{filter}"),
                &admin.access,
            )
            .await;
        assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), n, "{filter}");
    }
    for bad in [
        "limit=0",
        "limit=1001",
        "result=maybe",
        "startDate=yesterday",
    ] {
        let res = app
            .get_as(&format!("/api/v1/policy/audit/logs?{bad}"), &admin.access)
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    let res = app.get_as("/api/v1/policy/audit/logs", &user.access).await;
    assert_error(res, 403, "Insufficient permissions").await;

    let res = app
        .get_as("/api/v1/metrics/policy-evaluation-counts", &user.access)
        .await;
    assert_eq!(res.status(), 200);
    let counts: Vec<Value> = res.json().await.unwrap();
    assert!(counts.contains(&json!({"userId":"user-123","action":"read","count":1})));
    assert_eq!(counts.len(), 3);
}

#[tokio::test]
async fn audit_rows_survive_a_short_database_outage() {
    let (app, t, proxy, url) = build_behind_proxy(&[]).await;
    tokio::spawn(app.run_until(std::future::pending()));
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let req = json!({"action":"read","resource":"/x","type":"api_access","context":{"userId":"u"}});
    assert_eq!(t.evaluate_with_key(req.clone()).await.status(), 200);
    wait_for_audit_rows(&pool, 1, WAIT).await;

    proxy.cut();
    const N: i64 = 12;
    for i in 0..N {
        let mut r = req.clone();
        r["context"]["userId"] = json!(format!("u{i}"));
        assert_eq!(t.evaluate_with_key(r).await.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        audit_count(&pool).await,
        1,
        "nothing written during the outage"
    );
    let depth = t.get("/metrics").await.text().await.unwrap();
    assert!(
        depth
            .lines()
            .any(|l| l.starts_with("policy_audit_buffer_depth ")
                && l != "policy_audit_buffer_depth 0"),
        "{depth}"
    );
    proxy.restore();
    wait_for_audit_rows(&pool, N + 1, Duration::from_secs(60)).await;
}

#[tokio::test]
async fn graceful_shutdown_writes_every_queued_evaluation() {
    let (app, t, proxy, url) = build_behind_proxy(&[]).await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stop_rx.await;
    }));
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    proxy.cut();
    const N: i64 = 8;
    for i in 0..N {
        let r =
            json!({"action":"read","resource":format!("/x/{i}"),"type":"api_access","context":{}});
        assert_eq!(t.evaluate_with_key(r).await.status(), 200);
    }
    drop(t);
    stop_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();
    tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("shutdown finished")
        .unwrap()
        .unwrap();
    assert_eq!(audit_count(&pool).await, N);
}

#[tokio::test]
async fn evaluation_is_fail_open_when_redis_is_down() {
    let proxy = aegis_test_support::FaultProxy::start("127.0.0.1:6379".parse().unwrap())
        .await
        .unwrap();
    let url = format!("redis://{}", proxy.addr());
    let app = spawn_policy_app(&[("REDIS_URL", &url)]).await;
    let req = json!({"action":"restart","resource":"service:api","type":"self_healing","context":{"metadata":{"healthStatus":"unhealthy","failureCount":4}}});
    assert_eq!(app.evaluate_with_key(req.clone()).await.status(), 200);
    proxy.cut();
    for _ in 0..2 {
        let res = app.evaluate_with_key(req.clone()).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["reason"],
            "Allowed by policy: Auto Restart Failed Services"
        );
    }
    wait_for_audit_rows(&app.pool().await, 3, WAIT).await;
}
