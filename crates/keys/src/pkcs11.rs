//! Keys generated and used on a PKCS#11 token (an HSM, or SoftHSM2 in tests).
//!
//! PKCS#11 login state belongs to the application, not to a session: it
//! lasts while at least one session to the token is open. The token logs in
//! once, when it opens, and keeps that session in a small pool of idle
//! sessions so the login survives. Signing borrows a session from the pool
//! (or opens one, which inherits the login), so concurrent signers do not
//! queue behind one session. A cryptoki `Session` is `Send` but not `Sync`;
//! only the pool is shared, behind a mutex, and a borrowed session is used
//! by one thread at a time.
//!
//! If the module reports that sessions are gone (token removed, HSM
//! restarted), the whole pool is dropped, cached object handles are
//! invalidated, and the operation is retried once on a fresh session,
//! logging in again with the PIN kept for that purpose. If it reports a key
//! handle invalid, the key is looked up again (after logging in again if
//! the application was logged out) and the operation retried once.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::{Digest, Sha256};
use stormproof_types::Alg;
use zeroize::Zeroizing;

use crate::{Error, ErrorKind, PublicKey, Signer};

/// DER OID 1.3.101.112 (id-Ed25519, RFC 8410), the `CKA_EC_PARAMS` PKCS#11
/// 3.0 specifies for Ed25519.
const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER PrintableString "edwards25519": the older curve-name form some tokens
/// still store, accepted when reading an existing key.
const ED25519_PARAMS_NAME: &[u8] = &[
    0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
];
/// DER OID 1.2.840.10045.3.1.7 (prime256v1).
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Where the PKCS#11 module and token are, and how to log in.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// Path of the module library, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The user PIN.
    pub pin: Zeroizing<String>,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .finish_non_exhaustive()
    }
}

/// An open, logged-in PKCS#11 token.
pub struct Pkcs11Token {
    pkcs11: Pkcs11,
    slot: Slot,
    module: PathBuf,
    token_label: String,
    /// Kept to log in again after the module drops every session; zeroized on
    /// drop and redacted in `Debug` by `secrecy`.
    pin: AuthPin,
    /// Idle sessions. The one opened by `open` holds the login.
    idle: Mutex<Vec<Session>>,
    /// Bumped whenever sessions were lost, so signers stop trusting object
    /// handles they found before: a restarted module may reuse them.
    generation: AtomicU64,
    /// Makes the "is this id free" check and the generation one step, so two
    /// callers cannot both create a key under the same id.
    generating: Mutex<()>,
}

impl std::fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Token")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

/// A failure inside a session: the module's, with what we were doing, or
/// ours about what the token holds.
enum Failure {
    Module(&'static str, CkError),
    Key(String),
}

impl Failure {
    /// Whether the session (and with it, probably every pooled session and
    /// the login) is gone, so a fresh session may succeed.
    fn session_lost(&self) -> bool {
        matches!(
            self,
            Failure::Module(
                _,
                CkError::Pkcs11(
                    RvError::SessionHandleInvalid
                        | RvError::SessionClosed
                        | RvError::DeviceRemoved
                        | RvError::TokenNotPresent
                        | RvError::UserNotLoggedIn,
                    _,
                )
            )
        )
    }

    /// Whether the module no longer recognises an object handle we hold.
    fn handle_invalid(&self) -> bool {
        matches!(
            self,
            Failure::Module(
                _,
                CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _)
            )
        )
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Module(during, error) => ErrorKind::Pkcs11(describe(during, &error)).into(),
            Failure::Key(message) => ErrorKind::Pkcs11(message).into(),
        }
    }
}

/// Error text from the module's return value. The cryptoki errors carry
/// only return codes and function names, never attribute values, so no key
/// material or PIN can end up here.
fn describe(during: &str, error: &CkError) -> String {
    match error {
        CkError::Pkcs11(rv, function) => format!("{during}: C_{function:?} failed: {rv:?}"),
        other => format!("{during}: {other}"),
    }
}

fn during(what: &'static str) -> impl FnOnce(CkError) -> Failure {
    move |error| Failure::Module(what, error)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every value behind these mutexes is valid whatever a panicking holder
    // was doing, so poisoning carries no information.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pkcs11Token {
    /// Loads the module, finds the token by label and logs in.
    ///
    /// The module stays initialized for the rest of the process: other
    /// tokens may share it, and PKCS#11 initialization is process-wide.
    pub fn open(config: &Pkcs11Config) -> Result<Arc<Self>, Error> {
        let pkcs11 = Pkcs11::new(&config.module).map_err(during("loading the module"))?;
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            // Another token in this process already initialized the module.
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(error) => return Err(during("initializing the module")(error).into()),
        }
        let slot = find_slot(&pkcs11, &config.token_label)?;
        let token = Self {
            pkcs11,
            slot,
            module: config.module.clone(),
            token_label: config.token_label.clone(),
            pin: AuthPin::from(config.pin.as_str()),
            idle: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            generating: Mutex::new(()),
        };
        // Logging in now, not on first use, makes a wrong PIN fail at start-up.
        let session = token.open_session()?;
        lock(&token.idle).push(session);
        tracing::info!(
            module = %config.module.display(),
            token = %config.token_label,
            "PKCS#11 token open"
        );
        Ok(Arc::new(token))
    }

    /// Generates a key pair on the token: private half sensitive and
    /// non-extractable, both halves persistent with `CKA_ID` = `id`.
    ///
    /// Refuses an `id` already used by a key on the token, since signing
    /// looks keys up by `CKA_ID` and must find exactly one.
    pub fn generate(&self, alg: Alg, id: &str) -> Result<PublicKey, Error> {
        if id.is_empty() {
            return Err(ErrorKind::Pkcs11("a key id must not be empty".into()).into());
        }
        let _generating = lock(&self.generating);
        // Not retried on a lost session: the pair may already exist.
        self.with_session(|session| {
            for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
                if !find_objects(session, class, id)?.is_empty() {
                    return Err(Failure::Key(format!("a key with id {id:?} already exists")));
                }
            }
            let (mechanism, params) = match alg {
                Alg::EdDsa => (Mechanism::EccEdwardsKeyPairGen, ED25519_PARAMS),
                Alg::Es256 => (Mechanism::EccKeyPairGen, P256_PARAMS),
            };
            let public_template = [
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Verify(true),
                Attribute::Id(id.as_bytes().to_vec()),
                Attribute::Label(id.as_bytes().to_vec()),
                Attribute::EcParams(params.to_vec()),
            ];
            let private_template = [
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Id(id.as_bytes().to_vec()),
                Attribute::Label(id.as_bytes().to_vec()),
            ];
            let (public, private) = session
                .generate_key_pair(&mechanism, &public_template, &private_template)
                .map_err(during("generating the key pair"))?;
            read_public_key(session, public, alg).inspect_err(|_| {
                // A pair whose public half we cannot read is unusable, and
                // would block its id forever.
                let _ = session.destroy_object(private);
                let _ = session.destroy_object(public);
            })
        })
        .map_err(Error::from)
    }

    /// The public key of the key pair whose `CKA_ID` is `id`, for example to
    /// publish it again after a restart.
    pub fn find_public_key(&self, alg: Alg, id: &str) -> Result<PublicKey, Error> {
        self.with_session_retried(|session| {
            let handle = only_one(
                find_objects(session, ObjectClass::PUBLIC_KEY, id)?,
                "public",
                id,
            )?;
            check_key_type(session, handle, alg, id)?;
            read_public_key(session, handle, alg)
        })
        .map_err(Error::from)
    }

    /// A signer that signs with the private key whose `CKA_ID` is `id`.
    ///
    /// Fails now, not on first use, if there is no such key or it is not a
    /// key for `alg`.
    pub fn signer(self: &Arc<Self>, alg: Alg, id: &str) -> Result<Arc<dyn Signer>, Error> {
        let generation = self.generation.load(Ordering::Acquire);
        let key = self.with_session_retried(|session| find_private_key(session, alg, id))?;
        Ok(Arc::new(Pkcs11Signer {
            token: Arc::clone(self),
            alg,
            id: id.to_owned(),
            key: Mutex::new((generation, key)),
        }))
    }

    /// Opens a session and makes sure the application is logged in.
    fn open_session(&self) -> Result<Session, Failure> {
        let session = self
            .pkcs11
            .open_rw_session(self.slot)
            .map_err(during("opening a session"))?;
        self.log_in(&session)?;
        Ok(session)
    }

    /// Logs the application in through `session` unless it already is.
    fn log_in(&self, session: &Session) -> Result<(), Failure> {
        let state = session
            .get_session_info()
            .map_err(during("reading the session state"))?
            .session_state();
        if matches!(state, SessionState::RwUser | SessionState::RoUser) {
            return Ok(());
        }
        match session.login(UserType::User, Some(&self.pin)) {
            // Another thread logged in between the two calls.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(error) => Err(during("logging in")(error)),
        }
    }

    /// Runs `op` on an idle session, or a new one, and returns the session
    /// to the pool unless the module says it is gone.
    fn with_session<T>(&self, op: impl Fn(&Session) -> Result<T, Failure>) -> Result<T, Failure> {
        let pooled = lock(&self.idle).pop();
        let session = match pooled {
            Some(session) => session,
            None => self.open_session()?,
        };
        let result = op(&session);
        let Err(failure) = &result else {
            lock(&self.idle).push(session);
            return result;
        };
        if failure.session_lost() {
            // The other pooled sessions died with this one; closing them
            // would only return more errors.
            let stale = std::mem::take(&mut *lock(&self.idle));
            self.generation.fetch_add(1, Ordering::AcqRel);
            drop(stale);
            drop(session);
            return result;
        }
        if failure.handle_invalid() {
            // Either the handle went stale, or the application was logged
            // out (SoftHSM then hides private keys and reports their handles
            // as invalid rather than CKR_USER_NOT_LOGGED_IN). Look keys up
            // again, and log in again if that was the cause.
            self.generation.fetch_add(1, Ordering::AcqRel);
            if self.log_in(&session).is_err() {
                drop(session);
                return result;
            }
        }
        // After a failed operation the session has no active operation left
        // (PKCS#11 ends it on error), so it is reusable.
        lock(&self.idle).push(session);
        result
    }

    /// [`Self::with_session`], retried once if the failure was one a fresh
    /// session, a new login or a new key lookup may cure. Only for
    /// operations safe to repeat.
    fn with_session_retried<T>(
        &self,
        op: impl Fn(&Session) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        match self.with_session(&op) {
            Err(failure) if failure.session_lost() || failure.handle_invalid() => {
                tracing::warn!(
                    token = %self.token_label,
                    error = %Error::from(failure),
                    "PKCS#11 session or key handle lost, retrying"
                );
                self.with_session(&op)
            }
            result => result,
        }
    }
}

/// The slot holding the one token labelled `label`.
fn find_slot(pkcs11: &Pkcs11, label: &str) -> Result<Slot, Error> {
    let slots = pkcs11
        .get_slots_with_token()
        .map_err(during("listing slots"))?;
    let mut found = None;
    for slot in slots {
        let info = pkcs11
            .get_token_info(slot)
            .map_err(during("reading token information"))?;
        // Labels are blank-padded to 32 bytes in the token information.
        if info.label().trim() == label {
            if found.is_some() {
                // Picking one would make which keys we use depend on slot order.
                return Err(ErrorKind::Pkcs11(format!(
                    "more than one token is labelled {label:?}"
                ))
                .into());
            }
            found = Some(slot);
        }
    }
    found.ok_or_else(|| ErrorKind::Pkcs11(format!("no token is labelled {label:?}")).into())
}

fn find_objects(
    session: &Session,
    class: ObjectClass,
    id: &str,
) -> Result<Vec<ObjectHandle>, Failure> {
    session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Id(id.as_bytes().to_vec()),
        ])
        .map_err(during("finding the key"))
}

fn only_one(handles: Vec<ObjectHandle>, which: &str, id: &str) -> Result<ObjectHandle, Failure> {
    match handles.as_slice() {
        [handle] => Ok(*handle),
        [] => Err(Failure::Key(format!(
            "no {which} key with id {id:?} on the token"
        ))),
        _ => Err(Failure::Key(format!(
            "more than one {which} key with id {id:?} on the token"
        ))),
    }
}

fn find_private_key(session: &Session, alg: Alg, id: &str) -> Result<ObjectHandle, Failure> {
    let handle = only_one(
        find_objects(session, ObjectClass::PRIVATE_KEY, id)?,
        "private",
        id,
    )?;
    check_key_type(session, handle, alg, id)?;
    Ok(handle)
}

/// Refuses a key of another type or curve than `alg` needs: signing with it
/// would produce signatures no verifier accepts, or for the wrong `alg`.
fn check_key_type(
    session: &Session,
    handle: ObjectHandle,
    alg: Alg,
    id: &str,
) -> Result<(), Failure> {
    let attributes = session
        .get_attributes(handle, &[AttributeType::KeyType, AttributeType::EcParams])
        .map_err(during("reading the key's type"))?;
    let mut key_type = None;
    let mut params = None;
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(value) => key_type = Some(value),
            Attribute::EcParams(value) => params = Some(value),
            _ => {}
        }
    }
    let (expected_type, accepted_params) = match alg {
        Alg::EdDsa => (
            KeyType::EC_EDWARDS,
            &[ED25519_PARAMS, ED25519_PARAMS_NAME][..],
        ),
        Alg::Es256 => (KeyType::EC, &[P256_PARAMS][..]),
    };
    // Some tokens do not expose CKA_EC_PARAMS on private keys; the key type
    // and the signature length check still catch most mismatches then.
    let params_ok = params.is_none_or(|params| accepted_params.contains(&params.as_slice()));
    if key_type == Some(expected_type) && params_ok {
        Ok(())
    } else {
        Err(Failure::Key(format!(
            "the key with id {id:?} is not a {alg} key"
        )))
    }
}

fn read_public_key(
    session: &Session,
    handle: ObjectHandle,
    alg: Alg,
) -> Result<PublicKey, Failure> {
    let attributes = session
        .get_attributes(handle, &[AttributeType::EcPoint])
        .map_err(during("reading the public key"))?;
    let point = attributes
        .into_iter()
        .find_map(|attribute| match attribute {
            Attribute::EcPoint(point) => Some(point),
            _ => None,
        });
    point
        .and_then(|point| parse_ec_point(alg, &point))
        .ok_or_else(|| Failure::Key(format!("the token returned a malformed {alg} public key")))
}

/// Reads `CKA_EC_POINT`. PKCS#11 says it is a DER OCTET STRING wrapping the
/// point, but some modules return the raw point; the DER reading is tried
/// first, and a raw point cannot be misread as DER because the unwrapped
/// content would have the wrong length for the curve.
fn parse_ec_point(alg: Alg, point: &[u8]) -> Option<PublicKey> {
    der_octet_string(point)
        .and_then(|inner| PublicKey::from_bytes(alg, inner).ok())
        .or_else(|| PublicKey::from_bytes(alg, point).ok())
}

fn der_octet_string(der: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = der.split_first()?;
    if tag != 0x04 {
        return None;
    }
    let (&length, rest) = rest.split_first()?;
    let (length, content) = match length {
        0..=0x7f => (usize::from(length), rest),
        0x81 => {
            let (&length, rest) = rest.split_first()?;
            (usize::from(length), rest)
        }
        _ => return None,
    };
    (content.len() == length).then_some(content)
}

/// Signs with one private key on a token.
#[derive(Debug)]
struct Pkcs11Signer {
    token: Arc<Pkcs11Token>,
    alg: Alg,
    id: String,
    /// The key's handle and the token generation it was found in.
    key: Mutex<(u64, ObjectHandle)>,
}

impl Pkcs11Signer {
    /// The key's handle, looked up again if sessions were lost since it was
    /// found.
    fn key(&self, session: &Session) -> Result<ObjectHandle, Failure> {
        let generation = self.token.generation.load(Ordering::Acquire);
        let (found_in, handle) = *lock(&self.key);
        if found_in == generation {
            return Ok(handle);
        }
        let handle = find_private_key(session, self.alg, &self.id)?;
        *lock(&self.key) = (generation, handle);
        Ok(handle)
    }
}

impl Signer for Pkcs11Signer {
    fn alg(&self) -> Alg {
        self.alg
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let digest;
        let (mechanism, data) = match self.alg {
            // Pure Ed25519 (RFC 8032) hashes inside; EdDSA in JWS is pure.
            Alg::EdDsa => (
                Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                message,
            ),
            // CKM_ECDSA signs a digest; hashing here rather than using
            // CKM_ECDSA_SHA256 works with modules that lack the latter and
            // sends 32 bytes instead of the whole message.
            Alg::Es256 => {
                digest = Sha256::digest(message);
                (Mechanism::Ecdsa, digest.as_slice())
            }
        };
        let signature = self.token.with_session_retried(|session| {
            let key = self.key(session)?;
            session
                .sign(&mechanism, key, data)
                .map_err(during("signing"))
        })?;
        // Both JWS forms are 64 bytes; PKCS#11 ECDSA output is already the
        // raw r || s JWS wants, not DER.
        if signature.len() != 64 {
            return Err(ErrorKind::Pkcs11(format!(
                "the token returned a {}-byte signature for {}, expected 64",
                signature.len(),
                self.alg
            ))
            .into());
        }
        Ok(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_points_are_read_in_der_and_raw_form() {
        for alg in [Alg::EdDsa, Alg::Es256] {
            let key = crate::SecretKey::generate(alg).public_key();
            let raw = key.to_bytes();
            // The DER lengths SoftHSM2 uses: 04 20 for Ed25519, 04 41 for P-256.
            let length = match alg {
                Alg::EdDsa => 0x20,
                Alg::Es256 => 0x41,
            };
            assert_eq!(raw.len(), usize::from(length));
            let mut der = vec![0x04, length];
            der.extend_from_slice(&raw);
            assert_eq!(parse_ec_point(alg, &raw), Some(key.clone()));
            assert_eq!(parse_ec_point(alg, &der), Some(key));
        }
        assert_eq!(parse_ec_point(Alg::EdDsa, &[0x04, 0x01, 0x00]), None);
        assert_eq!(parse_ec_point(Alg::Es256, &[]), None);
    }

    #[test]
    fn raw_points_that_look_like_der_headers_are_read_raw() {
        // A raw Ed25519 key starting 04 1e parses as a (short) DER header.
        for _ in 0..64 {
            let key = crate::SecretKey::generate(Alg::EdDsa).public_key();
            let mut raw = key.to_bytes();
            raw[0] = 0x04;
            raw[1] = 30;
            if let Ok(expected) = PublicKey::from_bytes(Alg::EdDsa, &raw) {
                assert_eq!(parse_ec_point(Alg::EdDsa, &raw), Some(expected));
                return;
            }
        }
    }
}
