//! What one service sends, serialised from its real output type, is accepted by the real
//! input parser of the service that receives it. Pairs whose both sides share one type from
//! `aegis_common::contracts` (the executor's answers, the ai-engine's signals) are covered by
//! the end-to-end tests; these are the pairs where the receiver parses on its own.

use aegis_backend::routes::policy::EvaluationResult;
use aegis_common::{
    contracts::{ActionType, ExecuteRequest, PolicyDecisionSummary},
    signing::{RequestedBy, SignedFields, V2Fields, verify_v2},
};
use aegis_executor::request::parse_envelope;
use serde_json::{Map, json};

const KEY: &[u8] = b"contract-key";

fn restart_request(decision: Option<PolicyDecisionSummary>) -> ExecuteRequest {
    let mut params = Map::new();
    params.insert("namespace".into(), json!("default"));
    params.insert("podName".into(), json!("web-0"));
    let mut request = ExecuteRequest {
        action_type: ActionType::RestartPod,
        action_params: params,
        requested_by: Some("aegis-backend".into()),
        policy_decision: decision,
        timestamp: None,
        nonce: None,
        signature: None,
    };
    request.sign_v2(KEY, chrono::Utc::now().timestamp_millis());
    request
}

#[test]
fn the_backends_evaluate_answer_is_a_policy_decision_the_executor_accepts() {
    for explanation in [None, Some(json!({"decision": "allow", "policies": []}))] {
        let answer = EvaluationResult {
            allowed: true,
            reason: "Allowed by policy: p".into(),
            applied_policies: vec!["p".into()],
            decision_id: uuid::Uuid::new_v4().to_string(),
            explanation,
        };
        let mut body = serde_json::to_value(restart_request(None)).unwrap();
        body["policyDecision"] = serde_json::to_value(&answer).unwrap();
        let parsed = parse_envelope(body).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(parsed.policy_allowed, Some(true));
        assert_eq!(
            parsed.policy_decision.unwrap()["decisionId"],
            json!(answer.decision_id)
        );
    }
}

#[test]
fn the_backends_execute_request_parses_and_verifies_in_the_executor() {
    let decision = PolicyDecisionSummary {
        allowed: true,
        reason: "Allowed by policy: p".into(),
        applied_policies: vec!["p".into()],
        decision_id: Some(uuid::Uuid::new_v4().to_string()),
        explanation: None,
    };
    let sent = restart_request(Some(decision.clone()));
    let parsed = parse_envelope(serde_json::to_value(&sent).unwrap()).unwrap();
    assert_eq!(parsed.policy_allowed, Some(true));
    let kept: PolicyDecisionSummary =
        serde_json::from_value(parsed.policy_decision.clone().unwrap()).unwrap();
    assert_eq!(kept, decision);
    let fields = SignedFields {
        action_type: parsed.action_type.as_str(),
        action_params: &parsed.action_params,
        requested_by: RequestedBy::from_json(parsed.requested_by_raw.as_ref()).unwrap(),
    };
    let v2 = V2Fields {
        timestamp: parsed.timestamp.as_deref().unwrap(),
        nonce: parsed.nonce.as_deref().unwrap(),
    };
    assert!(verify_v2(
        KEY,
        &fields,
        &v2,
        parsed.signature.as_deref().unwrap()
    ));
}

#[test]
fn a_policy_decision_with_a_malformed_decision_id_is_refused() {
    let mut body = serde_json::to_value(restart_request(None)).unwrap();
    body["policyDecision"] =
        json!({"allowed": true, "reason": "r", "appliedPolicies": [], "decisionId": 7});
    let err = parse_envelope(body).unwrap_err();
    assert_eq!(err, ["policyDecision.decisionId must be a string"]);
}
