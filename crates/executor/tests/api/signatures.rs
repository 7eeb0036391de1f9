//! Signatures: v1 vectors, every signed field, v2 replay and freshness,
//! `policyDecision` unsigned, the helper route.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn v1_vectors_b_and_c_are_accepted_and_b_with_a_float_too() {
    let app = spawn_app().await;
    let raw = format!(
        r#"{{"actionType":"scale_deployment","actionParams":{{"namespace":"production","deploymentName":"api-deployment","replicas":5.0}},"requestedBy":"ai-engine","signature":"{SIG_B}"}}"#
    );
    let res = app
        .client
        .post(format!("{}/executor/execute", app.address))
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["success"], true, "{v}");
    let mut c = body(
        "rollback_deployment",
        json!({"namespace":"production","deploymentName":"api-deployment"}),
        None,
    );
    c["signature"] = json!(SIG_C);
    let (status, v) = app.execute(&c).await;
    assert_eq!(status, 200);
    assert_eq!(v["success"], true, "{v}");
    let mut upper = body_a();
    upper["signature"] = json!(SIG_A.to_uppercase());
    let (status, _) = app.execute(&upper).await;
    assert_eq!(status, 200, "uppercase hex is accepted");
}

#[tokio::test]
async fn every_signed_field_altered_by_one_character_is_rejected() {
    let app = spawn_app().await;
    let base = sign2(body(
        "scale_deployment",
        json!({"namespace":"production","deploymentName":"api-deployment","replicas":4,"dryRun":true}),
        Some("ai-engine"),
    ));
    let mut variants: Vec<(String, Value)> = Vec::new();
    let mut v = base.clone();
    v["actionType"] = json!("rollback_deployment");
    variants.push(("actionType".into(), v));
    let mut v = base.clone();
    v["requestedBy"] = json!("ai-enginf");
    variants.push(("requestedBy".into(), v));
    let mut v = base.clone();
    let ts = v["timestamp"].as_str().unwrap().to_owned();
    let last = ts.chars().last().unwrap();
    let changed = if last == '0' { '1' } else { '0' };
    v["timestamp"] = json!(format!("{}{changed}", &ts[..ts.len() - 1]));
    variants.push(("timestamp".into(), v));
    let mut v = base.clone();
    let n = v["nonce"].as_str().unwrap().to_owned();
    let flipped = if n.ends_with('A') { 'B' } else { 'A' };
    v["nonce"] = json!(format!("{}{flipped}", &n[..n.len() - 1]));
    variants.push(("nonce".into(), v));
    let mut v = base.clone();
    v["actionParams"]["deploymentName"] = json!("api-deploymenu");
    variants.push(("deploymentName value".into(), v));
    let mut v = base.clone();
    v["actionParams"]["replicas"] = json!(5);
    variants.push(("replicas value".into(), v));
    let mut v = base.clone();
    v["actionParams"]["namespace"] = json!("default");
    variants.push(("namespace value".into(), v));
    let mut v = base.clone();
    v["actionParams"]["dryRun"] = json!(false);
    variants.push(("dryRun value".into(), v));
    for key in ["namespace", "deploymentName", "replicas", "dryRun"] {
        let mut v = base.clone();
        let params = v["actionParams"].as_object().unwrap().clone();
        let renamed: serde_json::Map<String, Value> = params
            .into_iter()
            .map(|(k, val)| {
                if k == key {
                    (format!("{}X", &k[..k.len() - 1]), val)
                } else {
                    (k, val)
                }
            })
            .collect();
        v["actionParams"] = Value::Object(renamed);
        variants.push((format!("{key} key"), v));
    }
    let mut v = base.clone();
    let sig = v["signature"].as_str().unwrap().to_owned();
    let c = if sig.starts_with('0') { "1" } else { "0" };
    v["signature"] = json!(format!("{c}{}", &sig[1..]));
    variants.push(("signature".into(), v));
    for (what, v) in variants {
        let (status, res) = app.execute(&v).await;
        // A renamed namespace key fails the namespace check first (403 too).
        assert_eq!(status, 403, "{what}: {res}");
        if what != "namespace key" {
            assert_eq!(res["message"], "Invalid action signature", "{what}");
        }
    }
    let (status, res) = app.execute(&base).await;
    assert_eq!(status, 200, "the unaltered request still passes: {res}");
}

#[tokio::test]
async fn policy_decision_is_advisory_and_unsigned() {
    let app = spawn_app().await;
    let mut b = sign(body_a());
    b["policyDecision"] =
        json!({"allowed":true,"reason":"changed after signing","appliedPolicies":[]});
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["success"], true);
}

#[tokio::test]
async fn v2_replay_and_stale_timestamps() {
    let app = spawn_app().await;
    let b = sign2_at(body_a(), now_ms(), "n0nce-0001-abcdef");
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 200, "{res}");
    let (status, res) = app.execute(&b).await;
    assert_eq!(status, 403);
    assert_eq!(res["message"], "Replayed request");
    assert_eq!(app.rows().await[0].0, "rejected");

    let stale = sign2_at(body_a(), now_ms() - 301_000, "n0nce-0002-abcdef");
    let (status, res) = app.execute(&stale).await;
    assert_eq!(status, 400);
    assert_eq!(res["message"], "Request timestamp expired");

    // The worked example: a valid MAC (else 403) whose timestamp is long past.
    let mut vector = body_a();
    vector["timestamp"] = json!("1700000000000");
    vector["nonce"] = json!("n0nce-0001-abcdef");
    vector["signature"] = json!("53fd4e026b6007889a2770a041c565e67bd6ef86cb0fe402f8e988f38ae5d755");
    let (status, res) = app.execute(&vector).await;
    assert_eq!(status, 400);
    assert_eq!(res["message"], "Request timestamp expired");

    let nonces: i64 = sqlx::query_scalar("SELECT count(*) FROM signature_nonces")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(nonces, 1, "nonces are stored in PostgreSQL");
}

#[tokio::test]
async fn a_nonce_is_shared_by_every_replica() {
    let app = spawn_app().await;
    let other = spawn_replica(&app, &[]).await;
    let b = sign2(body_a());
    let (status, _) = app.execute(&b).await;
    assert_eq!(status, 200);
    let res = app
        .client
        .post(format!("{other}/executor/execute"))
        .json(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["message"], "Replayed request");
}

#[tokio::test]
async fn timestamps_can_be_required() {
    let app = spawn_app_with(&[("REQUIRE_SIGNATURE_TIMESTAMP", "true")]).await;
    let (status, res) = app.execute(&sign(body_a())).await;
    assert_eq!(status, 400);
    assert_eq!(res["message"], "Request timestamp is required");
    let (status, _) = app.execute(&sign2(body_a())).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn signatures_off_in_development() {
    let app = spawn_app_with(&[
        ("REQUIRE_ACTION_SIGNATURE", "false"),
        ("APP_ENV", "development"),
    ])
    .await;
    let (status, res) = app.execute(&body_a()).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["success"], true);
    let cfg: Value = app.get("/health/config").await.json().await.unwrap();
    assert_eq!(cfg["environment"], "development");
    assert_eq!(cfg["allowedNamespaces"], json!(["default", "production"]));
    assert_eq!(cfg["requireSignature"], false);
    assert_eq!(cfg["maxReplicas"], 100);
    let text = cfg.to_string();
    assert!(!text.contains(KEY), "no secret in /health/config");
    assert!(!text.contains(AUDIT_TOKEN));
}

#[tokio::test]
async fn signature_helper_is_off_by_default_and_signs_v1_when_enabled() {
    let app = spawn_app().await;
    let res = app
        .post_raw("/executor/generate-signature", &body_a())
        .await;
    assert_eq!(res.status(), 404);
    let on = spawn_app_with(&[("ENABLE_SIGNATURE_HELPER", "true")]).await;
    let res = on.post_raw("/executor/generate-signature", &body_a()).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["signature"], SIG_A);
}

#[tokio::test]
async fn vector_d_passes_the_signature_and_then_fails_the_parameter_schema() {
    let app = spawn_app().await;
    let raw = r#"{"actionType":"restart_pod","actionParams":{"namespace":"default","podName":"p\u00e9d","b":1.50,"1":"x","z":1e21,"q":"a/b\u0001"},"requestedBy":null,"signature":"e2dbb75b71831219ea4b2d4b94ca754a8a7f74bd1a677aa3794189bfc76ab51e"}"#;
    let res = app
        .client
        .post(format!("{}/executor/execute", app.address))
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "a valid MAC (a mismatch would be 403)");
    let v: Value = res.json().await.unwrap();
    let messages = v["message"].to_string();
    assert!(
        messages.contains("actionParams.property b should not exist"),
        "{messages}"
    );
    assert!(
        messages.contains("actionParams.podName must be a valid DNS-1123 subdomain"),
        "{messages}"
    );
}
