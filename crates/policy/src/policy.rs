//! A compiled policy and whether it applies to a request's action and resource.

use std::cmp::Ordering;
use std::fmt;

use aegis_contracts::PolicyType;
use serde::Serialize;

use crate::condition::Conditions;
use crate::glob::PatternList;
use crate::model::{Effect, PolicyDefinition, Priority, RemediationMode};
use crate::request::Request;

/// A validated policy with its patterns and conditions compiled. Immutable.
#[derive(Debug, Clone)]
pub struct Policy {
    definition: PolicyDefinition,
    actions: PatternList,
    resources: PatternList,
    conditions: Conditions,
}

impl Policy {
    /// Compiles the patterns of a definition that already passed validation; only parsing calls
    /// it, so every `Policy` holds a valid definition.
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

    /// Action and resource match; evaluation's fast path, which only sees active policies.
    pub(crate) fn targets(&self, request: &Request<'_>) -> bool {
        self.actions.matches(request.action) && self.resources.matches(request.resource)
    }

    pub(crate) fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    /// The evaluation order: priority descending, deny before allow, name, then id.
    pub(crate) fn evaluation_order(&self, other: &Policy) -> Ordering {
        let deny_first = |p: &Policy| p.effect() != Effect::Deny;
        other
            .priority()
            .cmp(&self.priority())
            .then_with(|| deny_first(self).cmp(&deny_first(other)))
            .then_with(|| self.name().cmp(other.name()))
            .then_with(|| self.id().cmp(&other.id()))
    }
}

/// Whether a policy is a candidate for the request (type is already equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Applicability {
    /// Active, action and resource match: its conditions were checked.
    Applicable,
    /// `isActive` is false.
    Inactive,
    /// No action pattern matches the request's action.
    ActionNotMatched,
    /// No resource pattern matches the request's resource.
    ResourceNotMatched,
}

impl fmt::Display for Applicability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Applicability::Applicable => "applicable",
            Applicability::Inactive => "inactive",
            Applicability::ActionNotMatched => "action does not match",
            Applicability::ResourceNotMatched => "resource does not match",
        })
    }
}
