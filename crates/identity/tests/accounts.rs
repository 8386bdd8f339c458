//! Users, passwords, TOTP and app passwords, on a real SQLite store.

// Tests fail by panicking; clippy's in-test exemptions do not reach the
// helper functions of an integration test crate.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use stormproof_identity::{Issuer, IssuerConfig};
use stormproof_store::{SqliteStore, Store};
use stormproof_types::{Email, ManualClock, SystemClock, TenantName};

const PASSWORD: &str = "correct horse battery staple";

fn issuer() -> (tempfile::TempDir, Issuer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("store"));
    let issuer = Issuer::open(
        store,
        Arc::new(SystemClock),
        IssuerConfig::default(),
        dir.path(),
        None,
    )
    .expect("issuer");
    for (tenant, domain) in [("acme", "acme.test"), ("globex", "globex.test")] {
        issuer
            .create_tenant(&TenantName::parse(tenant).unwrap(), &[domain.into()])
            .expect("tenant");
    }
    (dir, issuer)
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

#[test]
fn app_passwords_work_for_mail_protocols_only_and_can_be_revoked() {
    let (_dir, issuer) = issuer();
    let acme = TenantName::parse("acme").unwrap();
    issuer
        .create_user(&email("alice@acme.test"), PASSWORD)
        .unwrap();
    let created = issuer
        .create_app_password(&email("alice@acme.test"), "Thunderbird")
        .unwrap();
    let app = created.password.as_str();

    let (user, record) = issuer
        .check_app_password("alice@acme.test", app)
        .unwrap()
        .expect("accepted for mail");
    assert_eq!(
        (user.email.as_str(), record.name.as_str()),
        ("alice@acme.test", "Thunderbird")
    );
    assert!(
        issuer
            .check_password(&acme, "alice@acme.test", app)
            .unwrap()
            .is_none(),
        "never for the OAuth sign-in"
    );
    assert!(
        issuer
            .check_app_password("alice@acme.test", PASSWORD)
            .unwrap()
            .is_none(),
        "the account password is not an app password"
    );

    issuer
        .revoke_app_password(&email("alice@acme.test"), &record.id)
        .unwrap();
    assert!(
        issuer
            .check_app_password("alice@acme.test", app)
            .unwrap()
            .is_none()
    );
    let listed = issuer.app_passwords(&email("alice@acme.test")).unwrap();
    assert!(listed[0].revoked_at.is_some());
}

#[test]
fn passwords_are_argon2id_and_checked_only_within_the_tenant() {
    let (_dir, issuer) = issuer();
    let user = issuer
        .create_user(&email("alice@acme.test"), PASSWORD)
        .unwrap();
    assert!(
        user.password_hash.starts_with("$argon2id$"),
        "{}",
        user.password_hash
    );
    let (acme, globex) = (
        TenantName::parse("acme").unwrap(),
        TenantName::parse("globex").unwrap(),
    );
    assert!(
        issuer
            .check_password(&acme, "alice@acme.test", PASSWORD)
            .unwrap()
            .is_some()
    );
    assert!(
        issuer
            .check_password(&acme, "alice@acme.test", "wrong password")
            .unwrap()
            .is_none()
    );
    assert!(
        issuer
            .check_password(&globex, "alice@acme.test", PASSWORD)
            .unwrap()
            .is_none(),
        "another tenant's issuer"
    );
    assert!(
        issuer
            .create_user(&email("eve@nowhere.test"), PASSWORD)
            .is_err(),
        "no tenant owns the domain"
    );
    assert!(
        issuer
            .create_user(&email("short@acme.test"), "short")
            .is_err(),
        "too short"
    );
    assert!(
        issuer
            .create_user(&email("alice@acme.test"), PASSWORD)
            .is_err(),
        "duplicate"
    );

    issuer
        .set_user_enabled(&email("alice@acme.test"), false)
        .unwrap();
    assert!(
        issuer
            .check_password(&acme, "alice@acme.test", PASSWORD)
            .unwrap()
            .is_none(),
        "disabled"
    );
}

#[test]
fn totp_is_sealed_and_checked() {
    let (_dir, issuer) = issuer();
    issuer
        .create_user(&email("alice@acme.test"), PASSWORD)
        .unwrap();
    let enrollment = issuer.enroll_totp(&email("alice@acme.test")).unwrap();
    assert!(enrollment.uri.starts_with("otpauth://totp/"));
    let user = issuer.user(&email("alice@acme.test")).unwrap();
    let sealed = user.totp_sealed.clone().expect("enrolled");
    let raw = totp_rs::Secret::Encoded(enrollment.secret_base32.to_string())
        .to_bytes()
        .unwrap();
    assert!(
        !sealed.windows(raw.len()).any(|w| w == raw.as_slice()),
        "the secret is not stored in the clear"
    );
    let code = issuer.current_totp(&user).expect("a code");
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert!(!issuer.check_totp(&user, &wrong));
    assert!(issuer.check_totp(&user, &code));
    issuer.disable_totp(&email("alice@acme.test")).unwrap();
    assert!(!issuer.check_totp(&issuer.user(&email("alice@acme.test")).unwrap(), &code));
}

#[test]
fn a_totp_code_is_accepted_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("store"));
    let clock = Arc::new(ManualClock::new(1_780_000_000));
    let issuer = Issuer::open(
        store,
        clock.clone(),
        IssuerConfig::default(),
        dir.path(),
        None,
    )
    .expect("issuer");
    issuer
        .create_tenant(&TenantName::parse("acme").unwrap(), &["acme.test".into()])
        .unwrap();
    issuer
        .create_user(&email("alice@acme.test"), PASSWORD)
        .unwrap();
    issuer.enroll_totp(&email("alice@acme.test")).unwrap();
    let user = issuer.user(&email("alice@acme.test")).unwrap();

    let first = issuer.current_totp(&user).expect("a code");
    assert!(issuer.check_totp(&user, &first));
    // Replayed within its step, or in the next one while skew allows it.
    assert!(!issuer.check_totp(&user, &first), "a code works once");
    clock.advance(30);
    assert!(!issuer.check_totp(&user, &first), "a used code stays used");
    let second = issuer.current_totp(&user).expect("a code");
    assert_ne!(first, second);
    assert!(issuer.check_totp(&user, &second));

    // A code of an earlier step, never used, is refused once a later one
    // was: it may have been seen over a shoulder before the later sign-in.
    clock.advance(30);
    let third = issuer.current_totp(&user).expect("a code");
    clock.advance(30);
    let fourth = issuer.current_totp(&user).expect("a code");
    assert!(issuer.check_totp(&user, &fourth));
    assert!(!issuer.check_totp(&user, &third));
}
