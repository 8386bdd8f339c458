//! Shared newtypes for Stormproof: names and identifiers that cross crate
//! boundaries, the signing algorithms, and the injectable clock.
//!
//! This crate owns no behaviour beyond validation of names and generation of
//! random identifiers. It must never depend on another Stormproof crate.
//!
//! ```
//! use stormproof_types::{TenantName, Alg};
//! let tenant = TenantName::parse("acme").unwrap();
//! assert_eq!(tenant.as_str(), "acme");
//! assert_eq!(Alg::EdDsa.jws_name(), "EdDSA");
//! ```
#![deny(missing_docs)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, the only time unit the identity core uses.
pub type UnixTime = i64;

/// A source of the current time, injected so rotation can be tested.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time in whole seconds since the Unix epoch.
    fn now(&self) -> UnixTime;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to; used to drive key rotation through
/// months of simulated time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: UnixTime) -> Self {
        Self(Arc::new(AtomicI64::new(start)))
    }
    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
    /// Sets the clock to `at`.
    pub fn set(&self, at: UnixTime) {
        self.0.store(at, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

/// A name failed validation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {what}: {reason}")]
pub struct InvalidName {
    /// Which kind of name was rejected.
    pub what: &'static str,
    /// Why it was rejected.
    pub reason: &'static str,
}

/// A tenant's short name, as it appears in its issuer URL `/t/<name>`.
///
/// Lowercase ASCII letters, digits and `-`, 1 to 63 characters, so it is safe
/// in a URL path and a DNS label without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantName(String);

impl TenantName {
    /// Validates and wraps a tenant name.
    pub fn parse(name: &str) -> Result<Self, InvalidName> {
        let bad = |reason| InvalidName {
            what: "tenant name",
            reason,
        };
        if name.is_empty() || name.len() > 63 {
            return Err(bad("must be 1 to 63 characters"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("only lowercase letters, digits and '-' are allowed"));
        }
        if name.starts_with('-') || name.ends_with('-') {
            return Err(bad("must not start or end with '-'"));
        }
        Ok(Self(name.to_owned()))
    }
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantName {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantName> for String {
    fn from(value: TenantName) -> Self {
        value.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, stored lowercased in its domain part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Validates the address's shape (`local@domain`) and lowercases it.
    pub fn parse(address: &str) -> Result<Self, InvalidName> {
        let bad = |reason| InvalidName {
            what: "email address",
            reason,
        };
        if address.len() > 254 {
            return Err(bad("longer than 254 characters"));
        }
        let (local, domain) = address.rsplit_once('@').ok_or(bad("missing '@'"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(bad("local part must be 1 to 64 characters"));
        }
        if local.bytes().any(|b| b <= b' ' || b == b'@' || b == 0x7f) {
            return Err(bad("local part has a forbidden character"));
        }
        let domain = Domain::parse(domain).map_err(|_| bad("invalid domain"))?;
        Ok(Self(format!("{}@{}", local.to_ascii_lowercase(), domain.0)))
    }
    /// The full address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The domain part.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mail domain, lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Domain(String);

impl Domain {
    /// Validates a DNS name of letters, digits, `-` and dots.
    pub fn parse(name: &str) -> Result<Self, InvalidName> {
        let bad = |reason| InvalidName {
            what: "domain",
            reason,
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || name.len() > 253 {
            return Err(bad("must be 1 to 253 characters"));
        }
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(bad("each label must be 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                || label.starts_with('-')
                || label.ends_with('-')
            {
                return Err(bad("labels are letters, digits and inner '-'"));
            }
        }
        Ok(Self(name))
    }
    /// The domain as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A JWS signing algorithm Stormproof issues and verifies. There is no
/// variant for `none` or any HMAC algorithm, so they cannot be represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    /// Ed25519 signatures (RFC 8037), the default.
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 section 3.4).
    #[serde(rename = "ES256")]
    Es256,
}

impl Alg {
    /// The `alg` header value.
    pub fn jws_name(self) -> &'static str {
        match self {
            Alg::EdDsa => "EdDSA",
            Alg::Es256 => "ES256",
        }
    }
    /// Parses an `alg` header value; anything but the two supported names is `None`.
    pub fn from_jws_name(name: &str) -> Option<Self> {
        match name {
            "EdDSA" => Some(Alg::EdDsa),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jws_name())
    }
}

/// A random identifier of `bytes` bytes of entropy, base64url without padding.
///
/// Used for token ids (jti), session ids, key ids, client ids and secrets.
pub fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names() {
        let cases: &[(&str, bool)] = &[
            ("acme", true),
            ("gov-1", true),
            ("", false),
            ("Acme", false),
            ("-acme", false),
            ("a/b", false),
            ("a.b", false),
        ];
        for (input, ok) in cases {
            assert_eq!(TenantName::parse(input).is_ok(), *ok, "{input}");
        }
    }

    #[test]
    fn emails() {
        let cases: &[(&str, Option<&str>)] = &[
            ("alice@Example.COM", Some("alice@example.com")),
            ("Bob.Smith@mail.gov", Some("bob.smith@mail.gov")),
            ("nobody", None),
            ("@example.com", None),
            ("a b@example.com", None),
            ("a@-bad.com", None),
        ];
        for (input, expect) in cases {
            assert_eq!(
                Email::parse(input).ok().as_ref().map(Email::as_str),
                *expect,
                "{input}"
            );
        }
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(random_id(16), random_id(16));
        assert_eq!(random_id(16).len(), 22);
    }
}
