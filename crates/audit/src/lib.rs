//! The audit log: every read of mail and every identity event, on the record
//! before the response leaves, in an append-only log that cannot be quietly
//! edited.
//!
//! The log is a sequence of [`AuditEvent`]s, each stored as one line of
//! JSON in segment files under the log's directory. The lines are the leaves
//! of an RFC 6962 Merkle tree; the tree's root is signed at intervals as a
//! C2SP `tlog-checkpoint` signed note with a key used for nothing else.
//! [`verify`] recomputes the tree from the stored lines and compares it with
//! every checkpoint, so an edited, deleted, inserted or reordered record is
//! found. Appends are group-committed: [`AuditLog::append`] returns a
//! [`Receipt`] that resolves once the records are on disk.
//!
//! This crate never decides who may read the log, and knows nothing of HTTP,
//! JMAP or tokens: the fronts build events, the server owns the log.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::path::Path;
//! use stormproof_audit::{Actor, AuditEvent, AuditLog, CheckpointSigner, LogOptions, Outcome};
//! use stormproof_keys::MasterKey;
//! let master = MasterKey::load_or_create(Path::new("data/master.key"))?;
//! let dir = Path::new("data/audit");
//! let signer = CheckpointSigner::load_or_create(dir, &master, "mail.example/audit")?;
//! let log = AuditLog::open(dir, signer, LogOptions::default())?;
//! let actor = Actor { protocol: "jmap".into(), ..Actor::default() };
//! let event = AuditEvent::new(1_700_000_000_000, "Email/get", Outcome::Success, actor);
//! log.append(vec![event]).wait()?; // durable: now the content may leave
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod event;
mod follow;
mod layout;
mod log;
pub mod merkle;
mod note;
pub mod ocsf;
mod prune;
mod reader;
pub mod search;
pub mod sinks;
mod verify;

pub use event::{
    AccessKind, Actor, AuditEvent, Outcome, Target, format_time, format_time_ms, now_ms, parse_time,
};
pub use follow::Follower;
pub use log::{AuditLog, LogOptions, Receipt};
pub use note::{Checkpoint, CheckpointSigner, latest_checkpoint};
pub use prune::{PruneReport, prune};
pub use reader::{LogReader, StoredRecord};
pub use verify::{VerifyFailure, VerifyReport, verify};

/// An audit log operation failed.
#[derive(Debug, thiserror::Error)]
#[error("audit: {kind}")]
pub struct Error {
    /// What failed.
    pub kind: ErrorKind,
}

/// What failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading or writing the log's files.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Another process holds the log open for writing.
    #[error("the audit log is open in another process")]
    Locked,
    /// A stored record, checkpoint or key file is not what this crate writes.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// The audit key could not be created, sealed or opened.
    #[error("key: {0}")]
    Key(String),
    /// The log's writer has stopped; nothing more can be made durable.
    #[error("the audit log writer has stopped")]
    Closed,
    /// A proof was asked for sizes or indexes the log does not have.
    #[error("bad proof request: {0}")]
    BadRequest(String),
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        ErrorKind::Io(error).into()
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("size", &self.size())
            .finish()
    }
}
