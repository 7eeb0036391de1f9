//! Test support for the Aegis services: a fresh PostgreSQL database per test, an isolated Redis
//! key prefix per test, a protocol-level Loki fake, a TCP fault proxy for outage tests, and service
//! binaries as child processes.
//!
//! Only tests and local tooling depend on this crate. It never stops or reconfigures the
//! machine's own PostgreSQL or Redis: outages are simulated with [`FaultProxy`] in front of them.

pub mod db;
pub mod fault_proxy;
pub mod loki;
pub mod openapi;
pub mod private_pg;
pub mod process;
pub mod routes;

pub use db::{TestDatabase, fresh_database, redis_prefix, redis_url};
pub use fault_proxy::FaultProxy;
pub use loki::{LokiEntry, LokiFake};
pub use private_pg::PrivatePostgres;
pub use process::{ServiceProcess, spawn_service};
pub use routes::served_paths;
