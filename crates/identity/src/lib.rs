//! The issuer: tenants, users, OAuth clients, the signing-key life cycle,
//! sign-in sessions, and the issuance ledger every token is written to.
//!
//! Every token Stormproof mints goes through [`Issuer`], and every one is in
//! the ledger before it is handed out, so the verifier can refuse a validly
//! signed token that was never issued. Keys are per tenant and rotate on a
//! schedule; a key signs only while it is active and within its hard maximum
//! age.
//!
//! This crate never validates a presented access token: that is the
//! verifier's job alone. It touches no sockets; the HTTP front maps requests
//! onto its methods.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use stormproof_identity::{Issuer, IssuerConfig};
//! use stormproof_store::SqliteStore;
//! use stormproof_types::{SystemClock, TenantName};
//! let dir = std::path::Path::new("/var/lib/stormproof");
//! let store = Arc::new(SqliteStore::open(dir)?);
//! let issuer = Issuer::open(store, Arc::new(SystemClock), IssuerConfig::default(), dir, None)?;
//! issuer.create_tenant(&TenantName::parse("acme")?, &["acme.example".into()])?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod accounts;
mod oauth;
mod signing;
mod tokens;

use std::path::Path;
use std::sync::Arc;

use stormproof_keys::{MasterKey, Pkcs11Token};
use stormproof_store::Store;
use stormproof_types::{Alg, Clock};

pub use accounts::{NewAppPassword, NewClient, TotpEnrollment};
pub use oauth::{
    AuthorizeError, AuthorizeRequest, CodeExchange, DeviceAuthorization, LoginOutcome, OAuthError,
    TokenResponse, ValidatedAuthorize, normalize_user_code,
};
pub use signing::rotation_schedule;
pub use tokens::{AccessGrant, IssuedAccess, RequestInfo};

/// The client every tenant has for tokens minted by `stormproof token issue`.
pub const ADMIN_CLIENT_ID: &str = "stormproof-cli";

/// The master key file's name in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Scopes a client may ask for.
pub const SUPPORTED_SCOPES: &[&str] = &["openid", "email", "profile", "offline_access", "mail"];

/// Scopes only an operator can mint (`stormproof token issue`), never an
/// OAuth grant: `audit` reads the tenant's audit log.
pub const OPERATOR_SCOPES: &[&str] = &["audit"];

/// Where new signing keys are generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyBackendChoice {
    /// Sealed under the master key in the store.
    #[default]
    Software,
    /// On the configured PKCS#11 token.
    Pkcs11,
}

/// The issuer's settings.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The server's public base URL, without a trailing slash. The issuer
    /// of tenant `t` is `<public_url>/t/<t>`; the audience is `public_url`.
    pub public_url: String,
    /// Default access-token lifetime in seconds.
    pub access_token_lifetime: i64,
    /// The longest any access token may live, at most 3600 seconds.
    pub max_token_lifetime: i64,
    /// Refresh-token lifetime in seconds.
    pub refresh_token_lifetime: i64,
    /// How long a key signs before the next one takes over.
    pub rotation_period: i64,
    /// The algorithm of generated keys.
    pub key_algorithm: Alg,
    /// Where generated keys live.
    pub key_backend: KeyBackendChoice,
    /// Authorization-code lifetime in seconds.
    pub auth_code_lifetime: i64,
    /// Device-code lifetime in seconds.
    pub device_code_lifetime: i64,
    /// Minimum seconds between device-code polls.
    pub device_poll_interval: i64,
    /// Clock leeway in seconds, matching the verifier's.
    pub leeway: i64,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            access_token_lifetime: 600,
            max_token_lifetime: 3600,
            refresh_token_lifetime: 30 * 24 * 3600,
            rotation_period: 30 * 24 * 3600,
            key_algorithm: Alg::EdDsa,
            key_backend: KeyBackendChoice::Software,
            auth_code_lifetime: 60,
            device_code_lifetime: 600,
            device_poll_interval: 5,
            leeway: 30,
        }
    }
}

/// An issuer operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    /// What failed.
    pub kind: ErrorKind,
}

/// What failed in an issuer operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input was invalid: a bad name, an unknown domain, a weak password.
    #[error("{0}")]
    Invalid(String),
    /// The named thing does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// It already exists.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The tenant has no key that may sign now.
    #[error("tenant {0} has no usable signing key")]
    NoSigningKey(String),
    /// A key operation failed.
    #[error(transparent)]
    Keys(#[from] stormproof_keys::Error),
    /// The store failed.
    #[error(transparent)]
    Store(stormproof_store::Error),
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}

impl From<stormproof_store::Error> for Error {
    fn from(e: stormproof_store::Error) -> Self {
        let kind = match e.kind {
            stormproof_store::ErrorKind::Conflict(what) => ErrorKind::Conflict(what),
            stormproof_store::ErrorKind::NotFound(what) => ErrorKind::NotFound(what),
            _ => ErrorKind::Store(e),
        };
        Self { kind }
    }
}

impl From<stormproof_keys::Error> for Error {
    fn from(e: stormproof_keys::Error) -> Self {
        Self {
            kind: ErrorKind::Keys(e),
        }
    }
}

/// Result of an issuer call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn invalid(message: impl Into<String>) -> Error {
    ErrorKind::Invalid(message.into()).into()
}

/// The issuer. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Issuer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: IssuerConfig,
    master: MasterKey,
    hsm: Option<Arc<Pkcs11Token>>,
    signers: signing::SignerCache,
}

impl Issuer {
    /// Opens the issuer over `store`, reading (or creating) the master key in
    /// `data_dir`. `hsm` is required when the key backend is PKCS#11.
    pub fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        mut config: IssuerConfig,
        data_dir: &Path,
        hsm: Option<Arc<Pkcs11Token>>,
    ) -> Result<Self> {
        if config.key_backend == KeyBackendChoice::Pkcs11 && hsm.is_none() {
            return Err(invalid("the PKCS#11 key backend needs a configured token"));
        }
        // The cap is a promise to every verifier: no token outlives an hour.
        config.max_token_lifetime = config.max_token_lifetime.clamp(60, 3600);
        config.access_token_lifetime = config
            .access_token_lifetime
            .clamp(30, config.max_token_lifetime);
        config.public_url = config.public_url.trim_end_matches('/').to_owned();
        let master = MasterKey::load_or_create(&data_dir.join(MASTER_KEY_FILE))?;
        Ok(Self {
            store,
            clock,
            config,
            master,
            hsm,
            signers: signing::SignerCache::default(),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The store the issuer writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The issuer URL of a tenant.
    pub fn issuer_url(&self, tenant: &stormproof_types::TenantName) -> String {
        format!("{}/t/{}", self.config.public_url, tenant)
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }
}
