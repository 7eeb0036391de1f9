//! `/executor/*`: `/executor/action` forwarded to a real executor in front of kube-sim, the
//! audit proxy, and the retry rule against a stub (a real executor cannot be made to answer
//! 503 on demand).

use std::sync::{Arc, Mutex};

use aegis_common::config::Env;
use aegis_test_support::{FaultProxy, fresh_database};
use axum::{Router, http::StatusCode, response::IntoResponse, routing::post};
use kube_sim::{KubeSim, Resource, RunningSim, SimConfig};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{
    alerts::auditor,
    auth_support::{assert_error, spawn_with_admin},
    helpers::TestApp,
};

const KEY: &str = "e2e-secret";
const AUDIT_TOKEN: &str = "executor-audit-token";
const SERVICE_KEY: &str = "executor-service-key";

struct Executor {
    url: String,
    db: PgPool,
    sim: RunningSim,
    pod: String,
    _kubeconfig: TempFile,
}

struct TempFile(std::path::PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// kube-sim with deployment `default/web` (one pod) and a real executor in front of it.
async fn spawn_executor() -> Executor {
    let sim = KubeSim::start(SimConfig::default()).await.unwrap();
    sim.cluster()
        .create(
            Resource::Deployment,
            Some("default"),
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
            }),
        )
        .unwrap();
    let pod = sim.cluster().pods_of_deployment("default", "web")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let db = fresh_database("executor").await;
    let kubeconfig = std::env::temp_dir().join(format!(
        "aegis-backend-test-{}.kubeconfig",
        uuid::Uuid::new_v4().simple()
    ));
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let mut env = Env::from_pairs([
        ("APP_ENV", "test"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("ALLOWED_NAMESPACES", "default,aegis"),
        ("EXECUTOR_HMAC_SECRET", KEY),
        ("REQUIRE_ACTION_SIGNATURE", "true"),
        ("REQUIRE_SIGNATURE_TIMESTAMP", "true"),
        ("AUDIT_API_TOKEN", AUDIT_TOKEN),
        ("SERVICE_API_KEYS", SERVICE_KEY),
        ("K8S_REQUEST_TIMEOUT_MS", "2000"),
    ]);
    env.set("DATABASE_URL", db.url.clone());
    env.set("KUBECONFIG_PATH", kubeconfig.display().to_string());
    let config = aegis_executor::config::Config::from_env(&env).expect("executor config");
    let app = aegis_executor::startup::Application::build(config)
        .await
        .expect("executor builds");
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    Executor {
        url,
        db: PgPool::connect(&db.url).await.unwrap(),
        sim,
        pod,
        _kubeconfig: TempFile(kubeconfig),
    }
}

async fn backend_for(executor_url: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("EXECUTOR_URL", executor_url),
        ("EXECUTOR_HMAC_SECRET", KEY),
        ("EXECUTOR_AUDIT_TOKEN", AUDIT_TOKEN),
        ("EXECUTOR_API_KEY", SERVICE_KEY),
        ("EXECUTOR_NAMESPACE_ALLOWLIST", "default,aegis"),
    ];
    vars.extend_from_slice(extra);
    spawn_with_admin(&vars).await
}

fn now_ms() -> String {
    chrono::Utc::now().timestamp_millis().to_string()
}

fn signed(action: &str, ns: &str, rtype: &str, name: &str, ts: &str) -> Value {
    let sig = aegis_backend::routes::executor::pipe_signature(
        KEY.as_bytes(),
        [action, ns, rtype, name, ts],
    );
    json!({"actionType": action, "namespace": ns, "resourceType": rtype, "resourceName": name,
           "timestamp": ts, "signature": sig})
}

async fn action(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post("/api/v1/executor/action", body.clone()).await
}

async fn audit_status(db: &PgPool, id: &str) -> (String, String, Value) {
    sqlx::query_as(
        "SELECT status, requested_by, action_params FROM action_audit_logs WHERE id = $1::uuid",
    )
    .bind(id)
    .fetch_one(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn signed_actions_are_verified_and_forwarded_to_the_executor() {
    let ex = spawn_executor().await;
    let app = backend_for(&ex.url, &[]).await;

    let res = app.get("/api/v1/executor/health").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ok");

    let body = signed("restart_pod", "default", "pod", &ex.pod, &now_ms());
    let res = action(&app, &body).await;
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["status"], "completed", "{out}");
    let id = out["id"].as_str().unwrap();
    let (status, requested_by, params) = audit_status(&ex.db, id).await;
    assert_eq!(status, "completed");
    assert_eq!(requested_by, "aegis-backend");
    assert_eq!(params, json!({"namespace": "default", "podName": ex.pod}));
    assert!(
        ex.sim.get(Resource::Pod, "default", &ex.pod).is_none(),
        "the pod was really deleted"
    );

    let res = action(&app, &body).await;
    assert_error(res, 409, "Duplicate request").await;

    // A failed outcome (200 with success:false) is answered as `failed`, with its audit id.
    let res = action(
        &app,
        &signed("restart_pod", "default", "pod", "ghost", &now_ms()),
    )
    .await;
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["status"], "failed");
    let (status, ..) = audit_status(&ex.db, out["id"].as_str().unwrap()).await;
    assert_eq!(status, "failed");

    // Signed parameters only; matching duplicates are tolerated.
    let mut b = signed(
        "scale_deployment",
        "default",
        "deployment",
        "web",
        &now_ms(),
    );
    b["actionParams"] = json!({"replicas": 5});
    let res = action(&app, &b).await;
    assert_eq!(res.status(), 400);
    let b = signed("restart_pod", "default", "deployment", "web", &now_ms());
    assert_eq!(
        action(&app, &b).await.status(),
        400,
        "resource type mismatch"
    );
    let b = signed("reboot_node", "default", "pod", "x", &now_ms());
    assert_eq!(action(&app, &b).await.status(), 400, "unknown action");
    let mut b = signed("restart_pod", "default", "pod", "ghost2", &now_ms());
    b["actionParams"] = json!({"namespace": "default", "podName": "ghost2"});
    let res = action(&app, &b).await;
    assert_eq!(res.status(), 200);

    let mut b = signed("restart_pod", "default", "pod", "my-pod", &now_ms());
    b["signature"] = json!("invalid");
    assert_error(action(&app, &b).await, 401, "Invalid request signature").await;
    let mut b = signed("restart_pod", "default", "pod", "my-pod", &now_ms());
    b["namespace"] = json!("other");
    assert_error(action(&app, &b).await, 401, "Invalid request signature").await;
    let b = signed("restart_pod", "forbidden", "pod", "my-pod", &now_ms());
    assert_error(
        action(&app, &b).await,
        400,
        "Namespace 'forbidden' is not allowed",
    )
    .await;
    let old = (chrono::Utc::now().timestamp_millis() - 600_000).to_string();
    let b = signed("restart_pod", "default", "pod", "my-pod", &old);
    assert_error(action(&app, &b).await, 400, "Request timestamp expired").await;
    let b = signed("restart_pod", "default", "pod", "my-pod", "abc");
    assert_error(action(&app, &b).await, 400, "Request timestamp expired").await;
    let b = signed(
        "restart_pod",
        "default",
        "pod",
        "my-pod",
        "1700000000000abc",
    );
    assert_error(action(&app, &b).await, 400, "Request timestamp expired").await;
    let mut b = signed("restart_pod", "default", "pod", "my-pod", &now_ms());
    b.as_object_mut().unwrap().remove("signature");
    let res = action(&app, &b).await;
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(
        err["message"],
        json!(["Signature is required for action verification"])
    );
}

/// The documented flow between the services: a caller evaluates, then passes the backend's
/// answer to the executor as `policyDecision`, as it is (its `decisionId` and, with
/// `explain=true`, its `explanation` included); the audit row keeps the decision id.
#[tokio::test]
async fn the_evaluate_answer_passes_to_the_executor_as_it_is() {
    let ex = spawn_executor().await;
    let app = backend_for(&ex.url, &[("SERVICE_API_KEYS", "evaluate-key")]).await;
    let answer: Value = app
        .client
        .post(format!(
            "{}/api/v1/policy/evaluate?explain=true",
            app.address
        ))
        .header("X-API-Key", "evaluate-key")
        .json(
            &json!({"action": "delete", "resource": "/api/users/456", "type": "api_access",
                      "context": {"role": "admin"}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["allowed"], true, "{answer}");
    assert!(answer["explanation"].is_object(), "{answer}");
    let decision_id = answer["decisionId"].as_str().unwrap().to_owned();

    let mut params = serde_json::Map::new();
    params.insert("namespace".into(), json!("default"));
    params.insert("podName".into(), json!(ex.pod));
    let mut request = aegis_common::contracts::ExecuteRequest {
        action_type: aegis_common::contracts::ActionType::RestartPod,
        action_params: params,
        requested_by: Some("integration-example".into()),
        policy_decision: None,
        timestamp: None,
        nonce: None,
        signature: None,
    };
    request.sign_v2(KEY.as_bytes(), chrono::Utc::now().timestamp_millis());
    let mut body = serde_json::to_value(&request).unwrap();
    body["policyDecision"] = answer;
    let res = app
        .client
        .post(format!("{}/executor/execute", ex.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let out: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["success"], true, "{out}");
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT policy_decision->>'decisionId' FROM action_audit_logs WHERE status = 'completed'",
    )
    .fetch_one(&ex.db)
    .await
    .unwrap();
    assert_eq!(stored.as_deref(), Some(decision_id.as_str()));
}

/// A signed rollback of `default/web`, timestamped now.
fn signed_rollback() -> Value {
    signed(
        "rollback_deployment",
        "default",
        "deployment",
        "web",
        &now_ms(),
    )
}

#[tokio::test]
async fn a_replayed_action_is_refused_while_redis_is_down() {
    let ex = spawn_executor().await;
    let redis = FaultProxy::start("127.0.0.1:6379".parse().unwrap())
        .await
        .unwrap();
    let redis_url = format!("redis://{}", redis.addr());
    let app = backend_for(&ex.url, &[("REDIS_URL", &redis_url)]).await;
    redis.cut();
    let body = signed_rollback();
    let codes = [
        action(&app, &body).await.status().as_u16(),
        action(&app, &body).await.status().as_u16(),
        action(&app, &body).await.status().as_u16(),
    ];
    assert_eq!(codes, [200, 409, 409]);
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM action_audit_logs")
        .fetch_one(&ex.db)
        .await
        .unwrap();
    assert_eq!(runs, 1, "the executor ran the action once");
}

#[tokio::test]
async fn an_action_is_refused_while_its_replay_guard_cannot_be_checked() {
    let ex = spawn_executor().await;
    let db = fresh_database("backend").await;
    let pg = FaultProxy::start("127.0.0.1:5432".parse().unwrap())
        .await
        .unwrap();
    let url = db.url.replacen("127.0.0.1:5432", &pg.addr().to_string(), 1);
    assert_ne!(url, db.url, "the test database must be on 127.0.0.1:5432");
    let app = backend_for(&ex.url, &[("DATABASE_URL", &url)]).await;
    pg.cut();
    let body = signed_rollback();
    assert_error(
        action(&app, &body).await,
        503,
        "The replay guard is unavailable, please retry later",
    )
    .await;
    pg.restore();
    // A pooled connection that the outage broke can fail one more check; the client's retry
    // of a 503 is what the answer asks for.
    let mut status = 503;
    for _ in 0..20 {
        status = action(&app, &body).await.status().as_u16();
        if status != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "a refused action can be sent again");
}

#[tokio::test]
async fn an_unset_secret_refuses_every_action() {
    let ex = spawn_executor().await;
    let app = spawn_with_admin(&[("EXECUTOR_URL", ex.url.as_str())]).await;
    let body = signed("restart_pod", "default", "pod", &ex.pod, &now_ms());
    assert_error(action(&app, &body).await, 401, "Invalid request signature").await;
}

#[tokio::test]
async fn admins_and_auditors_read_the_executor_audit_trail() {
    let ex = spawn_executor().await;
    let app = backend_for(&ex.url, &[]).await;
    let res = action(
        &app,
        &signed("restart_pod", "default", "pod", &ex.pod, &now_ms()),
    )
    .await;
    assert_eq!(res.status(), 200);

    let admin = app.admin().await;
    let aud = auditor(&app, "aud@example.com").await;
    let user = app.signup("u1@example.com", "Password123!").await;
    for path in ["logs", "statistics", "verify"] {
        for token in [&admin.access, &aud.access] {
            let res = app
                .get_as(&format!("/api/v1/executor/audit/{path}"), token)
                .await;
            assert_eq!(res.status(), 200, "{path}");
            let body: Value = res.json().await.unwrap();
            assert!(body.is_object() || body.is_array(), "{path}: {body}");
        }
        let res = app
            .get_as(&format!("/api/v1/executor/audit/{path}"), &user.access)
            .await;
        assert_error(res, 403, "Insufficient permissions").await;
        let res = app.get(&format!("/api/v1/executor/audit/{path}")).await;
        assert_eq!(res.status(), 401);
    }
    let logs: Value = app
        .get_as("/api/v1/executor/audit/logs?limit=10", &aud.access)
        .await
        .json()
        .await
        .unwrap();
    assert!(logs.to_string().contains("restart_pod"), "{logs}");

    // A wrong audit token is the backend's misconfiguration: 502, not a 401 for the caller.
    let app2 = backend_for(&ex.url, &[("EXECUTOR_AUDIT_TOKEN", "wrong")]).await;
    let admin2 = app2.admin().await;
    let res = app2
        .get_as("/api/v1/executor/audit/logs", &admin2.access)
        .await;
    assert_eq!(res.status(), 502);
}

#[tokio::test]
async fn busy_answers_are_retried_with_a_fresh_nonce() {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = seen.clone();
    let stub = Router::new().route(
        "/executor/execute",
        post(move |axum::Json(body): axum::Json<Value>| {
            let log = log.clone();
            async move {
                let n = {
                    let mut l = log.lock().unwrap();
                    l.push(body);
                    l.len()
                };
                if n < 3 {
                    let status = if n == 1 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::TOO_MANY_REQUESTS
                    };
                    (status, [("retry-after", "0")], axum::Json(json!({}))).into_response()
                } else {
                    axum::Json(
                        json!({"success": true, "auditId": "a0f5e1c2-0000-4000-8000-000000000001",
                                      "result": {}}),
                    )
                    .into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, stub).await });
    let app = backend_for(&url, &[]).await;
    let res = action(
        &app,
        &signed("restart_pod", "default", "pod", "p", &now_ms()),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"id": "a0f5e1c2-0000-4000-8000-000000000001", "status": "completed"})
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_ne!(seen[0]["nonce"], seen[1]["nonce"]);
    assert_ne!(seen[1]["nonce"], seen[2]["nonce"]);
    assert_eq!(seen[0]["requestedBy"], "aegis-backend");
    assert!(seen[0]["signature"].as_str().unwrap().len() == 64);

    // An executor that is down → 502.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let app = backend_for(&closed, &[]).await;
    let res = action(
        &app,
        &signed("restart_pod", "default", "pod", "p", &now_ms()),
    )
    .await;
    assert_eq!(res.status(), 502);
}

#[tokio::test]
async fn the_client_reads_deployments_with_the_service_key() {
    let ex = spawn_executor().await;
    let client = aegis_backend::clients::executor::ExecutorClient::new(
        reqwest::Client::new(),
        &ex.url,
        Some(SERVICE_KEY.to_owned().into()),
        Some(KEY.to_owned().into()),
        None,
    );
    let trace = aegis_common::telemetry::TraceParent::new_root();
    let dep = client
        .deployment("default", "web", &trace)
        .await
        .unwrap()
        .expect("web exists");
    assert_eq!(dep.deployment_name, "web");
    assert_eq!(dep.replicas, 1);
    assert!(
        client
            .deployment("default", "nope", &trace)
            .await
            .unwrap()
            .is_none()
    );
}
