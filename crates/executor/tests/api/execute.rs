//! `POST /executor/execute`: every action's success and failure rows, the refusals in
//! the order the executor checks them, dry runs and Kubernetes faults.

use kube_sim::{FaultRule, Resource};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn restart_happy_path() {
    let app = spawn_app().await;
    let mut b = body_a();
    b["signature"] = json!(SIG_A);
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["success"], true);
    assert!(res.get("error").is_none());
    uuid::Uuid::parse_str(res["auditId"].as_str().unwrap()).unwrap();
    let r = &res["result"];
    assert_eq!(r["action"], "restart_pod");
    assert_eq!(r["namespace"], "default");
    assert_eq!(r["podName"], "test-pod");
    assert_eq!(r["status"], "deleted");
    assert_eq!(
        r["message"],
        "Pod deleted and will be recreated by deployment"
    );
    assert_eq!(
        app.k8s_calls(),
        vec![
            "GET /api/v1/namespaces/default/pods/test-pod",
            "DELETE /api/v1/namespaces/default/pods/test-pod"
        ]
    );
    let delete = app
        .sim
        .cluster()
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE")
        .unwrap();
    assert_eq!(delete.body.unwrap()["propagationPolicy"], "Background");
    assert!(app.sim.get(Resource::Pod, "default", "test-pod").is_none());

    let (st, dur, completed, rt): (String, Option<i32>, bool, String) = sqlx::query_as(
        "SELECT status, execution_duration, completed_at IS NOT NULL, resource_type FROM action_audit_logs",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(st, "completed");
    assert!(dur.unwrap() >= 0);
    assert!(completed);
    assert_eq!(rt, "pod");
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            r#"executor_actions_total{action_type="restart_pod",namespace="default",status="completed"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(&m, r#"executor_pod_restarts_total{namespace="default"}"#),
        1.0
    );
}

#[tokio::test]
async fn missing_signature_is_400_and_audited() {
    let app = spawn_app().await;
    let (status, res) = app.execute(&body_a()).await;
    assert_eq!(status, 400);
    assert_eq!(
        res,
        json!({"statusCode":400,"message":"Action signature is required","error":"Bad Request"})
    );
    assert!(app.k8s_calls().is_empty());
    assert_eq!(
        app.rows().await,
        vec![(
            "rejected".into(),
            "pod".into(),
            Some("Action signature is required".into())
        )]
    );
}

#[tokio::test]
async fn python_sorted_keys_signature_is_403() {
    let app = spawn_app().await;
    let mut b = body_a();
    b["signature"] = json!(SIG_E);
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 403);
    assert_eq!(
        res,
        json!({"statusCode":403,"message":"Invalid action signature","error":"Forbidden"})
    );
    assert!(app.k8s_calls().is_empty());
}

#[tokio::test]
async fn forbidden_namespace_wins_over_missing_signature() {
    let app = spawn_app().await;
    let b = json!({"actionType":"restart_pod","actionParams":{"namespace":"kube-system","podName":"x"}});
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 403);
    assert_eq!(
        res["message"],
        "Namespace kube-system is not in allowed list: default, production"
    );
    assert_eq!(res["error"], "Forbidden");
    let rows = app.rows().await;
    assert_eq!(rows[0].0, "rejected");

    let missing = json!({"actionType":"restart_pod","actionParams":{"podName":"x"}});
    let (status, res) = app.execute(&missing).await;
    assert_eq!(status, 403);
    assert_eq!(
        res["message"],
        "Namespace undefined is not in allowed list: default, production"
    );

    let listed = spawn_app_with(&[("ALLOWED_NAMESPACES", "default,kube-system")]).await;
    let (status, res) = listed.execute(&b).await;
    assert_eq!(status, 403);
    assert_eq!(res["message"], "Namespace kube-system is forbidden");
}

#[tokio::test]
async fn scale_happy_path() {
    let app = spawn_app().await;
    let mut b = body(
        "scale_deployment",
        json!({"namespace":"production","deploymentName":"api-deployment","replicas":5}),
        Some("ai-engine"),
    );
    b["signature"] = json!(SIG_B);
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 200, "{res}");
    let r = &res["result"];
    assert_eq!(r["action"], "scale_deployment");
    assert_eq!(r["deploymentName"], "api-deployment");
    assert_eq!(r["previousReplicas"], 3);
    assert_eq!(r["newReplicas"], 5);
    assert_eq!(r["status"], "scaled");
    let path = "/apis/apps/v1/namespaces/production/deployments/api-deployment/scale";
    assert_eq!(
        app.k8s_calls(),
        vec![format!("GET {path}"), format!("PATCH {path}")]
    );
    let patch = app
        .sim
        .cluster()
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(patch.body.unwrap(), json!({"spec":{"replicas":5}}));
    let d = app
        .sim
        .get(Resource::Deployment, "production", "api-deployment")
        .unwrap();
    assert_eq!(d["spec"]["replicas"], 5);
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            r#"executor_scaling_operations_total{direction="up",namespace="production"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn replica_bound_is_400_after_the_signature() {
    let app = spawn_app().await;
    let b = sign(body(
        "scale_deployment",
        json!({"namespace":"production","deploymentName":"api-deployment","replicas":101}),
        Some("ai-engine"),
    ));
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 400);
    let messages: Vec<String> = serde_json::from_value(res["message"].clone()).unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("actionParams.replicas must not be greater than 100")),
        "{messages:?}"
    );
    assert!(app.k8s_calls().is_empty());
    assert_eq!(app.rows().await[0].0, "rejected");

    for bad in [json!("5"), json!(2.5), json!(-1)] {
        let b = sign(body(
            "scale_deployment",
            json!({"namespace":"production","deploymentName":"api-deployment","replicas":bad}),
            None,
        ));
        let (status, _) = app.execute(&b).await;
        assert_eq!(status, 400, "replicas {bad}");
    }
    let unknown = sign(body(
        "restart_pod",
        json!({"namespace":"default","podName":"test-pod","force":true}),
        None,
    ));
    let (status, res) = app.execute(&unknown).await;
    assert_eq!(status, 400);
    assert_eq!(
        res["message"][0],
        "actionParams.property force should not exist"
    );
}

#[tokio::test]
async fn pod_not_found_is_a_failed_action() {
    let app = spawn_app().await;
    let b = sign(body(
        "restart_pod",
        json!({"namespace":"default","podName":"ghost"}),
        Some("admin"),
    ));
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 200);
    assert_eq!(res["success"], false);
    assert_eq!(res["error"], "Pod ghost not found in namespace default");
    assert!(res.get("result").is_none());
    assert_eq!(
        app.k8s_calls(),
        vec!["GET /api/v1/namespaces/default/pods/ghost"]
    );
    assert_eq!(app.rows().await[0].0, "failed");
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            r#"executor_actions_total{action_type="restart_pod",namespace="default",status="failed"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn bare_pod_is_refused_without_delete() {
    let app = spawn_app().await;
    let b = sign(body(
        "restart_pod",
        json!({"namespace":"default","podName":"lonely"}),
        Some("admin"),
    ));
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 200);
    assert_eq!(res["success"], false);
    assert_eq!(
        res["error"],
        "Pod lonely is not managed by a controller; refusing to delete"
    );
    assert!(!app.k8s_calls().iter().any(|c| c.starts_with("DELETE")));
    assert!(app.sim.get(Resource::Pod, "default", "lonely").is_some());
}

#[tokio::test]
async fn rollback_to_previous_and_to_a_missing_revision() {
    let app = spawn_app().await;
    let mut b = body(
        "rollback_deployment",
        json!({"namespace":"production","deploymentName":"api-deployment"}),
        None,
    );
    b["signature"] = json!(SIG_C);
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(
        res["result"],
        json!({"action":"rollback_deployment","namespace":"production","deploymentName":"api-deployment","revision":"previous","status":"rolled_back","fromRevision":3,"toRevision":2})
    );
    let calls = app.k8s_calls();
    assert_eq!(
        calls,
        vec![
            "GET /apis/apps/v1/namespaces/production/deployments/api-deployment",
            "GET /apis/apps/v1/namespaces/production/replicasets",
            "PATCH /apis/apps/v1/namespaces/production/deployments/api-deployment",
        ]
    );
    let reqs = app.sim.cluster().requests();
    let list = reqs
        .iter()
        .find(|r| r.path.ends_with("/replicasets"))
        .unwrap();
    assert!(
        list.query
            .as_deref()
            .unwrap_or_default()
            .contains("labelSelector=app%3Dapi"),
        "{:?}",
        list.query
    );
    let patch = reqs.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/json-patch+json")
    );
    let ops = patch.body.clone().unwrap();
    assert_eq!(ops[0]["op"], "replace");
    assert_eq!(ops[0]["path"], "/spec/template");
    assert!(
        ops[0]["value"]["metadata"]["labels"]
            .get("pod-template-hash")
            .is_none()
    );
    assert_eq!(
        ops[0]["value"]["spec"]["containers"][0]["image"], "api:2",
        "the template of revision 2"
    );
    let d = app
        .sim
        .get(Resource::Deployment, "production", "api-deployment")
        .unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "api:2"
    );
    assert_eq!(
        d["metadata"]["annotations"]["aegis.io/rolled-back-from"],
        "3"
    );

    let b = sign(body(
        "rollback_deployment",
        json!({"namespace":"production","deploymentName":"api-deployment","revision":7}),
        None,
    ));
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 200);
    assert_eq!(res["success"], false);
    assert_eq!(
        res["error"],
        "Revision 7 not found for deployment api-deployment"
    );
}

#[tokio::test]
async fn rollback_to_the_current_revision_and_missing_deployment_fail() {
    let app = spawn_app().await;
    let b = sign(body(
        "rollback_deployment",
        json!({"namespace":"production","deploymentName":"api-deployment","revision":3}),
        None,
    ));
    let (_, res) = app.execute(&b).await;
    assert_eq!(res["error"], "Revision 3 is already the current revision");
    let b = sign(body(
        "scale_deployment",
        json!({"namespace":"production","deploymentName":"nope","replicas":1}),
        None,
    ));
    let (_, res) = app.execute(&b).await;
    assert_eq!(
        res["error"],
        "Deployment nope not found in namespace production"
    );
    let b = sign(body(
        "rollback_deployment",
        json!({"namespace":"production","deploymentName":"nope"}),
        None,
    ));
    let (_, res) = app.execute(&b).await;
    assert_eq!(
        res["error"],
        "Deployment nope not found in namespace production"
    );
}

#[tokio::test]
async fn unsupported_enum_members_fail_without_touching_the_cluster() {
    let app = spawn_app().await;
    for (action, params, rt) in [
        (
            "delete_pod",
            json!({"namespace":"default","podName":"test-pod"}),
            "pod",
        ),
        ("update_config", json!({"namespace":"default"}), "unknown"),
    ] {
        let b = sign(body(action, params, None));
        let (status, res) = app.execute(&b).await;
        assert_eq!(status, 200);
        assert_eq!(res["success"], false);
        assert_eq!(res["error"], format!("Unsupported action type: {action}"));
        let rows = app.rows().await;
        assert_eq!(rows[0].0, "failed");
        assert_eq!(rows[0].1, rt);
    }
    assert!(app.k8s_calls().is_empty());
}

#[tokio::test]
async fn invalid_enum_shape_and_extra_keys() {
    let app = spawn_app().await;
    let (status, res) = app
        .execute(&json!({"actionType":"exec","actionParams":"x"}))
        .await;
    assert_eq!(status, 400);
    let messages: Vec<String> = serde_json::from_value(res["message"].clone()).unwrap();
    assert!(messages.contains(&"actionType must be one of the following values: restart_pod, scale_deployment, rollback_deployment, delete_pod, update_config".to_owned()));
    assert!(messages.contains(&"actionParams must be an object".to_owned()));
    assert_eq!(res["error"], "Bad Request");

    let mut b = sign(body_a());
    b["foo"] = json!(1);
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 400);
    assert_eq!(res["message"][0], "property foo should not exist");
    assert!(
        app.rows().await.is_empty(),
        "unparseable bodies are not audited"
    );

    let res = app
        .client
        .post(format!("{}/executor/execute", app.address))
        .header("content-type", "application/json")
        .body("{\"actionType\":")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"], "Bad Request");
}

#[tokio::test]
async fn policy_decision_is_recorded_and_a_deny_rejects() {
    let app = spawn_app().await;
    let mut b = body_a();
    b["policyDecision"] =
        json!({"allowed":true,"reason":"ok","appliedPolicies":["Allow Self-Healing Actions"]});
    b["signature"] = json!(SIG_A);
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["success"], true);
    let stored: Value = sqlx::query_scalar(
        "SELECT policy_decision FROM action_audit_logs WHERE status='completed'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(stored["appliedPolicies"][0], "Allow Self-Healing Actions");

    b["policyDecision"]["allowed"] = json!(false);
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 403);
    assert_eq!(res["message"], "Policy decision denies this action");
    assert_eq!(app.rows().await[0].0, "rejected");
    let m = app.metrics().await;
    assert_eq!(
        metric(&m, r#"executor_policy_checks_total{result="approved"}"#),
        1.0
    );
    assert_eq!(
        metric(&m, r#"executor_policy_checks_total{result="denied"}"#),
        1.0
    );
}

#[tokio::test]
async fn dry_run_leaves_the_cluster_unchanged() {
    let app = spawn_app().await;
    let before_pods = app.sim.list(Resource::Pod, Some("default"));
    let before = app
        .sim
        .get(Resource::Deployment, "production", "api-deployment")
        .unwrap();
    for b in [
        body(
            "restart_pod",
            json!({"namespace":"default","podName":"test-pod","dryRun":true}),
            None,
        ),
        body(
            "scale_deployment",
            json!({"namespace":"production","deploymentName":"api-deployment","replicas":7,"dryRun":true}),
            None,
        ),
        body(
            "rollback_deployment",
            json!({"namespace":"production","deploymentName":"api-deployment","dryRun":true}),
            None,
        ),
    ] {
        let (status, res) = app.execute(&sign(b)).await;
        assert_eq!(status, 200, "{res}");
        assert_eq!(res["success"], true, "{res}");
        assert_eq!(res["result"]["dryRun"], true);
    }
    let mutating: Vec<_> = app
        .sim
        .cluster()
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert_eq!(mutating.len(), 3);
    for r in &mutating {
        let q = r.query.clone().unwrap_or_default();
        let in_body = r
            .body
            .as_ref()
            .and_then(|b| b.get("dryRun"))
            .is_some_and(|d| d == &json!(["All"]));
        assert!(q.contains("dryRun=All") || in_body, "{r:?}");
    }
    assert_eq!(app.sim.list(Resource::Pod, Some("default")), before_pods);
    let after = app
        .sim
        .get(Resource::Deployment, "production", "api-deployment")
        .unwrap();
    assert_eq!(after["spec"], before["spec"]);
    assert_eq!(
        after["metadata"]["annotations"],
        before["metadata"]["annotations"]
    );
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            r#"executor_dry_runs_total{action_type="scale_deployment"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn kubernetes_errors_are_mapped_and_audited() {
    let app = spawn_app().await;
    app.sim.set_faults(vec![
        FaultRule::new("/apis/apps/v1/namespaces/production/deployments/api-deployment/scale")
            .method("PATCH")
            .status(500)
            .message("etcd is sad"),
    ]);
    let b = sign(body(
        "scale_deployment",
        json!({"namespace":"production","deploymentName":"api-deployment","replicas":4}),
        None,
    ));
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 200);
    assert_eq!(res["success"], false);
    assert_eq!(res["error"], "Kubernetes API error 500: etcd is sad");
    let rows = app.rows().await;
    assert_eq!(rows[0].0, "failed");
    assert_eq!(
        rows[0].2.as_deref(),
        Some("Kubernetes API error 500: etcd is sad")
    );
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            r#"executor_k8s_api_calls_total{operation="patch",resource_type="deployment_scale",status="error"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn an_action_in_flight_is_in_progress_and_its_row_passed_through_pending() {
    let app = spawn_app().await;
    app.sim.set_faults(vec![
        FaultRule::new("/api/v1/namespaces/default/pods").latency_ms(800),
    ]);
    let watch = async {
        // Every status the row shows while the Kubernetes call is slow.
        let mut seen = Vec::new();
        for _ in 0..60 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if let Some((status, _, _)) = app.rows().await.into_iter().next() {
                if seen.last() != Some(&status) {
                    seen.push(status.clone());
                }
                if status == "completed" {
                    break;
                }
            }
        }
        seen
    };
    let signed = sign(body_a());
    let ((status, res), seen) = tokio::join!(app.execute(&signed), watch);
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["success"], true, "{res}");
    assert_eq!(
        seen.first().map(String::as_str),
        Some("in_progress"),
        "{seen:?}"
    );
    // The trigger accepts only `pending` on insert and only pending → in_progress after it, so
    // a row that reached in_progress and then completed went through all three.
    assert_eq!(app.rows().await[0].0, "completed");
    let chained: (Option<i64>, Option<String>) = sqlx::query_as(
        "SELECT chain_seq, hash FROM action_audit_logs ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(chained.0.is_some() && chained.1.is_some(), "{chained:?}");
}

#[tokio::test]
async fn kubernetes_latency_times_out_per_call_and_per_action() {
    let app = spawn_app_with(&[("K8S_REQUEST_TIMEOUT_MS", "300")]).await;
    app.sim.set_faults(vec![
        FaultRule::new("/api/v1/namespaces/default/pods").latency_ms(1500),
    ]);
    let (status, res) = app.execute(&sign(body_a())).await;
    assert_eq!(status, 200);
    assert_eq!(res["success"], false);
    assert_eq!(res["error"], "Kubernetes API timeout after 300ms");
    assert_eq!(app.rows().await[0].0, "failed");

    let slow = spawn_app_with(&[
        ("ACTION_TIMEOUT_MS", "400"),
        ("K8S_REQUEST_TIMEOUT_MS", "300"),
    ])
    .await;
    slow.sim.set_faults(vec![
        FaultRule::new("/apis/apps/v1/namespaces/production").latency_ms(250),
    ]);
    let b = sign(body(
        "rollback_deployment",
        json!({"namespace":"production","deploymentName":"api-deployment"}),
        None,
    ));
    let (status, res) = slow.execute(&b).await;
    assert_eq!(status, 200);
    assert_eq!(res["error"], "Action timed out after 400ms");
}

#[tokio::test]
async fn unreachable_api_server_fails_the_action_with_the_mapped_message() {
    let sim = start_sim().await;
    let path = std::env::temp_dir().join(format!(
        "aegis-dead-{}.kubeconfig",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(
        &path,
        sim.kubeconfig_yaml()
            .replace(sim.base_url(), "http://127.0.0.1:9"),
    )
    .unwrap();
    let _cleanup = TempFile(path.clone());
    let app = spawn_app_on(sim, &[("KUBECONFIG_PATH", path.to_str().unwrap())]).await;
    let (status, res) = app.execute(&sign(body_a())).await;
    assert_eq!(status, 200);
    assert_eq!(res["success"], false);
    assert!(
        res["error"]
            .as_str()
            .unwrap()
            .starts_with("Kubernetes API unreachable: "),
        "{res}"
    );
    assert_eq!(app.rows().await[0].0, "failed");
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    let v: Value = ready.json().await.unwrap();
    assert_eq!(v["checks"]["kubernetes"], "down");
    assert_eq!(v["checks"]["database"], "up");
}

#[tokio::test]
async fn correlation_id_comes_from_traceparent_and_is_echoed_and_stored() {
    let app = spawn_app().await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = app
        .client
        .post(format!("{}/executor/execute", app.address))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&sign(body_a()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-correlation-id"], trace);
    let stored: Option<String> = sqlx::query_scalar("SELECT correlation_id FROM action_audit_logs")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(trace));

    let res = app
        .client
        .post(format!("{}/executor/execute", app.address))
        .header("x-correlation-id", "0af7651916cd43dd8448eb211c80319c")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["x-correlation-id"],
        "0af7651916cd43dd8448eb211c80319c"
    );
}

#[tokio::test]
async fn a_paused_deployment_is_not_rolled_back() {
    let app = spawn_app().await;
    app.sim
        .cluster()
        .with_store(|s| {
            kube_sim::ops::patch(
                s,
                Resource::Deployment,
                "production",
                "api-deployment",
                &json!({"spec": {"paused": true}}),
                kube_sim::patch::PatchType::Merge,
                false,
            )
        })
        .unwrap();
    let b = sign(body(
        "rollback_deployment",
        json!({"namespace":"production","deploymentName":"api-deployment"}),
        None,
    ));
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 200);
    assert_eq!(
        res["error"],
        "Deployment api-deployment is paused; resume it before rolling back"
    );
    assert!(!app.k8s_calls().iter().any(|c| c.starts_with("PATCH")));
}

#[tokio::test]
async fn a_policy_decision_can_be_required() {
    let app = spawn_app_with(&[("REQUIRE_POLICY_DECISION", "true")]).await;
    let (status, res) = app.execute(&sign(body_a())).await;
    assert_eq!(status, 400);
    assert_eq!(res["message"], "policyDecision is required");
    assert_eq!(app.rows().await[0].0, "rejected");
    let mut b = sign(body_a());
    b["policyDecision"] = json!({"allowed":true,"reason":"ok","appliedPolicies":[]});
    let res = app.post_raw("/executor/execute", &b).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-ratelimit-limit"], "100");
}
