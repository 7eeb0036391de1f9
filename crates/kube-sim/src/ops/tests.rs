use super::*;

fn store_with_deployment() -> Store {
    let mut store = Store::new();
    create(
        &mut store,
        Resource::Namespace,
        None,
        json!({"metadata": {"name": "ns"}}),
        false,
    )
    .unwrap();
    create(
        &mut store,
        Resource::Deployment,
        Some("ns"),
        json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": "img:v1"}]}}
            }
        }),
        false,
    )
    .unwrap();
    store
}

#[test]
fn dry_run_writes_answer_without_changing_anything() {
    let mut store = store_with_deployment();
    let before = store.resource_version();
    let answer = patch_scale(
        &mut store,
        Resource::Deployment,
        "ns",
        "web",
        &json!({"spec": {"replicas": 7}}),
        PatchType::Merge,
        true,
    )
    .unwrap();
    assert_eq!(answer.pointer("/spec/replicas"), Some(&json!(7)));
    let pod = store.list(Resource::Pod, Some("ns"))[0].clone();
    delete(
        &mut store,
        Resource::Pod,
        "ns",
        object::name(&pod),
        &DeleteOptions::default(),
        true,
    )
    .unwrap();
    assert_eq!(store.resource_version(), before);
    assert_eq!(store.list(Resource::Pod, Some("ns")).len(), 2);
}

#[test]
fn a_stale_resource_version_is_a_conflict() {
    let mut store = store_with_deployment();
    let mut stale = get(&store, Resource::Deployment, "ns", "web").unwrap();
    patch(
        &mut store,
        Resource::Deployment,
        "ns",
        "web",
        &json!({"spec": {"replicas": 3}}),
        PatchType::Merge,
        false,
    )
    .unwrap();
    stale["spec"]["replicas"] = json!(4);
    let err = update(&mut store, Resource::Deployment, "ns", "web", stale, false).unwrap_err();
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, "Conflict");
}

#[test]
fn errors_have_the_api_server_shape() {
    let mut store = store_with_deployment();
    let err = get(&store, Resource::Deployment, "ns", "nope").unwrap_err();
    assert_eq!(
        err.to_status(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"deployments.apps \"nope\" not found","reason":"NotFound",
               "details":{"name":"nope","group":"apps","kind":"deployments"},"code":404})
    );
    let dup = create(
        &mut store,
        Resource::Namespace,
        None,
        json!({"metadata": {"name": "ns"}}),
        false,
    )
    .unwrap_err();
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    let forbidden = delete(
        &mut store,
        Resource::Namespace,
        "",
        "ns",
        &DeleteOptions::default(),
        false,
    );
    assert!(forbidden.is_ok());
    assert!(store.list(Resource::Deployment, Some("ns")).is_empty());
}
