//! Mail delivery into the store: a raw RFC 5322 message is parsed with
//! mail-parser, its blob made durable on disk, and its metadata, thread
//! links and search text committed in one store transaction.
//!
//! Every path that adds a message (SMTP delivery, submission to local
//! users, JMAP import) goes through [`Delivery::deliver`], so a message is
//! acknowledged only after both its bytes and its record are on stable
//! storage. This crate touches no sockets and checks no credentials: callers
//! pass an account they have already authorised.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use stormproof_mail::{Delivery, Target};
//! use stormproof_store::{SqliteStore, Store};
//! use stormproof_types::TenantName;
//! let dir = std::path::Path::new("/var/lib/stormproof");
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir)?);
//! let delivery = Delivery::open(store, dir)?;
//! let acme = TenantName::parse("acme")?;
//! delivery.deliver(&acme, "account-id", b"Subject: hi\r\n\r\nhello\r\n", Target::Role("inbox"), &[], 0)?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

use std::path::Path;
use std::sync::Arc;

use mail_parser::{Address, MessageParser};
use stormproof_store::{BlobStore, EmailAddress, NewEmail, Store, StoredEmail};
use stormproof_types::{TenantName, UnixTime};

/// The largest message accepted, in bytes; SMTP advertises it as `SIZE`.
pub const MAX_MESSAGE_SIZE: usize = 50 * 1024 * 1024;
/// How much body text is indexed for search, in bytes.
pub const MAX_INDEXED_TEXT: usize = 1024 * 1024;
/// Characters in a message preview (RFC 8621 allows up to 256).
pub const PREVIEW_CHARS: usize = 256;

/// A delivery failed.
#[derive(Debug, thiserror::Error)]
#[error("delivery: {kind}")]
pub struct Error {
    /// What failed.
    pub kind: ErrorKind,
}

/// What failed in a delivery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The bytes are not a message: empty, or no header section at all.
    #[error("not an RFC 5322 message")]
    NotAMessage,
    /// Larger than [`MAX_MESSAGE_SIZE`].
    #[error("message larger than {MAX_MESSAGE_SIZE} bytes")]
    TooLarge,
    /// The account has no mailbox with that role or id.
    #[error("no such mailbox: {0}")]
    NoMailbox(String),
    /// The store refused or failed (quota, IO).
    #[error(transparent)]
    Store(#[from] stormproof_store::Error),
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}

impl From<stormproof_store::Error> for Error {
    fn from(e: stormproof_store::Error) -> Self {
        Self {
            kind: ErrorKind::Store(e),
        }
    }
}

/// Where a delivered message is filed.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The account's mailbox with this role (`inbox`, `sent`, ...).
    Role(&'a str),
    /// These mailbox ids.
    Mailboxes(&'a [String]),
}

/// Delivers messages into accounts.
#[derive(Debug, Clone)]
pub struct Delivery {
    store: Arc<dyn Store>,
    blobs: BlobStore,
}

impl Delivery {
    /// Opens delivery over `store`, with blobs under `data_dir`.
    pub fn open(store: Arc<dyn Store>, data_dir: &Path) -> Result<Self, Error> {
        Ok(Self {
            store,
            blobs: BlobStore::open(data_dir)?,
        })
    }

    /// The blob store, for reading raw messages back.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Parses `raw`, writes its blob durably, and stores it in the account.
    /// When this returns `Ok`, the message survives a crash.
    #[tracing::instrument(skip_all, fields(%tenant, account_id, size = raw.len()))]
    pub fn deliver(
        &self,
        tenant: &TenantName,
        account_id: &str,
        raw: &[u8],
        target: Target<'_>,
        keywords: &[String],
        received_at: UnixTime,
    ) -> Result<StoredEmail, Error> {
        if raw.len() > MAX_MESSAGE_SIZE {
            return Err(ErrorKind::TooLarge.into());
        }
        let mailbox_ids = match target {
            Target::Mailboxes(ids) => ids.to_vec(),
            Target::Role(role) => vec![
                self.store
                    .mailbox_id_by_role(tenant, account_id, role)?
                    .ok_or_else(|| ErrorKind::NoMailbox(role.to_owned()))?,
            ],
        };
        let mut email = parse(raw, received_at)?;
        // The blob first: a crash between the two leaves an unreferenced
        // blob, never a record without its bytes.
        email.blob_id = self.blobs.put(raw)?;
        email.mailbox_ids = mailbox_ids;
        email.keywords = keywords.to_vec();
        let stored = self.store.insert_email(tenant, account_id, &email)?;
        tracing::info!(message = "message stored", email_id = %stored.email_id);
        Ok(stored)
    }
}

/// Removes reply and forward prefixes and folds case, so "Re: Fwd: Plans"
/// and "plans" thread together.
pub fn base_subject(subject: &str) -> String {
    let mut rest = subject.trim();
    loop {
        let lower = rest.to_ascii_lowercase();
        let stripped = ["re:", "fwd:", "fw:", "aw:", "sv:", "vs:"]
            .iter()
            .find(|p| lower.starts_with(*p))
            .map(|p| rest[p.len()..].trim_start());
        match stripped {
            Some(next) => rest = next,
            None => break,
        }
    }
    rest.to_lowercase()
}

fn addresses(address: Option<&Address<'_>>) -> Vec<EmailAddress> {
    address
        .map(|a| {
            a.iter()
                .filter_map(|addr| {
                    addr.address().map(|email| EmailAddress {
                        name: addr.name().map(str::to_owned),
                        email: email.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// Parses a raw message into the record the store keeps. The blob id,
/// mailboxes and keywords are left empty for the caller to fill.
pub fn parse(raw: &[u8], received_at: UnixTime) -> Result<NewEmail, Error> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ErrorKind::NotAMessage)?;
    if message.headers().is_empty() {
        return Err(ErrorKind::NotAMessage.into());
    }
    let list = |value: &mail_parser::HeaderValue<'_>| -> Vec<String> {
        value
            .as_text_list()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default()
    };
    let subject = message.subject().map(str::to_owned);
    let (from, to, cc) = (
        addresses(message.from()),
        addresses(message.to()),
        addresses(message.cc()),
    );
    let mut body = String::new();
    for i in 0..message.text_body_count() {
        if let Some(text) = message.body_text(i) {
            body.push_str(&text);
            body.push('\n');
        }
        if body.len() > MAX_INDEXED_TEXT {
            break;
        }
    }
    truncate_at_char(&mut body, MAX_INDEXED_TEXT);
    let mut search_text = subject.clone().unwrap_or_default();
    for address in from.iter().chain(&to).chain(&cc) {
        search_text.push('\n');
        if let Some(name) = &address.name {
            search_text.push_str(name);
            search_text.push(' ');
        }
        search_text.push_str(&address.email);
    }
    search_text.push('\n');
    search_text.push_str(&body);
    let preview: String = body
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(PREVIEW_CHARS)
        .collect();
    Ok(NewEmail {
        blob_id: String::new(),
        size: raw.len() as i64,
        received_at,
        sent_at: message.date().map(|d| d.to_timestamp()),
        message_id: message.message_id().map(str::to_owned),
        in_reply_to: list(message.in_reply_to()),
        references: list(message.references()),
        base_subject: base_subject(subject.as_deref().unwrap_or_default()),
        subject,
        from,
        to,
        cc,
        preview,
        has_attachment: message.attachment_count() > 0,
        search_text,
        mailbox_ids: Vec::new(),
        keywords: Vec::new(),
    })
}

/// An RFC 5322 date-time in UTC, e.g. `Sun, 29 Nov 2026 13:31:09 +0000`.
pub fn rfc5322_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1).clamp(0, 11) as usize],
        year,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        let cases = [
            ("Plans", "plans"),
            ("Re: Plans", "plans"),
            ("RE: Fwd: re:Plans", "plans"),
            ("  AW: Plänе ", "plänе"),
            ("Re:", ""),
            ("Regarding plans", "regarding plans"),
        ];
        for (input, expect) in cases {
            assert_eq!(base_subject(input), expect, "{input}");
        }
    }

    #[test]
    fn parsing_extracts_what_the_store_keeps() {
        let raw = b"From: Alice Example <alice@acme.test>\r\n\
To: bob@globex.test, Carol <carol@globex.test>\r\n\
Subject: Re: Quarterly numbers\r\n\
Message-ID: <reply-1@acme.test>\r\n\
In-Reply-To: <root@globex.test>\r\n\
References: <root@globex.test>\r\n\
Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
\r\n\
The numbers   are attached.\r\n";
        let email = parse(raw, 7).expect("parses");
        assert_eq!(email.subject.as_deref(), Some("Re: Quarterly numbers"));
        assert_eq!(email.base_subject, "quarterly numbers");
        assert_eq!(email.message_id.as_deref(), Some("reply-1@acme.test"));
        assert_eq!(email.in_reply_to, vec!["root@globex.test".to_owned()]);
        assert_eq!(email.references, vec!["root@globex.test".to_owned()]);
        assert_eq!(email.from[0].name.as_deref(), Some("Alice Example"));
        assert_eq!(email.to.len(), 2);
        assert_eq!(email.preview, "The numbers are attached.");
        assert_eq!(email.sent_at, Some(1_796_119_200));
        assert!(email.search_text.contains("carol@globex.test"));
        assert_eq!(email.size, raw.len() as i64);
    }

    #[test]
    fn garbage_is_not_a_message() {
        for raw in [&b""[..], b"\r\n\r\n"] {
            assert!(
                matches!(
                    parse(raw, 0).map_err(|e| e.kind),
                    Err(ErrorKind::NotAMessage)
                ),
                "{raw:?}"
            );
        }
    }
}
