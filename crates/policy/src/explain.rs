//! Explanations: per policy, whether it applied, whether it matched, and why not.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::condition::{IpProblem, MetadataProblem};
use crate::set::{Decision, Policy};

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

/// One condition that did not hold, with what was expected and what the context had.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "condition",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum ConditionFailure {
    /// `role` differs.
    Role {
        /// Required role.
        expected: String,
        /// `context.role`.
        actual: Option<String>,
    },
    /// `context.role` is not in `roles`.
    Roles {
        /// Accepted roles.
        expected: Vec<String>,
        /// `context.role`.
        actual: Option<String>,
    },
    /// `userId` differs.
    UserId {
        /// Required user id.
        expected: String,
        /// `context.userId`.
        actual: Option<String>,
    },
    /// `ipAddress` differs.
    IpAddress {
        /// Required address string.
        expected: String,
        /// `context.ipAddress`.
        actual: Option<String>,
    },
    /// `userAgent` differs.
    UserAgent {
        /// Required user agent.
        expected: String,
        /// `context.userAgent`.
        actual: Option<String>,
    },
    /// The client address is not inside `ipRange`.
    IpRange {
        /// The ranges, normalised.
        ranges: Vec<String>,
        /// `context.ipAddress`.
        actual: Option<String>,
        /// Why.
        problem: IpProblem,
    },
    /// `now` is outside `timeRange`.
    TimeRange {
        /// The range, normalised (`HH:MM:SS-HH:MM:SS Zone` or `start..end`).
        range: String,
        /// The evaluation time.
        now: DateTime<Utc>,
        /// `now` in the range's time zone, for daily ranges.
        local_time: Option<String>,
    },
    /// A `metadata` key failed.
    Metadata {
        /// The metadata key.
        key: String,
        /// The check, e.g. `$gte 80` or `= "unhealthy"`.
        expected: String,
        /// The context's value, if any.
        actual: Option<Value>,
        /// Why.
        problem: MetadataProblem,
    },
}

impl fmt::Display for ConditionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| match v {
            Some(s) => format!("{s:?}"),
            None => "absent".to_owned(),
        };
        match self {
            ConditionFailure::Role { expected, actual } => {
                write!(f, "role is {}, expected {expected:?}", show(actual))
            }
            ConditionFailure::Roles { expected, actual } => {
                write!(f, "role is {}, expected one of {expected:?}", show(actual))
            }
            ConditionFailure::UserId { expected, actual } => {
                write!(f, "userId is {}, expected {expected:?}", show(actual))
            }
            ConditionFailure::IpAddress { expected, actual } => {
                write!(f, "ipAddress is {}, expected {expected:?}", show(actual))
            }
            ConditionFailure::UserAgent { expected, actual } => {
                write!(f, "userAgent is {}, expected {expected:?}", show(actual))
            }
            ConditionFailure::IpRange {
                ranges,
                actual,
                problem,
            } => match problem {
                IpProblem::Missing => write!(f, "ipRange: the context has no ipAddress"),
                IpProblem::Unparsable => {
                    write!(
                        f,
                        "ipRange: ipAddress {} is not an IP address",
                        show(actual)
                    )
                }
                IpProblem::OutOfRange => write!(
                    f,
                    "ipRange: {} is outside {}",
                    show(actual),
                    ranges.join(", ")
                ),
            },
            ConditionFailure::TimeRange {
                range,
                now,
                local_time,
            } => match local_time {
                Some(local) => write!(f, "timeRange: local time {local} is outside {range}"),
                None => write!(f, "timeRange: {} is outside {range}", now.to_rfc3339()),
            },
            ConditionFailure::Metadata {
                key,
                expected,
                actual,
                problem,
            } => match problem {
                MetadataProblem::NoMetadata => {
                    write!(
                        f,
                        "metadata.{key}: the context has no metadata (needs {expected})"
                    )
                }
                MetadataProblem::MissingKey => {
                    write!(f, "metadata.{key}: key is missing (needs {expected})")
                }
                MetadataProblem::NotEqual | MetadataProblem::OperatorFailed { .. } => {
                    let actual = actual
                        .as_ref()
                        .map_or_else(|| "absent".to_owned(), Value::to_string);
                    write!(f, "metadata.{key} is {actual}, needs {expected}")
                }
            },
        }
    }
}

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
