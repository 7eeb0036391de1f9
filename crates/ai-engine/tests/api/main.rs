#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! ai-engine integration tests: the real router on port 0 against a fresh PostgreSQL database.

mod health;
mod helpers;
