//! The SMTP session driven as an embedder would drive it: bytes in, events
//! and replies out, decisions made by a scripted policy.

// Tests fail by panicking; clippy's in-test exemptions do not reach the
// helper functions of an integration test crate.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod auth;
mod chunking;
mod limits;
mod pipelining;
mod robustness;
mod smuggling;
mod testkit;
mod tls;
mod transaction;
