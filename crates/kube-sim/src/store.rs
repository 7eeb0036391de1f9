//! The object store: every object as JSON, keyed by resource type, namespace and name.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::logs::Logs;
use crate::node::{Behaviour, ImageBehaviours};
use crate::object;
use crate::resource::Resource;

/// All objects of the simulated cluster plus the global `resourceVersion` counter.
#[derive(Debug, Clone, Default)]
pub struct Store {
    resource_version: u64,
    objects: BTreeMap<Resource, BTreeMap<(String, String), Value>>,
    /// How many stored objects carry each UID (the garbage collector's "does this owner
    /// exist"), kept in step with every put and remove.
    uids: HashMap<String, u32>,
    /// Whether an object may have lost its owners since the last collection: set by every
    /// removal, by a UID that changed or went away, and by a put whose owner references name
    /// a UID not stored. Nothing else can make an orphan.
    orphans_possible: bool,
    /// Objects by the UID their controller owner reference names, so that a controller finds
    /// what it controls without scanning the namespace.
    controlled: HashMap<String, BTreeSet<(Resource, String, String)>>,
    /// Pods without a `status.phase`: the kubelet's work list.
    unstarted_pods: BTreeSet<(String, String)>,
    /// The containers' logs; a pod's go with it.
    logs: Logs,
    /// Behaviours set through the admin API, by image.
    image_behaviours: ImageBehaviours,
    /// Pods made to crash-loop through the admin API, whatever their image: they keep
    /// crashing until they are deleted.
    crashing_pods: BTreeSet<(String, String)>,
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
            ..Store::default()
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
        match namespace {
            None => map.values().collect(),
            // Keys sort by namespace first: one range, not a scan of every namespace.
            Some(want) => map
                .range((want.to_owned(), String::new())..)
                .take_while(|((ns, _), _)| ns == want)
                .map(|(_, v)| v)
                .collect(),
        }
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
        let owners_missing = object::owner_references(&obj).iter().any(|r| {
            r.get("uid")
                .and_then(Value::as_str)
                .is_none_or(|uid| !self.uids.contains_key(uid) && uid != object::uid(&obj))
        });
        let replaced = self
            .objects
            .entry(resource)
            .or_default()
            .insert(key.clone(), obj.clone());
        if let Some(old) = &replaced {
            self.unindex(resource, &key, old);
        }
        self.index(resource, key, &obj);
        let uid = object::uid(&obj);
        match replaced {
            Some(old) if object::uid(&old) == uid => {}
            Some(old) => {
                self.forget_uid(&old);
                self.remember_uid(uid);
            }
            None => self.remember_uid(uid),
        }
        self.orphans_possible |= owners_missing;
        obj
    }

    /// Stores `obj` only if it differs from the stored copy (ignoring `resourceVersion`), so
    /// that a no-op reconcile does not bump versions. Returns whether it wrote.
    pub fn put_if_changed(&mut self, resource: Resource, obj: Value) -> bool {
        let unchanged = self
            .get(resource, object::namespace(&obj), object::name(&obj))
            .is_some_and(|current| object::equal_ignoring_resource_version(current, &obj));
        if unchanged {
            return false;
        }
        self.put(resource, obj);
        true
    }

    /// Removes an object, returning it.
    pub fn remove(&mut self, resource: Resource, namespace: &str, name: &str) -> Option<Value> {
        let key = (ns_key(resource, namespace), name.to_owned());
        let removed = self.objects.get_mut(&resource)?.remove(&key);
        if resource == Resource::Pod && removed.is_some() {
            self.logs.forget_pod(namespace, name);
            self.crashing_pods
                .remove(&(namespace.to_owned(), name.to_owned()));
        }
        if let Some(old) = &removed {
            self.resource_version += 1;
            self.forget_uid(old);
            self.unindex(resource, &key, old);
        }
        removed
    }

    /// The objects of a type in a namespace whose controller owner reference names
    /// `owner_uid`, ordered by name.
    pub fn controlled_by(
        &self,
        resource: Resource,
        namespace: &str,
        owner_uid: &str,
    ) -> Vec<&Value> {
        let Some(keys) = self.controlled.get(owner_uid) else {
            return Vec::new();
        };
        keys.iter()
            .filter(|(r, ns, _)| *r == resource && ns == namespace)
            .filter_map(|(r, ns, name)| self.get(*r, ns, name))
            .collect()
    }

    /// Pods without a `status.phase`, ordered by namespace and name.
    pub fn unstarted_pods(&self) -> Vec<&Value> {
        self.unstarted_pods
            .iter()
            .filter_map(|(ns, name)| self.get(Resource::Pod, ns, name))
            .collect()
    }

    fn index(&mut self, resource: Resource, (ns, name): (String, String), obj: &Value) {
        if resource == Resource::Pod && obj.pointer("/status/phase").is_none() {
            self.unstarted_pods.insert((ns.clone(), name.clone()));
        }
        if let Some(owner) = object::controller_uid(obj) {
            self.controlled
                .entry(owner.to_owned())
                .or_default()
                .insert((resource, ns, name));
        }
    }

    fn unindex(&mut self, resource: Resource, (ns, name): &(String, String), old: &Value) {
        if resource == Resource::Pod {
            self.unstarted_pods.remove(&(ns.clone(), name.clone()));
        }
        if let Some(owner) = object::controller_uid(old)
            && let Some(keys) = self.controlled.get_mut(owner)
        {
            keys.remove(&(resource, ns.clone(), name.clone()));
            if keys.is_empty() {
                self.controlled.remove(owner);
            }
        }
    }

    /// Whether an object with this UID is stored.
    pub fn has_uid(&self, uid: &str) -> bool {
        self.uids.contains_key(uid)
    }

    /// Whether an orphan may exist, clearing the mark: the garbage collector asks before each
    /// pass, so a write that removed nothing does not scan the cluster.
    pub fn take_orphans_possible(&mut self) -> bool {
        std::mem::take(&mut self.orphans_possible)
    }

    fn remember_uid(&mut self, uid: &str) {
        if !uid.is_empty() {
            *self.uids.entry(uid.to_owned()).or_default() += 1;
        }
    }

    fn forget_uid(&mut self, old: &Value) {
        let uid = object::uid(old);
        if let Some(count) = self.uids.get_mut(uid) {
            *count -= 1;
            if *count == 0 {
                self.uids.remove(uid);
            }
        }
        self.orphans_possible = true;
    }

    /// The containers' logs.
    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// The containers' logs, to write.
    pub fn logs_mut(&mut self) -> &mut Logs {
        &mut self.logs
    }

    /// What a container of this image does: the behaviour set for it, else its tag's.
    pub fn behaviour_of(&self, image: &str) -> Behaviour {
        self.image_behaviours
            .get(image)
            .copied()
            .unwrap_or_else(|| Behaviour::of_tag(image))
    }

    /// Sets what containers of `image` do from their next start or kubelet period on.
    pub fn set_behaviour(&mut self, image: &str, behaviour: Behaviour) {
        self.image_behaviours.insert(image.to_owned(), behaviour);
    }

    /// Makes a pod crash-loop until it is deleted, whatever its image.
    pub fn set_crashing(&mut self, namespace: &str, pod: &str) {
        self.crashing_pods
            .insert((namespace.to_owned(), pod.to_owned()));
    }

    /// What a container of `image` in the pod `namespace/pod` does: it crashes if the pod was
    /// made to crash-loop, else as [`Store::behaviour_of`] says.
    pub fn behaviour_in(&self, namespace: &str, pod: &str, image: &str) -> Behaviour {
        if self
            .crashing_pods
            .contains(&(namespace.to_owned(), pod.to_owned()))
        {
            Behaviour::Crash
        } else {
            self.behaviour_of(image)
        }
    }

    /// The behaviours set through the admin API.
    pub fn image_behaviours(&self) -> &ImageBehaviours {
        &self.image_behaviours
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str, uid: &str, owner: Option<&str>) -> Value {
        let mut obj = json!({"metadata": {"name": name, "namespace": ns, "uid": uid}});
        if let Some(owner) = owner {
            obj["metadata"]["ownerReferences"] = json!([{"uid": owner}]);
        }
        obj
    }

    #[test]
    fn a_namespace_lists_only_its_own_objects() {
        let mut store = Store::new();
        for (ns, name) in [("a", "x"), ("ab", "y"), ("b", "z"), ("a", "w")] {
            store.put(Resource::Pod, pod(ns, name, &format!("{ns}/{name}"), None));
        }
        let names = |ns| -> Vec<&str> {
            store
                .list(Resource::Pod, Some(ns))
                .into_iter()
                .map(object::name)
                .collect()
        };
        assert_eq!(names("a"), ["w", "x"]);
        assert_eq!(names("ab"), ["y"]);
        assert!(names("").is_empty());
        assert_eq!(store.list(Resource::Pod, None).len(), 4);
        assert!(store.list(Resource::ReplicaSet, Some("a")).is_empty());
    }

    fn controller_ref(uid: &str) -> Value {
        json!([{"uid": "other"}, {"uid": uid, "controller": true}])
    }

    #[test]
    fn controlled_objects_and_unstarted_pods_follow_every_write() {
        let mut store = Store::new();
        let mut a = pod("ns", "a", "ua", None);
        a["metadata"]["ownerReferences"] = controller_ref("rs1");
        let mut b = a.clone();
        b["metadata"]["name"] = json!("b");
        b["metadata"]["uid"] = json!("ub");
        let mut elsewhere = a.clone();
        elsewhere["metadata"]["namespace"] = json!("other");
        store.put(Resource::Pod, a.clone());
        store.put(Resource::Pod, b.clone());
        store.put(Resource::Pod, elsewhere);
        // Owned but not as controller: not listed.
        store.put(Resource::Pod, pod("ns", "c", "uc", Some("rs1")));
        let names = |store: &Store| -> Vec<String> {
            store
                .controlled_by(Resource::Pod, "ns", "rs1")
                .into_iter()
                .map(|o| object::name(o).to_owned())
                .collect()
        };
        assert_eq!(names(&store), ["a", "b"]);
        assert!(
            store
                .controlled_by(Resource::ReplicaSet, "ns", "rs1")
                .is_empty()
        );
        assert_eq!(store.unstarted_pods().len(), 4);

        // Started, and moved to another controller.
        b["status"] = json!({"phase": "Running"});
        b["metadata"]["ownerReferences"] = controller_ref("rs2");
        store.put(Resource::Pod, b);
        assert_eq!(names(&store), ["a"]);
        assert_eq!(store.controlled_by(Resource::Pod, "ns", "rs2").len(), 1);
        assert_eq!(store.unstarted_pods().len(), 3);

        store.remove(Resource::Pod, "ns", "a");
        assert!(names(&store).is_empty());
        let unstarted: Vec<&str> = store
            .unstarted_pods()
            .into_iter()
            .map(object::name)
            .collect();
        assert_eq!(unstarted, ["c", "a"], "ns/c, then other/a");
    }

    #[test]
    fn the_uid_index_and_the_orphan_mark_follow_every_write() {
        let mut store = Store::new();
        store.put(Resource::Pod, pod("a", "owner", "u1", None));
        store.put(Resource::Pod, pod("a", "child", "u2", Some("u1")));
        assert!(store.has_uid("u1") && store.has_uid("u2"));
        assert!(!store.take_orphans_possible(), "every owner is stored");

        store.put(Resource::Pod, pod("a", "stray", "u3", Some("nobody")));
        assert!(store.take_orphans_possible());
        assert!(!store.take_orphans_possible(), "taking the mark clears it");

        // Same name, new UID: the old UID is gone, and its dependents may be orphans.
        store.put(Resource::Pod, pod("a", "owner", "u9", None));
        assert!(!store.has_uid("u1") && store.has_uid("u9"));
        assert!(store.take_orphans_possible());

        // A rewrite with the same UID changes nothing.
        store.put(Resource::Pod, pod("a", "owner", "u9", None));
        assert!(!store.take_orphans_possible());

        store.remove(Resource::Pod, "a", "owner");
        assert!(!store.has_uid("u9"));
        assert!(store.take_orphans_possible());
        assert!(store.remove(Resource::Pod, "a", "owner").is_none());
        assert!(
            !store.take_orphans_possible(),
            "removing nothing marks nothing"
        );
    }
}
