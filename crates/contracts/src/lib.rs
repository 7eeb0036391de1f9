//! What the Aegis services say to each other, and nothing that does I/O: the wire types that
//! cross service boundaries (docs/contracts.md lists who sends each), the HMAC signing of
//! executor requests, and the DNS-1123 checks of Kubernetes names taken from outside, with the
//! name types that hold a checked name (`names::Namespace`, `names::ResourceName`).
//!
//! Every service reaches these through `aegis_common` (`aegis_common::contracts`,
//! `aegis_common::signing`, `aegis_common::names`); the pure domain crates depend on this
//! crate alone, so they stay free of tokio, sqlx and axum.
//!
//! ```
//! use aegis_contracts::{ActionType, names};
//!
//! assert_eq!(ActionType::parse("scale_deployment"), Some(ActionType::ScaleDeployment));
//! assert!(names::is_dns_label("production"));
//! assert!(!names::is_dns_label("Production"));
//! assert!(names::Namespace::new("Production").is_err());
//! assert_eq!(names::ResourceName::new("api.v1").unwrap().as_str(), "api.v1");
//! ```

pub mod names;
pub mod signing;
pub mod webhooks;
mod wire;

pub use wire::*;
