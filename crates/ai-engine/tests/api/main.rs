#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! ai-engine integration tests: the real router on port 0 against a fresh PostgreSQL database.
//! The end-to-end scenarios that speak HTTP live in `scenarios`.

mod feed;
mod health;
mod helpers;
mod history_writer;
mod openapi;
mod scenarios;
mod series;
mod shutdown;
mod training;
mod watcher;
