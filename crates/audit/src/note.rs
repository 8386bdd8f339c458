//! Checkpoints: the log's signed tree heads, as C2SP `tlog-checkpoint` bodies
//! in C2SP signed notes with Ed25519 signatures (type `0x01`).
//!
//! A checkpoint's note text is four lines: the origin, the tree size, the
//! base64 root, and one extension line `checkpoint <n>` numbering the log's
//! checkpoints from 0 without gaps. The number is signed with the rest, so
//! removing a checkpoint from the middle of the `checkpoints` file (or
//! reordering them) is found by [`crate::verify`]. Then a blank line and the
//! signature line `— <key name> <base64(key ID || signature)>`.
//!
//! The signing key belongs to the audit log alone: `checkpoint.key` holds it
//! sealed under the master key with the context `audit-checkpoint`, and
//! `checkpoint.vkey` the public verifier key in the `sumdb/note` form
//! `<name>+<hex key ID>+<base64(0x01 || public key)>`, which is what anyone
//! checking a checkpoint needs.
//!
//! The `checkpoints` file holds one JSON line `{"note":"..."}` per
//! checkpoint, appended and synced; JSON frames the multi-line note
//! unambiguously.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind as IoKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stormproof_keys::MasterKey;
use zeroize::Zeroizing;

use crate::{Error, ErrorKind};

/// The sealed signing key.
pub(crate) const KEY_FILE: &str = "checkpoint.key";
/// The public verifier key.
pub(crate) const VKEY_FILE: &str = "checkpoint.vkey";
/// The append-only list of signed checkpoints.
pub(crate) const CHECKPOINTS_FILE: &str = "checkpoints";
/// The master key's associated data for the audit key, so a sealed token
/// key can never be opened as the audit key or the reverse.
const SEAL_CONTEXT: &str = "audit-checkpoint";
/// Signature type identifier of Ed25519 in C2SP signed notes.
const SIG_ED25519: u8 = 0x01;
/// The signature line's prefix: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Prefix of the extension line numbering the log's checkpoints.
const NUMBER_PREFIX: &str = "checkpoint ";
/// Larger notes are refused unread: ours are a few hundred bytes, and the
/// spec's 16 signatures of post-quantum size fit well within this.
const MAX_NOTE: usize = 128 * 1024;
/// Signature lines beyond this are refused (the spec asks for at least 16).
const MAX_SIGNATURES: usize = 64;

/// A signed tree head of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, the note's first line.
    pub origin: String,
    /// How many records the tree covers.
    pub size: u64,
    /// The RFC 6962 root of the first `size` records.
    pub root: [u8; 32],
    /// The full signed note text, as stored and as handed out.
    pub note: String,
}

impl Checkpoint {
    /// Parses a checkpoint note and checks its signature with `vkey`, a
    /// verifier key `<name>+<hex key ID>+<base64(0x01 || public key)>`.
    /// Signatures by other keys are ignored, as the signed-note spec asks;
    /// a failing signature by this key, or none at all, is an error.
    pub fn parse_and_verify(note: &str, vkey: &str) -> Result<Checkpoint, Error> {
        NoteVerifier::parse(vkey)?.checkpoint(note)
    }

    /// The checkpoint's number in its log, from its `checkpoint <n>`
    /// extension line; `None` for notes this crate did not write.
    pub(crate) fn number(&self) -> Option<u64> {
        let (text, _) = split_note(&self.note).ok()?;
        let body = Body::parse(text).ok()?;
        match body.extensions.as_slice() {
            [line] => parse_decimal(line.strip_prefix(NUMBER_PREFIX)?),
            _ => None,
        }
    }

    /// The note text without signatures: what two copies of one checkpoint
    /// share even if a witness added its cosignature to one of them.
    pub(crate) fn text(&self) -> &str {
        split_note(&self.note).map_or("", |(text, _)| text)
    }
}

/// The note text and the signature block after the last blank line.
fn split_note(note: &str) -> Result<(&str, &str), Error> {
    let at = note
        .rfind("\n\n")
        .ok_or_else(|| corrupt("a signed note needs a blank line before its signatures"))?;
    Ok((&note[..at + 1], &note[at + 2..]))
}

/// A checkpoint body: origin, size, root and extension lines.
struct Body<'a> {
    origin: &'a str,
    size: u64,
    root: [u8; 32],
    extensions: Vec<&'a str>,
}

impl<'a> Body<'a> {
    fn parse(text: &'a str) -> Result<Self, Error> {
        let text = text
            .strip_suffix('\n')
            .ok_or_else(|| corrupt("checkpoint text must end in a newline"))?;
        let mut lines = text.split('\n');
        let origin = lines.next().filter(|l| !l.is_empty());
        let size = lines.next().and_then(parse_decimal);
        let root = lines.next().and_then(decode_root);
        let (Some(origin), Some(size), Some(root)) = (origin, size, root) else {
            return Err(corrupt(
                "checkpoint text must be an origin, a decimal size and a base64 root",
            ));
        };
        let extensions: Vec<&str> = lines.collect();
        if extensions.iter().any(|l| l.is_empty()) {
            return Err(corrupt("checkpoint extension lines must not be empty"));
        }
        Ok(Self {
            origin,
            size,
            root,
            extensions,
        })
    }
}

/// ASCII decimal without sign or leading zeroes.
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// Standard padded base64 of exactly 32 bytes, in its one canonical spelling.
fn decode_root(text: &str) -> Option<[u8; 32]> {
    let bytes = STANDARD.decode(text).ok()?;
    let root: [u8; 32] = bytes.try_into().ok()?;
    (STANDARD.encode(root) == text).then_some(root)
}

/// Key names: non-empty, no Unicode spaces, no `+` (the signed-note spec).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// `SHA-256(name || 0x0A || 0x01 || public key)[:4]`, the recommended key ID.
fn key_id(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', SIG_ED25519]);
    hasher.update(public.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A parsed verifier key.
#[derive(Debug, Clone)]
pub(crate) struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses `<name>+<hex key ID>+<base64(0x01 || public key)>`.
    pub(crate) fn parse(vkey: &str) -> Result<Self, Error> {
        let bad = |why: &str| -> Error { ErrorKind::Key(format!("verifier key: {why}")).into() };
        // The name has no '+', the base64 may: split at the first two.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hex), Some(encoded)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected <name>+<key ID>+<key>"));
        };
        if !valid_name(name) {
            return Err(bad("invalid key name"));
        }
        if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the key ID must be 8 hex digits"));
        }
        let id = u32::from_str_radix(hex, 16)
            .map_err(|_| bad("the key ID must be 8 hex digits"))?
            .to_be_bytes();
        let raw = STANDARD
            .decode(encoded)
            .map_err(|_| bad("the key is not base64"))?;
        let Some((&SIG_ED25519, public)) = raw.split_first() else {
            return Err(bad("not an Ed25519 (type 0x01) key"));
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 point"))?;
        if key_id(name, &key) != id {
            return Err(bad("the key ID does not match the name and key"));
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// Checks a checkpoint note's signatures and parses it.
    pub(crate) fn checkpoint(&self, note: &str) -> Result<Checkpoint, Error> {
        let body = Body::parse(self.open(note)?)?;
        Ok(Checkpoint {
            origin: body.origin.to_owned(),
            size: body.size,
            root: body.root,
            note: note.to_owned(),
        })
    }

    /// Checks `note`'s signatures and returns its text.
    pub(crate) fn open<'a>(&self, note: &'a str) -> Result<&'a str, Error> {
        if note.len() > MAX_NOTE {
            return Err(corrupt("signed note too large"));
        }
        if note.chars().any(|c| c < ' ' && c != '\n') {
            return Err(corrupt("signed note contains control characters"));
        }
        let (text, signatures) = split_note(note)?;
        let signatures = signatures
            .strip_suffix('\n')
            .ok_or_else(|| corrupt("a signed note ends with a newline"))?;
        let mut verified = 0usize;
        for (count, line) in signatures.split('\n').enumerate() {
            if count >= MAX_SIGNATURES {
                return Err(corrupt("too many signatures"));
            }
            let (name, encoded) = line
                .strip_prefix(SIG_PREFIX)
                .and_then(|rest| rest.split_once(' '))
                .ok_or_else(|| corrupt("malformed signature line"))?;
            if !valid_name(name) {
                return Err(corrupt("malformed signature line"));
            }
            let blob = STANDARD
                .decode(encoded)
                .map_err(|_| corrupt("malformed signature line"))?;
            let (id, signature) = blob
                .split_at_checked(4)
                .ok_or_else(|| corrupt("malformed signature line"))?;
            if name != self.name || id != self.id {
                continue; // Someone else's signature, such as a witness's.
            }
            let signature = <[u8; 64]>::try_from(signature)
                .map(|bytes| Signature::from_bytes(&bytes))
                .map_err(|_| corrupt("checkpoint signature does not verify"))?;
            self.key
                .verify_strict(text.as_bytes(), &signature)
                .map_err(|_| corrupt("checkpoint signature does not verify"))?;
            verified += 1;
        }
        if verified == 0 {
            return Err(corrupt("the note carries no signature by the audit key"));
        }
        Ok(text)
    }
}

/// The audit log's checkpoint signing key, with its key name. The key is
/// zeroized on drop.
pub struct CheckpointSigner {
    key: SigningKey,
    name: String,
    id: [u8; 4],
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "CheckpointSigner({})", self.verifier_key())
    }
}

impl CheckpointSigner {
    /// The dedicated audit key, separate from every token key:
    /// `dir/checkpoint.key` holds it sealed under `master` (context
    /// `audit-checkpoint`), `dir/checkpoint.vkey` its verifier key named
    /// `name`. Creates both if absent, the key file with mode 0600. An
    /// existing verifier key that does not match the key and `name` is an
    /// error: checkpoints signed under two names could not be checked with
    /// one verifier key.
    pub fn load_or_create(dir: &Path, master: &MasterKey, name: &str) -> Result<Self, Error> {
        if !valid_name(name) {
            return Err(ErrorKind::Key(format!(
                "{name:?} is not a key name: it must be non-empty, without spaces or '+'"
            ))
            .into());
        }
        fs::create_dir_all(dir)?;
        let key_path = dir.join(KEY_FILE);
        let key = match fs::read(&key_path) {
            Ok(sealed) => Self::unseal(master, &sealed)?,
            Err(e) if e.kind() == IoKind::NotFound => {
                let key = SigningKey::generate(&mut rand::rngs::OsRng);
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| ErrorKind::Key(format!("encoding the audit key: {e}")))?;
                let sealed = master
                    .seal(der.as_bytes(), SEAL_CONTEXT)
                    .map_err(|e| ErrorKind::Key(format!("sealing the audit key: {e}")))?;
                // create_new: of two processes starting at once, one creates
                // the key and the other reads it.
                match OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&key_path)
                {
                    Ok(mut file) => {
                        file.write_all(&sealed)?;
                        file.sync_all()?;
                        sync_dir(dir)?;
                        tracing::info!(message = "created the audit checkpoint key", path = %key_path.display());
                        key
                    }
                    Err(e) if e.kind() == IoKind::AlreadyExists => {
                        Self::unseal(master, &fs::read(&key_path)?)?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let signer = Self::from_key(key, name)?;
        let vkey_path = dir.join(VKEY_FILE);
        let expected = signer.verifier_key();
        match fs::read_to_string(&vkey_path) {
            Ok(stored) if stored.strip_suffix('\n') == Some(expected.as_str()) => {}
            Ok(stored) => {
                return Err(ErrorKind::Key(format!(
                    "{} holds {:?}, but the audit key under the name {name:?} is {expected:?}",
                    vkey_path.display(),
                    stored.trim_end()
                ))
                .into());
            }
            Err(e) if e.kind() == IoKind::NotFound => {
                write_atomically(dir, VKEY_FILE, format!("{expected}\n").as_bytes())?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(signer)
    }

    fn unseal(master: &MasterKey, sealed: &[u8]) -> Result<SigningKey, Error> {
        let der = master.open(sealed, SEAL_CONTEXT).map_err(|e| {
            ErrorKind::Key(format!(
                "{KEY_FILE} does not open under this master key: {e}"
            ))
        })?;
        if let Ok(seed) = <&[u8; 32]>::try_from(der.as_slice()) {
            let seed = Zeroizing::new(*seed);
            return Ok(SigningKey::from_bytes(&seed));
        }
        SigningKey::from_pkcs8_der(&der)
            .map_err(|e| ErrorKind::Key(format!("{KEY_FILE} is not an Ed25519 key: {e}")).into())
    }

    pub(crate) fn from_key(key: SigningKey, name: &str) -> Result<Self, Error> {
        if !valid_name(name) {
            return Err(ErrorKind::Key(format!("{name:?} is not a key name")).into());
        }
        let id = key_id(name, &key.verifying_key());
        Ok(Self {
            key,
            name: name.to_owned(),
            id,
        })
    }

    /// The public verifier key, `<name>+<hex key ID>+<base64(0x01 || key)>`.
    pub fn verifier_key(&self) -> String {
        let mut typed = [0u8; 33];
        typed[0] = SIG_ED25519;
        typed[1..].copy_from_slice(self.key.verifying_key().as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            u32::from_be_bytes(self.id),
            STANDARD.encode(typed)
        )
    }

    pub(crate) fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `text` (which ends in a newline) into a signed note.
    pub(crate) fn sign_note(&self, text: &str) -> String {
        let signature = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&self.id);
        blob.extend_from_slice(&signature.to_bytes());
        format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        )
    }

    /// Signs checkpoint number `number` of the tree of `size` records.
    pub(crate) fn sign_checkpoint(
        &self,
        origin: &str,
        size: u64,
        root: &[u8; 32],
        number: u64,
    ) -> Checkpoint {
        let text = format!(
            "{origin}\n{size}\n{}\n{NUMBER_PREFIX}{number}\n",
            STANDARD.encode(root)
        );
        Checkpoint {
            origin: origin.to_owned(),
            size,
            root: *root,
            note: self.sign_note(&text),
        }
    }
}

/// Whether `origin` can be a checkpoint's first line.
pub(crate) fn valid_origin(origin: &str) -> bool {
    !origin.is_empty() && !origin.chars().any(|c| c < ' ')
}

/// One line of the `checkpoints` file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredCheckpoint {
    note: String,
}

/// The `checkpoints` file line for `checkpoint`, newline included.
pub(crate) fn encode_line(checkpoint: &Checkpoint) -> Result<Vec<u8>, Error> {
    let mut line = serde_json::to_vec(&StoredCheckpoint {
        note: checkpoint.note.clone(),
    })
    .map_err(|e| corrupt(&format!("encoding a checkpoint: {e}")))?;
    line.push(b'\n');
    Ok(line)
}

/// The note of one `checkpoints` line (without its newline), if the line is
/// exactly what [`encode_line`] writes: any other spelling of the same JSON
/// is an edit.
pub(crate) fn decode_line(line: &[u8]) -> Result<String, Error> {
    let stored: StoredCheckpoint =
        serde_json::from_slice(line).map_err(|_| corrupt("a checkpoint line is not JSON"))?;
    let canonical =
        serde_json::to_vec(&stored).map_err(|_| corrupt("a checkpoint line is not JSON"))?;
    if canonical != line {
        return Err(corrupt(
            "a checkpoint line is not in the form this log writes",
        ));
    }
    Ok(stored.note)
}

/// Reads `dir/checkpoint.vkey`, `None` if it does not exist.
pub(crate) fn read_vkey(dir: &Path) -> Result<Option<String>, Error> {
    match fs::read_to_string(dir.join(VKEY_FILE)) {
        Ok(text) => {
            let vkey = text
                .strip_suffix('\n')
                .filter(|v| !v.contains('\n'))
                .ok_or_else(|| corrupt("checkpoint.vkey is not one line"))?;
            Ok(Some(vkey.to_owned()))
        }
        Err(e) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The last complete line among the first `limit` bytes of `path` (without
/// its newline), and the length of the file up to and including that line's
/// newline: what follows is a torn write. `None` if the file is missing or
/// holds no complete line.
pub(crate) fn last_line(path: &Path, limit: u64) -> Result<Option<(Vec<u8>, u64)>, Error> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == IoKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let len = file.metadata()?.len().min(limit);
    let mut window = 4096u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        Read::by_ref(&mut file)
            .take(len - start)
            .read_to_end(&mut tail)?;
        let Some(end) = tail.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                return Ok(None);
            }
            window = window.saturating_mul(4);
            continue;
        };
        match tail[..end].iter().rposition(|&b| b == b'\n') {
            Some(before) => {
                return Ok(Some((
                    tail[before + 1..end].to_vec(),
                    start + end as u64 + 1,
                )));
            }
            None if start == 0 => return Ok(Some((tail[..end].to_vec(), end as u64 + 1))),
            None => window = window.saturating_mul(4),
        }
    }
}

/// The latest checkpoint stored in `dir`, its signature checked with
/// `dir/checkpoint.vkey`. Read-only; `None` if the log has none yet.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<Checkpoint>, Error> {
    let Some((line, _)) = last_line(&dir.join(CHECKPOINTS_FILE), u64::MAX)? else {
        return Ok(None);
    };
    let vkey = read_vkey(dir)?.ok_or_else(|| corrupt("checkpoint.vkey is missing"))?;
    let note = decode_line(&line)?;
    Checkpoint::parse_and_verify(&note, &vkey).map(Some)
}

/// Writes `dir/name` through a synced temporary file and a rename, so the
/// file is either absent or complete.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Syncs a directory, so entries created or renamed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

fn corrupt(what: &str) -> Error {
    ErrorKind::Corrupt(what.to_owned()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of golang.org/x/mod/sumdb/note: a private key
    /// `PRIVATE+KEY+PeterNeumann+c74f20a3+<base64(0x01 || seed)>` and the
    /// note it signs. Ed25519 is deterministic, so ours must match byte for
    /// byte.
    const PETER_SEED: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                              then you don't know what your problem is.\n";
    const PETER_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
                              then you don't know what your problem is.\n\
                              \n\
                              \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn peter() -> CheckpointSigner {
        let raw = STANDARD.decode(PETER_SEED).unwrap();
        let seed: [u8; 32] = raw[1..].try_into().unwrap();
        CheckpointSigner::from_key(SigningKey::from_bytes(&seed), "PeterNeumann").unwrap()
    }

    #[test]
    fn signs_the_go_example_byte_for_byte() {
        let signer = peter();
        assert_eq!(signer.verifier_key(), PETER_VKEY);
        assert_eq!(signer.sign_note(PETER_TEXT), PETER_NOTE);
        let verifier = NoteVerifier::parse(PETER_VKEY).unwrap();
        assert_eq!(verifier.open(PETER_NOTE).unwrap(), PETER_TEXT);
    }

    #[test]
    fn refuses_edited_notes_and_wrong_keys() {
        let verifier = NoteVerifier::parse(PETER_VKEY).unwrap();
        let edited = PETER_NOTE.replace("cryptography", "cryptographY");
        assert!(verifier.open(&edited).is_err());
        // Another key: its signature is ignored, so none is left.
        let other =
            CheckpointSigner::from_key(SigningKey::from_bytes(&[7; 32]), "PeterNeumann").unwrap();
        assert!(verifier.open(&other.sign_note(PETER_TEXT)).is_err());
        // A stranger's extra signature line is ignored.
        let cosigned = format!(
            "{PETER_NOTE}{}",
            other.sign_note(PETER_TEXT).rsplit_once("\n\n").unwrap().1
        );
        assert_eq!(verifier.open(&cosigned).unwrap(), PETER_TEXT);
        for bad in [
            "",
            "no blank line\n",
            "text\n\n\u{2014} PeterNeumann x08go\n",
            "text\n\n- PeterNeumann AAAA\n",
        ] {
            assert!(verifier.open(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn verifier_keys_are_parsed_strictly() {
        assert!(NoteVerifier::parse(PETER_VKEY).is_ok());
        for bad in [
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3",
            "",
        ] {
            assert!(NoteVerifier::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn checkpoints_are_tlog_checkpoint_notes() {
        let signer = peter();
        let root = [0xab; 32];
        let checkpoint = signer.sign_checkpoint("example.com/log", 20852163, &root, 7);
        let text = format!(
            "example.com/log\n20852163\n{}\ncheckpoint 7\n",
            STANDARD.encode(root)
        );
        assert!(
            checkpoint
                .note
                .starts_with(&format!("{text}\n\u{2014} PeterNeumann "))
        );
        let parsed = Checkpoint::parse_and_verify(&checkpoint.note, PETER_VKEY).unwrap();
        assert_eq!(parsed, checkpoint);
        assert_eq!(parsed.number(), Some(7));
        assert_eq!(parsed.text(), text);
        // The body is strict: no leading zeroes, canonical base64, no empty lines.
        for body in [
            "o\n020852163\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",
            "o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6t=\n",
            "o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n\n",
            "\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",
            "o\n1\n",
        ] {
            assert!(
                Checkpoint::parse_and_verify(&signer.sign_note(body), PETER_VKEY).is_err(),
                "{body:?}"
            );
        }
    }

    #[test]
    fn stored_lines_round_trip_only_in_their_canonical_form() {
        let checkpoint = peter().sign_checkpoint("o", 1, &[1; 32], 0);
        let line = encode_line(&checkpoint).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let body = &line[..line.len() - 1];
        assert_eq!(decode_line(body).unwrap(), checkpoint.note);
        let spaced = String::from_utf8(body.to_vec()).unwrap().replace(":", ": ");
        assert!(decode_line(spaced.as_bytes()).is_err());
        assert!(decode_line(br#"{"note":"x","extra":1}"#).is_err());
    }
}
