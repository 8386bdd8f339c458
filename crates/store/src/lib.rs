//! The storage interface every Stormproof component uses, and its embedded
//! SQLite backend.
//!
//! Callers hold an `Arc<dyn Store>` and never see SQL, so a PostgreSQL
//! backend can be added behind the same trait. Every method that reads or
//! changes tenant data takes the tenant, and every table's key starts with
//! it: no call can reach across tenants, even with a guessed id.
//!
//! The store decides nothing about policy. It keeps records, enforces
//! uniqueness, and makes state changes atomic (a refresh token is marked used
//! exactly once; an authorization code is taken exactly once).
//!
//! ```
//! use stormproof_store::{SqliteStore, Store};
//! use stormproof_types::TenantName;
//! let dir = std::env::temp_dir().join(stormproof_types::random_id(6));
//! let store = SqliteStore::open(&dir).unwrap();
//! let acme = TenantName::parse("acme").unwrap();
//! store.create_tenant(&acme, &["acme.test".into()], 0).unwrap();
//! assert_eq!(store.tenant_for_domain("acme.test").unwrap(), Some(acme));
//! ```
#![deny(missing_docs)]

mod blobs;
mod detection;
mod mail;
mod migrations;
mod mirror;
mod records;
mod sqlite;
mod sqlite_detection;
mod sqlite_mail;

use std::sync::Arc;

use stormproof_types::{Email, TenantName, UnixTime};

pub use blobs::BlobStore;
pub use detection::*;
pub use mail::*;
pub use records::*;
pub use sqlite::{DATABASE_FILE, SqliteStore};

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[error("store: {kind}")]
pub struct Error {
    /// What failed.
    pub kind: ErrorKind,
}

/// What failed in a store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A record with the same key already exists.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The record to change does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is invalid, e.g. an empty mailbox name or a parent cycle.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A stored value could not be read back; the database was edited or damaged.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The schema is newer than this program.
    #[error("database schema version {found} is newer than this program's {supported}")]
    TooNew {
        /// Version found on disk.
        found: i64,
        /// Newest version this program knows.
        supported: i64,
    },
    /// Storing this would take the account over its quota.
    #[error("quota exceeded: {used} of {quota} bytes used, {size} more needed")]
    QuotaExceeded {
        /// Bytes used now.
        used: i64,
        /// The quota.
        quota: i64,
        /// The size of what was refused.
        size: i64,
    },
    /// The backend failed (IO, locking, SQL).
    #[error("backend: {0}")]
    Backend(String),
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}

/// Result of a store call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Counters bumped in the same transaction as the changes they announce, so
/// a running server notices changes made by another process (the CLI) by
/// polling two integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Epochs {
    /// Bumped on any key record change.
    pub keys: i64,
    /// Bumped on any revocation: token, session, user, client.
    pub revocations: i64,
}

/// What happened when a refresh token was presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// First use: the caller may rotate it.
    Fresh(TokenRecord),
    /// It was used before: a replay. The caller must revoke the session.
    Reused(TokenRecord),
    /// No such token, or revoked.
    Unknown,
}

/// What happened when an authorization code was redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeUse {
    /// First use.
    Fresh(AuthCodeRecord),
    /// Used before: the session it created must be revoked (RFC 6749 section 4.1.2).
    Reused {
        /// The session the code's first use created.
        sid: String,
    },
    /// No such code, or expired.
    Unknown,
}

/// The storage interface: identity records here, mail records in the
/// [`MailStore`] supertrait, alerts and detector state in the
/// [`DetectionStore`] supertrait. Implementations must be safe to share
/// between threads and between processes using the same data directory.
pub trait Store: MailStore + DetectionStore + Send + Sync + std::fmt::Debug {
    // Tenants.
    /// Creates a tenant with its mail domains.
    fn create_tenant(&self, name: &TenantName, domains: &[String], now: UnixTime) -> Result<()>;
    /// One tenant.
    fn tenant(&self, name: &TenantName) -> Result<Option<TenantRecord>>;
    /// Every tenant.
    fn tenants(&self) -> Result<Vec<TenantRecord>>;
    /// The tenant owning a mail domain.
    fn tenant_for_domain(&self, domain: &str) -> Result<Option<TenantName>>;

    // Users.
    /// Creates a user.
    fn create_user(&self, user: &UserRecord) -> Result<()>;
    /// A user by address, within a tenant.
    fn user_by_email(&self, tenant: &TenantName, email: &Email) -> Result<Option<UserRecord>>;
    /// A user by id, within a tenant.
    fn user_by_id(&self, tenant: &TenantName, id: &str) -> Result<Option<UserRecord>>;
    /// Every user of a tenant.
    fn users(&self, tenant: &TenantName) -> Result<Vec<UserRecord>>;
    /// Enables or disables a user. Disabling bumps the revocation epoch.
    fn set_user_enabled(&self, tenant: &TenantName, id: &str, enabled: bool) -> Result<()>;
    /// Sets or clears the sealed TOTP secret.
    fn set_user_totp(&self, tenant: &TenantName, id: &str, sealed: Option<&[u8]>) -> Result<()>;
    /// Claims TOTP time step `step` for a user: `true` if no code of that
    /// step or a later one was accepted before, so a code works once.
    fn claim_totp_step(&self, tenant: &TenantName, id: &str, step: u64) -> Result<bool>;
    /// Replaces the password hash.
    fn set_user_password(&self, tenant: &TenantName, id: &str, hash: &str) -> Result<()>;

    // App passwords.
    /// Stores a new app password.
    fn create_app_password(&self, record: &AppPasswordRecord) -> Result<()>;
    /// A user's app passwords, revoked ones included.
    fn app_passwords(&self, tenant: &TenantName, user_id: &str) -> Result<Vec<AppPasswordRecord>>;
    /// Revokes an app password.
    fn revoke_app_password(
        &self,
        tenant: &TenantName,
        user_id: &str,
        id: &str,
        now: UnixTime,
    ) -> Result<()>;

    // Clients.
    /// Registers a client.
    fn create_client(&self, client: &ClientRecord) -> Result<()>;
    /// One client.
    fn client(&self, tenant: &TenantName, client_id: &str) -> Result<Option<ClientRecord>>;
    /// Every client of a tenant.
    fn clients(&self, tenant: &TenantName) -> Result<Vec<ClientRecord>>;
    /// Blocks or unblocks a client. Blocking bumps the revocation epoch.
    fn set_client_blocked(&self, tenant: &TenantName, client_id: &str, blocked: bool)
    -> Result<()>;

    // Signing keys.
    /// Stores a key record.
    fn insert_key(&self, key: &KeyRecord) -> Result<()>;
    /// A tenant's keys, newest first.
    fn keys(&self, tenant: &TenantName) -> Result<Vec<KeyRecord>>;
    /// Every key of every tenant, for the verifier's key ring.
    fn all_keys(&self) -> Result<Vec<KeyRecord>>;
    /// Applies status changes to several keys of one tenant atomically, so a
    /// rotation never leaves a tenant with zero or two active keys.
    fn set_key_statuses(
        &self,
        tenant: &TenantName,
        changes: &[(String, KeyStatus)],
        now: UnixTime,
    ) -> Result<()>;
    /// Marks a key compromised and revokes every token it signed, atomically.
    /// Returns how many unexpired tokens were revoked.
    fn compromise_key(&self, tenant: &TenantName, kid: &str, now: UnixTime) -> Result<u64>;

    // Sessions and the ledger.
    /// Records a sign-in session.
    fn create_session(&self, session: &SessionRecord) -> Result<()>;
    /// One session.
    fn session(&self, tenant: &TenantName, sid: &str) -> Result<Option<SessionRecord>>;
    /// The sessions not yet revoked, optionally only a subject's or a
    /// client's, oldest first.
    fn live_sessions(
        &self,
        tenant: &TenantName,
        subject: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<Vec<SessionRecord>>;
    /// Revokes a session and every token derived from it.
    fn revoke_session(&self, tenant: &TenantName, sid: &str, now: UnixTime) -> Result<()>;
    /// Records an issued token.
    fn record_token(&self, token: &TokenRecord) -> Result<()>;
    /// A ledger entry by token id.
    fn token(&self, tenant: &TenantName, jti: &str) -> Result<Option<TokenRecord>>;
    /// A ledger entry by the hash of an opaque token's value.
    fn token_by_secret(
        &self,
        tenant: &TenantName,
        secret_hash: &[u8],
    ) -> Result<Option<TokenRecord>>;
    /// Marks a refresh token used, exactly once.
    fn use_refresh_token(
        &self,
        tenant: &TenantName,
        secret_hash: &[u8],
        now: UnixTime,
    ) -> Result<RefreshUse>;
    /// Revokes one token; revoking a refresh token also revokes its descendants.
    fn revoke_token(&self, tenant: &TenantName, jti: &str, now: UnixTime) -> Result<()>;
    /// A token's ledger entry joined with its session's, user's and
    /// client's state: everything the verifier checks at use, in one read.
    fn ledger_entry(&self, tenant: &TenantName, jti: &str) -> Result<Option<LedgerEntry>>;
    /// The [`Store::ledger_entry`] of an access token recorded through this
    /// handle, as it stood in the transaction that recorded the token, with
    /// that transaction's change counters; read from memory, never from the
    /// backend. `None` when this handle did not record the token, when the
    /// entry did not allow use then (revoked, or the session, user or client
    /// refused), or when it was dropped: a revocation through this handle
    /// drops every snapshot, and old ones are evicted.
    ///
    /// A snapshot stands in for [`Store::ledger_entry`] only while the
    /// caller's latest [`Store::epochs`] equal its `epochs`: every later
    /// change to what the entry reports (token, session, user or client
    /// revocation, key compromise) bumps the revocation counter. The default
    /// keeps nothing, which is always correct.
    fn recorded_ledger_entry(&self, tenant: &TenantName, jti: &str) -> Option<Arc<LedgerSnapshot>> {
        let _ = (tenant, jti);
        None
    }
    /// Whether the subject's session and the ledger allow use: returns the
    /// session's and the user's current state in one read.
    fn session_state(&self, tenant: &TenantName, sid: &str) -> Result<Option<SessionState>>;

    // Authorization codes and device codes.
    /// Stores an authorization code.
    fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<()>;
    /// Redeems an authorization code exactly once.
    fn take_auth_code(
        &self,
        tenant: &TenantName,
        code_hash: &[u8],
        now: UnixTime,
    ) -> Result<CodeUse>;
    /// Stores a device authorization.
    fn insert_device_code(&self, record: &DeviceCodeRecord) -> Result<()>;
    /// A pending device authorization by its user code.
    fn device_by_user_code(
        &self,
        tenant: &TenantName,
        user_code: &str,
    ) -> Result<Option<DeviceCodeRecord>>;
    /// Approves or denies a pending device authorization.
    fn decide_device(
        &self,
        tenant: &TenantName,
        user_code: &str,
        approval: Option<(&str, &str)>,
    ) -> Result<()>;
    /// A client's poll: returns the record as it was and records the poll
    /// time; an approved record is marked consumed in the same step.
    fn poll_device(
        &self,
        tenant: &TenantName,
        device_code_hash: &[u8],
        now: UnixTime,
    ) -> Result<Option<DeviceCodeRecord>>;

    // Security events and change notification.
    /// Appends a security event, returning its id.
    fn record_security_event(&self, event: &SecurityEventRecord) -> Result<i64>;
    /// Security events after `after_id`, oldest first, at most `limit`.
    fn security_events(&self, after_id: i64, limit: usize) -> Result<Vec<SecurityEventRecord>>;
    /// The change counters.
    fn epochs(&self) -> Result<Epochs>;
    /// A server-wide setting, such as the public URL the server last ran with.
    fn setting(&self, name: &str) -> Result<Option<String>>;
    /// Sets a server-wide setting.
    fn set_setting(&self, name: &str, value: &str) -> Result<()>;
}

/// The columns of a ledger entry the verifier compares with a token's
/// claims, and the state of the session it derives from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Access or refresh.
    pub kind: TokenKind,
    /// Subject.
    pub sub: String,
    /// Session.
    pub sid: String,
    /// Client.
    pub client_id: String,
    /// Scope.
    pub scope: String,
    /// Signing key.
    pub kid: Option<String>,
    /// Issued at.
    pub iat: UnixTime,
    /// Expires at.
    pub exp: UnixTime,
    /// DPoP key thumbprint.
    pub jkt: Option<String>,
    /// Whether the token was revoked.
    pub revoked: bool,
    /// The session's state; `None` when the session record is missing.
    pub session: Option<SessionState>,
}

/// A ledger entry as it stood when its token was recorded, and the change
/// counters of the recording transaction. See [`Store::recorded_ledger_entry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSnapshot {
    /// What [`Store::ledger_entry`] returned inside the recording transaction.
    pub entry: LedgerEntry,
    /// The change counters in that same transaction.
    pub epochs: Epochs,
}

/// A session's state and its subject's, read together at verification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    /// Whether the session was revoked.
    pub session_revoked: bool,
    /// Whether the subject (a user) is disabled.
    pub user_disabled: bool,
    /// Whether the client is blocked.
    pub client_blocked: bool,
}
