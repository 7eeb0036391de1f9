//! The decision path against a real executor
//! in front of kube-sim, in process: modes, policy denial, guardrails (cooldown, cap, blast
//! radius), approval, verification and escalation, analysis by the ai-engine or its absence,
//! the Alertmanager webhook and labels. The separate-process version of the main cases is
//! `crates/dev/tests/closed_loop.rs`.

use std::time::{Duration, Instant};

use aegis_common::config::Env;
use aegis_test_support::fresh_database;
use kube_sim::{KubeSim, RunningSim, Seed, SimConfig};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{
    ai_proxy::{ENGINE_KEY, spawn_engine},
    auth_support::{Tokens, assert_error, spawn_with_admin},
    helpers::TestApp,
};

const HMAC: &str = "loop-hmac-secret";
const EXECUTOR_KEY: &str = "loop-executor-key";
const SERVICE_KEY: &str = "loop-service-key";
const WEBHOOK_TOKEN: &str = "loop-webhook-token";

const SEED: &str = r"
namespaces:
  - name: shop
    deployments:
      - {name: web, replicas: 2, image: 'nginx:1.27'}
      - {name: api, replicas: 2, image: 'api:1'}
      - {name: worker, replicas: 1, image: 'worker:1'}
      - {name: cart, replicas: 2, image: 'cart:1'}
      - {name: search, replicas: 2, image: 'search:1'}
  - name: production
    deployments:
      - {name: pay, replicas: 2, image: 'pay:1'}
";

pub struct Loop {
    pub app: TestApp,
    pub admin: Tokens,
    pub sim: RunningSim,
    pub executor_db: PgPool,
    pub backend_db: PgPool,
    _kubeconfig: TempFile,
}

struct TempFile(std::path::PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// kube-sim seeded with `SEED`, a real executor, and a backend in `mode` with a 1 s
/// verification delay; `extra` overrides backend settings.
pub async fn start(mode: &str, extra: &[(&str, &str)]) -> Loop {
    let sim = KubeSim::start(SimConfig {
        seed: Some(Seed::from_yaml(SEED).unwrap()),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let executor_db = fresh_database("executor").await;
    let kubeconfig = std::env::temp_dir().join(format!(
        "aegis-loop-test-{}.kubeconfig",
        uuid::Uuid::new_v4().simple()
    ));
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let mut env = Env::from_pairs([
        ("APP_ENV", "test"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("ALLOWED_NAMESPACES", "shop,production"),
        ("EXECUTOR_HMAC_SECRET", HMAC),
        ("REQUIRE_ACTION_SIGNATURE", "true"),
        ("SERVICE_API_KEYS", EXECUTOR_KEY),
        ("AUDIT_API_TOKEN", "loop-audit-token"),
        ("K8S_REQUEST_TIMEOUT_MS", "2000"),
    ]);
    env.set("DATABASE_URL", executor_db.url.clone());
    env.set("KUBECONFIG_PATH", kubeconfig.display().to_string());
    let config = aegis_executor::config::Config::from_env(&env).expect("executor config");
    let executor = aegis_executor::startup::Application::build(config)
        .await
        .expect("executor builds");
    let executor_url = format!("http://127.0.0.1:{}", executor.port());
    tokio::spawn(executor.run_until(std::future::pending()));

    let mut vars = vec![
        ("EXECUTOR_URL", executor_url.as_str()),
        ("EXECUTOR_HMAC_SECRET", HMAC),
        ("EXECUTOR_API_KEY", EXECUTOR_KEY),
        ("SERVICE_API_KEYS", SERVICE_KEY),
        ("ALERTMANAGER_WEBHOOK_TOKEN", WEBHOOK_TOKEN),
        ("REMEDIATION_MODE", mode),
        ("REMEDIATION_VERIFY_DELAY_SECONDS", "1"),
        ("AI_ENGINE_RETRY_BACKOFF_MS", "10"),
        // The tests poll incidents; rate limits are not what they are about.
        ("RATE_LIMIT_DISABLED", "true"),
        // Nothing listens here unless a test points AI_ENGINE_URL at a real engine.
        ("AI_ENGINE_URL", "http://127.0.0.1:9"),
    ];
    vars.extend_from_slice(extra);
    let app = spawn_with_admin(&vars).await;
    let admin = app.admin().await;
    let backend_db = app.pool().await;
    Loop {
        app,
        admin,
        sim,
        executor_db: PgPool::connect(&executor_db.url).await.unwrap(),
        backend_db,
        _kubeconfig: TempFile(kubeconfig),
    }
}

impl Loop {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        self.app
            .send(method, path, Some(&self.admin.access), body)
            .await
    }

    /// Creates a self_healing policy through the API.
    pub async fn policy(&self, body: Value) {
        let res = self.call(Method::POST, "/api/v1/policy", Some(body)).await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }

    /// An allow policy for `action` on `service:<deployment>`, optionally with a mode.
    pub async fn allow(&self, name: &str, action: &str, deployment: &str, mode: Option<&str>) {
        let mut p = json!({
            "name": name, "type": "self_healing", "effect": "allow", "priority": 500,
            "conditions": {}, "actions": [action], "resources": [format!("service:{deployment}")],
            "isActive": true
        });
        if let Some(m) = mode {
            p["remediationMode"] = json!(m);
        }
        self.policy(p).await;
    }

    pub async fn signal(&self, body: &Value) -> Value {
        let res = self
            .app
            .client
            .post(format!("{}/api/v1/remediation/signals", self.app.address))
            .header("X-API-Key", SERVICE_KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        res.json().await.unwrap()
    }

    pub async fn incident(&self, id: &str) -> Value {
        let res = self
            .app
            .get_as(
                &format!("/api/v1/remediation/incidents/{id}"),
                &self.admin.access,
            )
            .await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Polls until the incident reaches one of `statuses` (10 s at most).
    pub async fn wait_for(&self, id: &str, statuses: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let incident = self.incident(id).await;
            let status = incident["status"].as_str().unwrap_or_default().to_owned();
            if statuses.contains(&status.as_str()) {
                return incident;
            }
            assert!(
                Instant::now() < deadline,
                "incident {id} stuck in {status}, wanted {statuses:?}: {incident:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/metrics` until it holds every line of `lines` (10 s at most): the loop counts an
    /// outcome just after committing it.
    pub async fn metrics_with(&self, lines: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = self.app.get("/metrics").await.text().await.unwrap();
            if lines.iter().all(|l| metrics.contains(l)) {
                return metrics;
            }
            assert!(
                Instant::now() < deadline,
                "/metrics never held {lines:?}: {metrics}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn replicas(&self, ns: &str, name: &str) -> i64 {
        self.sim
            .cluster()
            .get(kube_sim::Resource::Deployment, ns, name)
            .unwrap()["spec"]["replicas"]
            .as_i64()
            .unwrap()
    }

    pub fn pod_names(&self, ns: &str, deployment: &str) -> Vec<String> {
        self.sim
            .cluster()
            .pods_of_deployment(ns, deployment)
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The executor's audit rows for a correlation id: (action_type, status, params).
    pub async fn executor_rows(&self, correlation_id: &str) -> Vec<(String, String, Value)> {
        sqlx::query_as(
            "SELECT action_type, status, action_params FROM action_audit_logs \
             WHERE correlation_id = $1 ORDER BY created_at",
        )
        .bind(correlation_id)
        .fetch_all(&self.executor_db)
        .await
        .unwrap()
    }

    /// The policy audit rows for a correlation id (written in batches: polled).
    pub async fn policy_rows(&self, correlation_id: &str) -> Vec<(String, String, String)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT id::text, action, result FROM policy_audit_logs WHERE correlation_id = $1",
            )
            .bind(correlation_id)
            .fetch_all(&self.backend_db)
            .await
            .unwrap();
            if !rows.is_empty() || Instant::now() > deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn alerts_for(&self, incident_id: &str) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT title, coalesce(description, '') FROM alerts \
             WHERE metadata->>'incidentId' = $1 ORDER BY created_at",
        )
        .bind(incident_id)
        .fetch_all(&self.backend_db)
        .await
        .unwrap()
    }
}

pub fn steps(incident: &Value) -> Vec<String> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_owned())
        .collect()
}

pub fn step<'a>(incident: &'a Value, name: &str) -> &'a Value {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["step"] == name)
        .unwrap_or_else(|| panic!("no {name} step in {incident:#}"))
}

/// A CPU window: `minutes` of samples at `cpu`% for `deployment` (10 min → duration 600).
pub fn cpu_window(deployment: &str, cpu: f64, minutes: i64) -> Value {
    let end = chrono::Utc::now();
    let metrics: Vec<Value> = (0..=minutes)
        .map(|i| {
            json!({
                "metric_type": "cpu_usage", "value": cpu,
                "timestamp": (end - chrono::Duration::minutes(minutes - i)).to_rfc3339(),
                "labels": {"namespace": "shop", "deployment": deployment}
            })
        })
        .collect();
    json!({"metrics": metrics})
}

pub fn signal(ns: &str, deployment: &str, pod: Option<&str>, action: &str) -> Value {
    let mut target = json!({"namespace": ns, "deployment": deployment});
    if let Some(p) = pod {
        target["pod"] = json!(p);
    }
    json!({
        "source": "ai-engine",
        "kind": if action == "restart_pod" { "failure" } else { "anomaly" },
        "observedAt": chrono::Utc::now().to_rfc3339(),
        "target": target, "severity": "high", "score": 0.91, "confidence": 0.87,
        "recommendedAction": action,
        "window": cpu_window(deployment, 95.0, 10),
        "prediction": {"is_anomaly": true}
    })
}

#[tokio::test]
async fn loop_auto_scale_up_is_executed_verified_and_correlated() {
    let l = start("auto", &[]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let res = l
        .app
        .client
        .post(format!("{}/api/v1/remediation/signals", l.app.address))
        .header("X-API-Key", SERVICE_KEY)
        .header("traceparent", tp)
        .json(&signal("shop", "web", None, "scale_up"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    let cid = "0af7651916cd43dd8448eb211c80319c";
    assert_eq!(accepted["correlationId"], cid);
    let id = accepted["incidentId"].as_str().unwrap();

    let incident = l
        .wait_for(id, &["resolved", "escalated", "failed", "suppressed"])
        .await;
    assert_eq!(incident["status"], "resolved", "{incident:#}");
    // Scale up: 2 → max(3, ceil(2 × 1.5)) = 3.
    assert_eq!(l.replicas("shop", "web"), 3);
    assert_eq!(
        steps(&incident),
        ["signal", "policy", "execute", "outcome", "verify"]
    );
    assert_eq!(incident["correlationId"], cid);
    assert_eq!(incident["actionType"], "scale_deployment");
    assert_eq!(incident["actionParams"]["replicas"], 3);
    assert_eq!(incident["policyName"], "scale web");
    assert_eq!(incident["mode"], "auto");
    assert_eq!(step(&incident, "verify")["details"]["readyReplicas"], 3);
    // The policy context carried what the window showed.
    let ctx = &step(&incident, "policy")["details"]["context"];
    assert_eq!(ctx["cpuUsage"], 95.0);
    assert_eq!(ctx["duration"], 600);
    assert_eq!(ctx["severity"], "high");

    // One id in the incident, the executor's audit row and the policy audit row.
    let rows = l.executor_rows(cid).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "scale_deployment");
    assert_eq!(rows[0].1, "completed");
    assert_eq!(
        incident["executorAuditId"].as_str().unwrap().len(),
        36,
        "{incident:#}"
    );
    let policy = l.policy_rows(cid).await;
    assert_eq!(policy.len(), 1);
    assert_eq!(policy[0].0, incident["decisionId"].as_str().unwrap());
    assert_eq!(
        (policy[0].1.as_str(), policy[0].2.as_str()),
        ("scale_up", "allow")
    );

    // The cooldown: another incident on the same deployment within 300 s does nothing.
    l.allow("rollback web", "rollback", "web", None).await;
    let again = l.signal(&signal("shop", "web", None, "rollback")).await;
    let second = l
        .wait_for(
            again["incidentId"].as_str().unwrap(),
            &["suppressed", "awaiting_approval", "verifying", "resolved"],
        )
        .await;
    assert_eq!(second["status"], "suppressed", "{second:#}");
    assert!(
        step(&second, "guardrail")["details"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("cooldown"),
        "{second:#}"
    );
    assert_eq!(l.replicas("shop", "web"), 3);

    // The metrics say what happened.
    l.metrics_with(&[
        "remediation_actions_total{action=\"scale_deployment\",result=\"success\"} 1",
        "remediation_verifications_total{result=\"resolved\"} 1",
        "remediation_loop_duration_seconds_count{action=\"scale_deployment\"} 1",
    ])
    .await;
}

#[tokio::test]
async fn loop_restart_pod_replaces_the_pod_and_deny_suppresses_with_an_audited_denial() {
    let l = start("auto", &[]).await;
    l.allow("restart api", "restart", "api", None).await;
    let before = l.pod_names("shop", "api");
    let pod = before[0].clone();
    let accepted = l
        .signal(&signal("shop", "api", Some(&pod), "restart_pod"))
        .await;
    let incident = l
        .wait_for(
            accepted["incidentId"].as_str().unwrap(),
            &["resolved", "escalated", "failed"],
        )
        .await;
    assert_eq!(incident["status"], "resolved", "{incident:#}");
    let after = l.pod_names("shop", "api");
    assert!(!after.contains(&pod), "{pod} still there: {after:?}");
    assert_eq!(after.len(), 2, "a replacement pod appeared: {after:?}");

    // No allow policy for worker, and an explicit deny: nothing happens, the denial is audited.
    l.policy(json!({
        "name": "never touch worker", "type": "self_healing", "effect": "deny", "priority": 900,
        "conditions": {}, "actions": ["*"], "resources": ["service:worker"], "isActive": true
    }))
    .await;
    let accepted = l.signal(&signal("shop", "worker", None, "scale_up")).await;
    let cid = accepted["correlationId"].as_str().unwrap();
    let incident = l
        .wait_for(
            accepted["incidentId"].as_str().unwrap(),
            &["suppressed", "verifying", "resolved"],
        )
        .await;
    assert_eq!(incident["status"], "suppressed");
    let policy = step(&incident, "policy");
    assert_eq!(policy["details"]["allowed"], false);
    assert_eq!(policy["details"]["policy"], "never touch worker");
    assert_eq!(l.replicas("shop", "worker"), 1);
    assert!(l.executor_rows(cid).await.is_empty());
    let rows = l.policy_rows(cid).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2, "deny");
}

#[tokio::test]
async fn loop_dry_run_policy_records_what_would_happen_without_touching_the_cluster() {
    let l = start("auto", &[]).await;
    l.allow("dry web", "scale_up", "web", Some("dry_run")).await;
    let accepted = l.signal(&signal("shop", "web", None, "scale_up")).await;
    let cid = accepted["correlationId"].as_str().unwrap();
    let incident = l
        .wait_for(
            accepted["incidentId"].as_str().unwrap(),
            &["suppressed", "verifying", "resolved"],
        )
        .await;
    assert_eq!(incident["status"], "suppressed");
    assert_eq!(incident["mode"], "dry_run");
    let dry = step(&incident, "dry_run");
    assert_eq!(dry["details"]["actionParams"]["replicas"], 3);
    assert_eq!(dry["details"]["executor"]["success"], true);
    assert_eq!(l.replicas("shop", "web"), 2);
    // The executor validated it server-side (dryRun) and audited it under the same id.
    let rows = l.executor_rows(cid).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2["dryRun"], true);
}

#[tokio::test]
async fn loop_approval_waits_for_an_admin_and_reject_closes() {
    let l = start("approval", &[]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    l.allow("scale api", "scale_up", "api", None).await;
    let accepted = l.signal(&signal("shop", "web", None, "scale_up")).await;
    let id = accepted["incidentId"].as_str().unwrap().to_owned();
    let incident = l.wait_for(&id, &["awaiting_approval"]).await;
    assert_eq!(incident["actionParams"]["replicas"], 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        l.replicas("shop", "web"),
        2,
        "nothing happens before approval"
    );

    // Only admins approve; the auditor can read.
    let res = l
        .app
        .send(
            Method::POST,
            &format!("/api/v1/remediation/incidents/{id}/approve"),
            None,
            None,
        )
        .await;
    assert_eq!(res.status(), 401);
    let res = l
        .call(
            Method::POST,
            &format!("/api/v1/remediation/incidents/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "executing");
    assert_eq!(body["decidedBy"], "admin@aegis.local");
    let incident = l.wait_for(&id, &["resolved", "failed", "escalated"]).await;
    assert_eq!(incident["status"], "resolved", "{incident:#}");
    assert_eq!(l.replicas("shop", "web"), 3);
    // A second approval is a conflict.
    let res = l
        .call(
            Method::POST,
            &format!("/api/v1/remediation/incidents/{id}/approve"),
            None,
        )
        .await;
    assert_error(
        res,
        409,
        &format!("Incident {id} is not awaiting approval (status: resolved)"),
    )
    .await;

    // Reject: closes without acting.
    let accepted = l.signal(&signal("shop", "api", None, "scale_up")).await;
    let id = accepted["incidentId"].as_str().unwrap().to_owned();
    l.wait_for(&id, &["awaiting_approval"]).await;
    let res = l
        .call(
            Method::POST,
            &format!("/api/v1/remediation/incidents/{id}/reject"),
            Some(json!({"reason": "planned maintenance"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let incident = l.incident(&id).await;
    assert_eq!(incident["status"], "rejected");
    assert_eq!(
        step(&incident, "rejected")["details"]["reason"],
        "planned maintenance"
    );
    assert_eq!(l.replicas("shop", "api"), 2);
}

#[tokio::test]
async fn loop_blast_radius_cap_and_alert_only_actions() {
    let l = start(
        "auto",
        &[
            ("REMEDIATION_SCALE_FACTOR", "3"),
            ("REMEDIATION_COOLDOWN_SECONDS", "0"),
            ("REMEDIATION_MAX_ACTIONS_PER_NAMESPACE_PER_HOUR", "1"),
        ],
    )
    .await;
    for d in ["web", "cart", "search"] {
        l.allow(&format!("restart {d}"), "restart", d, None).await;
        l.allow(&format!("scale {d}"), "scale_up", d, None).await;
    }
    l.allow("rollback pay", "rollback", "pay", None).await;

    // 2 → 6 is more than twice the size: approval, even in auto mode.
    let accepted = l.signal(&signal("shop", "web", None, "scale_up")).await;
    let incident = l
        .wait_for(
            accepted["incidentId"].as_str().unwrap(),
            &["awaiting_approval", "verifying", "resolved"],
        )
        .await;
    assert_eq!(incident["status"], "awaiting_approval");
    assert!(
        step(&incident, "approval_required")["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("from 2 to 6"),
        "{incident:#}"
    );
    // Any rollback in a production namespace needs approval.
    let accepted = l
        .signal(&signal("production", "pay", None, "rollback"))
        .await;
    let incident = l
        .wait_for(
            accepted["incidentId"].as_str().unwrap(),
            &["awaiting_approval", "verifying", "resolved", "failed"],
        )
        .await;
    assert_eq!(incident["status"], "awaiting_approval", "{incident:#}");

    // The cap: one action per namespace per hour.
    let pod = l.pod_names("shop", "cart")[0].clone();
    let first = l
        .signal(&signal("shop", "cart", Some(&pod), "restart_pod"))
        .await;
    l.wait_for(first["incidentId"].as_str().unwrap(), &["resolved"])
        .await;
    let pod = l.pod_names("shop", "search")[0].clone();
    let second = l
        .signal(&signal("shop", "search", Some(&pod), "restart_pod"))
        .await;
    let incident = l
        .wait_for(
            second["incidentId"].as_str().unwrap(),
            &["suppressed", "resolved"],
        )
        .await;
    assert_eq!(incident["status"], "suppressed");
    assert!(
        step(&incident, "guardrail")["details"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("cap: 1 actions in namespace shop"),
        "{incident:#}"
    );
    assert!(l.pod_names("shop", "search").contains(&pod));

    // restart_pod without a pod, and throttle_api: an alert, no executor call.
    for (action, needle) in [
        ("restart_pod", "needs a pod"),
        ("throttle_api", "not automated"),
    ] {
        let accepted = l.signal(&signal("shop", "web", None, action)).await;
        let id = accepted["incidentId"].as_str().unwrap();
        let incident = l.wait_for(id, &["escalated"]).await;
        let alerts = l.alerts_for(id).await;
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert!(alerts[0].1.contains(needle), "{alerts:?}");
        assert!(step(&incident, "decision")["details"]["alertId"].is_string());
    }
}

#[tokio::test]
async fn loop_escalates_when_a_signal_repeats_during_verification() {
    let l = start("auto", &[("REMEDIATION_VERIFY_DELAY_SECONDS", "2")]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    let body = signal("shop", "web", None, "scale_up");
    let accepted = l.signal(&body).await;
    let id = accepted["incidentId"].as_str().unwrap().to_owned();
    l.wait_for(&id, &["verifying"]).await;
    // The problem is still there: the same fingerprint arrives again and joins the incident.
    let again = l.signal(&body).await;
    assert_eq!(again["incidentId"], id.as_str());
    assert_eq!(again["deduplicated"], true);
    let incident = l.wait_for(&id, &["escalated", "resolved"]).await;
    assert_eq!(incident["status"], "escalated", "{incident:#}");
    assert_eq!(step(&incident, "verify")["details"]["repeatSignals"], 1);
    assert_eq!(l.alerts_for(&id).await.len(), 1);
    // No second action.
    assert_eq!(l.replicas("shop", "web"), 3);
    let cid = incident["correlationId"].as_str().unwrap();
    assert_eq!(l.executor_rows(cid).await.len(), 1);
}

#[tokio::test]
async fn loop_analysis_unavailable_takes_no_action_and_a_live_engine_is_asked() {
    let l = start("auto", &[]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    // An admin's incident without an action: the ai-engine is asked, and it is down.
    let res = l
        .call(
            Method::POST,
            "/api/v1/remediation/incidents",
            Some(json!({"target": {"namespace": "shop", "deployment": "web"},
                        "reason": "checkout is slow", "window": cpu_window("web", 97.0, 10)})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let id = body["incidentId"].as_str().unwrap();
    let incident = l
        .wait_for(id, &["escalated", "resolved", "suppressed"])
        .await;
    assert_eq!(incident["status"], "escalated");
    let analysis = step(&incident, "analysis");
    assert!(
        analysis["details"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("analysis unavailable"),
        "{incident:#}"
    );
    assert_eq!(incident["source"], "admin:admin@aegis.local");
    assert_eq!(l.replicas("shop", "web"), 2);
    l.metrics_with(&["remediation_decisions_total{outcome=\"analysis_unavailable\"} 1"])
        .await;

    // Validation and access.
    let res = l
        .call(
            Method::POST,
            "/api/v1/remediation/incidents",
            Some(json!({"target": {"namespace": "Shop!", "deployment": "web"}})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["message"],
        json!(["target.namespace must be a valid DNS-1123 label"])
    );

    // With a live engine: the analysis step records the engine's answer.
    let engine = spawn_engine().await;
    let l = start(
        "auto",
        &[
            ("AI_ENGINE_URL", engine.as_str()),
            ("AI_ENGINE_API_KEY", ENGINE_KEY),
        ],
    )
    .await;
    let res = l
        .call(
            Method::POST,
            "/api/v1/remediation/incidents",
            Some(json!({"target": {"namespace": "shop", "deployment": "web"},
                        "window": cpu_window("web", 97.0, 10)})),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    let id = body["incidentId"].as_str().unwrap();
    let incident = l
        .wait_for(id, &["escalated", "resolved", "suppressed", "failed"])
        .await;
    let analysis = step(&incident, "analysis");
    assert!(analysis["details"]["method"].is_string(), "{incident:#}");
    assert_eq!(
        incident["recommendedAction"], analysis["details"]["recommendedAction"],
        "{incident:#}"
    );
}

#[tokio::test]
async fn loop_alertmanager_webhook_and_labels() {
    let engine = spawn_engine().await;
    let l = start(
        "auto",
        &[
            ("AI_ENGINE_URL", engine.as_str()),
            ("AI_ENGINE_API_KEY", ENGINE_KEY),
        ],
    )
    .await;
    l.allow("scale cart", "scale_up", "cart", None).await;
    let hook = |status: &str| {
        json!({
            "version": "4", "groupKey": "{}:{alertname=\"HighCPU\"}", "status": status,
            "receiver": "aegis", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": [{
                "status": status,
                "labels": {"alertname": "HighCPU", "namespace": "shop", "deployment": "cart", "severity": "critical"},
                "annotations": {"aegis_action": "scale_up", "summary": "CPU above 90%"},
                "startsAt": "2026-11-25T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "5f1c0a0b3e2d4c6a"
            }]
        })
    };
    let url = format!("{}/api/v1/alerts/webhook/alertmanager", l.app.address);
    // No token, a wrong token: 401.
    let res = l
        .app
        .client
        .post(&url)
        .json(&hook("firing"))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "Invalid webhook token").await;
    let res = l
        .app
        .client
        .post(&url)
        .bearer_auth("nope")
        .json(&hook("firing"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Not a webhook body: 400.
    let res = l
        .app
        .client
        .post(&url)
        .bearer_auth(WEBHOOK_TOKEN)
        .json(&json!({"status": "firing"}))
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        400,
        "not an Alertmanager webhook body: missing field `alerts`",
    )
    .await;

    let res = l
        .app
        .client
        .post(&url)
        .bearer_auth(WEBHOOK_TOKEN)
        .json(&hook("firing"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["received"], 1);
    let id = body["alerts"][0]["incidentId"].as_str().unwrap().to_owned();
    let incident = l
        .wait_for(&id, &["verifying", "resolved", "escalated"])
        .await;
    assert_eq!(incident["fingerprint"], "5f1c0a0b3e2d4c6a");
    assert_eq!(incident["source"], "alertmanager");
    assert_eq!(incident["severity"], "critical");
    assert_eq!(incident["actionType"], "scale_deployment", "{incident:#}");
    assert_eq!(l.replicas("shop", "cart"), 3);

    // A label trains on the signal's window; an alert has none.
    let res = l
        .call(
            Method::POST,
            &format!("/api/v1/remediation/incidents/{id}/label"),
            Some(json!({"failureType": "none"})),
        )
        .await;
    assert_error(
        res,
        400,
        &format!(
            "Incident {id} has no metric window: a label trains the model on the signal's data"
        ),
    )
    .await;

    // A label is forwarded to the ai-engine as training data.
    // (The seed policy "Scale Up on High Load" allows this one: 95% CPU for 600 s on api.)
    let accepted = l.signal(&signal("shop", "api", None, "scale_up")).await;
    let id = accepted["incidentId"].as_str().unwrap().to_owned();
    let incident = l
        .wait_for(&id, &["resolved", "suppressed", "escalated"])
        .await;
    assert_eq!(
        incident["policyName"], "Scale Up on High Load",
        "{incident:#}"
    );
    let res = l
        .call(
            Method::POST,
            &format!("/api/v1/remediation/incidents/{id}/label"),
            Some(json!({"failureType": "none"})),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["label"], 0);
    let incident = l.incident(&id).await;
    assert_eq!(step(&incident, "label")["details"]["failureType"], "none");
    assert!(created["id"].is_string(), "{created}");
    // An unknown failure type is the engine's 400, passed on as a 400.
    let res = l
        .call(
            Method::POST,
            &format!("/api/v1/remediation/incidents/{id}/label"),
            Some(json!({"failureType": "gremlins"})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let res = l
        .call(
            Method::POST,
            &format!("/api/v1/remediation/incidents/{id}/label"),
            Some(json!({})),
        )
        .await;
    assert_eq!(res.status(), 400);
}

/// A signal with the watcher's evidence of a failure after the rollout of revision 2.
fn after_rollout(source: &str, deployment: &str) -> Value {
    let mut body = signal("shop", deployment, None, "rollback");
    body["source"] = json!(source);
    body["kind"] = json!("failure");
    body["window"] = json!({"metrics": []});
    body["evidence"] = json!({
        "failure": "crash_loop", "reason": "CrashLoopBackOff", "pod": format!("{deployment}-x"),
        "container": "app", "exitCode": 1, "restartCount": 4, "affectedPods": 2,
        "firstSeen": chrono::Utc::now().to_rfc3339(),
        "logTail": ["FATAL exiting with status 1"], "logFromPreviousInstance": true,
        "events": [{"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
                    "object": format!("pod/{deployment}-x"), "count": 4}],
        "rollout": {"revision": 2, "previousRevision": 1, "healthyRevision": 1,
                    "startedAt": chrono::Utc::now().to_rfc3339(),
                    "images": [{"container": "app", "from": "api:1", "to": "api:crash"}]},
        "explanation": "the failure began after the rollout of revision 2; roll back to revision 1"
    });
    body
}

/// The watcher's evidence decides the policy request and the rollback's target revision, and
/// is on the timeline; the same evidence from any other source decides nothing.
#[tokio::test]
async fn loop_trusts_kubernetes_evidence_only_from_the_watcher() {
    let l = start("auto", &[("REMEDIATION_COOLDOWN_SECONDS", "0")]).await;
    // The seed "Roll Back a Deploy That Broke" allows it for the watcher's evidence only.
    let accepted = l.signal(&after_rollout("kubernetes", "api")).await;
    let incident = l
        .wait_for(
            accepted["incidentId"].as_str().unwrap(),
            &["verifying", "resolved", "failed", "escalated", "suppressed"],
        )
        .await;
    assert_eq!(
        incident["policyName"], "Roll Back a Deploy That Broke",
        "{incident:#}"
    );
    assert_eq!(incident["actionParams"]["revision"], 1, "{incident:#}");
    let evidence = &step(&incident, "signal")["details"]["evidence"];
    assert_eq!(evidence["rollout"]["images"][0]["to"], "api:crash");

    let forged = l.signal(&after_rollout("ai-engine", "cart")).await;
    let incident = l
        .wait_for(
            forged["incidentId"].as_str().unwrap(),
            &["verifying", "resolved", "failed", "escalated", "suppressed"],
        )
        .await;
    // Nothing allows it: the rollback seed needs the watcher's evidence.
    assert_eq!(incident["status"], "suppressed", "{incident:#}");
    assert_eq!(
        step(&incident, "policy")["details"]["reason"],
        "No matching policy found",
        "{incident:#}"
    );
}
