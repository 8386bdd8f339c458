//! DPoP proofs (RFC 9449): the holder-of-key check for sender-constrained
//! tokens, and the memory of proof ids already used.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Mutex;

use serde_json::Value;
use sha2::{Digest, Sha256};
use stormproof_jws::{Compact, DpopClaims, Header};
use stormproof_keys::PublicKey;
use stormproof_types::{Alg, UnixTime};
use subtle::ConstantTimeEq;

use crate::reject::RejectReason;

/// JWK members that carry private or symmetric key material. A proof that
/// embeds any of them leaked its key and proves nothing.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Checks a proof for a request and returns the RFC 7638 thumbprint of the
/// key that signed it. Replay is checked last, so a proof that fails any
/// other check never uses up its `jti`.
pub(crate) fn verify_proof(
    proof: &str,
    htm: &str,
    htu: &str,
    access_token: Option<&str>,
    now: UnixTime,
    window: i64,
    replay: &ReplayCache,
) -> Result<String, RejectReason> {
    let invalid = |_| RejectReason::DpopInvalid;
    let compact = Compact::parse(proof).map_err(invalid)?;
    let header = Header::parse(&compact.header_json).map_err(invalid)?;
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(RejectReason::DpopInvalid);
    }
    let alg = Alg::from_jws_name(&header.alg).ok_or(RejectReason::DpopInvalid)?;
    if header.has_key_reference || header.crit.is_some() {
        return Err(RejectReason::DpopInvalid);
    }
    let jwk = header.jwk.as_ref().ok_or(RejectReason::DpopInvalid)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(RejectReason::DpopInvalid);
    }
    let key = PublicKey::from_jwk(jwk).map_err(|_| RejectReason::DpopInvalid)?;
    // The key type fixes the algorithm; a header naming another one is
    // an attempt to have the key used in a way it was not meant for.
    if key.alg() != alg {
        return Err(RejectReason::DpopInvalid);
    }
    if jwk
        .get("alg")
        .is_some_and(|jwk_alg| jwk_alg != &Value::from(alg.jws_name()))
    {
        return Err(RejectReason::DpopInvalid);
    }
    if !key.verify(compact.signing_input, &compact.signature) {
        return Err(RejectReason::DpopInvalid);
    }
    let claims = DpopClaims::parse(&compact.payload).map_err(invalid)?;
    if claims.htm != htm {
        return Err(RejectReason::DpopInvalid);
    }
    match (normalize_htu(&claims.htu), normalize_htu(htu)) {
        (Some(claimed), Some(actual)) if claimed == actual => {}
        _ => return Err(RejectReason::DpopInvalid),
    }
    if now.abs_diff(claims.iat) > window.max(0).unsigned_abs() {
        return Err(RejectReason::DpopInvalid);
    }
    // Made before a restart that lost the ids then seen: it may be a replay.
    if claims.iat < replay.not_before() {
        return Err(RejectReason::DpopInvalid);
    }
    if let Some(token) = access_token {
        let expected = stormproof_jws::b64(Sha256::digest(token.as_bytes()));
        let presented = claims.ath.as_deref().unwrap_or_default();
        if !bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
            return Err(RejectReason::DpopMismatch);
        }
    }
    let jkt = key.thumbprint();
    if !replay.first_use(&jkt, &claims.jti, claims.iat.saturating_add(window), now) {
        return Err(RejectReason::DpopReplay);
    }
    Ok(jkt)
}

/// Normalises a URL for `htu` comparison (RFC 9449 section 4.3, RFC 3986
/// section 6.2.2 and 6.2.3): lowercase scheme and host, no default port, no
/// query or fragment, `/` for an empty path. Anything not `http` or `https`
/// with a plain host is refused.
pub(crate) fn normalize_htu(url: &str) -> Option<String> {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    // The port follows the last ':' unless that colon is inside an IPv6 literal.
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    if host.is_empty() {
        return None;
    }
    let mut normalized = format!("{scheme}://{}", host.to_ascii_lowercase());
    match port {
        Some(port) if !port.bytes().all(|b| b.is_ascii_digit()) => return None,
        Some("") => {}
        Some(port) if port == default_port => {}
        Some(port) => {
            normalized.push(':');
            normalized.push_str(port);
        }
        None => {}
    }
    normalized.push_str(path);
    Some(normalized)
}

/// Proof ids seen within their acceptance window, keyed by a hash of the
/// proof key's thumbprint and the `jti` so memory per entry is fixed.
#[derive(Debug, Default)]
pub(crate) struct ReplayCache {
    inner: Mutex<ReplayInner>,
}

#[derive(Debug, Default)]
struct ReplayInner {
    seen: HashMap<[u8; 32], UnixTime>,
    prune_at_len: usize,
    /// Proofs made before this are refused (see [`ReplayCache::restore`]).
    not_before: UnixTime,
}

/// The first line of the memory file while the server runs: a restart that
/// finds it knows the ids seen were lost.
const RUNNING: &[u8] = b"stormproof dpop-seen running\n";
/// The first line of the memory file a clean stop saved, before its entries
/// (32-byte id, 8-byte big-endian expiry).
const SAVED: &[u8] = b"stormproof dpop-seen saved\n";
const ENTRY: usize = 40;

/// Entries below which pruning is not worth the scan.
const PRUNE_FLOOR: usize = 1024;

impl ReplayCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReplayInner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn not_before(&self) -> UnixTime {
        self.lock().not_before
    }

    /// Takes up the ids a clean stop saved at `path`, then marks the file as
    /// in use. If the last run did not stop cleanly, its ids are lost:
    /// proofs dated before `now` are refused from then on, which costs a
    /// client at most one retry with a fresh proof. (A proof dated ahead of
    /// the clock when it was used is not covered; the window allows that
    /// skew both ways.) No file: a first start.
    pub(crate) fn restore(&self, path: &Path, now: UnixTime) -> io::Result<()> {
        let mut contents = Vec::new();
        match File::open(path) {
            Ok(mut file) => {
                file.read_to_end(&mut contents)?;
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        {
            let mut inner = self.lock();
            if let Some(entries) = contents.strip_prefix(SAVED) {
                for entry in entries.chunks_exact(ENTRY) {
                    let (id, expiry) = entry.split_at(32);
                    let (Ok(id), Ok(expiry)) =
                        (<[u8; 32]>::try_from(id), <[u8; 8]>::try_from(expiry))
                    else {
                        continue;
                    };
                    let expiry = i64::from_be_bytes(expiry);
                    if expiry >= now {
                        inner.seen.insert(id, expiry);
                    }
                }
            } else if !contents.is_empty() {
                // Running (a crash), or damaged: either way the ids are gone.
                tracing::warn!(
                    message = "DPoP proof ids were not saved at the last stop; refusing older proofs",
                    path = %path.display()
                );
                inner.not_before = now;
            }
        }
        write_atomically(path, RUNNING)
    }

    /// Saves the ids still within their window to `path`, for
    /// [`ReplayCache::restore`] after a clean stop.
    pub(crate) fn save(&self, path: &Path, now: UnixTime) -> io::Result<()> {
        let mut contents = SAVED.to_vec();
        {
            let inner = self.lock();
            contents.reserve(inner.seen.len() * ENTRY);
            for (id, expiry) in inner.seen.iter().filter(|(_, e)| **e >= now) {
                contents.extend_from_slice(id);
                contents.extend_from_slice(&expiry.to_be_bytes());
            }
        }
        write_atomically(path, &contents)
    }

    /// Records `(jkt, jti)` until `expires`; false if it was already there.
    fn first_use(&self, jkt: &str, jti: &str, expires: UnixTime, now: UnixTime) -> bool {
        let mut hasher = Sha256::new();
        hasher.update((jkt.len() as u64).to_be_bytes());
        hasher.update(jkt.as_bytes());
        hasher.update(jti.as_bytes());
        let id: [u8; 32] = hasher.finalize().into();
        let mut inner = self.lock();
        // Pruning when the map has doubled since the last prune keeps the
        // cost amortised constant per insert.
        if inner.seen.len() >= inner.prune_at_len.max(PRUNE_FLOOR) {
            inner.seen.retain(|_, expiry| *expiry >= now);
            inner.prune_at_len = inner.seen.len() * 2;
        }
        match inner.seen.get(&id) {
            Some(expiry) if *expiry >= now => false,
            _ => {
                inner.seen.insert(id, expires);
                true
            }
        }
    }
}

/// Replaces `path` with `contents` so that a crash leaves the old file or
/// the new one, never a mix.
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = File::create(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_normalisation() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "https://Mail.Example.COM/api",
                Some("https://mail.example.com/api"),
            ),
            (
                "HTTPS://mail.example.com:443/api?x=1#f",
                Some("https://mail.example.com/api"),
            ),
            (
                "http://127.0.0.1:8080/t/a/mail",
                Some("http://127.0.0.1:8080/t/a/mail"),
            ),
            ("http://127.0.0.1:80", Some("http://127.0.0.1/")),
            ("http://[::1]:8080/x", Some("http://[::1]:8080/x")),
            ("http://[::1]/x", Some("http://[::1]/x")),
            ("https://host/Path/Case", Some("https://host/Path/Case")),
            ("ftp://host/x", None),
            ("https://user@host/x", None),
            ("https:///x", None),
            ("https://host:8x/x", None),
            ("host/x", None),
        ];
        for (input, expect) in cases {
            assert_eq!(normalize_htu(input).as_deref(), *expect, "{input}");
        }
    }

    #[test]
    fn replay_cache_forgets_after_expiry() {
        let cache = ReplayCache::default();
        assert!(cache.first_use("k", "j", 100, 50));
        assert!(!cache.first_use("k", "j", 100, 60));
        assert!(cache.first_use("k2", "j", 100, 60));
        assert!(cache.first_use("k", "j", 200, 101));
    }

    #[test]
    fn saved_ids_come_back_and_a_lost_memory_refuses_older_proofs() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("dpop-seen");

        let first = ReplayCache::default();
        first.restore(&path, 50).expect("first start");
        assert_eq!(first.not_before(), 0, "no file: a first start");
        assert!(first.first_use("k", "live", 200, 50));
        assert!(first.first_use("k", "expired", 60, 50));
        first.save(&path, 100).expect("save");

        let second = ReplayCache::default();
        second.restore(&path, 110).expect("clean restart");
        assert_eq!(second.not_before(), 0);
        assert!(!second.first_use("k", "live", 200, 110), "saved id refused");
        assert!(
            second.first_use("k", "expired", 200, 110),
            "expired id dropped"
        );

        // The second run ends without saving: the file still says running.
        let third = ReplayCache::default();
        third.restore(&path, 120).expect("restart after a crash");
        assert_eq!(third.not_before(), 120);

        std::fs::write(&path, b"garbage").expect("damage");
        let fourth = ReplayCache::default();
        fourth
            .restore(&path, 130)
            .expect("restart on a damaged file");
        assert_eq!(fourth.not_before(), 130);
    }
}
