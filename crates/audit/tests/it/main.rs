//! The audit log end to end, on real files in temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod log;
mod merkle;
mod prune;
mod verify;
