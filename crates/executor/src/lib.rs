//! The Aegis executor (port 4000): the only component allowed to call the Kubernetes API. It
//! runs a closed set of remediation actions (`restart_pod`, `scale_deployment`,
//! `rollback_deployment`) after checking the namespace allow-list, an HMAC signature (v1, or v2
//! with timestamp and nonce), the caller's advisory policy decision, rate limits, a cooldown and
//! per-resource concurrency, and it records every request that got that far in a tamper-evident
//! audit trail (a hash chain guarded by database triggers) that is also shipped to Loki through
//! an outbox.
//!
//! It must not decide *whether* to remediate (that is the backend's closed loop), must never act
//! outside its allowed namespaces or on `kube-system`, `kube-public`, `kube-node-lease`, and must
//! never return or log a signature or secret. It owns the `aegis_executor` database
//! (migrations in `migrations/`).

pub mod audit;
pub mod config;
pub mod error;
pub mod k8s;
pub mod metrics;
pub mod request;
pub mod routes;
pub mod safety;
pub mod startup;
pub mod state;
