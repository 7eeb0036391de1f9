//! The remediation loop: signals from the ai-engine, Alertmanager or
//! an admin become deduplicated incidents ([`intake`]); each new incident goes through the
//! decision path ([`engine`]: analysis, policy, mode and guardrails, the signed executor call,
//! verification), whose pure rules live in the `aegis-remediation` crate.

pub mod alertmanager;
pub mod config;
pub mod engine;
pub mod fingerprint;
pub mod intake;
pub mod signal;

pub use config::RemediationConfig;
pub use engine::Remediator;
pub use fingerprint::fingerprint;
pub use intake::{IntakeOutcome, accept_signal};
pub use signal::Signal;

pub use aegis_common::names::{is_dns_label, is_dns_subdomain};
