//! The decision-cache key with the version:
//! `policy:v<N>:<type>:<action>:<resource>:<userId|anonymous>:<role|none>:<h>`, where `h` is the
//! first 16 hex characters of SHA-256 over the canonical JSON
//! `{"ipAddress":…,"metadata":…,"userAgent":…}` (keys sorted at every level, no whitespace,
//! absent values as `null`).

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::request::Request;

/// The key under which the decision for `request` is cached, for policy version `version`
/// (bumped on every policy change).
pub fn cache_key(version: u64, request: &Request<'_>) -> String {
    cache_key_from_suffix(version, &cache_key_suffix(request))
}

/// [`cache_key`] from a suffix already computed with [`cache_key_suffix`].
pub fn cache_key_from_suffix(version: u64, suffix: &str) -> String {
    let mut key = String::with_capacity(CACHE_KEY_PREFIX.len() + 20 + suffix.len());
    key.push_str(CACHE_KEY_PREFIX);
    let _ = write!(key, "{version}");
    key.push_str(suffix);
    key
}

/// What every cache key starts with, before the version.
pub const CACHE_KEY_PREFIX: &str = "policy:v";

/// The part of [`cache_key`] after the version (`:<type>:…:<h>`). The backend keys its
/// in-process cache by it alone, since each of its caches belongs to one version.
pub fn cache_key_suffix(request: &Request<'_>) -> String {
    let ctx = &request.context;
    let mut canonical = String::with_capacity(128);
    canonical.push_str("{\"ipAddress\":");
    write_opt_str(&mut canonical, ctx.ip_address);
    canonical.push_str(",\"metadata\":");
    match ctx.metadata {
        Some(map) => write_object(&mut canonical, map.iter()),
        None => canonical.push_str("null"),
    }
    canonical.push_str(",\"userAgent\":");
    write_opt_str(&mut canonical, ctx.user_agent);
    canonical.push('}');
    let digest = Sha256::digest(canonical.as_bytes());
    let mut key = format!(
        ":{}:{}:{}:{}:{}:",
        request.policy_type,
        request.action,
        request.resource,
        ctx.user_id.unwrap_or("anonymous"),
        ctx.role.unwrap_or("none"),
    );
    for byte in digest.iter().take(8) {
        let _ = write!(key, "{byte:02x}");
    }
    key
}

fn write_opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.push_str("null"),
    }
}

fn write_str(out: &mut String, s: &str) {
    let _ = write!(out, "{}", Value::String(s.to_owned()));
}

fn write_object<'v>(out: &mut String, entries: impl Iterator<Item = (&'v String, &'v Value)>) {
    let mut sorted: Vec<(&String, &Value)> = entries.collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        write_value(out, v);
    }
    out.push('}');
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => write_object(out, map.iter()),
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, v);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, PolicyType};
    use serde_json::json;

    fn key(metadata: &Value, ip: Option<&str>) -> String {
        let request = Request {
            policy_type: PolicyType::SelfHealing,
            action: "scale_up",
            resource: "service:api",
            context: Context {
                user_id: Some("aegis-remediation"),
                role: Some("service"),
                ip_address: ip,
                user_agent: None,
                metadata: metadata.as_object(),
            },
        };
        cache_key(7, &request)
    }

    #[test]
    fn the_key_is_the_prefix_the_version_and_the_suffix() {
        let k = key(&json!({"cpuUsage": 90}), None);
        let suffix = k.strip_prefix("policy:v7").unwrap();
        assert!(suffix.starts_with(":self_healing:"), "{suffix}");
        assert_eq!(cache_key_from_suffix(7, suffix), k);
        assert_eq!(
            cache_key_from_suffix(8, suffix),
            format!("policy:v8{suffix}")
        );
    }

    #[test]
    fn key_has_the_spec_prefix_and_a_16_hex_hash() {
        let k = key(&json!({"cpuUsage": 90}), None);
        let prefix = "policy:v7:self_healing:scale_up:service:api:aegis-remediation:service:";
        assert!(k.starts_with(prefix), "{k}");
        let h = &k[prefix.len()..];
        assert_eq!(h.len(), 16);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn key_depends_on_metadata_and_ip_but_not_on_key_order() {
        let a = key(&json!({"a": 1, "b": {"y": 2, "x": 1}}), None);
        let b = key(&json!({"b": {"x": 1, "y": 2}, "a": 1}), None);
        assert_eq!(a, b);
        assert_ne!(a, key(&json!({"a": 2, "b": {"x": 1, "y": 2}}), None));
        assert_ne!(
            a,
            key(&json!({"a": 1, "b": {"x": 1, "y": 2}}), Some("10.0.0.1"))
        );
    }

    #[test]
    fn anonymous_requests_use_the_spec_placeholders() {
        let request = Request {
            policy_type: PolicyType::ApiAccess,
            action: "read",
            resource: "/api/x",
            context: Context::default(),
        };
        assert!(
            cache_key(1, &request).starts_with("policy:v1:api_access:read:/api/x:anonymous:none:")
        );
    }
}
