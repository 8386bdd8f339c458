//! The embedder's mistakes. A client's mistakes are never errors here: they
//! become SMTP replies.

/// Why the session refused a call from its embedder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SMTP session: {kind}")]
pub struct Error {
    /// What was wrong.
    pub kind: ErrorKind,
}

/// What was wrong with a call into the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configured hostname is empty, too long, or not made of letters,
    /// digits, `.` and `-`. It is echoed in every greeting, so anything else
    /// could inject reply lines.
    #[error("invalid hostname")]
    InvalidHostname,
    /// A configured limit is zero.
    #[error("{0} must be at least 1")]
    InvalidLimit(&'static str),
    /// [`crate::Session::respond`] was called while no event waits for a
    /// decision.
    #[error("no event is waiting for a decision")]
    NoPendingDecision,
    /// [`crate::Session::tls_started`] was called without a preceding
    /// [`crate::Event::StartTls`].
    #[error("STARTTLS was not requested")]
    NotAwaitingTls,
    /// A [`crate::Decision::Reject`] would produce an invalid or unsafe reply.
    #[error("invalid reply: {0}")]
    InvalidReply(&'static str),
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}
