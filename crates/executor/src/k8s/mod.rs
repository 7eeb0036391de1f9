//! Everything that talks to the Kubernetes API: the lazily built client and the actions.

pub mod actions;
pub mod client;

pub use client::{K8sError, KubeClient};
