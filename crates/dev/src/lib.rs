//! The local launcher behind `scripts/demo.sh`: checks PostgreSQL and Redis, starts kube-sim
//! and the three services as separate processes on loopback, waits until each is healthy, and
//! tears everything down on Ctrl-C. The demo's scenes are in [`demo`], and [`notices`] is the
//! webhook receiver its notifications go to. The end-to-end tests reuse [`Stack`] to run the
//! real binaries.
//!
//! It is a development tool: secrets are random per run and nothing here is fit for production.

pub mod client;
pub mod demo;
pub mod notices;
pub mod preflight;
pub mod stack;

pub use stack::{Stack, StackOptions};
