//! The issuer with its keys on a PKCS#11 token: SoftHSM2, initialized in a
//! temporary directory. Keys are generated on the token, tokens are signed
//! through the module, and the verifier accepts them from the public keys
//! alone. One test function, because SOFTHSM2_CONF and PKCS#11 login are
//! process-wide.

// Tests fail by panicking; clippy's in-test exemptions do not reach the
// helper functions of an integration test crate.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use stormproof_identity::{AccessGrant, Issuer, IssuerConfig, KeyBackendChoice, RequestInfo};
use stormproof_keys::{Pkcs11Config, Pkcs11Token};
use stormproof_store::{KeyBackend, KeyStatus, SqliteStore, Store};
use stormproof_types::{Alg, Email, SystemClock, TenantName};
use stormproof_verifier::{AuthScheme, RequestContext, Verifier, VerifierConfig, VerifyMode};
use zeroize::Zeroizing;

const URL: &str = "https://mail.example";

fn module() -> PathBuf {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("libsofthsm2.so not found: apt-get install softhsm2")
}

#[test]
fn tokens_signed_on_softhsm_verify_and_keys_never_leave_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).expect("tokens dir");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )
    .expect("conf");
    // SAFETY: the only test in this binary sets it before the module loads.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
    let init = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "stormproof-issuer",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ])
        .output()
        .expect("softhsm2-util not found: apt-get install softhsm2");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    let hsm = Pkcs11Token::open(&Pkcs11Config {
        module: module(),
        token_label: "stormproof-issuer".into(),
        pin: Zeroizing::new("1234".into()),
    })
    .expect("open token");
    let data = dir.path().join("data");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data).expect("store"));
    let verifier = Verifier::new(
        store.clone(),
        Arc::new(SystemClock),
        VerifierConfig {
            public_url: URL.into(),
            audience: URL.into(),
            ..VerifierConfig::default()
        },
        None,
    )
    .expect("verifier");

    for (tenant, alg) in [("ed", Alg::EdDsa), ("ec", Alg::Es256)] {
        let config = IssuerConfig {
            public_url: URL.into(),
            key_backend: KeyBackendChoice::Pkcs11,
            key_algorithm: alg,
            ..IssuerConfig::default()
        };
        let issuer = Issuer::open(
            store.clone(),
            Arc::new(SystemClock),
            config,
            &data,
            Some(hsm.clone()),
        )
        .expect("issuer");
        let tenant = TenantName::parse(tenant).expect("name");
        let domain = format!("{tenant}.test");
        issuer
            .create_tenant(&tenant, std::slice::from_ref(&domain))
            .expect("tenant");
        let keys = store.keys(&tenant).expect("keys");
        assert!(
            keys.iter()
                .all(|k| k.backend == KeyBackend::Pkcs11 && k.alg == alg),
            "{keys:?}"
        );
        // The record holds an object id, never key material.
        let active = keys
            .iter()
            .find(|k| k.status == KeyStatus::Active)
            .expect("active");
        assert_eq!(
            String::from_utf8_lossy(&active.material),
            format!("{tenant}/{}", active.kid)
        );

        let user = issuer
            .create_user(
                &Email::parse(&format!("u@{domain}")).expect("email"),
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
        let issued = issuer
            .issue_access(
                &AccessGrant {
                    tenant: tenant.clone(),
                    subject: user.id.clone(),
                    sid: session.sid,
                    client_id: stormproof_identity::ADMIN_CLIENT_ID.into(),
                    scope: "mail".into(),
                    jkt: None,
                    parent: None,
                    lifetime: None,
                },
                &RequestInfo::default(),
            )
            .expect("issue through the HSM");
        verifier.refresh().expect("refresh");
        let context = RequestContext {
            method: "GET",
            url: "https://mail.example/api/whoami",
            dpop: None,
            scheme: AuthScheme::Bearer,
            ip: None,
            user_agent: None,
            mode: VerifyMode::Resource,
        };
        let principal = verifier.verify(&issued.token, &context).expect("verifies");
        assert_eq!(principal.tenant(), &tenant);

        // Rotation generates the successor on the token too.
        issuer.force_rotation(&tenant).expect("rotate");
        let rotated = issuer
            .issue_for_user(
                &user.email,
                stormproof_identity::ADMIN_CLIENT_ID,
                "mail",
                None,
            )
            .expect("issue");
        assert_ne!(rotated.kid, issued.kid);
        verifier.refresh().expect("refresh");
        assert!(verifier.verify(&rotated.token, &context).is_ok());
        assert!(
            verifier.verify(&issued.token, &context).is_ok(),
            "the retiring HSM key still verifies"
        );
    }
}
