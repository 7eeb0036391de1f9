//! Why a condition did not hold: what it expected and what the context had, as an
//! explanation shows it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// Why an `ipRange` condition failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum IpProblem {
    /// The context has no `ipAddress`.
    Missing,
    /// `ipAddress` is not an IP address.
    Unparsable,
    /// The address is in none of the ranges.
    OutOfRange,
}

/// Why one metadata key failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum MetadataProblem {
    /// The context has no `metadata` at all.
    NoMetadata,
    /// The key is absent from `metadata`.
    MissingKey,
    /// A plain value that is not equal to the actual value.
    NotEqual,
    /// An operator that does not hold.
    OperatorFailed {
        /// The operator, e.g. `$gte`.
        operator: &'static str,
    },
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
