//! Fuzzes public-key parsing from untrusted input: a JWK as embedded in a
//! DPoP proof header (`PublicKey::from_jwk`), and raw key bytes for both
//! algorithms (`PublicKey::from_bytes`) followed by `verify`.
//!
//! Checks: no panic; `verify` on any key with any signature bytes just
//! answers; a key that parses round-trips through `to_bytes` and `to_jwk`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stormproof_keys::PublicKey;
use stormproof_types::Alg;

/// Exercises a key that parsed: verification never panics, and its stored
/// and JWK forms read back as the same key.
fn exercise(key: &PublicKey, signature: &[u8]) {
    let _ = key.verify(b"x", signature);
    let _ = key.verify(signature, signature);
    let alg = key.alg();
    assert_eq!(
        PublicKey::from_bytes(alg, &key.to_bytes()).ok().as_ref(),
        Some(key),
        "to_bytes round trip"
    );
    if let serde_json::Value::Object(jwk) = key.to_jwk("k") {
        assert_eq!(
            PublicKey::from_jwk(&jwk).ok().as_ref(),
            Some(key),
            "JWK round trip"
        );
    }
    let _ = key.thumbprint();
}

fuzz_target!(|data: &[u8]| {
    // A JWK object, e.g. the `jwk` member of a DPoP proof header.
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(data)
        && let Ok(key) = PublicKey::from_jwk(&map)
    {
        exercise(&key, data);
    }

    // The whole input as raw key bytes, then as a signature under that key.
    for alg in [Alg::EdDsa, Alg::Es256] {
        if let Ok(key) = PublicKey::from_bytes(alg, data) {
            exercise(&key, data);
        }
    }

    // A key prefix followed by a signature, so `verify` sees real 64-byte
    // signatures under keys that parse: 32 bytes for Ed25519, 33 (compressed)
    // or 65 (uncompressed) SEC1 bytes for P-256.
    for (alg, len) in [(Alg::EdDsa, 32), (Alg::Es256, 33), (Alg::Es256, 65)] {
        if let Some((key_bytes, signature)) = data.split_at_checked(len)
            && let Ok(key) = PublicKey::from_bytes(alg, key_bytes)
        {
            exercise(&key, signature);
        }
    }
});
