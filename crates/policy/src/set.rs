//! Compiled policies, the evaluation input and the decision.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;

use aegis_contracts::{EvaluationContext, EvaluationRequest, PolicyType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::condition::{Conditions, Env};
use crate::error::{PolicyFileError, ValidationError};
use crate::explain::{Applicability, Explanation, PolicyTrace};
use crate::glob::PatternList;
use crate::model::{Effect, PolicyDefinition, Priority, RemediationMode};

/// `reason` when no policy matched.
pub const NO_MATCH_REASON: &str = "No matching policy found";
/// `reason` of the response when evaluation failed unexpectedly.
pub const EVALUATION_ERROR_REASON: &str = "Policy evaluation error";

/// The facts a decision is taken on, borrowed from the caller (nothing is copied): from an
/// [`EvaluationContext`] (`Context::from`) or built field by field.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// `context.userId`.
    pub user_id: Option<&'a str>,
    /// `context.role`.
    pub role: Option<&'a str>,
    /// `context.ipAddress`.
    pub ip_address: Option<&'a str>,
    /// `context.userAgent`.
    pub user_agent: Option<&'a str>,
    /// `context.metadata`.
    pub metadata: Option<&'a Map<String, Value>>,
}

/// One evaluation request, borrowed from the caller: from an [`EvaluationRequest`]
/// (`Request::from`) or built field by field.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Only policies of this type are candidates.
    pub policy_type: PolicyType,
    /// Matched against each policy's `actions`.
    pub action: &'a str,
    /// Matched against each policy's `resources`.
    pub resource: &'a str,
    /// Matched against each policy's `conditions`.
    pub context: Context<'a>,
}

impl<'a> From<&'a EvaluationContext> for Context<'a> {
    fn from(context: &'a EvaluationContext) -> Self {
        Context {
            user_id: context.user_id.as_deref(),
            role: context.role.as_deref(),
            ip_address: context.ip_address.as_deref(),
            user_agent: context.user_agent.as_deref(),
            metadata: context.metadata.as_ref(),
        }
    }
}

impl<'a> From<&'a EvaluationRequest> for Request<'a> {
    fn from(request: &'a EvaluationRequest) -> Self {
        Request {
            policy_type: request.policy_type,
            action: &request.action,
            resource: &request.resource,
            context: Context::from(&request.context),
        }
    }
}

/// A validated policy with its patterns and conditions compiled. Immutable.
#[derive(Debug, Clone)]
pub struct Policy {
    definition: PolicyDefinition,
    actions: PatternList,
    resources: PatternList,
    conditions: Conditions,
}

impl Policy {
    pub(crate) fn from_parts(definition: PolicyDefinition, conditions: Conditions) -> Self {
        let actions = PatternList::compile(definition.actions.iter().map(String::as_str));
        let resources = PatternList::compile(definition.resources.iter().map(String::as_str));
        Self {
            definition,
            actions,
            resources,
            conditions,
        }
    }

    /// Validates a definition that arrived through serde and compiles it.
    pub fn from_definition(definition: PolicyDefinition) -> Result<Self, ValidationError> {
        crate::parse::check_definition(definition, "")
    }

    /// The definition as validated (normalised: `enabled` became `isActive`).
    pub fn definition(&self) -> &PolicyDefinition {
        &self.definition
    }

    /// Gives the definition back.
    pub fn into_definition(self) -> PolicyDefinition {
        self.definition
    }

    /// The unique name.
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// The id, when the policy came from storage.
    pub fn id(&self) -> Option<&str> {
        self.definition.id.as_deref()
    }

    /// The type.
    pub fn policy_type(&self) -> PolicyType {
        self.definition.policy_type
    }

    /// Allow or deny.
    pub fn effect(&self) -> Effect {
        self.definition.effect
    }

    /// The priority.
    pub fn priority(&self) -> Priority {
        self.definition.priority
    }

    /// Whether it can be a candidate at all.
    pub fn is_active(&self) -> bool {
        self.definition.is_active
    }

    /// The guardrail mode of a `self_healing` policy, when set.
    pub fn remediation_mode(&self) -> Option<RemediationMode> {
        self.definition.remediation_mode
    }

    /// Type, action and resource match (activity not considered).
    pub(crate) fn applicability(&self, request: &Request<'_>) -> Applicability {
        if !self.is_active() {
            Applicability::Inactive
        } else if !self.actions.matches(request.action) {
            Applicability::ActionNotMatched
        } else if !self.resources.matches(request.resource) {
            Applicability::ResourceNotMatched
        } else {
            Applicability::Applicable
        }
    }

    pub(crate) fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    /// The spec's evaluation order: priority descending, deny before allow, name, then id.
    fn evaluation_order(&self, other: &Policy) -> Ordering {
        let deny_first = |p: &Policy| p.effect() != Effect::Deny;
        other
            .priority()
            .cmp(&self.priority())
            .then_with(|| deny_first(self).cmp(&deny_first(other)))
            .then_with(|| self.name().cmp(other.name()))
            .then_with(|| self.id().cmp(&other.id()))
    }
}

/// An immutable, compiled policy set, sorted in evaluation order and indexed by type.
/// `Send + Sync`: share it behind an `Arc` and swap the whole set when policies change.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    /// Grouped by type (in [`PolicyType::ALL`] order); within a type, active policies first,
    /// each part in evaluation order.
    policies: Vec<Policy>,
    /// Per type, at its [`slot`]: the range of all its policies, and of its active ones.
    all: [Range<usize>; PolicyType::ALL.len()],
    active: [Range<usize>; PolicyType::ALL.len()],
}

/// Where a type's ranges sit in [`PolicySet`]'s per-type arrays.
fn slot(policy_type: PolicyType) -> usize {
    match policy_type {
        PolicyType::ApiAccess => 0,
        PolicyType::SelfHealing => 1,
        PolicyType::DataAccess => 2,
        PolicyType::ResourceLimit => 3,
    }
}

impl PolicySet {
    /// Compiles the index. Full ties (same priority, effect, name and id) keep input order.
    pub fn new(policies: impl IntoIterator<Item = Policy>) -> Self {
        let mut policies: Vec<Policy> = policies.into_iter().collect();
        policies.sort_by(|a, b| {
            a.policy_type()
                .cmp(&b.policy_type())
                .then_with(|| b.is_active().cmp(&a.is_active()))
                .then_with(|| a.evaluation_order(b))
        });
        let mut all: [Range<usize>; PolicyType::ALL.len()] = Default::default();
        let mut active: [Range<usize>; PolicyType::ALL.len()] = Default::default();
        for t in PolicyType::ALL {
            let start = policies.partition_point(|p| p.policy_type() < t);
            let end = policies.partition_point(|p| p.policy_type() <= t);
            let active_end = start
                + policies
                    .get(start..end)
                    .map_or(0, |s| s.partition_point(|p| p.is_active()));
            all[slot(t)] = start..end;
            active[slot(t)] = start..active_end;
        }
        Self {
            policies,
            all,
            active,
        }
    }

    /// Parses, validates and compiles a JSON policy file (an array or `{"policies": [...]}`).
    pub fn from_json_str(text: &str) -> Result<Self, PolicyFileError> {
        Ok(Self::new(crate::parse::parse_policies_json(text)?))
    }

    /// Parses, validates and compiles a YAML policy file (a sequence or `policies: [...]`).
    pub fn from_yaml_str(text: &str) -> Result<Self, PolicyFileError> {
        Ok(Self::new(crate::parse::parse_policies_yaml(text)?))
    }

    /// Every policy, grouped by type, each group in evaluation order (active first).
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// No policies at all.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Looks a policy up by name.
    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name() == name)
    }

    /// The active policies of one type, in evaluation order.
    pub fn candidates_of(&self, policy_type: PolicyType) -> &[Policy] {
        self.slice(&self.active[slot(policy_type)])
    }

    fn slice(&self, range: &Range<usize>) -> &[Policy] {
        self.policies.get(range.clone()).unwrap_or_default()
    }

    /// Evaluates: candidates in order; each matching policy is
    /// appended to `appliedPolicies` and sets the decision; the first matching deny stops.
    /// No match means deny. `now` is used by `timeRange` conditions; nothing reads a clock.
    pub fn evaluate<'s>(&'s self, request: &Request<'_>, now: DateTime<Utc>) -> Decision<'s> {
        let env = Env::new(&request.context, now);
        let mut decision = Decision::default_deny();
        for policy in self.candidates_of(request.policy_type) {
            if policy.actions.matches(request.action)
                && policy.resources.matches(request.resource)
                && policy.conditions.holds(&env)
                && decision.record(policy)
            {
                break;
            }
        }
        decision
    }

    /// Evaluates like [`PolicySet::evaluate`] and also traces every policy of the request's type
    /// (inactive ones included): applicable or not, matched or not, and every failing
    /// condition with its reason. Slower; meant for debugging and the explain endpoint.
    pub fn explain<'s>(&'s self, request: &Request<'_>, now: DateTime<Utc>) -> Explanation<'s> {
        let env = Env::new(&request.context, now);
        let mut decision = Decision::default_deny();
        let mut stopped = false;
        let mut traces = Vec::new();
        for policy in self.slice(&self.all[slot(request.policy_type)]) {
            let applicability = policy.applicability(request);
            let failures = if applicability == Applicability::Applicable {
                policy.conditions().failures(&env)
            } else {
                Vec::new()
            };
            let matched = applicability == Applicability::Applicable && failures.is_empty();
            let reached = applicability == Applicability::Applicable && !stopped;
            if matched && reached {
                stopped = decision.record(policy);
            }
            traces.push(PolicyTrace {
                policy,
                applicability,
                matched,
                reached,
                failures,
            });
        }
        Explanation {
            decision,
            policies: traces,
        }
    }
}

/// Why the decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'s> {
    /// Nothing matched: default deny.
    NoMatchingPolicy,
    /// The last matching allow policy (no deny matched).
    AllowedBy(&'s str),
    /// The first matching deny policy.
    DeniedBy(&'s str),
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoMatchingPolicy => f.write_str(NO_MATCH_REASON),
            Reason::AllowedBy(name) => write!(f, "Allowed by policy: {name}"),
            Reason::DeniedBy(name) => write!(f, "Denied by policy: {name}"),
        }
    }
}

/// The result of an evaluation, borrowing policy names from the set.
#[derive(Debug, Clone)]
pub struct Decision<'s> {
    applied: Vec<&'s Policy>,
}

impl<'s> Decision<'s> {
    fn default_deny() -> Self {
        Self {
            applied: Vec::new(),
        }
    }

    /// Appends a matching policy; returns true when evaluation must stop (a deny).
    fn record(&mut self, policy: &'s Policy) -> bool {
        self.applied.push(policy);
        policy.effect() == Effect::Deny
    }

    /// The policy that set the final decision: the first deny or the last allow.
    pub fn deciding_policy(&self) -> Option<&'s Policy> {
        self.applied.last().copied()
    }

    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        self.deciding_policy()
            .is_some_and(|p| p.effect() == Effect::Allow)
    }

    /// The reason; its `Display` is the spec's exact `reason` string.
    pub fn reason(&self) -> Reason<'s> {
        match self.deciding_policy() {
            None => Reason::NoMatchingPolicy,
            Some(p) if p.effect() == Effect::Allow => Reason::AllowedBy(p.name()),
            Some(p) => Reason::DeniedBy(p.name()),
        }
    }

    /// Every matching policy in evaluation order, up to and including the first deny.
    pub fn applied_policies(&self) -> &[&'s Policy] {
        &self.applied
    }

    /// Names of [`Decision::applied_policies`].
    pub fn applied_policy_names(&self) -> impl ExactSizeIterator<Item = &'s str> + '_ {
        self.applied.iter().map(|p| p.name())
    }

    /// The response body `{allowed, reason, appliedPolicies}`.
    pub fn to_body(&self) -> DecisionBody {
        DecisionBody {
            allowed: self.allowed(),
            reason: self.reason().to_string(),
            applied_policies: self.applied_policy_names().map(str::to_owned).collect(),
        }
    }
}

/// `{"allowed", "reason", "appliedPolicies"}` as the evaluate endpoints answer and the cache
/// stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionBody {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// Exact reason string.
    pub reason: String,
    /// Names of the matching policies in evaluation order.
    pub applied_policies: Vec<String>,
}

impl DecisionBody {
    /// The response when evaluation failed unexpectedly.
    pub fn evaluation_error() -> Self {
        Self {
            allowed: false,
            reason: EVALUATION_ERROR_REASON.to_owned(),
            applied_policies: Vec::new(),
        }
    }
}
