#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Executor integration tests: the real router on port 0 against the machine's PostgreSQL
//! (a fresh database per test) and a seeded kube-sim per test.

mod audit;
mod deployments;
mod execute;
mod health;
mod helpers;
mod loki;
mod openapi;
mod outside_input;
mod safety;
mod shutdown;
mod signatures;
mod startup;
