//! The verification order. Every check is a separate step with its own
//! rejection reason, and the order is part of the contract: cheap
//! structural checks first, then the key chosen by (tenant, kid) only, then
//! the signature, then time, then the ledger and the session.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use stormproof_jws::{AccessClaims, Compact, Header};
use stormproof_keys::PublicKey;
use stormproof_store::{Epochs, KeyStatus, LedgerSnapshot, Store, TokenKind};
use stormproof_types::{Alg, Clock, TenantName, UnixTime};
use subtle::ConstantTimeEq;

use crate::cache::{CachedToken, TokenCache};
use crate::dpop::{self, ReplayCache};
use crate::events::{SecurityEventSink, truncate};
use crate::principal::{AuthScheme, Principal, RequestContext, VerifyMode};
use crate::reject::{RejectReason, Rejection};

/// The verifier's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// The server's public base URL without a trailing slash, e.g.
    /// `http://127.0.0.1:8080`. Tenant `T`'s issuer is `{public_url}/t/{T}`.
    pub public_url: String,
    /// The audience every access token must name; the public URL.
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: i64,
    /// The longest `exp - iat` accepted, in seconds.
    pub max_lifetime_secs: i64,
    /// How far a DPoP proof's `iat` may be from now, in seconds.
    pub dpop_window_secs: i64,
    /// How many verified tokens are cached; 0 disables the cache.
    pub cache_capacity: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        let public_url = "http://127.0.0.1:8080".to_owned();
        Self {
            audience: public_url.clone(),
            public_url,
            leeway_secs: 30,
            max_lifetime_secs: 3600,
            dpop_window_secs: 60,
            cache_capacity: 100_000,
        }
    }
}

/// The verifier could not start or refresh.
#[derive(Debug, thiserror::Error)]
#[error("verifier: {kind}")]
pub struct Error {
    /// What failed.
    pub kind: ErrorKind,
}

/// What failed in the verifier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The store could not be read.
    #[error("store: {0}")]
    Store(String),
    /// The file that carries DPoP proof ids across a restart failed.
    #[error("DPoP proof memory: {0}")]
    ProofMemory(#[source] std::io::Error),
}

impl From<stormproof_store::Error> for Error {
    fn from(e: stormproof_store::Error) -> Self {
        Self {
            kind: ErrorKind::Store(e.to_string()),
        }
    }
}

/// One key as the verifier needs it: the record's decisions, and the public
/// key parsed once.
#[derive(Debug)]
struct KeyEntry {
    alg: Alg,
    public: PublicKey,
    status: KeyStatus,
    not_before: UnixTime,
    not_after: UnixTime,
    retiring_at: Option<UnixTime>,
}

/// Every tenant's keys, addressed only by (tenant, kid).
#[derive(Debug, Default)]
struct KeyRing {
    /// Tenant, then kid: two lookups that borrow the token's strings, so
    /// finding a key allocates nothing.
    keys: HashMap<TenantName, HashMap<String, KeyEntry>>,
    /// Every kid of every tenant, only to name a cross-tenant attempt as such.
    kids: HashSet<String>,
}

impl KeyRing {
    fn get(&self, tenant: &TenantName, kid: &str) -> Option<&KeyEntry> {
        self.keys.get(tenant)?.get(kid)
    }

    fn load(store: &dyn Store) -> Result<Self, Error> {
        let mut ring = KeyRing::default();
        for record in store.all_keys()? {
            ring.kids.insert(record.kid.clone());
            let public = match PublicKey::from_bytes(record.alg, &record.public_key) {
                Ok(public) => public,
                Err(e) => {
                    // A damaged record must not stop every other tenant's
                    // tokens from verifying; its own tokens are refused.
                    tracing::error!(
                        message = "unusable public key in key record",
                        tenant = %record.tenant,
                        kid = %record.kid,
                        error = %e
                    );
                    continue;
                }
            };
            ring.keys.entry(record.tenant).or_default().insert(
                record.kid,
                KeyEntry {
                    alg: record.alg,
                    public,
                    status: record.status,
                    not_before: record.not_before,
                    not_after: record.not_after,
                    retiring_at: record.retiring_at,
                },
            );
        }
        Ok(ring)
    }
}

/// The one token verifier. Share it as `Arc<Verifier>`.
pub struct Verifier {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: VerifierConfig,
    issuer_prefix: String,
    events: Option<SecurityEventSink>,
    ring: RwLock<Arc<KeyRing>>,
    cache: TokenCache,
    replay: ReplayCache,
    /// The epochs the ring and the cache reflect.
    seen: Mutex<Epochs>,
    /// The same epochs, for the verification path, which must not wait on
    /// `seen` while a refresh reads the store. `None` after an invalidation
    /// or a failed reload, until a refresh succeeds: no ledger snapshot is
    /// trusted meanwhile.
    trusted: RwLock<Option<Epochs>>,
    /// Set by [`Verifier::invalidate`]: reload keys on the next refresh even
    /// if the keys epoch did not move.
    reload_keys: AtomicBool,
    counters: Box<[AtomicU64]>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Loads the key ring from `store` and starts with an empty cache.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: VerifierConfig,
        events: Option<SecurityEventSink>,
    ) -> Result<Self, Error> {
        // Epochs first: a key change racing with the load is then seen as a
        // change on the first refresh instead of being missed.
        let seen = store.epochs()?;
        let ring = KeyRing::load(store.as_ref())?;
        Ok(Self {
            issuer_prefix: format!("{}/t/", config.public_url),
            cache: TokenCache::new(config.cache_capacity),
            counters: RejectReason::all()
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
            store,
            clock,
            config,
            events,
            ring: RwLock::new(Arc::new(ring)),
            replay: ReplayCache::default(),
            seen: Mutex::new(seen),
            trusted: RwLock::new(Some(seen)),
            reload_keys: AtomicBool::new(false),
        })
    }

    /// The issuer URL of `tenant`.
    pub fn issuer(&self, tenant: &TenantName) -> String {
        format!("{}{}", self.issuer_prefix, tenant)
    }

    /// Verifies an access token presented with `request`. Every rejection is
    /// counted, logged and sent to the security event sink.
    pub fn verify(
        &self,
        token: &str,
        request: &RequestContext<'_>,
    ) -> Result<Principal, Rejection> {
        let now = self.clock.now();
        if let Some(hit) = self.cache.get(token) {
            return match self.recheck(&hit, token, request, now) {
                Ok(()) => Ok(hit.principal),
                Err(reason) => {
                    if matches!(reason, RejectReason::Expired | RejectReason::KeyExpired) {
                        self.cache.remove(token);
                    }
                    let p = &hit.principal;
                    let rejection = Rejection {
                        reason,
                        tenant: Some(p.tenant().clone()),
                        kid: Some(hit.kid.to_string()),
                        jti: Some(p.token_id().to_owned()),
                        subject: Some(p.subject().to_owned()),
                        client_id: Some(p.client_id().to_owned()),
                        session: Some(p.session_id().to_owned()),
                    };
                    Err(self.reject(rejection, request.ip, request.user_agent))
                }
            };
        }
        // Read before the store is, so a clear that happens meanwhile keeps
        // this result out of the cache.
        let generation = self.cache.generation();
        match self.verify_uncached(token, request, now) {
            Ok(entry) => {
                let principal = entry.principal.clone();
                self.cache.insert(token, entry, generation);
                Ok(principal)
            }
            Err(rejection) => Err(self.reject(rejection, request.ip, request.user_agent)),
        }
    }

    /// Verifies a DPoP proof for a request to `htu` with method `htm`, bound
    /// to `access_token` when one is presented, and returns the proof key's
    /// RFC 7638 thumbprint. Each proof verifies once.
    pub fn verify_dpop_proof(
        &self,
        proof: &str,
        htm: &str,
        htu: &str,
        access_token: Option<&str>,
    ) -> Result<String, Rejection> {
        let now = self.clock.now();
        dpop::verify_proof(
            proof,
            htm,
            htu,
            access_token,
            now,
            self.config.dpop_window_secs,
            &self.replay,
        )
        .map_err(|reason| self.reject(Rejection::new(reason), None, None))
    }

    /// Carries the DPoP proof ids already used across a restart, through
    /// the file at `path` (one per server, in its data directory): takes up
    /// those [`Verifier::save_dpop_memory`] left. After a stop that did not
    /// save (a crash), proofs made before now are refused, since any of
    /// them may have been used already.
    pub fn restore_dpop_memory(&self, path: &std::path::Path) -> Result<(), Error> {
        self.replay
            .restore(path, self.clock.now())
            .map_err(|e| Error {
                kind: ErrorKind::ProofMemory(e),
            })
    }

    /// Saves the DPoP proof ids still within their window, at a clean stop.
    pub fn save_dpop_memory(&self, path: &std::path::Path) -> Result<(), Error> {
        self.replay.save(path, self.clock.now()).map_err(|e| Error {
            kind: ErrorKind::ProofMemory(e),
        })
    }

    /// Polls the store's change counters: reloads the key ring when keys
    /// changed, and clears the cache when keys or revocations changed. The
    /// server calls this every 200 ms, which bounds how long a revocation
    /// made by another process can go unnoticed.
    pub fn refresh(&self) -> Result<(), Error> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.store.epochs()?;
        let forced = self.reload_keys.swap(false, Ordering::SeqCst);
        let keys_changed = forced || current.keys != seen.keys;
        if keys_changed {
            match KeyRing::load(self.store.as_ref()) {
                Ok(ring) => {
                    *self
                        .ring
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(ring);
                }
                Err(e) => {
                    // Keep the old ring but drop every cached result, so
                    // tokens of a key that just changed meet the ledger
                    // (which a compromise revokes them in) again.
                    self.reload_keys.store(true, Ordering::SeqCst);
                    self.cache.clear();
                    self.distrust_snapshots();
                    return Err(e);
                }
            }
        }
        // After the ring swap, so nothing verified under the old ring
        // survives in the cache.
        if keys_changed || current.revocations != seen.revocations {
            self.cache.clear();
        }
        *seen = current;
        // From now on a ledger snapshot is trusted only if taken at these
        // epochs: one taken before a change this refresh noticed is not.
        *self
            .trusted
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(current);
        Ok(())
    }

    /// Clears the verified-token cache at once, after an in-process
    /// revocation, and makes the next [`Verifier::refresh`] reload keys.
    /// Until that refresh, no ledger snapshot is trusted either.
    pub fn invalidate(&self) {
        self.reload_keys.store(true, Ordering::SeqCst);
        self.cache.clear();
        self.distrust_snapshots();
    }

    fn distrust_snapshots(&self) {
        *self
            .trusted
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    /// How many rejections of each reason this verifier has made, for every
    /// reason including those at zero.
    pub fn rejection_counts(&self) -> Vec<(RejectReason, u64)> {
        RejectReason::all()
            .iter()
            .map(|reason| {
                (
                    *reason,
                    self.counters[reason.index()].load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    fn ring(&self) -> Arc<KeyRing> {
        self.ring
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn reject(
        &self,
        rejection: Rejection,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Rejection {
        self.counters[rejection.reason.index()].fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            message = "token rejected",
            reason = %rejection.reason.as_str(),
            tenant = rejection.tenant.as_ref().map(TenantName::as_str),
            kid = rejection.kid.as_deref(),
            jti = rejection.jti.as_deref(),
        );
        if let Some(sink) = &self.events {
            sink.report(&rejection, ip, user_agent);
        }
        rejection
    }

    /// The checks a cache hit still needs: time moves on, and a DPoP proof
    /// is per request.
    fn recheck(
        &self,
        hit: &CachedToken,
        token: &str,
        request: &RequestContext<'_>,
        now: UnixTime,
    ) -> Result<(), RejectReason> {
        if hit
            .principal
            .expires_at()
            .saturating_add(self.config.leeway_secs)
            <= now
        {
            return Err(RejectReason::Expired);
        }
        if now > hit.key_not_after {
            return Err(RejectReason::KeyExpired);
        }
        self.check_binding(hit.principal.jkt(), token, request, now)
    }

    /// RFC 9449 section 7: a bound token needs a proof by its key on a
    /// resource request; an unbound token must not claim the DPoP scheme.
    fn check_binding(
        &self,
        jkt: Option<&str>,
        token: &str,
        request: &RequestContext<'_>,
        now: UnixTime,
    ) -> Result<(), RejectReason> {
        match jkt {
            Some(bound) if request.mode == VerifyMode::Resource => {
                let (AuthScheme::Dpop, Some(proof)) = (request.scheme, request.dpop) else {
                    return Err(RejectReason::DpopRequired);
                };
                let proven = dpop::verify_proof(
                    proof,
                    request.method,
                    request.url,
                    Some(token),
                    now,
                    self.config.dpop_window_secs,
                    &self.replay,
                )?;
                if !bool::from(proven.as_bytes().ct_eq(bound.as_bytes())) {
                    return Err(RejectReason::DpopMismatch);
                }
                Ok(())
            }
            Some(_) => Ok(()),
            None if request.scheme == AuthScheme::Dpop => Err(RejectReason::DpopMismatch),
            None => Ok(()),
        }
    }

    fn issuer_tenant(&self, iss: &str) -> Option<TenantName> {
        iss.strip_prefix(&self.issuer_prefix)
            .and_then(|name| TenantName::parse(name).ok())
    }

    /// The full verification order. A rejection reports the claims parsed
    /// before the failing step; they are copied out only on failure, so an
    /// accepted token pays for none of it.
    fn verify_uncached(
        &self,
        token: &str,
        request: &RequestContext<'_>,
        now: UnixTime,
    ) -> Result<CachedToken, Rejection> {
        // 1. Wire format and header.
        let compact = Compact::parse(token).map_err(|e| {
            Rejection::new(match e.kind {
                stormproof_jws::ErrorKind::TooLong => RejectReason::TooLarge,
                _ => RejectReason::Malformed,
            })
        })?;
        let header = Header::parse(&compact.header_json)
            .map_err(|_| Rejection::new(RejectReason::Malformed))?;
        let with_kid = |reason| Rejection {
            kid: header.kid.as_deref().map(|kid| truncate(kid).to_owned()),
            ..Rejection::new(reason)
        };
        let alg = check_header(&header).map_err(with_kid)?;

        // 2. Claims, strictly typed.
        let claims =
            AccessClaims::parse(&compact.payload).map_err(|_| with_kid(RejectReason::Malformed))?;
        // The tenant reported is the issuer's, or `tid`'s when `iss` names none.
        let with_claims = |reason, tenant: Option<TenantName>| Rejection {
            tenant: tenant.or_else(|| TenantName::parse(&claims.tid).ok()),
            jti: Some(truncate(&claims.jti).to_owned()),
            subject: Some(truncate(&claims.sub).to_owned()),
            client_id: Some(truncate(&claims.client_id).to_owned()),
            session: Some(truncate(&claims.sid).to_owned()),
            ..with_kid(reason)
        };

        // 3. Issuer; steps 3 to 10 follow in `check_claims`.
        let Some(tenant) = self.issuer_tenant(&claims.iss) else {
            return Err(with_claims(RejectReason::UnknownIssuer, None));
        };
        let (kid, key_not_after) = self
            .check_claims(
                token, request, now, &compact, &header, alg, &claims, &tenant,
            )
            .map_err(|reason| with_claims(reason, Some(tenant.clone())))?;

        // 11. Accepted.
        let principal = Principal::new(
            tenant,
            claims.sub,
            claims.client_id,
            claims.sid,
            claims.jti,
            claims.scope,
            claims.exp,
            claims.iat,
            claims.cnf.map(|cnf| cnf.jkt),
        );
        Ok(CachedToken {
            principal,
            kid: Arc::from(kid),
            key_not_after,
        })
    }

    /// Steps 3 to 10 for a token whose issuer names `tenant`. Returns the
    /// kid and its key's `not_after`.
    #[allow(clippy::too_many_arguments)] // One call site; the parts of one token.
    fn check_claims<'h>(
        &self,
        token: &str,
        request: &RequestContext<'_>,
        now: UnixTime,
        compact: &Compact<'_>,
        header: &'h Header,
        alg: Alg,
        claims: &AccessClaims,
        tenant: &TenantName,
    ) -> Result<(&'h str, UnixTime), RejectReason> {
        // 3. Tenant.
        if claims.tid != tenant.as_str() {
            return Err(RejectReason::TenantMismatch);
        }

        // 4. The key: (issuer's tenant, kid) is the only lookup, so a key of
        // one tenant can never vouch for another's tokens.
        let kid = header.kid.as_deref().ok_or(RejectReason::MissingKid)?;
        let mut ring = self.ring();
        if ring.get(tenant, kid).is_none() && self.refresh().is_ok() {
            // A key another process created a moment ago (an import, a
            // rotation) must not be taken for an unknown one: catch up with
            // the store once before deciding. The cost is one read of two
            // counters, and only on this already-failing path.
            ring = self.ring();
        }
        let Some(key) = ring.get(tenant, kid) else {
            return Err(if ring.kids.contains(kid) {
                RejectReason::CrossTenantKey
            } else {
                RejectReason::UnknownKey
            });
        };

        // 5. Key state, from the record.
        match key.status {
            KeyStatus::Compromised => return Err(RejectReason::KeyCompromised),
            KeyStatus::Next | KeyStatus::Retired => return Err(RejectReason::KeyNotActive),
            KeyStatus::Active | KeyStatus::Retiring => {}
        }
        if now > key.not_after {
            return Err(RejectReason::KeyExpired);
        }
        if alg != key.alg {
            return Err(RejectReason::AlgMismatch);
        }

        // 6. Signature.
        if !key.public.verify(compact.signing_input, &compact.signature) {
            return Err(RejectReason::BadSignature);
        }

        // 7. Audience and time.
        let leeway = self.config.leeway_secs;
        if !claims.aud.contains(&self.config.audience) {
            return Err(RejectReason::WrongAudience);
        }
        if claims.exp.saturating_add(leeway) <= now {
            return Err(RejectReason::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return Err(RejectReason::NotYetValid);
        }
        if claims.iat > now.saturating_add(leeway) {
            return Err(RejectReason::IssuedInFuture);
        }
        if claims.exp.saturating_sub(claims.iat) > self.config.max_lifetime_secs {
            return Err(RejectReason::LifetimeTooLong);
        }
        // A retiring key stopped signing at retiring_at: anything it "signed"
        // later was signed by someone else holding it.
        let signed_after_retiring = key.status == KeyStatus::Retiring
            && key
                .retiring_at
                .is_some_and(|at| claims.iat > at.saturating_add(leeway));
        if claims.iat < key.not_before || claims.iat > key.not_after || signed_after_retiring {
            return Err(RejectReason::IatOutsideKeyValidity);
        }

        // 8. The ledger: a validly signed token that was never issued, or
        // differs from what was issued, is a forgery.
        let jkt = claims.cnf.as_ref().map(|cnf| cnf.jkt.as_str());
        // One read answers both the ledger and the session questions. For a
        // token this process's issuer recorded, the store's snapshot of that
        // read stands in for it while the change counters have not moved.
        let snapshot = self.trusted_snapshot(tenant, &claims.jti);
        let read;
        let record = match &snapshot {
            Some(snapshot) => &snapshot.entry,
            None => {
                read = self
                    .store
                    .ledger_entry(tenant, &claims.jti)
                    .map_err(|e| unavailable("token ledger", &e))?
                    .ok_or(RejectReason::NeverIssued)?;
                &read
            }
        };
        let matches = record.kind == TokenKind::Access
            && record.sub == claims.sub
            && record.sid == claims.sid
            && record.client_id == claims.client_id
            && record.exp == claims.exp
            && record.iat == claims.iat
            && record.scope == claims.scope
            && record.kid.as_deref() == Some(kid)
            && record.jkt.as_deref() == jkt;
        if !matches {
            return Err(RejectReason::LedgerMismatch);
        }
        if record.revoked {
            return Err(RejectReason::Revoked);
        }

        // 9. Session, user and client, from the same read.
        match &record.session {
            None => return Err(RejectReason::SessionRevoked),
            Some(s) if s.session_revoked => return Err(RejectReason::SessionRevoked),
            Some(s) if s.user_disabled => return Err(RejectReason::UserDisabled),
            Some(s) if s.client_blocked => return Err(RejectReason::ClientBlocked),
            Some(_) => {}
        }

        // 10. Sender constraint.
        self.check_binding(jkt, token, request, now)?;
        Ok((kid, key.not_after))
    }

    /// The store's snapshot of a token's ledger entry, if it may stand in
    /// for the read: only while the counters this verifier last saw are the
    /// snapshot's. Every change to what the entry reports bumps them, so
    /// this is the verified-token cache's rule: state another process
    /// changes is served at most until the next refresh notices, and a
    /// change through this process's store handle drops the snapshots.
    fn trusted_snapshot(&self, tenant: &TenantName, jti: &str) -> Option<Arc<LedgerSnapshot>> {
        let seen = (*self
            .trusted
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))?;
        self.store
            .recorded_ledger_entry(tenant, jti)
            .filter(|snapshot| snapshot.epochs == seen)
    }
}

/// Step 1's header checks, in order; returns the header's algorithm.
fn check_header(header: &Header) -> Result<Alg, RejectReason> {
    if header.alg.eq_ignore_ascii_case("none") {
        return Err(RejectReason::AlgNone);
    }
    if header
        .alg
        .get(..2)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("HS"))
    {
        return Err(RejectReason::HmacAlg);
    }
    // Only the key ring names keys; a token that brings its own key would be
    // verifying itself.
    if header.jwk.is_some() || header.has_key_reference {
        return Err(RejectReason::EmbeddedKey);
    }
    if header.crit.is_some() {
        return Err(RejectReason::UnknownCrit);
    }
    let typ_ok = header.typ.as_deref().is_some_and(|typ| {
        typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(RejectReason::WrongType);
    }
    Alg::from_jws_name(&header.alg).ok_or(RejectReason::UnsupportedAlg)
}

fn unavailable(what: &str, e: &stormproof_store::Error) -> RejectReason {
    // Fail closed, but say so: a store outage is not an attack.
    tracing::error!(message = "verifier cannot read the store", what, error = %e);
    RejectReason::Unavailable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn verifier_is_send_and_sync() {
        assert_send_sync::<Verifier>();
        assert_send_sync::<SecurityEventSink>();
        assert_send_sync::<Principal>();
    }
}
