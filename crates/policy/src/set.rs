//! The compiled policy set: indexing by type, evaluation and explanation.

use std::ops::Range;

use aegis_contracts::PolicyType;
use chrono::{DateTime, Utc};

use crate::condition::Env;
use crate::decision::Decision;
use crate::error::PolicyFileError;
use crate::explain::{Explanation, PolicyTrace};
use crate::policy::{Applicability, Policy};
use crate::request::Request;

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
            if policy.targets(request) && policy.conditions().holds(&env) && decision.record(policy)
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
