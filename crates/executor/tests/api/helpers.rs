//! `TestApp`: an executor on port 0 with its own database, in front of a seeded kube-sim.
//!
//! The cluster follows the common setup: pod `default/test-pod` controlled
//! by a ReplicaSet, bare pod `default/lonely`, deployment `production/api-deployment`
//! (selector `app=api`, 3 replicas) at revision 3 with ReplicaSets for revisions 1, 2 and 3.

use aegis_common::{
    config::Env,
    signing::{RequestedBy, SignedFields, V2Fields, new_nonce, sign_v1, sign_v2},
};
use aegis_executor::{config::Config, startup::Application};
use aegis_test_support::fresh_database;
use kube_sim::{KubeSim, Resource, RunningSim, SimConfig, patch::PatchType};
use serde_json::{Map, Value, json};
use sqlx::PgPool;

pub const KEY: &str = "test-secret";
pub const AUDIT_TOKEN: &str = "audit-token-for-tests";
pub const SERVICE_KEY: &str = "service-key-for-tests";
pub const SIG_A: &str = "11d9e44af86e5f3c3946dfb4704b0d8f24ec4ffd11b6066de890f8eb255385b6";
pub const SIG_B: &str = "441ccc0875089db98c4e2788eb4bf07d65717b99596fc6f934500085000b056d";
pub const SIG_C: &str = "9c56dcec6267893a72c3159b063ada89470babcbd68e2ac927bbf83f8ec84cdd";
pub const SIG_E: &str = "8cdab8769da23aafe017a3f28013a3fc2a6574391d0cad0250e5f062d5760410";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database_url: String,
    pub db: PgPool,
    pub sim: RunningSim,
    pub kubeconfig_file: TempFile,
    pub state: aegis_executor::state::AppState,
}

/// Removes the kubeconfig when the test ends.
pub struct TempFile(pub std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The cluster.
pub async fn start_sim() -> RunningSim {
    let sim = KubeSim::start(SimConfig::default()).await.unwrap();
    let c = sim.cluster();
    c.create(
        Resource::Namespace,
        None,
        json!({"metadata": {"name": "production"}}),
    )
    .unwrap();
    // A controller-owned pod named test-pod: take over the pod of a one-replica deployment,
    // renamed and dated first so that its ReplicaSet keeps it.
    c.create(
        Resource::Deployment,
        Some("default"),
        deployment("web", "default", 1, "nginx:1.27"),
    )
    .unwrap();
    let pod = c.pods_of_deployment("default", "web").remove(0);
    c.with_store(|s| {
        let name = pod["metadata"]["name"].as_str().unwrap().to_owned();
        s.remove(Resource::Pod, "default", &name);
        let mut renamed = pod.clone();
        renamed["metadata"]["name"] = json!("test-pod");
        renamed["metadata"]["creationTimestamp"] = json!("2020-01-01T00:00:00Z");
        s.put(Resource::Pod, renamed);
    });
    c.create(
        Resource::Pod,
        Some("default"),
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "lonely", "namespace": "default"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .unwrap();
    for i in 0..5 {
        c.create(
            Resource::Pod,
            Some("default"),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": format!("bare-{i}"), "namespace": "default"},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .unwrap();
    }
    c.create(
        Resource::Deployment,
        Some("production"),
        deployment("api-deployment", "production", 3, "api:1"),
    )
    .unwrap();
    for image in ["api:2", "api:3"] {
        c.with_store(|s| {
            kube_sim::ops::patch(
                s,
                Resource::Deployment,
                "production",
                "api-deployment",
                &json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": image}]}}}}),
                PatchType::Merge,
                false,
            )
        })
        .unwrap();
    }
    assert!(sim.get(Resource::Pod, "default", "test-pod").is_some());
    assert_eq!(
        sim.cluster()
            .replicasets_of_deployment("production", "api-deployment")
            .len(),
        3
    );
    sim.cluster().clear_requests();
    sim
}

fn deployment(name: &str, namespace: &str, replicas: i64, image: &str) -> Value {
    let app = if name == "api-deployment" {
        "api"
    } else {
        name
    };
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": if name == "api-deployment" { "api" } else { name }, "image": image}]}
            }
        }
    })
}

/// Settings every test starts from; `overrides` win.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let sim = start_sim().await;
    spawn_app_on(sim, overrides).await
}

fn test_env(database_url: &str, kubeconfig: &std::path::Path, overrides: &[(&str, &str)]) -> Env {
    let mut env = Env::from_pairs([
        ("APP_ENV", "test"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("ALLOWED_NAMESPACES", "default,production"),
        ("EXECUTOR_HMAC_SECRET", KEY),
        ("REQUIRE_ACTION_SIGNATURE", "true"),
        ("REQUIRE_SIGNATURE_TIMESTAMP", "false"),
        ("AUDIT_API_TOKEN", AUDIT_TOKEN),
        ("SERVICE_API_KEYS", SERVICE_KEY),
        ("K8S_REQUEST_TIMEOUT_MS", "2000"),
        ("LOKI_RETRY_MAX_BACKOFF_MS", "300"),
        ("LOKI_POLL_INTERVAL_MS", "100"),
    ]);
    env.set("DATABASE_URL", database_url);
    env.set("KUBECONFIG_PATH", kubeconfig.display().to_string());
    for (k, v) in overrides {
        env.set(*k, *v);
    }
    env
}

/// A second executor on the same database and cluster; returns its base URL.
pub async fn spawn_replica(app: &TestApp, overrides: &[(&str, &str)]) -> String {
    let env = test_env(&app.database_url, &app.kubeconfig_file.0, overrides);
    let config = Config::from_env(&env).expect("test configuration is valid");
    let replica = Application::build(config).await.expect("executor builds");
    let address = format!("http://127.0.0.1:{}", replica.port());
    tokio::spawn(replica.run_until(std::future::pending()));
    address
}

pub async fn spawn_app_on(sim: RunningSim, overrides: &[(&str, &str)]) -> TestApp {
    let db = fresh_database("executor").await;
    let kubeconfig = std::env::temp_dir().join(format!(
        "aegis-executor-test-{}.kubeconfig",
        uuid::Uuid::new_v4().simple()
    ));
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let env = test_env(&db.url, &kubeconfig, overrides);
    let config = Config::from_env(&env).expect("test configuration is valid");
    let app = Application::build(config).await.expect("executor builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    let pool = PgPool::connect(&db.url).await.unwrap();
    TestApp {
        address,
        client: reqwest::Client::new(),
        database_url: db.url,
        db: pool,
        sim,
        kubeconfig_file: TempFile(kubeconfig),
        state,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A body with keys in the order `actionType, actionParams, requestedBy`.
pub fn body(action_type: &str, params: Value, requested_by: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("actionType".into(), json!(action_type));
    m.insert("actionParams".into(), params);
    if let Some(r) = requested_by {
        m.insert("requestedBy".into(), json!(r));
    }
    Value::Object(m)
}

fn fields(body: &Value) -> (String, Map<String, Value>, Option<Value>) {
    (
        body["actionType"].as_str().unwrap().to_owned(),
        body["actionParams"].as_object().unwrap().clone(),
        body.get("requestedBy").cloned(),
    )
}

/// Adds a v1 signature.
pub fn sign(mut body: Value) -> Value {
    let (t, p, r) = fields(&body);
    let f = SignedFields {
        action_type: &t,
        action_params: &p,
        requested_by: RequestedBy::from_json(r.as_ref()).unwrap(),
    };
    body["signature"] = json!(sign_v1(KEY.as_bytes(), &f));
    body
}

/// Adds a v2 timestamp, nonce and signature.
pub fn sign2_at(mut body: Value, timestamp_ms: i64, nonce: &str) -> Value {
    let (t, p, r) = fields(&body);
    let f = SignedFields {
        action_type: &t,
        action_params: &p,
        requested_by: RequestedBy::from_json(r.as_ref()).unwrap(),
    };
    let ts = timestamp_ms.to_string();
    body["timestamp"] = json!(ts);
    body["nonce"] = json!(nonce);
    body["signature"] = json!(sign_v2(
        KEY.as_bytes(),
        &f,
        &V2Fields {
            timestamp: &ts,
            nonce
        }
    ));
    body
}

pub fn sign2(body: Value) -> Value {
    sign2_at(body, now_ms(), &new_nonce())
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Vector A.
pub fn body_a() -> Value {
    body(
        "restart_pod",
        json!({"namespace": "default", "podName": "test-pod"}),
        Some("admin"),
    )
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn audit_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .bearer_auth(AUDIT_TOKEN)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_raw(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{}", self.address, path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POST /executor/execute: status and JSON body.
    pub async fn execute(&self, body: &Value) -> (u16, Value) {
        let res = self.post_raw("/executor/execute", body).await;
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.unwrap()
    }

    /// Rows as (status, resource_type, error_message), newest first.
    pub async fn rows(&self) -> Vec<(String, String, Option<String>)> {
        sqlx::query_as(
            "SELECT status, resource_type, error_message FROM action_audit_logs ORDER BY created_at DESC, id DESC",
        )
        .fetch_all(&self.db)
        .await
        .unwrap()
    }

    /// Kubernetes requests as "METHOD path".
    pub fn k8s_calls(&self) -> Vec<String> {
        self.sim
            .cluster()
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/api/") || r.path.starts_with("/apis/"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

/// The value of a sample line in `/metrics` text (0 when absent).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}
