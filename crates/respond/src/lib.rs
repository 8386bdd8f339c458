//! Response: the actions that follow an alert or an operator's decision.
//! Revoke sessions by user, client, session or source address; report
//! exactly what a session, token, client, address or user read, from the
//! audit log; and deliver a plain notice of what happened, what was read
//! and what was done into the mailboxes of the people affected and the
//! tenant's security contacts.
//!
//! This crate decides nothing about whether something is an attack: the
//! detection engine raises alerts, the operator or the server's automatic
//! response calls these functions. It reads the audit log, never writes it;
//! its revocations go through the issuer, which records them.
//!
//! ```no_run
//! # fn run(reader: &stormproof_audit::LogReader, store: &dyn stormproof_store::Store) -> Result<(), stormproof_respond::Error> {
//! use stormproof_respond::{ExposureQuery, exposure};
//! let query = ExposureQuery { session: Some("s-123".into()), ..ExposureQuery::default() };
//! let report = exposure(reader, store, &query)?;
//! for id in &report.message_ids {
//!     println!("read: {id}");
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod alerting;
mod exposure;
mod notify;
mod revoke;

pub use exposure::{ExposedItem, ExposureQuery, ExposureReport, exposure};
pub use notify::{Notice, deliver_notice, exposure_notices};
pub use revoke::{RevocationTarget, RevokeReport, revoke};

/// A response action failed.
#[derive(Debug, thiserror::Error)]
#[error("respond: {kind}")]
pub struct Error {
    /// What failed.
    pub kind: ErrorKind,
}

/// What failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading the audit log.
    #[error(transparent)]
    Audit(#[from] stormproof_audit::Error),
    /// The store.
    #[error(transparent)]
    Store(#[from] stormproof_store::Error),
    /// The issuer refused a revocation.
    #[error(transparent)]
    Identity(#[from] stormproof_identity::Error),
    /// Delivering a notice.
    #[error(transparent)]
    Mail(#[from] stormproof_mail::Error),
    /// The request names nothing, or names something that does not exist.
    #[error("{0}")]
    Invalid(String),
}

impl<E: Into<ErrorKind>> From<E> for Error {
    fn from(error: E) -> Self {
        Self { kind: error.into() }
    }
}
