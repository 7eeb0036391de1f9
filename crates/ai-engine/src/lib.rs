//! The Aegis AI engine (port 8000): metric and log features, a native isolation forest per
//! series (workload × metric types) for anomalies, with the series' temporal context and
//! shared out among the replicas (`routing`), a native random forest (with the heuristic as a fallback)
//! for failure patterns, prediction history in `aegis_ai`, and an optional Prometheus feed that
//! reports anomalies to the backend as remediation signals, and an optional Kubernetes
//! watcher (`watcher`) that names the cause of crash loops, OOM kills, pull failures, failed
//! rollouts, failing readiness and unschedulable pods and reports them the same way.
//!
//! It only analyses and reports: it never calls the executor, and it only reads Kubernetes
//! (its one write is the Lease of its leader election). `detector` holds the pure numeric code
//! and knows nothing about HTTP.

pub mod answer;
pub mod auth;
pub mod config;
pub mod detector;
pub mod feed;
pub mod history;
pub mod metrics;
pub mod models;
pub mod request;
pub mod routes;
pub mod routing;
pub mod startup;
pub mod state;
pub mod watcher;
