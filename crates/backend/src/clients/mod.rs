//! Outgoing HTTP clients for the backend's peers. The AI proxy routes and the remediation loop
//! share them.

pub mod ai_engine;
pub mod executor;
