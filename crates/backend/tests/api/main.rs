#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Backend integration tests: the real router on port 0, against the machine's PostgreSQL
//! (a fresh database per test) and Redis (a fresh key prefix per test).

mod auth;
mod auth_support;
mod health;
mod helpers;
mod startup;
mod users;
