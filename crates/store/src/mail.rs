//! Mail records and the mail half of the storage interface: accounts,
//! mailboxes with IMAP-compatible UIDs and MODSEQs, messages stored once,
//! threads, keywords, full-text search, quotas and a per-type change log for
//! JMAP state strings.

use serde::Serialize;
use stormproof_types::{TenantName, UnixTime};

use crate::Result;

/// The mailbox roles every account is created with (RFC 8621 section 2,
/// IANA "IMAP Mailbox Name Attributes").
pub const DEFAULT_MAILBOXES: &[(&str, &str)] = &[
    ("Inbox", "inbox"),
    ("Drafts", "drafts"),
    ("Sent", "sent"),
    ("Trash", "trash"),
    ("Junk", "junk"),
    ("Archive", "archive"),
];

/// The object types whose changes are logged for JMAP `/changes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ChangeType {
    /// Mailbox objects.
    Mailbox,
    /// Email objects.
    Email,
    /// Thread objects.
    Thread,
    /// Identity objects (RFC 8621 section 6).
    Identity,
    /// EmailSubmission objects (RFC 8621 section 7).
    EmailSubmission,
    /// The VacationResponse singleton (RFC 8621 section 8).
    VacationResponse,
}

impl ChangeType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Mailbox => "Mailbox",
            ChangeType::Email => "Email",
            ChangeType::Thread => "Thread",
            ChangeType::Identity => "Identity",
            ChangeType::EmailSubmission => "EmailSubmission",
            ChangeType::VacationResponse => "VacationResponse",
        }
    }
}

/// A mail account: one per user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailAccount {
    /// Tenant.
    pub tenant: TenantName,
    /// Account id (JMAP `accountId`).
    pub account_id: String,
    /// The owner's user id.
    pub user_id: String,
    /// Quota in bytes.
    pub quota_bytes: i64,
    /// Bytes used by the account's messages.
    pub used_bytes: i64,
    /// The account's change counter; every change gets the next value.
    pub modseq: i64,
}

/// A mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    /// Mailbox id.
    pub id: String,
    /// Parent mailbox, if nested.
    pub parent_id: Option<String>,
    /// Display name.
    pub name: String,
    /// Role (`inbox`, `sent`, ...), if any.
    pub role: Option<String>,
    /// Sort order hint.
    pub sort_order: i64,
    /// IMAP UIDVALIDITY: never changes while UIDs stay valid.
    pub uid_validity: i64,
    /// The UID the next message added gets.
    pub uid_next: i64,
    /// The highest MODSEQ of any change in this mailbox (CONDSTORE).
    pub highest_modseq: i64,
    /// Whether the user is subscribed.
    pub subscribed: bool,
    /// Messages in the mailbox.
    pub total_emails: i64,
    /// Messages without `$seen`.
    pub unread_emails: i64,
}

/// An address from a header field, as parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EmailAddress {
    /// Display name.
    pub name: Option<String>,
    /// The address.
    pub email: String,
}

/// Everything the store keeps about a message besides its raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailRecord {
    /// Email id.
    pub id: String,
    /// Blob id of the raw RFC 5322 message.
    pub blob_id: String,
    /// Thread id.
    pub thread_id: String,
    /// Size in bytes.
    pub size: i64,
    /// When it arrived.
    pub received_at: UnixTime,
    /// `Date:`.
    pub sent_at: Option<UnixTime>,
    /// `Message-ID:`, without angle brackets.
    pub message_id: Option<String>,
    /// `In-Reply-To:` ids.
    pub in_reply_to: Vec<String>,
    /// `References:` ids.
    pub references: Vec<String>,
    /// `Subject:`.
    pub subject: Option<String>,
    /// `From:`.
    pub from: Vec<EmailAddress>,
    /// `To:`.
    pub to: Vec<EmailAddress>,
    /// `Cc:`.
    pub cc: Vec<EmailAddress>,
    /// A short plain-text preview of the body.
    pub preview: String,
    /// Whether it has attachments.
    pub has_attachment: bool,
    /// Mailboxes it is in, with its UID and MODSEQ in each.
    pub mailboxes: Vec<MailboxMembership>,
    /// Keywords (`$seen`, `$flagged`, ...), lowercase.
    pub keywords: Vec<String>,
}

/// A message's place in one mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailboxMembership {
    /// Mailbox id.
    pub mailbox_id: String,
    /// IMAP UID in that mailbox.
    pub uid: i64,
    /// MODSEQ of the last change to the message in that mailbox.
    pub modseq: i64,
}

/// A parsed message ready to be stored; produced by the mail crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmail {
    /// Blob id (SHA-256 of the raw message, hex), already durable on disk.
    pub blob_id: String,
    /// Size in bytes.
    pub size: i64,
    /// Arrival time.
    pub received_at: UnixTime,
    /// `Date:`.
    pub sent_at: Option<UnixTime>,
    /// `Message-ID:`.
    pub message_id: Option<String>,
    /// `In-Reply-To:`.
    pub in_reply_to: Vec<String>,
    /// `References:`.
    pub references: Vec<String>,
    /// `Subject:`.
    pub subject: Option<String>,
    /// Subject with `Re:`/`Fwd:` prefixes removed, for threading.
    pub base_subject: String,
    /// `From:`.
    pub from: Vec<EmailAddress>,
    /// `To:`.
    pub to: Vec<EmailAddress>,
    /// `Cc:`.
    pub cc: Vec<EmailAddress>,
    /// Preview.
    pub preview: String,
    /// Attachments present.
    pub has_attachment: bool,
    /// Text to index: headers and body text.
    pub search_text: String,
    /// Mailboxes to put it in (at least one).
    pub mailbox_ids: Vec<String>,
    /// Initial keywords.
    pub keywords: Vec<String>,
}

/// Where a message was filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEmail {
    /// Its id.
    pub email_id: String,
    /// Its thread.
    pub thread_id: String,
    /// Its UIDs.
    pub mailboxes: Vec<MailboxMembership>,
}

/// Changes to one type since a state, for JMAP `/changes`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    /// Created since.
    pub created: Vec<String>,
    /// Updated since (and not created since).
    pub updated: Vec<String>,
    /// Destroyed since (and not created since).
    pub destroyed: Vec<String>,
    /// The state after these changes.
    pub new_state: i64,
    /// Whether more changes remain beyond `max_changes`.
    pub has_more: bool,
}

/// The mail half of the storage interface. Every call names the tenant and
/// the account; ids from another account are simply not found.
pub trait MailStore: Send + Sync + std::fmt::Debug {
    /// Creates a user's account with the default mailboxes. Idempotent.
    fn create_mail_account(
        &self,
        tenant: &TenantName,
        user_id: &str,
        quota_bytes: i64,
    ) -> Result<MailAccount>;
    /// The account of a user.
    fn mail_account_for_user(
        &self,
        tenant: &TenantName,
        user_id: &str,
    ) -> Result<Option<MailAccount>>;
    /// An account by id.
    fn mail_account(&self, tenant: &TenantName, account_id: &str) -> Result<Option<MailAccount>>;
    /// The id of the account's mailbox with `role`, without the message
    /// counts [`MailStore::mailboxes`] computes: delivery needs only this.
    fn mailbox_id_by_role(
        &self,
        tenant: &TenantName,
        account_id: &str,
        role: &str,
    ) -> Result<Option<String>>;
    /// The account's mailboxes.
    fn mailboxes(&self, tenant: &TenantName, account_id: &str) -> Result<Vec<Mailbox>>;
    /// Stores a parsed message in one transaction: UIDs, MODSEQs, thread,
    /// keywords, search index, quota and change log. Fails with
    /// `ErrorKind::QuotaExceeded` rather than going over quota.
    fn insert_email(
        &self,
        tenant: &TenantName,
        account_id: &str,
        email: &NewEmail,
    ) -> Result<StoredEmail>;
    /// Messages by id; unknown ids are left out.
    fn emails(
        &self,
        tenant: &TenantName,
        account_id: &str,
        ids: &[String],
    ) -> Result<Vec<EmailRecord>>;
    /// Message ids in a mailbox, newest first.
    fn mailbox_email_ids(
        &self,
        tenant: &TenantName,
        account_id: &str,
        mailbox_id: &str,
    ) -> Result<Vec<String>>;
    /// Full-text search over headers and body text, newest first.
    fn search_emails(
        &self,
        tenant: &TenantName,
        account_id: &str,
        text: &str,
        limit: usize,
    ) -> Result<Vec<String>>;
    /// Records that an account owns a blob it uploaded.
    fn add_blob(
        &self,
        tenant: &TenantName,
        account_id: &str,
        blob_id: &str,
        size: i64,
    ) -> Result<()>;
    /// Whether the account owns a blob (the only way to reach its bytes).
    fn owns_blob(&self, tenant: &TenantName, account_id: &str, blob_id: &str) -> Result<bool>;
    /// Changes of one type since `since_state`, at most `max_changes`.
    fn changes(
        &self,
        tenant: &TenantName,
        account_id: &str,
        kind: ChangeType,
        since_state: i64,
        max_changes: usize,
    ) -> Result<Changes>;
    /// Creates a mailbox. Names are unique among siblings.
    fn create_mailbox(
        &self,
        tenant: &TenantName,
        account_id: &str,
        mailbox: &NewMailbox,
    ) -> Result<String>;
    /// Renames, moves or (un)subscribes a mailbox.
    fn update_mailbox(
        &self,
        tenant: &TenantName,
        account_id: &str,
        mailbox_id: &str,
        update: &MailboxUpdate,
    ) -> Result<()>;
    /// Destroys an empty mailbox without children; with `remove_emails`,
    /// messages only in it are destroyed and others just leave it.
    fn destroy_mailbox(
        &self,
        tenant: &TenantName,
        account_id: &str,
        mailbox_id: &str,
        remove_emails: bool,
    ) -> Result<()>;
    /// Changes a message's keywords and/or mailboxes. Messages keep their
    /// UID in mailboxes they stay in and get a new one in mailboxes they join.
    fn update_email(
        &self,
        tenant: &TenantName,
        account_id: &str,
        email_id: &str,
        update: &EmailUpdate,
    ) -> Result<()>;
    /// Destroys a message, releasing its quota.
    fn destroy_email(&self, tenant: &TenantName, account_id: &str, email_id: &str) -> Result<()>;

    /// The account's sending identities, oldest first.
    fn identities(&self, tenant: &TenantName, account_id: &str) -> Result<Vec<IdentityRecord>>;
    /// Creates an identity and returns its id. At most one identity per
    /// account may have `may_delete` false: a second is a `Conflict`. The
    /// store does not check that the account may send from the address.
    fn create_identity(
        &self,
        tenant: &TenantName,
        account_id: &str,
        identity: &NewIdentity,
    ) -> Result<String>;
    /// Changes an identity's name, reply-to, bcc or signatures; its address
    /// never changes.
    fn update_identity(
        &self,
        tenant: &TenantName,
        account_id: &str,
        identity_id: &str,
        update: &IdentityUpdate,
    ) -> Result<()>;
    /// Destroys an identity, whatever its `may_delete`.
    fn destroy_identity(
        &self,
        tenant: &TenantName,
        account_id: &str,
        identity_id: &str,
    ) -> Result<()>;

    /// The account's email submissions, oldest first.
    fn email_submissions(
        &self,
        tenant: &TenantName,
        account_id: &str,
    ) -> Result<Vec<EmailSubmissionRecord>>;
    /// Records a submission and returns its id.
    fn create_email_submission(
        &self,
        tenant: &TenantName,
        account_id: &str,
        submission: &NewEmailSubmission,
    ) -> Result<String>;
    /// Forgets a submission; what it sent stays sent.
    fn destroy_email_submission(
        &self,
        tenant: &TenantName,
        account_id: &str,
        submission_id: &str,
    ) -> Result<()>;

    /// The account's vacation response, `None` if it was never set.
    fn vacation_response(
        &self,
        tenant: &TenantName,
        account_id: &str,
    ) -> Result<Option<VacationResponse>>;
    /// Replaces the account's vacation response.
    fn set_vacation_response(
        &self,
        tenant: &TenantName,
        account_id: &str,
        vacation: &VacationResponse,
    ) -> Result<()>;
}

/// A mailbox to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewMailbox {
    /// Display name.
    pub name: String,
    /// Parent mailbox.
    pub parent_id: Option<String>,
    /// Role, unique in the account.
    pub role: Option<String>,
    /// Sort order.
    pub sort_order: i64,
    /// Subscribed.
    pub subscribed: bool,
}

/// Changes to a mailbox; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailboxUpdate {
    /// New name.
    pub name: Option<String>,
    /// New parent (`Some(None)` moves it to the top level).
    pub parent_id: Option<Option<String>>,
    /// New sort order.
    pub sort_order: Option<i64>,
    /// New subscription state.
    pub subscribed: Option<bool>,
}

/// Changes to a message; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmailUpdate {
    /// The full new keyword set.
    pub keywords: Option<Vec<String>>,
    /// The full new mailbox set (at least one).
    pub mailbox_ids: Option<Vec<String>>,
}

/// A sending identity (RFC 8621 section 6): an address the account may send
/// from, with what clients add to messages sent as it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityRecord {
    /// Identity id.
    pub id: String,
    /// Display name for the `From:` field; may be empty.
    pub name: String,
    /// The address.
    pub email: String,
    /// Default `Reply-To:` addresses.
    pub reply_to: Option<Vec<EmailAddress>>,
    /// Default `Bcc:` addresses.
    pub bcc: Option<Vec<EmailAddress>>,
    /// Plain-text signature.
    pub text_signature: String,
    /// HTML signature.
    pub html_signature: String,
    /// False for the account's default identity, which cannot be destroyed.
    pub may_delete: bool,
}

/// An identity to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewIdentity {
    /// Display name.
    pub name: String,
    /// The address.
    pub email: String,
    /// Default `Reply-To:` addresses.
    pub reply_to: Option<Vec<EmailAddress>>,
    /// Default `Bcc:` addresses.
    pub bcc: Option<Vec<EmailAddress>>,
    /// Plain-text signature.
    pub text_signature: String,
    /// HTML signature.
    pub html_signature: String,
    /// False for the default identity; the store keeps at most one such.
    pub may_delete: bool,
}

/// Changes to an identity; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentityUpdate {
    /// New name.
    pub name: Option<String>,
    /// New reply-to (`Some(None)` clears it).
    pub reply_to: Option<Option<Vec<EmailAddress>>>,
    /// New bcc (`Some(None)` clears it).
    pub bcc: Option<Option<Vec<EmailAddress>>>,
    /// New plain-text signature.
    pub text_signature: Option<String>,
    /// New HTML signature.
    pub html_signature: Option<String>,
}

/// A message handed over for sending (RFC 8621 section 7). The envelope and
/// delivery status are kept as the JSON the JMAP layer wrote; the store
/// does not read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailSubmissionRecord {
    /// Submission id.
    pub id: String,
    /// The identity it was sent as.
    pub identity_id: String,
    /// The email sent.
    pub email_id: String,
    /// That email's thread.
    pub thread_id: String,
    /// The SMTP envelope, as JSON.
    pub envelope: String,
    /// When it was sent.
    pub send_at: UnixTime,
    /// `pending`, `final` or `canceled`.
    pub undo_status: String,
    /// The outcome per recipient, as JSON.
    pub delivery_status: String,
}

/// A submission to record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewEmailSubmission {
    /// The identity it was sent as.
    pub identity_id: String,
    /// The email sent.
    pub email_id: String,
    /// That email's thread.
    pub thread_id: String,
    /// The SMTP envelope, as JSON.
    pub envelope: String,
    /// When it was sent.
    pub send_at: UnixTime,
    /// `pending`, `final` or `canceled`.
    pub undo_status: String,
    /// The outcome per recipient, as JSON.
    pub delivery_status: String,
}

/// An account's automatic reply settings (RFC 8621 section 8).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VacationResponse {
    /// Whether replies should be sent.
    pub is_enabled: bool,
    /// Replies start then, if set.
    pub from_date: Option<UnixTime>,
    /// Replies stop then, if set.
    pub to_date: Option<UnixTime>,
    /// Reply subject.
    pub subject: Option<String>,
    /// Plain-text reply.
    pub text_body: Option<String>,
    /// HTML reply.
    pub html_body: Option<String>,
}
