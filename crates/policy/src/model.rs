//! The policy model, as the API sends and receives it.

use std::fmt;

use aegis_contracts::PolicyType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a matching policy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Allow, unless a matching deny exists.
    Allow,
    /// Deny; overrides every allow.
    Deny,
}

impl Effect {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy priority: an integer in `0..=1000`, default 100. Higher is evaluated first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u16")]
pub struct Priority(u16);

/// A priority outside `0..=1000`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("priority must be an integer between 0 and 1000")]
pub struct PriorityError;

impl Priority {
    /// The lowest priority.
    pub const MIN: Priority = Priority(0);
    /// The highest priority.
    pub const MAX: Priority = Priority(1000);
    /// The priority of a policy created without one.
    pub const DEFAULT: Priority = Priority(100);

    /// Checks the range.
    pub fn new(value: i64) -> Result<Self, PriorityError> {
        u16::try_from(value)
            .ok()
            .filter(|v| *v <= Self::MAX.0)
            .map(Priority)
            .ok_or(PriorityError)
    }

    /// The integer value.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for Priority {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<i64> for Priority {
    type Error = PriorityError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Priority::new(value)
    }
}

impl From<Priority> for u16 {
    fn from(p: Priority) -> u16 {
        p.0
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How the remediation loop acts on an action this policy allowed (`self_healing` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemediationMode {
    /// Never act.
    Off,
    /// Record what would be done, do nothing.
    DryRun,
    /// Wait for an admin's approval.
    Approval,
    /// Act at once.
    Auto,
}

impl RemediationMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RemediationMode::Off => "off",
            RemediationMode::DryRun => "dry_run",
            RemediationMode::Approval => "approval",
            RemediationMode::Auto => "auto",
        }
    }

    /// Parses a wire name (`off`, `dry_run`, `approval`, `auto`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Off, Self::DryRun, Self::Approval, Self::Auto]
            .into_iter()
            .find(|m| m.as_str() == s)
    }

    /// The more cautious of two modes: `off` before `dry_run` before `approval` before
    /// `auto`. A global setting and a policy's own mode combine this way, so neither can
    /// loosen the other.
    #[must_use]
    pub fn stricter(self, other: Self) -> Self {
        let rank = |m: Self| match m {
            Self::Off => 0,
            Self::DryRun => 1,
            Self::Approval => 2,
            Self::Auto => 3,
        };
        if rank(other) < rank(self) {
            other
        } else {
            self
        }
    }
}

/// A policy as the API sends and receives it (camelCase). `enabled` is accepted for `isActive`.
///
/// Deserialising this type checks shapes only; [`crate::Policy::from_definition`] or
/// [`crate::validate_policy`] check everything else and compile the conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyDefinition {
    /// Server-assigned id (the last tie-breaker of the evaluation order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Unique name, 1..=255 characters.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Policy type.
    #[serde(rename = "type")]
    pub policy_type: PolicyType,
    /// Allow or deny.
    pub effect: Effect,
    /// Condition object; all keys must hold.
    pub conditions: Map<String, Value>,
    /// Action patterns (`*`, literal, or glob with `*` and `?`).
    pub actions: Vec<String>,
    /// Resource patterns (`*`, literal, or glob with `*` and `?`).
    pub resources: Vec<String>,
    /// 0..=1000, default 100.
    #[serde(default)]
    pub priority: Priority,
    /// Inactive policies are never candidates.
    #[serde(default = "default_true", alias = "enabled")]
    pub is_active: bool,
    /// Guardrail mode for `self_healing` policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation_mode: Option<RemediationMode>,
}

fn default_true() -> bool {
    true
}
