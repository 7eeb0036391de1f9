//! The remediation loop: signals from the ai-engine, Alertmanager or an admin become
//! deduplicated incidents ([`intake`]); each new incident goes through the decision path
//! ([`engine`]: policy, mode and plan), which reads what it needs (`analysis`: the
//! ai-engine's verdict and the replicas), acts and verifies (`outcome`), and writes every step
//! the same way (`steps`). The kill switch ([`mode`]) is read before every decision and
//! approval, and [`expiry`] closes approvals nobody gave in time. Each of them takes the loop's
//! handle (`remediator`: settings, services, tasks), never the application state. The rules it
//! applies live in the pure `aegis-remediation` crate.

pub mod alertmanager;
mod analysis;
pub mod config;
pub mod engine;
pub mod expiry;
pub mod fingerprint;
pub mod intake;
pub mod mode;
mod outcome;
mod remediator;
pub mod signal;
mod steps;

pub use config::RemediationConfig;
pub use fingerprint::fingerprint;
pub use intake::{IntakeOutcome, accept_signal};
pub use remediator::Remediator;
pub use signal::{Signal, Target};
