//! Errors of parsing and validation. Evaluation of a validated set cannot fail.

use std::fmt;

/// Why a policy (or one of its fields) is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationErrorKind {
    /// A required field is absent.
    #[error("is required")]
    Missing,
    /// A field the model does not have.
    #[error("unknown field")]
    UnknownField,
    /// A condition key the engine does not know.
    #[error(
        "unknown condition (expected one of: role, roles, userId, ipRange, timeRange, metadata, ipAddress, userAgent)"
    )]
    UnknownCondition,
    /// A `$…` key that is not a supported operator.
    #[error("unknown operator")]
    UnknownOperator,
    /// An object mixing `$operators` with plain keys.
    #[error("cannot mix $operators and plain keys in one object")]
    MixedOperators,
    /// The value has the wrong JSON type.
    #[error("must be {0}")]
    WrongType(&'static str),
    /// An empty string where text is required.
    #[error("must not be empty")]
    EmptyString,
    /// An empty list where at least one element is required.
    #[error("must contain at least one element")]
    EmptyList,
    /// `conditions` is not an object.
    #[error("Policy conditions must be a valid JSON object")]
    ConditionsNotObject,
    /// `name` is empty or longer than 255 characters.
    #[error("name must be between 1 and 255 characters")]
    NameLength,
    /// `type` is not a policy type.
    #[error("type must be one of: api_access, self_healing, data_access, resource_limit")]
    PolicyType,
    /// `effect` is not allow/deny.
    #[error("effect must be one of: allow, deny")]
    Effect,
    /// `priority` is not an integer in range.
    #[error("priority must be an integer between 0 and 1000")]
    Priority,
    /// `remediationMode` is not a mode.
    #[error("remediationMode must be one of: off, dry_run, approval, auto")]
    RemediationMode,
    /// `remediationMode` on a policy that is not `self_healing`.
    #[error("remediationMode is only allowed on self_healing policies")]
    RemediationModeNotSelfHealing,
    /// Both `isActive` and its alias `enabled`.
    #[error("isActive and enabled are aliases; give only one")]
    ActiveAliasConflict,
    /// Not a CIDR or an IP address.
    #[error("invalid CIDR or IP address {0:?}")]
    BadCidr(String),
    /// Not a `HH:MM[:SS]` time or an RFC 3339 date-time.
    #[error("invalid time {0:?} (expected HH:MM, HH:MM:SS or an RFC 3339 date-time)")]
    BadTime(String),
    /// `start` and `end` of a time range are of different kinds.
    #[error("start and end must both be times of day or both be RFC 3339 date-times")]
    MixedTimeKinds,
    /// An absolute range that ends before it starts (it could never match).
    #[error("start must not be after end for RFC 3339 ranges")]
    StartAfterEnd,
    /// A time zone on an absolute (RFC 3339) range.
    #[error("timezone only applies to HH:MM ranges")]
    TimeZoneOnAbsoluteRange,
    /// Not an IANA time zone name.
    #[error("unknown time zone {0:?}")]
    BadTimeZone(String),
    /// A `$regex` longer than [`crate::MAX_REGEX_LEN`] bytes.
    #[error("regex is longer than 1024 bytes")]
    RegexTooLong,
    /// A `$regex` that does not compile.
    #[error("invalid regex: {0}")]
    BadRegex(String),
    /// A name used twice in one file.
    #[error("duplicate policy name {0:?}")]
    DuplicateName(String),
}

/// A validation error with the path of the offending field, e.g.
/// `policies[2].conditions.metadata.cpu.$gtt: unknown operator`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// Dotted path of the field (`""` for the policy itself).
    pub path: String,
    /// What is wrong.
    pub kind: ValidationErrorKind,
}

impl ValidationError {
    pub(crate) fn new(path: impl Into<String>, kind: ValidationErrorKind) -> Self {
        Self {
            path: path.into(),
            kind,
        }
    }

    /// The message without the path, for API error bodies that carry the bare sentence.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.path, self.kind)
        }
    }
}

/// Why a policy file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Not YAML (or YAML that has no JSON equivalent).
    #[error("invalid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    /// Well-formed, but not a valid policy file.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}
