//! Kubernetes object names (DNS-1123), checked the same way by every service that takes one
//! from outside: the backend's signals and incidents, and the executor's actions.

/// Whether `s` is a DNS-1123 label (namespaces): 1–63 of `[a-z0-9-]`, alphanumeric at both
/// ends. Such a string can be written into SQL or a label value without escaping.
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

/// Whether `s` is a DNS-1123 subdomain (deployments, pods): at most 253 characters of
/// dot-separated labels.
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
        assert!(is_dns_subdomain("web-7d9f.x"));
        assert!(!is_dns_subdomain("api..v1"));
        assert!(!is_dns_subdomain("api_v1"));
        assert!(!is_dns_subdomain(&format!("{}.b", "a".repeat(252))));
    }
}
