//! The Socket.IO gateway with a real `socket.io-client` v4 (node, `tests/socketio/`):
//! alerts pushed to connected clients, the refusal of unauthenticated sockets, and the
//! connection gauge.

use std::{path::PathBuf, process::Stdio, time::Duration};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

use crate::{auth_support::spawn_with_admin, helpers::TestApp};

const PW: &str = "Password123!";

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/socketio")
}

/// Fails clearly without node; runs `npm ci` once when `node_modules` is missing (a lock file
/// keeps parallel test processes from installing at the same time).
pub(crate) async fn ensure_client() {
    let ok = Command::new("node").arg("--version").output().await;
    assert!(
        ok.is_ok_and(|o| o.status.success()),
        "node (>= 18) is required for the Socket.IO tests: install Node.js"
    );
    let dir = client_dir();
    let installed = dir.join("node_modules/socket.io-client/package.json");
    if installed.exists() {
        return;
    }
    let lock = dir.join(".npm-ci.lock");
    for _ in 0..1200 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => {
                if !installed.exists() {
                    let status = Command::new("npm")
                        .args(["ci", "--no-audit", "--no-fund"])
                        .current_dir(&dir)
                        .status()
                        .await;
                    let _ = std::fs::remove_file(&lock);
                    assert!(
                        status.is_ok_and(|s| s.success()),
                        "`npm ci` in {} failed",
                        dir.display()
                    );
                } else {
                    let _ = std::fs::remove_file(&lock);
                }
                return;
            }
            Err(_) if installed.exists() => return,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("timed out waiting for another test's `npm ci`");
}

struct Client {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Client {
    async fn start(app: &TestApp, mode: &str, token: &str, transports: &str) -> Self {
        Self::start_with(app, mode, token, transports, None).await
    }

    /// A client that sends `fresh` with the `authenticate` event once connected.
    async fn start_with(
        app: &TestApp,
        mode: &str,
        token: &str,
        transports: &str,
        fresh: Option<&str>,
    ) -> Self {
        ensure_client().await;
        let mut args = vec![app.address.as_str(), mode, token, transports];
        args.extend(fresh);
        let mut child = Command::new("node")
            .arg(client_dir().join("client.mjs"))
            .args(args)
            .current_dir(client_dir())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().unwrap();
        Client {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next line matching `pred` (others are skipped), within 10 s.
    async fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap()
                .unwrap_or_else(|| panic!("client exited before {what}"));
            let v: Value = serde_json::from_str(&line).unwrap();
            if pred(&v) {
                return v;
            }
        }
    }

    async fn connected(&mut self) {
        let v = self
            .wait_for("connect", |v| {
                v["type"] == "connect" || v["type"] == "connect_error"
            })
            .await;
        assert_eq!(v["type"], "connect", "{v}");
    }

    async fn event(&mut self, name: &str) -> Value {
        let v = self
            .wait_for(name, |v| v["type"] == "event" && v["event"] == name)
            .await;
        v["args"][0].clone()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn gauge(app: &TestApp) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("websocket_connections_active "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn an_authenticated_client_receives_alerts_created_and_resolved_through_rest() {
    let app = spawn_with_admin(&[]).await;
    let u1 = app.signup("u1@example.com", PW).await;
    let mut client = Client::start(&app, "auth", &u1.access, "websocket,polling").await;
    client.connected().await;
    assert_eq!(gauge(&app).await, 1.0);

    let res = app
        .send(
            Method::POST,
            "/api/v1/alerts",
            Some(&u1.access),
            Some(
                json!({"title":"High CPU","severity":"critical","description":"api-pod-1 at 95%"}),
            ),
        )
        .await;
    assert_eq!(res.status(), 201);
    let alert: Value = res.json().await.unwrap();

    let pushed = client.event("alert").await;
    assert_eq!(pushed["event"], "alert");
    assert_eq!(pushed["data"], alert, "the full alert object");
    let metrics = client.event("metrics:update").await;
    assert_eq!(metrics["event"], "metrics:update");
    assert_eq!(metrics["data"]["openAlerts"], 1);

    let res = app
        .send(
            Method::PATCH,
            &format!("/api/v1/alerts/{}", alert["id"].as_str().unwrap()),
            Some(&u1.access),
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let pushed = client.event("alert").await;
    assert_eq!(pushed["data"]["id"], alert["id"]);
    assert_eq!(pushed["data"]["status"], "resolved");

    drop(client);
    for _ in 0..100 {
        if gauge(&app).await == 0.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gauge never went back to 0");
}

#[tokio::test]
async fn sockets_without_a_valid_token_are_refused() {
    let app = spawn_with_admin(&[]).await;
    let u1 = app.signup("u1@example.com", PW).await;
    for (mode, token) in [
        ("none", ""),
        ("auth", "not-a-jwt"),
        ("auth", u1.refresh.as_str()),
    ] {
        let mut client = Client::start(&app, mode, token, "websocket,polling").await;
        let v = client
            .wait_for("connect_error", |v| {
                v["type"] == "connect_error" || v["type"] == "connect"
            })
            .await;
        assert_eq!(v["type"], "connect_error", "{mode} {v}");
        assert_eq!(v["message"], "Unauthorized");
    }
    assert_eq!(gauge(&app).await, 0.0);
}

#[tokio::test]
async fn the_token_may_come_in_the_query_and_polling_works() {
    let app = spawn_with_admin(&[]).await;
    let u1 = app.signup("u1@example.com", PW).await;
    let mut client = Client::start(&app, "query", &u1.access, "polling").await;
    client.connected().await;
    let res = app
        .send(
            Method::POST,
            "/api/v1/alerts",
            Some(&u1.access),
            Some(json!({"title":"t","severity":"low"})),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(client.event("alert").await["data"]["title"], "t");
}

#[tokio::test]
async fn a_detected_anomaly_is_pushed_in_the_dashboards_shape() {
    let engine_answer = json!({"is_anomaly": true, "anomaly_score": 0.85, "severity": "high",
        "recommended_action": "scale_up", "confidence": 0.9, "affected_metrics": ["cpu_usage"],
        "details": {"cpu_usage": 0.97}, "timestamp": "2024-01-25T14:00:01Z"});
    let (url, _) = crate::ai_proxy::spawn_stub(vec![(200, engine_answer)]).await;
    let app = spawn_with_admin(&[("AI_ENGINE_URL", url.as_str())]).await;
    let u1 = app.signup("u1@example.com", PW).await;
    let mut client = Client::start(&app, "auth", &u1.access, "websocket").await;
    client.connected().await;

    let res = app
        .send(
            Method::POST,
            "/api/v1/ai/predict",
            Some(&u1.access),
            Some(json!({"type": "anomaly", "metrics": [
                {"metric_type": "cpu_usage", "value": 0.97, "timestamp": "2024-01-25T14:00:00Z"}]})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let pushed = client.event("anomaly").await;
    assert_eq!(pushed["event"], "anomaly");
    let data = &pushed["data"];
    let stored: (uuid::Uuid,) = sqlx::query_as("SELECT id FROM prediction_results")
        .fetch_one(&app.pool().await)
        .await
        .unwrap();
    assert_eq!(data["id"], stored.0.to_string());
    assert_eq!(
        data,
        &json!({"id": stored.0.to_string(), "timestamp": "2024-01-25T14:00:01Z",
                "metric": "cpu_usage", "value": 0.97, "predicted": null, "anomalyScore": 0.85,
                "isAnomaly": true, "severity": "high", "recommendation": "scale_up"})
    );
}

async fn post_alert(app: &TestApp, token: &str, title: &str) {
    let res = app
        .send(
            Method::POST,
            "/api/v1/alerts",
            Some(token),
            Some(json!({"title": title, "severity": "low"})),
        )
        .await;
    assert_eq!(res.status(), 201);
}

/// Waits for the disconnect line, failing on any pushed event before it.
async fn disconnected(client: &mut Client) {
    let v = client
        .wait_for("disconnect", |v| v["type"] == "disconnect")
        .await;
    assert_eq!(v["reason"], "io server disconnect", "{v}");
}

/// A socket lives no longer than its access token, unless the client sends a fresh one.
#[tokio::test]
async fn a_socket_is_disconnected_when_its_token_expires_unless_renewed() {
    // Six seconds a token, the fresh one issued 2.5 s after the old: the old token has at least
    // 2.5 s left to connect and renew, and the fresh one outlives it by 2 s at least.
    let app = spawn_with_admin(&[("JWT_ACCESS_EXPIRATION", "6s")]).await;
    let first = app.signup("u1@example.com", PW).await;
    let mut plain = Client::start(&app, "auth", &first.access, "websocket").await;
    plain.connected().await;
    disconnected(&mut plain).await;

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let old = app.login_ok("u1@example.com", PW).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let fresh = app.login_ok("u1@example.com", PW).await;
    let old_exp = crate::auth_support::claims(&old.access)["exp"]
        .as_i64()
        .unwrap();
    let fresh_exp = crate::auth_support::claims(&fresh.access)["exp"]
        .as_i64()
        .unwrap();
    assert!(fresh_exp > old_exp);
    let mut renewed =
        Client::start_with(&app, "auth", &old.access, "websocket", Some(&fresh.access)).await;
    renewed.connected().await;
    let ack = renewed
        .wait_for("reauthenticated", |v| v["type"] == "reauthenticated")
        .await;
    assert_eq!(ack["answer"]["ok"], true, "{ack}");
    // Past the first token's expiry, the socket still receives events.
    let wait = old_exp * 1000 + 500 - chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
    post_alert(&app, &fresh.access, "still here").await;
    assert_eq!(renewed.event("alert").await["data"]["title"], "still here");
    disconnected(&mut renewed).await;
    assert!(
        chrono::Utc::now().timestamp() >= fresh_exp,
        "disconnected before the fresh token expired"
    );
}

/// Logout and deactivation close the user's sockets at once, and a token issued before the
/// logout cannot open a new one.
#[tokio::test]
async fn logout_and_deactivation_disconnect_the_users_sockets() {
    let app = spawn_with_admin(&[]).await;
    let admin = app.admin().await;
    let u1 = app.signup("u1@example.com", PW).await;
    let mut client = Client::start(&app, "auth", &u1.access, "websocket").await;
    client.connected().await;
    let res = app
        .send(Method::POST, "/api/v1/auth/logout", Some(&u1.access), None)
        .await;
    assert_eq!(res.status(), 200);
    disconnected(&mut client).await;
    let mut again = Client::start(&app, "auth", &u1.access, "websocket").await;
    let v = again
        .wait_for("connect_error", |v| {
            v["type"] == "connect_error" || v["type"] == "connect"
        })
        .await;
    assert_eq!(
        v["type"], "connect_error",
        "a token from before the logout: {v}"
    );

    let u2 = app.signup("u2@example.com", PW).await;
    let mut client = Client::start(&app, "auth", &u2.access, "polling").await;
    client.connected().await;
    let res = app
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{}", u2.user_id()),
            Some(&admin.access),
            Some(json!({"isActive": false})),
        )
        .await;
    assert_eq!(res.status(), 200);
    disconnected(&mut client).await;
}

/// A logout through one replica closes the user's sockets on another at its next session
/// check.
#[tokio::test]
async fn a_logout_through_one_replica_disconnects_sockets_on_another() {
    let (a, b) = crate::policy_support::spawn_pair().await;
    let u1 = a.signup("u1@example.com", PW).await;
    let mut client = Client::start(&b, "auth", &u1.access, "websocket").await;
    client.connected().await;
    let res = a
        .send(Method::POST, "/api/v1/auth/logout", Some(&u1.access), None)
        .await;
    assert_eq!(res.status(), 200);
    disconnected(&mut client).await;
}

/// `remediation` events reach only users who may read incidents through REST.
#[tokio::test]
async fn remediation_events_reach_only_incident_readers() {
    let app = spawn_with_admin(&[("REMEDIATION_MODE", "off")]).await;
    let admin = app.admin().await;
    let u1 = app.signup("u1@example.com", PW).await;
    let operator = app
        .user_with_role(&admin, "op@example.com", "operator")
        .await;
    let mut reader = Client::start(&app, "auth", &admin.access, "websocket").await;
    reader.connected().await;
    let mut on_call = Client::start(&app, "auth", &operator.access, "websocket").await;
    on_call.connected().await;
    let mut plain = Client::start(&app, "auth", &u1.access, "websocket").await;
    plain.connected().await;
    let res = app
        .send(
            Method::POST,
            "/api/v1/remediation/signals",
            Some(&admin.access),
            Some(json!({
                "source": "admin", "kind": "anomaly", "observedAt": "2026-11-25T10:00:00Z",
                "target": {"namespace": "shop", "deployment": "web"},
                "severity": "high", "score": 0.9, "confidence": 0.9,
                "recommendedAction": "scale_up", "window": {"metrics": []}, "prediction": {}
            })),
        )
        .await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    assert_eq!(reader.event("remediation").await["event"], "remediation");
    assert_eq!(
        on_call.event("remediation").await["event"],
        "remediation",
        "operators read incidents, so they get their events"
    );
    post_alert(&app, &admin.access, "after").await;
    let next = plain
        .wait_for("alert", |v| {
            v["type"] == "event" && (v["event"] == "alert" || v["event"] == "remediation")
        })
        .await;
    assert_eq!(
        next["event"], "alert",
        "a plain user got a remediation event: {next}"
    );
}
