//! What a verified token grants, and what the caller knows about the request.

use std::sync::Arc;

use stormproof_types::{TenantName, UnixTime};

/// The authorization scheme of the request's `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: DPoP <token>` (RFC 9449 section 7.1).
    Dpop,
}

/// Which checks apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// A resource request: every check, including the DPoP proof of a bound token.
    Resource,
    /// Token introspection (RFC 7662): every check except requiring a DPoP
    /// proof, since the introspecting party is not the token's holder.
    Introspection,
}

/// The request a token is presented with.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// HTTP method, compared exactly with the proof's `htm`.
    pub method: &'a str,
    /// Full request URL without query, compared with the proof's `htu`.
    pub url: &'a str,
    /// The `DPoP` header, if any.
    pub dpop: Option<&'a str>,
    /// The scheme of the `Authorization` header.
    pub scheme: AuthScheme,
    /// Source address, for the security event.
    pub ip: Option<&'a str>,
    /// User agent, for the security event.
    pub user_agent: Option<&'a str>,
    /// Resource request or introspection.
    pub mode: VerifyMode,
}

/// The authenticated party behind a verified access token.
///
/// Only the verifier constructs one, so holding a `Principal` is proof that
/// every check passed. Cloning is cheap: the fields are shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(Arc<Inner>);

#[derive(Debug, PartialEq, Eq)]
struct Inner {
    tenant: TenantName,
    subject: String,
    client_id: String,
    session_id: String,
    token_id: String,
    scope: String,
    expires_at: UnixTime,
    issued_at: UnixTime,
    jkt: Option<String>,
}

impl Principal {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        tenant: TenantName,
        subject: String,
        client_id: String,
        session_id: String,
        token_id: String,
        scope: String,
        expires_at: UnixTime,
        issued_at: UnixTime,
        jkt: Option<String>,
    ) -> Self {
        Self(Arc::new(Inner {
            tenant,
            subject,
            client_id,
            session_id,
            token_id,
            scope,
            expires_at,
            issued_at,
            jkt,
        }))
    }

    /// The tenant that issued the token.
    pub fn tenant(&self) -> &TenantName {
        &self.0.tenant
    }
    /// The user id, or the client id for client-credentials tokens.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }
    /// The OAuth client the token was issued to.
    pub fn client_id(&self) -> &str {
        &self.0.client_id
    }
    /// The sign-in session (`sid`).
    pub fn session_id(&self) -> &str {
        &self.0.session_id
    }
    /// The token id (`jti`).
    pub fn token_id(&self) -> &str {
        &self.0.token_id
    }
    /// The space-separated granted scope.
    pub fn scope(&self) -> &str {
        &self.0.scope
    }
    /// Expiry.
    pub fn expires_at(&self) -> UnixTime {
        self.0.expires_at
    }
    /// Issue time.
    pub fn issued_at(&self) -> UnixTime {
        self.0.issued_at
    }
    /// The DPoP key thumbprint the token is bound to, if it is.
    pub fn jkt(&self) -> Option<&str> {
        self.0.jkt.as_deref()
    }
    /// Whether `scope` was granted, compared as a whole word.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0
            .scope
            .split(' ')
            .any(|granted| !granted.is_empty() && granted == scope)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_whole_words() {
        let tenant = TenantName::parse("acme").unwrap();
        let p = Principal::new(
            tenant,
            "u".into(),
            "c".into(),
            "s".into(),
            "j".into(),
            "mail.read  mail.send".into(),
            2,
            1,
            None,
        );
        assert!(p.has_scope("mail.read"));
        assert!(p.has_scope("mail.send"));
        assert!(!p.has_scope("mail"));
        assert!(!p.has_scope(""));
    }
}
