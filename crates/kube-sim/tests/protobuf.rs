//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), sent through kube-rs with
//! objects encoded by the `k8s-pb` crate the way client-go encodes them: Go writes every
//! non-pointer field, so empty strings, zero numbers and empty times arrive set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use http::Method;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString as OpenApiIntOrString;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::autoscaling::v1 as autoscaling;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, Config};
use kube_sim::{KubeSim, RunningSim, Seed, SimConfig};
use prost::Message as _;
use serde_json::{Value, json};

const SEED: &str = "
namespaces:
  - name: production
    deployments:
      - name: api
        replicas: 3
        image: registry.example/api:1.0.0
        container: api
        labels: { app: api }
";

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

async fn start() -> (RunningSim, Client) {
    let seed = Seed::from_yaml(SEED).unwrap();
    let sim = KubeSim::start(SimConfig::default().with_seed(seed))
        .await
        .unwrap();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    (sim, Client::try_from(config).unwrap())
}

/// The body client-go sends: `k8s\0`, then a `runtime.Unknown` holding the object.
fn envelope(api_version: &str, kind: &str, object: &impl prost::Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    unknown.encode(&mut body).unwrap();
    body
}

async fn send(
    client: &Client,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<Value, kube::Error> {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, PROTOBUF)
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .unwrap();
    client.request::<Value>(request).await
}

fn status_code(result: Result<Value, kube::Error>) -> u16 {
    match result {
        Err(kube::Error::Api(response)) => response.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn text(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// Metadata as Go writes it for a new object: every string present, mostly empty.
fn new_metadata(name: &str, labels: &[(&str, &str)]) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: text(name),
        generate_name: text(""),
        namespace: text(""),
        self_link: text(""),
        uid: text(""),
        resource_version: text(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

fn quantity(value: &str) -> Quantity {
    Quantity {
        string: text(value),
    }
}

fn web_container(image: &str) -> core::Container {
    core::Container {
        name: text("web"),
        image: text(image),
        working_dir: text(""),
        ports: vec![core::ContainerPort {
            name: text("http"),
            container_port: Some(8080),
            protocol: text("TCP"),
            ..Default::default()
        }],
        resources: Some(core::ResourceRequirements {
            limits: BTreeMap::from([
                ("cpu".to_owned(), quantity("500m")),
                ("memory".to_owned(), quantity("256Mi")),
            ]),
            ..Default::default()
        }),
        env: vec![core::EnvVar {
            name: text("TOKEN"),
            value: text(""),
            value_from: Some(core::EnvVarSource {
                secret_key_ref: Some(core::SecretKeySelector {
                    local_object_reference: Some(core::LocalObjectReference {
                        name: text("web-secret"),
                    }),
                    key: text("token"),
                    optional: None,
                }),
                ..Default::default()
            }),
        }],
        volume_mounts: vec![core::VolumeMount {
            name: text("config"),
            mount_path: text("/etc/web"),
            ..Default::default()
        }],
        readiness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: text("/healthz"),
                    port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: text("http"),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_pod_sent_as_protobuf_is_stored_like_the_same_pod_sent_as_json() {
    let (_sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "production");
    let pod = core::Pod {
        metadata: Some(new_metadata("web-0", &[("app", "web"), ("empty", "")])),
        spec: Some(core::PodSpec {
            containers: vec![web_container("nginx:1.27")],
            volumes: vec![core::Volume {
                name: text("config"),
                volume_source: Some(core::VolumeSource {
                    config_map: Some(core::ConfigMapVolumeSource {
                        local_object_reference: Some(core::LocalObjectReference {
                            name: text("web-config"),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }],
            termination_grace_period_seconds: Some(0),
            ..Default::default()
        }),
        status: Some(core::PodStatus::default()),
    };
    send(
        &client,
        Method::POST,
        "/api/v1/namespaces/production/pods",
        envelope("v1", "Pod", &pod),
    )
    .await
    .unwrap();

    let stored = pods.get("web-0").await.unwrap();
    let labels = stored.metadata.labels.clone().unwrap();
    assert_eq!(labels["app"], "web");
    assert_eq!(labels["empty"], "", "an empty label value is a value");
    assert!(!stored.metadata.uid.clone().unwrap().is_empty());
    assert!(stored.metadata.creation_timestamp.is_some());
    let spec = stored.spec.clone().unwrap();
    assert_eq!(spec.termination_grace_period_seconds, Some(0));
    let container = &spec.containers[0];
    assert_eq!(container.working_dir, None, "Go's empty string is unset");
    let limits = container.resources.clone().unwrap().limits.unwrap();
    assert_eq!(limits["cpu"].0, "500m");
    assert_eq!(limits["memory"].0, "256Mi");
    let probe = container.readiness_probe.clone().unwrap();
    assert_eq!(
        probe.http_get.unwrap().port,
        OpenApiIntOrString::String("http".into())
    );
    let secret = container.env.clone().unwrap()[0]
        .value_from
        .clone()
        .unwrap();
    assert_eq!(secret.secret_key_ref.unwrap().name, "web-secret");
    let volume = spec.volumes.clone().unwrap()[0].clone();
    assert_eq!(volume.config_map.unwrap().name, "web-config");

    // The same pod as JSON.
    let json_pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web-1", "labels": {"app": "web", "empty": ""}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}}],
            "containers": [{
                "name": "web",
                "image": "nginx:1.27",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "web-secret", "key": "token"}}}],
                "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5}
            }]
        }
    }))
    .unwrap();
    let from_json = pods
        .create(&PostParams::default(), &json_pod)
        .await
        .unwrap();
    assert_eq!(from_json.spec, stored.spec);
    assert_eq!(from_json.metadata.labels, stored.metadata.labels);
}

#[tokio::test]
async fn a_deployment_is_created_replaced_scaled_and_deleted_with_protobuf_bodies() {
    let (_sim, client) = start().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let collection = "/apis/apps/v1/namespaces/production/deployments";
    let deployment = |image: &str, replicas: i32, resource_version: &str| apps::Deployment {
        metadata: Some(meta::ObjectMeta {
            resource_version: text(resource_version),
            ..new_metadata("web", &[("app", "web")])
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(replicas),
            selector: Some(meta::LabelSelector {
                match_labels: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(new_metadata("", &[("app", "web")])),
                spec: Some(core::PodSpec {
                    containers: vec![web_container(image)],
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy::default()),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus::default()),
    };

    let created = send(
        &client,
        Method::POST,
        collection,
        envelope("apps/v1", "Deployment", &deployment("nginx:1.27", 2, "")),
    )
    .await
    .unwrap();
    assert_eq!(created["kind"], "Deployment");
    assert_eq!(created["spec"]["replicas"], 2);

    // Replace: a new image and replica count, at the stored resource version.
    let current = deployments.get("web").await.unwrap();
    let version = current.metadata.resource_version.unwrap();
    send(
        &client,
        Method::PUT,
        &format!("{collection}/web"),
        envelope(
            "apps/v1",
            "Deployment",
            &deployment("nginx:1.28", 4, &version),
        ),
    )
    .await
    .unwrap();
    let replaced = deployments.get("web").await.unwrap();
    let spec = replaced.spec.unwrap();
    assert_eq!(spec.replicas, Some(4));
    let image = spec.template.spec.unwrap().containers[0].image.clone();
    assert_eq!(image.as_deref(), Some("nginx:1.28"));

    // A stale resource version conflicts, as it does in JSON.
    let stale = send(
        &client,
        Method::PUT,
        &format!("{collection}/web"),
        envelope(
            "apps/v1",
            "Deployment",
            &deployment("nginx:1.29", 4, &version),
        ),
    )
    .await;
    assert_eq!(status_code(stale), 409);

    // The scale subresource.
    let scale = autoscaling::Scale {
        metadata: Some(meta::ObjectMeta {
            namespace: text("production"),
            ..new_metadata("web", &[])
        }),
        spec: Some(autoscaling::ScaleSpec { replicas: Some(1) }),
        status: Some(autoscaling::ScaleStatus::default()),
    };
    send(
        &client,
        Method::PUT,
        &format!("{collection}/web/scale"),
        envelope("autoscaling/v1", "Scale", &scale),
    )
    .await
    .unwrap();
    let scaled = deployments.get("web").await.unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(1));

    // Delete with protobuf DeleteOptions that orphan the replicasets.
    let options = meta::DeleteOptions {
        propagation_policy: text("Orphan"),
        ..Default::default()
    };
    send(
        &client,
        Method::DELETE,
        &format!("{collection}/web"),
        envelope("v1", "DeleteOptions", &options),
    )
    .await
    .unwrap();
    assert!(deployments.get_opt("web").await.unwrap().is_none());
    let replicasets: Api<ReplicaSet> = Api::namespaced(client, "production");
    let orphans = replicasets
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert!(!orphans.items.is_empty(), "Orphan kept the replicasets");
}

#[tokio::test]
async fn malformed_protobuf_bodies_are_refused_with_a_4xx_and_change_nothing() {
    let (_sim, client) = start().await;
    let pods_path = "/api/v1/namespaces/production/pods";
    let pod = |metadata: meta::ObjectMeta| core::Pod {
        metadata: Some(metadata),
        spec: Some(core::PodSpec {
            containers: vec![web_container("nginx:1.27")],
            ..Default::default()
        }),
        status: None,
    };
    let valid = envelope("v1", "Pod", &pod(new_metadata("ok", &[])));

    let mut cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("an empty body", Vec::new(), 400),
        ("JSON sent as protobuf", br#"{"kind":"Pod"}"#.to_vec(), 400),
        ("no magic prefix", valid[4..].to_vec(), 400),
        ("a cut-off envelope", valid[..valid.len() / 2].to_vec(), 400),
        (
            "a kind kube-sim does not serve",
            envelope("v1", "ConfigMap", &core::ConfigMap::default()),
            415,
        ),
        (
            "a time out of range",
            envelope(
                "v1",
                "Pod",
                &pod(meta::ObjectMeta {
                    creation_timestamp: Some(meta::Time {
                        seconds: Some(i64::MAX),
                        nanos: Some(0),
                    }),
                    ..new_metadata("far-future", &[])
                }),
            ),
            400,
        ),
        (
            "managed fields that are not JSON",
            envelope(
                "v1",
                "Pod",
                &pod(meta::ObjectMeta {
                    managed_fields: vec![meta::ManagedFieldsEntry {
                        fields_v1: Some(meta::FieldsV1 {
                            raw: Some(b"{not json".to_vec()),
                        }),
                        ..Default::default()
                    }],
                    ..new_metadata("bad-fields", &[])
                }),
            ),
            400,
        ),
    ];
    // The valid envelope with one change.
    let altered = |change: &dyn Fn(&mut Unknown)| {
        let mut unknown = Unknown::decode(&valid[4..]).unwrap();
        change(&mut unknown);
        let mut body = b"k8s\0".to_vec();
        unknown.encode(&mut body).unwrap();
        body
    };
    let gzip = altered(&|u| u.content_encoding = text("gzip"));
    cases.push(("a content encoding", gzip, 400));
    let cut_object = altered(&|u| {
        let raw = u.raw.take().unwrap();
        u.raw = Some(raw[..raw.len() - 3].to_vec());
    });
    cases.push(("a cut-off object", cut_object, 400));

    for (case, body, expected) in cases {
        let code = status_code(send(&client, Method::POST, pods_path, body).await);
        assert_eq!(code, expected, "{case}");
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "production");
    let names: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(names.len(), 3, "only the seeded pods: {names:?}");

    // The valid body itself is accepted.
    send(&client, Method::POST, pods_path, valid).await.unwrap();
    assert!(pods.get_opt("ok").await.unwrap().is_some());
}
