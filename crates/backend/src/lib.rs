//! The Aegis backend: the control-plane API on port 3000 under `/api/v1` — authentication,
//! users and RBAC, the policy engine, alerts with Socket.IO push, settings, logs, the AI-engine
//! proxy and the remediation loop that turns signals into signed executor requests; and the
//! operator console under `/console`, HTML over that same API.
//!
//! It owns the `aegis_backend` database (migrations in `migrations/`) and uses Redis only for
//! fail-open concerns (rate limits, caches, lockout counters). It never calls Kubernetes itself:
//! every cluster change goes through the executor.

pub mod auth;
pub mod clients;
pub mod config;
pub mod console;
pub mod db;
pub mod error;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod realtime;
pub mod remediation;
pub mod routes;
pub mod startup;
pub mod state;
