//! Tenants, users, passwords, TOTP, app passwords and OAuth clients.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use stormproof_store::{
    AppPasswordRecord, ClientKind, ClientRecord, SecurityEventRecord, UserRecord,
};
use stormproof_types::{Domain, Email, TenantName, random_id};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::{ADMIN_CLIENT_ID, ErrorKind, Issuer, Result, invalid};

/// Passwords shorter than this are refused (NIST SP 800-63B's minimum).
pub const MIN_PASSWORD_LEN: usize = 8;
/// Passwords longer than this are refused before hashing, to bound the work
/// an attacker can make argon2 do.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// A freshly created app password; `password` is shown once and never stored.
#[derive(Debug)]
pub struct NewAppPassword {
    /// The record as stored.
    pub record: AppPasswordRecord,
    /// The password itself.
    pub password: Zeroizing<String>,
}

/// A freshly registered client; `secret` is shown once and never stored.
#[derive(Debug)]
pub struct NewClient {
    /// The record as stored.
    pub record: ClientRecord,
    /// The client secret, for confidential clients.
    pub secret: Option<Zeroizing<String>>,
}

/// A TOTP enrolment: the secret to load into an authenticator app.
#[derive(Debug)]
pub struct TotpEnrollment {
    /// The base32 secret.
    pub secret_base32: Zeroizing<String>,
    /// An `otpauth://` URI for QR codes.
    pub uri: Zeroizing<String>,
}

/// A password hash to compare against when the user does not exist, so an
/// unknown address costs the same time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password_unchecked("stormproof-timing-equaliser").unwrap_or_default())
}

fn hash_password_unchecked(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| invalid(format!("password hashing failed: {e}")))
}

/// Hashes a password with argon2id (the crate's default variant and the
/// OWASP-recommended parameters).
pub fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(invalid(format!(
            "passwords must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(invalid(format!(
            "passwords must be at most {MAX_PASSWORD_LEN} bytes"
        )));
    }
    hash_password_unchecked(password)
}

fn password_matches(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// SHA-256, for high-entropy secrets (client secrets, codes, refresh tokens)
/// where a slow hash buys nothing.
pub(crate) fn sha256(value: &str) -> Vec<u8> {
    Sha256::digest(value.as_bytes()).to_vec()
}

/// RFC 6238's time step, in seconds.
const TOTP_STEP: u64 = 30;

fn totp_context(tenant: &TenantName, user_id: &str) -> String {
    format!("totp/{tenant}/{user_id}")
}

impl Issuer {
    /// Creates a tenant with its domains, its admin client and its first keys.
    pub fn create_tenant(&self, name: &TenantName, domains: &[String]) -> Result<()> {
        if domains.is_empty() {
            return Err(invalid("a tenant needs at least one mail domain"));
        }
        let domains = domains
            .iter()
            .map(|d| {
                Domain::parse(d)
                    .map(|d| d.as_str().to_owned())
                    .map_err(|e| invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let now = self.now();
        self.store.create_tenant(name, &domains, now)?;
        self.store.create_client(&ClientRecord {
            tenant: name.clone(),
            client_id: ADMIN_CLIENT_ID.into(),
            name: "Stormproof administration".into(),
            kind: ClientKind::Public,
            secret_hash: None,
            redirect_uris: Vec::new(),
            require_dpop: false,
            blocked: false,
            created: now,
        })?;
        self.rotate_tenant_keys(name)?;
        self.admin_event(
            name,
            "tenant_created",
            serde_json::json!({"domains": domains}),
        );
        Ok(())
    }

    /// The tenant owning `email`'s domain.
    pub fn tenant_of(&self, email: &Email) -> Result<TenantName> {
        self.store
            .tenant_for_domain(email.domain())?
            .ok_or_else(|| invalid(format!("no tenant owns the domain {}", email.domain())))
    }

    /// Creates a user in the tenant owning the address's domain.
    pub fn create_user(&self, email: &Email, password: &str) -> Result<UserRecord> {
        let tenant = self.tenant_of(email)?;
        let user = UserRecord {
            tenant: tenant.clone(),
            id: random_id(12),
            email: email.clone(),
            password_hash: hash_password(password)?,
            totp_sealed: None,
            enabled: true,
            created: self.now(),
        };
        self.store.create_user(&user)?;
        self.admin_event(
            &tenant,
            "user_created",
            serde_json::json!({"user": user.id, "email": email}),
        );
        Ok(user)
    }

    /// Looks a user up by address, in the tenant owning its domain.
    pub fn user(&self, email: &Email) -> Result<UserRecord> {
        let tenant = self.tenant_of(email)?;
        self.store
            .user_by_email(&tenant, email)?
            .ok_or_else(|| ErrorKind::NotFound(format!("user {email}")).into())
    }

    /// Enables or disables a user. Disabling stops every token of theirs at once.
    pub fn set_user_enabled(&self, email: &Email, enabled: bool) -> Result<()> {
        let user = self.user(email)?;
        self.store
            .set_user_enabled(&user.tenant, &user.id, enabled)?;
        let kind = if enabled {
            "user_enabled"
        } else {
            "user_disabled"
        };
        self.admin_event(&user.tenant, kind, serde_json::json!({"user": user.id}));
        Ok(())
    }

    /// Checks a password for the account password sign-in. Returns the user
    /// only if the password matches and the user is enabled; an unknown
    /// address costs the same as a wrong password.
    pub fn check_password(
        &self,
        tenant: &TenantName,
        email: &str,
        password: &str,
    ) -> Result<Option<UserRecord>> {
        let user = match Email::parse(email) {
            Ok(email) => self.store.user_by_email(tenant, &email)?,
            Err(_) => None,
        };
        let Some(user) = user else {
            let _ = password_matches(password, dummy_hash());
            return Ok(None);
        };
        if !password_matches(password, &user.password_hash) || !user.enabled {
            return Ok(None);
        }
        Ok(Some(user))
    }

    /// Enrols a TOTP second factor (RFC 6238: SHA-1, 6 digits, 30 s), sealing
    /// the secret under the master key.
    pub fn enroll_totp(&self, email: &Email) -> Result<TotpEnrollment> {
        let user = self.user(email)?;
        let mut secret = Zeroizing::new(vec![0u8; 20]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, secret.to_vec())
            .map_err(|e| invalid(format!("TOTP: {e}")))?;
        let sealed = self
            .master
            .seal(&secret, &totp_context(&user.tenant, &user.id))?;
        self.store
            .set_user_totp(&user.tenant, &user.id, Some(&sealed))?;
        let secret_base32 = Zeroizing::new(totp.get_secret_base32());
        let issuer = format!("Stormproof {}", user.tenant);
        let uri = Zeroizing::new(format!(
            "otpauth://totp/{issuer}:{email}?secret={}&issuer={issuer}&algorithm=SHA1&digits=6&period=30",
            secret_base32.as_str()
        ).replace(' ', "%20"));
        self.admin_event(
            &user.tenant,
            "totp_enrolled",
            serde_json::json!({"user": user.id}),
        );
        Ok(TotpEnrollment { secret_base32, uri })
    }

    /// Removes a user's TOTP second factor.
    pub fn disable_totp(&self, email: &Email) -> Result<()> {
        let user = self.user(email)?;
        self.store.set_user_totp(&user.tenant, &user.id, None)?;
        self.admin_event(
            &user.tenant,
            "totp_disabled",
            serde_json::json!({"user": user.id}),
        );
        Ok(())
    }

    /// Checks a TOTP code, allowing one step of clock skew either way. A
    /// code is accepted once: its time step is claimed in the store, so
    /// the same code (or an older one) replayed later fails (RFC 6238
    /// section 5.2).
    pub fn check_totp(&self, user: &UserRecord, code: &str) -> bool {
        let Some(sealed) = &user.totp_sealed else {
            return false;
        };
        let Ok(secret) = self
            .master
            .open(sealed, &totp_context(&user.tenant, &user.id))
        else {
            return false;
        };
        let Ok(totp) = TOTP::new(Algorithm::SHA1, 6, 1, 30, secret.to_vec()) else {
            return false;
        };
        let code = code.trim().as_bytes();
        let now_step = self.now().max(0) as u64 / TOTP_STEP;
        // Every candidate is compared, in constant time, so the time taken
        // says nothing about which step matched.
        let mut matched = None;
        for step in [now_step.saturating_sub(1), now_step, now_step + 1] {
            let expected = totp.generate(step * TOTP_STEP);
            if bool::from(expected.as_bytes().ct_eq(code)) {
                matched = matched.or(Some(step));
            }
        }
        let Some(step) = matched else {
            return false;
        };
        match self.store.claim_totp_step(&user.tenant, &user.id, step) {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::error!(message = "TOTP step not recorded; refusing the code", %error);
                false
            }
        }
    }

    /// The TOTP code for `user` at the current time; lets tests and the demo
    /// play the part of an authenticator app.
    pub fn current_totp(&self, user: &UserRecord) -> Option<String> {
        let sealed = user.totp_sealed.as_ref()?;
        let secret = self
            .master
            .open(sealed, &totp_context(&user.tenant, &user.id))
            .ok()?;
        let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, secret.to_vec()).ok()?;
        Some(totp.generate(self.now().max(0) as u64))
    }

    /// Creates an app password for mail protocols. Shown once.
    pub fn create_app_password(&self, email: &Email, name: &str) -> Result<NewAppPassword> {
        let user = self.user(email)?;
        if name.trim().is_empty() || name.len() > 100 {
            return Err(invalid(
                "an app password needs a name of 1 to 100 characters",
            ));
        }
        // Four groups of four lowercase letters: 75 bits, easy to type on a phone.
        let letters: Vec<u8> = (0..16)
            .map(|_| b'a' + (rand::Rng::gen_range(&mut rand::rngs::OsRng, 0..26u8)))
            .collect();
        let password = Zeroizing::new(
            letters
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-"),
        );
        let record = AppPasswordRecord {
            tenant: user.tenant.clone(),
            id: random_id(9),
            user_id: user.id.clone(),
            name: name.trim().to_owned(),
            password_hash: hash_password_unchecked(&password)?,
            created: self.now(),
            revoked_at: None,
        };
        self.store.create_app_password(&record)?;
        self.admin_event(
            &user.tenant,
            "app_password_created",
            serde_json::json!({"user": user.id, "id": record.id, "name": record.name}),
        );
        Ok(NewAppPassword { record, password })
    }

    /// A user's app passwords.
    pub fn app_passwords(&self, email: &Email) -> Result<Vec<AppPasswordRecord>> {
        let user = self.user(email)?;
        Ok(self.store.app_passwords(&user.tenant, &user.id)?)
    }

    /// Revokes an app password.
    pub fn revoke_app_password(&self, email: &Email, id: &str) -> Result<()> {
        let user = self.user(email)?;
        self.store
            .revoke_app_password(&user.tenant, &user.id, id, self.now())?;
        self.admin_event(
            &user.tenant,
            "app_password_revoked",
            serde_json::json!({"user": user.id, "id": id}),
        );
        Ok(())
    }

    /// Checks an app password for a mail-protocol login (SMTP, IMAP). The
    /// account password is never accepted here, and app passwords are never
    /// accepted by the OAuth sign-in.
    pub fn check_app_password(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Option<(UserRecord, AppPasswordRecord)>> {
        let Ok(email) = Email::parse(email) else {
            return Ok(None);
        };
        let Ok(tenant) = self.tenant_of(&email) else {
            return Ok(None);
        };
        let Some(user) = self.store.user_by_email(&tenant, &email)? else {
            let _ = password_matches(password, dummy_hash());
            return Ok(None);
        };
        if !user.enabled {
            return Ok(None);
        }
        for record in self.store.app_passwords(&tenant, &user.id)? {
            if record.revoked_at.is_none() && password_matches(password, &record.password_hash) {
                return Ok(Some((user, record)));
            }
        }
        Ok(None)
    }

    /// Registers an OAuth client. Confidential clients get a secret, shown once.
    pub fn create_client(
        &self,
        tenant: &TenantName,
        name: &str,
        kind: ClientKind,
        redirect_uris: &[String],
        require_dpop: bool,
    ) -> Result<NewClient> {
        if self.store.tenant(tenant)?.is_none() {
            return Err(ErrorKind::NotFound(format!("tenant {tenant}")).into());
        }
        for uri in redirect_uris {
            let parsed = url::Url::parse(uri)
                .map_err(|_| invalid(format!("redirect URI {uri} is not an absolute URL")))?;
            if parsed.fragment().is_some() {
                return Err(invalid(
                    "redirect URIs must not have a fragment (RFC 6749 section 3.1.2)",
                ));
            }
        }
        let secret = (kind == ClientKind::Confidential).then(|| Zeroizing::new(random_id(32)));
        let record = ClientRecord {
            tenant: tenant.clone(),
            client_id: format!("c-{}", random_id(12)),
            name: name.to_owned(),
            kind,
            secret_hash: secret.as_ref().map(|s| sha256(s)),
            redirect_uris: redirect_uris.to_vec(),
            require_dpop,
            blocked: false,
            created: self.now(),
        };
        self.store.create_client(&record)?;
        self.admin_event(
            tenant,
            "client_created",
            serde_json::json!({"client_id": record.client_id, "name": name}),
        );
        Ok(NewClient { record, secret })
    }

    /// Blocks or unblocks a client; blocking stops its tokens at once.
    pub fn set_client_blocked(
        &self,
        tenant: &TenantName,
        client_id: &str,
        blocked: bool,
    ) -> Result<()> {
        self.store.set_client_blocked(tenant, client_id, blocked)?;
        let kind = if blocked {
            "client_blocked"
        } else {
            "client_unblocked"
        };
        self.admin_event(tenant, kind, serde_json::json!({"client_id": client_id}));
        Ok(())
    }

    /// Checks a client's credentials. Public clients have none to check.
    pub(crate) fn client_secret_matches(client: &ClientRecord, secret: Option<&str>) -> bool {
        match (&client.secret_hash, secret) {
            (Some(hash), Some(secret)) => bool::from(hash.as_slice().ct_eq(&sha256(secret))),
            (None, None) => client.kind == ClientKind::Public,
            _ => false,
        }
    }

    /// Records an administrative change as a security event. A failure to
    /// record is logged, not fatal: the change itself already happened.
    pub(crate) fn admin_event(&self, tenant: &TenantName, kind: &str, detail: serde_json::Value) {
        self.security_event(Some(tenant), kind, "admin", detail, None);
    }

    pub(crate) fn security_event(
        &self,
        tenant: Option<&TenantName>,
        kind: &str,
        reason: &str,
        detail: serde_json::Value,
        request: Option<&crate::RequestInfo>,
    ) {
        let event = SecurityEventRecord {
            id: 0,
            time: self.now(),
            tenant: tenant.map(|t| t.to_string()),
            kind: kind.to_owned(),
            reason: reason.to_owned(),
            detail,
            ip: request.and_then(|r| r.ip.clone()),
            user_agent: request.and_then(|r| r.user_agent.clone()),
        };
        if let Err(error) = self.store.record_security_event(&event) {
            tracing::error!(message = "could not record security event", kind, %error);
        }
    }
}
