//! The outcome of an evaluation: the decision, its reason and the response body.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::Effect;
use crate::policy::Policy;

/// `reason` when no policy matched.
pub const NO_MATCH_REASON: &str = "No matching policy found";
/// `reason` of the response when evaluation failed unexpectedly.
pub const EVALUATION_ERROR_REASON: &str = "Policy evaluation error";

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
    pub(crate) fn default_deny() -> Self {
        Self {
            applied: Vec::new(),
        }
    }

    /// Appends a matching policy; returns true when evaluation must stop (a deny).
    pub(crate) fn record(&mut self, policy: &'s Policy) -> bool {
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

    /// The reason; its `Display` is the exact `reason` string clients receive.
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
