//! kube-rs against kube-sim, configured from the generated kubeconfig, exactly as the executor
//! talks to a real cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_sim::{FaultRule, KubeSim, MetricUpdate, RunningSim, Seed, SimConfig};
use serde_json::json;

const SEED: &str = "
namespaces:
  - name: production
    deployments:
      - name: api
        replicas: 3
        image: registry.example/api:1.0.0
        container: api
        labels: { app: api, tier: backend }
      - name: worker
        replicas: 2
        image: registry.example/worker:1.0.0
";

async fn start_sim(tls: bool) -> RunningSim {
    let seed = Seed::from_yaml(SEED).unwrap();
    KubeSim::start(SimConfig::default().with_seed(seed).with_tls(tls))
        .await
        .unwrap()
}

async fn client_for(sim: &RunningSim) -> Client {
    client_with_timeout(sim, Duration::from_secs(5)).await
}

async fn client_with_timeout(sim: &RunningSim, read_timeout: Duration) -> Client {
    // Through a file, so the written kubeconfig is what is tested.
    let path = std::env::temp_dir().join(format!("kube-sim-{}.kubeconfig", uuid::Uuid::new_v4()));
    sim.write_kubeconfig(&path).unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.read_timeout = Some(read_timeout);
    Client::try_from(config).unwrap()
}

fn api_error(err: kube::Error) -> kube::core::ErrorResponse {
    match err {
        kube::Error::Api(response) => response,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn deployments_and_pods_can_be_read_listed_and_deleted() {
    let sim = start_sim(false).await;
    let client = client_for(&sim).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "production");

    let api = deployments.get("api").await.unwrap();
    assert_eq!(api.spec.as_ref().unwrap().replicas, Some(3));
    let status = api.status.unwrap();
    assert_eq!(status.ready_replicas, Some(3));
    assert_eq!(status.available_replicas, Some(3));
    assert_eq!(
        api.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );

    let all: Api<Deployment> = Api::all(client.clone());
    let names: Vec<String> = all
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|d| d.metadata.name.unwrap())
        .collect();
    assert_eq!(names, vec!["api", "worker"]);

    let api_pods = pods
        .list(&ListParams::default().labels("app=api"))
        .await
        .unwrap();
    assert_eq!(api_pods.items.len(), 3);
    let victim = api_pods.items[0].clone();
    let victim_name = victim.metadata.name.clone().unwrap();
    let owner = &victim.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "ReplicaSet");
    assert_eq!(owner.controller, Some(true));
    assert_eq!(
        victim.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );
    let fetched = pods.get(&victim_name).await.unwrap();
    assert_eq!(fetched.metadata.uid, victim.metadata.uid);

    pods.delete(&victim_name, &DeleteParams::background())
        .await
        .unwrap();
    let after = pods
        .list(&ListParams::default().labels("app=api"))
        .await
        .unwrap();
    assert_eq!(after.items.len(), 3, "the replicaset recreates the pod");
    assert!(
        after
            .items
            .iter()
            .all(|p| p.metadata.name.as_deref() != Some(victim_name.as_str()))
    );
    let recorded = sim
        .cluster()
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE")
        .unwrap();
    assert_eq!(
        recorded.body.unwrap()["propagationPolicy"],
        json!("Background")
    );

    // Deleting a deployment cascades to its replicasets and pods.
    deployments
        .delete("worker", &DeleteParams::background())
        .await
        .unwrap();
    let worker_pods = pods
        .list(&ListParams::default().labels("app=worker"))
        .await
        .unwrap();
    assert!(worker_pods.items.is_empty());
}

#[tokio::test]
async fn the_scale_subresource_reads_and_merge_patches_replicas() {
    let sim = start_sim(false).await;
    let client = client_for(&sim).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let pods: Api<Pod> = Api::namespaced(client, "production");

    let scale = deployments.get_scale("api").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(
        scale.status.unwrap().selector.as_deref(),
        Some("app=api,tier=backend")
    );

    let patched = deployments
        .patch_scale(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().replicas, Some(5));
    let listed = pods
        .list(&ListParams::default().labels("app=api"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 5);
    let api = deployments.get("api").await.unwrap();
    assert_eq!(api.metadata.generation, Some(2));
    assert_eq!(api.status.unwrap().ready_replicas, Some(5));

    let invalid = deployments
        .patch_scale(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await
        .unwrap_err();
    let invalid = api_error(invalid);
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
}

#[tokio::test]
async fn replicasets_are_listed_by_label_selector_with_owner_and_revision() {
    let sim = start_sim(false).await;
    let client = client_for(&sim).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let replicasets: Api<ReplicaSet> = Api::namespaced(client, "production");
    let api = deployments.get("api").await.unwrap();

    let listed = replicasets
        .list(&ListParams::default().labels("app=api,tier=backend"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let rs = &listed.items[0];
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.uid, api.metadata.uid.unwrap());
    assert_eq!(owner.controller, Some(true));
    assert_eq!(
        rs.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );
    let hash = &rs.metadata.labels.as_ref().unwrap()["pod-template-hash"];
    assert!(rs.metadata.name.as_ref().unwrap().ends_with(hash.as_str()));

    let none = replicasets
        .list(&ListParams::default().labels("app=worker,tier=backend"))
        .await
        .unwrap();
    assert!(none.items.is_empty());
}

#[tokio::test]
async fn dry_run_answers_without_changing_anything() {
    let sim = start_sim(false).await;
    let client = client_for(&sim).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let pods: Api<Pod> = Api::namespaced(client, "production");
    let before = sim.cluster().resource_version();

    let answer = deployments
        .patch_scale(
            "api",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(answer.spec.unwrap().replicas, Some(9));
    let pod_name = pods.list(&ListParams::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let delete = DeleteParams {
        dry_run: true,
        ..DeleteParams::background()
    };
    pods.delete(&pod_name, &delete).await.unwrap();

    assert_eq!(sim.cluster().resource_version(), before);
    assert!(pods.get(&pod_name).await.is_ok());
    assert_eq!(
        deployments
            .get_scale("api")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(3)
    );
    let recorded = sim.cluster().requests();
    // kube-rs sends dryRun in the query for PATCH and in the DeleteOptions body for DELETE.
    let patch = recorded.iter().find(|r| r.method == "PATCH").unwrap();
    assert!(patch.query.as_deref().unwrap_or("").contains("dryRun=All"));
    let delete = recorded.iter().find(|r| r.method == "DELETE").unwrap();
    assert_eq!(delete.body.as_ref().unwrap()["dryRun"], json!(["All"]));
}

#[tokio::test]
async fn a_json_patch_replaces_the_template_and_rolls_a_new_revision() {
    let sim = start_sim(false).await;
    let client = client_for(&sim).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let replicasets: Api<ReplicaSet> = Api::namespaced(client, "production");
    let mut template =
        serde_json::to_value(deployments.get("api").await.unwrap().spec.unwrap().template).unwrap();
    template["spec"]["containers"][0]["image"] = json!("registry.example/api:2.0.0");
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "add", "path": "/metadata/annotations/aegis.io~1rolled-back-from", "value": "1"}
    ]))
    .unwrap();

    let patched = deployments
        .patch("api", &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .unwrap();
    let annotations = patched.metadata.annotations.unwrap();
    assert_eq!(annotations["aegis.io/rolled-back-from"], "1");
    assert_eq!(annotations["deployment.kubernetes.io/revision"], "2");
    let listed = replicasets
        .list(&ListParams::default().labels("app=api"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    let active: Vec<_> = listed
        .items
        .iter()
        .filter(|rs| rs.spec.as_ref().unwrap().replicas == Some(3))
        .collect();
    assert_eq!(active.len(), 1);
    let image = active[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("registry.example/api:2.0.0"));
}

#[tokio::test]
async fn not_found_conflict_and_unauthorized_map_to_kube_api_errors() {
    let sim = start_sim(false).await;
    let client = client_for(&sim).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "production");

    let missing = api_error(deployments.get("nope").await.unwrap_err());
    assert_eq!(missing.code, 404);
    assert_eq!(missing.reason, "NotFound");
    assert_eq!(missing.message, "deployments.apps \"nope\" not found");

    let mut stale = deployments.get("api").await.unwrap();
    deployments
        .patch(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    stale.spec.as_mut().unwrap().replicas = Some(1);
    let conflict = api_error(
        deployments
            .replace("api", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!(conflict.code, 409);
    assert_eq!(conflict.reason, "Conflict");

    let exists = api_error(
        deployments
            .create(
                &PostParams::default(),
                &deployments.get("api").await.unwrap(),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (exists.code, exists.reason.as_str()),
        (409, "AlreadyExists")
    );

    let mut kubeconfig = Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).unwrap();
    kubeconfig.auth_infos[0].auth_info.as_mut().unwrap().token = Some("wrong".to_owned().into());
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let intruder: Api<Deployment> =
        Api::namespaced(Client::try_from(config).unwrap(), "production");
    let denied = api_error(intruder.get("api").await.unwrap_err());
    assert_eq!((denied.code, denied.reason.as_str()), (401, "Unauthorized"));
}

#[tokio::test]
async fn injected_faults_surface_as_errors_and_timeouts() {
    let sim = start_sim(false).await;
    let client = client_with_timeout(&sim, Duration::from_secs(1)).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "production");
    let name = pods.list(&ListParams::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();

    sim.set_faults(vec![
        FaultRule::new("/api/v1/namespaces/production/pods")
            .method("DELETE")
            .status(500)
            .message("etcdserver: request timed out")
            .times(1),
    ]);
    let failed = api_error(
        pods.delete(&name, &DeleteParams::background())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (failed.code, failed.reason.as_str()),
        (500, "InternalError")
    );
    assert_eq!(failed.message, "etcdserver: request timed out");
    // The rule was for one request only.
    pods.delete(&name, &DeleteParams::background())
        .await
        .unwrap();

    // Faults can also be set over HTTP with the same token.
    let request = http::Request::post("/_sim/faults")
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(&json!({"pathPrefix": "/api/v1/namespaces/production/pods", "method": "GET", "hang": true}))
                .unwrap(),
        )
        .unwrap();
    client.request_text(request).await.unwrap();
    let started = std::time::Instant::now();
    let hung = pods.list(&ListParams::default()).await.unwrap_err();
    assert!(
        !matches!(hung, kube::Error::Api(_)),
        "a hang is a transport timeout, got {hung:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    sim.clear_faults();
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        5
    );
}

#[tokio::test]
async fn metrics_are_served_open_and_settable_through_the_admin_endpoint() {
    let sim = start_sim(false).await;
    let client = client_for(&sim).await;
    let request = http::Request::post("/_sim/metrics")
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(
                &json!({"namespace": "production", "deployment": "api", "cpu": 97.5}),
            )
            .unwrap(),
        )
        .unwrap();
    client.request_text(request).await.unwrap();
    let pod = sim.cluster().pods_of_deployment("production", "worker")[0].clone();
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_owned();
    sim.set_pod_metric(&MetricUpdate {
        namespace: "production".into(),
        deployment: "worker".into(),
        pod: Some(pod_name.clone()),
        memory: Some(88.0),
        ..MetricUpdate::default()
    })
    .unwrap();

    // No token: /metrics must be scrapable by a plain Prometheus.
    let text = plain_get(&sim, "/metrics").await;
    let api_lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with(
                "kube_sim_pod_cpu_usage_percent{namespace=\"production\",deployment=\"api\"",
            )
        })
        .collect();
    assert_eq!(api_lines.len(), 3);
    assert!(api_lines.iter().all(|l| l.ends_with(" 97.5")));
    assert!(text.contains(&format!(
        "kube_sim_pod_memory_usage_percent{{namespace=\"production\",deployment=\"worker\",pod=\"{pod_name}\"}} 88"
    )));
    assert!(text.contains("# TYPE kube_sim_pod_cpu_usage_percent gauge"));

    let missing = sim.set_pod_metric(&MetricUpdate {
        namespace: "production".into(),
        deployment: "nope".into(),
        pod: None,
        cpu: Some(1.0),
        ..MetricUpdate::default()
    });
    assert_eq!(missing.unwrap_err().code, 404);
}

/// The CPU samples of a deployment's pods in a `/metrics` text.
fn cpu_samples(text: &str, deployment: &str) -> Vec<f64> {
    let prefix = format!(
        "kube_sim_pod_cpu_usage_percent{{namespace=\"production\",deployment=\"{deployment}\""
    );
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn a_cpu_load_is_shared_by_the_ready_pods_and_jitter_stays_within_its_bounds() {
    let sim = start_sim(false).await;
    let client = client_for(&sim).await;
    let load = |cpu_load: f64, jitter: Option<f64>| MetricUpdate {
        namespace: "production".into(),
        deployment: "api".into(),
        cpu_load: Some(cpu_load),
        jitter,
        ..MetricUpdate::default()
    };
    sim.set_pod_metric(&load(288.0, None)).unwrap();
    let three = cpu_samples(&plain_get(&sim, "/metrics").await, "api");
    assert_eq!(three, vec![96.0; 3]);

    // Scaling up spreads the same load over more pods, as on a real cluster.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "production");
    deployments
        .patch_scale(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    let four = cpu_samples(&plain_get(&sim, "/metrics").await, "api");
    assert_eq!(four, vec![72.0; 4]);

    sim.set_pod_metric(&load(200.0, Some(3.0))).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        for v in cpu_samples(&plain_get(&sim, "/metrics").await, "api") {
            assert!((47.0..=53.0).contains(&v), "50 ± 3, got {v}");
            seen.insert(v.to_bits());
        }
    }
    assert!(seen.len() > 10, "jitter varies between scrapes: {seen:?}");

    // A fixed value replaces the load; bad values are refused with the reason.
    sim.set_pod_metric(&MetricUpdate {
        namespace: "production".into(),
        deployment: "api".into(),
        cpu: Some(10.0),
        jitter: Some(0.0),
        ..MetricUpdate::default()
    })
    .unwrap();
    assert_eq!(
        cpu_samples(&plain_get(&sim, "/metrics").await, "api"),
        vec![10.0; 4]
    );
    for (bad, reason) in [
        (
            MetricUpdate {
                pod: Some("x".into()),
                ..load(1.0, None)
            },
            "cannot be set for one pod",
        ),
        (load(1.0, Some(51.0)), "jitter must be at most"),
        (load(f64::NAN, None), "cpuLoad must be finite"),
        (
            MetricUpdate {
                cpu: Some(1.0),
                ..load(1.0, None)
            },
            "not both",
        ),
    ] {
        let err = sim.set_pod_metric(&bad).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.contains(reason), "{}", err.message);
    }
}

/// A raw HTTP/1.1 GET without credentials.
async fn plain_get(sim: &RunningSim, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: kube-sim\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[tokio::test]
async fn https_with_the_generated_certificate_works_from_the_kubeconfig() {
    let sim = start_sim(true).await;
    assert!(sim.base_url().starts_with("https://"));
    assert!(sim.kubeconfig_yaml().contains("certificate-authority-data"));
    let client = client_for(&sim).await;
    let pods: Api<Pod> = Api::namespaced(client, "production");
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        5
    );
}

#[tokio::test]
async fn a_bare_pod_runs_without_a_controller_and_watches_report_replacements() {
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{WatchEvent, WatchParams};

    let sim = start_sim(false).await;
    let client = client_for(&sim).await;
    let pods: Api<Pod> = Api::namespaced(client, "production");

    // A pod created directly has no controller owner (the executor refuses to restart it).
    let bare: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "debug-", "labels": {"app": "debug"}},
        "spec": {"containers": [{"name": "sh", "image": "busybox:1.36"}]}
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &bare).await.unwrap();
    let name = created.metadata.name.clone().unwrap();
    assert!(name.starts_with("debug-"));
    assert!(created.metadata.owner_references.is_none());
    let fetched = pods.get(&name).await.unwrap();
    assert_eq!(fetched.status.unwrap().phase.as_deref(), Some("Running"));

    let version = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = pods
        .watch(
            &WatchParams::default().labels("app=api").timeout(10),
            &version,
        )
        .await
        .unwrap()
        .boxed();
    let victim = pods
        .list(&ListParams::default().labels("app=api"))
        .await
        .unwrap()
        .items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    pods.delete(&victim, &DeleteParams::background())
        .await
        .unwrap();

    let (mut deleted, mut added) = (None, None);
    while deleted.is_none() || added.is_none() {
        match tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Deleted(pod) => deleted = pod.metadata.name,
            WatchEvent::Added(pod) => added = pod.metadata.name,
            _ => {}
        }
    }
    assert_eq!(deleted.as_deref(), Some(victim.as_str()));
    assert_ne!(added.as_deref(), Some(victim.as_str()));
}

#[tokio::test]
async fn shutdown_stops_serving_over_http_and_https() {
    for tls in [false, true] {
        let sim = start_sim(tls).await;
        let addr = sim.addr();
        assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
        sim.shutdown().await;
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "still accepting after shutdown (tls: {tls})"
        );
    }
}

#[tokio::test]
async fn a_crash_looping_pod_is_not_ready_until_it_is_replaced() {
    let sim = start_sim(false).await;
    let client = client_for(&sim).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "production");
    let victim = sim.cluster().pods_of_deployment("production", "worker")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = http::Request::post("/_sim/crashloop")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&json!({"namespace": "production", "pod": victim})).unwrap())
        .unwrap();
    client.request_text(request).await.unwrap();

    let pod = pods.get(&victim).await.unwrap();
    let status = pod.status.unwrap();
    let container = &status.container_statuses.unwrap()[0];
    assert!(!container.ready);
    // Five restarts at once, and one more each kubelet period since.
    assert!(container.restart_count >= 5, "{container:?}");
    assert_eq!(
        container
            .state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("CrashLoopBackOff")
    );
    let worker = deployments.get("worker").await.unwrap().status.unwrap();
    assert_eq!(worker.replicas, Some(2));
    assert_eq!(worker.ready_replicas, Some(1));

    // Deleting it (what the executor's restart does) brings a Ready replacement.
    pods.delete(&victim, &DeleteParams::background())
        .await
        .unwrap();
    let worker = deployments.get("worker").await.unwrap().status.unwrap();
    assert_eq!(worker.ready_replicas, Some(2));

    // Unknown pods are a 404 Status.
    let err = sim
        .cluster()
        .crash_pod("production", "nope", 1)
        .unwrap_err();
    assert_eq!(err.code, 404);
}

/// The seeded cluster with the read-only token [`READER`] next to the kubeconfig's.
async fn start_sim_with_reader() -> RunningSim {
    let seed = Seed::from_yaml(SEED).unwrap();
    KubeSim::start(
        SimConfig::default()
            .with_seed(seed)
            .with_read_only_token(READER),
    )
    .await
    .unwrap()
}

/// The read-only token of [`start_sim_with_reader`].
const READER: &str = "watcher-token";

/// A client that presents `token` instead of the kubeconfig's.
fn client_with_token(sim: &RunningSim, token: &str) -> Client {
    let mut config = Config::new(sim.base_url().parse().unwrap());
    config.auth_info.token = Some(token.to_owned().into());
    config.read_timeout = Some(Duration::from_secs(5));
    Client::try_from(config).unwrap()
}

/// The read-only token stands in for a watcher's identity (a Role with get, list and watch):
/// it reads and watches what the full token changes, and every write it tries answers 403
/// and changes nothing.
#[tokio::test]
async fn the_read_only_token_reads_and_watches_but_every_write_is_forbidden() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{WatchEvent, WatchParams};

    let sim = start_sim_with_reader().await;
    let reader = client_with_token(&sim, READER);
    let writer = client_for(&sim).await;
    let pods: Api<Pod> = Api::namespaced(reader.clone(), "production");
    let deployments: Api<Deployment> = Api::namespaced(reader.clone(), "production");

    let listed = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 5, "3 api and 2 worker pods");
    assert_eq!(
        deployments.get("api").await.unwrap().spec.unwrap().replicas,
        Some(3)
    );

    // It watches what the full token changes.
    let version = listed.metadata.resource_version.unwrap();
    let mut events = pods
        .watch(
            &WatchParams::default().labels("app=api").timeout(10),
            &version,
        )
        .await
        .unwrap()
        .boxed();
    let victim = listed
        .items
        .iter()
        .find(|p| {
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("api-"))
        })
        .and_then(|p| p.metadata.name.clone())
        .unwrap();
    Api::<Pod>::namespaced(writer.clone(), "production")
        .delete(&victim, &DeleteParams::background())
        .await
        .unwrap();
    let deleted = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Deleted(pod) => break pod.metadata.name,
            _ => continue,
        }
    };
    assert_eq!(deleted.as_deref(), Some(victim.as_str()));

    // Every write answers 403 and changes nothing.
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "intruder"}})).unwrap();
    let refused = Api::<Namespace>::all(reader.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_err();
    assert_eq!(api_error(refused).code, 403);
    let refused = deployments
        .patch(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 9}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(refused).code, 403);
    let survivor = pods
        .list(&ListParams::default().labels("app=worker"))
        .await
        .unwrap()
        .items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let refused = pods
        .delete(&survivor, &DeleteParams::background())
        .await
        .unwrap_err();
    assert_eq!(api_error(refused).code, 403);
    let admin = http::Request::get("/_sim/requests")
        .body(Vec::new())
        .unwrap();
    let refused = reader.request_text(admin).await.unwrap_err();
    assert_eq!(api_error(refused).code, 403);

    let writer_view: Api<Deployment> = Api::namespaced(writer.clone(), "production");
    assert_eq!(
        writer_view.get("api").await.unwrap().spec.unwrap().replicas,
        Some(3)
    );
    assert!(
        Api::<Pod>::namespaced(writer, "production")
            .get(&survivor)
            .await
            .is_ok()
    );
    let namespaces = Api::<Namespace>::all(reader)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        namespaces
            .items
            .iter()
            .all(|n| n.metadata.name.as_deref() != Some("intruder"))
    );

    // A token that is neither is still unauthenticated.
    let stranger: Api<Pod> = Api::namespaced(client_with_token(&sim, "nope"), "production");
    assert_eq!(
        api_error(stranger.list(&ListParams::default()).await.unwrap_err()).code,
        401
    );
}

/// Leader election through a `coordination.k8s.io/v1` Lease, with the read-only token (a
/// watcher's Role may write leases): create, take over with the current resourceVersion, and
/// a stale write refused with 409, so two candidates cannot both win.
#[tokio::test]
async fn leases_are_written_with_optimistic_concurrency_even_by_the_read_only_token() {
    use k8s_openapi::api::coordination::v1::Lease;

    let sim = start_sim_with_reader().await;
    let leases: Api<Lease> = Api::namespaced(client_with_token(&sim, READER), "production");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "aegis-watcher"},
        "spec": {"holderIdentity": "replica-a", "leaseDurationSeconds": 15}
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let first_version = created.metadata.resource_version.clone().unwrap();
    let refused = leases
        .create(&PostParams::default(), &lease)
        .await
        .unwrap_err();
    assert_eq!(api_error(refused).code, 409, "a second create of one name");

    let mut takeover = created.clone();
    takeover.spec.as_mut().unwrap().holder_identity = Some("replica-b".into());
    let taken = leases
        .replace("aegis-watcher", &PostParams::default(), &takeover)
        .await
        .unwrap();
    assert_ne!(
        taken.metadata.resource_version.as_deref(),
        Some(first_version.as_str())
    );

    // The loser still holds the first version: its write is refused, and the holder stays.
    let mut stale = created;
    stale.spec.as_mut().unwrap().holder_identity = Some("replica-c".into());
    let refused = leases
        .replace("aegis-watcher", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(api_error(refused).code, 409);
    let held = leases.get("aegis-watcher").await.unwrap();
    assert_eq!(
        held.spec.unwrap().holder_identity.as_deref(),
        Some("replica-b")
    );

    let invalid: Lease = serde_json::from_value(json!({
        "metadata": {"name": "broken"},
        "spec": {"leaseDurationSeconds": 0}
    }))
    .unwrap();
    let refused = leases
        .create(&PostParams::default(), &invalid)
        .await
        .unwrap_err();
    assert_eq!(api_error(refused).code, 422);
    assert_eq!(
        leases
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

/// `POST`s `body` to a kube-sim admin endpoint.
async fn admin_post(client: &Client, path: &str, body: serde_json::Value) -> String {
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(body.to_string().into_bytes())
        .unwrap();
    client.request_text(request).await.unwrap()
}

/// `pods/{name}/log` as a watcher reads a crash's evidence: the running container's lines,
/// the last ones with `tailLines`, and after a crash the terminated instance's with
/// `previous=true`; the read-only token may read them.
#[tokio::test]
async fn pod_logs_keep_the_crashed_instance_for_previous_and_honour_tail_lines() {
    use kube::api::LogParams;

    // No kubelet period within the test: the crash below is the only one.
    let sim = start_sim_with_kubelet(Duration::from_secs(60)).await;
    let writer = client_for(&sim).await;
    let pods: Api<Pod> = Api::namespaced(client_with_token(&sim, READER), "production");
    let pod = pods
        .list(&ListParams::default().labels("app=api"))
        .await
        .unwrap()
        .items[0]
        .metadata
        .name
        .clone()
        .unwrap();

    assert_eq!(pods.logs(&pod, &LogParams::default()).await.unwrap(), "");
    let appended = admin_post(
        &writer,
        "/_sim/logs",
        json!({"namespace": "production", "pod": pod, "lines": ["starting", "listening on :8080", "panic: nil map"]}),
    )
    .await;
    assert!(appended.contains("\"appended\":3"), "{appended}");
    assert_eq!(
        pods.logs(&pod, &LogParams::default()).await.unwrap(),
        "starting\nlistening on :8080\npanic: nil map\n"
    );
    let tail = LogParams {
        tail_lines: Some(1),
        ..LogParams::default()
    };
    assert_eq!(pods.logs(&pod, &tail).await.unwrap(), "panic: nil map\n");
    let previous = LogParams {
        previous: true,
        ..LogParams::default()
    };
    let refused = pods.logs(&pod, &previous).await.unwrap_err();
    assert_eq!(
        api_error(refused).code,
        400,
        "no container has terminated yet"
    );

    admin_post(
        &writer,
        "/_sim/crashloop",
        json!({"namespace": "production", "pod": pod, "restarts": 3}),
    )
    .await;
    // The crashed instance's log: what it wrote, then how it ended.
    let crashed = pods.logs(&pod, &previous).await.unwrap();
    assert!(
        crashed.starts_with("starting\nlistening on :8080\npanic: nil map\n"),
        "{crashed}"
    );
    assert!(crashed.contains("exiting with status 1"), "{crashed}");
    assert_eq!(pods.logs(&pod, &LogParams::default()).await.unwrap(), "");

    let wrong = LogParams {
        container: Some("sidecar".into()),
        ..LogParams::default()
    };
    assert_eq!(
        api_error(pods.logs(&pod, &wrong).await.unwrap_err()).code,
        400
    );
    assert_eq!(
        api_error(
            pods.logs("api-gone", &LogParams::default())
                .await
                .unwrap_err()
        )
        .code,
        404
    );
}

/// The seeded cluster with the read-only token [`READER`] and a kubelet period of `period`.
async fn start_sim_with_kubelet(period: Duration) -> RunningSim {
    KubeSim::start(
        SimConfig::default()
            .with_seed(Seed::from_yaml(SEED).unwrap())
            .with_read_only_token(READER)
            .with_kubelet_period(period),
    )
    .await
    .unwrap()
}

/// A kube-sim whose kubelet runs every 50 ms, with one namespace of deployments whose images
/// each misbehave in their own way.
async fn start_misbehaving() -> (RunningSim, Client) {
    let sim = start_sim_with_kubelet(Duration::from_millis(50)).await;
    let client = client_for(&sim).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "production");
    for (name, image, node_selector) in [
        ("crash", "shop/crash:crash", None),
        ("oom", "shop/oom:oom", None),
        ("pull", "shop/pull:missing", None),
        ("unready", "shop/unready:unready", None),
        (
            "pending",
            "shop/pending:1",
            Some(json!({"disktype": "ssd"})),
        ),
    ] {
        let mut spec = json!({"containers": [{"name": "app", "image": image}]});
        if let Some(selector) = node_selector {
            spec["nodeSelector"] = selector;
        }
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
        }))
        .unwrap();
        deployments
            .create(&PostParams::default(), &deployment)
            .await
            .unwrap();
    }
    (sim, client)
}

async fn only_pod(client: &Client, app: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "production");
    let mut list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items;
    assert_eq!(list.len(), 1, "{app}");
    list.remove(0)
}

fn container_status(pod: &Pod) -> serde_json::Value {
    serde_json::to_value(
        &pod.status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0],
    )
    .unwrap()
}

fn condition<'a>(pod: &'a Pod, kind: &str) -> &'a k8s_openapi::api::core::v1::PodCondition {
    pod.status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == kind)
        .unwrap()
}

/// Images crash-loop (with a rising restart count and the crash in the previous instance's
/// log), are OOM-killed, fail to pull or never pass readiness by their tag, a pod whose node
/// selector fits no node stays unschedulable, and each writes the Events the kubelet and the
/// scheduler write.
#[tokio::test]
async fn pods_behave_as_their_image_says_and_the_kubelet_writes_events() {
    use k8s_openapi::api::core::v1::Event;
    use kube::api::LogParams;

    let (sim, client) = start_misbehaving().await;

    let crash = only_pod(&client, "crash").await;
    let first = container_status(&crash);
    assert_eq!(first["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(first["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(first["ready"], false);
    assert_eq!(condition(&crash, "Ready").status, "False");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = container_status(&only_pod(&client, "crash").await);
    assert!(
        later["restartCount"].as_i64().unwrap() > first["restartCount"].as_i64().unwrap(),
        "the restart count rises: {first} then {later}"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "production");
    let name = crash.metadata.name.clone().unwrap();
    let previous = LogParams {
        previous: true,
        ..LogParams::default()
    };
    let log = pods.logs(&name, &previous).await.unwrap();
    assert!(log.contains("exiting with status 1"), "{log}");

    let oom = container_status(&only_pod(&client, "oom").await);
    assert_eq!(oom["lastState"]["terminated"]["reason"], "OOMKilled");
    assert_eq!(oom["lastState"]["terminated"]["exitCode"], 137);
    assert_eq!(oom["state"]["waiting"]["reason"], "CrashLoopBackOff");

    let pull = only_pod(&client, "pull").await;
    assert_eq!(
        pull.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );
    let reason = container_status(&pull)["state"]["waiting"]["reason"].clone();
    assert!(
        reason == "ErrImagePull" || reason == "ImagePullBackOff",
        "{reason}"
    );

    let unready = only_pod(&client, "unready").await;
    assert_eq!(
        unready.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );
    assert_eq!(condition(&unready, "Ready").status, "False");
    assert_eq!(container_status(&unready)["started"], true);

    let pending = only_pod(&client, "pending").await;
    assert_eq!(
        pending.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );
    let scheduled = condition(&pending, "PodScheduled");
    assert_eq!(scheduled.status, "False");
    assert_eq!(scheduled.reason.as_deref(), Some("Unschedulable"));
    assert!(pending.spec.as_ref().unwrap().node_name.is_none());

    let events: Api<Event> = Api::namespaced(client.clone(), "production");
    let all = events.list(&ListParams::default()).await.unwrap().items;
    let about = |pod: &Pod, reason: &str| {
        all.iter()
            .find(|e| {
                e.involved_object.uid == pod.metadata.uid && e.reason.as_deref() == Some(reason)
            })
            .cloned()
    };
    let back_off = about(&crash, "BackOff").expect("a BackOff event for the crash loop");
    assert_eq!(back_off.type_.as_deref(), Some("Warning"));
    assert!(
        back_off.count.unwrap() > 1,
        "repeats are counted: {back_off:?}"
    );
    assert_eq!(
        back_off.involved_object.field_path.as_deref(),
        Some("spec.containers{app}")
    );
    assert!(about(&crash, "Scheduled").is_some());
    assert!(about(&crash, "Started").is_some());
    assert!(about(&pull, "Failed").is_some());
    assert!(about(&unready, "Unhealthy").is_some());
    let failed_scheduling = about(&pending, "FailedScheduling").unwrap();
    assert!(
        failed_scheduling
            .message
            .unwrap()
            .contains("didn't match Pod's node affinity/selector")
    );
    assert!(
        all.iter()
            .any(|e| e.reason.as_deref() == Some("ScalingReplicaSet")
                && e.involved_object.kind.as_deref() == Some("Deployment")),
        "the deployment controller's events"
    );

    // Any image can be made to misbehave through the admin API: a new pod at once, the
    // running ones from the next kubelet period.
    let answer = admin_post(
        &client,
        "/_sim/images",
        json!({"image": "registry.example/worker:1.0.0", "behaviour": "oom"}),
    )
    .await;
    assert!(
        answer.contains("\"registry.example/worker:1.0.0\":\"oom\""),
        "{answer}"
    );
    let workers = || async {
        pods.list(&ListParams::default().labels("app=worker"))
            .await
            .unwrap()
            .items
    };
    let before: Vec<String> = workers()
        .await
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    pods.delete(&before[0], &DeleteParams::default())
        .await
        .unwrap();
    let replacement = workers()
        .await
        .into_iter()
        .find(|p| !before.contains(p.metadata.name.as_ref().unwrap()))
        .unwrap();
    assert_eq!(
        container_status(&replacement)["lastState"]["terminated"]["reason"],
        "OOMKilled"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for pod in workers().await {
        assert_eq!(
            container_status(&pod)["lastState"]["terminated"]["reason"],
            "OOMKilled",
            "{pod:?}"
        );
    }
    let refused = client
        .request_text(
            http::Request::post("/_sim/images")
                .header("content-type", "application/json")
                .body(
                    json!({"image": "x", "behaviour": "explode"})
                        .to_string()
                        .into_bytes(),
                )
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(refused).code, 400);
    sim.shutdown().await;
}

/// A rollout to an image that never becomes available is `ReplicaSetUpdated` until its
/// `progressDeadlineSeconds` pass, then `ProgressDeadlineExceeded`; rolling back completes it.
#[tokio::test]
async fn a_rollout_that_makes_no_progress_exceeds_its_deadline() {
    let sim = start_sim_with_kubelet(Duration::from_millis(100)).await;
    let client = client_for(&sim).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let progressing = |d: &Deployment| {
        d.status
            .as_ref()
            .unwrap()
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Progressing")
            .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
            .unwrap()
    };
    let api = deployments.get("api").await.unwrap();
    assert_eq!(
        progressing(&api),
        ("True".into(), "NewReplicaSetAvailable".into())
    );

    let patch = json!({"spec": {"progressDeadlineSeconds": 1, "template": {"spec": {"containers": [{"name": "api", "image": "registry.example/api:crash"}]}}}});
    deployments
        .patch("api", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let api = deployments.get("api").await.unwrap();
    assert_eq!(
        progressing(&api),
        ("True".into(), "ReplicaSetUpdated".into())
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let api = deployments.get("api").await.unwrap();
        if progressing(&api) == ("False".into(), "ProgressDeadlineExceeded".into()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            progressing(&api)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "registry.example/api:1.0.0"}]}}}});
    deployments
        .patch("api", &PatchParams::default(), &Patch::Strategic(&back))
        .await
        .unwrap();
    let api = deployments.get("api").await.unwrap();
    assert_eq!(
        progressing(&api),
        ("True".into(), "NewReplicaSetAvailable".into())
    );
    assert_eq!(api.status.unwrap().available_replicas, Some(3));
    sim.shutdown().await;
}
