//! Parsing and validating `POST /executor/execute` bodies.
//!
//! The body is kept as parsed JSON (with the key order of the request) because the v1 signature
//! covers `actionParams` exactly as sent. Validation is in two steps, as the processing order of
//! demands: the envelope before the namespace and signature checks, the per-action
//! parameter schema after them, so the signed bytes are never altered.

use aegis_common::{
    contracts::ActionType,
    names::{Namespace, ResourceName},
    signing::is_valid_nonce,
};
use serde_json::{Map, Value};

use crate::config::Config;

/// Request bodies are limited to 100 KiB.
pub const BODY_LIMIT: usize = 100 * 1024;

const ACTION_TYPE_MESSAGE: &str = "actionType must be one of the following values: restart_pod, scale_deployment, rollback_deployment, delete_pod, update_config";
const TOP_LEVEL_KEYS: [&str; 7] = [
    "actionType",
    "actionParams",
    "requestedBy",
    "policyDecision",
    "signature",
    "timestamp",
    "nonce",
];

/// A body that passed the envelope validation.
#[derive(Debug, Clone)]
pub struct ExecuteBody {
    /// The action.
    pub action_type: ActionType,
    /// Parameters in request order.
    pub action_params: Map<String, Value>,
    /// `requestedBy`: `None` absent, `Some(Null)` null, `Some(String)`.
    pub requested_by_raw: Option<Value>,
    /// The policy decision as sent (validated), if any.
    pub policy_decision: Option<Value>,
    /// Whether `policyDecision.allowed` is true (when present).
    pub policy_allowed: Option<bool>,
    /// Signature hex as sent.
    pub signature: Option<String>,
    /// v2 timestamp.
    pub timestamp: Option<String>,
    /// v2 nonce.
    pub nonce: Option<String>,
}

impl ExecuteBody {
    /// `requestedBy` as a string when it is one.
    #[must_use]
    pub fn requested_by(&self) -> Option<&str> {
        self.requested_by_raw.as_ref().and_then(Value::as_str)
    }

    /// `actionParams.namespace` when it is a string.
    #[must_use]
    pub fn namespace(&self) -> Option<&str> {
        self.action_params.get("namespace").and_then(Value::as_str)
    }

    /// The namespace as the original's messages print it (`undefined` when missing).
    #[must_use]
    pub fn namespace_display(&self) -> String {
        match self.action_params.get("namespace") {
            None | Some(Value::Null) => "undefined".into(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    }

    /// `pod`, `deployment` or `unknown`.
    #[must_use]
    pub fn resource_type(&self) -> &'static str {
        resource_type(self.action_type)
    }

    /// `podName` ‖ `deploymentName` ‖ `unknown`.
    #[must_use]
    pub fn resource_name(&self) -> String {
        ["podName", "deploymentName"]
            .iter()
            .find_map(|k| self.action_params.get(*k).and_then(Value::as_str))
            .unwrap_or("unknown")
            .to_owned()
    }

    /// `actionParams.dryRun == true`.
    #[must_use]
    pub fn dry_run(&self) -> bool {
        self.action_params.get("dryRun") == Some(&Value::Bool(true))
    }
}

/// Resource type of an action.
#[must_use]
pub fn resource_type(action: ActionType) -> &'static str {
    match action {
        ActionType::RestartPod | ActionType::DeletePod => "pod",
        ActionType::ScaleDeployment | ActionType::RollbackDeployment => "deployment",
        ActionType::UpdateConfig => "unknown",
    }
}

/// Step 1: the envelope. Errors are the message array of a 400.
pub fn parse_envelope(body: Value) -> Result<ExecuteBody, Vec<String>> {
    let Value::Object(mut map) = body else {
        return Err(vec![
            ACTION_TYPE_MESSAGE.into(),
            "actionParams must be an object".into(),
        ]);
    };
    let mut errors = Vec::new();
    for key in map.keys() {
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            errors.push(format!("property {key} should not exist"));
        }
    }
    let action_type = map
        .get("actionType")
        .and_then(Value::as_str)
        .and_then(ActionType::parse);
    if action_type.is_none() {
        errors.push(ACTION_TYPE_MESSAGE.into());
    }
    let action_params = match map.remove("actionParams") {
        Some(Value::Object(p)) => Some(p),
        _ => {
            errors.push("actionParams must be an object".into());
            None
        }
    };
    let requested_by_raw = map.remove("requestedBy");
    match &requested_by_raw {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {
            errors.push("requestedBy must be longer than or equal to 1 characters".into());
        }
        Some(Value::String(s)) if s.chars().count() > 255 => {
            errors.push("requestedBy must be shorter than or equal to 255 characters".into());
        }
        Some(Value::String(_)) => {}
        Some(_) => errors.push("requestedBy must be a string".into()),
    }
    let (policy_decision, policy_allowed) = match map.remove("policyDecision") {
        None | Some(Value::Null) => (None, None),
        Some(v) => match validate_policy(&v) {
            Ok(allowed) => (Some(v), Some(allowed)),
            Err(mut e) => {
                errors.append(&mut e);
                (None, None)
            }
        },
    };
    let mut string_field = |name: &str| match map.remove(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.push(format!("{name} must be a string"));
            None
        }
    };
    let signature = string_field("signature");
    let timestamp = string_field("timestamp");
    let nonce = string_field("nonce");
    match (&timestamp, &nonce) {
        (Some(_), None) => errors.push("nonce is required when timestamp is present".into()),
        (None, Some(_)) => errors.push("timestamp is required when nonce is present".into()),
        _ => {}
    }
    if let Some(n) = &nonce
        && !is_valid_nonce(n)
    {
        errors.push("nonce must match /^[A-Za-z0-9_-]{16,64}$/ regular expression".into());
    }
    match (action_type, action_params, errors.is_empty()) {
        (Some(action_type), Some(action_params), true) => Ok(ExecuteBody {
            action_type,
            action_params,
            requested_by_raw,
            policy_decision,
            policy_allowed,
            signature,
            timestamp,
            nonce,
        }),
        _ => Err(errors),
    }
}

fn validate_policy(v: &Value) -> Result<bool, Vec<String>> {
    let Value::Object(map) = v else {
        return Err(vec!["policyDecision must be an object".into()]);
    };
    let mut errors = Vec::new();
    // The backend's evaluate answer as it is: `decisionId`, and `explanation` with explain.
    for key in map.keys() {
        if ![
            "allowed",
            "reason",
            "appliedPolicies",
            "decisionId",
            "explanation",
        ]
        .contains(&key.as_str())
        {
            errors.push(format!("policyDecision.property {key} should not exist"));
        }
    }
    match map.get("decisionId") {
        None | Some(Value::String(_)) => {}
        Some(_) => errors.push("policyDecision.decisionId must be a string".into()),
    }
    match map.get("explanation") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(_) => errors.push("policyDecision.explanation must be an object".into()),
    }
    let allowed = map.get("allowed").and_then(Value::as_bool);
    if allowed.is_none() {
        errors.push("policyDecision.allowed must be a boolean value".into());
    }
    if !map.get("reason").is_some_and(Value::is_string) {
        errors.push("policyDecision.reason must be a string".into());
    }
    let policies_ok = map
        .get("appliedPolicies")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().all(Value::is_string));
    if !policies_ok {
        errors.push("each value in policyDecision.appliedPolicies must be a string".into());
    }
    match allowed {
        Some(a) if errors.is_empty() => Ok(a),
        _ => Err(errors),
    }
}

/// The validated parameters of an action: every name in them passed the DNS-1123 checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionParams {
    /// `namespace`.
    pub namespace: Namespace,
    /// The parameters of this action type.
    pub kind: ActionKind,
}

/// The parameters that depend on the action type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// `restart_pod` / `delete_pod`.
    Pod {
        /// Pod name.
        pod_name: ResourceName,
    },
    /// `scale_deployment`.
    Scale {
        /// Deployment name.
        deployment_name: ResourceName,
        /// Target replicas.
        replicas: i64,
    },
    /// `rollback_deployment`.
    Rollback {
        /// Deployment name.
        deployment_name: ResourceName,
        /// Target revision (`None` = previous).
        revision: Option<i64>,
    },
    /// `update_config`: no schema, it always fails.
    Unsupported,
}

fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            // The filter bounds the value well inside i64.
            .map(|f| f as i64)
    })
}

/// Step 4: the per-action schema. Errors are the message array of a 400.
pub fn validate_params(body: &ExecuteBody, config: &Config) -> Result<ActionParams, Vec<String>> {
    let p = &body.action_params;
    let mut errors = Vec::new();
    let allowed: &[&str] = match body.action_type {
        ActionType::RestartPod | ActionType::DeletePod => &["namespace", "podName", "dryRun"],
        ActionType::ScaleDeployment => &["namespace", "deploymentName", "replicas", "dryRun"],
        ActionType::RollbackDeployment => &["namespace", "deploymentName", "revision", "dryRun"],
        ActionType::UpdateConfig => &[],
    };
    if body.action_type != ActionType::UpdateConfig {
        for key in p.keys() {
            if !allowed.contains(&key.as_str()) {
                errors.push(format!("actionParams.property {key} should not exist"));
            }
        }
    }
    // Absent or not a string, the namespace gets the message of an invalid one.
    let namespace = match Namespace::new(body.namespace().unwrap_or_default()) {
        Ok(namespace) => Some(namespace),
        Err(e) => {
            errors.push(format!("actionParams.namespace {e}"));
            None
        }
    };
    if let Some(d) = p.get("dryRun")
        && !d.is_boolean()
    {
        errors.push("actionParams.dryRun must be a boolean value".into());
    }
    let name = |key: &str, errors: &mut Vec<String>| -> Option<ResourceName> {
        let Some(name) = p.get(key).and_then(Value::as_str) else {
            errors.push(format!("actionParams.{key} must be a string"));
            return None;
        };
        match ResourceName::new(name) {
            Ok(name) => Some(name),
            Err(e) => {
                errors.push(format!("actionParams.{key} {e}"));
                None
            }
        }
    };
    let kind = match body.action_type {
        ActionType::RestartPod | ActionType::DeletePod => {
            name("podName", &mut errors).map(|pod_name| ActionKind::Pod { pod_name })
        }
        ActionType::ScaleDeployment => {
            let deployment_name = name("deploymentName", &mut errors);
            let replicas = match p.get("replicas").and_then(integer) {
                Some(n) => {
                    if n < config.min_replicas {
                        errors.push(format!(
                            "actionParams.replicas must not be less than {}",
                            config.min_replicas
                        ));
                    }
                    if n > config.max_replicas {
                        errors.push(format!(
                            "actionParams.replicas must not be greater than {}",
                            config.max_replicas
                        ));
                    }
                    Some(n)
                }
                None => {
                    errors.push("actionParams.replicas must be an integer number".into());
                    None
                }
            };
            deployment_name
                .zip(replicas)
                .map(|(deployment_name, replicas)| ActionKind::Scale {
                    deployment_name,
                    replicas,
                })
        }
        ActionType::RollbackDeployment => {
            let deployment_name = name("deploymentName", &mut errors);
            let revision = match p.get("revision") {
                None | Some(Value::Null) => None,
                Some(v) => match integer(v) {
                    Some(0) => None,
                    Some(n) if n > 0 => Some(n),
                    _ => {
                        errors.push("actionParams.revision must be a positive integer".into());
                        None
                    }
                },
            };
            deployment_name.map(|deployment_name| ActionKind::Rollback {
                deployment_name,
                revision,
            })
        }
        ActionType::UpdateConfig => Some(ActionKind::Unsupported),
    };
    // A missing part always left its message.
    match (namespace, kind) {
        (Some(namespace), Some(kind)) if errors.is_empty() => Ok(ActionParams { namespace, kind }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_errors_list_every_problem() {
        let err =
            parse_envelope(json!({"actionType":"exec","actionParams":"x","foo":1})).unwrap_err();
        assert!(err.contains(&ACTION_TYPE_MESSAGE.to_owned()));
        assert!(err.contains(&"actionParams must be an object".to_owned()));
        assert!(err.contains(&"property foo should not exist".to_owned()));
    }

    #[test]
    fn policy_decision_is_validated() {
        let err = parse_envelope(json!({
            "actionType":"restart_pod","actionParams":{},
            "policyDecision":{"allowed":"yes","reason":"r","appliedPolicies":[],"x":1}
        }))
        .unwrap_err();
        assert!(err.contains(&"policyDecision.allowed must be a boolean value".to_owned()));
        assert!(err.contains(&"policyDecision.property x should not exist".to_owned()));
    }

    fn config() -> Config {
        let env = aegis_common::config::Env::from_pairs([("EXECUTOR_HMAC_SECRET", "k")]);
        Config::from_env(&env).unwrap()
    }

    fn params(action_type: &str, action_params: Value) -> Result<ActionParams, Vec<String>> {
        let body =
            parse_envelope(json!({"actionType": action_type, "actionParams": action_params}))
                .unwrap();
        validate_params(&body, &config())
    }

    #[test]
    fn valid_parameters_carry_checked_names() {
        let scale = params(
            "scale_deployment",
            json!({"namespace": "production", "deploymentName": "api.v1", "replicas": 3}),
        )
        .unwrap();
        assert_eq!(scale.namespace, "production");
        assert_eq!(
            scale.kind,
            ActionKind::Scale {
                deployment_name: ResourceName::new("api.v1").unwrap(),
                replicas: 3
            }
        );
        let restart = params(
            "restart_pod",
            json!({"namespace": "default", "podName": "web-1"}),
        );
        assert!(
            matches!(restart, Ok(ActionParams { kind: ActionKind::Pod { pod_name }, .. }) if pod_name == "web-1")
        );
    }

    #[test]
    fn every_invalid_name_is_named_in_the_order_of_the_checks() {
        let err = params(
            "rollback_deployment",
            json!({"namespace": "Prod", "deploymentName": "api_v1", "revision": -1}),
        )
        .unwrap_err();
        assert_eq!(
            err,
            [
                "actionParams.namespace must be a valid DNS-1123 label",
                "actionParams.deploymentName must be a valid DNS-1123 subdomain",
                "actionParams.revision must be a positive integer",
            ]
        );
        let err = params("restart_pod", json!({"podName": 7})).unwrap_err();
        assert_eq!(
            err,
            [
                "actionParams.namespace must be a valid DNS-1123 label",
                "actionParams.podName must be a string",
            ]
        );
    }
}
