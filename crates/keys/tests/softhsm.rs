//! The PKCS#11 backend against a real module: SoftHSM2, on a token
//! initialized in a temporary directory.
//!
//! SOFTHSM2_CONF is process-wide and read when the module initializes, and
//! PKCS#11 initialization and login are process-wide too, so everything runs
//! in one test function: parallel tests would share (and fight over) them.

// The workspace denies these for library code; a test reports failure by
// panicking, and clippy's in-test exemptions do not reach helper functions
// of an integration test crate.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use stormproof_keys::{ErrorKind, Pkcs11Config, Pkcs11Token, Signer};
use stormproof_types::Alg;
use zeroize::Zeroizing;

const LABEL: &str = "stormproof-test";
const PIN: &str = "1234";
const SO_PIN: &str = "5678";

/// Removes the token directory even when an assertion fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("SOFTHSM2_MODULE") {
        return PathBuf::from(path);
    }
    let candidates = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .expect("libsofthsm2.so not found: apt-get install softhsm2 (or set SOFTHSM2_MODULE)")
}

/// Writes a SoftHSM2 configuration keeping tokens under `dir`, points this
/// process at it, and initializes the test token.
fn init_token(dir: &Path) {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("token directory");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("softhsm2.conf");
    // SAFETY: this binary has a single test, which sets the variable before
    // anything loads the module, and no other thread reads the environment.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };

    let output = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            LABEL,
            "--pin",
            PIN,
            "--so-pin",
            SO_PIN,
        ])
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            panic!("softhsm2-util not found: apt-get install softhsm2")
        }
        Err(error) => panic!("running softhsm2-util: {error}"),
    };
    assert!(
        output.status.success(),
        "softhsm2-util --init-token failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn config(module: &Path, label: &str, pin: &str) -> Pkcs11Config {
    Pkcs11Config {
        module: module.to_path_buf(),
        token_label: label.into(),
        pin: Zeroizing::new(pin.into()),
    }
}

fn pkcs11_message<T: std::fmt::Debug>(result: Result<T, stormproof_keys::Error>) -> String {
    match result.expect_err("should fail").kind {
        ErrorKind::Pkcs11(message) => message,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// A session of the test's own on the test token, outside the code under
/// test.
fn own_session(module: &Path) -> Session {
    let pkcs11 = Pkcs11::new(module).expect("module loads");
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // The token under test initialized the module in this process.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(error) => panic!("initialize: {error}"),
    }
    let slot = pkcs11
        .get_slots_with_token()
        .expect("slots")
        .into_iter()
        .find(|slot| {
            pkcs11
                .get_token_info(*slot)
                .expect("token info")
                .label()
                .trim()
                == LABEL
        })
        .expect("test token");
    pkcs11.open_ro_session(slot).expect("session")
}

fn log_out(module: &Path) {
    own_session(module).logout().expect("logout");
}

/// Reads the private key's protection attributes through a session of our
/// own, as an auditor of the token would.
fn assert_private_key_is_protected(module: &Path, id: &str) {
    let session = own_session(module);
    match session.login(UserType::User, Some(&AuthPin::from(PIN))) {
        // Login is per application, and the open token already holds it.
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(error) => panic!("login: {error}"),
    }
    let keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id.as_bytes().to_vec()),
        ])
        .expect("find");
    assert_eq!(keys.len(), 1, "one private key with id {id}");
    let attributes = session
        .get_attributes(
            keys[0],
            &[
                AttributeType::Extractable,
                AttributeType::Sensitive,
                AttributeType::NeverExtractable,
                AttributeType::AlwaysSensitive,
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Label,
            ],
        )
        .expect("attributes");
    let mut seen = 0;
    for attribute in &attributes {
        match attribute {
            Attribute::Extractable(value) => assert!(!value, "{id}: CKA_EXTRACTABLE"),
            Attribute::Sensitive(value) => assert!(value, "{id}: CKA_SENSITIVE"),
            Attribute::NeverExtractable(value) => assert!(value, "{id}: CKA_NEVER_EXTRACTABLE"),
            Attribute::AlwaysSensitive(value) => assert!(value, "{id}: CKA_ALWAYS_SENSITIVE"),
            Attribute::Token(value) => assert!(value, "{id}: CKA_TOKEN"),
            Attribute::Private(value) => assert!(value, "{id}: CKA_PRIVATE"),
            Attribute::Label(value) => assert_eq!(value, id.as_bytes(), "{id}: CKA_LABEL"),
            other => panic!("unexpected attribute {other:?}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 7, "every attribute was returned: {attributes:?}");
    let value = session
        .get_attribute_info(keys[0], &[AttributeType::Value])
        .expect("attribute info");
    assert!(
        matches!(value[0], AttributeInfo::Sensitive),
        "{id}: CKA_VALUE must not be readable, got {:?}",
        value[0]
    );
}

#[test]
fn softhsm_token_generates_signs_and_protects_keys() {
    let dir = TempDir(std::env::temp_dir().join(format!(
        "stormproof-softhsm-{}",
        stormproof_types::random_id(8)
    )));
    init_token(&dir.0);
    let module = module_path();

    // Failures name what went wrong, and never echo the PIN.
    let message = pkcs11_message(Pkcs11Token::open(&config(&module, "no-such-token", PIN)));
    assert!(message.contains("no-such-token"), "{message}");
    let message = pkcs11_message(Pkcs11Token::open(&config(&module, LABEL, "wrong-pin-9876")));
    assert!(message.contains("PinIncorrect"), "{message}");
    assert!(!message.contains("wrong-pin-9876"), "{message}");

    let config = config(&module, LABEL, PIN);
    let token = Pkcs11Token::open(&config).expect("token opens");
    for debug in [format!("{config:?}"), format!("{token:?}")] {
        assert!(!debug.contains(PIN), "PIN in debug output: {debug}");
    }

    let mut signers = Vec::new();
    for (alg, id) in [(Alg::EdDsa, "ed25519-1"), (Alg::Es256, "p256-1")] {
        let public = token.generate(alg, id).expect("generates");
        assert_eq!(public.alg(), alg);
        assert_eq!(
            token.find_public_key(alg, id).expect("finds public key"),
            public
        );

        let signer = token.signer(alg, id).expect("signer");
        assert_eq!(signer.alg(), alg);
        let message = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0";
        let signature = signer.sign(message).expect("signs");
        assert_eq!(signature.len(), 64, "{alg}: JWS signature length");
        assert!(
            public.verify(message, &signature),
            "{alg}: signature verifies"
        );
        assert!(
            !public.verify(b"another message", &signature),
            "{alg}: bound to message"
        );

        assert_private_key_is_protected(&module, id);

        let message = pkcs11_message(token.generate(alg, id));
        assert!(message.contains("already exists"), "{message}");
        signers.push((signer, public));
    }

    let message = pkcs11_message(token.signer(Alg::EdDsa, "no-such-key"));
    assert!(message.contains("no-such-key"), "{message}");
    let message = pkcs11_message(token.signer(Alg::Es256, "ed25519-1"));
    assert!(message.contains("not a ES256 key"), "{message}");
    let message = pkcs11_message(token.signer(Alg::EdDsa, "p256-1"));
    assert!(message.contains("not a EdDSA key"), "{message}");
    assert!(token.find_public_key(Alg::Es256, "no-such-key").is_err());

    // Signing from several threads at once borrows several sessions.
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let signers = &signers;
            scope.spawn(move || {
                for round in 0..10 {
                    for (signer, public) in signers {
                        let message = format!("thread {thread} round {round}");
                        let signature = signer.sign(message.as_bytes()).expect("signs");
                        assert!(public.verify(message.as_bytes(), &signature));
                    }
                }
            });
        }
    });

    // Login belongs to the application, so anyone in the process may log
    // it out; the token logs in again and looks its keys up afresh.
    log_out(&module);
    for (signer, public) in &signers {
        let signature = signer.sign(b"after logout").expect("signs after logout");
        assert!(public.verify(b"after logout", &signature));
    }

    // Keys persist on the token: after closing every session (which logs the
    // application out) and opening again, the same keys sign.
    let publics: Vec<_> = signers.iter().map(|(_, public)| public.clone()).collect();
    drop(signers);
    assert_eq!(Arc::strong_count(&token), 1, "signers hold the token");
    drop(token);
    let token = Pkcs11Token::open(&config).expect("token opens again");
    for (alg, id, public) in [
        (Alg::EdDsa, "ed25519-1", &publics[0]),
        (Alg::Es256, "p256-1", &publics[1]),
    ] {
        let signer: Arc<dyn Signer> = token.signer(alg, id).expect("signer after reopening");
        let signature = signer.sign(b"after reopening").expect("signs");
        assert!(
            public.verify(b"after reopening", &signature),
            "{alg} after reopening"
        );
    }
}
