//! Request and response bodies of the policy routes, as the OpenAPI document shows them; the
//! handlers read definitions as JSON values and leave their validation to the policy engine.

use aegis_policy::{EvaluationRequest, PolicyType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `allow` or `deny`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyEffect {
    /// Allow, unless a matching deny exists.
    Allow,
    /// Deny; overrides every allow.
    Deny,
}

/// Guardrail mode of a `self_healing` policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyRemediationMode {
    /// Never act.
    Off,
    /// Record what would be done, do nothing.
    DryRun,
    /// Wait for an admin's approval.
    Approval,
    /// Act at once.
    Auto,
}

/// A policy definition as `POST /policy` and dry-run take it; the policy
/// engine validates it (unknown keys, patterns, conditions, priority range).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyInput {
    /// Ignored id (dry-run sets use it as the last tie-breaker).
    #[serde(default)]
    #[schema(nullable = false)]
    pub id: Option<String>,
    /// Unique name, 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// The policy type.
    #[serde(rename = "type")]
    pub policy_type: PolicyType,
    /// Allow or deny.
    pub effect: PolicyEffect,
    /// Condition object: every key must hold.
    pub conditions: Map<String, Value>,
    /// Action patterns (`*`, a literal, or a glob with `*` and `?`).
    pub actions: Vec<String>,
    /// Resource patterns (`*`, a literal, or a glob with `*` and `?`).
    pub resources: Vec<String>,
    /// 0 to 1000 (default 100).
    #[serde(default)]
    #[schema(nullable = false, minimum = 0, maximum = 1000)]
    pub priority: Option<i32>,
    /// Inactive policies are never candidates (default true; `enabled` is accepted as an alias).
    #[serde(default)]
    #[schema(nullable = false)]
    pub is_active: Option<bool>,
    /// For `self_healing` policies.
    #[serde(default)]
    #[schema(nullable = false)]
    pub remediation_mode: Option<PolicyRemediationMode>,
}

/// `PATCH /policy/{id}` body: a JSON merge patch of the definition (any subset of its keys).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyPatch {
    /// 1 to 255 characters.
    #[schema(nullable = false, min_length = 1, max_length = 255)]
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// The policy type.
    #[serde(rename = "type")]
    #[schema(nullable = false)]
    pub policy_type: Option<PolicyType>,
    /// Allow or deny.
    #[schema(nullable = false)]
    pub effect: Option<PolicyEffect>,
    /// Condition object.
    #[schema(nullable = false)]
    pub conditions: Option<Map<String, Value>>,
    /// Action patterns.
    #[schema(nullable = false)]
    pub actions: Option<Vec<String>>,
    /// Resource patterns.
    #[schema(nullable = false)]
    pub resources: Option<Vec<String>>,
    /// 0 to 1000.
    #[schema(nullable = false, minimum = 0, maximum = 1000)]
    pub priority: Option<i32>,
    /// Active or not.
    #[schema(nullable = false)]
    pub is_active: Option<bool>,
    /// For `self_healing` policies.
    #[schema(nullable = false)]
    pub remediation_mode: Option<PolicyRemediationMode>,
}

/// An evaluation's answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationResult {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// Why.
    pub reason: String,
    /// Matching policies, in evaluation order.
    pub applied_policies: Vec<String>,
    /// The evaluation's audit row id.
    pub decision_id: String,
    /// With `explain=true` only: the decision and every policy's trace.
    #[schema(nullable = false, value_type = Option<Object>)]
    pub explanation: Option<Value>,
}

/// `POST /policy/dry-run` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRunResult {
    /// Whether the action would be allowed.
    pub allowed: bool,
    /// Why.
    pub reason: String,
    /// Matching draft policies, in evaluation order.
    pub applied_policies: Vec<String>,
    /// Always `true`.
    pub dry_run: bool,
    /// The decision and every draft policy's trace.
    #[schema(value_type = Object)]
    pub explanation: Value,
}

/// `POST /policy/dry-run` body: a draft policy set and one request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DryRunBody {
    /// The draft policies (validated like `POST /policy` bodies).
    #[schema(value_type = Vec<PolicyInput>)]
    pub(super) policies: Value,
    /// The request to evaluate against them.
    pub(super) request: EvaluationRequest,
}
