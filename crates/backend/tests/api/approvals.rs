//! Approvals and the kill switch, against a real executor in front of kube-sim: approvals
//! expire; the operator role approves, rejects and switches modes and does nothing more; an
//! approval plans again from the cluster as it is and checks the guardrails again, which only
//! an override with a reason bypasses; and the remediation mode, changed through one replica,
//! holds in another before its next decision.

use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    auth_support::{ADMIN_EMAIL, assert_error, spawn_with_admin},
    remediation_loop::{Loop, signal, start, step, steps},
};

fn approve_path(id: &str) -> String {
    format!("/api/v1/remediation/incidents/{id}/approve")
}

async fn outbox_types(l: &Loop, incident_id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT event_type FROM notification_events WHERE incident_id = $1::uuid ORDER BY created_at",
    )
    .bind(incident_id)
    .fetch_all(&l.backend_db)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_unanswered_approval_expires_and_the_next_signal_opens_a_new_incident() {
    let l = start("approval", &[("REMEDIATION_APPROVAL_TIMEOUT_SECONDS", "1")]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    let first = l.signal(&signal("shop", "web", None, "scale_up")).await;
    let id = first["incidentId"].as_str().unwrap().to_owned();
    let waiting = l.wait_for(&id, &["awaiting_approval"]).await;
    let expires =
        chrono::DateTime::parse_from_rfc3339(waiting["approvalExpiresAt"].as_str().unwrap())
            .unwrap();
    let asked = chrono::DateTime::parse_from_rfc3339(
        step(&waiting, "approval_required")["at"].as_str().unwrap(),
    )
    .unwrap();
    // The deadline is set from the loop's clock just before the step's transaction stamps the
    // step, so it falls up to the timeout after the step (less the time between the two).
    let after = (expires - asked).num_milliseconds();
    assert!(
        (0..=1100).contains(&after),
        "expires {after} ms after asking"
    );
    assert!(step(&waiting, "approval_required")["details"]["expiresAt"].is_string());

    let expired = l.wait_for(&id, &["expired"]).await;
    assert_eq!(steps(&expired).last().map(String::as_str), Some("expired"));
    let reason = step(&expired, "expired")["details"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("within 1 min"), "{reason}");
    assert!(expired["resolvedAt"].is_string());
    assert_eq!(
        l.replicas("shop", "web"),
        2,
        "an expired approval acts on nothing"
    );
    // The expiry is notified, in the transaction of the step.
    assert_eq!(
        outbox_types(&l, &id).await,
        ["opened", "awaiting_approval", "expired"]
    );

    // Approving now is too late.
    let res = l.call(Method::POST, &approve_path(&id), None).await;
    assert_error(
        res,
        409,
        &format!("Incident {id} is not awaiting approval (status: expired)"),
    )
    .await;
    // One asked for by a backend of an earlier version has no deadline: it expires the
    // timeout after its last change.
    l.allow("scale api", "scale_up", "api", None).await;
    let legacy = l.signal(&signal("shop", "api", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    l.wait_for(&legacy, &["awaiting_approval"]).await;
    sqlx::query("UPDATE incidents SET approval_expires_at = NULL WHERE id = $1::uuid")
        .bind(&legacy)
        .execute(&l.backend_db)
        .await
        .unwrap();
    let legacy = l.wait_for(&legacy, &["expired"]).await;
    assert!(legacy["approvalExpiresAt"].is_null());

    // The same signal again is a new incident, decided afresh.
    let second = l.signal(&signal("shop", "web", None, "scale_up")).await;
    assert_eq!(second["deduplicated"], false);
    assert_ne!(second["incidentId"], first["incidentId"]);
    l.wait_for(
        second["incidentId"].as_str().unwrap(),
        &["awaiting_approval"],
    )
    .await;
}

/// The requests of a role matrix that `token` is refused (403), with the incident id as
/// `{id}`.
async fn forbidden_for(l: &Loop, token: &str, web: &str) -> Vec<String> {
    let mut refused = Vec::new();
    for (method, path, body) in [
        (
            Method::GET,
            "/api/v1/remediation/incidents".to_owned(),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/remediation/incidents/{web}"),
            None,
        ),
        (Method::GET, "/api/v1/remediation/mode".to_owned(), None),
        (
            Method::PUT,
            "/api/v1/remediation/mode".to_owned(),
            Some(json!({"mode": "bogus"})),
        ),
        (
            Method::POST,
            format!("/api/v1/remediation/incidents/{web}/reject"),
            Some(json!({"reason": 5})),
        ),
        (
            Method::POST,
            format!("/api/v1/remediation/incidents/{web}/approve"),
            Some(json!({"nope": 1})),
        ),
        (Method::GET, "/api/v1/users".to_owned(), None),
        (Method::POST, "/api/v1/policy".to_owned(), Some(json!({}))),
        (
            Method::GET,
            "/api/v1/notifications/channels".to_owned(),
            None,
        ),
        (
            Method::POST,
            "/api/v1/remediation/incidents".to_owned(),
            Some(json!({})),
        ),
    ] {
        let res = l.app.send(method.clone(), &path, Some(token), body).await;
        if res.status() == 403 {
            refused.push(format!("{method} {path}").replace(web, "{id}"));
        }
    }
    refused
}

#[tokio::test]
async fn operators_approve_reject_label_and_switch_modes_and_nothing_more() {
    let l = start("approval", &[]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    l.allow("scale api", "scale_up", "api", None).await;
    let operator = l
        .app
        .user_with_role(&l.admin, "op@example.com", "operator")
        .await;
    let auditor = l
        .app
        .user_with_role(&l.admin, "audit@example.com", "auditor")
        .await;
    let user = l
        .app
        .user_with_role(&l.admin, "someone@example.com", "user")
        .await;
    let web = l.signal(&signal("shop", "web", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let api = l.signal(&signal("shop", "api", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    l.wait_for(&web, &["awaiting_approval"]).await;
    l.wait_for(&api, &["awaiting_approval"]).await;

    // What each role may do, checked before any body is read.
    assert_eq!(
        forbidden_for(&l, &operator.access, &web).await,
        [
            "GET /api/v1/users",
            "POST /api/v1/policy",
            "GET /api/v1/notifications/channels",
            "POST /api/v1/remediation/incidents",
        ],
        "an operator decides on remediation and administers nothing"
    );
    assert_eq!(
        forbidden_for(&l, &auditor.access, &web).await,
        [
            "PUT /api/v1/remediation/mode",
            "POST /api/v1/remediation/incidents/{id}/reject",
            "POST /api/v1/remediation/incidents/{id}/approve",
            "GET /api/v1/users",
            "POST /api/v1/policy",
            "GET /api/v1/notifications/channels",
            "POST /api/v1/remediation/incidents",
        ],
        "an auditor only reads"
    );
    assert_eq!(
        forbidden_for(&l, &user.access, &web).await.len(),
        10,
        "a user reads no incident, decides nothing and administers nothing"
    );

    // The operator approves one and rejects the other.
    let res = l
        .app
        .send(
            Method::POST,
            &approve_path(&web),
            Some(&operator.access),
            Some(json!({"reason": "load test ahead"})),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let done = l.wait_for(&web, &["resolved", "failed", "escalated"]).await;
    assert_eq!(done["status"], "resolved", "{done:#}");
    assert_eq!(done["decidedBy"], "op@example.com");
    assert_eq!(
        step(&done, "approved")["details"]["reason"],
        "load test ahead"
    );
    let res = l
        .app
        .send(
            Method::POST,
            &format!("/api/v1/remediation/incidents/{api}/reject"),
            Some(&operator.access),
            Some(json!({"reason": "not now"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_type, entity_id FROM audit_events \
          WHERE event_type IN ('remediation_approved', 'remediation_rejected') ORDER BY created_at",
    )
    .fetch_all(&l.backend_db)
    .await
    .unwrap();
    assert_eq!(
        audited,
        [
            ("remediation_approved".to_owned(), web.clone()),
            ("remediation_rejected".to_owned(), api.clone())
        ]
    );
    // And switches the mode, but cannot touch users.
    let res = l
        .app
        .send(
            Method::PUT,
            "/api/v1/remediation/mode",
            Some(&operator.access),
            Some(json!({"mode": "off", "reason": "incident bridge"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let modes: Value = res.json().await.unwrap();
    assert_eq!(modes["global"]["mode"], "off");
    assert_eq!(modes["global"]["updatedBy"], "op@example.com");
    let res = l
        .app
        .send(
            Method::PUT,
            &format!("/api/v1/users/{}/roles", operator.user_id()),
            Some(&operator.access),
            Some(json!({"roles": ["admin"]})),
        )
        .await;
    assert_eq!(res.status(), 403, "an operator cannot make itself an admin");
}

/// kube-rs against the simulator, as an engineer's kubectl would change the cluster.
async fn scale_by_hand(l: &Loop, ns: &str, name: &str, replicas: i32) {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&l.sim.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client, ns);
    deployments
        .patch_scale(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_approval_plans_again_and_checks_the_guardrails_again_unless_overridden() {
    let l = start("approval", &[("REMEDIATION_COOLDOWN_SECONDS", "300")]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    l.allow("restart web", "restart", "web", None).await;
    // Two actions on one deployment wait for approval at the same time.
    let id = l.signal(&signal("shop", "web", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let waiting = l.wait_for(&id, &["awaiting_approval"]).await;
    assert_eq!(
        waiting["actionParams"]["replicas"], 3,
        "planned from 2 replicas"
    );
    let pod = l.pod_names("shop", "web")[0].clone();
    let second = l
        .signal(&signal("shop", "web", Some(&pod), "restart_pod"))
        .await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    l.wait_for(&second, &["awaiting_approval"]).await;

    // Someone scales by hand while the approval waits: the approval plans from 4, not 2.
    scale_by_hand(&l, "shop", "web", 4).await;
    let res = l.call(Method::POST, &approve_path(&id), None).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let done = l.wait_for(&id, &["resolved", "failed", "escalated"]).await;
    assert_eq!(done["status"], "resolved", "{done:#}");
    let approved = &step(&done, "approved")["details"];
    assert_eq!(approved["replanned"], true);
    assert_eq!(approved["plannedParams"]["replicas"], 3);
    assert_eq!(approved["actionParams"]["replicas"], 6);
    assert_eq!(approved["currentReplicas"], 4);
    assert_eq!(l.replicas("shop", "web"), 6);

    // The deployment was just acted on: approving the second action meets the cooldown.
    let res = l.call(Method::POST, &approve_path(&second), None).await;
    assert_eq!(res.status(), 409);
    let message = res.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("the cooldown holds for another"),
        "{message}"
    );
    assert!(message.contains("overrideGuardrails"), "{message}");
    assert_eq!(
        l.incident(&second).await["status"],
        "awaiting_approval",
        "a refused approval changes nothing"
    );

    // An override needs a reason; with one, it acts, and says who overrode what and why.
    let res = l
        .call(
            Method::POST,
            &approve_path(&second),
            Some(json!({"overrideGuardrails": true})),
        )
        .await;
    assert_error(
        res,
        400,
        "overrideGuardrails needs a reason: say why the guardrails should not hold",
    )
    .await;
    let res = l
        .call(
            Method::POST,
            &approve_path(&second),
            Some(
                json!({"overrideGuardrails": true, "reason": "the pod leaks memory; restart now"}),
            ),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let done = l
        .wait_for(&second, &["resolved", "failed", "escalated"])
        .await;
    assert_eq!(done["status"], "resolved", "{done:#}");
    let overridden = &step(&done, "approved")["details"]["override"];
    assert_eq!(overridden["by"], ADMIN_EMAIL);
    assert_eq!(overridden["reason"], "the pod leaks memory; restart now");
    assert!(
        overridden["guardrail"]
            .as_str()
            .unwrap()
            .starts_with("the cooldown holds"),
        "{overridden}"
    );
    let audit: Value = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE event_type = 'remediation_approved_with_override' AND entity_id = $1",
    )
    .bind(&second)
    .fetch_one(&l.backend_db)
    .await
    .unwrap();
    assert_eq!(
        audit["override"]["reason"],
        "the pod leaks memory; restart now"
    );
    // The executor's own audit row carries the override with the approver.
    let cid = done["correlationId"].as_str().unwrap();
    let reason: String = sqlx::query_scalar(
        "SELECT policy_decision->>'reason' FROM action_audit_logs WHERE correlation_id = $1",
    )
    .bind(cid)
    .fetch_one(&l.executor_db)
    .await
    .unwrap();
    assert!(
        reason.starts_with(&format!("approved by {ADMIN_EMAIL}: the pod leaks memory")),
        "{reason}"
    );
    assert!(
        reason.contains("guardrail overridden: the cooldown holds"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_approval_past_its_deadline_is_refused_before_the_sweep_closes_it() {
    // The sweep runs every 15 s with the default timeout, so it cannot get there first.
    let l = start("approval", &[]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    let id = l.signal(&signal("shop", "web", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    l.wait_for(&id, &["awaiting_approval"]).await;
    sqlx::query(
        "UPDATE incidents SET approval_expires_at = now() - interval '1 second' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&l.backend_db)
    .await
    .unwrap();
    let res = l.call(Method::POST, &approve_path(&id), None).await;
    assert_eq!(res.status(), 409);
    let message = res.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("its approval expired at"), "{message}");
    assert_eq!(l.replicas("shop", "web"), 2);
}

#[tokio::test]
async fn an_approval_that_cannot_read_the_cluster_changes_nothing_and_can_be_given_again() {
    let l = start("approval", &[]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    let id = l.signal(&signal("shop", "web", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    l.wait_for(&id, &["awaiting_approval"]).await;
    // The API server fails every deployment read for a while.
    let fault: kube_sim::FaultRule = serde_json::from_value(json!({
        "pathPrefix": "/apis/apps/v1/namespaces/shop/deployments", "method": "GET", "status": 500
    }))
    .unwrap();
    l.sim.set_faults(vec![fault]);
    let res = l.call(Method::POST, &approve_path(&id), None).await;
    assert_eq!(res.status(), 503);
    let message = res.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("still waits"), "{message}");
    assert_eq!(l.incident(&id).await["status"], "awaiting_approval");
    l.sim.clear_faults();
    let res = l.call(Method::POST, &approve_path(&id), None).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let done = l.wait_for(&id, &["resolved", "failed", "escalated"]).await;
    assert_eq!(done["status"], "resolved", "{done:#}");
}

#[tokio::test]
async fn an_approval_that_no_longer_applies_closes_the_incident_and_says_so() {
    let l = start("approval", &[("REMEDIATION_MAX_REPLICAS", "5")]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    let id = l.signal(&signal("shop", "web", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    l.wait_for(&id, &["awaiting_approval"]).await;
    scale_by_hand(&l, "shop", "web", 5).await;
    let res = l.call(Method::POST, &approve_path(&id), None).await;
    assert_eq!(res.status(), 409);
    let message = res.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("the plan no longer applies"), "{message}");
    let closed = l.incident(&id).await;
    assert_eq!(closed["status"], "escalated");
    assert!(
        step(&closed, "plan")["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("already at 5 replicas"),
        "{closed:#}"
    );
    assert_eq!(l.replicas("shop", "web"), 5);
}

/// Polls `path` on `app` until `done` holds (8 s at most).
async fn eventually(
    app: &crate::helpers::TestApp,
    path: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let text = app.get(path).await.text().await.unwrap();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{path} never held: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_kill_switch_set_through_one_replica_holds_in_the_other_at_once() {
    let l = start("auto", &[]).await;
    l.allow("scale web", "scale_up", "web", None).await;
    l.allow("scale pay", "scale_up", "pay", None).await;
    l.allow("scale api", "scale_up", "api", None).await;
    // A second replica on the same database, with the same executor.
    let executor_url = l.app.state.config.executor_url.clone();
    let replica = spawn_with_admin(&[
        ("DATABASE_URL", &l.app.database_url),
        ("EXECUTOR_URL", &executor_url),
        ("EXECUTOR_HMAC_SECRET", "loop-hmac-secret"),
        ("EXECUTOR_API_KEY", "loop-executor-key"),
        ("SERVICE_API_KEYS", "loop-service-key"),
        ("REMEDIATION_MODE", "auto"),
        ("REMEDIATION_VERIFY_DELAY_SECONDS", "1"),
        ("RATE_LIMIT_DISABLED", "true"),
        ("AI_ENGINE_URL", "http://127.0.0.1:9"),
    ])
    .await;

    // Off, through replica A.
    let res = l
        .call(
            Method::PUT,
            "/api/v1/remediation/mode",
            Some(json!({"mode": "off", "reason": "bad deploy under way"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    // Replica B's very next decision records and does nothing.
    let res = replica
        .client
        .post(format!("{}/api/v1/remediation/signals", replica.address))
        .header("X-API-Key", "loop-service-key")
        .json(&signal("shop", "web", None, "scale_up"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let recorded = loop {
        let incident = l.incident(&id).await;
        if steps(&incident).contains(&"decision".to_owned()) {
            break incident;
        }
        assert!(Instant::now() < deadline, "no decision: {incident:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = step(&recorded, "decision")["details"]["reason"]
        .as_str()
        .unwrap();
    assert!(
        reason.starts_with(&format!(
            "the global remediation mode is off (set by {ADMIN_EMAIL}: bad deploy under way)"
        )),
        "{reason}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(l.replicas("shop", "web"), 2, "nothing acted");
    // Replica B shows it in health and in its metrics.
    let health: Value = serde_json::from_str(
        &eventually(&replica, "/api/v1/health", |t| {
            t.contains("remediationMode")
        })
        .await,
    )
    .unwrap();
    assert_eq!(health["remediationMode"], "off");
    eventually(&replica, "/metrics", |t| {
        t.contains("remediation_mode{mode=\"off\"} 1")
    })
    .await;
    // Audited and notified, once.
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE event_type = 'remediation_mode_changed' \
          AND details->>'to' = 'off' AND details->>'from' = 'auto'",
    )
    .fetch_one(&l.backend_db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    let notified: Value = sqlx::query_scalar(
        "SELECT payload FROM notification_events WHERE event_type = 'mode_changed'",
    )
    .fetch_one(&l.backend_db)
    .await
    .unwrap();
    assert_eq!(notified["to"], "off");
    assert_eq!(notified["changedBy"], ADMIN_EMAIL);

    // Back to auto: the incident recorded while off is decided now, and acts.
    let res = l
        .call(
            Method::PUT,
            "/api/v1/remediation/mode",
            Some(json!({"mode": "auto"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let taken_up = l
        .wait_for(&id, &["resolved", "failed", "escalated", "suppressed"])
        .await;
    assert_eq!(taken_up["status"], "resolved", "{taken_up:#}");
    assert_eq!(l.replicas("shop", "web"), 3);

    // Shop only dry-runs: shop is not touched, production is.
    let res = replica
        .send(
            Method::PUT,
            "/api/v1/remediation/mode/namespaces/shop",
            Some(&replica.admin().await.access),
            Some(json!({"mode": "dry_run", "reason": "shop freeze"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let modes: Value = l
        .call(Method::GET, "/api/v1/remediation/mode", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(modes["global"]["mode"], "auto");
    assert_eq!(modes["namespaces"][0]["scope"], "shop");
    assert_eq!(modes["namespaces"][0]["mode"], "dry_run");
    let shop = l.signal(&signal("shop", "api", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let shop = l
        .wait_for(&shop, &["suppressed", "resolved", "failed", "escalated"])
        .await;
    assert_eq!(
        steps(&shop).last().map(String::as_str),
        Some("dry_run"),
        "{shop:#}"
    );
    assert_eq!(l.replicas("shop", "api"), 2);
    let pay = l
        .signal(&signal("production", "pay", None, "scale_up"))
        .await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let pay = l
        .wait_for(&pay, &["resolved", "failed", "escalated", "suppressed"])
        .await;
    assert_eq!(pay["status"], "resolved", "{pay:#}");
    assert_eq!(l.replicas("production", "pay"), 3);

    // Removing the namespace's own mode; removing it twice is a 404. Bad input is a 400.
    let res = l
        .call(
            Method::DELETE,
            "/api/v1/remediation/mode/namespaces/shop",
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = l
        .call(
            Method::DELETE,
            "/api/v1/remediation/mode/namespaces/shop",
            None,
        )
        .await;
    assert_error(
        res,
        404,
        "Namespace shop has no remediation mode of its own",
    )
    .await;
    let res = l
        .call(
            Method::PUT,
            "/api/v1/remediation/mode/namespaces/Shop_1",
            Some(json!({"mode": "off"})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let res = l
        .call(
            Method::PUT,
            "/api/v1/remediation/mode",
            Some(json!({"mode": "yolo"})),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        json!(["mode must be one of the following values: off, dry_run, approval, auto"])
    );
}
