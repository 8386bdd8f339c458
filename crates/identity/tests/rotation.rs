//! Key rotation driven through months of injected time, checked against
//! the real verifier and the real SQLite store.

// Tests fail by panicking; clippy's in-test exemptions do not reach the
// helper functions of an integration test crate.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use stormproof_identity::{AccessGrant, Issuer, IssuerConfig, RequestInfo};
use stormproof_store::{KeyStatus, SqliteStore, Store};
use stormproof_types::{Clock, Email, ManualClock, TenantName};
use stormproof_verifier::{AuthScheme, RequestContext, Verifier, VerifierConfig, VerifyMode};

const DAY: i64 = 24 * 3600;
const START: i64 = 1_800_000_000;
const URL: &str = "https://mail.example";

struct World {
    _dir: tempfile::TempDir,
    clock: ManualClock,
    store: Arc<dyn Store>,
    issuer: Issuer,
    verifier: Verifier,
    tenant: TenantName,
    user_id: String,
    sid: String,
}

fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("store"));
    let config = IssuerConfig {
        public_url: URL.into(),
        ..IssuerConfig::default()
    };
    let issuer = Issuer::open(
        store.clone(),
        Arc::new(clock.clone()),
        config,
        dir.path(),
        None,
    )
    .expect("issuer");
    let tenant = TenantName::parse("acme").expect("name");
    issuer
        .create_tenant(&tenant, &["acme.test".into()])
        .expect("tenant");
    let user = issuer
        .create_user(
            &Email::parse("alice@acme.test").expect("email"),
            "a long password",
        )
        .expect("user");
    let session = issuer
        .start_session(
            &tenant,
            &user.id,
            stormproof_identity::ADMIN_CLIENT_ID,
            &["pwd"],
            &RequestInfo::default(),
        )
        .expect("session");
    let verifier = Verifier::new(
        store.clone(),
        Arc::new(clock.clone()),
        VerifierConfig {
            public_url: URL.into(),
            audience: URL.into(),
            ..VerifierConfig::default()
        },
        None,
    )
    .expect("verifier");
    World {
        _dir: dir,
        clock,
        store,
        issuer,
        verifier,
        tenant,
        user_id: user.id,
        sid: session.sid,
    }
}

impl World {
    fn issue(&self) -> stormproof_identity::IssuedAccess {
        let grant = AccessGrant {
            tenant: self.tenant.clone(),
            subject: self.user_id.clone(),
            sid: self.sid.clone(),
            client_id: stormproof_identity::ADMIN_CLIENT_ID.into(),
            scope: "mail".into(),
            jkt: None,
            parent: None,
            lifetime: None,
        };
        self.issuer
            .issue_access(&grant, &RequestInfo::default())
            .expect("issue")
    }

    fn verifies(&self, token: &str) -> Result<(), String> {
        self.verifier.refresh().expect("refresh");
        let context = RequestContext {
            method: "GET",
            url: "https://mail.example/api/whoami",
            dpop: None,
            scheme: AuthScheme::Bearer,
            ip: None,
            user_agent: None,
            mode: VerifyMode::Resource,
        };
        self.verifier
            .verify(token, &context)
            .map(|_| ())
            .map_err(|r| r.reason.as_str().to_owned())
    }

    fn status(&self, kid: &str) -> KeyStatus {
        self.store
            .keys(&self.tenant)
            .expect("keys")
            .into_iter()
            .find(|k| k.kid == kid)
            .expect("key")
            .status
    }

    fn with_status(&self, status: KeyStatus) -> Vec<String> {
        self.store
            .keys(&self.tenant)
            .expect("keys")
            .into_iter()
            .filter(|k| k.status == status)
            .map(|k| k.kid)
            .collect()
    }

    fn jwks_kids(&self) -> Vec<String> {
        let jwks = self.issuer.jwks(&self.tenant).expect("jwks");
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

#[test]
fn a_new_tenant_has_an_active_key_and_a_published_next_key() {
    let w = world();
    let (active, next) = (
        w.with_status(KeyStatus::Active),
        w.with_status(KeyStatus::Next),
    );
    assert_eq!((active.len(), next.len()), (1, 1));
    let published = w.jwks_kids();
    assert!(published.contains(&active[0]) && published.contains(&next[0]));
    assert_eq!(w.issue().kid, active[0]);
}

#[test]
fn rotation_promotes_the_published_key_and_retires_the_old_one_after_its_tokens_expire() {
    let w = world();
    let first = w.with_status(KeyStatus::Active)[0].clone();
    let second = w.with_status(KeyStatus::Next)[0].clone();

    // Nothing is due before the period ends.
    w.clock.advance(29 * DAY);
    w.issuer.rotate_tenant_keys(&w.tenant).expect("rotate");
    assert_eq!(w.status(&first), KeyStatus::Active);

    // A token signed just before rotation...
    w.clock.advance(DAY - 60);
    let late = w.issue();
    assert_eq!(late.kid, first);
    w.clock.advance(60);
    w.issuer.rotate_tenant_keys(&w.tenant).expect("rotate");
    // ...the key that was published a whole period ahead now signs,
    assert_eq!(w.status(&second), KeyStatus::Active);
    assert_eq!(w.status(&first), KeyStatus::Retiring);
    assert_eq!(w.issue().kid, second);
    // a new key is published before it signs anything,
    let third = w.with_status(KeyStatus::Next);
    assert_eq!(third.len(), 1);
    assert!(w.jwks_kids().contains(&third[0]));
    // and the retiring key still verifies what it signed.
    assert_eq!(w.verifies(&late.token), Ok(()));

    // Once every token it signed has expired, it retires and leaves the JWKS.
    w.clock.advance(3600 + 60);
    w.issuer.rotate_tenant_keys(&w.tenant).expect("rotate");
    assert_eq!(w.status(&first), KeyStatus::Retired);
    assert!(!w.jwks_kids().contains(&first));
    assert_eq!(w.verifies(&late.token), Err("key_not_active".into()));
}

#[test]
fn a_server_that_slept_past_a_keys_hard_lifetime_never_signs_with_it() {
    let w = world();
    let first = w.with_status(KeyStatus::Active)[0].clone();
    let not_after = w
        .store
        .keys(&w.tenant)
        .expect("keys")
        .into_iter()
        .find(|k| k.kid == first)
        .expect("key")
        .not_after;
    // The rotation job did not run for months, as in 2023.
    w.clock.set(not_after + 90 * DAY);
    let grant = AccessGrant {
        tenant: w.tenant.clone(),
        subject: w.user_id.clone(),
        sid: w.sid.clone(),
        client_id: stormproof_identity::ADMIN_CLIENT_ID.into(),
        scope: String::new(),
        jkt: None,
        parent: None,
        lifetime: None,
    };
    assert!(
        w.issuer
            .issue_access(&grant, &RequestInfo::default())
            .is_err(),
        "an over-age key must not sign"
    );
    w.issuer.rotate_tenant_keys(&w.tenant).expect("rotate");
    let fresh = w.issue();
    assert_ne!(fresh.kid, first);
    assert!(
        w.clock.now()
            < w.store
                .keys(&w.tenant)
                .expect("keys")
                .into_iter()
                .find(|k| k.kid == fresh.kid)
                .expect("key")
                .not_after
    );
    assert_eq!(w.verifies(&fresh.token), Ok(()));
    assert_eq!(w.status(&first), KeyStatus::Retired);
}

#[test]
fn revoking_the_active_key_hands_over_to_a_fresh_one_and_refuses_its_tokens() {
    let w = world();
    let token = w.issue();
    assert_eq!(w.verifies(&token.token), Ok(()));
    let revoked = w.issuer.revoke_key(&w.tenant, &token.kid).expect("revoke");
    assert_eq!(revoked, 1);
    assert_eq!(w.verifies(&token.token), Err("key_compromised".into()));
    let fresh = w.issue();
    assert_ne!(fresh.kid, token.kid);
    assert_eq!(w.verifies(&fresh.token), Ok(()));
    assert!(!w.jwks_kids().contains(&token.kid));
}

#[test]
fn forced_rotation_keeps_tokens_of_the_previous_key_valid() {
    let w = world();
    let before = w.issue();
    w.issuer.force_rotation(&w.tenant).expect("rotate");
    let after = w.issue();
    assert_ne!(before.kid, after.kid);
    assert_eq!(w.verifies(&before.token), Ok(()));
    assert_eq!(w.verifies(&after.token), Ok(()));
}
