//! Where an incident stands, and the steps of its timeline.
//!
//! Each type's text form is defined once, by `as_str`; serde, the database layer and
//! `FromStr` all go through it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An incident's status. The open ones still absorb signals with their fingerprint and may
/// still act; the closed ones are final.
///
/// The database keeps the text form, checked by the `incidents.status` constraint and the
/// partial unique index over the open statuses; a new status needs a migration that adds
/// it to both (a backend test compares them with [`Status::ALL`] and [`Status::is_open`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Status {
    /// Recorded; analysis and the policy decision may be under way.
    Open,
    /// An action is planned and waits for an admin or operator.
    AwaitingApproval,
    /// The executor call is under way.
    Executing,
    /// The action succeeded; the outcome is checked after a delay.
    Verifying,
    /// The action worked.
    Resolved,
    /// An admin declined to act.
    Rejected,
    /// The action, or the plan for it, failed.
    Failed,
    /// Handed to a human, with an alert.
    Escalated,
    /// Deliberately not acted on: policy, mode, dry run or a guardrail.
    Suppressed,
    /// Nobody approved or rejected the planned action in time.
    Expired,
}

impl Status {
    /// Every status, in the order the API lists them.
    pub const ALL: [Status; 10] = [
        Status::Open,
        Status::AwaitingApproval,
        Status::Executing,
        Status::Verifying,
        Status::Resolved,
        Status::Rejected,
        Status::Failed,
        Status::Escalated,
        Status::Suppressed,
        Status::Expired,
    ];

    /// The text form, as stored and sent.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::AwaitingApproval => "awaiting_approval",
            Status::Executing => "executing",
            Status::Verifying => "verifying",
            Status::Resolved => "resolved",
            Status::Rejected => "rejected",
            Status::Failed => "failed",
            Status::Escalated => "escalated",
            Status::Suppressed => "suppressed",
            Status::Expired => "expired",
        }
    }

    /// Whether the incident is still under way. At most one open incident exists per
    /// fingerprint; reaching a closed status stamps `resolved_at`.
    #[must_use]
    pub const fn is_open(self) -> bool {
        match self {
            Status::Open | Status::AwaitingApproval | Status::Executing | Status::Verifying => true,
            Status::Resolved
            | Status::Rejected
            | Status::Failed
            | Status::Escalated
            | Status::Suppressed
            | Status::Expired => false,
        }
    }

    /// The open statuses, in [`Status::ALL`] order.
    pub fn open() -> impl Iterator<Item = Status> {
        Status::ALL.into_iter().filter(|s| s.is_open())
    }

    /// The closed statuses, in [`Status::ALL`] order.
    pub fn closed() -> impl Iterator<Item = Status> {
        Status::ALL.into_iter().filter(|s| !s.is_open())
    }
}

/// The timeline step an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Step {
    /// A signal opened or joined the incident.
    Signal,
    /// Alertmanager reported the alert behind the incident resolved.
    AlertResolved,
    /// The ai-engine analysed the signal's window.
    Analysis,
    /// The loop decided without the policy (mode off, nothing to do, not automated).
    Decision,
    /// The `self_healing` policy decided.
    Policy,
    /// Planning the action failed (the deployment could not be read or scaled further).
    Plan,
    /// The executor validated the action without applying it.
    DryRun,
    /// The action waits for an admin or operator.
    ApprovalRequired,
    /// An admin or operator approved the action.
    Approved,
    /// An admin or operator rejected the incident.
    Rejected,
    /// The approval was not given in time.
    Expired,
    /// The action was committed to.
    Execute,
    /// The executor answered.
    Outcome,
    /// The outcome was checked.
    Verify,
    /// A guardrail (cooldown, hourly cap) blocked the action.
    Guardrail,
    /// An internal error ended the incident.
    Error,
    /// An operator labelled the incident as training data.
    Label,
}

impl Step {
    /// Every step.
    pub const ALL: [Step; 17] = [
        Step::Signal,
        Step::AlertResolved,
        Step::Analysis,
        Step::Decision,
        Step::Policy,
        Step::Plan,
        Step::DryRun,
        Step::ApprovalRequired,
        Step::Approved,
        Step::Rejected,
        Step::Expired,
        Step::Execute,
        Step::Outcome,
        Step::Verify,
        Step::Guardrail,
        Step::Error,
        Step::Label,
    ];

    /// The text form, as stored and sent.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::Signal => "signal",
            Step::AlertResolved => "alert_resolved",
            Step::Analysis => "analysis",
            Step::Decision => "decision",
            Step::Policy => "policy",
            Step::Plan => "plan",
            Step::DryRun => "dry_run",
            Step::ApprovalRequired => "approval_required",
            Step::Approved => "approved",
            Step::Rejected => "rejected",
            Step::Expired => "expired",
            Step::Execute => "execute",
            Step::Outcome => "outcome",
            Step::Verify => "verify",
            Step::Guardrail => "guardrail",
            Step::Error => "error",
            Step::Label => "label",
        }
    }
}

/// A text that names no status or step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}: {text:?}")]
pub struct UnknownName {
    what: &'static str,
    text: String,
}

macro_rules! text_form {
    ($type:ident, $what:literal) => {
        impl FromStr for $type {
            type Err = UnknownName;

            fn from_str(text: &str) -> Result<Self, UnknownName> {
                $type::ALL
                    .into_iter()
                    .find(|v| v.as_str() == text)
                    .ok_or_else(|| UnknownName {
                        what: $what,
                        text: text.to_owned(),
                    })
            }
        }

        impl TryFrom<String> for $type {
            type Error = UnknownName;

            fn try_from(text: String) -> Result<Self, UnknownName> {
                text.parse()
            }
        }

        impl From<$type> for &'static str {
            fn from(value: $type) -> Self {
                value.as_str()
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_form!(Status, "incident status");
text_form!(Step, "timeline step");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_and_step_reads_back_from_its_text_and_json() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
            let json = serde_json::to_value(status).unwrap_or_default();
            assert_eq!(json, status.as_str());
            assert_eq!(serde_json::from_value::<Status>(json).ok(), Some(status));
        }
        for step in Step::ALL {
            assert_eq!(step.as_str().parse::<Step>(), Ok(step));
            let json = serde_json::to_value(step).unwrap_or_default();
            assert_eq!(serde_json::from_value::<Step>(json).ok(), Some(step));
        }
    }

    #[test]
    fn unknown_and_differently_cased_names_are_refused() {
        for text in ["", "Open", "OPEN", "closed", "awaiting-approval", " open"] {
            assert!(text.parse::<Status>().is_err(), "{text:?}");
        }
        assert!(serde_json::from_str::<Status>("\"paused\"").is_err());
        assert!("Signal".parse::<Step>().is_err());
        let error = "paused".parse::<Status>().err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("unknown incident status: \"paused\"")
        );
    }

    #[test]
    fn open_and_closed_split_the_statuses() {
        let open: Vec<_> = Status::open().map(Status::as_str).collect();
        assert_eq!(
            open,
            ["open", "awaiting_approval", "executing", "verifying"]
        );
        let closed: Vec<_> = Status::closed().map(Status::as_str).collect();
        assert_eq!(
            closed,
            [
                "resolved",
                "rejected",
                "failed",
                "escalated",
                "suppressed",
                "expired"
            ]
        );
    }
}
