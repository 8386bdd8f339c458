//! The records the store keeps. Each is a plain value; the store decides
//! nothing about them beyond uniqueness and atomic state changes.

use serde::{Deserialize, Serialize};
use stormproof_types::{Alg, Email, TenantName, UnixTime};

/// A tenant: one organisation, one issuer, its own keys and users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantRecord {
    /// The tenant's name.
    pub name: TenantName,
    /// The mail domains it owns.
    pub domains: Vec<String>,
    /// When it was created.
    pub created: UnixTime,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Tenant the user belongs to.
    pub tenant: TenantName,
    /// Stable id, used as `sub`.
    pub id: String,
    /// Primary address.
    pub email: Email,
    /// argon2id PHC string.
    pub password_hash: String,
    /// The TOTP secret, sealed under the master key, if enrolled.
    pub totp_sealed: Option<Vec<u8>>,
    /// Disabled users cannot sign in and their tokens stop verifying.
    pub enabled: bool,
    /// When the account was created.
    pub created: UnixTime,
}

/// A per-application password for mail protocols only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppPasswordRecord {
    /// Tenant.
    pub tenant: TenantName,
    /// Id, shown in listings.
    pub id: String,
    /// Owner's user id.
    pub user_id: String,
    /// The application's name, chosen by the user.
    pub name: String,
    /// argon2id PHC string of the password.
    #[serde(skip)]
    pub password_hash: String,
    /// When it was created.
    pub created: UnixTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<UnixTime>,
}

/// Whether a client can keep a secret (RFC 6749 section 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// Runs on a device the user controls; authenticates with PKCE only.
    Public,
    /// Runs on a server; authenticates with its secret.
    Confidential,
}

/// An OAuth client registered in a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientRecord {
    /// Tenant.
    pub tenant: TenantName,
    /// `client_id`.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// Public or confidential.
    pub kind: ClientKind,
    /// SHA-256 of the client secret, for confidential clients. Secrets are
    /// 256-bit random values, so a fast hash is enough.
    #[serde(skip)]
    pub secret_hash: Option<Vec<u8>>,
    /// Redirect URIs, compared exactly.
    pub redirect_uris: Vec<String>,
    /// Whether every token for this client must be DPoP-bound.
    pub require_dpop: bool,
    /// Blocked clients get no tokens and their tokens stop verifying.
    pub blocked: bool,
    /// When it was registered.
    pub created: UnixTime,
}

/// A signing key's place in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Published in the JWKS, not yet signing.
    Next,
    /// The tenant's one signing key.
    Active,
    /// No longer signing; verifies tokens it signed until they expire.
    Retiring,
    /// Verifies nothing.
    Retired,
    /// Revoked as compromised: verifies nothing, and every token it signed is revoked.
    Compromised,
}

impl KeyStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Next => "next",
            KeyStatus::Active => "active",
            KeyStatus::Retiring => "retiring",
            KeyStatus::Retired => "retired",
            KeyStatus::Compromised => "compromised",
        }
    }
    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "next" => KeyStatus::Next,
            "active" => KeyStatus::Active,
            "retiring" => KeyStatus::Retiring,
            "retired" => KeyStatus::Retired,
            "compromised" => KeyStatus::Compromised,
            _ => return None,
        })
    }
}

/// Where a key's private half lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyBackend {
    /// Sealed in the store under the master key.
    Software,
    /// On a PKCS#11 token; `material` holds the object id.
    Pkcs11,
}

/// A signing key record. The record, never a token, decides the algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    /// Tenant that owns the key; it verifies only that tenant's tokens.
    pub tenant: TenantName,
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: Alg,
    /// Where the private key lives.
    pub backend: KeyBackend,
    /// Sealed PKCS#8 (software) or object id (PKCS#11).
    #[serde(skip)]
    pub material: Vec<u8>,
    /// Public key bytes (see `PublicKey::to_bytes`).
    #[serde(skip)]
    pub public_key: Vec<u8>,
    /// When the record was created (and published, for generated keys).
    pub created: UnixTime,
    /// The earliest `iat` this key may sign or verify.
    pub not_before: UnixTime,
    /// After this instant the key verifies nothing, whatever its status.
    pub not_after: UnixTime,
    /// Life-cycle status.
    pub status: KeyStatus,
    /// When it became active.
    pub activated_at: Option<UnixTime>,
    /// When it stopped signing.
    pub retiring_at: Option<UnixTime>,
    /// Whether it was imported rather than generated.
    pub imported: bool,
}

/// A sign-in session: the root every token of one sign-in links back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRecord {
    /// Tenant.
    pub tenant: TenantName,
    /// Session id (`sid`).
    pub sid: String,
    /// The signed-in user's id, or the client id for client credentials.
    pub subject: String,
    /// The client the sign-in was for.
    pub client_id: String,
    /// When the user authenticated.
    pub auth_time: UnixTime,
    /// Authentication methods (`pwd`, `otp`, `admin`, `client_secret`).
    pub amr: Vec<String>,
    /// Source address of the sign-in.
    pub ip: Option<String>,
    /// User agent of the sign-in.
    pub user_agent: Option<String>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<UnixTime>,
}

/// The kind of token in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A signed JWT access token.
    Access,
    /// An opaque refresh token.
    Refresh,
}

/// A ledger entry: one token as it was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// Tenant.
    pub tenant: TenantName,
    /// Token id.
    pub jti: String,
    /// Access or refresh.
    pub kind: TokenKind,
    /// Subject.
    pub sub: String,
    /// Session the token derives from.
    pub sid: String,
    /// Client.
    pub client_id: String,
    /// Scope.
    pub scope: String,
    /// Key that signed it (access tokens).
    pub kid: Option<String>,
    /// Issued at.
    pub iat: UnixTime,
    /// Expires at.
    pub exp: UnixTime,
    /// The token this one was derived from (refresh rotation, exchange), if any.
    pub parent: Option<String>,
    /// Source address of the issuing request.
    pub ip: Option<String>,
    /// User agent of the issuing request.
    pub user_agent: Option<String>,
    /// DPoP key thumbprint, for bound tokens.
    pub jkt: Option<String>,
    /// SHA-256 of an opaque token's value (refresh tokens).
    #[serde(skip)]
    pub secret_hash: Option<Vec<u8>>,
    /// When a refresh token was exchanged, if it was.
    pub used_at: Option<UnixTime>,
    /// When the token was revoked, if it was.
    pub revoked_at: Option<UnixTime>,
}

/// A pending authorization code. Only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCodeRecord {
    /// Tenant.
    pub tenant: TenantName,
    /// SHA-256 of the code.
    pub code_hash: Vec<u8>,
    /// Client it was issued to.
    pub client_id: String,
    /// Session created by the sign-in.
    pub sid: String,
    /// The user.
    pub user_id: String,
    /// The redirect URI it was sent to.
    pub redirect_uri: String,
    /// Granted scope.
    pub scope: String,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Expiry.
    pub expires: UnixTime,
}

/// The state of a device authorization (RFC 8628).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for the user.
    Pending,
    /// The user approved; tokens may be issued once.
    Approved,
    /// The user denied.
    Denied,
    /// Tokens were issued.
    Consumed,
}

/// A device authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeRecord {
    /// Tenant.
    pub tenant: TenantName,
    /// SHA-256 of the device code.
    pub device_code_hash: Vec<u8>,
    /// The short code the user types.
    pub user_code: String,
    /// Client.
    pub client_id: String,
    /// Requested scope.
    pub scope: String,
    /// Expiry.
    pub expires: UnixTime,
    /// Status.
    pub status: DeviceStatus,
    /// The approving user.
    pub user_id: Option<String>,
    /// Session created at approval.
    pub sid: Option<String>,
    /// Last time the client polled, for `slow_down`.
    pub last_poll: Option<UnixTime>,
}

/// A security event: a verifier rejection, a failed sign-in, a key change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityEventRecord {
    /// Store-assigned id, 0 before insertion.
    pub id: i64,
    /// When it happened.
    pub time: UnixTime,
    /// Tenant, when known.
    pub tenant: Option<String>,
    /// What kind of event, e.g. `token_rejected`.
    pub kind: String,
    /// Machine-readable reason, e.g. `never_issued`.
    pub reason: String,
    /// Free-form JSON detail: kid, jti, sub claimed, and so on.
    pub detail: serde_json::Value,
    /// Source address.
    pub ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
}
