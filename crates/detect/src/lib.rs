//! The detection engine: reads audit events one at a time and raises
//! deduplicated [`Alert`]s, from built-in detectors (forged tokens,
//! first-seen applications, token replay, bulk access, non-owner access,
//! persistence) and from the operator's Sigma rules.
//!
//! It owns what the detectors learn (kept in the store, so a restart does
//! not start learning over) and the alerts (stored, one per deduplication
//! key and window). It must never act: an alert may carry a [`Response`]
//! hint, and the server decides whether to carry it out. It never reads the
//! wall clock either: time is the events' own, so a replay of last month's
//! log raises exactly the alerts it raised live.
//!
//! ```
//! use std::sync::Arc;
//! use stormproof_audit::{Actor, AuditEvent, Outcome};
//! use stormproof_detect::{DetectConfig, Engine};
//! use stormproof_store::SqliteStore;
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
//! let mut engine = Engine::new(&DetectConfig::default(), store).unwrap();
//! let actor = Actor { ip: Some("198.51.100.7".into()), protocol: "http".into(), ..Actor::default() };
//! let mut event = AuditEvent::new(1_700_000_000_000, "token_rejected", Outcome::Failure, actor);
//! event.tenant = Some("acme".into());
//! event.reason = Some("never_issued".into());
//! event.detail = serde_json::json!({ "kid": "k1", "forgery": true });
//! let alerts = engine.process(&event);
//! assert_eq!(alerts[0].detector, "token_forgery");
//! assert_eq!(alerts[0].severity, stormproof_detect::Severity::Critical);
//! ```
#![deny(missing_docs)]

mod alert;
mod config;
mod detectors;
mod engine;
mod input;
pub mod m365;
mod net;
mod prefilter;
pub mod sigma;
mod view;

pub use alert::{Alert, Response, Severity};
pub use config::DetectConfig;
pub use detectors::{
    BulkAccessConfig, DETECTORS, FirstSeenAppConfig, NonOwnerAccessConfig, PersistenceConfig,
    TokenForgeryConfig, TokenReplayConfig,
};
pub use engine::Engine;
pub use input::{Format, StreamStats, detect_file, detect_stream, open_events, read_events};
pub use sigma::SigmaConfig;

/// A detection operation failed.
#[derive(Debug, thiserror::Error)]
#[error("detect: {kind}")]
pub struct Error {
    /// What failed.
    pub kind: ErrorKind,
}

/// What failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration cannot be used: a bad network, a zero threshold.
    #[error("config: {0}")]
    Config(String),
    /// A Sigma rule file could not be read or compiled.
    #[error("sigma rules {path}: {message}")]
    Rules {
        /// The file or directory.
        path: String,
        /// Why.
        message: String,
    },
    /// An input file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// An input record could not be understood.
    #[error("{path} record {record}: {message}")]
    Input {
        /// The file.
        path: String,
        /// The record's position: line for JSON lines, index for arrays (from 1).
        record: usize,
        /// Why.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] stormproof_store::Error),
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}

impl From<stormproof_store::Error> for Error {
    fn from(error: stormproof_store::Error) -> Self {
        ErrorKind::Store(error).into()
    }
}

/// Result of a detection call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
