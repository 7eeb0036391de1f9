//! The verbs (get, list, create, update, patch, delete, and the scale and status subresources)
//! as pure functions over the [`Store`]. Every successful write runs the controllers before
//! returning (see [`controller::reconcile_after_write`]); `dryRun=All` writes store their one
//! object in an empty scratch store that is thrown away.

use serde_json::{Map, Value, json};

use crate::controller;
use crate::error::{FieldCause, StatusError};
use crate::object::{self, now_timestamp};
use crate::patch::{self, PatchType};
use crate::resource::Resource;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Store;
use crate::validation;

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Delete dependents in the background (the default for most clients).
    #[default]
    Background,
    /// Delete dependents before the owner; the simulator does it at once, like background.
    Foreground,
    /// Keep dependents and strip their owner references.
    Orphan,
}

impl Propagation {
    /// Parses the `propagationPolicy` value.
    pub fn parse(value: &str) -> Result<Propagation, StatusError> {
        match value {
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            "Orphan" => Ok(Propagation::Orphan),
            other => Err(StatusError::bad_request(format!(
                "unsupported propagationPolicy {other:?}: must be Background, Foreground or Orphan"
            ))),
        }
    }
}

/// Options of a delete call (query and `DeleteOptions` body merged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Cascade policy.
    pub propagation: Propagation,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_resource_version: Option<String>,
}

/// What a subresource call targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// `/scale` (deployments and replicasets).
    Scale,
    /// `/status`.
    Status,
}

fn not_found_namespace(namespace: &str) -> StatusError {
    StatusError::not_found(Resource::Namespace, namespace)
}

/// Reads one object.
pub fn get(
    store: &Store,
    resource: Resource,
    namespace: &str,
    name: &str,
) -> Result<Value, StatusError> {
    store
        .get(resource, namespace, name)
        .cloned()
        .ok_or_else(|| StatusError::not_found(resource, name))
}

/// Lists objects, filtered by namespace and selectors, as a `<Kind>List`.
pub fn list(
    store: &Store,
    resource: Resource,
    namespace: Option<&str>,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Result<Value, StatusError> {
    let labels = LabelSelector::parse(label_selector.unwrap_or(""))
        .map_err(|e| StatusError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(field_selector.unwrap_or(""))
        .map_err(|e| StatusError::bad_request(e.to_string()))?;
    let items: Vec<Value> = store
        .list(resource, namespace)
        .into_iter()
        .filter(|o| labels.matches(&object::labels(o)) && fields.matches(o))
        .cloned()
        .collect();
    Ok(json!({
        "kind": resource.list_kind(),
        "apiVersion": resource.api_version(),
        "metadata": { "resourceVersion": store.resource_version().to_string() },
        "items": items,
    }))
}

/// Runs `op` against the store, or for a dry run against an empty scratch store with the same
/// version counter (every `op` only stores the one object it answers with, so the answer is the
/// same and the cluster is not copied). A real write is followed by a reconcile of the written
/// object's family, and the answer is re-read so it shows the settled object.
fn write(
    store: &mut Store,
    resource: Resource,
    dry_run: bool,
    op: impl FnOnce(&mut Store) -> Result<Value, StatusError>,
) -> Result<Value, StatusError> {
    if dry_run {
        return op(&mut store.scratch());
    }
    let written = op(store)?;
    controller::reconcile_after_write(store, resource, &written);
    let settled = store
        .get(
            resource,
            object::namespace(&written),
            object::name(&written),
        )
        .filter(|o| object::uid(o) == object::uid(&written))
        .cloned();
    Ok(settled.unwrap_or(written))
}

fn check_type(resource: Resource, body: &Value) -> Result<(), StatusError> {
    if !body.is_object() {
        return Err(StatusError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    if let Some(kind) = body.get("kind").and_then(Value::as_str)
        && kind != resource.kind()
    {
        return Err(StatusError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            resource.kind()
        )));
    }
    if let Some(version) = body.get("apiVersion").and_then(Value::as_str)
        && version != resource.api_version()
    {
        return Err(StatusError::bad_request(format!(
            "the API version in the data ({version}) does not match the expected API version ({})",
            resource.api_version()
        )));
    }
    Ok(())
}

fn stamp_type(resource: Resource, obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(resource.api_version()));
        map.insert("kind".into(), json!(resource.kind()));
    }
}

/// Creates an object (`POST` to a collection).
pub fn create(
    store: &mut Store,
    resource: Resource,
    namespace: Option<&str>,
    body: Value,
    dry_run: bool,
) -> Result<Value, StatusError> {
    check_type(resource, &body)?;
    let mut obj = body;
    let path_ns = namespace.unwrap_or("");
    if resource.namespaced() {
        let body_ns = object::namespace(&obj);
        if !body_ns.is_empty() && body_ns != path_ns {
            return Err(StatusError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        object::metadata_mut(&mut obj).insert("namespace".into(), json!(path_ns));
    } else {
        object::metadata_mut(&mut obj).remove("namespace");
    }
    if object::name(&obj).is_empty()
        && let Some(prefix) = object::meta_str(&obj, "generateName").map(str::to_owned)
    {
        let mut name = format!("{prefix}{}", controller::random_suffix(5));
        while store.get(resource, path_ns, &name).is_some() {
            name = format!("{prefix}{}", controller::random_suffix(5));
        }
        object::metadata_mut(&mut obj).insert("name".into(), json!(name));
    }
    let name = object::name(&obj).to_owned();
    if name.is_empty() {
        return Err(StatusError::invalid(
            resource,
            "",
            &[FieldCause {
                reason: "FieldValueRequired",
                field: "metadata.name".into(),
                message: "Required value: name or generateName is required".into(),
            }],
        ));
    }
    if resource.namespaced() && !store.namespace_exists(path_ns) {
        return Err(not_found_namespace(path_ns));
    }
    if store.get(resource, path_ns, &name).is_some() {
        return Err(StatusError::already_exists(resource, &name));
    }
    stamp_type(resource, &mut obj);
    {
        let meta = object::metadata_mut(&mut obj);
        meta.insert("uid".into(), json!(object::new_uid()));
        meta.insert("creationTimestamp".into(), json!(now_timestamp()));
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
        if matches!(resource, Resource::Deployment | Resource::ReplicaSet) {
            meta.insert("generation".into(), json!(1));
        }
    }
    if matches!(resource, Resource::Deployment | Resource::ReplicaSet)
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    validation::apply_defaults(resource, &mut obj);
    validation::validate(resource, &obj)?;
    write(store, resource, dry_run, |store| {
        let mut stored = store.put(resource, obj);
        if dry_run {
            object::metadata_mut(&mut stored).remove("resourceVersion");
        }
        Ok(stored)
    })
}

/// Stores `new` over `current`, keeping server-managed fields, as update and patch both do.
fn store_update(
    store: &mut Store,
    resource: Resource,
    current: &Value,
    mut new: Value,
    dry_run: bool,
) -> Result<Value, StatusError> {
    let name = object::name(current).to_owned();
    if object::name(&new) != name {
        return Err(StatusError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            object::name(&new)
        )));
    }
    if resource.namespaced() && object::namespace(&new) != object::namespace(current) {
        return Err(StatusError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if let Some(rv) = object::resource_version(&new)
        && Some(rv) != object::resource_version(current)
    {
        return Err(StatusError::conflict(resource, &name));
    }
    stamp_type(resource, &mut new);
    {
        let meta = object::metadata_mut(&mut new);
        for key in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
        ] {
            match current.get("metadata").and_then(|m| m.get(key)) {
                Some(v) => meta.insert(key.into(), v.clone()),
                None => meta.remove(key),
            };
        }
    }
    // The main resource never changes status; the status subresource does that.
    if let Some(map) = new.as_object_mut() {
        match current.get("status") {
            Some(status) => map.insert("status".into(), status.clone()),
            None => map.remove("status"),
        };
    }
    validation::apply_defaults(resource, &mut new);
    validation::validate(resource, &new)?;
    validation::validate_update(resource, current, &new)?;
    if matches!(resource, Resource::Deployment | Resource::ReplicaSet)
        && new.get("spec") != current.get("spec")
    {
        let generation = object::int_at(current, "/metadata/generation").unwrap_or(1) + 1;
        object::metadata_mut(&mut new).insert("generation".into(), json!(generation));
    }
    let previous_rv = object::resource_version(current).map(str::to_owned);
    write(store, resource, dry_run, |store| {
        let mut stored = store.put(resource, new);
        if dry_run && let Some(rv) = previous_rv {
            object::metadata_mut(&mut stored).insert("resourceVersion".into(), json!(rv));
        }
        Ok(stored)
    })
}

/// Replaces an object (`PUT`); a stale `resourceVersion` is a 409 Conflict.
pub fn update(
    store: &mut Store,
    resource: Resource,
    namespace: &str,
    name: &str,
    body: Value,
    dry_run: bool,
) -> Result<Value, StatusError> {
    check_type(resource, &body)?;
    let current = get(store, resource, namespace, name)?;
    let mut body = body;
    if resource.namespaced() && object::namespace(&body).is_empty() {
        object::metadata_mut(&mut body).insert("namespace".into(), json!(namespace));
    }
    store_update(store, resource, &current, body, dry_run)
}

fn apply_patch(current: &Value, body: &Value, patch_type: PatchType) -> Result<Value, StatusError> {
    patch::apply(current, body, patch_type).map_err(|e| StatusError::new(422, "Invalid", e))
}

/// Patches an object (`PATCH`) with a JSON, merge or strategic merge patch.
pub fn patch(
    store: &mut Store,
    resource: Resource,
    namespace: &str,
    name: &str,
    body: &Value,
    patch_type: PatchType,
    dry_run: bool,
) -> Result<Value, StatusError> {
    let current = get(store, resource, namespace, name)?;
    let patched = apply_patch(&current, body, patch_type)?;
    store_update(store, resource, &current, patched, dry_run)
}

/// Deletes an object. Pods and namespaces answer with the deleted object, other types with a
/// `Success` status, as the API server does.
pub fn delete(
    store: &mut Store,
    resource: Resource,
    namespace: &str,
    name: &str,
    options: &DeleteOptions,
    dry_run: bool,
) -> Result<Value, StatusError> {
    let current = get(store, resource, namespace, name)?;
    if resource == Resource::Namespace && matches!(name, "default" | "kube-system" | "kube-public")
    {
        return Err(StatusError::forbidden(
            resource,
            name,
            "this namespace may not be deleted",
        ));
    }
    if let Some(uid) = &options.precondition_uid
        && uid != object::uid(&current)
    {
        return Err(StatusError::new(
            409,
            "Conflict",
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                object::uid(&current)
            ),
        ));
    }
    if let Some(rv) = &options.precondition_resource_version
        && Some(rv.as_str()) != object::resource_version(&current)
    {
        return Err(StatusError::new(
            409,
            "Conflict",
            format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                object::resource_version(&current).unwrap_or("")
            ),
        ));
    }
    let answer = if matches!(resource, Resource::Pod | Resource::Namespace) {
        let mut deleted = current.clone();
        let meta = object::metadata_mut(&mut deleted);
        meta.insert("deletionTimestamp".into(), json!(now_timestamp()));
        if resource == Resource::Pod {
            let grace =
                object::int_at(&current, "/spec/terminationGracePeriodSeconds").unwrap_or(30);
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
        } else if let Some(map) = deleted.as_object_mut() {
            map.insert("status".into(), json!({"phase": "Terminating"}));
        }
        deleted
    } else {
        let mut details = Map::new();
        details.insert("name".into(), json!(name));
        if !resource.group().is_empty() {
            details.insert("group".into(), json!(resource.group()));
        }
        details.insert("kind".into(), json!(resource.plural()));
        details.insert("uid".into(), json!(object::uid(&current)));
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        })
    };
    if dry_run {
        return Ok(answer);
    }
    store.remove(resource, namespace, name);
    if resource == Resource::Namespace {
        for kind in [
            Resource::Deployment,
            Resource::ReplicaSet,
            Resource::Pod,
            Resource::Lease,
            Resource::Event,
        ] {
            let names: Vec<String> = store
                .list(kind, Some(name))
                .into_iter()
                .map(|o| object::name(o).to_owned())
                .collect();
            for n in names {
                store.remove(kind, name, &n);
            }
        }
    }
    if options.propagation == Propagation::Orphan {
        orphan_dependents(store, object::uid(&current));
    }
    controller::reconcile(store);
    Ok(answer)
}

fn orphan_dependents(store: &mut Store, owner_uid: &str) {
    for kind in [Resource::ReplicaSet, Resource::Pod] {
        let dependents: Vec<Value> = store
            .list(kind, None)
            .into_iter()
            .filter(|o| {
                object::owner_references(o)
                    .iter()
                    .any(|r| r.get("uid").and_then(Value::as_str) == Some(owner_uid))
            })
            .cloned()
            .collect();
        for mut dependent in dependents {
            if let Some(Value::Array(refs)) = dependent.pointer_mut("/metadata/ownerReferences") {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
            }
            if let Some(meta) = dependent.get_mut("metadata").and_then(Value::as_object_mut)
                && meta
                    .get("ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty)
            {
                meta.remove("ownerReferences");
            }
            store.put(kind, dependent);
        }
    }
}

/// The `autoscaling/v1` `Scale` view of a deployment or replicaset.
pub fn get_scale(
    store: &Store,
    resource: Resource,
    namespace: &str,
    name: &str,
) -> Result<Value, StatusError> {
    let obj = get(store, resource, namespace, name)?;
    Ok(scale_of(&obj))
}

fn scale_of(obj: &Value) -> Value {
    let selector = crate::selector::match_labels_string(&object::string_map(
        obj.pointer("/spec/selector/matchLabels"),
    ));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": object::name(obj),
            "namespace": object::namespace(obj),
            "uid": object::uid(obj),
            "resourceVersion": object::resource_version(obj).unwrap_or(""),
            "creationTimestamp": object::meta_str(obj, "creationTimestamp"),
        },
        "spec": { "replicas": object::int_at(obj, "/spec/replicas").unwrap_or(0) },
        "status": {
            "replicas": object::int_at(obj, "/status/replicas").unwrap_or(0),
            "selector": selector,
        },
    })
}

/// Writes a `Scale` (`PUT .../scale`, or the result of a patch of it).
pub fn update_scale(
    store: &mut Store,
    resource: Resource,
    namespace: &str,
    name: &str,
    scale: &Value,
    dry_run: bool,
) -> Result<Value, StatusError> {
    let current = get(store, resource, namespace, name)?;
    if let Some(rv) = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        && Some(rv) != object::resource_version(&current)
    {
        return Err(StatusError::conflict(resource, name));
    }
    let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    if replicas.as_i64().is_none_or(|r| r < 0) {
        let mut err = StatusError::invalid(
            resource,
            name,
            &[FieldCause::invalid(
                "spec.replicas",
                &replicas,
                "must be greater than or equal to 0",
            )],
        );
        err.message = err
            .message
            .replacen(&resource.qualified_kind(), "Scale.autoscaling", 1);
        if let Some(Value::Object(details)) = err.details.as_deref_mut() {
            details.insert("group".into(), json!("autoscaling"));
            details.insert("kind".into(), json!("Scale"));
        }
        return Err(err);
    }
    let mut new = current.clone();
    if let Some(map) = new.get_mut("spec").and_then(Value::as_object_mut) {
        map.insert("replicas".into(), replicas);
    }
    object::metadata_mut(&mut new).remove("resourceVersion");
    let stored = store_update(store, resource, &current, new, dry_run)?;
    Ok(scale_of(&stored))
}

/// Patches a `Scale`.
pub fn patch_scale(
    store: &mut Store,
    resource: Resource,
    namespace: &str,
    name: &str,
    body: &Value,
    patch_type: PatchType,
    dry_run: bool,
) -> Result<Value, StatusError> {
    let scale = get_scale(store, resource, namespace, name)?;
    let patched = apply_patch(&scale, body, patch_type)?;
    update_scale(store, resource, namespace, name, &patched, dry_run)
}

/// Writes only the `status` of an object (`PUT`/`PATCH .../status`).
pub fn update_status(
    store: &mut Store,
    resource: Resource,
    namespace: &str,
    name: &str,
    new: &Value,
    dry_run: bool,
) -> Result<Value, StatusError> {
    let current = get(store, resource, namespace, name)?;
    if let Some(rv) = object::resource_version(new)
        && Some(rv) != object::resource_version(&current)
    {
        return Err(StatusError::conflict(resource, name));
    }
    let mut stored = current.clone();
    if let Some(map) = stored.as_object_mut() {
        match new.get("status") {
            Some(status) => map.insert("status".into(), status.clone()),
            None => map.remove("status"),
        };
    }
    let previous_rv = object::resource_version(&current).map(str::to_owned);
    write(store, resource, dry_run, |store| {
        let mut out = store.put(resource, stored);
        if dry_run && let Some(rv) = previous_rv {
            object::metadata_mut(&mut out).insert("resourceVersion".into(), json!(rv));
        }
        Ok(out)
    })
}

/// Patches only the `status` of an object.
pub fn patch_status(
    store: &mut Store,
    resource: Resource,
    namespace: &str,
    name: &str,
    body: &Value,
    patch_type: PatchType,
    dry_run: bool,
) -> Result<Value, StatusError> {
    let current = get(store, resource, namespace, name)?;
    let patched = apply_patch(&current, body, patch_type)?;
    update_status(store, resource, namespace, name, &patched, dry_run)
}

#[cfg(test)]
mod tests;
