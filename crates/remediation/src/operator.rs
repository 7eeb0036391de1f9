//! What an operator may do to an incident: approve its planned action, reject it, or label
//! it as training data. Each check here is the whole rule; the routes only extract the
//! request, call these and answer.

use crate::guardrail::Blocked;
use crate::status::Status;
use crate::transition::Move;

/// An operator action that the incident's status does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Only an incident awaiting approval can be approved.
    #[error("is not awaiting approval (status: {0})")]
    NotAwaitingApproval(Status),
    /// Only an incident that has not acted can be rejected.
    #[error("cannot be rejected (status: {0})")]
    NotRejectable(Status),
}

/// The move that approving an incident in `status` makes: its planned action runs. The
/// plan is made again against the cluster as it is now, and the guardrails are checked again
/// (see [`gate`]): an approval given minutes after the request must not act on a deployment
/// that was acted on meanwhile, unless the approver says so explicitly.
///
/// # Errors
/// [`Refused::NotAwaitingApproval`] unless the incident awaits approval.
pub fn approve(status: Status) -> Result<Move, Refused> {
    if Move::Approve.starts_from(status) {
        Ok(Move::Approve)
    } else {
        Err(Refused::NotAwaitingApproval(status))
    }
}

/// The move that rejecting an incident in `status` makes: it closes without acting.
///
/// # Errors
/// [`Refused::NotRejectable`] once the incident has acted or closed.
pub fn reject(status: Status) -> Result<Move, Refused> {
    if Move::Reject.starts_from(status) {
        Ok(Move::Reject)
    } else {
        Err(Refused::NotRejectable(status))
    }
}

/// The longest rejection, approval or override reason, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// What an approver asked for: why, and whether to act even where a guardrail holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    reason: Option<String>,
    override_guardrails: bool,
}

/// An approval request that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidApproval {
    /// The reason is too long.
    #[error("reason must be at most 1000 characters")]
    ReasonTooLong,
    /// Overriding the guardrails without saying why.
    #[error("overrideGuardrails needs a reason: say why the guardrails should not hold")]
    OverrideWithoutReason,
}

impl Approval {
    /// An approval with an optional `reason` (trimmed; blank counts as none), overriding the
    /// guardrails when `override_guardrails`, which needs a reason.
    ///
    /// # Errors
    /// [`InvalidApproval`] for a reason over [`MAX_REASON_CHARS`] characters, or an override
    /// without a reason.
    pub fn new(
        reason: Option<String>,
        override_guardrails: bool,
    ) -> Result<Approval, InvalidApproval> {
        let reason = reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
        {
            return Err(InvalidApproval::ReasonTooLong);
        }
        if override_guardrails && reason.is_none() {
            return Err(InvalidApproval::OverrideWithoutReason);
        }
        Ok(Approval {
            reason,
            override_guardrails,
        })
    }

    /// Why, if the approver said.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Whether the approver overrides a guardrail that holds.
    #[must_use]
    pub fn overrides(&self) -> bool {
        self.override_guardrails
    }
}

/// How an approval passes the guardrails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Check them and take the action slot: no guardrail held when the approval was given.
    Enforce,
    /// Take the slot without checking: the approver overrode them, with a reason.
    Override,
}

/// The gate of an approval: the approver's override skips the check; otherwise the guardrails
/// are enforced as for an automatic action.
#[must_use]
pub fn gate(approval: &Approval) -> Gate {
    if approval.override_guardrails {
        Gate::Override
    } else {
        Gate::Enforce
    }
}

/// What an approval refused by a guardrail tells the approver: which one held, and how to act
/// anyway.
#[must_use]
pub fn blocked_approval(blocked: Blocked) -> String {
    let held = match blocked {
        Blocked::Cooldown { seconds_left } => {
            format!("the cooldown holds for another {seconds_left} s")
        }
        Blocked::Capped { actions } => {
            format!("the namespace had {actions} actions in the last hour, its cap")
        }
    };
    format!(
        "{held}; approve with overrideGuardrails and a reason to act anyway, or wait and approve again"
    )
}

/// A reason longer than [`MAX_REASON_CHARS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("reason must be at most 1000 characters")]
pub struct ReasonTooLong;

/// Checks a rejection's optional reason.
///
/// # Errors
/// [`ReasonTooLong`] over [`MAX_REASON_CHARS`] characters.
pub fn rejection_reason(reason: Option<String>) -> Result<Option<String>, ReasonTooLong> {
    match reason {
        Some(r) if r.chars().count() > MAX_REASON_CHARS => Err(ReasonTooLong),
        other => Ok(other),
    }
}

/// An operator's verdict on an incident: a failure type name of the ai-engine, or `none`.
/// Labelling is allowed in every status, since it records data and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label(String);

/// A label that is empty or longer than 64 bytes after trimming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("failureType must be a failure type name or \"none\"")]
pub struct InvalidLabel;

impl Label {
    /// The label of `raw`, trimmed; 1 to 64 bytes.
    ///
    /// # Errors
    /// [`InvalidLabel`] when it is empty or too long.
    pub fn parse(raw: &str) -> Result<Label, InvalidLabel> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > 64 {
            return Err(InvalidLabel);
        }
        Ok(Label(trimmed.to_owned()))
    }

    /// The failure type name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_incident_awaiting_approval_can_be_approved() {
        for status in Status::ALL {
            let expected = if status == Status::AwaitingApproval {
                Ok(Move::Approve)
            } else {
                Err(Refused::NotAwaitingApproval(status))
            };
            assert_eq!(approve(status), expected, "{status}");
        }
    }

    #[test]
    fn only_an_incident_that_has_not_acted_can_be_rejected() {
        for status in Status::ALL {
            let allowed = matches!(status, Status::Open | Status::AwaitingApproval);
            assert_eq!(reject(status).is_ok(), allowed, "{status}");
        }
        let refused = reject(Status::Executing).err().map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some("cannot be rejected (status: executing)")
        );
    }

    #[test]
    fn a_reason_may_have_up_to_a_thousand_characters() {
        assert_eq!(rejection_reason(None), Ok(None));
        let longest = "é".repeat(MAX_REASON_CHARS);
        assert_eq!(rejection_reason(Some(longest.clone())), Ok(Some(longest)));
        let over = "a".repeat(MAX_REASON_CHARS + 1);
        assert_eq!(rejection_reason(Some(over)), Err(ReasonTooLong));
    }

    #[test]
    fn an_override_needs_a_reason_and_a_blank_reason_is_none() {
        assert_eq!(
            Approval::new(None, true),
            Err(InvalidApproval::OverrideWithoutReason)
        );
        assert_eq!(
            Approval::new(Some("   ".into()), true),
            Err(InvalidApproval::OverrideWithoutReason)
        );
        let plain = Approval::new(Some("  ".into()), false).unwrap();
        assert_eq!((plain.reason(), gate(&plain)), (None, Gate::Enforce));
        let forced = Approval::new(Some(" pager says so ".into()), true).unwrap();
        assert_eq!(forced.reason(), Some("pager says so"));
        assert_eq!(gate(&forced), Gate::Override);
        assert_eq!(
            Approval::new(Some("a".repeat(MAX_REASON_CHARS + 1)), false),
            Err(InvalidApproval::ReasonTooLong)
        );
    }

    #[test]
    fn a_blocked_approval_names_the_guardrail_and_the_way_out() {
        let cooldown = blocked_approval(Blocked::Cooldown { seconds_left: 42 });
        assert!(
            cooldown.starts_with("the cooldown holds for another 42 s"),
            "{cooldown}"
        );
        assert!(cooldown.contains("overrideGuardrails"), "{cooldown}");
        let cap = blocked_approval(Blocked::Capped { actions: 6 });
        assert!(cap.contains("6 actions"), "{cap}");
    }

    #[test]
    fn a_label_is_trimmed_and_between_one_and_sixty_four_bytes() {
        assert_eq!(
            Label::parse("  oom_kill \n").map(|l| l.0),
            Ok("oom_kill".into())
        );
        assert_eq!(Label::parse("none").map(|l| l.0), Ok("none".into()));
        assert_eq!(Label::parse("   "), Err(InvalidLabel));
        assert!(Label::parse(&"x".repeat(64)).is_ok());
        assert_eq!(Label::parse(&"x".repeat(65)), Err(InvalidLabel));
    }
}
