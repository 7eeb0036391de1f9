//! Server-side printing: `meta.k8s.io/v1` `Table` answers for clients that ask for them
//! (`kubectl get` sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`), with the
//! same columns the real API server prints.

use serde_json::{Value, json};

use crate::object;
use crate::resource::Resource;

/// Whether an `Accept` header asks for a `Table`.
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .any(|part| part.contains("as=Table") && part.contains("g=meta.k8s.io"))
    })
}

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query value.
    pub fn parse(value: Option<&str>) -> IncludeObject {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

fn column(name: &str, kind: &str, format: &str, description: &str, priority: u8) -> Value {
    json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority})
}

fn columns(resource: Resource) -> Vec<Value> {
    let name = column(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace.",
        0,
    );
    let age = column(
        "Age",
        "string",
        "",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
        0,
    );
    match resource {
        Resource::Namespace => vec![
            name,
            column("Status", "string", "", "The status of the namespace", 0),
            age,
        ],
        Resource::Event => vec![
            column(
                "Last Seen",
                "string",
                "",
                "When the event was last seen.",
                0,
            ),
            column("Type", "string", "", "Normal or Warning.", 0),
            column("Reason", "string", "", "Why the event was written.", 0),
            column("Object", "string", "", "The object the event is about.", 0),
            column("Message", "string", "", "What happened.", 0),
        ],
        Resource::Lease => vec![
            name,
            column(
                "Holder",
                "string",
                "",
                "HolderIdentity contains the identity of the holder of a current lease.",
                0,
            ),
            age,
        ],
        Resource::Pod => vec![
            name,
            column(
                "Ready",
                "string",
                "",
                "The aggregate readiness state of this pod for accepting traffic.",
                0,
            ),
            column(
                "Status",
                "string",
                "",
                "The aggregate status of the containers in this pod.",
                0,
            ),
            column(
                "Restarts",
                "string",
                "",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                0,
            ),
            age,
            column(
                "IP",
                "string",
                "",
                "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
                1,
            ),
            column(
                "Node",
                "string",
                "",
                "NodeName is a request to schedule this pod onto a specific node.",
                1,
            ),
            column(
                "Nominated Node",
                "string",
                "",
                "nominatedNodeName is set only when this pod preempts other pods on the node.",
                1,
            ),
            column(
                "Readiness Gates",
                "string",
                "",
                "If specified, all readiness gates will be evaluated for pod readiness.",
                1,
            ),
        ],
        Resource::Deployment => vec![
            name,
            column(
                "Ready",
                "string",
                "",
                "Number of the pod with ready state",
                0,
            ),
            column(
                "Up-to-date",
                "string",
                "",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                0,
            ),
            column(
                "Available",
                "string",
                "",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                0,
            ),
            age,
            column(
                "Containers",
                "string",
                "",
                "Names of each container in the template.",
                1,
            ),
            column(
                "Images",
                "string",
                "",
                "Images referenced by each container in the template.",
                1,
            ),
            column("Selector", "string", "", "Label selector for pods.", 1),
        ],
        Resource::ReplicaSet => vec![
            name,
            column(
                "Desired",
                "integer",
                "",
                "Replicas is the number of desired replicas.",
                0,
            ),
            column(
                "Current",
                "integer",
                "",
                "Replicas is the most recently observed number of replicas.",
                0,
            ),
            column(
                "Ready",
                "integer",
                "",
                "The number of ready replicas for this replica set.",
                0,
            ),
            age,
            column(
                "Containers",
                "string",
                "",
                "Names of each container in the template.",
                1,
            ),
            column(
                "Images",
                "string",
                "",
                "Images referenced by each container in the template.",
                1,
            ),
            column(
                "Selector",
                "string",
                "",
                "Selector is a label query over pods that should match the replica count.",
                1,
            ),
        ],
    }
}

/// Kubernetes' `HumanDuration` for the AGE column.
pub fn human_age(created: Option<&str>) -> String {
    let Some(created) = created.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()) else {
        return "<unknown>".to_owned();
    };
    let seconds = (chrono::Utc::now() - created.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    let minutes = seconds / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        }
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 192 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else {
        format!("{days}d")
    }
}

fn template_containers(obj: &Value) -> (String, String) {
    let containers = obj
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let join = |key: &str| {
        containers
            .iter()
            .filter_map(|c| c.get(key).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(",")
    };
    (join("name"), join("image"))
}

fn int(obj: &Value, pointer: &str) -> i64 {
    object::int_at(obj, pointer).unwrap_or(0)
}

fn cells(resource: Resource, obj: &Value) -> Vec<Value> {
    let name = json!(object::name(obj));
    let age = json!(human_age(object::meta_str(obj, "creationTimestamp")));
    let selector = crate::selector::match_labels_string(&object::string_map(
        obj.pointer("/spec/selector/matchLabels"),
    ));
    match resource {
        Resource::Event => {
            let text = |pointer: &str| obj.pointer(pointer).and_then(Value::as_str).unwrap_or("");
            let involved = format!(
                "{}/{}",
                text("/involvedObject/kind").to_ascii_lowercase(),
                text("/involvedObject/name")
            );
            vec![
                json!(human_age(
                    obj.get("lastTimestamp")
                        .and_then(Value::as_str)
                        .or_else(|| object::meta_str(obj, "creationTimestamp"))
                )),
                json!(text("/type")),
                json!(text("/reason")),
                json!(involved),
                json!(text("/message")),
            ]
        }
        Resource::Lease => vec![
            name,
            json!(
                obj.pointer("/spec/holderIdentity")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            ),
            age,
        ],
        Resource::Namespace => vec![
            name,
            json!(
                obj.pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("Active")
            ),
            age,
        ],
        Resource::Pod => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|s| s.get("ready") == Some(&json!(true)))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|s| s.get("restartCount").and_then(Value::as_i64))
                .sum();
            let status = if object::meta_str(obj, "deletionTimestamp").is_some() {
                "Terminating"
            } else {
                obj.pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("Pending")
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(status),
                json!(restarts.to_string()),
                age,
                json!(
                    obj.pointer("/status/podIP")
                        .and_then(Value::as_str)
                        .unwrap_or("<none>")
                ),
                json!(
                    obj.pointer("/spec/nodeName")
                        .and_then(Value::as_str)
                        .unwrap_or("<none>")
                ),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        Resource::Deployment => {
            let (containers, images) = template_containers(obj);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int(obj, "/status/readyReplicas"),
                    object::int_at(obj, "/spec/replicas").unwrap_or(1)
                )),
                json!(int(obj, "/status/updatedReplicas")),
                json!(int(obj, "/status/availableReplicas")),
                age,
                json!(containers),
                json!(images),
                json!(selector),
            ]
        }
        Resource::ReplicaSet => {
            let (containers, images) = template_containers(obj);
            vec![
                name,
                json!(int(obj, "/spec/replicas")),
                json!(int(obj, "/status/replicas")),
                json!(int(obj, "/status/readyReplicas")),
                age,
                json!(containers),
                json!(images),
                json!(selector),
            ]
        }
    }
}

fn row(resource: Resource, obj: &Value, include: IncludeObject) -> Value {
    let mut row = json!({"cells": cells(resource, obj)});
    let object = match include {
        IncludeObject::None => None,
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })),
        IncludeObject::Object => Some(obj.clone()),
    };
    if let (Some(object), Some(map)) = (object, row.as_object_mut()) {
        map.insert("object".into(), object);
    }
    row
}

/// A `Table` for one object or for a `<Kind>List`.
pub fn to_table(resource: Resource, value: &Value, include: IncludeObject) -> Value {
    let (items, resource_version) = match value.get("items").and_then(Value::as_array) {
        Some(items) => (
            items.clone(),
            value
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        ),
        None => (
            vec![value.clone()],
            value
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        ),
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns(resource),
        "rows": items.iter().map(|o| row(resource, o, include)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_headers_ask_for_tables() {
        assert!(wants_table(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        )));
        assert!(!wants_table(Some("application/json")));
        assert!(!wants_table(None));
    }

    #[test]
    fn a_deployment_row_shows_ready_over_desired() {
        let deploy = json!({
            "metadata": {"name": "api", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        let table = to_table(Resource::Deployment, &deploy, IncludeObject::Metadata);
        assert_eq!(table["rows"][0]["cells"][1], json!("2/3"));
        assert_eq!(table["rows"][0]["object"]["metadata"]["name"], json!("api"));
        assert!(
            table["rows"][0]["cells"][4]
                .as_str()
                .unwrap()
                .ends_with('d')
        );
    }
}
