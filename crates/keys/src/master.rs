//! The master key that seals software signing keys at rest.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::{Error, ErrorKind};

/// Version byte in front of every sealed blob, so the format can change.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;

/// A 256-bit key-encryption key, zeroized on drop.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Reads the key from `path`, or creates it there with mode 0600 if the
    /// file does not exist. An existing file readable by group or others is
    /// refused: a master key anyone can read protects nothing.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        let fail = |what: &str, e: std::io::Error| -> Error {
            ErrorKind::MasterKey(format!("{what} {}: {e}", path.display())).into()
        };
        match OpenOptions::new().read(true).open(path) {
            Ok(mut file) => {
                let mode = file
                    .metadata()
                    .map_err(|e| fail("stat", e))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(ErrorKind::MasterKey(format!(
                        "{} is accessible to group or others (mode {:o}); chmod 600 it",
                        path.display(),
                        mode & 0o777
                    ))
                    .into());
                }
                let mut bytes = Zeroizing::new(Vec::with_capacity(33));
                file.read_to_end(&mut bytes).map_err(|e| fail("read", e))?;
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    ErrorKind::MasterKey(format!("{} must hold exactly 32 bytes", path.display()))
                })?;
                Ok(Self(Zeroizing::new(key)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(key.as_mut());
                // create_new: two processes starting at once must not both write.
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| fail("create", e))?;
                file.write_all(key.as_ref()).map_err(|e| fail("write", e))?;
                file.sync_all().map_err(|e| fail("sync", e))?;
                tracing::info!(message = "created master key", path = %path.display());
                Ok(Self(key))
            }
            Err(e) => Err(fail("open", e)),
        }
    }

    /// Encrypts `plaintext` with associated data `context`. Used for signing
    /// keys and other secrets at rest (TOTP seeds).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, Error> {
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| ErrorKind::Sign("sealing failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts a blob from [`MasterKey::seal`]; fails if the context differs.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        let (&version, rest) = sealed.split_first().ok_or(ErrorKind::Unseal)?;
        if version != SEALED_V1 || rest.len() < NONCE_LEN {
            return Err(ErrorKind::Unseal.into());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| ErrorKind::Unseal.into())
    }
}
