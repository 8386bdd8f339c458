//! JMAP against a real SQLite store in a temp dir: one test binary, with a
//! module per theme.

// Tests fail by panicking; clippy's in-test exemptions do not reach the
// helper functions of an integration test crate.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod audit;
mod blobs;
mod emails;
mod identities;
mod isolation;
mod kit;
mod mailboxes;
mod references;
mod requests;
mod submissions;
mod vacation;
