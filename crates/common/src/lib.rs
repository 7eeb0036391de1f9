//! Shared ground for the Aegis services: the wire contracts, HMAC action signing and name
//! checks (re-exported from the pure `aegis-contracts`), the three JSON error-body shapes,
//! typed configuration from the environment, tracing and Prometheus metrics, health helpers
//! and the HTTP server plumbing, and (feature `mimalloc`) the services' global allocator with
//! its housekeeping.
//!
//! This crate holds no service logic: nothing here talks to Kubernetes, evaluates policies or
//! scores metrics. It must stay cheap to depend on, and every item in it is used by at least two
//! services (or by a service and its tests).

#[cfg(feature = "mimalloc")]
pub mod alloc;
pub mod api_reference;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod redis_conn;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod time;

pub use aegis_contracts as contracts;
pub use aegis_contracts::{names, signing, webhooks};
