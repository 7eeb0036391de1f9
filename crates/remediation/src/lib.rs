//! The remediation domain of Aegis: where an incident stands ([`Status`]), what its timeline
//! records ([`Step`]), every way its status may change ([`Move`], the transition table), what
//! an operator may do to it ([`operator`]), and the rules of the decision path: what a
//! recommendation becomes and how far to scale ([`plan`]), which guardrail blocks an action
//! ([`guardrail`]), and whether an action worked ([`verify`]).
//!
//! It is a pure library, like `aegis-policy`: no I/O, no clock, no database. The backend
//! keeps the I/O (intake, the incident store, the clients and the routes) and asks this
//! crate what is allowed. The store applies a [`Move`] as a compare-and-set on the statuses
//! it starts from, so concurrent steps cannot both win.
//!
//! Adding a status is a change here (the variant, its text, whether it is open, and the
//! moves that reach and leave it) plus one migration that adds it to the `incidents.status`
//! check and, if it is open, to the partial unique index over the open statuses.
//!
//! ```
//! use aegis_remediation::{Move, Status, operator};
//!
//! // An operator approves an incident that waits for approval: its action runs.
//! let approved = operator::approve(Status::AwaitingApproval).unwrap();
//! assert_eq!(approved, Move::Approve);
//! assert_eq!(approved.to(), Status::Executing);
//!
//! // Once it runs, it can no longer be rejected, and nothing leaves a closed status.
//! assert!(operator::reject(Status::Executing).is_err());
//! assert!(!Status::Resolved.can_move_to(Status::Executing));
//! ```

pub mod guardrail;
pub mod operator;
pub mod plan;
mod status;
mod transition;
pub mod verify;

pub use status::{Status, Step, UnknownName};
pub use transition::Move;
