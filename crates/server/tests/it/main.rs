//! Stormproof's integration tests: the real binary, real SQLite files in
//! temporary directories, real HTTP on loopback, real client libraries.

// Tests fail by panicking; clippy's in-test exemptions do not reach the
// helper functions of an integration test crate.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod audit;
mod contract;
mod detection;
mod http;
mod jmap;
mod oidc;
mod smtp;
mod testkit;
#[path = "../../src/webhook_receiver.rs"]
mod webhook_receiver;
