//! The Aegis policy engine as a pure library: the policy model, parsing and
//! validation of single policies and of policy files (JSON or YAML) with errors that name the
//! offending field path, a compiled and immutable [`PolicySet`] indexed by policy type, the exact
//! deny-overrides evaluation, and a [`PolicySet::explain`] call that says, policy by
//! policy, why a decision came out as it did.
//!
//! It must stay pure: no I/O, no clock reads (the caller passes "now"), no async runtime, no
//! database or HTTP types, and no panics on any input. User patterns are never turned into
//! regular expressions: action and resource globs are matched by a small literal matcher, and only
//! the `$regex` operator compiles a (size-limited) Rust regex, once, at validation time.
//!
//! Typical use by the backend:
//!
//! ```
//! use aegis_policy::{Context, PolicySet, PolicyType, Request, seed_policies};
//!
//! let policies = aegis_policy::validate_policies(&seed_policies())?;
//! let set = PolicySet::new(policies); // wrap in an Arc and swap it atomically on change
//! let request = Request {
//!     policy_type: PolicyType::ApiAccess,
//!     action: "delete",
//!     resource: "/api/users/5",
//!     context: Context { role: Some("user"), ..Context::default() },
//! };
//! let decision = set.evaluate(&request, chrono::Utc::now());
//! assert!(!decision.allowed());
//! assert_eq!(decision.reason().to_string(), "Denied by policy: Deny User Delete Operations");
//! # Ok::<(), aegis_policy::ValidationError>(())
//! ```

mod cache;
mod condition;
mod decision;
mod error;
mod explain;
mod glob;
mod json;
mod model;
mod parse;
mod policy;
mod request;
mod seeds;
mod set;
#[cfg(test)]
mod tests;

// The wire types the engine is asked with, defined once in aegis-contracts: the owned request
// a caller deserialises or builds, which `Request::from` borrows for evaluation.
pub use aegis_contracts::{EvaluationContext, EvaluationRequest, PolicyType, UnknownPolicyType};
pub use cache::{CACHE_KEY_PREFIX, cache_key, cache_key_from_suffix, cache_key_suffix};
pub use condition::{ConditionFailure, IpProblem, MetadataProblem};
pub use decision::{Decision, DecisionBody, EVALUATION_ERROR_REASON, NO_MATCH_REASON, Reason};
pub use error::{PolicyFileError, ValidationError, ValidationErrorKind};
pub use explain::{Explanation, PolicyTrace};
pub use model::{Effect, PolicyDefinition, Priority, PriorityError, RemediationMode};
pub use parse::{
    DEFINITION_FIELDS, Format, MAX_REGEX_LEN, merge_patch, parse_policies, parse_policies_json,
    parse_policies_yaml, validate_policies, validate_policy,
};
pub use policy::{Applicability, Policy};
pub use request::{Context, Request};
pub use seeds::{seed_policies, seed_policy_definitions};
pub use set::PolicySet;
