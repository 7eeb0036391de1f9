//! The closed loop end to end (issue 9): kube-sim, the executor, the ai-engine and the backend
//! run as separate processes (the real binaries, started by [`aegis_dev::Stack`]) and six
//! cases are driven through the public APIs only:
//! 1. a CPU anomaly leads to a scale-up in kube-sim;
//! 2. a failure pattern (a crash-looping pod) leads to a pod restart, with the replacement pod
//!    appearing;
//! 3. a deny policy leads to no action, with the denial audited;
//! 4. `dry_run` mode leaves kube-sim unchanged but records what would have happened;
//! 5. `approval` mode waits for an admin and then executes;
//! 6. a second signal inside the cooldown does nothing.
//!
//! A real Prometheus scrapes them all, and sees the backend's remediation counters move.
//! A second test lets the ai-engine's own feed catch a CPU burst that Prometheus scraped from
//! kube-sim, as the demo does, and checks that the healed spike is not reported again.
//! Each case asserts the correlation id in the backend incident, the executor's audit row and
//! the policy audit row. The binaries must be built (`cargo build` of the workspace); the test
//! fails, never skips, when one is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use aegis_dev::client::{Client, allow_policy, cpu_signal, crashloop_signal, prometheus_range};
use serde_json::{Value, json};

mod support;

const SEED: &str = "
namespaces:
  - name: production
    deployments:
      - {name: api, replicas: 2, image: 'ghcr.io/aegis-demo/api:1.4.2', labels: {app: api}}
      - {name: worker, replicas: 2, image: 'ghcr.io/aegis-demo/worker:1.4.2', labels: {app: worker}}
      - {name: billing, replicas: 2, image: 'ghcr.io/aegis-demo/billing:2.0.0', labels: {app: billing}}
      - {name: search, replicas: 2, image: 'ghcr.io/aegis-demo/search:3.1.0', labels: {app: search}}
      - {name: cart, replicas: 2, image: 'ghcr.io/aegis-demo/cart:1.0.0', labels: {app: cart}}
";

const WAIT: Duration = Duration::from_secs(20);
const FINAL: &[&str] = &["resolved", "suppressed", "escalated", "failed", "rejected"];

async fn replicas(c: &Client, name: &str) -> (i64, i64) {
    let d = c.deployment("production", name).await.unwrap();
    (
        d["spec"]["replicas"].as_i64().unwrap(),
        d["status"]["readyReplicas"].as_i64().unwrap_or(0),
    )
}

fn steps(incident: &Value) -> Vec<&str> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect()
}

/// The correlation id of `incident` is in the policy audit (one decision, matching the
/// incident's decision id, with `result`) and in `executor_rows` executor audit rows.
async fn assert_correlated(c: &Client, incident: &Value, result: &str, executor_rows: usize) {
    let cid = incident["correlationId"].as_str().unwrap();
    assert_eq!(cid.len(), 32, "{incident:#}");
    let policy = c.policy_audit(cid).await.unwrap();
    assert_eq!(policy.len(), 1, "{policy:#?}");
    assert_eq!(policy[0]["result"], result);
    assert_eq!(policy[0]["id"], incident["decisionId"]);
    assert_eq!(policy[0]["correlationId"], cid);
    let rows = c.executor_audit(cid).await.unwrap();
    assert_eq!(rows.len(), executor_rows, "{rows:#?}");
    for row in &rows {
        assert_eq!(row["correlationId"], cid);
        assert_eq!(row["requestedBy"], "aegis-backend");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_closed_loop_heals_kube_sim_through_the_real_binaries() {
    let seed = std::env::temp_dir().join(format!("{}.yaml", support::unique("closed-loop-seed")));
    std::fs::write(&seed, SEED).unwrap();
    let stack = support::start_stack_with_seed(
        "loop",
        &seed,
        &[
            ("REMEDIATION_MODE", "auto"),
            ("REMEDIATION_VERIFY_DELAY_SECONDS", "1"),
            ("REMEDIATION_COOLDOWN_SECONDS", "300"),
            // The test follows every incident by polling (spec: raise limits in e2e tests).
            ("RATE_LIMIT_MAX", "100000"),
        ],
    )
    .await;
    let mut stack = stack;
    // A real Prometheus scrapes the services and kube-sim (it is installed by
    // scripts/prepare-test-env.sh; the test fails, never skips, without it).
    let prometheus = stack
        .start_prometheus()
        .await
        .unwrap()
        .expect("prometheus is installed (apt-get install prometheus, or set PROMETHEUS_BIN)");
    let c = Client::login(&stack).await.unwrap();
    for p in [
        allow_policy("scale api", "scale_up", "api", None),
        allow_policy("restart worker", "restart", "worker", None),
        allow_policy("dry-run search", "scale_up", "search", Some("dry_run")),
        allow_policy("approve cart", "scale_up", "cart", Some("approval")),
        json!({"name": "hands off billing", "type": "self_healing", "effect": "deny",
               "priority": 900, "conditions": {}, "actions": ["*"],
               "resources": ["service:billing"], "isActive": true}),
    ] {
        c.ensure_policy(&p).await.unwrap();
    }

    // 1. A CPU anomaly: scale-up from 2 to 3, verified.
    c.set_cpu("production", "api", 96.0).await.unwrap();
    let accepted = c
        .signal(&cpu_signal("production", "api", 96.0, 10))
        .await
        .unwrap();
    let id = accepted["incidentId"].as_str().unwrap();
    let incident = c.wait_for(id, FINAL, WAIT).await.unwrap();
    assert_eq!(incident["status"], "resolved", "{incident:#}");
    assert_eq!(
        steps(&incident),
        ["signal", "policy", "execute", "outcome", "verify"]
    );
    assert_eq!(incident["correlationId"], accepted["correlationId"]);
    assert_eq!(replicas(&c, "api").await, (3, 3));
    assert_correlated(&c, &incident, "allow", 1).await;

    // 2. A crash-looping pod: restarted, and a Ready replacement appears.
    let pods = c.pods("production", "worker").await.unwrap();
    let victim = pods[0].0.clone();
    c.crash_pod("production", &victim).await.unwrap();
    assert_eq!(replicas(&c, "worker").await, (2, 1));
    let accepted = c
        .signal(&crashloop_signal("production", "worker", &victim))
        .await
        .unwrap();
    let incident = c
        .wait_for(accepted["incidentId"].as_str().unwrap(), FINAL, WAIT)
        .await
        .unwrap();
    assert_eq!(incident["status"], "resolved", "{incident:#}");
    assert_eq!(incident["actionType"], "restart_pod");
    let after = c.pods("production", "worker").await.unwrap();
    assert!(after.iter().all(|(name, _)| *name != victim), "{after:?}");
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|(_, ready)| *ready), "{after:?}");
    assert_correlated(&c, &incident, "allow", 1).await;

    // 3. A deny policy: no action, the denial audited.
    let accepted = c
        .signal(&cpu_signal("production", "billing", 97.0, 10))
        .await
        .unwrap();
    let incident = c
        .wait_for(accepted["incidentId"].as_str().unwrap(), FINAL, WAIT)
        .await
        .unwrap();
    assert_eq!(incident["status"], "suppressed", "{incident:#}");
    assert_eq!(incident["policyName"], "hands off billing");
    assert_eq!(replicas(&c, "billing").await, (2, 2));
    assert_correlated(&c, &incident, "deny", 0).await;

    // 4. dry_run (the policy's mode): kube-sim unchanged, what would have happened recorded,
    //    and validated by the executor as a server-side dry run.
    let accepted = c
        .signal(&cpu_signal("production", "search", 97.0, 10))
        .await
        .unwrap();
    let incident = c
        .wait_for(accepted["incidentId"].as_str().unwrap(), FINAL, WAIT)
        .await
        .unwrap();
    assert_eq!(incident["status"], "suppressed", "{incident:#}");
    assert_eq!(incident["mode"], "dry_run");
    let dry = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["step"] == "dry_run")
        .unwrap();
    assert_eq!(dry["details"]["actionParams"]["replicas"], 3);
    assert_eq!(replicas(&c, "search").await, (2, 2));
    assert_correlated(&c, &incident, "allow", 1).await;

    // 5. approval: waits for an admin, then executes.
    let accepted = c
        .signal(&cpu_signal("production", "cart", 97.0, 10))
        .await
        .unwrap();
    let id = accepted["incidentId"].as_str().unwrap();
    c.wait_for(id, &["awaiting_approval"], WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(replicas(&c, "cart").await, (2, 2));
    let approved = c.decide(id, "approve").await.unwrap();
    assert_eq!(approved["decidedBy"], "admin@aegis.local");
    let incident = c.wait_for(id, FINAL, WAIT).await.unwrap();
    assert_eq!(incident["status"], "resolved", "{incident:#}");
    assert_eq!(replicas(&c, "cart").await, (3, 3));
    assert_correlated(&c, &incident, "allow", 1).await;

    // 6. A second signal for api inside the 300 s cooldown: nothing happens.
    let accepted = c
        .signal(&cpu_signal("production", "api", 99.0, 10))
        .await
        .unwrap();
    assert_eq!(accepted["deduplicated"], false);
    let incident = c
        .wait_for(accepted["incidentId"].as_str().unwrap(), FINAL, WAIT)
        .await
        .unwrap();
    assert_eq!(incident["status"], "suppressed", "{incident:#}");
    assert_eq!(steps(&incident), ["signal", "policy", "guardrail"]);
    assert_eq!(replicas(&c, "api").await, (3, 3));
    assert_correlated(&c, &incident, "allow", 0).await;

    // Prometheus saw the loop act: the backend's own counter, scraped.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let points = prometheus_range(
            &prometheus,
            r#"sum(remediation_actions_total{action="scale_deployment",result="success"})"#,
            30,
        )
        .await
        .unwrap();
        if points.last().is_some_and(|(_, v)| *v >= 2.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Prometheus never scraped two successful scale actions: {points:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    stack.stop().await;
    let _ = std::fs::remove_file(seed);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feed_catches_a_scraped_cpu_burst_and_the_scale_up_is_verified_without_a_repeat() {
    let mut stack = support::start_stack_with_feed(
        "feed",
        &[
            ("REMEDIATION_MODE", "auto"),
            ("REMEDIATION_VERIFY_DELAY_SECONDS", "5"),
            // The test polls the incidents while the feed learns and catches the burst.
            ("RATE_LIMIT_MAX", "100000"),
        ],
        aegis_dev::demo::AI_ENGINE_ENV,
        aegis_dev::demo::feed(),
    )
    .await;
    let c = Client::login(&stack).await.unwrap();
    aegis_dev::demo::normal_load(&c).await.unwrap();
    stack
        .start_prometheus()
        .await
        .unwrap()
        .expect("prometheus is installed (apt-get install prometheus, or set PROMETHEUS_BIN)");
    c.ensure_policy(&allow_policy("scale api", "scale_up", "api", None))
        .await
        .unwrap();
    let windows = aegis_dev::demo::wait_for_forest(&c).await.unwrap();
    assert!(windows >= 10, "{windows}");

    c.set_cpu_load(
        "production",
        "api",
        aegis_dev::demo::BURST_LOAD,
        aegis_dev::demo::BURST_JITTER,
    )
    .await
    .unwrap();
    let found = c
        .wait_for_incident(
            "namespace=production&limit=100",
            |i| i["source"] == "ai-engine" && i["recommendedAction"] == "scale_up",
            Duration::from_secs(40),
        )
        .await
        .unwrap();
    let window: Vec<f64> = found["signal"]["window"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_f64().unwrap())
        .collect();
    let mean = window.iter().sum::<f64>() / window.len() as f64;
    assert!(mean > 80.0, "scale_up needs a mean above 80%: {window:?}");
    assert_eq!(
        found["signal"]["prediction"]["details"]["method"],
        "isolation_forest"
    );

    // Verification runs while the feed keeps reading windows that still hold the burst: it
    // must see no repeat (the feed reports only data newer than its last signal) and resolve.
    let id = found["id"].as_str().unwrap();
    let incident = c
        .wait_for(id, FINAL, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(incident["status"], "resolved", "{incident:#}");
    let verify = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["step"] == "verify")
        .unwrap();
    assert_eq!(verify["details"]["repeatSignals"], 0, "{verify:#}");
    // 3 → max(4, ⌈4.5⌉) = 5 pods share the load: 288 / 5 = 57.6 % each.
    assert_eq!(replicas(&c, "api").await, (5, 5));
    assert_correlated(&c, &incident, "allow", 1).await;
    let after = c.incidents("namespace=production&limit=100").await.unwrap();
    assert_eq!(
        after
            .iter()
            .filter(|i| i["recommendedAction"] == "scale_up")
            .count(),
        1,
        "one scale-up report for one burst: {after:#?}"
    );
    stack.stop().await;
}

const WATCHED_SEED: &str = "
namespaces:
  - name: production
    deployments:
      - {name: api, replicas: 2, image: 'ghcr.io/aegis-demo/api:1.4.2', container: api, labels: {app: api}}
      - {name: worker, replicas: 2, image: 'ghcr.io/aegis-demo/worker:1.4.2', labels: {app: worker}}
";

/// The signal step's evidence of an incident.
fn evidence(incident: &Value) -> Value {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["step"] == "signal")
        .map(|e| e["details"]["evidence"].clone())
        .unwrap()
}

/// The Kubernetes watcher drives the loop with nothing reported by hand: a crash-looping pod
/// is restarted and verified, and a bad deploy is named (revision and image), waits for an
/// admin because it is in production, is rolled back to the healthy revision and verified.
#[tokio::test(flavor = "multi_thread")]
async fn the_watcher_catches_a_crash_loop_and_a_bad_deploy_through_the_real_binaries() {
    let seed = std::env::temp_dir().join(format!("{}.yaml", support::unique("watched-seed")));
    std::fs::write(&seed, WATCHED_SEED).unwrap();
    let stack = support::start_stack_with_watcher(
        "watched",
        &seed,
        &[
            ("REMEDIATION_MODE", "auto"),
            ("REMEDIATION_VERIFY_DELAY_SECONDS", "3"),
            ("RATE_LIMIT_MAX", "100000"),
        ],
        &[("WATCHER_NOT_READY_SECONDS", "5")],
    )
    .await;
    let c = Client::login(&stack).await.unwrap();
    c.ensure_policy(&allow_policy("restart worker", "restart", "worker", None))
        .await
        .unwrap();
    let opened_for = |deployment: &'static str| {
        move |i: &Value| i["source"] == "kubernetes" && i["deployment"] == deployment
    };

    // A crash loop with no rollout: the pod is restarted once, and the replacement is Ready.
    let victim = c.pods("production", "worker").await.unwrap()[0].0.clone();
    c.crash_pod("production", &victim).await.unwrap();
    let found = c
        .wait_for_incident("namespace=production", opened_for("worker"), WAIT)
        .await
        .unwrap();
    let incident = c
        .wait_for(found["id"].as_str().unwrap(), FINAL, WAIT)
        .await
        .unwrap();
    assert_eq!(incident["status"], "resolved", "{incident:#}");
    assert_eq!(incident["kind"], "failure");
    assert_eq!(incident["fingerprint"], "kubernetes/production/worker");
    assert_eq!(incident["actionType"], "restart_pod");
    assert_eq!(incident["actionParams"]["podName"], victim.as_str());
    let e = evidence(&incident);
    assert_eq!(e["failure"], "crash_loop", "{e:#}");
    assert_eq!(e["pod"], victim.as_str());
    assert_eq!(e["exitCode"], 1);
    assert!(!e["logTail"].as_array().unwrap().is_empty(), "{e:#}");
    let after = c.pods("production", "worker").await.unwrap();
    assert!(
        after.iter().all(|(name, ready)| *name != victim && *ready),
        "{after:?}"
    );
    assert_correlated(&c, &incident, "allow", 1).await;

    // A bad deploy: the rollback is allowed by the seed policy, waits for an admin in
    // production, returns to revision 1 and is verified.
    c.deploy_image("production", "api", "api", "ghcr.io/aegis-demo/api:crash")
        .await
        .unwrap();
    let found = c
        .wait_for_incident("namespace=production", opened_for("api"), WAIT)
        .await
        .unwrap();
    let id = found["id"].as_str().unwrap().to_owned();
    let incident = c.wait_for(&id, &["awaiting_approval"], WAIT).await.unwrap();
    assert_eq!(incident["recommendedAction"], "rollback", "{incident:#}");
    assert_eq!(incident["policyName"], "Roll Back a Deploy That Broke");
    assert_eq!(incident["actionParams"]["revision"], 1, "{incident:#}");
    let e = evidence(&incident);
    assert_eq!(e["rollout"]["revision"], 2, "{e:#}");
    assert_eq!(
        e["rollout"]["images"],
        json!([{"container": "api", "from": "ghcr.io/aegis-demo/api:1.4.2", "to": "ghcr.io/aegis-demo/api:crash"}])
    );
    c.decide(&id, "approve").await.unwrap();
    let incident = c.wait_for(&id, FINAL, WAIT).await.unwrap();
    assert_eq!(incident["status"], "resolved", "{incident:#}");
    assert_eq!(incident["actionType"], "rollback_deployment");
    let api = c.deployment("production", "api").await.unwrap();
    assert_eq!(
        api["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/aegis-demo/api:1.4.2"
    );
    assert_eq!(
        api["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(replicas(&c, "api").await, (2, 2));
    assert_correlated(&c, &incident, "allow", 1).await;
    stack.stop().await;
}
