//! The object store: every object as JSON, keyed by resource type, namespace and name.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use crate::object;
use crate::resource::Resource;

/// All objects of the simulated cluster plus the global `resourceVersion` counter.
#[derive(Debug, Clone, Default)]
pub struct Store {
    resource_version: u64,
    objects: BTreeMap<Resource, BTreeMap<(String, String), Value>>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Store::default()
    }

    /// An empty store that hands out the same `resourceVersion`s as this one would next: where
    /// a dry run stores the one object it answers with, without copying the cluster.
    pub fn scratch(&self) -> Store {
        Store {
            resource_version: self.resource_version,
            objects: BTreeMap::new(),
        }
    }

    /// The latest `resourceVersion` handed out.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// One object.
    pub fn get(&self, resource: Resource, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&resource)?
            .get(&(ns_key(resource, namespace), name.to_owned()))
    }

    /// Objects of a type, in one namespace or (with `None`) everywhere, ordered by namespace
    /// and name.
    pub fn list(&self, resource: Resource, namespace: Option<&str>) -> Vec<&Value> {
        let Some(map) = self.objects.get(&resource) else {
            return Vec::new();
        };
        map.iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|want| ns == want))
            .map(|(_, v)| v)
            .collect()
    }

    /// Stores `obj` (new or replacing), stamping a fresh `resourceVersion`; returns the stored
    /// object.
    pub fn put(&mut self, resource: Resource, mut obj: Value) -> Value {
        self.resource_version += 1;
        let rv = self.resource_version.to_string();
        object::metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
        let key = (
            ns_key(resource, object::namespace(&obj)),
            object::name(&obj).to_owned(),
        );
        self.objects
            .entry(resource)
            .or_default()
            .insert(key, obj.clone());
        obj
    }

    /// Stores `obj` only if it differs from the stored copy (ignoring `resourceVersion`), so
    /// that a no-op reconcile does not bump versions. Returns whether it wrote.
    pub fn put_if_changed(&mut self, resource: Resource, obj: Value) -> bool {
        let unchanged = self
            .get(resource, object::namespace(&obj), object::name(&obj))
            .is_some_and(|current| {
                object::without_resource_version(current) == object::without_resource_version(&obj)
            });
        if unchanged {
            return false;
        }
        self.put(resource, obj);
        true
    }

    /// Removes an object, returning it.
    pub fn remove(&mut self, resource: Resource, namespace: &str, name: &str) -> Option<Value> {
        let removed = self
            .objects
            .get_mut(&resource)?
            .remove(&(ns_key(resource, namespace), name.to_owned()));
        if removed.is_some() {
            self.resource_version += 1;
        }
        removed
    }

    /// The UIDs of every object, for answering many "does this owner exist" questions at once.
    pub fn uids(&self) -> HashSet<&str> {
        self.objects
            .values()
            .flat_map(|m| m.values())
            .map(object::uid)
            .collect()
    }

    /// Whether the namespace object exists.
    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.get(Resource::Namespace, "", namespace).is_some()
    }
}

fn ns_key(resource: Resource, namespace: &str) -> String {
    if resource.namespaced() {
        namespace.to_owned()
    } else {
        String::new()
    }
}
