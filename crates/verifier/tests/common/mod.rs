//! A real deployment in miniature: SQLite in a temporary directory, two
//! tenants, real keys in every life-cycle state, sessions, and a ledger.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stormproof_jws::b64;
use stormproof_keys::{SecretKey, Signer};
use stormproof_store::{
    ClientKind, ClientRecord, KeyBackend, KeyRecord, KeyStatus, SessionRecord, SqliteStore, Store,
    TokenKind, TokenRecord, UserRecord,
};
use stormproof_types::{Alg, Clock, Email, ManualClock, TenantName, UnixTime, random_id};
use stormproof_verifier::{
    AuthScheme, RequestContext, SecurityEventSink, Verifier, VerifierConfig, VerifyMode,
};

pub const NOW: UnixTime = 1_750_000_000;
pub const URL: &str = "http://127.0.0.1:8080";
pub const RESOURCE: &str = "http://127.0.0.1:8080/jmap";
pub const DAY: i64 = 86_400;

pub struct Fixture {
    dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub clock: ManualClock,
    pub verifier: Verifier,
    pub a: TenantName,
    pub b: TenantName,
    keys: HashMap<&'static str, (TenantName, SecretKey)>,
}

/// (kid, tenant is A, alg, status, not_before, not_after, retiring_at)
type KeySpec = (
    &'static str,
    bool,
    Alg,
    KeyStatus,
    UnixTime,
    UnixTime,
    Option<UnixTime>,
);

const KEYS: &[KeySpec] = &[
    (
        "a1",
        true,
        Alg::EdDsa,
        KeyStatus::Active,
        NOW - 10 * DAY,
        NOW + 30 * DAY,
        None,
    ),
    (
        "a-es",
        true,
        Alg::Es256,
        KeyStatus::Active,
        NOW - 10 * DAY,
        NOW + 30 * DAY,
        None,
    ),
    (
        "a-retiring",
        true,
        Alg::EdDsa,
        KeyStatus::Retiring,
        NOW - 20 * DAY,
        NOW + 10 * DAY,
        Some(NOW - 600),
    ),
    (
        "a-retired",
        true,
        Alg::EdDsa,
        KeyStatus::Retired,
        NOW - 40 * DAY,
        NOW + DAY,
        Some(NOW - 20 * DAY),
    ),
    (
        "a-next",
        true,
        Alg::EdDsa,
        KeyStatus::Next,
        NOW - DAY,
        NOW + 60 * DAY,
        None,
    ),
    (
        "a-comp",
        true,
        Alg::EdDsa,
        KeyStatus::Compromised,
        NOW - 10 * DAY,
        NOW + 30 * DAY,
        None,
    ),
    (
        "a-dead",
        true,
        Alg::EdDsa,
        KeyStatus::Active,
        NOW - 60 * DAY,
        NOW - 10,
        None,
    ),
    (
        "a-young",
        true,
        Alg::EdDsa,
        KeyStatus::Active,
        NOW - 100,
        NOW + 30 * DAY,
        None,
    ),
    (
        "b1",
        false,
        Alg::EdDsa,
        KeyStatus::Active,
        NOW - 10 * DAY,
        NOW + 30 * DAY,
        None,
    ),
];

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let clock = ManualClock::new(NOW);
        let a = TenantName::parse("alpha").unwrap();
        let b = TenantName::parse("beta").unwrap();
        store
            .create_tenant(&a, &["alpha.test".into()], NOW - 90 * DAY)
            .unwrap();
        store
            .create_tenant(&b, &["beta.test".into()], NOW - 90 * DAY)
            .unwrap();

        for (tenant, id, email) in [
            (&a, "u-alice", "alice@alpha.test"),
            (&a, "u-mallory", "mallory@alpha.test"),
            (&b, "u-bob", "bob@beta.test"),
        ] {
            store
                .create_user(&UserRecord {
                    tenant: tenant.clone(),
                    id: id.into(),
                    email: Email::parse(email).unwrap(),
                    password_hash: "$argon2id$unused".into(),
                    totp_sealed: None,
                    enabled: true,
                    created: NOW - 30 * DAY,
                })
                .unwrap();
        }
        for (tenant, client_id) in [(&a, "mail-app"), (&a, "blocked-app"), (&b, "mail-app")] {
            store
                .create_client(&ClientRecord {
                    tenant: tenant.clone(),
                    client_id: client_id.into(),
                    name: client_id.into(),
                    kind: ClientKind::Public,
                    secret_hash: None,
                    redirect_uris: vec![format!("{URL}/cb")],
                    require_dpop: false,
                    blocked: false,
                    created: NOW - 30 * DAY,
                })
                .unwrap();
        }
        for (tenant, sid, subject, client_id) in [
            (&a, "s-alice", "u-alice", "mail-app"),
            (&a, "s-mallory", "u-mallory", "mail-app"),
            (&a, "s-blocked", "u-alice", "blocked-app"),
            (&a, "s-revoked", "u-alice", "mail-app"),
            (&b, "s-bob", "u-bob", "mail-app"),
        ] {
            store
                .create_session(&SessionRecord {
                    tenant: tenant.clone(),
                    sid: sid.into(),
                    subject: subject.into(),
                    client_id: client_id.into(),
                    auth_time: NOW - 3600,
                    amr: vec!["pwd".into()],
                    ip: Some("192.0.2.1".into()),
                    user_agent: None,
                    revoked_at: None,
                })
                .unwrap();
        }

        let mut keys = HashMap::new();
        for &(kid, in_a, alg, status, not_before, not_after, retiring_at) in KEYS {
            let tenant = if in_a { a.clone() } else { b.clone() };
            let secret = SecretKey::generate(alg);
            store
                .insert_key(&KeyRecord {
                    tenant: tenant.clone(),
                    kid: kid.into(),
                    alg,
                    backend: KeyBackend::Software,
                    material: vec![],
                    public_key: secret.public_key().to_bytes(),
                    created: not_before,
                    not_before,
                    not_after,
                    status,
                    activated_at: Some(not_before),
                    retiring_at,
                    imported: false,
                })
                .unwrap();
            keys.insert(kid, (tenant, secret));
        }

        let verifier = new_verifier(&store, &clock, None);
        Self {
            dir,
            store,
            clock,
            verifier,
            a,
            b,
            keys,
        }
    }

    pub fn verifier_with_events(&self) -> (Verifier, SecurityEventSink) {
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let sink = SecurityEventSink::spawn(self.store.clone(), clock);
        (
            new_verifier(&self.store, &self.clock, Some(sink.clone())),
            sink,
        )
    }

    /// Another handle on the fixture's database, as another process (the
    /// CLI, another node) opens it: it shares the data but none of the
    /// handle's memory, such as its ledger snapshots.
    pub fn open_store(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(self.dir.path()).unwrap())
    }

    /// A verifier on `store` with a cache of `cache_capacity` tokens.
    pub fn verifier_on(&self, store: &Arc<dyn Store>, cache_capacity: usize) -> Verifier {
        let config = VerifierConfig {
            public_url: URL.into(),
            audience: URL.into(),
            cache_capacity,
            ..VerifierConfig::default()
        };
        Verifier::new(store.clone(), Arc::new(self.clock.clone()), config, None).unwrap()
    }

    pub fn secret(&self, kid: &str) -> &SecretKey {
        &self.keys[kid].1
    }

    /// Claims for a token of `tenant`, valid now, with a fresh jti.
    pub fn claims_for(&self, tenant: &TenantName, sub: &str, sid: &str, client_id: &str) -> Value {
        json!({
            "iss": format!("{URL}/t/{tenant}"),
            "sub": sub,
            "aud": URL,
            "exp": NOW + 600,
            "iat": NOW - 10,
            "jti": random_id(16),
            "tid": tenant.as_str(),
            "sid": sid,
            "client_id": client_id,
            "scope": "mail.read mail.send",
        })
    }

    /// Alice's claims in tenant A.
    pub fn alice(&self) -> Value {
        self.claims_for(&self.a.clone(), "u-alice", "s-alice", "mail-app")
    }

    /// The header a genuine token signed by `kid` carries.
    pub fn header(&self, kid: &str) -> Value {
        json!({"alg": self.secret(kid).alg().jws_name(), "typ": "at+jwt", "kid": kid})
    }

    /// Signs with the private key of `kid` (which need not match the header).
    pub fn sign(&self, kid: &str, header: &Value, claims: &Value) -> String {
        sign_with(self.secret(kid), header, claims)
    }

    /// Writes the ledger entry the issuer would have written for `claims`.
    pub fn record(&self, kid: &str, claims: &Value) {
        self.record_kind(kid, claims, TokenKind::Access);
    }

    pub fn record_kind(&self, kid: &str, claims: &Value, kind: TokenKind) {
        let s = |name: &str| claims[name].as_str().unwrap().to_owned();
        self.store
            .record_token(&TokenRecord {
                tenant: TenantName::parse(&s("tid")).unwrap(),
                jti: s("jti"),
                kind,
                sub: s("sub"),
                sid: s("sid"),
                client_id: s("client_id"),
                scope: s("scope"),
                kid: Some(kid.into()),
                iat: claims["iat"].as_i64().unwrap(),
                exp: claims["exp"].as_i64().unwrap(),
                parent: None,
                ip: None,
                user_agent: None,
                jkt: claims["cnf"]["jkt"].as_str().map(str::to_owned),
                secret_hash: None,
                used_at: None,
                revoked_at: None,
            })
            .unwrap();
    }

    /// A genuine token: signed by `kid` with the proper header, and recorded.
    pub fn issue(&self, kid: &str, claims: &Value) -> String {
        self.record(kid, claims);
        self.sign(kid, &self.header(kid), claims)
    }

    pub fn verify_bearer(
        &self,
        token: &str,
    ) -> Result<stormproof_verifier::Principal, stormproof_verifier::Rejection> {
        self.verifier.verify(token, &bearer())
    }
}

fn new_verifier(
    store: &Arc<dyn Store>,
    clock: &ManualClock,
    events: Option<SecurityEventSink>,
) -> Verifier {
    let config = VerifierConfig {
        public_url: URL.into(),
        audience: URL.into(),
        ..VerifierConfig::default()
    };
    Verifier::new(store.clone(), Arc::new(clock.clone()), config, events).unwrap()
}

pub fn sign_with(key: &SecretKey, header: &Value, claims: &Value) -> String {
    stormproof_jws::encode(header, claims, |input| key.sign(input)).unwrap()
}

/// Signs raw JSON text, for payloads serde_json would never produce.
pub fn sign_raw(key: &SecretKey, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(signature))
}

/// Replaces the signature part of a compact token.
pub fn with_signature(token: &str, signature: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    format!("{input}.{}", b64(signature))
}

pub fn signature_of(token: &str) -> Vec<u8> {
    stormproof_jws::b64_decode(token.rsplit_once('.').unwrap().1).unwrap()
}

pub fn bearer() -> RequestContext<'static> {
    RequestContext {
        method: "GET",
        url: RESOURCE,
        dpop: None,
        scheme: AuthScheme::Bearer,
        ip: Some("198.51.100.7"),
        user_agent: Some("test-agent"),
        mode: VerifyMode::Resource,
    }
}

pub fn dpop_request(proof: Option<&str>) -> RequestContext<'_> {
    RequestContext {
        dpop: proof,
        scheme: AuthScheme::Dpop,
        ..bearer()
    }
}

/// A DPoP proof (RFC 9449 section 4.2) by `holder`.
pub fn proof(
    holder: &SecretKey,
    htm: &str,
    htu: &str,
    token: Option<&str>,
    iat: UnixTime,
) -> String {
    let mut claims = json!({"jti": random_id(12), "htm": htm, "htu": htu, "iat": iat});
    if let Some(token) = token {
        claims["ath"] = b64(Sha256::digest(token.as_bytes())).into();
    }
    let header = json!({"typ": "dpop+jwt", "alg": holder.alg().jws_name(), "jwk": holder.public_key().to_jwk("dpop")});
    sign_with(holder, &header, &claims)
}
