//! Minting: sessions, access tokens, refresh tokens and ID tokens, each
//! written to the ledger before it is returned.

use serde_json::json;
use sha2::{Digest, Sha256, Sha512};
use stormproof_jws::{AccessClaims, Audience, Confirmation, IdClaims};
use stormproof_store::{SessionRecord, TokenKind, TokenRecord};
use stormproof_types::{Alg, TenantName, UnixTime, random_id};
use zeroize::Zeroizing;

use crate::accounts::sha256;
use crate::{ErrorKind, Issuer, Result, invalid};

/// Where an issuing request came from, for the ledger and security events.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// Source address.
    pub ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
}

/// What an access token is for.
#[derive(Debug, Clone)]
pub struct AccessGrant {
    /// Tenant.
    pub tenant: TenantName,
    /// Subject: user id, or client id for client credentials.
    pub subject: String,
    /// The sign-in session the token derives from.
    pub sid: String,
    /// Client.
    pub client_id: String,
    /// Space-separated scope.
    pub scope: String,
    /// DPoP key thumbprint to bind the token to.
    pub jkt: Option<String>,
    /// The token this one was derived from.
    pub parent: Option<String>,
    /// Lifetime in seconds; the configured default when `None`, never above the cap.
    pub lifetime: Option<i64>,
}

/// A minted access token.
#[derive(Debug, Clone)]
pub struct IssuedAccess {
    /// The compact JWS.
    pub token: String,
    /// Its id.
    pub jti: String,
    /// Issued at.
    pub iat: UnixTime,
    /// Expires at.
    pub exp: UnixTime,
    /// The signing key.
    pub kid: String,
}

/// Prefix of opaque refresh tokens, so leaked ones are easy to recognise
/// in logs and by secret scanners.
pub(crate) const REFRESH_PREFIX: &str = "sprt_";

impl Issuer {
    /// Records a sign-in session.
    pub fn start_session(
        &self,
        tenant: &TenantName,
        subject: &str,
        client_id: &str,
        amr: &[&str],
        request: &RequestInfo,
    ) -> Result<SessionRecord> {
        let session = SessionRecord {
            tenant: tenant.clone(),
            sid: random_id(16),
            subject: subject.to_owned(),
            client_id: client_id.to_owned(),
            auth_time: self.now(),
            amr: amr.iter().map(|s| (*s).to_owned()).collect(),
            ip: request.ip.clone(),
            user_agent: request.user_agent.clone(),
            revoked_at: None,
        };
        self.store.create_session(&session)?;
        Ok(session)
    }

    /// Mints an access token (RFC 9068) and records it in the ledger first.
    #[tracing::instrument(skip_all, fields(tenant = %grant.tenant, client_id = %grant.client_id))]
    pub fn issue_access(&self, grant: &AccessGrant, request: &RequestInfo) -> Result<IssuedAccess> {
        let lifetime = grant
            .lifetime
            .unwrap_or(self.config.access_token_lifetime)
            .clamp(1, self.config.max_token_lifetime);
        let (key, signer) = self.active_signer(&grant.tenant)?;
        let iat = self.now();
        let exp = iat + lifetime;
        let jti = random_id(16);
        let claims = AccessClaims {
            iss: self.issuer_url(&grant.tenant),
            sub: grant.subject.clone(),
            aud: Audience::One(self.config.public_url.clone()),
            exp,
            iat,
            nbf: None,
            jti: jti.clone(),
            tid: grant.tenant.to_string(),
            sid: grant.sid.clone(),
            client_id: grant.client_id.clone(),
            scope: grant.scope.clone(),
            cnf: grant.jkt.clone().map(|jkt| Confirmation { jkt }),
        };
        let header = json!({"alg": key.alg.jws_name(), "typ": "at+jwt", "kid": key.kid});
        let claims_json = serde_json::to_value(&claims).map_err(|e| invalid(e.to_string()))?;
        let token = stormproof_jws::encode(&header, &claims_json, |input| signer.sign(input))?;
        // The ledger entry is durable before anyone sees the token: a token
        // that is not in the ledger is, by definition, forged.
        self.store.record_token(&TokenRecord {
            tenant: grant.tenant.clone(),
            jti: jti.clone(),
            kind: TokenKind::Access,
            sub: grant.subject.clone(),
            sid: grant.sid.clone(),
            client_id: grant.client_id.clone(),
            scope: grant.scope.clone(),
            kid: Some(key.kid.clone()),
            iat,
            exp,
            parent: grant.parent.clone(),
            ip: request.ip.clone(),
            user_agent: request.user_agent.clone(),
            jkt: grant.jkt.clone(),
            secret_hash: None,
            used_at: None,
            revoked_at: None,
        })?;
        tracing::info!(message = "access token issued", jti = %jti, kid = %key.kid, exp);
        Ok(IssuedAccess {
            token,
            jti,
            iat,
            exp,
            kid: key.kid,
        })
    }

    /// Mints an opaque refresh token and records its hash in the ledger.
    pub(crate) fn issue_refresh(
        &self,
        grant: &AccessGrant,
        request: &RequestInfo,
    ) -> Result<Zeroizing<String>> {
        let value = Zeroizing::new(format!("{REFRESH_PREFIX}{}", random_id(32)));
        let iat = self.now();
        self.store.record_token(&TokenRecord {
            tenant: grant.tenant.clone(),
            jti: random_id(16),
            kind: TokenKind::Refresh,
            sub: grant.subject.clone(),
            sid: grant.sid.clone(),
            client_id: grant.client_id.clone(),
            scope: grant.scope.clone(),
            kid: None,
            iat,
            exp: iat + self.config.refresh_token_lifetime,
            parent: grant.parent.clone(),
            ip: request.ip.clone(),
            user_agent: request.user_agent.clone(),
            jkt: grant.jkt.clone(),
            secret_hash: Some(sha256(&value)),
            used_at: None,
            revoked_at: None,
        })?;
        Ok(value)
    }

    /// Mints an OpenID Connect ID token for `session`.
    pub(crate) fn issue_id_token(
        &self,
        session: &SessionRecord,
        audience: &str,
        nonce: Option<String>,
        access_token: &str,
    ) -> Result<String> {
        let user = self
            .store
            .user_by_id(&session.tenant, &session.subject)?
            .ok_or_else(|| ErrorKind::NotFound("user".into()))?;
        let (key, signer) = self.active_signer(&session.tenant)?;
        let iat = self.now();
        // at_hash: the left half of the hash that goes with the signing
        // algorithm (OIDC Core 3.1.3.6): SHA-256 for ES256, and SHA-512 for
        // EdDSA over Ed25519, as the OpenID working group settled it.
        let at_hash = match key.alg {
            Alg::Es256 => stormproof_jws::b64(&Sha256::digest(access_token.as_bytes())[..16]),
            Alg::EdDsa => stormproof_jws::b64(&Sha512::digest(access_token.as_bytes())[..32]),
        };
        let claims = IdClaims {
            iss: self.issuer_url(&session.tenant),
            sub: session.subject.clone(),
            aud: audience.to_owned(),
            exp: iat + self.config.access_token_lifetime,
            iat,
            auth_time: session.auth_time,
            nonce,
            sid: session.sid.clone(),
            at_hash: Some(at_hash),
            email: Some(user.email.to_string()),
            amr: session.amr.clone(),
        };
        let header = json!({"alg": key.alg.jws_name(), "typ": "JWT", "kid": key.kid});
        let claims = serde_json::to_value(&claims).map_err(|e| invalid(e.to_string()))?;
        Ok(stormproof_jws::encode(&header, &claims, |input| {
            signer.sign(input)
        })?)
    }

    /// Mints an access token for a user from the command line
    /// (`stormproof token issue`): a session with `amr: ["admin"]`, then a
    /// token through the same path and ledger as every other.
    pub fn issue_for_user(
        &self,
        email: &stormproof_types::Email,
        client_id: &str,
        scope: &str,
        lifetime: Option<i64>,
    ) -> Result<IssuedAccess> {
        let user = self.user(email)?;
        if !user.enabled {
            return Err(invalid(format!("user {email} is disabled")));
        }
        let client = self.store.client(&user.tenant, client_id)?.ok_or_else(|| {
            ErrorKind::NotFound(format!("client {client_id} in tenant {}", user.tenant))
        })?;
        if client.blocked {
            return Err(invalid(format!("client {client_id} is blocked")));
        }
        if client.require_dpop {
            return Err(invalid(format!(
                "client {client_id} requires DPoP-bound tokens"
            )));
        }
        let scope =
            crate::oauth::check_operator_scope(scope).map_err(|e| invalid(e.error_description))?;
        let request = RequestInfo {
            ip: None,
            user_agent: Some("stormproof-cli".into()),
        };
        let session =
            self.start_session(&user.tenant, &user.id, client_id, &["admin"], &request)?;
        let issued = self.issue_access(
            &AccessGrant {
                tenant: user.tenant.clone(),
                subject: user.id.clone(),
                sid: session.sid,
                client_id: client_id.to_owned(),
                scope,
                jkt: None,
                parent: None,
                lifetime,
            },
            &request,
        )?;
        self.security_event(
            Some(&user.tenant),
            "token_issued",
            "admin_cli",
            json!({"jti": issued.jti, "user": user.id, "client_id": client_id}),
            Some(&request),
        );
        Ok(issued)
    }
}
