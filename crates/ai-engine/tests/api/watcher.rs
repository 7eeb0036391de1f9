//! The Kubernetes watcher against kube-sim through kube-rs: every failure kind is detected
//! once per episode with its cause and recommendation, a bad deploy is blamed on its rollout,
//! a crash loop back after a restart is escalated, one leader reports and a killed one hands
//! over, and the watcher's identity writes nothing but its Lease.
//!
//! The signals go to a recording receiver of the backend's signal endpoint; what the backend
//! makes of them is tested end to end in `crates/dev/tests/closed_loop.rs`.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aegis_ai_engine::{config::Config, startup::Application};
use aegis_common::config::Env;
use aegis_test_support::fresh_database;
use axum::{Json, Router, extract::State, routing::post};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use kube_sim::{KubeSim, RunningSim, SimConfig, node::Behaviour};
use serde_json::{Value, json};

/// The watcher's read-only token.
const READER: &str = "watcher-token";
const NS: &str = "shop";

type Received = Arc<Mutex<Vec<Value>>>;

/// Records the signals the backend's endpoint would receive, answering 202.
async fn signal_sink() -> (String, Received) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/api/v1/remediation/signals",
            post(
                |State(r): State<Received>, Json(body): Json<Value>| async move {
                    r.lock().unwrap().push(body);
                    (
                        axum::http::StatusCode::ACCEPTED,
                        Json(
                            json!({"incidentId": "i", "correlationId": "c", "deduplicated": false}),
                        ),
                    )
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

struct Cluster {
    sim: RunningSim,
    admin: Client,
    kubeconfig: std::path::PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// kube-sim with a fast kubelet, the `shop` namespace, and a kubeconfig for the read-only
/// token.
async fn cluster() -> Cluster {
    let sim = KubeSim::start(
        SimConfig::default()
            .with_read_only_token(READER)
            .with_kubelet_period(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let mut config = kube::Config::new(sim.base_url().parse().unwrap());
    config.auth_info.token = Some(sim.token().to_owned().into());
    let admin = Client::try_from(config).unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
        )
        .await
        .unwrap();
    let kubeconfig =
        std::env::temp_dir().join(format!("aegis-watcher-{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(&kubeconfig, sim.kubeconfig_yaml_with_token(READER)).unwrap();
    Cluster {
        sim,
        admin,
        kubeconfig,
    }
}

fn deployment(name: &str, image: &str, extra_spec: Value) -> Deployment {
    let mut spec = json!({
        "replicas": 1,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image}]},
        },
    });
    if let (Some(pod_spec), Some(extra)) = (
        spec.pointer_mut("/template/spec")
            .and_then(Value::as_object_mut),
        extra_spec.as_object(),
    ) {
        pod_spec.extend(extra.clone());
    }
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": NS}, "spec": spec}))
        .unwrap()
}

async fn create(admin: &Client, d: &Deployment) {
    let api: Api<Deployment> = Api::namespaced(admin.clone(), NS);
    api.create(&PostParams::default(), d).await.unwrap();
}

struct Engine {
    state: aegis_ai_engine::state::AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Engine {
    fn leading(&self) -> bool {
        self.state.ai_metrics.watcher_leader.get() == 1
    }

    /// Stops the replica without giving the lease up, as a killed process would.
    async fn kill(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}

async fn engine(
    cluster: &Cluster,
    database_url: &str,
    backend: &str,
    overrides: &[(&str, &str)],
) -> Engine {
    let mut env = Env::from_pairs([
        ("APP_ENV", "test"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("WATCHER_ENABLED", "true"),
        ("WATCH_NAMESPACES", NS),
        ("WATCHER_LEASE_NAMESPACE", NS),
        ("WATCHER_LEASE_SECONDS", "2"),
        // Transition times have whole seconds: two seconds are at least one.
        ("WATCHER_NOT_READY_SECONDS", "2"),
    ]);
    env.set("DATABASE_URL", database_url.to_owned());
    env.set("BACKEND_URL", backend.to_owned());
    env.set(
        "WATCHER_KUBECONFIG",
        cluster.kubeconfig.display().to_string(),
    );
    for (k, v) in overrides {
        env.set(*k, *v);
    }
    let config = Config::from_env(&env).expect("test configuration is valid");
    let app = Application::build(config).await.expect("ai-engine builds");
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = app
            .run_until(async {
                let _ = stopped.await;
            })
            .await;
    });
    Engine {
        state,
        stop: Some(stop),
        task,
    }
}

/// One watching ai-engine over [`cluster`] with `deployments` created first, reporting to a
/// signal sink.
struct Watched {
    cluster: Cluster,
    received: Received,
    engine: Engine,
    _db: aegis_test_support::TestDatabase,
}

async fn watched(deployments: &[Deployment], overrides: &[(&str, &str)]) -> Watched {
    let cluster = cluster().await;
    for d in deployments {
        create(&cluster.admin, d).await;
    }
    let (backend, received) = signal_sink().await;
    let db = fresh_database("aiwatch").await;
    let engine = engine(&cluster, &db.url, &backend, overrides).await;
    Watched {
        cluster,
        received,
        engine,
        _db: db,
    }
}

/// Waits until `received` holds a signal for every deployment in `names`.
async fn wait_for(received: &Received, names: &[&str], within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let got = received.lock().unwrap().clone();
        let all = names
            .iter()
            .all(|n| got.iter().any(|s| s["target"]["deployment"] == *n));
        if all {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "signals for {names:?} within {within:?}; got {got:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn for_deployment<'a>(signals: &'a [Value], name: &str) -> Vec<&'a Value> {
    signals
        .iter()
        .filter(|s| s["target"]["deployment"] == name)
        .collect()
}

#[tokio::test]
async fn each_failure_is_reported_once_with_its_cause_and_what_to_do() {
    let cluster = cluster().await;
    for (name, image, extra) in [
        ("worker", "shop/worker:crash", json!({})),
        ("cache", "shop/cache:oom", json!({})),
        ("api", "shop/api:missing", json!({})),
        ("search", "shop/search:unready", json!({})),
        (
            "batch",
            "shop/batch:1",
            json!({"nodeSelector": {"disktype": "ssd"}}),
        ),
        ("web", "shop/web:1", json!({})),
    ] {
        create(&cluster.admin, &deployment(name, image, extra)).await;
    }
    // From here on, everything the API server receives comes from the watcher.
    cluster.sim.cluster().clear_requests();
    let (backend, received) = signal_sink().await;
    let db = fresh_database("aiwatch").await;
    let engine = engine(&cluster, &db.url, &backend, &[]).await;

    let names = ["worker", "cache", "api", "search", "batch"];
    wait_for(&received, &names, Duration::from_secs(20)).await;
    // Many kubelet periods and evaluations later, still one signal per workload.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let signals = received.lock().unwrap().clone();
    for name in names {
        assert_eq!(
            for_deployment(&signals, name).len(),
            1,
            "{name}: {signals:#?}"
        );
    }
    assert!(
        for_deployment(&signals, "web").is_empty(),
        "a healthy workload is no failure"
    );

    let of = |name: &str| for_deployment(&signals, name)[0].clone();
    let worker = of("worker");
    assert_eq!(worker["source"], "kubernetes");
    assert_eq!(worker["kind"], "failure");
    assert_eq!(worker["fingerprint"], "kubernetes/shop/worker");
    assert_eq!(worker["recommendedAction"], "restart_pod");
    let e = &worker["evidence"];
    assert_eq!(e["failure"], "crash_loop");
    assert_eq!(e["reason"], "CrashLoopBackOff");
    assert_eq!(e["container"], "app");
    assert_eq!(e["exitCode"], 1);
    assert!(e["restartCount"].as_i64().unwrap() >= 1, "{e}");
    assert_eq!(e["logFromPreviousInstance"], true);
    assert!(
        e["logTail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("exiting with status 1")),
        "the crashed instance's log: {e}"
    );
    assert!(
        e["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|ev| ev["reason"] == "BackOff"),
        "the kubelet's events: {e}"
    );
    assert!(
        e.get("rollout").is_none(),
        "the first revision is no rollout to blame: {e}"
    );
    assert_eq!(worker["target"]["pod"], e["pod"]);

    let cache = of("cache");
    assert_eq!(cache["evidence"]["failure"], "oom_killed");
    assert_eq!(cache["evidence"]["reason"], "OOMKilled");
    assert_eq!(cache["evidence"]["exitCode"], 137);
    assert_eq!(cache["recommendedAction"], "alert_admin");

    let api = of("api");
    assert_eq!(api["evidence"]["failure"], "image_pull");
    assert!(
        ["ErrImagePull", "ImagePullBackOff"].contains(&api["evidence"]["reason"].as_str().unwrap()),
        "{api}"
    );
    assert_eq!(api["evidence"]["image"], "shop/api:missing");
    assert_eq!(api["recommendedAction"], "alert_admin");

    let search = of("search");
    assert_eq!(search["evidence"]["failure"], "not_ready");
    assert_eq!(search["recommendedAction"], "alert_admin");
    assert!(
        search["evidence"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|ev| ev["reason"] == "Unhealthy")
    );

    let batch = of("batch");
    assert_eq!(batch["evidence"]["failure"], "unschedulable");
    assert_eq!(batch["recommendedAction"], "alert_admin");
    assert!(
        batch["evidence"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|ev| ev["reason"] == "FailedScheduling")
    );

    // The watcher's identity only read, and wrote nothing but its Lease.
    let requests = cluster.sim.cluster().requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert!(
            r.method == "GET"
                || r.path
                    .starts_with("/apis/coordination.k8s.io/v1/namespaces/shop/leases"),
            "the watcher wrote {} {}",
            r.method,
            r.path
        );
    }
    engine.kill().await;
}

#[tokio::test]
async fn a_bad_deploy_is_blamed_on_its_rollout_with_the_images_that_changed() {
    let Watched {
        cluster,
        received,
        engine,
        _db,
    } = watched(
        &[deployment("checkout", "shop/checkout:1.4", json!({}))],
        &[],
    )
    .await;
    // The healthy revision is seen before the bad one rolls out.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let api: Api<Deployment> = Api::namespaced(cluster.admin.clone(), NS);
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "shop/checkout:crash"}]}}}});
    api.patch(
        "checkout",
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await
    .unwrap();

    let signals = wait_for(&received, &["checkout"], Duration::from_secs(15)).await;
    let signal = for_deployment(&signals, "checkout")[0].clone();
    assert_eq!(signal["recommendedAction"], "rollback", "{signal}");
    let e = &signal["evidence"];
    assert_eq!(e["failure"], "crash_loop");
    let rollout = &e["rollout"];
    assert_eq!(rollout["revision"], 2, "{e}");
    assert_eq!(rollout["previousRevision"], 1);
    assert_eq!(rollout["healthyRevision"], 1);
    assert_eq!(
        rollout["images"],
        json!([{"container": "app", "from": "shop/checkout:1.4", "to": "shop/checkout:crash"}])
    );
    assert!(
        e["explanation"].as_str().unwrap().contains("revision 2"),
        "{e}"
    );
    assert!(
        e["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|ev| ev["reason"] == "ScalingReplicaSet"),
        "the deployment's events: {e}"
    );
    engine.kill().await;
}

#[tokio::test]
async fn a_crash_loop_back_within_the_cooldown_after_a_restart_is_escalated() {
    let Watched {
        cluster,
        received,
        engine,
        _db,
    } = watched(
        &[deployment("worker", "shop/worker:2", json!({}))],
        &[("WATCHER_EPISODE_QUIET_SECONDS", "1")],
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(cluster.admin.clone(), NS);
    let replace_pods = || async {
        for pod in pods.list(&ListParams::default()).await.unwrap() {
            pods.delete(&pod.metadata.name.unwrap(), &DeleteParams::default())
                .await
                .unwrap();
        }
    };
    // The image starts crashing: a crash loop with no rollout, restart once.
    cluster
        .sim
        .cluster()
        .set_image_behaviour("shop/worker:2", Behaviour::Crash);
    replace_pods().await;
    let signals = wait_for(&received, &["worker"], Duration::from_secs(15)).await;
    assert_eq!(
        signals[0]["recommendedAction"], "restart_pod",
        "{:#}",
        signals[0]
    );
    // The restart helps for longer than the quiet period: the episode ends...
    cluster
        .sim
        .cluster()
        .set_image_behaviour("shop/worker:2", Behaviour::Runs);
    replace_pods().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM watch_episodes WHERE deployment = 'worker' AND ended_at IS NOT NULL",
        )
        .fetch_one(&engine.state.db)
        .await
        .unwrap();
        if ended == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the episode never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(received.lock().unwrap().len(), 1);
    // ...and when it comes back within the cooldown, restarting did not help.
    cluster
        .sim
        .cluster()
        .set_image_behaviour("shop/worker:2", Behaviour::Crash);
    replace_pods().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while received.lock().unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the returning crash loop is reported"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = received.lock().unwrap()[1].clone();
    assert_eq!(second["recommendedAction"], "alert_admin", "{second}");
    assert!(
        second["evidence"]["explanation"]
            .as_str()
            .unwrap()
            .contains("did not help")
    );
    engine.kill().await;
}

#[tokio::test]
async fn one_replica_leads_and_a_killed_leader_hands_over_within_the_lease() {
    let cluster = cluster().await;
    let (backend, received) = signal_sink().await;
    let db = fresh_database("aiwatch").await;
    let a = engine(&cluster, &db.url, &backend, &[]).await;
    let b = engine(&cluster, &db.url, &backend, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(a.leading() || b.leading()) {
        assert!(Instant::now() < deadline, "a leader is elected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(a.leading() != b.leading(), "exactly one replica leads");
    create(
        &cluster.admin,
        &deployment("worker", "shop/worker:crash", json!({})),
    )
    .await;
    wait_for(&received, &["worker"], Duration::from_secs(15)).await;

    let (leader, follower) = if a.leading() { (a, b) } else { (b, a) };
    let killed = Instant::now();
    leader.kill().await;
    let deadline = killed + Duration::from_secs(2) + Duration::from_millis(1500);
    while !follower.leading() {
        assert!(
            Instant::now() < deadline,
            "the follower takes over within the lease duration"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The new leader neither loses the open failure nor reports it again, and reports a new one.
    create(
        &cluster.admin,
        &deployment("cache", "shop/cache:oom", json!({})),
    )
    .await;
    let signals = wait_for(&received, &["worker", "cache"], Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let signals = if signals.len() < received.lock().unwrap().len() {
        received.lock().unwrap().clone()
    } else {
        signals
    };
    assert_eq!(for_deployment(&signals, "worker").len(), 1, "{signals:#?}");
    assert_eq!(for_deployment(&signals, "cache").len(), 1, "{signals:#?}");
    follower.kill().await;
}

#[tokio::test]
async fn a_rollout_past_its_progress_deadline_is_a_failed_rollout_to_roll_back() {
    let mut healthy = deployment("search", "shop/search:3.1", json!({}));
    if let Some(spec) = healthy.spec.as_mut() {
        spec.progress_deadline_seconds = Some(1);
    }
    // Readiness alone would take a minute to count: the deadline names the failure first.
    let Watched {
        cluster,
        received,
        engine,
        _db,
    } = watched(&[healthy], &[("WATCHER_NOT_READY_SECONDS", "60")]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let api: Api<Deployment> = Api::namespaced(cluster.admin.clone(), NS);
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "shop/search:unready"}]}}}});
    api.patch("search", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();

    let signals = wait_for(&received, &["search"], Duration::from_secs(15)).await;
    let signal = for_deployment(&signals, "search")[0].clone();
    let e = &signal["evidence"];
    assert_eq!(e["failure"], "failed_rollout", "{signal:#}");
    assert_eq!(e["reason"], "ProgressDeadlineExceeded");
    assert_eq!(signal["recommendedAction"], "rollback");
    assert_eq!(e["rollout"]["revision"], 2);
    assert_eq!(e["rollout"]["healthyRevision"], 1);
    assert!(signal["target"].get("pod").is_none(), "{signal:#}");
    engine.kill().await;
}
