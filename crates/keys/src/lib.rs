//! Signing keys: generation, sealing at rest, signing, and the public keys
//! the verifier checks signatures with.
//!
//! Two backends hold private keys. The software backend keeps PKCS#8 keys
//! sealed with XChaCha20-Poly1305 under a master key read from a 0600 file,
//! bound by associated data to the tenant and kid so a sealed key cannot be
//! moved to another tenant's record. The PKCS#11 backend generates keys on a
//! token as non-extractable objects and signs through the module.
//!
//! This crate never decides which key to use or whether a key is still
//! valid: that is the issuer's and the verifier's job, from key records.
//! Private key material is zeroized on drop and has no `Debug` output.
//!
//! ```
//! use stormproof_keys::{SecretKey, Signer};
//! use stormproof_types::Alg;
//! let key = SecretKey::generate(Alg::EdDsa);
//! let signature = key.sign(b"hello").unwrap();
//! assert!(key.public_key().verify(b"hello", &signature));
//! ```
#![deny(missing_docs)]

mod master;
mod pkcs11;
mod public;

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use stormproof_types::Alg;
use zeroize::Zeroizing;

pub use master::MasterKey;
pub use pkcs11::{Pkcs11Config, Pkcs11Token};
pub use public::{PublicKey, jwk_thumbprint};

/// A key operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    /// What failed.
    pub kind: ErrorKind,
}

/// What failed in a key operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The master key file could not be read, created or was malformed.
    #[error("master key: {0}")]
    MasterKey(String),
    /// A sealed key did not open: wrong master key, or moved or edited.
    #[error("sealed key does not open under this master key and record")]
    Unseal,
    /// A PEM or DER private key could not be read.
    #[error("private key could not be read: {0}")]
    Import(String),
    /// A public key or JWK is not a supported key.
    #[error("unsupported or malformed public key")]
    PublicKey,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
    /// The PKCS#11 module or token failed.
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}

/// Something that signs JWS signing inputs with one key.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The algorithm this key signs with.
    fn alg(&self) -> Alg;
    /// Signs `message`, returning the JWS signature bytes (64 bytes for both
    /// EdDSA and ES256, the latter as `r || s`).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error>;
}

/// A private key held in memory. Zeroized on drop by the underlying types.
pub enum SecretKey {
    /// An Ed25519 key.
    Ed25519(ed25519_dalek::SigningKey),
    /// A P-256 ECDSA key.
    P256(p256::ecdsa::SigningKey),
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material, not even in debug output.
        write!(f, "SecretKey({})", self.alg())
    }
}

impl SecretKey {
    /// Generates a fresh key from the operating system's random source.
    pub fn generate(alg: Alg) -> Self {
        let mut rng = rand::rngs::OsRng;
        match alg {
            Alg::EdDsa => SecretKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
            Alg::Es256 => SecretKey::P256(p256::ecdsa::SigningKey::random(&mut rng)),
        }
    }

    /// Reads a PKCS#8 PEM private key, Ed25519 or P-256.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SecretKey::Ed25519(key));
        }
        match p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            Ok(key) => Ok(SecretKey::P256(key)),
            Err(_) => Err(ErrorKind::Import(
                "expected a PKCS#8 PEM Ed25519 or P-256 private key".into(),
            )
            .into()),
        }
    }

    /// Reads a PKCS#8 DER private key, Ed25519 or P-256.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            return Ok(SecretKey::Ed25519(key));
        }
        p256::ecdsa::SigningKey::from_pkcs8_der(der)
            .map(SecretKey::P256)
            .map_err(|e| ErrorKind::Import(e.to_string()).into())
    }

    /// The key as PKCS#8 DER, in a buffer zeroized on drop.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let doc = match self {
            SecretKey::Ed25519(key) => key.to_pkcs8_der(),
            SecretKey::P256(key) => p256::pkcs8::EncodePrivateKey::to_pkcs8_der(key),
        }
        .map_err(|e| ErrorKind::Import(e.to_string()))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            SecretKey::Ed25519(key) => PublicKey::Ed25519(key.verifying_key()),
            SecretKey::P256(key) => PublicKey::P256(*key.verifying_key()),
        }
    }

    /// Seals the key under `master`, bound to `context` (tenant and kid).
    pub fn seal(&self, master: &MasterKey, context: &str) -> Result<Vec<u8>, Error> {
        master.seal(&self.to_pkcs8_der()?, context)
    }

    /// Opens a key sealed by [`SecretKey::seal`] with the same context.
    pub fn unseal(master: &MasterKey, sealed: &[u8], context: &str) -> Result<Self, Error> {
        let der = master.open(sealed, context)?;
        Self::from_pkcs8_der(&der)
    }
}

impl Signer for SecretKey {
    fn alg(&self) -> Alg {
        match self {
            SecretKey::Ed25519(_) => Alg::EdDsa,
            SecretKey::P256(_) => Alg::Es256,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        use ed25519_dalek::Signer as _;
        Ok(match self {
            SecretKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            SecretKey::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_sign_and_verify() {
        for alg in [Alg::EdDsa, Alg::Es256] {
            let key = SecretKey::generate(alg);
            let signature = key.sign(b"input").expect("signs");
            let public = key.public_key();
            assert_eq!(public.alg(), alg);
            assert!(public.verify(b"input", &signature));
            assert!(!public.verify(b"other", &signature));
        }
    }

    #[test]
    fn sealed_keys_are_bound_to_their_context() {
        let dir = tempfile_dir();
        let master = MasterKey::load_or_create(&dir.join("master.key")).expect("master key");
        let key = SecretKey::generate(Alg::EdDsa);
        let sealed = key.seal(&master, "acme/k1").expect("seals");
        let opened = SecretKey::unseal(&master, &sealed, "acme/k1").expect("opens");
        assert_eq!(opened.public_key(), key.public_key());
        assert!(SecretKey::unseal(&master, &sealed, "other/k1").is_err());
        let mut edited = sealed.clone();
        if let Some(last) = edited.last_mut() {
            *last ^= 1;
        }
        assert!(SecretKey::unseal(&master, &edited, "acme/k1").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn pkcs8_pem_import() {
        let key = SecretKey::generate(Alg::Es256);
        let SecretKey::P256(inner) = &key else { return };
        let pem =
            p256::pkcs8::EncodePrivateKey::to_pkcs8_pem(inner, Default::default()).expect("pem");
        let imported = SecretKey::from_pkcs8_pem(&pem).expect("imports");
        assert_eq!(imported.public_key(), key.public_key());
        assert!(SecretKey::from_pkcs8_pem("-----BEGIN NONSENSE-----").is_err());
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "stormproof-keys-{}",
            stormproof_types::random_id(8)
        ));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }
}
