//! Notifications delivered to real receivers: a webhook receiver verifying Standard Webhooks
//! signatures with the specification's package, a Slack stand-in, Alertmanager read back
//! with amtool, and a local SMTP server. Routing, retries, dead letters, the test send, and a
//! backend killed mid-delivery.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use aegis_test_support::{fresh_database, redis_prefix, redis_url, spawn_service};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    auth_support::{ADMIN_EMAIL, ADMIN_PASSWORD, Tokens, assert_error, spawn_with_admin},
    helpers::TestApp,
    notify_support::{Alertmanager, Receiver, SECRET, Smtp},
    remediation_loop::{signal, start},
};

async fn create(app: &TestApp, admin: &Tokens, path: &str, body: Value) -> Value {
    let res = app
        .send(Method::POST, path, Some(&admin.access), Some(body.clone()))
        .await;
    assert_eq!(res.status(), 201, "{body}: {}", res.text().await.unwrap());
    res.json().await.unwrap()
}

async fn channel(app: &TestApp, admin: &Tokens, body: Value) -> String {
    create(app, admin, "/api/v1/notifications/channels", body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn route(app: &TestApp, admin: &Tokens, body: Value) {
    create(app, admin, "/api/v1/notifications/routes", body).await;
}

async fn set_mode(app: &TestApp, admin: &Tokens, mode: &str) {
    let res = app
        .send(
            Method::PUT,
            "/api/v1/remediation/mode",
            Some(&admin.access),
            Some(json!({"mode": mode})),
        )
        .await;
    assert_eq!(res.status(), 200);
}

/// A 400 with exactly these validation messages.
async fn assert_messages(res: reqwest::Response, expected: &[&str]) {
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        json!(expected)
    );
}

async fn deliveries(app: &TestApp, admin: &Tokens, query: &str) -> Vec<Value> {
    let res = app
        .get_as(
            &format!("/api/v1/notifications/deliveries{query}"),
            &admin.access,
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn channels_keep_their_secrets_and_routes_name_what_exists() {
    let app = spawn_with_admin(&[]).await;
    let admin = app.admin().await;
    let operator = app
        .user_with_role(&admin, "op@example.com", "operator")
        .await;
    let body = json!({"name": "hooks", "type": "webhook", "config": {"url": "https://hooks.example/aegis"}, "secret": SECRET});
    // Admin only, before the body is even looked at.
    let res = app
        .send(
            Method::POST,
            "/api/v1/notifications/channels",
            Some(&operator.access),
            Some(json!({"bogus": 1})),
        )
        .await;
    assert_eq!(res.status(), 403);
    let created = create(&app, &admin, "/api/v1/notifications/channels", body.clone()).await;
    assert_eq!(created["hasSecret"], true);
    assert_eq!(created["type"], "webhook");
    let res = app
        .send(
            Method::POST,
            "/api/v1/notifications/channels",
            Some(&admin.access),
            Some(body),
        )
        .await;
    assert_error(res, 409, "A channel with this name already exists").await;
    let listed = app
        .get_as("/api/v1/notifications/channels", &admin.access)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !listed.contains("whsec_"),
        "a secret was returned: {listed}"
    );
    let one = app
        .get_as(
            &format!(
                "/api/v1/notifications/channels/{}",
                created["id"].as_str().unwrap()
            ),
            &admin.access,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !one.contains("whsec_") && one.contains("\"hasSecret\":true"),
        "{one}"
    );

    // Bad settings: one message per broken rule.
    let res = app
        .send(
            Method::POST,
            "/api/v1/notifications/channels",
            Some(&admin.access),
            Some(json!({"name": "bad", "type": "webhook", "config": {"url": "https://u:p@h.example", "extra": 1}, "secret": "plain"})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let messages = res.json::<Value>().await.unwrap()["message"].clone();
    assert_eq!(messages.as_array().map(Vec::len), Some(3), "{messages}");
    let res = app
        .send(
            Method::POST,
            "/api/v1/notifications/channels",
            Some(&admin.access),
            Some(
                json!({"name": "mail", "type": "email", "config": {"to": ["oncall@example.com"]}}),
            ),
        )
        .await;
    assert_messages(
        res,
        &["e-mail channels need the backend's SMTP settings (SMTP_URL or SMTP_HOST)"],
    )
    .await;
    let res = app
        .send(
            Method::POST,
            "/api/v1/notifications/channels",
            Some(&admin.access),
            Some(json!({"name": "x", "type": "pager"})),
        )
        .await;
    assert_messages(
        res,
        &["type must be one of the following values: slack, webhook, alertmanager, email"],
    )
    .await;

    // Routes name existing channels, known event types and severities, and a plain glob.
    let missing = uuid::Uuid::new_v4();
    let res = app
        .send(
            Method::POST,
            "/api/v1/notifications/routes",
            Some(&admin.access),
            Some(json!({"name": "r", "channelIds": [missing]})),
        )
        .await;
    assert_error(res, 400, &format!("channelIds name no channel: {missing}")).await;
    let res = app
        .send(Method::POST, "/api/v1/notifications/routes", Some(&admin.access),
              Some(json!({"name": "r", "channelIds": [created["id"]], "eventTypes": ["paged"], "minSeverity": "urgent", "namespacePattern": "Prod%"})))
        .await;
    assert_eq!(res.status(), 400);
    let messages = res.json::<Value>().await.unwrap()["message"].clone();
    assert_eq!(messages.as_array().map(Vec::len), Some(3), "{messages}");

    // Deleting a channel takes it out of its routes.
    let r = create(
        &app,
        &admin,
        "/api/v1/notifications/routes",
        json!({"name": "all", "channelIds": [created["id"]]}),
    )
    .await;
    assert_eq!(r["namespacePattern"], "*");
    assert_eq!(r["minSeverity"], "low");
    let res = app
        .send(
            Method::DELETE,
            &format!(
                "/api/v1/notifications/channels/{}",
                created["id"].as_str().unwrap()
            ),
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(res.status(), 204);
    let routes: Value = app
        .get_as("/api/v1/notifications/routes", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(routes[0]["channelIds"], json!([]));
}

#[tokio::test]
async fn events_reach_the_channels_their_routes_match_signed_once_per_key() {
    let receiver = Receiver::start().await;
    let l = start("approval", &[("NOTIFY_POLL_MS", "50")]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    l.allow("scale pay", "scale_up", "pay", None).await;
    let hook = channel(&l.app, &l.admin, json!({"name": "hook", "type": "webhook", "config": {"url": receiver.hook_url()}, "secret": SECRET})).await;
    let slack = channel(
        &l.app,
        &l.admin,
        json!({"name": "slack", "type": "slack", "secret": receiver.slack_url()}),
    )
    .await;
    // The shop team hears about approvals and outcomes of high severity and above.
    route(&l.app, &l.admin, json!({"name": "shop", "eventTypes": ["awaiting_approval", "resolved"], "minSeverity": "high", "namespacePattern": "sh?p", "channelIds": [hook]})).await;
    // A critical-only route to the same channel matches nothing here and duplicates nothing.
    route(&l.app, &l.admin, json!({"name": "critical", "eventTypes": ["awaiting_approval"], "minSeverity": "critical", "channelIds": [hook]})).await;
    // Everyone hears about the kill switch.
    route(
        &l.app,
        &l.admin,
        json!({"name": "switch", "eventTypes": ["mode_changed"], "channelIds": [slack]}),
    )
    .await;

    let web = l.signal(&signal("shop", "web", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let pay = l
        .signal(&signal("production", "pay", None, "scale_up"))
        .await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    l.wait_for(&web, &["awaiting_approval"]).await;
    l.wait_for(&pay, &["awaiting_approval"]).await;
    let res = l
        .call(
            Method::POST,
            &format!("/api/v1/remediation/incidents/{web}/approve"),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    l.wait_for(&web, &["resolved"]).await;
    set_mode(&l.app, &l.admin, "dry_run").await;

    let got = receiver
        .wait_until("two shop events and one switch", |r| {
            r["verified"].as_array().is_some_and(|v| v.len() >= 2)
                && r["slack"].as_array().is_some_and(|s| !s.is_empty())
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_now = receiver.received().await;
    assert_eq!(got_now, got, "nothing more arrives");
    assert_eq!(got["rejected"], 0, "every delivery verified");
    let verified = got["verified"].as_array().unwrap();
    let types: Vec<&str> = verified
        .iter()
        .map(|d| d["payload"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["aegis.awaiting_approval", "aegis.resolved"]);
    for d in verified {
        let data = &d["payload"]["data"];
        assert_eq!(data["detail"]["incidentId"], web.as_str());
        assert_eq!(data["eventId"], d["id"], "the webhook-id is the event id");
        assert_eq!(
            data["link"],
            format!("http://localhost:3000/api/v1/remediation/incidents/{web}")
        );
    }
    let ids: HashSet<&str> = verified.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    let slack_msgs = got["slack"].as_array().unwrap();
    assert_eq!(slack_msgs.len(), 1);
    assert_eq!(
        slack_msgs[0]["blocks"][0]["text"]["text"],
        "Remediation mode for every namespace is now dry_run"
    );
    assert!(
        slack_msgs[0]["blocks"][1]
            .to_string()
            .contains(&format!("*Changed by*\\n{ADMIN_EMAIL}"))
    );

    // The test send arrives at once, signed; a dead receiver is a 502 that says why.
    let res = l
        .call(
            Method::POST,
            &format!("/api/v1/notifications/channels/{hook}/test"),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let sent: Value = res.json().await.unwrap();
    assert_eq!(sent["delivered"], true);
    let last = receiver.verified().await.last().cloned().unwrap();
    assert_eq!(
        last,
        (
            sent["eventId"].as_str().unwrap().to_owned(),
            "aegis.test".to_owned()
        )
    );
    let dead = channel(&l.app, &l.admin, json!({"name": "dead", "type": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}, "secret": SECRET})).await;
    let res = l
        .call(
            Method::POST,
            &format!("/api/v1/notifications/channels/{dead}/test"),
            None,
        )
        .await;
    assert_eq!(res.status(), 502);
    let message = res.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with(
            "the test notification to dead was not delivered: could not reach the receiver"
        ),
        "{message}"
    );

    // A delivery is counted once the receiver has answered, a moment after it has the request.
    l.metrics_with(&[
        "notification_deliveries_total{channel=\"webhook\",result=\"delivered\"} 2",
        "notification_deliveries_total{channel=\"slack\",result=\"delivered\"} 1",
        "notification_outbox_backlog 0",
    ])
    .await;
}

#[tokio::test]
async fn failed_deliveries_back_off_and_end_as_dead_letters_that_can_be_retried() {
    let receiver = Receiver::start().await;
    let app = spawn_with_admin(&[
        ("NOTIFY_POLL_MS", "50"),
        ("NOTIFY_RETRY_BASE_MS", "100"),
        ("NOTIFY_DEAD_AFTER_SECONDS", "2"),
        ("NOTIFY_DELIVERY_TIMEOUT_SECONDS", "1"),
    ])
    .await;
    let admin = app.admin().await;
    let hook = channel(&app, &admin, json!({"name": "flaky", "type": "webhook", "config": {"url": receiver.hook_url()}, "secret": SECRET})).await;
    let down = channel(&app, &admin, json!({"name": "down", "type": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}, "secret": SECRET})).await;
    let wrong = channel(&app, &admin, json!({"name": "wrong", "type": "webhook", "config": {"url": format!("{}/nowhere", receiver.base)}, "secret": SECRET})).await;
    route(
        &app,
        &admin,
        json!({"name": "all", "channelIds": [hook, down, wrong]}),
    )
    .await;
    receiver.control(2, 0).await;
    set_mode(&app, &admin, "off").await;

    // Two 503s, then delivered on the third attempt.
    receiver
        .wait_until("the event after two 503s", |r| {
            r["verified"].as_array().is_some_and(|v| v.len() == 1)
        })
        .await;
    // 404 is permanent: dead after one attempt. The closed port keeps failing until the
    // event is 2 s old.
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = deliveries(&app, &admin, "").await;
        let by_channel: HashMap<String, Value> = rows
            .iter()
            .map(|d| (d["channelName"].as_str().unwrap().to_owned(), d.clone()))
            .collect();
        if by_channel
            .get("flaky")
            .is_some_and(|d| d["status"] == "delivered")
            && by_channel
                .get("down")
                .is_some_and(|d| d["status"] == "dead")
            && by_channel
                .get("wrong")
                .is_some_and(|d| d["status"] == "dead")
        {
            break by_channel;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries did not settle: {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(rows["flaky"]["attempts"], 3);
    assert_eq!(rows["wrong"]["attempts"], 1, "a 404 is not retried");
    assert!(
        rows["wrong"]["lastError"]
            .as_str()
            .unwrap()
            .starts_with("the receiver answered 404"),
        "{:?}",
        rows["wrong"]
    );
    let down_attempts = rows["down"]["attempts"].as_i64().unwrap();
    assert!(
        (2..=8).contains(&down_attempts),
        "backed off: {down_attempts} attempts in 2 s"
    );
    assert!(
        rows["down"]["lastError"]
            .as_str()
            .unwrap()
            .starts_with("could not reach the receiver")
    );
    let dead = deliveries(&app, &admin, "?status=dead").await;
    assert_eq!(dead.len(), 2);
    let res = app
        .get_as(
            "/api/v1/notifications/deliveries?status=lost",
            &admin.access,
        )
        .await;
    assert_messages(
        res,
        &["status must be one of the following values: pending, delivered, dead"],
    )
    .await;

    // Fixed and retried, the dead letter arrives, with the same idempotency key.
    let res = app
        .send(
            Method::PATCH,
            &format!("/api/v1/notifications/channels/{wrong}"),
            Some(&admin.access),
            Some(json!({"config": {"url": receiver.hook_url()}})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let id = rows["wrong"]["id"].as_i64().unwrap();
    let res = app
        .send(
            Method::POST,
            &format!("/api/v1/notifications/deliveries/{id}/retry"),
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(res.status(), 202);
    let got = receiver
        .wait_until("the retried dead letter", |r| {
            r["verified"].as_array().is_some_and(|v| v.len() == 2)
        })
        .await;
    let keys: Vec<&str> = got["verified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(keys[0], keys[1], "one event, one key, whichever channel");
    let res = app
        .send(
            Method::POST,
            &format!("/api/v1/notifications/deliveries/{id}/retry"),
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(res.status(), 404, "only dead deliveries are retried");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("notification_deliveries_total{channel=\"webhook\",result=\"retry\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("notification_deliveries_total{channel=\"webhook\",result=\"dead\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn alertmanager_fires_while_an_approval_waits_and_resolves_when_it_is_decided() {
    let am = Alertmanager::start().await;
    let l = start("approval", &[("NOTIFY_POLL_MS", "50")]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    let ch = channel(
        &l.app,
        &l.admin,
        json!({"name": "am", "type": "alertmanager", "config": {"url": am.url}}),
    )
    .await;
    route(&l.app, &l.admin, json!({"name": "pager", "eventTypes": ["awaiting_approval", "executing", "rejected", "expired", "failed", "escalated"], "channelIds": [ch]})).await;
    let id = l.signal(&signal("shop", "web", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    l.wait_for(&id, &["awaiting_approval"]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let alert = loop {
        if let Some(a) = am
            .active_alerts()
            .await
            .into_iter()
            .find(|a| a["labels"]["incident_id"] == id.as_str())
        {
            break a;
        }
        assert!(Instant::now() < deadline, "no alert in Alertmanager");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(alert["labels"]["alertname"], "AegisRemediation");
    assert_eq!(alert["labels"]["namespace"], "shop");
    assert_eq!(alert["labels"]["severity"], "high");
    assert_eq!(
        alert["annotations"]["summary"],
        "Incident awaiting approval: shop/web"
    );
    assert_eq!(
        alert["annotations"]["action"],
        "scale_deployment to 3 replicas"
    );

    let res = l
        .call(
            Method::POST,
            &format!("/api/v1/remediation/incidents/{id}/reject"),
            Some(json!({"reason": "not now"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while am
        .active_alerts()
        .await
        .iter()
        .any(|a| a["labels"]["incident_id"] == id.as_str())
    {
        assert!(
            Instant::now() < deadline,
            "the alert still fires after the rejection"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn email_goes_through_the_smtp_settings_to_a_local_receiver() {
    let smtp = Smtp::start().await;
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = spawn_with_admin(&[
        ("SMTP_URL", &url),
        ("SMTP_FROM", "aegis@example.com"),
        ("NOTIFY_POLL_MS", "50"),
    ])
    .await;
    let admin = app.admin().await;
    let mail = channel(&app, &admin, json!({"name": "oncall", "type": "email", "config": {"to": ["oncall@example.com", "sre@example.com"]}})).await;
    route(
        &app,
        &admin,
        json!({"name": "switch", "eventTypes": ["mode_changed"], "channelIds": [mail]}),
    )
    .await;
    let res = app
        .send(
            Method::PUT,
            "/api/v1/remediation/mode",
            Some(&admin.access),
            Some(json!({"mode": "off", "reason": "freeze"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let message = loop {
        if let Some(m) = smtp.messages().into_iter().next() {
            break m;
        }
        assert!(Instant::now() < deadline, "no mail arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let event: String = sqlx::query_scalar(
        "SELECT id::text FROM notification_events WHERE event_type = 'mode_changed'",
    )
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    for needle in [
        "Subject: [Aegis] Remediation mode for every namespace is now off",
        "X-RcptTo: oncall@example.com, sre@example.com",
        &format!("Message-ID: <{event}@aegis>"),
        "freeze",
    ] {
        assert!(
            message.contains(needle),
            "{needle} missing from:\n{message}"
        );
    }
    let res = app
        .send(
            Method::POST,
            &format!("/api/v1/notifications/channels/{mail}/test"),
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(smtp.messages().len(), 2);
}

/// The real binary, killed with SIGKILL while deliveries are in flight, then started again on
/// the same database: every event arrives, and every arrival of one event carries its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_mid_delivery_delivers_every_event_after_its_restart() {
    let receiver = Receiver::start().await;
    let db = fresh_database("benotify").await;
    let env = [
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis_url()),
        ("REDIS_KEY_PREFIX", redis_prefix()),
        ("JWT_SECRET", "notify-access-secret-0123456789abcdef".into()),
        (
            "JWT_REFRESH_SECRET",
            "notify-refresh-secret-0123456789abcdef".into(),
        ),
        ("HEALTH_CHECK_AI_ENGINE", "false".into()),
        ("RATE_LIMIT_DISABLED", "true".into()),
        ("BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL.into()),
        ("BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
        ("ARGON2_MEMORY_KIB", "1024".into()),
        ("ARGON2_ITERATIONS", "1".into()),
        ("NOTIFY_POLL_MS", "50".into()),
        ("NOTIFY_DELIVERY_TIMEOUT_SECONDS", "1".into()),
    ];
    let binary = env!("CARGO_BIN_EXE_aegis-backend");
    let mut first = spawn_service(binary, &env, "/api/v1/health/ping").await;
    let client = reqwest::Client::new();
    let login = |base: String| {
        let client = client.clone();
        async move {
            let res = client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()["accessToken"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let token = login(first.base.clone()).await;
    let post = |base: &str, path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let res = post(&first.base, "/api/v1/notifications/channels",
                   json!({"name": "hook", "type": "webhook", "config": {"url": receiver.hook_url()}, "secret": SECRET})).await.unwrap();
    assert_eq!(res.status(), 201);
    let hook = res.json::<Value>().await.unwrap()["id"].clone();
    let res = post(
        &first.base,
        "/api/v1/notifications/routes",
        json!({"name": "all", "channelIds": [hook]}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);

    // The receiver holds every answer for 1.5 s, so the attempts are in flight when the
    // backend dies, and then refuses them: whatever arrives later came from the restarted
    // process.
    receiver.control(1000, 1500).await;
    for mode in ["off", "dry_run", "approval", "auto", "off", "dry_run"] {
        let res = client
            .put(format!("{}/api/v1/remediation/mode", first.base))
            .bearer_auth(&token)
            .json(&json!({"mode": mode}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();
    receiver.control(0, 0).await;

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let undelivered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification_deliveries WHERE status <> 'delivered'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        undelivered > 0,
        "the kill came after every delivery was recorded: nothing was tested"
    );
    let _second = spawn_service(binary, &env, "/api/v1/health/ping").await;
    let events: HashSet<String> = sqlx::query_scalar("SELECT id::text FROM notification_events")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(events.len(), 6);
    let deadline = Instant::now() + Duration::from_secs(20);
    let arrived = loop {
        let arrived = receiver.verified().await;
        let keys: HashSet<String> = arrived.iter().map(|(id, _)| id.clone()).collect();
        if keys == events {
            break arrived;
        }
        assert!(
            Instant::now() < deadline,
            "missing after the restart: {:?}",
            events.difference(&keys)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(arrived.iter().all(|(_, t)| t == "aegis.mode_changed"));
    assert_eq!(arrived.len(), 6, "each event once: {arrived:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM notification_deliveries WHERE status <> 'delivered'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} deliveries not recorded as delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn old_settled_events_are_pruned_and_pending_ones_kept() {
    let app = spawn_with_admin(&[]).await;
    let admin = app.admin().await;
    let pool = app.pool().await;
    let ch = channel(
        &app,
        &admin,
        json!({"name": "hook", "type": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}, "secret": SECRET}),
    )
    .await;
    // Three events 40 days old: one delivered, one dead, one still pending; and a fresh one.
    let mut ids = Vec::new();
    for (age_days, status) in [
        (40, "delivered"),
        (40, "dead"),
        (40, "pending"),
        (1, "delivered"),
    ] {
        let id: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO notification_events (event_type, severity, payload, created_at, routed_at) \
             VALUES ('mode_changed', 'high', '{}', now() - make_interval(days => $1), now()) RETURNING id",
        )
        .bind(age_days)
        .fetch_one(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO notification_deliveries (event_id, channel_id, status, next_attempt_at) \
             VALUES ($1, $2::uuid, $3, now() + interval '1 day')",
        )
        .bind(id)
        .bind(&ch)
        .bind(status)
        .execute(&pool)
        .await
        .unwrap();
        ids.push(id);
    }
    let pruned = aegis_backend::db::notifications::prune(&pool, 30)
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    let left: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM notification_events ORDER BY created_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        left,
        [ids[2], ids[3]],
        "the pending one and the fresh one stay"
    );
    let deliveries: i64 = sqlx::query_scalar("SELECT count(*) FROM notification_deliveries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        deliveries, 2,
        "the pruned events' deliveries went with them"
    );
}

/// A slow receiver holds at most its channel's share of the attempts in flight (a quarter),
/// so a fast channel's deliveries go out meanwhile.
#[tokio::test]
async fn a_slow_channel_holds_only_its_share_of_the_attempts() {
    let slow = Receiver::start().await;
    let fast = Receiver::start().await;
    // Three seconds an answer: the fast channel's six take well under six seconds even on a
    // loaded machine, in which time the slow one gets at most two.
    slow.control(0, 3000).await;
    let app = spawn_with_admin(&[("NOTIFY_POLL_MS", "50"), ("NOTIFY_MAX_IN_FLIGHT", "4")]).await;
    let admin = app.admin().await;
    let slow_ch = channel(&app, &admin, json!({"name": "slow", "type": "webhook", "config": {"url": slow.hook_url()}, "secret": SECRET})).await;
    let fast_ch = channel(&app, &admin, json!({"name": "fast", "type": "webhook", "config": {"url": fast.hook_url()}, "secret": SECRET})).await;
    route(
        &app,
        &admin,
        json!({"name": "both", "channelIds": [slow_ch, fast_ch]}),
    )
    .await;
    for mode in ["off", "dry_run", "approval", "auto", "off", "dry_run"] {
        set_mode(&app, &admin, mode).await;
    }
    fast.wait_until("the fast channel's six", |r| {
        r["verified"].as_array().is_some_and(|v| v.len() == 6)
    })
    .await;
    let slow_so_far = slow.verified().await.len();
    assert!(
        slow_so_far <= 2,
        "the slow receiver, one attempt at a time, has {slow_so_far} already"
    );
}

/// Inserts an event (for `incident`, if any) and its pending, due delivery to `channel`;
/// answers the delivery's id. `age_s` makes both that many seconds old.
async fn pending_delivery(
    pool: &sqlx::PgPool,
    channel: &str,
    incident: Option<uuid::Uuid>,
    age_s: i32,
) -> i64 {
    let event: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO notification_events (event_type, incident_id, severity, payload, created_at, routed_at) \
         VALUES ('failed', $1, 'high', '{}', now() - make_interval(secs => $2), now()) RETURNING id",
    )
    .bind(incident)
    .bind(f64::from(age_s))
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query_scalar(
        "INSERT INTO notification_deliveries (event_id, channel_id, next_attempt_at, created_at) \
         VALUES ($1, $2::uuid, now() - make_interval(secs => $3), now() - make_interval(secs => $3)) \
         RETURNING id",
    )
    .bind(event)
    .bind(channel)
    .bind(f64::from(age_s))
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The claim, as the dispatcher makes it: a channel's backlog never hides another channel's
/// rows, an incident's events go out in order per channel, and an attempt whose lease ran out
/// records nothing over the next attempt.
#[tokio::test]
async fn the_claim_is_fair_between_channels_ordered_per_incident_and_bound_to_its_lease() {
    use aegis_backend::db::notifications as store;
    // A dispatcher that never runs on its own during the test.
    let app = spawn_with_admin(&[("NOTIFY_POLL_MS", "3600000")]).await;
    let admin = app.admin().await;
    let pool = app.pool().await;
    let body = |name: &str| json!({"name": name, "type": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}, "secret": SECRET});
    let backlog = channel(&app, &admin, body("backlog")).await;
    let other = channel(&app, &admin, body("other")).await;
    for age in 0..200 {
        pending_delivery(&pool, &backlog, None, 1000 + age).await;
    }
    let behind = pending_delivery(&pool, &other, None, 10).await;
    let claimed = store::claim_due(&pool, 16, 4, &[], 30.0).await.unwrap();
    assert_eq!(
        claimed.len(),
        5,
        "four of the backlog and the other channel's one"
    );
    assert!(
        claimed.iter().any(|d| d.id == behind),
        "the other channel's row was claimed"
    );
    assert_eq!(
        claimed
            .iter()
            .filter(|d| d.channel_name == "backlog")
            .count(),
        4
    );

    // Two events of one incident on one channel: the later waits for the earlier.
    let incident = uuid::Uuid::new_v4();
    let first = pending_delivery(&pool, &other, Some(incident), 5).await;
    let second = pending_delivery(&pool, &other, Some(incident), 4).await;
    let claimed = store::claim_due(
        &pool,
        16,
        4,
        &[uuid::Uuid::parse_str(&backlog).unwrap()],
        30.0,
    )
    .await
    .unwrap();
    let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
    assert_eq!(ids, [first], "only the incident's first event");
    let attempt = claimed[0].attempts;
    // An attempt from an earlier lease records nothing; the current one does.
    store::delivered(&pool, first, attempt - 1).await.unwrap();
    let status: String =
        sqlx::query_scalar("SELECT status FROM notification_deliveries WHERE id = $1")
            .bind(first)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "pending");
    store::delivered(&pool, first, attempt).await.unwrap();
    sqlx::query("UPDATE notification_deliveries SET next_attempt_at = now() WHERE id = $1")
        .bind(second)
        .execute(&pool)
        .await
        .unwrap();
    let claimed = store::claim_due(
        &pool,
        16,
        4,
        &[uuid::Uuid::parse_str(&backlog).unwrap()],
        30.0,
    )
    .await
    .unwrap();
    assert_eq!(claimed.iter().map(|d| d.id).collect::<Vec<_>>(), [second]);
}
