//! The built-in controllers: deployment → replicasets (one per pod-template revision),
//! replicaset → pods, a "kubelet" that marks pods Running and Ready at once, and the garbage
//! collector that removes objects whose owners are gone. Everything runs synchronously over the
//! [`Store`] after each write, so tests see a settled cluster as soon as a call returns.

use rand::Rng;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::object::{self, now_timestamp};
use crate::resource::Resource;
use crate::selector::LabelSelector;
use crate::store::Store;

/// Deployment and replicaset annotation holding the rollout revision.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Replicaset annotation listing earlier revisions it held (after a rollback).
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// Annotation kubectl shows as CHANGE-CAUSE in `rollout history`.
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";
/// Label carrying the pod-template hash on replicasets and their pods.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// The alphabet Kubernetes uses for generated name suffixes (no vowels, no confusable digits).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A random suffix of `len` characters, as used in generated pod names.
pub fn random_suffix(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| {
            let i = rng.random_range(0..ALPHANUMS.len());
            char::from(ALPHANUMS.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

/// A normal form for comparing and hashing: object keys sorted and null fields dropped, so
/// `creationTimestamp: null` (which Go clients send in templates) equals an absent field.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                if let Some(v) = map.get(key).filter(|v| !v.is_null()) {
                    out.insert(key.clone(), canonical(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A pod template with the `pod-template-hash` label removed (and an empty label map dropped).
pub fn template_without_hash(template: &Value) -> Value {
    let mut copy = template.clone();
    if let Some(Value::Object(labels)) = copy.pointer_mut("/metadata/labels") {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    copy
}

/// Whether two pod templates are equal ignoring the hash label (Kubernetes' `EqualIgnoreHash`).
pub fn templates_equal(a: &Value, b: &Value) -> bool {
    canonical(&template_without_hash(a)) == canonical(&template_without_hash(b))
}

/// The `pod-template-hash` of a pod template: a short, stable, DNS-safe string.
pub fn pod_template_hash(template: &Value) -> String {
    let canonical = canonical(&template_without_hash(template)).to_string();
    let digest = Sha256::digest(canonical.as_bytes());
    let mut first = [0u8; 4];
    for (slot, byte) in first.iter_mut().zip(digest.iter()) {
        *slot = *byte;
    }
    let number = u32::from_be_bytes(first).to_string();
    // Same encoding as Kubernetes' rand.SafeEncodeString over the decimal hash.
    number
        .bytes()
        .map(|b| {
            let i = usize::from(b) % ALPHANUMS.len();
            char::from(ALPHANUMS.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

/// The revision annotation as a number (0 when missing or malformed).
pub fn revision(obj: &Value) -> u64 {
    object::annotation(obj, REVISION_ANNOTATION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn desired_replicas(obj: &Value) -> i64 {
    object::int_at(obj, "/spec/replicas").unwrap_or(1).max(0)
}

/// Runs every controller until the cluster is settled.
pub fn reconcile(store: &mut Store) {
    garbage_collect(store);
    let deployments: Vec<Value> = store
        .list(Resource::Deployment, None)
        .into_iter()
        .cloned()
        .collect();
    for deployment in &deployments {
        reconcile_deployment(store, deployment);
    }
    let replicasets: Vec<Value> = store
        .list(Resource::ReplicaSet, None)
        .into_iter()
        .cloned()
        .collect();
    for rs in &replicasets {
        reconcile_replicaset(store, rs);
    }
    run_kubelet(store);
    let replicasets: Vec<Value> = store
        .list(Resource::ReplicaSet, None)
        .into_iter()
        .cloned()
        .collect();
    for rs in &replicasets {
        update_replicaset_status(store, rs);
    }
    let deployments: Vec<Value> = store
        .list(Resource::Deployment, None)
        .into_iter()
        .cloned()
        .collect();
    for deployment in &deployments {
        update_deployment_status(store, deployment);
    }
}

/// Runs the controllers after a write to one object. Controllers act only along controller
/// chains (deployment → replicasets → pods) and the store is settled before every write, so
/// only the written object's family can be unsettled: after the garbage collector, that family
/// is reconciled in the same order as [`reconcile`] (the kubelet still looks at every pod, which
/// is a cheap filter). A chain that does not resolve, such as an owner reference whose owner is
/// gone or has another UID, falls back to reconciling the whole store.
pub fn reconcile_after_write(store: &mut Store, resource: Resource, written: &Value) {
    garbage_collect(store);
    let namespace = object::namespace(written).to_owned();
    match family_root(store, resource, written) {
        Some(Family::Deployment(name)) => {
            let Some(deployment) = store.get(Resource::Deployment, &namespace, &name).cloned()
            else {
                return reconcile(store);
            };
            let uid = object::uid(&deployment).to_owned();
            reconcile_deployment(store, &deployment);
            for rs in owned_by(store, Resource::ReplicaSet, &namespace, &uid) {
                reconcile_replicaset(store, &rs);
            }
            run_kubelet(store);
            for rs in owned_by(store, Resource::ReplicaSet, &namespace, &uid) {
                update_replicaset_status(store, &rs);
            }
            update_deployment_status(store, &deployment);
        }
        Some(Family::ReplicaSet(name)) => {
            let Some(rs) = store.get(Resource::ReplicaSet, &namespace, &name).cloned() else {
                return reconcile(store);
            };
            reconcile_replicaset(store, &rs);
            run_kubelet(store);
            update_replicaset_status(store, &rs);
        }
        Some(Family::Standalone) => run_kubelet(store),
        None => reconcile(store),
    }
}

/// The object at the top of a written object's controller chain.
enum Family {
    /// A deployment: it, its replicasets and their pods.
    Deployment(String),
    /// A replicaset no deployment controls, and its pods.
    ReplicaSet(String),
    /// A namespace or a pod no replicaset controls: only the kubelet has work.
    Standalone,
}

/// Walks controller references up from `obj` (pod → replicaset → deployment). `None` when an
/// owner reference does not resolve to a stored object with its UID, or the chain is deeper
/// than Kubernetes' own controllers make it.
fn family_root(store: &Store, resource: Resource, obj: &Value) -> Option<Family> {
    let namespace = object::namespace(obj);
    let mut current = (resource, obj);
    for _ in 0..3 {
        let (kind, object) = current;
        let mut controller = None;
        for reference in object::owner_references(object) {
            let owner_kind = match reference.get("kind").and_then(Value::as_str) {
                Some("Deployment") => Resource::Deployment,
                Some("ReplicaSet") => Resource::ReplicaSet,
                _ => return None,
            };
            let name = reference.get("name").and_then(Value::as_str)?;
            let owner = store.get(owner_kind, namespace, name)?;
            if reference.get("uid").and_then(Value::as_str) != Some(object::uid(owner)) {
                return None;
            }
            if reference.get("controller").and_then(Value::as_bool) == Some(true) {
                controller = Some((owner_kind, owner));
            }
        }
        match controller {
            Some(owner) => current = owner,
            None => {
                let name = object::name(object).to_owned();
                return match kind {
                    Resource::Deployment => Some(Family::Deployment(name)),
                    Resource::ReplicaSet => Some(Family::ReplicaSet(name)),
                    Resource::Pod | Resource::Namespace => Some(Family::Standalone),
                };
            }
        }
    }
    None
}

/// Removes replicasets and pods all of whose owners are gone (background cascading deletion).
/// Runs only when the store says an orphan may exist (something was removed, or an object
/// names an owner that is not stored), and then passes until a pass removes nothing, so the
/// collection cascades. Each pass checks every owner reference against the store's UID index.
fn garbage_collect(store: &mut Store) {
    while store.take_orphans_possible() {
        collect_orphans(store);
    }
}

fn collect_orphans(store: &mut Store) {
    for resource in [Resource::ReplicaSet, Resource::Pod] {
        let orphans: Vec<(String, String)> = {
            store
                .list(resource, None)
                .into_iter()
                .filter(|obj| {
                    let owners = object::owner_references(obj);
                    !owners.is_empty()
                        && owners.iter().all(|r| {
                            r.get("uid")
                                .and_then(Value::as_str)
                                .is_none_or(|uid| !store.has_uid(uid))
                        })
                })
                .map(|obj| {
                    (
                        object::namespace(obj).to_owned(),
                        object::name(obj).to_owned(),
                    )
                })
                .collect()
        };
        for (ns, name) in orphans {
            store.remove(resource, &ns, &name);
        }
    }
}

/// Objects controlled by the object with this UID, ordered by revision.
fn owned_by(store: &Store, resource: Resource, namespace: &str, owner_uid: &str) -> Vec<Value> {
    let mut owned: Vec<Value> = store
        .controlled_by(resource, namespace, owner_uid)
        .into_iter()
        .cloned()
        .collect();
    owned.sort_by_key(revision);
    owned
}

/// The replicaset a deployment currently rolls to: the one whose template matches, or (when
/// paused) the newest.
fn current_replicaset<'a>(deployment: &Value, owned: &'a [Value]) -> Option<&'a Value> {
    let template = deployment.pointer("/spec/template")?;
    owned
        .iter()
        .find(|rs| {
            rs.pointer("/spec/template")
                .is_some_and(|t| templates_equal(t, template))
        })
        .or_else(|| {
            if deployment.pointer("/spec/paused") == Some(&json!(true)) {
                owned.iter().max_by_key(|rs| revision(rs))
            } else {
                None
            }
        })
}

fn reconcile_deployment(store: &mut Store, deployment: &Value) {
    let ns = object::namespace(deployment).to_owned();
    let uid = object::uid(deployment).to_owned();
    let Some(template) = deployment.pointer("/spec/template").cloned() else {
        return;
    };
    let replicas = desired_replicas(deployment);
    let owned = owned_by(store, Resource::ReplicaSet, &ns, &uid);
    let max_revision = owned.iter().map(revision).max().unwrap_or(0);

    let mut new_rs = match current_replicaset(deployment, &owned) {
        Some(rs) => {
            let mut rs = rs.clone();
            let old = revision(&rs);
            if old < max_revision {
                // A rollback to an older template: the RS takes the next revision number and
                // remembers the one it had.
                let history = match object::annotation(&rs, REVISION_HISTORY_ANNOTATION) {
                    Some(h) if !h.is_empty() => format!("{h},{old}"),
                    _ => old.to_string(),
                };
                object::set_annotation(&mut rs, REVISION_HISTORY_ANNOTATION, &history);
                object::set_annotation(
                    &mut rs,
                    REVISION_ANNOTATION,
                    &(max_revision + 1).to_string(),
                );
            }
            rs
        }
        None => new_replicaset(store, deployment, &template, max_revision + 1),
    };
    if let Some(spec) = new_rs.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(replicas));
    }
    object::set_annotation(
        &mut new_rs,
        "deployment.kubernetes.io/desired-replicas",
        &replicas.to_string(),
    );
    object::set_annotation(
        &mut new_rs,
        "deployment.kubernetes.io/max-replicas",
        &(replicas + max_surge(replicas)).to_string(),
    );
    if let Some(cause) = object::annotation(deployment, CHANGE_CAUSE_ANNOTATION) {
        let cause = cause.to_owned();
        object::set_annotation(&mut new_rs, CHANGE_CAUSE_ANNOTATION, &cause);
    }
    let new_name = object::name(&new_rs).to_owned();
    let new_revision = revision(&new_rs);
    store.put_if_changed(Resource::ReplicaSet, new_rs);

    // Old replicasets are scaled to zero; history beyond revisionHistoryLimit is pruned.
    let history_limit = object::int_at(deployment, "/spec/revisionHistoryLimit").unwrap_or(10);
    let mut old: Vec<Value> = owned
        .into_iter()
        .filter(|rs| object::name(rs) != new_name)
        .collect();
    old.sort_by_key(revision);
    let excess = old
        .len()
        .saturating_sub(usize::try_from(history_limit).unwrap_or(0));
    for (i, mut rs) in old.into_iter().enumerate() {
        if i < excess {
            store.remove(Resource::ReplicaSet, &ns, object::name(&rs));
            continue;
        }
        if let Some(spec) = rs.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("replicas".into(), json!(0));
        }
        store.put_if_changed(Resource::ReplicaSet, rs);
    }

    if let Some(current) = store
        .get(Resource::Deployment, &ns, object::name(deployment))
        .cloned()
    {
        let mut updated = current;
        object::set_annotation(&mut updated, REVISION_ANNOTATION, &new_revision.to_string());
        store.put_if_changed(Resource::Deployment, updated);
    }
}

/// 25% of replicas rounded up: the default `maxSurge`.
fn max_surge(replicas: i64) -> i64 {
    (replicas + 3) / 4
}

fn new_replicaset(store: &Store, deployment: &Value, template: &Value, revision: u64) -> Value {
    let ns = object::namespace(deployment);
    let hash = pod_template_hash(template);
    let mut name = format!("{}-{hash}", object::name(deployment));
    while store.get(Resource::ReplicaSet, ns, &name).is_some() {
        name = format!("{}-{hash}{}", object::name(deployment), random_suffix(2));
    }
    let mut template = template.clone();
    object::set_label(&mut template, POD_TEMPLATE_HASH_LABEL, &hash);
    let mut labels = Map::new();
    if let Some(Value::Object(template_labels)) = template.pointer("/metadata/labels") {
        labels.extend(template_labels.clone());
    }
    let mut match_labels = Map::new();
    if let Some(Value::Object(ml)) = deployment.pointer("/spec/selector/matchLabels") {
        match_labels.extend(ml.clone());
    }
    match_labels.insert(POD_TEMPLATE_HASH_LABEL.into(), json!(hash));
    let mut selector = deployment
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(sel) = selector.as_object_mut() {
        sel.insert("matchLabels".into(), Value::Object(match_labels));
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": object::new_uid(),
            "generation": 1,
            "creationTimestamp": now_timestamp(),
            "labels": labels,
            "annotations": { REVISION_ANNOTATION: revision.to_string() },
            "ownerReferences": [object::controller_ref(deployment)],
        },
        "spec": {
            "replicas": 0,
            "minReadySeconds": object::int_at(deployment, "/spec/minReadySeconds").unwrap_or(0),
            "selector": selector,
            "template": template,
        },
        "status": { "replicas": 0, "observedGeneration": 1 },
    })
}

fn reconcile_replicaset(store: &mut Store, rs: &Value) {
    let ns = object::namespace(rs).to_owned();
    let uid = object::uid(rs).to_owned();
    let desired = usize::try_from(desired_replicas(rs)).unwrap_or(0);
    // Oldest first: (creation, resourceVersion, name).
    let mut pods: Vec<(String, u64, String)> = store
        .controlled_by(Resource::Pod, &ns, &uid)
        .into_iter()
        .map(|p| {
            (
                object::meta_str(p, "creationTimestamp")
                    .unwrap_or("")
                    .to_owned(),
                object::resource_version(p)
                    .and_then(|r| r.parse::<u64>().ok())
                    .unwrap_or(0),
                object::name(p).to_owned(),
            )
        })
        .collect();
    pods.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    if pods.len() > desired {
        for (_, _, name) in pods.iter().skip(desired) {
            store.remove(Resource::Pod, &ns, name);
        }
    }
    for _ in pods.len()..desired {
        let pod = new_pod(store, rs);
        store.put(Resource::Pod, pod);
    }
}

fn new_pod(store: &Store, rs: &Value) -> Value {
    let ns = object::namespace(rs);
    let rs_name = object::name(rs);
    let mut name = format!("{rs_name}-{}", random_suffix(5));
    while store.get(Resource::Pod, ns, &name).is_some() {
        name = format!("{rs_name}-{}", random_suffix(5));
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    metadata.insert("generateName".into(), json!(format!("{rs_name}-")));
    metadata.insert("namespace".into(), json!(ns));
    metadata.insert("uid".into(), json!(object::new_uid()));
    metadata.insert("creationTimestamp".into(), json!(now_timestamp()));
    if let Some(labels) = rs.pointer("/spec/template/metadata/labels") {
        metadata.insert("labels".into(), labels.clone());
    }
    if let Some(annotations) = rs.pointer("/spec/template/metadata/annotations") {
        metadata.insert("annotations".into(), annotations.clone());
    }
    metadata.insert(
        "ownerReferences".into(),
        json!([object::controller_ref(rs)]),
    );
    let mut spec = rs
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(spec) = spec.as_object_mut() {
        spec.insert("nodeName".into(), json!("kube-sim-node"));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
    })
}

/// The "kubelet": every pod without a phase starts Running and Ready at once.
fn run_kubelet(store: &mut Store) {
    let pending: Vec<Value> = store.unstarted_pods().into_iter().cloned().collect();
    for mut pod in pending {
        let status = running_status(&pod);
        if let Some(map) = pod.as_object_mut() {
            map.insert("status".into(), status);
        }
        store.put(Resource::Pod, pod);
    }
}

/// A Running, Ready pod status for the pod's containers.
pub fn running_status(pod: &Value) -> Value {
    let now = now_timestamp();
    let mut rng = rand::rng();
    let ip = format!(
        "10.244.{}.{}",
        rng.random_range(0..=255u8),
        rng.random_range(2..=254u8)
    );
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                    json!({
                        "name": c.get("name").cloned().unwrap_or(Value::Null),
                        "image": image,
                        "imageID": format!("{image}@sha256:{}", hex_id(image)),
                        "containerID": format!("containerd://{}", hex_id(&object::new_uid())),
                        "ready": true,
                        "started": true,
                        "restartCount": 0,
                        "state": { "running": { "startedAt": now } },
                        "lastState": {},
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    json!({
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers"),
            condition("Initialized"),
            condition("Ready"),
            condition("ContainersReady"),
            condition("PodScheduled"),
        ],
        "hostIP": "10.0.0.10",
        "hostIPs": [{"ip": "10.0.0.10"}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": now,
        "containerStatuses": containers,
        "qosClass": "BestEffort",
    })
}

/// Turns a Running pod's status into a crash-looping one: not Ready, every container waiting
/// in `CrashLoopBackOff` with `restarts` restarts. The controller then counts it as not ready,
/// so the deployment's `readyReplicas` drops until the pod is replaced.
pub fn crashloop_status(pod: &Value, restarts: u32) -> Value {
    let now = now_timestamp();
    let mut status = pod
        .get("status")
        .cloned()
        .unwrap_or_else(|| running_status(pod));
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conditions.iter_mut() {
            if matches!(
                c.get("type").and_then(Value::as_str),
                Some("Ready" | "ContainersReady")
            ) {
                c["status"] = json!("False");
                c["reason"] = json!("ContainersNotReady");
                c["lastTransitionTime"] = json!(now);
            }
        }
    }
    if let Some(containers) = status
        .get_mut("containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for c in containers.iter_mut() {
            c["ready"] = json!(false);
            c["started"] = json!(false);
            c["restartCount"] = json!(restarts);
            c["state"] = json!({"waiting": {
                "reason": "CrashLoopBackOff",
                "message": format!("back-off 5m0s restarting failed container={}", c.get("name").and_then(Value::as_str).unwrap_or("app")),
            }});
            c["lastState"] =
                json!({"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": now}});
        }
    }
    status
}

fn hex_id(seed: &str) -> String {
    Sha256::digest(seed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether the pod's `Ready` condition is `True`.
pub fn pod_is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type") == Some(&json!("Ready")) && c.get("status") == Some(&json!("True"))
            })
        })
}

fn update_replicaset_status(store: &mut Store, rs: &Value) {
    let ns = object::namespace(rs);
    let Some(current) = store.get(Resource::ReplicaSet, ns, object::name(rs)) else {
        return;
    };
    let pods = store.controlled_by(Resource::Pod, ns, object::uid(rs));
    let selector = current
        .pointer("/spec/selector/matchLabels")
        .map(|m| LabelSelector::from_match_labels(&object::string_map(Some(m))))
        .unwrap_or_default();
    let count = pods.len();
    let labelled = pods
        .iter()
        .filter(|p| selector.matches(&object::labels(p)))
        .count();
    let ready = pods.iter().filter(|p| pod_is_ready(p)).count();
    let mut current = current.clone();
    let mut status = Map::new();
    status.insert("replicas".into(), json!(count));
    if labelled > 0 {
        status.insert("fullyLabeledReplicas".into(), json!(labelled));
    }
    if ready > 0 {
        status.insert("readyReplicas".into(), json!(ready));
        status.insert("availableReplicas".into(), json!(ready));
    }
    status.insert(
        "observedGeneration".into(),
        json!(object::int_at(&current, "/metadata/generation").unwrap_or(1)),
    );
    if let Some(map) = current.as_object_mut() {
        map.insert("status".into(), Value::Object(status));
    }
    store.put_if_changed(Resource::ReplicaSet, current);
}

fn condition(existing: &[Value], kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let now = now_timestamp();
    let previous = existing
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind));
    let same = previous.is_some_and(|p| {
        p.get("status").and_then(Value::as_str) == Some(status)
            && p.get("reason").and_then(Value::as_str) == Some(reason)
            && p.get("message").and_then(Value::as_str) == Some(message)
    });
    let (update, transition) = match previous {
        Some(p) if same => (
            p.get("lastUpdateTime").cloned().unwrap_or(json!(now)),
            p.get("lastTransitionTime").cloned().unwrap_or(json!(now)),
        ),
        Some(p) if p.get("status").and_then(Value::as_str) == Some(status) => (
            json!(now),
            p.get("lastTransitionTime").cloned().unwrap_or(json!(now)),
        ),
        _ => (json!(now), json!(now)),
    };
    json!({
        "type": kind,
        "status": status,
        "lastUpdateTime": update,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    })
}

fn update_deployment_status(store: &mut Store, deployment: &Value) {
    let ns = object::namespace(deployment);
    let Some(mut current) = store
        .get(Resource::Deployment, ns, object::name(deployment))
        .cloned()
    else {
        return;
    };
    let owned = owned_by(store, Resource::ReplicaSet, ns, object::uid(&current));
    let new_rs = current_replicaset(&current, &owned).cloned();
    let sum = |pointer: &str| -> i64 {
        owned
            .iter()
            .map(|rs| object::int_at(rs, pointer).unwrap_or(0))
            .sum()
    };
    let desired = desired_replicas(&current);
    let replicas = sum("/status/replicas");
    let ready = sum("/status/readyReplicas");
    let available = sum("/status/availableReplicas");
    let updated = new_rs
        .as_ref()
        .and_then(|rs| object::int_at(rs, "/status/replicas"))
        .unwrap_or(0);
    let existing: Vec<Value> = current
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut conditions = Vec::new();
    if available >= desired {
        conditions.push(condition(
            &existing,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        ));
    } else {
        conditions.push(condition(
            &existing,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        ));
    }
    if let Some(rs) = &new_rs {
        conditions.push(condition(
            &existing,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!(
                "ReplicaSet \"{}\" has successfully progressed.",
                object::name(rs)
            ),
        ));
    }
    let mut status = Map::new();
    status.insert(
        "observedGeneration".into(),
        json!(object::int_at(&current, "/metadata/generation").unwrap_or(1)),
    );
    if replicas > 0 {
        status.insert("replicas".into(), json!(replicas));
    }
    if updated > 0 {
        status.insert("updatedReplicas".into(), json!(updated));
    }
    if ready > 0 {
        status.insert("readyReplicas".into(), json!(ready));
    }
    if available > 0 {
        status.insert("availableReplicas".into(), json!(available));
    }
    if desired > available {
        status.insert("unavailableReplicas".into(), json!(desired - available));
    }
    status.insert("conditions".into(), Value::Array(conditions));
    if let Some(map) = current.as_object_mut() {
        map.insert("status".into(), Value::Object(status));
    }
    store.put_if_changed(Resource::Deployment, current);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{self, DeleteOptions, Propagation};
    use crate::patch::PatchType;

    fn deployment(name: &str, replicas: i64, image: &str) -> Value {
        json!({
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": image}]}
                }
            }
        })
    }

    fn cluster_with(name: &str, replicas: i64) -> Store {
        let mut store = Store::new();
        ops::create(
            &mut store,
            Resource::Namespace,
            None,
            json!({"metadata": {"name": "ns"}}),
            false,
        )
        .unwrap();
        ops::create(
            &mut store,
            Resource::Deployment,
            Some("ns"),
            deployment(name, replicas, "img:v1"),
            false,
        )
        .unwrap();
        store
    }

    fn set_image(store: &mut Store, name: &str, image: &str) {
        ops::patch(
            store,
            Resource::Deployment,
            "ns",
            name,
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}),
            PatchType::StrategicMerge,
            false,
        )
        .unwrap();
    }

    fn replicasets(store: &Store) -> Vec<Value> {
        let mut all: Vec<Value> = store
            .list(Resource::ReplicaSet, Some("ns"))
            .into_iter()
            .cloned()
            .collect();
        all.sort_by_key(revision);
        all
    }

    fn pods(store: &Store) -> Vec<Value> {
        store
            .list(Resource::Pod, Some("ns"))
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn a_new_deployment_gets_revision_one_with_ready_hashed_pods() {
        let store = cluster_with("web", 3);
        let rs = replicasets(&store);
        assert_eq!(rs.len(), 1);
        let rs = &rs[0];
        let hash = object::labels(rs)[POD_TEMPLATE_HASH_LABEL].clone();
        assert_eq!(object::name(rs), format!("web-{hash}"));
        assert_eq!(revision(rs), 1);
        let deploy = store.get(Resource::Deployment, "ns", "web").unwrap();
        assert_eq!(object::annotation(deploy, REVISION_ANNOTATION), Some("1"));
        assert_eq!(object::controller_uid(rs), Some(object::uid(deploy)));
        let pods = pods(&store);
        assert_eq!(pods.len(), 3);
        for pod in &pods {
            assert!(object::name(pod).starts_with(&format!("web-{hash}-")));
            assert_eq!(object::name(pod).len(), format!("web-{hash}-").len() + 5);
            assert_eq!(object::labels(pod)[POD_TEMPLATE_HASH_LABEL], hash);
            assert_eq!(object::controller_uid(pod), Some(object::uid(rs)));
            assert_eq!(pod.pointer("/status/phase"), Some(&json!("Running")));
            assert!(pod_is_ready(pod));
        }
        assert_eq!(deploy.pointer("/status/readyReplicas"), Some(&json!(3)));
        assert_eq!(deploy.pointer("/status/updatedReplicas"), Some(&json!(3)));
        assert_eq!(
            deploy.pointer("/status/observedGeneration"),
            Some(&json!(1))
        );
    }

    #[test]
    fn the_hash_ignores_key_order_and_the_hash_label_but_not_the_image() {
        let a = json!({"metadata": {"labels": {"app": "x", "tier": "b"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}});
        let b = json!({"spec": {"containers": [{"image": "i:1", "name": "c"}]}, "metadata": {"labels": {"tier": "b", "app": "x", POD_TEMPLATE_HASH_LABEL: "zzz"}}});
        let c = json!({"metadata": {"labels": {"app": "x", "tier": "b"}}, "spec": {"containers": [{"name": "c", "image": "i:2"}]}});
        assert_eq!(pod_template_hash(&a), pod_template_hash(&b));
        assert_ne!(pod_template_hash(&a), pod_template_hash(&c));
        assert!(templates_equal(&a, &b));
        let mut with_null = a.clone();
        with_null["metadata"]["creationTimestamp"] = Value::Null;
        assert!(templates_equal(&a, &with_null));
        assert_eq!(pod_template_hash(&a), pod_template_hash(&with_null));
        assert!(!pod_template_hash(&a).is_empty());
    }

    #[test]
    fn scaling_adds_and_removes_pods() {
        let mut store = cluster_with("web", 2);
        for want in [5_usize, 1, 0, 2] {
            ops::patch(
                &mut store,
                Resource::Deployment,
                "ns",
                "web",
                &json!({"spec": {"replicas": want}}),
                PatchType::Merge,
                false,
            )
            .unwrap();
            assert_eq!(pods(&store).len(), want);
        }
        assert_eq!(
            replicasets(&store).len(),
            1,
            "scaling makes no new revision"
        );
    }

    #[test]
    fn a_template_change_rolls_to_a_new_revision_and_rollback_reuses_the_old_replicaset() {
        let mut store = cluster_with("web", 2);
        let first_rs = object::name(&replicasets(&store)[0]).to_owned();
        set_image(&mut store, "web", "img:v2");

        let rs = replicasets(&store);
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].pointer("/spec/replicas"), Some(&json!(0)));
        assert_eq!(rs[1].pointer("/spec/replicas"), Some(&json!(2)));
        assert_eq!(revision(&rs[1]), 2);
        let deploy = store
            .get(Resource::Deployment, "ns", "web")
            .unwrap()
            .clone();
        assert_eq!(deploy.pointer("/metadata/generation"), Some(&json!(2)));
        assert_eq!(object::annotation(&deploy, REVISION_ANNOTATION), Some("2"));
        assert!(
            pods(&store)
                .iter()
                .all(|p| { p.pointer("/spec/containers/0/image") == Some(&json!("img:v2")) })
        );

        // Roll back the way kubectl does: copy revision 1's template without the hash label.
        let old_template = template_without_hash(rs[0].pointer("/spec/template").unwrap());
        ops::patch(
            &mut store,
            Resource::Deployment,
            "ns",
            "web",
            &json!([{"op": "replace", "path": "/spec/template", "value": old_template}]),
            PatchType::Json,
            false,
        )
        .unwrap();
        let rs = replicasets(&store);
        assert_eq!(rs.len(), 2, "no new replicaset for an old template");
        let reused = rs.iter().find(|r| object::name(r) == first_rs).unwrap();
        assert_eq!(revision(reused), 3);
        assert_eq!(
            object::annotation(reused, REVISION_HISTORY_ANNOTATION),
            Some("1")
        );
        assert_eq!(reused.pointer("/spec/replicas"), Some(&json!(2)));
        let deploy = store.get(Resource::Deployment, "ns", "web").unwrap();
        assert_eq!(object::annotation(deploy, REVISION_ANNOTATION), Some("3"));
        assert!(
            pods(&store)
                .iter()
                .all(|p| { p.pointer("/spec/containers/0/image") == Some(&json!("img:v1")) })
        );
    }

    #[test]
    fn a_deleted_controlled_pod_is_replaced_under_a_new_name() {
        let mut store = cluster_with("web", 2);
        let victim = object::name(&pods(&store)[0]).to_owned();
        ops::delete(
            &mut store,
            Resource::Pod,
            "ns",
            &victim,
            &DeleteOptions::default(),
            false,
        )
        .unwrap();
        let names: Vec<String> = pods(&store)
            .iter()
            .map(|p| object::name(p).to_owned())
            .collect();
        assert_eq!(names.len(), 2);
        assert!(!names.contains(&victim));
    }

    /// Deletes deployment `name` with `propagationPolicy: Orphan`.
    fn delete_orphaning_dependents(store: &mut Store, name: &str) {
        let orphan = DeleteOptions {
            propagation: Propagation::Orphan,
            ..DeleteOptions::default()
        };
        ops::delete(store, Resource::Deployment, "ns", name, &orphan, false).unwrap();
    }

    #[test]
    fn deleting_a_deployment_cascades_unless_orphaned() {
        let mut store = cluster_with("web", 2);
        ops::delete(
            &mut store,
            Resource::Deployment,
            "ns",
            "web",
            &DeleteOptions::default(),
            false,
        )
        .unwrap();
        assert!(replicasets(&store).is_empty());
        assert!(pods(&store).is_empty());

        let mut store = cluster_with("api", 1);
        delete_orphaning_dependents(&mut store, "api");
        assert_eq!(replicasets(&store).len(), 1);
        assert_eq!(pods(&store).len(), 1);
    }

    #[test]
    fn an_object_whose_owner_is_absent_or_replaced_is_collected() {
        let mut store = cluster_with("web", 1);
        // Owned, not controlled: the replicaset does not count it as one of its replicas.
        let stray = |owner_uid: &str| {
            json!({
                "metadata": {"name": format!("stray-{owner_uid}"), "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone",
                    "uid": owner_uid, "controller": false,
                }]},
                "spec": {"containers": [{"name": "c", "image": "img"}]}
            })
        };
        // Created naming an owner that was never stored: gone once the controllers run.
        ops::create(
            &mut store,
            Resource::Pod,
            Some("ns"),
            stray("no-such-uid"),
            false,
        )
        .unwrap();
        assert_eq!(pods(&store).len(), 1, "only the deployment's pod is left");

        // An owner replaced under its name by an object with a new UID: the old one's
        // dependents are orphans, though an object of that name exists.
        let mut store = cluster_with("api", 1);
        let rs = replicasets(&store).remove(0);
        let rs_uid = object::uid(&rs).to_owned();
        delete_orphaning_dependents(&mut store, "api");
        ops::create(&mut store, Resource::Pod, Some("ns"), stray(&rs_uid), false).unwrap();
        assert_eq!(pods(&store).len(), 2, "the replicaset owns both pods");
        let mut again = rs.clone();
        object::metadata_mut(&mut again).insert("uid".into(), json!("a-new-uid"));
        object::metadata_mut(&mut again).remove("ownerReferences");
        store.put(Resource::ReplicaSet, again);
        // Any write runs the collector.
        ops::create(
            &mut store,
            Resource::Namespace,
            None,
            json!({"metadata": {"name": "other"}}),
            false,
        )
        .unwrap();
        let left: Vec<Value> = pods(&store);
        assert!(
            left.iter()
                .all(|p| object::controller_uid(p) != Some(rs_uid.as_str())),
            "{left:?}"
        );
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn old_revisions_beyond_the_history_limit_are_pruned() {
        let mut store = cluster_with("web", 1);
        ops::patch(
            &mut store,
            Resource::Deployment,
            "ns",
            "web",
            &json!({"spec": {"revisionHistoryLimit": 1}}),
            PatchType::Merge,
            false,
        )
        .unwrap();
        for v in 2..=4 {
            set_image(&mut store, "web", &format!("img:v{v}"));
        }
        let revisions: Vec<u64> = replicasets(&store).iter().map(revision).collect();
        assert_eq!(revisions, vec![3, 4]);
    }

    #[test]
    fn a_reconcile_without_changes_writes_nothing() {
        let mut store = cluster_with("web", 2);
        let before = store.resource_version();
        reconcile(&mut store);
        assert_eq!(store.resource_version(), before);
    }

    /// Reconciling only the written object's family must leave the cluster exactly as settled as
    /// reconciling everything: after every kind of write, a full reconcile writes nothing more,
    /// and a write to one deployment leaves every other family untouched.
    #[test]
    fn a_write_settles_its_family_as_a_full_reconcile_would() {
        let mut store = cluster_with("web", 2);
        for (name, replicas) in [("api", 3), ("db", 1)] {
            ops::create(
                &mut store,
                Resource::Deployment,
                Some("ns"),
                deployment(name, replicas, "img:v1"),
                false,
            )
            .unwrap();
        }
        let bare_rs = json!({
            "metadata": {"name": "bare"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "bare"}},
                "template": {
                    "metadata": {"labels": {"app": "bare"}},
                    "spec": {"containers": [{"name": "c", "image": "img"}]}
                }
            }
        });
        let first_web_pod = |store: &Store| {
            store
                .list(Resource::Pod, Some("ns"))
                .into_iter()
                .find(|p| object::name(p).starts_with("web-"))
                .map(|p| object::name(p).to_owned())
                .unwrap()
        };
        let merge = PatchType::Merge;
        type Write<'a> = (&'a str, Box<dyn Fn(&mut Store) + 'a>);
        let writes: Vec<Write> = vec![
            (
                "scale up",
                Box::new(|s| {
                    ops::patch_scale(
                        s,
                        Resource::Deployment,
                        "ns",
                        "web",
                        &json!({"spec": {"replicas": 5}}),
                        merge,
                        false,
                    )
                    .unwrap();
                }),
            ),
            (
                "scale down",
                Box::new(|s| {
                    ops::patch_scale(
                        s,
                        Resource::Deployment,
                        "ns",
                        "web",
                        &json!({"spec": {"replicas": 1}}),
                        merge,
                        false,
                    )
                    .unwrap();
                }),
            ),
            ("new image", Box::new(|s| set_image(s, "web", "img:v2"))),
            ("another image", Box::new(|s| set_image(s, "web", "img:v3"))),
            ("roll back", Box::new(|s| set_image(s, "web", "img:v1"))),
            (
                "restart",
                Box::new(|s| {
                    ops::patch(s, Resource::Deployment, "ns", "api", &json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}}), merge, false).unwrap();
                }),
            ),
            (
                "prune history",
                Box::new(|s| {
                    ops::patch(
                        s,
                        Resource::Deployment,
                        "ns",
                        "web",
                        &json!({"spec": {"revisionHistoryLimit": 0}}),
                        merge,
                        false,
                    )
                    .unwrap();
                }),
            ),
            (
                "pause",
                Box::new(|s| {
                    ops::patch(
                        s,
                        Resource::Deployment,
                        "ns",
                        "db",
                        &json!({"spec": {"paused": true, "replicas": 2}}),
                        merge,
                        false,
                    )
                    .unwrap();
                }),
            ),
            (
                "crash a pod",
                Box::new(move |s| {
                    let pod = first_web_pod(s);
                    let current = s.get(Resource::Pod, "ns", &pod).unwrap().clone();
                    let status = crashloop_status(&current, 4);
                    ops::update_status(
                        s,
                        Resource::Pod,
                        "ns",
                        &pod,
                        &json!({"metadata": {"name": pod}, "status": status}),
                        false,
                    )
                    .unwrap();
                }),
            ),
            (
                "label a pod",
                Box::new(move |s| {
                    let pod = first_web_pod(s);
                    ops::patch(
                        s,
                        Resource::Pod,
                        "ns",
                        &pod,
                        &json!({"metadata": {"labels": {"extra": "yes"}}}),
                        merge,
                        false,
                    )
                    .unwrap();
                }),
            ),
            (
                "bare replicaset",
                Box::new(move |s| {
                    ops::create(s, Resource::ReplicaSet, Some("ns"), bare_rs.clone(), false)
                        .unwrap();
                }),
            ),
            (
                "scale the bare replicaset",
                Box::new(|s| {
                    ops::patch_scale(
                        s,
                        Resource::ReplicaSet,
                        "ns",
                        "bare",
                        &json!({"spec": {"replicas": 3}}),
                        merge,
                        false,
                    )
                    .unwrap();
                }),
            ),
            (
                "bare pod",
                Box::new(|s| {
                    ops::create(s, Resource::Pod, Some("ns"), json!({"metadata": {"name": "lonely"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}), false).unwrap();
                }),
            ),
            (
                "a pod's owner reference to a missing owner",
                Box::new(move |s| {
                    let pod = first_web_pod(s);
                    ops::patch(s, Resource::Pod, "ns", &pod, &json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "uid": "no-such-uid", "controller": true}]}}), merge, false).unwrap();
                }),
            ),
            (
                "delete a pod",
                Box::new(move |s| {
                    let pod = first_web_pod(s);
                    ops::delete(
                        s,
                        Resource::Pod,
                        "ns",
                        &pod,
                        &DeleteOptions::default(),
                        false,
                    )
                    .unwrap();
                }),
            ),
        ];
        let family_of = |store: &Store, app: &str| -> Vec<(String, Option<String>)> {
            [Resource::Deployment, Resource::ReplicaSet, Resource::Pod]
                .into_iter()
                .flat_map(|r| store.list(r, Some("ns")))
                .filter(|o| {
                    object::name(o).starts_with(&format!("{app}-")) || object::name(o) == app
                })
                .map(|o| {
                    (
                        object::name(o).to_owned(),
                        object::resource_version(o).map(str::to_owned),
                    )
                })
                .collect()
        };
        for (what, write) in &writes {
            let db_before = family_of(&store, "db");
            write(&mut store);
            let mut settled = store.clone();
            reconcile(&mut settled);
            assert_eq!(
                settled.resource_version(),
                store.resource_version(),
                "after {what}, a full reconcile still had work"
            );
            if !what.contains("pause") {
                assert_eq!(
                    family_of(&store, "db"),
                    db_before,
                    "{what} touched another family"
                );
            }
        }
        // The writes did what they say.
        let web = store.get(Resource::Deployment, "ns", "web").unwrap();
        assert_eq!(web.pointer("/spec/replicas"), Some(&json!(1)));
        assert_eq!(
            replicasets(&store)
                .iter()
                .filter(|rs| object::name(rs).starts_with("web-"))
                .count(),
            1
        );
        let bare_pods = pods(&store)
            .iter()
            .filter(|p| object::name(p).starts_with("bare-"))
            .count();
        assert_eq!(bare_pods, 3);
        let lonely = store.get(Resource::Pod, "ns", "lonely").unwrap();
        assert!(pod_is_ready(lonely));
        let db = store.get(Resource::Deployment, "ns", "db").unwrap();
        assert_eq!(db.pointer("/status/replicas"), Some(&json!(2)));
    }
}
