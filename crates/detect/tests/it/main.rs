//! The detection engine's integration tests: real SQLite stores in
//! temporary directories, real rule files, no mocks.

// Tests fail by panicking; clippy's in-test exemptions do not reach the
// helper functions of an integration test crate. Scenario tables are
// tuples by design: one line per case.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::type_complexity
)]

mod benign_week;
mod compliance;
mod detectors;
mod engine;
mod m365;
mod prefilter;
mod sigma;
mod support;
