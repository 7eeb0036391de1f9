//! Kubernetes object names (DNS-1123), checked the same way by every service that takes one
//! from outside: the backend's signals and incidents, and the executor's actions.
//!
//! [`Namespace`] and [`ResourceName`] hold names that passed the check, so code that takes one
//! never checks again. On the wire they are plain strings, and deserialising refuses a string
//! that does not pass.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

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

/// Why a name was refused. The message is the rule, written to follow the name of the field
/// that broke it (`actionParams.namespace must be a valid DNS-1123 label`); it never repeats
/// the name itself, which came from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    /// Not a DNS-1123 label.
    #[error("must be a valid DNS-1123 label")]
    NotALabel,
    /// Not a DNS-1123 subdomain.
    #[error("must be a valid DNS-1123 subdomain")]
    NotASubdomain,
}

/// A checked name type: a `String` that passed `$check`, refused with `$refusal` otherwise.
macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $check:path, $refusal:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `name`.
            pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
                let name = name.into();
                if $check(&name) {
                    Ok(Self(name))
                } else {
                    Err($refusal)
                }
            }

            /// The name.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;

            fn try_from(name: String) -> Result<Self, Self::Error> {
                Self::new(name)
            }
        }

        impl FromStr for $name {
            type Err = InvalidName;

            fn from_str(name: &str) -> Result<Self, Self::Err> {
                Self::new(name)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        /// The plain string (what `#[serde(into = "String")]` writes, without its clone).
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

checked_name!(
    /// A namespace: a DNS-1123 label ([`is_dns_label`]).
    Namespace,
    is_dns_label,
    InvalidName::NotALabel
);

checked_name!(
    /// The name of a namespaced object such as a deployment or a pod: a DNS-1123 subdomain
    /// ([`is_dns_subdomain`]).
    ResourceName,
    is_dns_subdomain,
    InvalidName::NotASubdomain
);

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

    #[test]
    fn a_namespace_is_a_dns_label() {
        for ok in ["production", "a-1", "0", &"a".repeat(63)] {
            assert_eq!(Namespace::new(ok).map(String::from).as_deref(), Ok(ok));
        }
        for bad in [
            "",
            "Prod",
            "-a",
            "a-",
            "a.b",
            "a_b",
            "ünicode",
            &"a".repeat(64),
        ] {
            assert_eq!(Namespace::new(bad), Err(InvalidName::NotALabel), "{bad:?}");
        }
    }

    #[test]
    fn a_resource_name_is_a_dns_subdomain() {
        for ok in [
            "api",
            "web-7d9f.x",
            "api.v1",
            &format!("{}.b", "a".repeat(63)),
        ] {
            assert_eq!(ResourceName::new(ok).map(String::from).as_deref(), Ok(ok));
        }
        let too_long = format!("{}.b", "a".repeat(252));
        for bad in [
            "",
            "api..v1",
            "api_v1",
            ".api",
            "API",
            "a/b",
            too_long.as_str(),
        ] {
            assert_eq!(
                ResourceName::new(bad),
                Err(InvalidName::NotASubdomain),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_error_message_is_the_rule_for_a_field_name_to_precede() {
        let Err(e) = Namespace::new("Shop!") else {
            panic!("Shop! is not a label");
        };
        assert_eq!(
            format!("target.namespace {e}"),
            "target.namespace must be a valid DNS-1123 label"
        );
        assert_eq!(
            ResourceName::new("p\u{e9}d").map_err(|e| e.to_string()),
            Err("must be a valid DNS-1123 subdomain".to_owned())
        );
    }

    #[test]
    fn names_are_plain_strings_on_the_wire_and_checked_when_read() {
        let ns: Namespace = "production".parse().unwrap();
        let pod = ResourceName::new("api-7d9f-x2").unwrap();
        let wire = serde_json::to_string(&(&ns, &pod)).unwrap();
        assert_eq!(wire, r#"["production","api-7d9f-x2"]"#);
        let back: (Namespace, ResourceName) = serde_json::from_str(&wire).unwrap();
        assert_eq!(back, (ns.clone(), pod.clone()));

        let refused = serde_json::from_str::<Namespace>(r#""kube_system""#).unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("must be a valid DNS-1123 label"),
            "{refused}"
        );
        assert!(serde_json::from_str::<ResourceName>(r#""a..b""#).is_err());
        assert!(serde_json::from_str::<ResourceName>("7").is_err());
    }

    #[test]
    fn a_name_reads_as_the_string_it_holds() {
        let ns = Namespace::new("shop").unwrap();
        assert_eq!(ns.to_string(), "shop");
        assert_eq!(ns.as_str(), "shop");
        assert_eq!(ns.as_ref(), "shop");
        assert_eq!(ns, "shop");
        assert_eq!("web".parse::<ResourceName>(), ResourceName::new("web"));
        assert_eq!(
            "Web".parse::<ResourceName>(),
            Err(InvalidName::NotASubdomain)
        );
    }
}
