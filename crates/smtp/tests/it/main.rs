//! The SMTP front against real sockets, a real SQLite store, and a DNS
//! stub on loopback: nothing here reaches the network.

// Tests fail by panicking; clippy's in-test exemptions do not reach the
// helper functions of an integration test crate.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod authentication;
mod dns;
mod world;
