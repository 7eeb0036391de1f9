#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Backend integration tests: the real router on port 0, against the machine's PostgreSQL
//! (a fresh database per test) and Redis (a fresh key prefix per test).

mod ai_proxy;
mod alerts;
mod approvals;
mod auth;
mod auth_support;
mod console;
mod contracts;
mod dashboard_client;
mod executor_route;
mod health;
mod helpers;
mod logs;
mod notifications;
mod notify_support;
mod openapi;
mod pg_restart;
mod policy;
mod policy_support;
mod remediation;
mod remediation_loop;
mod settings;
mod shutdown;
mod socket;
mod sql_meta;
mod startup;
mod users;
