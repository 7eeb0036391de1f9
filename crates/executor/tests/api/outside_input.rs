//! Whatever an unauthenticated caller sends to `POST /executor/execute` is answered with a 4xx
//! and leaves at most one audit row, never a 500: over-long and structured names, and
//! arbitrary bodies up to the body limit. Metric labels stay within closed sets.

use proptest::{
    prelude::*,
    strategy::{Strategy, ValueTree},
    test_runner::TestRunner,
};
use serde_json::{Map, Value, json};

use crate::helpers::*;

async fn audit_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM action_audit_logs")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn over_long_or_structured_names_are_refused_and_audited_once_each() {
    let app = spawn_app_with(&[("HTTP_RATE_LIMIT_MAX", "10000")]).await;
    let long = "n".repeat(300);
    let bodies = [
        body(
            "restart_pod",
            json!({"namespace": long, "podName": "p"}),
            None,
        ),
        body(
            "restart_pod",
            json!({"namespace": "default", "podName": long}),
            None,
        ),
        body(
            "scale_deployment",
            json!({"namespace": "default", "deploymentName": long, "replicas": 2}),
            Some(&"r".repeat(255)),
        ),
        body(
            "restart_pod",
            json!({"namespace": {"a": long}, "podName": "p"}),
            None,
        ),
        sign2(body(
            "restart_pod",
            json!({"namespace": "default", "podName": long}),
            None,
        )),
    ];
    for (i, b) in bodies.iter().enumerate() {
        let before = audit_rows(&app).await;
        let (status, res) = app.execute(b).await;
        assert!((400..500).contains(&status), "body {i}: {status} {res}");
        assert_eq!(
            audit_rows(&app).await,
            before + 1,
            "body {i} is audited once"
        );
    }
    let stored: Vec<(String, String)> = sqlx::query_as(
        "SELECT namespace, resource_name FROM action_audit_logs ORDER BY created_at, id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        stored[0].0.starts_with("nnnn") && stored[0].0.contains("300 chars, sha256 "),
        "a long value is stored bounded, recognisably: {:?}",
        stored[0]
    );
    assert!(
        stored
            .iter()
            .all(|(n, r)| n.chars().count() <= 255 && r.chars().count() <= 255)
    );
    let actions = app
        .audit_get("/audit/verify")
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(actions["valid"], true, "{actions}");
}

#[tokio::test]
async fn rejected_namespaces_are_counted_under_a_closed_set_of_labels() {
    let app = spawn_app_with(&[("HTTP_RATE_LIMIT_MAX", "10000")]).await;
    for i in 0..20 {
        let ns = format!("{}-{i}", "x".repeat(200));
        let (status, _) = app
            .execute(&body(
                "restart_pod",
                json!({"namespace": ns, "podName": "p"}),
                None,
            ))
            .await;
        assert_eq!(status, 403);
    }
    let (status, _) = app
        .execute(&body(
            "restart_pod",
            json!({"namespace": "default", "podName": "p"}),
            None,
        ))
        .await;
    assert!((400..500).contains(&status));
    let text = app.metrics().await;
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("executor_actions_total{"))
        .collect();
    assert_eq!(
        metric(
            &text,
            r#"executor_actions_total{action_type="restart_pod",namespace="other",status="rejected"}"#
        ),
        20.0,
        "{series:#?}"
    );
    assert!(series.iter().all(|l| !l.contains("xxxx")), "{series:#?}");
}

/// Any JSON value, strings up to `max_len` characters.
fn any_json(max_len: usize) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::string::string_regex(&format!("(.|\u{0}){{0,{max_len}}}"))
            .unwrap()
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body shaped like a request, each part arbitrary: known keys with any values, and any
/// extra keys.
fn any_body() -> impl Strategy<Value = Value> {
    let action = prop_oneof![
        Just(json!("restart_pod")),
        Just(json!("scale_deployment")),
        Just(json!("rollback_deployment")),
        any_json(40),
    ];
    let name = prop_oneof![Just(json!("default")), Just(json!("p")), any_json(5000)];
    let params = (name.clone(), name.clone(), name, any_json(50)).prop_map(|(ns, pod, dep, extra)| {
        json!({"namespace": ns, "podName": pod, "deploymentName": dep, "replicas": extra})
    });
    (action, params, any_json(400), any_json(400), any_json(200)).prop_map(
        |(action, params, requested_by, decision, extra)| {
            let mut m = Map::new();
            m.insert("actionType".into(), action);
            m.insert("actionParams".into(), params);
            m.insert("requestedBy".into(), requested_by);
            m.insert("policyDecision".into(), decision);
            m.insert("signature".into(), extra);
            Value::Object(m)
        },
    )
}

#[tokio::test]
async fn arbitrary_bodies_get_a_4xx_and_at_most_one_audit_row() {
    let app = spawn_app_with(&[("HTTP_RATE_LIMIT_MAX", "10000")]).await;
    let mut runner = TestRunner::deterministic();
    let strategy = any_body();
    for case in 0..150 {
        let b = strategy.new_tree(&mut runner).unwrap().current();
        let before = audit_rows(&app).await;
        let (status, res) = app.execute(&b).await;
        let after = audit_rows(&app).await;
        assert!(
            (400..500).contains(&status),
            "case {case}: {status} {res}\n{b}"
        );
        assert!(
            after - before <= 1,
            "case {case} wrote {} rows",
            after - before
        );
    }
    let verify = app
        .audit_get("/audit/verify")
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(verify["valid"], true, "{verify}");
}
