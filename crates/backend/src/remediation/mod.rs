//! The remediation loop: signals from the ai-engine, Alertmanager or
//! an admin become deduplicated incidents ([`intake`]); each new incident goes through the
//! decision path ([`engine`]: analysis, policy, mode and guardrails, the signed executor call,
//! verification), whose pure rules live in [`plan`].

pub mod alertmanager;
pub mod config;
pub mod engine;
pub mod fingerprint;
pub mod intake;
pub mod plan;
pub mod signal;

pub use config::RemediationConfig;
pub use engine::Remediator;
pub use fingerprint::fingerprint;
pub use intake::{IntakeOutcome, accept_signal};
pub use signal::Signal;

/// Whether `s` is a DNS-1123 label (namespaces).
#[must_use]
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Whether `s` is a DNS-1123 subdomain (deployments, pods).
#[must_use]
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns_label("production"));
        assert!(is_dns_label("a-1"));
        assert!(!is_dns_label("Prod"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a.b"));
        assert!(!is_dns_label(""));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("api.v1"));
        assert!(!is_dns_subdomain("api..v1"));
        assert!(!is_dns_subdomain("api_v1"));
    }
}
