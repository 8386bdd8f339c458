//! Why a token was refused, and what it claimed when it was.

use std::fmt;

use stormproof_types::TenantName;

/// Why a token or DPoP proof was refused. Each variant names one check of
/// the verification order, so a security event says exactly which defence
/// stopped the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// Not a compact JWS, not canonical base64url, not strict JSON, or a
    /// claim of the wrong type or duplicated.
    Malformed,
    /// Longer than the wire-format limit.
    TooLarge,
    /// `alg: none`, in any case.
    AlgNone,
    /// An HMAC algorithm: would let a public key act as a shared secret.
    HmacAlg,
    /// An algorithm other than EdDSA and ES256.
    UnsupportedAlg,
    /// The header's `alg` differs from the key record's.
    AlgMismatch,
    /// The header embeds or points to a key (`jwk`, `jku`, `x5u`, `x5c`, `x5t`).
    EmbeddedKey,
    /// The header has `crit`; no extension is understood.
    UnknownCrit,
    /// `typ` is not `at+jwt`.
    WrongType,
    /// `iss` is not this server's issuer URL for a valid tenant name.
    UnknownIssuer,
    /// `tid` differs from the tenant of `iss`.
    TenantMismatch,
    /// The header has no `kid`.
    MissingKid,
    /// No key with that `kid` exists in any tenant.
    UnknownKey,
    /// The `kid` exists, but belongs to another tenant.
    CrossTenantKey,
    /// The key is `next` or `retired`.
    KeyNotActive,
    /// The key was revoked as compromised.
    KeyCompromised,
    /// The key is past its `not_after`.
    KeyExpired,
    /// The signature does not verify under the tenant's key.
    BadSignature,
    /// `aud` does not include this server.
    WrongAudience,
    /// Past `exp`.
    Expired,
    /// Before `nbf`.
    NotYetValid,
    /// `iat` is in the future.
    IssuedInFuture,
    /// `exp - iat` exceeds the lifetime cap.
    LifetimeTooLong,
    /// `iat` falls outside the window in which the key could sign.
    IatOutsideKeyValidity,
    /// Validly signed, but the ledger has no such token: a forgery by
    /// definition, since every issued token is recorded before it is returned.
    NeverIssued,
    /// The ledger entry differs from the presented claims.
    LedgerMismatch,
    /// The token was revoked.
    Revoked,
    /// The sign-in session is unknown or revoked.
    SessionRevoked,
    /// The user is disabled.
    UserDisabled,
    /// The client is blocked.
    ClientBlocked,
    /// A DPoP-bound token was presented without a DPoP proof or as Bearer.
    DpopRequired,
    /// The DPoP proof is malformed, badly signed, for another request, or stale.
    DpopInvalid,
    /// The DPoP proof's `jti` was already used.
    DpopReplay,
    /// The DPoP proof is for another key or another access token, or a
    /// proof was presented for a token that is not DPoP-bound.
    DpopMismatch,
    /// The store could not be read, so the token could not be checked
    /// against the ledger. Refused because the verifier fails closed; not a
    /// forgery.
    Unavailable,
}

const ALL: &[RejectReason] = &[
    RejectReason::Malformed,
    RejectReason::TooLarge,
    RejectReason::AlgNone,
    RejectReason::HmacAlg,
    RejectReason::UnsupportedAlg,
    RejectReason::AlgMismatch,
    RejectReason::EmbeddedKey,
    RejectReason::UnknownCrit,
    RejectReason::WrongType,
    RejectReason::UnknownIssuer,
    RejectReason::TenantMismatch,
    RejectReason::MissingKid,
    RejectReason::UnknownKey,
    RejectReason::CrossTenantKey,
    RejectReason::KeyNotActive,
    RejectReason::KeyCompromised,
    RejectReason::KeyExpired,
    RejectReason::BadSignature,
    RejectReason::WrongAudience,
    RejectReason::Expired,
    RejectReason::NotYetValid,
    RejectReason::IssuedInFuture,
    RejectReason::LifetimeTooLong,
    RejectReason::IatOutsideKeyValidity,
    RejectReason::NeverIssued,
    RejectReason::LedgerMismatch,
    RejectReason::Revoked,
    RejectReason::SessionRevoked,
    RejectReason::UserDisabled,
    RejectReason::ClientBlocked,
    RejectReason::DpopRequired,
    RejectReason::DpopInvalid,
    RejectReason::DpopReplay,
    RejectReason::DpopMismatch,
    RejectReason::Unavailable,
];

impl RejectReason {
    /// The snake_case name used in security events, logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::TooLarge => "too_large",
            RejectReason::AlgNone => "alg_none",
            RejectReason::HmacAlg => "hmac_alg",
            RejectReason::UnsupportedAlg => "unsupported_alg",
            RejectReason::AlgMismatch => "alg_mismatch",
            RejectReason::EmbeddedKey => "embedded_key",
            RejectReason::UnknownCrit => "unknown_crit",
            RejectReason::WrongType => "wrong_type",
            RejectReason::UnknownIssuer => "unknown_issuer",
            RejectReason::TenantMismatch => "tenant_mismatch",
            RejectReason::MissingKid => "missing_kid",
            RejectReason::UnknownKey => "unknown_key",
            RejectReason::CrossTenantKey => "cross_tenant_key",
            RejectReason::KeyNotActive => "key_not_active",
            RejectReason::KeyCompromised => "key_compromised",
            RejectReason::KeyExpired => "key_expired",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::WrongAudience => "wrong_audience",
            RejectReason::Expired => "expired",
            RejectReason::NotYetValid => "not_yet_valid",
            RejectReason::IssuedInFuture => "issued_in_future",
            RejectReason::LifetimeTooLong => "lifetime_too_long",
            RejectReason::IatOutsideKeyValidity => "iat_outside_key_validity",
            RejectReason::NeverIssued => "never_issued",
            RejectReason::LedgerMismatch => "ledger_mismatch",
            RejectReason::Revoked => "revoked",
            RejectReason::SessionRevoked => "session_revoked",
            RejectReason::UserDisabled => "user_disabled",
            RejectReason::ClientBlocked => "client_blocked",
            RejectReason::DpopRequired => "dpop_required",
            RejectReason::DpopInvalid => "dpop_invalid",
            RejectReason::DpopReplay => "dpop_replay",
            RejectReason::DpopMismatch => "dpop_mismatch",
            RejectReason::Unavailable => "unavailable",
        }
    }

    /// Whether the rejection means someone holds or fakes signing power:
    /// a token that passed, or tried to dodge, the structural checks and
    /// names a key it may not use, or a valid signature over claims the
    /// issuer never produced. These deserve an alert, not just a counter.
    pub fn is_forgery(&self) -> bool {
        matches!(
            self,
            RejectReason::NeverIssued
                | RejectReason::LedgerMismatch
                | RejectReason::CrossTenantKey
                | RejectReason::KeyCompromised
                | RejectReason::KeyExpired
                | RejectReason::KeyNotActive
                | RejectReason::BadSignature
                | RejectReason::AlgNone
                | RejectReason::HmacAlg
                | RejectReason::EmbeddedKey
                | RejectReason::AlgMismatch
                | RejectReason::UnknownKey
        )
    }

    /// Every reason, in verification order.
    pub fn all() -> &'static [RejectReason] {
        ALL
    }

    /// Position in [`RejectReason::all`], for the counter array.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused token, with what it claimed (unverified, truncated), so the
/// security event can say who was impersonated with which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why it was refused.
    pub reason: RejectReason,
    /// The tenant named by `iss` (or `tid` when `iss` is unusable).
    pub tenant: Option<TenantName>,
    /// The header's `kid`.
    pub kid: Option<String>,
    /// The `jti` claim.
    pub jti: Option<String>,
    /// The `sub` claim.
    pub subject: Option<String>,
    /// The `client_id` claim.
    pub client_id: Option<String>,
    /// The `sid` claim.
    pub session: Option<String>,
}

impl Rejection {
    /// A rejection with nothing known about the claims.
    pub fn new(reason: RejectReason) -> Self {
        Self {
            reason,
            tenant: None,
            kid: None,
            jti: None,
            subject: None,
            client_id: None,
            session: None,
        }
    }
}

impl fmt::Display for Rejection {
    // Only the reason: the claims are attacker-controlled and belong in the
    // structured event, not in a message that may reach a client.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason.as_str())
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for (i, reason) in RejectReason::all().iter().enumerate() {
            assert_eq!(reason.index(), i, "{reason:?}");
            assert!(names.insert(reason.as_str()), "{reason:?}");
            assert!(
                reason
                    .as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }

    #[test]
    fn display_is_the_reason_only() {
        let mut rejection = Rejection::new(RejectReason::NeverIssued);
        rejection.subject = Some("alice".into());
        assert_eq!(rejection.to_string(), "never_issued");
    }
}
