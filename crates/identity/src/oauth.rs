//! OAuth 2.0 and OpenID Connect grants: authorization code with PKCE,
//! refresh with rotation and reuse detection, device authorization,
//! client credentials, and revocation. Pure functions of their inputs plus
//! the store; the HTTP front only translates.

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use stormproof_store::{
    AuthCodeRecord, ClientKind, ClientRecord, CodeUse, DeviceCodeRecord, DeviceStatus, RefreshUse,
    TokenKind, UserRecord,
};
use stormproof_types::{TenantName, random_id};

use crate::accounts::sha256;
use crate::tokens::REFRESH_PREFIX;
use crate::{AccessGrant, Issuer, RequestInfo, SUPPORTED_SCOPES};

/// An OAuth error response (RFC 6749 section 5.2 and extensions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthError {
    /// The error code, e.g. `invalid_grant`.
    pub error: &'static str,
    /// A human-readable description that reveals nothing an attacker could use.
    pub error_description: String,
}

impl OAuthError {
    pub(crate) fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: description.into(),
        }
    }
    fn server(e: crate::Error) -> Self {
        tracing::error!(message = "token endpoint failure", error = %e);
        Self::new("server_error", "the server could not complete the request")
    }
}

/// A successful token response (RFC 6749 section 5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for sender-constrained tokens.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Granted scope.
    pub scope: String,
    /// A refresh token, for interactive grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// An ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// What the client presents when redeeming an authorization code.
#[derive(Debug, Clone, Copy)]
pub struct CodeExchange<'a> {
    /// The code.
    pub code: &'a str,
    /// The redirect URI of the authorization request.
    pub redirect_uri: Option<&'a str>,
    /// The PKCE verifier.
    pub code_verifier: Option<&'a str>,
}

/// The tokens of one interactive grant: what to mint and how it links.
struct Interactive {
    sid: String,
    scope: String,
    nonce: Option<String>,
    jkt: Option<String>,
    parent: Option<String>,
}

/// The parameters of an authorization request.
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
pub struct AuthorizeRequest {
    /// `response_type`; only `code`.
    pub response_type: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `redirect_uri`, compared exactly with the registered ones.
    pub redirect_uri: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `state`, returned unchanged.
    pub state: Option<String>,
    /// `nonce`, put in the ID token.
    pub nonce: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// PKCE method; only `S256`.
    pub code_challenge_method: Option<String>,
}

/// An authorization request that passed validation.
#[derive(Debug, Clone)]
pub struct ValidatedAuthorize {
    /// The client.
    pub client: ClientRecord,
    /// The redirect URI to answer at.
    pub redirect_uri: String,
    /// Granted scope.
    pub scope: String,
    /// `state`.
    pub state: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// PKCE challenge.
    pub code_challenge: String,
}

/// Why an authorization request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or redirect URI is wrong: show an error page, never redirect
    /// (RFC 6749 section 4.1.2.1), or the server becomes an open redirector.
    Fatal(String),
    /// Redirect back with this error.
    Redirect {
        /// Where to send it.
        redirect_uri: String,
        /// The error.
        error: OAuthError,
        /// `state`.
        state: Option<String>,
    },
}

/// Where a password sign-in stands.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Wrong address or password, or a disabled user.
    Failed,
    /// The password was right and a TOTP code is needed.
    NeedsTotp(UserRecord),
    /// Signed in with these methods.
    Done(UserRecord, Vec<&'static str>),
}

/// A device authorization response (RFC 8628 section 3.2).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceAuthorization {
    /// The code the device polls with.
    pub device_code: String,
    /// The code the user types.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same, with the user code filled in.
    pub verification_uri_complete: String,
    /// Seconds until the codes expire.
    pub expires_in: i64,
    /// Minimum seconds between polls.
    pub interval: i64,
}

/// Normalises and checks a requested scope against what Stormproof offers.
pub(crate) fn check_scope(scope: &str) -> Result<String, OAuthError> {
    check_scope_in(scope, &[SUPPORTED_SCOPES])
}

/// The same, for a token an operator mints, which may also carry
/// [`OPERATOR_SCOPES`](crate::OPERATOR_SCOPES).
pub(crate) fn check_operator_scope(scope: &str) -> Result<String, OAuthError> {
    check_scope_in(scope, &[SUPPORTED_SCOPES, crate::OPERATOR_SCOPES])
}

fn check_scope_in(scope: &str, allowed: &[&[&str]]) -> Result<String, OAuthError> {
    let mut granted: Vec<&str> = Vec::new();
    for item in scope.split_ascii_whitespace() {
        if !allowed.iter().any(|set| set.contains(&item)) {
            return Err(OAuthError::new(
                "invalid_scope",
                format!("unsupported scope {item}"),
            ));
        }
        if !granted.contains(&item) {
            granted.push(item);
        }
    }
    Ok(granted.join(" "))
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split_ascii_whitespace().any(|s| s == wanted)
}

/// The unambiguous alphabet of user codes (RFC 8628 section 6.1): no vowels,
/// so no words, and no look-alike characters.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

fn new_user_code() -> String {
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        let index = rand::Rng::gen_range(&mut rand::rngs::OsRng, 0..USER_CODE_ALPHABET.len());
        code.push(char::from(USER_CODE_ALPHABET[index]));
    }
    code
}

/// Puts a user-typed code in canonical form: upper case, with the dash.
pub fn normalize_user_code(input: &str) -> String {
    let letters: String = input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.len() == 8 {
        format!("{}-{}", &letters[..4], &letters[4..])
    } else {
        letters
    }
}

impl Issuer {
    /// Authenticates a client at the token, introspection or revocation
    /// endpoint. Blocked clients are refused.
    pub fn authenticate_client(
        &self,
        tenant: &TenantName,
        client_id: &str,
        secret: Option<&str>,
    ) -> Result<ClientRecord, OAuthError> {
        let client = self
            .store
            .client(tenant, client_id)
            .map_err(|e| OAuthError::server(e.into()))?;
        match client {
            Some(client) if !client.blocked && Self::client_secret_matches(&client, secret) => {
                Ok(client)
            }
            _ => {
                self.security_event(
                    Some(tenant),
                    "client_auth_failed",
                    "invalid_client",
                    json!({"client_id": client_id}),
                    None,
                );
                Err(OAuthError::new(
                    "invalid_client",
                    "client authentication failed",
                ))
            }
        }
    }

    /// Validates an authorization request before showing the sign-in page.
    pub fn validate_authorize(
        &self,
        tenant: &TenantName,
        request: &AuthorizeRequest,
    ) -> Result<ValidatedAuthorize, AuthorizeError> {
        let client_id = request
            .client_id
            .as_deref()
            .ok_or(AuthorizeError::Fatal("client_id is missing".into()))?;
        let client = match self.store.client(tenant, client_id) {
            Ok(Some(client)) if !client.blocked => client,
            _ => return Err(AuthorizeError::Fatal("unknown client".into())),
        };
        let redirect_uri = request
            .redirect_uri
            .as_deref()
            .ok_or(AuthorizeError::Fatal("redirect_uri is missing".into()))?;
        // Exact string comparison, no prefix or pattern matching: the
        // redirect URI is where the code goes.
        if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
            return Err(AuthorizeError::Fatal(
                "redirect_uri is not registered for this client".into(),
            ));
        }
        let fail = |error: &'static str, description: &str| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.to_owned(),
            error: OAuthError::new(error, description),
            state: request.state.clone(),
        };
        if request.response_type.as_deref() != Some("code") {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        let challenge = request.code_challenge.as_deref().unwrap_or_default();
        if request.code_challenge_method.as_deref() != Some("S256") {
            return Err(fail(
                "invalid_request",
                "PKCE with code_challenge_method=S256 is required",
            ));
        }
        // A S256 challenge is 32 bytes, base64url: 43 characters.
        if challenge.len() != 43 || stormproof_jws::b64_decode(challenge).is_err() {
            return Err(fail(
                "invalid_request",
                "code_challenge must be a base64url SHA-256 hash",
            ));
        }
        let scope = check_scope(request.scope.as_deref().unwrap_or("openid")).map_err(|e| {
            AuthorizeError::Redirect {
                redirect_uri: redirect_uri.to_owned(),
                error: e,
                state: request.state.clone(),
            }
        })?;
        Ok(ValidatedAuthorize {
            client,
            redirect_uri: redirect_uri.to_owned(),
            scope,
            state: request.state.clone(),
            nonce: request.nonce.clone(),
            code_challenge: challenge.to_owned(),
        })
    }

    /// Checks the first sign-in step: address and account password.
    pub fn login(
        &self,
        tenant: &TenantName,
        email: &str,
        password: &str,
        request: &RequestInfo,
    ) -> LoginOutcome {
        match self.check_password(tenant, email, password) {
            Ok(Some(user)) if user.totp_sealed.is_some() => LoginOutcome::NeedsTotp(user),
            Ok(Some(user)) => LoginOutcome::Done(user, vec!["pwd"]),
            Ok(None) => {
                self.security_event(
                    Some(tenant),
                    "sign_in_failed",
                    "bad_credentials",
                    json!({"email": email}),
                    Some(request),
                );
                LoginOutcome::Failed
            }
            Err(error) => {
                tracing::error!(message = "sign-in check failed", %error);
                LoginOutcome::Failed
            }
        }
    }

    /// Finishes a sign-in for an authorization request: records the session
    /// and returns a single-use authorization code.
    pub fn complete_authorize(
        &self,
        tenant: &TenantName,
        request: &ValidatedAuthorize,
        user: &UserRecord,
        amr: &[&str],
        info: &RequestInfo,
    ) -> crate::Result<String> {
        let session = self.start_session(tenant, &user.id, &request.client.client_id, amr, info)?;
        let code = random_id(32);
        self.store.insert_auth_code(&AuthCodeRecord {
            tenant: tenant.clone(),
            code_hash: sha256(&code),
            client_id: request.client.client_id.clone(),
            sid: session.sid.clone(),
            user_id: user.id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            scope: request.scope.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            expires: self.now() + self.config.auth_code_lifetime,
        })?;
        self.security_event(
            Some(tenant),
            "sign_in",
            "success",
            json!({"user": user.id, "sid": session.sid, "client_id": request.client.client_id, "amr": amr}),
            Some(info),
        );
        Ok(code)
    }

    fn token_type(jkt: &Option<String>) -> &'static str {
        if jkt.is_some() { "DPoP" } else { "Bearer" }
    }

    fn check_dpop_policy(client: &ClientRecord, jkt: &Option<String>) -> Result<(), OAuthError> {
        if client.require_dpop && jkt.is_none() {
            return Err(OAuthError::new(
                "invalid_dpop_proof",
                "this client must present a DPoP proof",
            ));
        }
        Ok(())
    }

    /// Issues the access, refresh and ID tokens of an interactive grant.
    fn interactive_tokens(
        &self,
        tenant: &TenantName,
        client: &ClientRecord,
        issue: Interactive,
        info: &RequestInfo,
    ) -> Result<TokenResponse, OAuthError> {
        let Interactive {
            sid: session_sid,
            scope,
            nonce,
            jkt,
            parent,
        } = issue;
        let refreshed = parent.is_some();
        let scope = scope.as_str();
        let session = self
            .store
            .session(tenant, &session_sid)
            .map_err(|e| OAuthError::server(e.into()))?
            .filter(|s| s.revoked_at.is_none())
            .ok_or_else(|| OAuthError::new("invalid_grant", "the sign-in session has ended"))?;
        let grant = AccessGrant {
            tenant: tenant.clone(),
            subject: session.subject.clone(),
            sid: session.sid.clone(),
            client_id: client.client_id.clone(),
            scope: scope.to_owned(),
            jkt: jkt.clone(),
            parent,
            lifetime: None,
        };
        let access = self
            .issue_access(&grant, info)
            .map_err(OAuthError::server)?;
        let refresh_grant = AccessGrant {
            parent: Some(access.jti.clone()),
            ..grant
        };
        let refresh = self
            .issue_refresh(&refresh_grant, info)
            .map_err(OAuthError::server)?;
        self.security_event(
            Some(tenant),
            "token_issued",
            if refreshed { "refresh" } else { "grant" },
            json!({"jti": access.jti, "user": session.subject, "sid": session.sid, "client_id": client.client_id, "scope": scope}),
            Some(info),
        );
        let id_token = if has_scope(scope, "openid") {
            Some(
                self.issue_id_token(&session, &client.client_id, nonce, &access.token)
                    .map_err(OAuthError::server)?,
            )
        } else {
            None
        };
        Ok(TokenResponse {
            access_token: access.token,
            token_type: Self::token_type(&jkt),
            expires_in: access.exp - access.iat,
            scope: scope.to_owned(),
            refresh_token: Some(refresh.to_string()),
            id_token,
        })
    }

    /// The authorization-code grant with PKCE (RFC 6749 section 4.1.3, RFC 7636).
    pub fn exchange_code(
        &self,
        tenant: &TenantName,
        client: &ClientRecord,
        exchange: CodeExchange<'_>,
        jkt: Option<String>,
        info: &RequestInfo,
    ) -> Result<TokenResponse, OAuthError> {
        let CodeExchange {
            code,
            redirect_uri,
            code_verifier,
        } = exchange;
        Self::check_dpop_policy(client, &jkt)?;
        let bad = || {
            OAuthError::new(
                "invalid_grant",
                "the authorization code is invalid or expired",
            )
        };
        let record = match self
            .store
            .take_auth_code(tenant, &sha256(code), self.now())
            .map_err(|e| OAuthError::server(e.into()))?
        {
            CodeUse::Fresh(record) => record,
            CodeUse::Reused { sid } => {
                // A code used twice was intercepted: end everything it produced.
                let _ = self.store.revoke_session(tenant, &sid, self.now());
                self.security_event(
                    Some(tenant),
                    "auth_code_reused",
                    "replay",
                    json!({"sid": sid, "client_id": client.client_id}),
                    Some(info),
                );
                return Err(bad());
            }
            CodeUse::Unknown => return Err(bad()),
        };
        if record.client_id != client.client_id
            || redirect_uri != Some(record.redirect_uri.as_str())
        {
            return Err(bad());
        }
        let verifier = code_verifier
            .ok_or_else(|| OAuthError::new("invalid_request", "code_verifier is required"))?;
        if !(43..=128).contains(&verifier.len()) {
            return Err(OAuthError::new(
                "invalid_request",
                "code_verifier must be 43 to 128 characters",
            ));
        }
        let computed = stormproof_jws::b64(Sha256::digest(verifier.as_bytes()));
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            computed.as_bytes(),
            record.code_challenge.as_bytes(),
        )) {
            return Err(bad());
        }
        let issue = Interactive {
            sid: record.sid,
            scope: record.scope,
            nonce: record.nonce,
            jkt,
            parent: None,
        };
        self.interactive_tokens(tenant, client, issue, info)
    }

    /// The refresh-token grant. Each refresh token works once and is
    /// replaced; presenting a used one again revokes the whole sign-in
    /// session, because one of the two presenters is a thief.
    pub fn refresh(
        &self,
        tenant: &TenantName,
        client: &ClientRecord,
        refresh_token: &str,
        scope: Option<&str>,
        jkt: Option<String>,
        info: &RequestInfo,
    ) -> Result<TokenResponse, OAuthError> {
        let bad = || {
            OAuthError::new(
                "invalid_grant",
                "the refresh token is invalid, expired or revoked",
            )
        };
        if !refresh_token.starts_with(REFRESH_PREFIX) {
            return Err(bad());
        }
        let hash = sha256(refresh_token);
        let record = match self
            .store
            .use_refresh_token(tenant, &hash, self.now())
            .map_err(|e| OAuthError::server(e.into()))?
        {
            RefreshUse::Fresh(record) => record,
            RefreshUse::Reused(record) => {
                let _ = self.store.revoke_session(tenant, &record.sid, self.now());
                tracing::warn!(message = "refresh token reused; session revoked", %tenant, sid = %record.sid);
                self.security_event(
                    Some(tenant),
                    "refresh_token_reused",
                    "replay",
                    json!({"sid": record.sid, "jti": record.jti, "client_id": record.client_id, "sub": record.sub}),
                    Some(info),
                );
                return Err(bad());
            }
            RefreshUse::Unknown => return Err(bad()),
        };
        if record.client_id != client.client_id {
            return Err(bad());
        }
        // A token bound to a key stays bound to it (RFC 9449 section 5).
        if record.jkt.is_some() && record.jkt != jkt {
            return Err(OAuthError::new(
                "invalid_dpop_proof",
                "the refresh token is bound to another key",
            ));
        }
        Self::check_dpop_policy(client, &jkt)?;
        let scope = match scope {
            // A refresh may narrow the scope, never widen it.
            Some(requested) => {
                let requested = check_scope(requested)?;
                if !requested
                    .split_ascii_whitespace()
                    .all(|s| has_scope(&record.scope, s))
                {
                    return Err(OAuthError::new(
                        "invalid_scope",
                        "a refresh cannot widen the scope",
                    ));
                }
                requested
            }
            None => record.scope.clone(),
        };
        let issue = Interactive {
            sid: record.sid,
            scope,
            nonce: None,
            jkt: jkt.or(record.jkt),
            parent: Some(record.jti),
        };
        self.interactive_tokens(tenant, client, issue, info)
    }

    /// Starts a device authorization (RFC 8628 section 3.1).
    pub fn device_authorize(
        &self,
        tenant: &TenantName,
        client: &ClientRecord,
        scope: Option<&str>,
    ) -> Result<DeviceAuthorization, OAuthError> {
        let scope = check_scope(scope.unwrap_or("openid"))?;
        let device_code = random_id(32);
        let user_code = new_user_code();
        self.store
            .insert_device_code(&DeviceCodeRecord {
                tenant: tenant.clone(),
                device_code_hash: sha256(&device_code),
                user_code: user_code.clone(),
                client_id: client.client_id.clone(),
                scope,
                expires: self.now() + self.config.device_code_lifetime,
                status: DeviceStatus::Pending,
                user_id: None,
                sid: None,
                last_poll: None,
            })
            .map_err(|e| OAuthError::server(e.into()))?;
        let verification_uri = format!("{}/device", self.issuer_url(tenant));
        Ok(DeviceAuthorization {
            verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
            verification_uri,
            device_code,
            user_code,
            expires_in: self.config.device_code_lifetime,
            interval: self.config.device_poll_interval,
        })
    }

    /// The pending device authorization for a typed user code, if it is live.
    pub fn pending_device(&self, tenant: &TenantName, user_code: &str) -> Option<DeviceCodeRecord> {
        let record = self
            .store
            .device_by_user_code(tenant, &normalize_user_code(user_code))
            .ok()??;
        (record.status == DeviceStatus::Pending && record.expires > self.now()).then_some(record)
    }

    /// The user approved (`Some`) or denied (`None`) a device on the verification page.
    pub fn decide_device(
        &self,
        tenant: &TenantName,
        user_code: &str,
        approval: Option<(&UserRecord, &[&str])>,
        info: &RequestInfo,
    ) -> crate::Result<()> {
        let record = self
            .pending_device(tenant, user_code)
            .ok_or_else(|| crate::ErrorKind::NotFound("pending device authorization".into()))?;
        match approval {
            Some((user, amr)) => {
                let session = self.start_session(tenant, &user.id, &record.client_id, amr, info)?;
                self.store.decide_device(
                    tenant,
                    &record.user_code,
                    Some((&user.id, &session.sid)),
                )?;
                self.security_event(
                    Some(tenant),
                    "sign_in",
                    "device_approved",
                    json!({"user": user.id, "sid": session.sid, "client_id": record.client_id}),
                    Some(info),
                );
            }
            None => self.store.decide_device(tenant, &record.user_code, None)?,
        }
        Ok(())
    }

    /// The device-code grant: the device's poll (RFC 8628 section 3.4).
    pub fn device_token(
        &self,
        tenant: &TenantName,
        client: &ClientRecord,
        device_code: &str,
        jkt: Option<String>,
        info: &RequestInfo,
    ) -> Result<TokenResponse, OAuthError> {
        Self::check_dpop_policy(client, &jkt)?;
        let now = self.now();
        let record = self
            .store
            .poll_device(tenant, &sha256(device_code), now)
            .map_err(|e| OAuthError::server(e.into()))?
            .filter(|r| r.client_id == client.client_id)
            .ok_or_else(|| OAuthError::new("invalid_grant", "unknown device code"))?;
        if record.expires <= now {
            return Err(OAuthError::new(
                "expired_token",
                "the device code has expired",
            ));
        }
        match record.status {
            DeviceStatus::Pending => {
                if record
                    .last_poll
                    .is_some_and(|last| now - last < self.config.device_poll_interval)
                {
                    return Err(OAuthError::new("slow_down", "polling too fast"));
                }
                Err(OAuthError::new(
                    "authorization_pending",
                    "the user has not yet approved",
                ))
            }
            DeviceStatus::Denied => Err(OAuthError::new(
                "access_denied",
                "the user denied the request",
            )),
            DeviceStatus::Consumed => Err(OAuthError::new(
                "invalid_grant",
                "the device code was already used",
            )),
            DeviceStatus::Approved => {
                let sid = record.sid.clone().ok_or_else(|| {
                    OAuthError::new("invalid_grant", "device approval is incomplete")
                })?;
                let issue = Interactive {
                    sid,
                    scope: record.scope,
                    nonce: None,
                    jkt,
                    parent: None,
                };
                self.interactive_tokens(tenant, client, issue, info)
            }
        }
    }

    /// The client-credentials grant, for confidential service clients. The
    /// client is the subject; each grant is its own session, so a service's
    /// tokens can be revoked and reported like a user's.
    pub fn client_credentials(
        &self,
        tenant: &TenantName,
        client: &ClientRecord,
        scope: Option<&str>,
        jkt: Option<String>,
        info: &RequestInfo,
    ) -> Result<TokenResponse, OAuthError> {
        if client.kind != ClientKind::Confidential {
            return Err(OAuthError::new(
                "unauthorized_client",
                "only confidential clients may use client credentials",
            ));
        }
        Self::check_dpop_policy(client, &jkt)?;
        let scope = check_scope(scope.unwrap_or(""))?;
        if has_scope(&scope, "openid") || has_scope(&scope, "offline_access") {
            return Err(OAuthError::new(
                "invalid_scope",
                "openid and offline_access need a user",
            ));
        }
        let session = self
            .start_session(
                tenant,
                &client.client_id,
                &client.client_id,
                &["client_secret"],
                info,
            )
            .map_err(OAuthError::server)?;
        let access = self
            .issue_access(
                &AccessGrant {
                    tenant: tenant.clone(),
                    subject: client.client_id.clone(),
                    sid: session.sid,
                    client_id: client.client_id.clone(),
                    scope: scope.clone(),
                    jkt: jkt.clone(),
                    parent: None,
                    lifetime: None,
                },
                info,
            )
            .map_err(OAuthError::server)?;
        self.security_event(
            Some(tenant),
            "token_issued",
            "client_credentials",
            json!({"jti": access.jti, "client_id": client.client_id, "scope": scope}),
            Some(info),
        );
        Ok(TokenResponse {
            access_token: access.token,
            token_type: Self::token_type(&jkt),
            expires_in: access.exp - access.iat,
            scope,
            refresh_token: None,
            id_token: None,
        })
    }

    /// Token revocation (RFC 7009). Revoking a refresh token ends its whole
    /// sign-in session, so the access tokens derived from it stop too.
    /// Unknown tokens and other clients' tokens are silently ignored, as the
    /// RFC requires.
    pub fn revoke_presented(
        &self,
        tenant: &TenantName,
        client: &ClientRecord,
        token: &str,
    ) -> crate::Result<()> {
        let now = self.now();
        let record = if token.starts_with(REFRESH_PREFIX) {
            self.store.token_by_secret(tenant, &sha256(token))?
        } else {
            // An access token: its jti names its ledger entry. The signature
            // does not matter here: a token not in the ledger revokes nothing.
            stormproof_jws::Compact::parse(token)
                .ok()
                .and_then(|c| stormproof_jws::AccessClaims::parse(&c.payload).ok())
                .map(|claims| self.store.token(tenant, &claims.jti))
                .transpose()?
                .flatten()
        };
        let Some(record) = record.filter(|r| r.client_id == client.client_id) else {
            return Ok(());
        };
        match record.kind {
            TokenKind::Refresh => self.store.revoke_session(tenant, &record.sid, now)?,
            TokenKind::Access => self.store.revoke_token(tenant, &record.jti, now)?,
        }
        self.security_event(
            Some(tenant),
            "token_revoked",
            "client_request",
            json!({"jti": record.jti, "sid": record.sid, "client_id": client.client_id}),
            None,
        );
        Ok(())
    }

    /// The ledger entry of a refresh token that may still be used: not
    /// exchanged, not revoked, not expired, its session alive.
    pub fn live_refresh_token(
        &self,
        tenant: &TenantName,
        token: &str,
    ) -> Option<stormproof_store::TokenRecord> {
        if !token.starts_with(REFRESH_PREFIX) {
            return None;
        }
        let record = self.store.token_by_secret(tenant, &sha256(token)).ok()??;
        let live = record.kind == TokenKind::Refresh
            && record.used_at.is_none()
            && record.revoked_at.is_none()
            && record.exp > self.now();
        let session_live = self
            .store
            .session(tenant, &record.sid)
            .ok()?
            .is_some_and(|s| s.revoked_at.is_none());
        (live && session_live).then_some(record)
    }

    /// Revokes a sign-in session and every token derived from it.
    pub fn revoke_session(&self, tenant: &TenantName, sid: &str) -> crate::Result<()> {
        self.store.revoke_session(tenant, sid, self.now())?;
        self.admin_event(tenant, "session_revoked", json!({"sid": sid}));
        Ok(())
    }

    /// Looks up the user behind a verified token's subject.
    pub fn user_by_id(&self, tenant: &TenantName, id: &str) -> crate::Result<Option<UserRecord>> {
        Ok(self.store.user_by_id(tenant, id)?)
    }

    /// Records a refused request for the security log.
    pub fn record_refusal(
        &self,
        tenant: &TenantName,
        kind: &str,
        reason: &str,
        detail: serde_json::Value,
        info: &RequestInfo,
    ) {
        self.security_event(Some(tenant), kind, reason, detail, Some(info));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("openid email", Ok("openid email")),
            ("openid  openid mail", Ok("openid mail")),
            ("", Ok("")),
            ("openid admin", Err("invalid_scope")),
            // Reading the audit log is an operator's grant, never OAuth's.
            ("openid audit", Err("invalid_scope")),
        ];
        for (input, expect) in cases {
            let got = check_scope(input);
            assert_eq!(
                got.as_deref().map_err(|e| e.error),
                expect.map(|s| s),
                "{input}"
            );
        }
        assert_eq!(
            check_operator_scope("audit mail").ok().as_deref(),
            Some("audit mail")
        );
        assert!(check_operator_scope("admin").is_err());
    }

    #[test]
    fn user_codes() {
        let code = new_user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(
            normalize_user_code(&code.to_lowercase().replace('-', " ")),
            code
        );
        assert!(
            code.chars()
                .all(|c| c == '-' || USER_CODE_ALPHABET.contains(&(c as u8)))
        );
    }
}
