//! A sans-IO SMTP server session (RFC 5321) for Stormproof's inbound (port
//! 25) and submission (port 587) listeners.
//!
//! This crate owns the SMTP dialogue: line framing, command order, reply
//! codes, DATA transparency, and SASL message parsing. Command lines are
//! parsed by `smtp-proto`; the state machine is this crate's own.
//!
//! It must never do IO, read a clock, hold a TLS stream, or decide policy.
//! Whether a sender, recipient, credential or message is acceptable is asked
//! of the embedder through an [`Event`] that waits for a [`Decision`]. A
//! client's mistakes become SMTP replies. Only the embedder's mistakes
//! become [`Error`]s.
//!
//! All input is bounded:
//! - [`Session::feed`] takes at most [`MAX_INPUT_BUFFER`] bytes ahead of
//!   processing.
//! - Command lines are cut at [`MAX_COMMAND_LINE`], or at [`MAX_AUTH_LINE`]
//!   for SASL.
//! - Message lines are cut at [`MAX_DATA_LINE`].
//! - A message body is never held beyond [`Config::max_message_size`].
//!
//! A message ends only at `CR LF . CR LF`. A bare CR or LF anywhere in it
//! gets the message refused, so SMTP smuggling cannot end a message early.
//!
//! ```
//! use stormproof_smtp_session::{Config, Decision, Event, Mode, Session};
//!
//! let mut session = Session::new(Config::new("mx.example.org", Mode::Inbound)).unwrap();
//! assert_eq!(session.greeting(), b"220 mx.example.org ESMTP Stormproof\r\n");
//!
//! let mut input: &[u8] = b"HELO client.example\r\nMAIL FROM:<a@example.com>\r\n\
//!     RCPT TO:<b@example.org>\r\nDATA\r\nHi\r\n.\r\nQUIT\r\n";
//! let mut replies = Vec::new();
//! loop {
//!     while let Some(event) = session.next_event() {
//!         match event {
//!             Event::Reply(bytes) => replies.push(String::from_utf8(bytes).unwrap()),
//!             Event::Message { data, .. } => {
//!                 assert_eq!(data, b"Hi\r\n");
//!                 // Make the message durable first, then accept it.
//!                 session.respond(Decision::Accept).unwrap();
//!             }
//!             Event::Close => break,
//!             other if other.needs_decision() => session.respond(Decision::Accept).unwrap(),
//!             _ => {}
//!         }
//!     }
//!     if input.is_empty() || session.is_closed() {
//!         break;
//!     }
//!     // Bytes not taken yet are offered again after the events are drained.
//!     let taken = session.feed(input);
//!     input = &input[taken..];
//! }
//! assert_eq!(replies[3], "354 End data with <CR><LF>.<CR><LF>\r\n");
//! assert_eq!(replies[4], "250 2.0.0 Message accepted for delivery\r\n");
//! ```
#![deny(missing_docs)]

mod data;
mod error;
mod reply;
mod sasl;
mod session;

pub use error::{Error, ErrorKind};
pub use sasl::{BearerMechanism, Credentials};
pub use session::Session;

/// The longest command line accepted, CR LF included (RFC 5321 4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;

/// The longest `AUTH` command or SASL response line accepted, CR LF
/// included. OAuth access tokens are long: a JWT with a few claims,
/// base64-encoded once more for SASL, easily passes 2 KiB.
pub const MAX_AUTH_LINE: usize = 12 * 1024;

/// The longest message line accepted, CR LF included (RFC 5321 4.5.3.1.6:
/// 998 characters plus CR LF). A longer line gets the message refused at its
/// end, with `554 5.6.0`. The limit is not raised for broken generators,
/// because mail stored here must be safe to relay.
pub const MAX_DATA_LINE: usize = 1000;

/// The most input [`Session::feed`] holds ahead of processing. It exceeds
/// [`MAX_AUTH_LINE`], so a legal line always fits.
pub const MAX_INPUT_BUFFER: usize = 16 * 1024;

/// Syntax and sequence errors, over-long lines and failed
/// authentications allowed per connection. The session answers the last one,
/// then sends `421 4.7.0` and closes.
pub const MAX_ERRORS: usize = 10;

/// The default for [`Config::max_recipients`]. RFC 5321 4.5.3.1.8 requires
/// at least 100.
pub const DEFAULT_MAX_RECIPIENTS: usize = 100;

/// The default for [`Config::max_message_size`]: 50 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 50 * 1024 * 1024;

/// The longest reply line, CR LF included (RFC 5321 4.5.3.1.5).
pub const MAX_REPLY_LINE: usize = 512;

/// Which listener a session serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Port 25: mail from other servers to local recipients. No `AUTH`.
    Inbound,
    /// Port 587 (RFC 6409): mail from users. `AUTH` is required before `MAIL`.
    Submission,
}

/// How a session behaves. Build it with [`Config::new`] and adjust fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The server's name in the greeting and the replies: letters, digits,
    /// `.` and `-` only.
    pub hostname: String,
    /// Inbound or submission.
    pub mode: Mode,
    /// The largest message accepted, in bytes after dot-unstuffing;
    /// advertised as `SIZE`.
    pub max_message_size: usize,
    /// The most recipients per transaction. Further `RCPT`s get `452 4.5.3`.
    pub max_recipients: usize,
    /// Whether the embedder can upgrade this connection (offer `STARTTLS`).
    pub tls_available: bool,
    /// Whether the connection is already protected by TLS (implicit TLS, or
    /// set by [`Session::tls_started`]).
    pub tls_active: bool,
    /// Whether `AUTH` needs TLS (RFC 8314 says it should). When TLS is not
    /// active, `AUTH` is not advertised and gets `538 5.7.11`.
    pub require_tls_for_auth: bool,
}

impl Config {
    /// A configuration with the default limits, no TLS, and TLS required for
    /// `AUTH`.
    pub fn new(hostname: impl Into<String>, mode: Mode) -> Self {
        Self {
            hostname: hostname.into(),
            mode,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_recipients: DEFAULT_MAX_RECIPIENTS,
            tls_available: false,
            tls_active: false,
            require_tls_for_auth: true,
        }
    }
}

/// Something the embedder must act on, in the order the session produced it.
///
/// `MailFrom`, `Recipient`, `Authenticate` and `Message` wait for
/// [`Session::respond`]. Until then the session processes no further input
/// (see [`Event::needs_decision`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Bytes to write to the client: one complete reply, possibly multi-line.
    Reply(Vec<u8>),
    /// `MAIL FROM` passed the session's checks; may the transaction start?
    /// [`Decision::Accept`] answers `250 2.1.0`.
    MailFrom {
        /// The sender, `""` for the null reverse-path of bounces.
        reverse_path: String,
        /// The `SIZE` the client declared, if any. It is already at most
        /// [`Config::max_message_size`].
        size: Option<usize>,
        /// Whether `BODY=8BITMIME` was given.
        body_8bit: bool,
        /// Whether `SMTPUTF8` was given.
        smtputf8: bool,
    },
    /// `RCPT TO` passed the session's checks; is this recipient acceptable?
    /// Inbound usually rejects unknown users with `550 5.1.1`.
    /// [`Decision::Accept`] answers `250 2.1.5`. The session accepts
    /// `Postmaster` without a domain (RFC 5321 4.5.1) and reports it as
    /// `postmaster`.
    Recipient {
        /// The recipient's address.
        forward_path: String,
    },
    /// A well-formed SASL exchange finished (submission only). Verify the
    /// credentials, then answer with [`Decision::Accept`] (`235 2.7.0`) or a
    /// rejection such as [`Decision::auth_failed`].
    Authenticate(Credentials),
    /// The client asked for TLS and the `220` reply before this event must be
    /// written. Then run the TLS handshake and call [`Session::tls_started`].
    /// Until then, further input is discarded, because it arrived in
    /// plaintext (CVE-2011-0411).
    StartTls,
    /// A complete message. Make it durable first, then answer with
    /// [`Decision::Accept`] (`250 2.0.0`) or a rejection. Either way the
    /// transaction is over.
    Message {
        /// The sender from `MAIL FROM`.
        reverse_path: String,
        /// The accepted recipients, in order.
        recipients: Vec<String>,
        /// Whether `BODY=8BITMIME` was given.
        body_8bit: bool,
        /// Whether `SMTPUTF8` was given.
        smtputf8: bool,
        /// The message, dot-unstuffed, with CR LF line endings, and without
        /// the terminating `.` CR LF.
        data: Vec<u8>,
    },
    /// Close the connection once the replies before this event are written.
    /// Sent after `QUIT` (`221`) and after too many errors (`421`).
    Close,
}

impl Event {
    /// Whether the session waits for [`Session::respond`] after this event.
    pub fn needs_decision(&self) -> bool {
        matches!(
            self,
            Event::MailFrom { .. }
                | Event::Recipient { .. }
                | Event::Authenticate(_)
                | Event::Message { .. }
        )
    }
}

/// The embedder's answer to an event that [needs a
/// decision](Event::needs_decision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead. The session sends the positive reply that fits the event.
    Accept,
    /// Refuse with this reply.
    ///
    /// When an `OAUTHBEARER` or `XOAUTH2` token is refused with a 5xx code,
    /// the session first sends the RFC 7628 error challenge
    /// (`334 <base64 {"status":"invalid_token"}>`). It sends this reply once
    /// the client has acknowledged. A 4xx code is sent at once: a temporary
    /// failure should not make the client throw its token away.
    Reject {
        /// A 4xx or 5xx reply code.
        code: u16,
        /// The enhanced status code (RFC 3463), whose class must match
        /// `code`, like `5.1.1`.
        enhanced: String,
        /// Printable ASCII on one line.
        text: String,
    },
}

impl Decision {
    /// A rejection with the given reply.
    pub fn reject(code: u16, enhanced: &str, text: &str) -> Self {
        Decision::Reject {
            code,
            enhanced: enhanced.to_owned(),
            text: text.to_owned(),
        }
    }

    /// `535 5.7.8 Authentication credentials invalid` (RFC 4954).
    pub fn auth_failed() -> Self {
        Self::reject(535, "5.7.8", "Authentication credentials invalid")
    }

    /// `451 4.3.0 Temporary failure, try again later`. Use it, for example,
    /// when the message could not be made durable.
    pub fn try_later() -> Self {
        Self::reject(451, "4.3.0", "Temporary failure, try again later")
    }
}
