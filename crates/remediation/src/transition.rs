//! The transition table: every way an incident's status may change, and from where.
//!
//! A [`Move`] names one transition. The store applies a move only while the incident is in
//! one of [`Move::from`] (a compare-and-set), so of two concurrent moves exactly one wins and
//! the other finds the incident moved on.

use crate::status::Status;

/// One transition of the incident state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Move {
    /// Open → open: the analysis is recorded while nothing else has decided.
    Analyse,
    /// Open → open: the policy decision is recorded while nothing else has decided.
    RecordPolicy,
    /// Open → awaiting approval: the planned action waits for an admin or operator.
    AskApproval,
    /// Open → executing: the loop commits to the action on its own.
    Act,
    /// Awaiting approval → executing: an admin or operator approved the planned action.
    Approve,
    /// Open or awaiting approval → rejected: an admin or operator declined to act.
    Reject,
    /// Awaiting approval → expired: nobody decided before the approval timed out.
    Expire,
    /// Executing → verifying: the executor applied the action.
    ActionSucceeded,
    /// Verifying → resolved: the deployment recovered.
    Resolve,
    /// Open → suppressed: policy, mode, dry run or a guardrail says not to act.
    Suppress,
    /// Any open status → failed: the plan or the action failed.
    Fail,
    /// Any open status → escalated: a human has to look (with an alert).
    Escalate,
}

impl Move {
    /// Every move.
    pub const ALL: [Move; 12] = [
        Move::Analyse,
        Move::RecordPolicy,
        Move::AskApproval,
        Move::Act,
        Move::Approve,
        Move::Reject,
        Move::Expire,
        Move::ActionSucceeded,
        Move::Resolve,
        Move::Suppress,
        Move::Fail,
        Move::Escalate,
    ];

    /// The status the move leads to.
    #[must_use]
    pub const fn to(self) -> Status {
        match self {
            Move::Analyse | Move::RecordPolicy => Status::Open,
            Move::AskApproval => Status::AwaitingApproval,
            Move::Act | Move::Approve => Status::Executing,
            Move::Reject => Status::Rejected,
            Move::Expire => Status::Expired,
            Move::ActionSucceeded => Status::Verifying,
            Move::Resolve => Status::Resolved,
            Move::Suppress => Status::Suppressed,
            Move::Fail => Status::Failed,
            Move::Escalate => Status::Escalated,
        }
    }

    /// Whether the move may start from `status`.
    #[must_use]
    pub const fn starts_from(self, status: Status) -> bool {
        match self {
            Move::Analyse | Move::RecordPolicy | Move::AskApproval | Move::Act | Move::Suppress => {
                matches!(status, Status::Open)
            }
            Move::Approve | Move::Expire => matches!(status, Status::AwaitingApproval),
            Move::Reject => matches!(status, Status::Open | Status::AwaitingApproval),
            Move::ActionSucceeded => matches!(status, Status::Executing),
            Move::Resolve => matches!(status, Status::Verifying),
            Move::Fail | Move::Escalate => status.is_open(),
        }
    }

    /// The statuses the move may start from, in [`Status::ALL`] order.
    pub fn from(self) -> impl Iterator<Item = Status> {
        Status::ALL
            .into_iter()
            .filter(move |s| self.starts_from(*s))
    }
}

impl Status {
    /// Whether some move leads from `self` to `next`.
    #[must_use]
    pub fn can_move_to(self, next: Status) -> bool {
        Move::ALL
            .into_iter()
            .any(|m| m.to() == next && m.starts_from(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    /// Every legal (from, to) pair; everything else is illegal.
    const LEGAL: [(Status, Status); 18] = [
        (Open, Open),
        (Open, AwaitingApproval),
        (Open, Executing),
        (Open, Rejected),
        (Open, Suppressed),
        (Open, Failed),
        (Open, Escalated),
        (AwaitingApproval, Executing),
        (AwaitingApproval, Rejected),
        (AwaitingApproval, Expired),
        (AwaitingApproval, Failed),
        (AwaitingApproval, Escalated),
        (Executing, Verifying),
        (Executing, Failed),
        (Executing, Escalated),
        (Verifying, Resolved),
        (Verifying, Failed),
        (Verifying, Escalated),
    ];

    #[test]
    fn every_pair_of_statuses_is_legal_exactly_when_the_table_says_so() {
        for from in Status::ALL {
            for to in Status::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    LEGAL.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn each_move_starts_only_where_it_may() {
        let starts = |m: Move| m.from().collect::<Vec<_>>();
        assert_eq!(starts(Move::Analyse), [Open]);
        assert_eq!(starts(Move::RecordPolicy), [Open]);
        assert_eq!(starts(Move::AskApproval), [Open]);
        assert_eq!(starts(Move::Act), [Open]);
        assert_eq!(starts(Move::Approve), [AwaitingApproval]);
        assert_eq!(starts(Move::Reject), [Open, AwaitingApproval]);
        assert_eq!(starts(Move::Expire), [AwaitingApproval]);
        assert_eq!(starts(Move::ActionSucceeded), [Executing]);
        assert_eq!(starts(Move::Resolve), [Verifying]);
        assert_eq!(starts(Move::Suppress), [Open]);
        let open: Vec<_> = Status::open().collect();
        assert_eq!(starts(Move::Fail), open);
        assert_eq!(starts(Move::Escalate), open);
    }

    #[test]
    fn nothing_leaves_a_closed_status_and_every_move_has_a_start() {
        for status in Status::closed() {
            for m in Move::ALL {
                assert!(!m.starts_from(status), "{m:?} from {status}");
            }
        }
        for m in Move::ALL {
            assert!(m.from().next().is_some(), "{m:?} can never happen");
        }
    }

    #[test]
    fn every_status_is_reached_by_some_move() {
        for status in Status::ALL {
            let reached = Move::ALL.into_iter().any(|m| m.to() == status);
            assert!(reached, "{status} is unreachable");
        }
    }
}
