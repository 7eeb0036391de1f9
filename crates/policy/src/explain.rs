//! Explanations: per policy, whether it applied, whether it matched, and why not.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::condition::ConditionFailure;
use crate::decision::Decision;
use crate::policy::{Applicability, Policy};

/// What happened to one policy of the request's type.
#[derive(Debug, Clone)]
pub struct PolicyTrace<'s> {
    /// The policy.
    pub policy: &'s Policy,
    /// Whether it was a candidate.
    pub applicability: Applicability,
    /// Candidate and every condition holds.
    pub matched: bool,
    /// Candidate, and evaluation had not stopped at an earlier deny when it came to this one.
    pub reached: bool,
    /// Every failing condition (empty unless applicable and not matched).
    pub failures: Vec<ConditionFailure>,
}

impl PolicyTrace<'_> {
    /// A one-line human summary.
    pub fn message(&self) -> String {
        let name = self.policy.name();
        match self.applicability {
            Applicability::Applicable if self.matched && self.reached => {
                format!("{name}: matched ({})", self.policy.effect())
            }
            Applicability::Applicable if self.matched => {
                format!("{name}: matched but not reached (an earlier deny decided)")
            }
            Applicability::Applicable => {
                let reasons: Vec<String> = self.failures.iter().map(|f| f.to_string()).collect();
                format!("{name}: conditions failed: {}", reasons.join("; "))
            }
            other => format!("{name}: not applicable ({other})"),
        }
    }
}

impl Serialize for PolicyTrace<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let p = self.policy;
        let mut s = serializer.serialize_struct("PolicyTrace", 10)?;
        s.serialize_field("name", p.name())?;
        s.serialize_field("id", &p.id())?;
        s.serialize_field("effect", &p.effect())?;
        s.serialize_field("priority", &p.priority())?;
        s.serialize_field("applicability", &self.applicability)?;
        s.serialize_field("matched", &self.matched)?;
        s.serialize_field("reached", &self.reached)?;
        s.serialize_field("failures", &self.failures)?;
        let messages: Vec<String> = self.failures.iter().map(|f| f.to_string()).collect();
        s.serialize_field("failureMessages", &messages)?;
        s.serialize_field("message", &self.message())?;
        s.end()
    }
}

/// A decision with its trace.
#[derive(Debug, Clone)]
pub struct Explanation<'s> {
    /// The same decision [`crate::PolicySet::evaluate`] returns.
    pub decision: Decision<'s>,
    /// Every policy of the request's type, in evaluation order (inactive ones last).
    pub policies: Vec<PolicyTrace<'s>>,
}

impl Serialize for Explanation<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Explanation", 2)?;
        s.serialize_field("decision", &self.decision.to_body())?;
        s.serialize_field("policies", &self.policies)?;
        s.end()
    }
}
