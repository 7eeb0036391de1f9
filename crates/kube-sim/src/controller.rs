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
                    Resource::Pod | Resource::Namespace | Resource::Lease | Resource::Event => {
                        Some(Family::Standalone)
                    }
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
    let was = object::int_at(&new_rs, "/spec/replicas").unwrap_or(0);
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
    scaled(store, deployment, &new_name, was, replicas);

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
        let was = object::int_at(&rs, "/spec/replicas").unwrap_or(0);
        if let Some(spec) = rs.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("replicas".into(), json!(0));
        }
        let name = object::name(&rs).to_owned();
        store.put_if_changed(Resource::ReplicaSet, rs);
        scaled(store, deployment, &name, was, 0);
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

/// The deployment controller's `ScalingReplicaSet` event, when a replicaset's size changed.
fn scaled(store: &mut Store, deployment: &Value, rs: &str, from: i64, to: i64) {
    if from == to {
        return;
    }
    let direction = if to > from { "up" } else { "down" };
    let message = format!("Scaled {direction} replica set {rs} from {from} to {to}");
    crate::events::record(
        store,
        &crate::events::Event {
            involved: deployment,
            container: None,
            kind: crate::events::EventType::Normal,
            reason: "ScalingReplicaSet",
            message: &message,
            component: "deployment-controller",
        },
    );
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
    let spec = rs
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or_else(|| json!({}));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
    })
}

/// The scheduler and kubelet start every pod without a phase (see [`crate::kubelet`]).
fn run_kubelet(store: &mut Store) {
    let pending: Vec<Value> = store.unstarted_pods().into_iter().cloned().collect();
    for pod in pending {
        crate::kubelet::start(store, pod);
    }
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

/// The `Progressing` condition, as the deployment controller keeps it: `NewReplicaSetAvailable`
/// once the rollout to `rs` is complete (and kept after that, even if pods fail later, since
/// no rollout is in progress); `ReplicaSetUpdated` while it is under way; and
/// `ProgressDeadlineExceeded` (status `False`) once it has made no progress for longer than
/// `spec.progressDeadlineSeconds` (600 by default) without completing, unless it is paused.
fn progressing(
    deployment: &Value,
    existing: &[Value],
    rs: &str,
    complete: bool,
    progressed: bool,
) -> Value {
    let done = format!("ReplicaSet \"{rs}\" has successfully progressed.");
    let timed_out = format!("ReplicaSet \"{rs}\" has timed out progressing.");
    if complete {
        return condition(
            existing,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &done,
        );
    }
    let previous = existing
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Progressing"));
    let message = previous.and_then(|c| c.get("message").and_then(Value::as_str));
    if (message == Some(done.as_str()) || message == Some(timed_out.as_str()))
        && let Some(previous) = previous
    {
        return previous.clone();
    }
    let mut under_way = condition(
        existing,
        "Progressing",
        "True",
        "ReplicaSetUpdated",
        &format!("ReplicaSet \"{rs}\" is progressing."),
    );
    // Progress (more replicas available than before) restarts the clock; a paused rollout
    // is not expected to progress.
    if progressed {
        under_way["lastUpdateTime"] = json!(now_timestamp());
    }
    if deployment.pointer("/spec/paused") == Some(&json!(true)) {
        return under_way;
    }
    let deadline = object::int_at(deployment, "/spec/progressDeadlineSeconds").unwrap_or(600);
    let since = under_way
        .get("lastUpdateTime")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let overdue = since.is_some_and(|since| {
        chrono::Utc::now() - since.with_timezone(&chrono::Utc) > chrono::Duration::seconds(deadline)
    });
    if overdue {
        condition(
            existing,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            &timed_out,
        )
    } else {
        under_way
    }
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
        let new_available = object::int_at(rs, "/status/availableReplicas").unwrap_or(0);
        let complete = updated == desired && replicas == desired && new_available >= desired;
        let before = object::int_at(&current, "/status/availableReplicas").unwrap_or(0);
        conditions.push(progressing(
            &current,
            &existing,
            object::name(rs),
            complete,
            available > before,
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
mod tests;
