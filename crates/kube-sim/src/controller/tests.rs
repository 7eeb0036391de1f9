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
                let status = crate::kubelet::crashloop_status(&current, 4);
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
                ops::create(s, Resource::ReplicaSet, Some("ns"), bare_rs.clone(), false).unwrap();
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
            .filter(|o| object::name(o).starts_with(&format!("{app}-")) || object::name(o) == app)
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
