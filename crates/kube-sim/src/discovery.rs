//! Discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/apps/v1`) and `/version`.
//!
//! Only the legacy (unaggregated) format is served: kubectl asks for aggregated discovery
//! first and falls back to this when the response's content type is plain `application/json`.

use serde_json::{Value, json};

use crate::resource::Resource;

const ALL_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `GET /api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn apps_group() -> Value {
    json!({
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    })
}

fn coordination_group() -> Value {
    json!({
        "name": "coordination.k8s.io",
        "versions": [{"groupVersion": "coordination.k8s.io/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "coordination.k8s.io/v1", "version": "v1"},
    })
}

/// `GET /apis`.
pub fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [apps_group(), coordination_group()],
    })
}

/// `GET /apis/coordination.k8s.io`.
pub fn coordination_api_group() -> Value {
    let mut group = coordination_group();
    if let Some(map) = group.as_object_mut() {
        map.insert("kind".into(), json!("APIGroup"));
        map.insert("apiVersion".into(), json!("v1"));
    }
    group
}

/// `GET /apis/coordination.k8s.io/v1`.
pub fn coordination_v1_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "coordination.k8s.io/v1",
        "resources": [resource_entry(Resource::Lease)],
    })
}

/// `GET /apis/apps`.
pub fn apps_api_group() -> Value {
    let mut group = apps_group();
    if let Some(map) = group.as_object_mut() {
        map.insert("kind".into(), json!("APIGroup"));
        map.insert("apiVersion".into(), json!("v1"));
    }
    group
}

fn resource_entry(resource: Resource) -> Value {
    let mut entry = json!({
        "name": resource.plural(),
        "singularName": resource.singular(),
        "namespaced": resource.namespaced(),
        "kind": resource.kind(),
        "verbs": ALL_VERBS,
        "shortNames": resource.short_names(),
    });
    // `kubectl get all` lists workloads, never namespaces, leases or events.
    if matches!(
        resource,
        Resource::Pod | Resource::Deployment | Resource::ReplicaSet
    ) && let Some(map) = entry.as_object_mut()
    {
        map.insert("categories".into(), json!(["all"]));
    }
    entry
}

fn subresource(resource: Resource, sub: &str) -> Value {
    let mut entry = json!({
        "name": format!("{}/{sub}", resource.plural()),
        "singularName": "",
        "namespaced": resource.namespaced(),
        "kind": resource.kind(),
        "verbs": if sub == "log" { json!(["get"]) } else { json!(["get", "patch", "update"]) },
    });
    if sub == "scale"
        && let Some(map) = entry.as_object_mut()
    {
        map.insert("group".into(), json!("autoscaling"));
        map.insert("version".into(), json!("v1"));
        map.insert("kind".into(), json!("Scale"));
    }
    entry
}

/// `GET /api/v1`.
pub fn core_v1_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            resource_entry(Resource::Namespace),
            subresource(Resource::Namespace, "status"),
            resource_entry(Resource::Pod),
            subresource(Resource::Pod, "status"),
            subresource(Resource::Pod, "log"),
            resource_entry(Resource::Event),
        ],
    })
}

/// `GET /apis/apps/v1`.
pub fn apps_v1_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apps/v1",
        "resources": [
            resource_entry(Resource::Deployment),
            subresource(Resource::Deployment, "scale"),
            subresource(Resource::Deployment, "status"),
            resource_entry(Resource::ReplicaSet),
            subresource(Resource::ReplicaSet, "scale"),
            subresource(Resource::ReplicaSet, "status"),
        ],
    })
}

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-kube-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}
