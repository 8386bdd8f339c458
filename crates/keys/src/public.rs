//! Public keys: signature verification, JWK form and thumbprints.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use stormproof_types::Alg;

use crate::{Error, ErrorKind};

/// A public verification key of a supported algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// P-256.
    P256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// The algorithm this key verifies; fixed by the key, never by a token.
    pub fn alg(&self) -> Alg {
        match self {
            PublicKey::Ed25519(_) => Alg::EdDsa,
            PublicKey::P256(_) => Alg::Es256,
        }
    }

    /// Verifies a JWS signature over `message`.
    ///
    /// Ed25519 uses strict verification (no small-order keys, canonical
    /// `S`). ES256 signatures must be exactly `r || s` of 32 bytes each, with
    /// neither zero.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(key) => {
                let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
                    return false;
                };
                let signature = ed25519_dalek::Signature::from_bytes(&bytes);
                key.verify_strict(message, &signature).is_ok()
            }
            PublicKey::P256(key) => {
                if signature.len() != 64 {
                    return false;
                }
                // from_slice refuses r = 0 or s = 0 and values >= n.
                let Ok(signature) = p256::ecdsa::Signature::from_slice(signature) else {
                    return false;
                };
                key.verify(message, &signature).is_ok()
            }
        }
    }

    /// Raw bytes for storage: 32 bytes for Ed25519, SEC1 uncompressed for P-256.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(key) => key.to_bytes().to_vec(),
            PublicKey::P256(key) => key.to_encoded_point(false).as_bytes().to_vec(),
        }
    }

    /// Reads bytes written by [`PublicKey::to_bytes`] for `alg`.
    pub fn from_bytes(alg: Alg, bytes: &[u8]) -> Result<Self, Error> {
        match alg {
            Alg::EdDsa => {
                let bytes: [u8; 32] = bytes.try_into().map_err(|_| ErrorKind::PublicKey)?;
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map(PublicKey::Ed25519)
                    .map_err(|_| ErrorKind::PublicKey.into())
            }
            Alg::Es256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                .map(PublicKey::P256)
                .map_err(|_| ErrorKind::PublicKey.into()),
        }
    }

    /// The key as a public JWK (RFC 7517), with `kid`, `alg` and `use`.
    pub fn to_jwk(&self, kid: &str) -> Value {
        let mut jwk = self.thumbprint_members();
        jwk.insert("kid".into(), kid.into());
        jwk.insert("alg".into(), self.alg().jws_name().into());
        jwk.insert("use".into(), "sig".into());
        Value::Object(jwk)
    }

    /// Reads a public JWK, as embedded in a DPoP proof. Private members
    /// (`d`) are refused: a proof must never carry a private key.
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<Self, Error> {
        let field = |name: &str| -> Result<Vec<u8>, Error> {
            let text = jwk
                .get(name)
                .and_then(Value::as_str)
                .ok_or(ErrorKind::PublicKey)?;
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| ErrorKind::PublicKey.into())
        };
        if jwk.contains_key("d") {
            return Err(ErrorKind::PublicKey.into());
        }
        match (
            jwk.get("kty").and_then(Value::as_str),
            jwk.get("crv").and_then(Value::as_str),
        ) {
            (Some("OKP"), Some("Ed25519")) => Self::from_bytes(Alg::EdDsa, &field("x")?),
            (Some("EC"), Some("P-256")) => {
                let (x, y) = (field("x")?, field("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(ErrorKind::PublicKey.into());
                }
                let mut sec1 = Vec::with_capacity(65);
                sec1.push(4);
                sec1.extend_from_slice(&x);
                sec1.extend_from_slice(&y);
                Self::from_bytes(Alg::Es256, &sec1)
            }
            _ => Err(ErrorKind::PublicKey.into()),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url.
    pub fn thumbprint(&self) -> String {
        jwk_thumbprint(&self.thumbprint_members())
    }

    /// The required members only, which is what a thumbprint hashes.
    fn thumbprint_members(&self) -> Map<String, Value> {
        let value = match self {
            PublicKey::Ed25519(key) => json!({
                "crv": "Ed25519",
                "kty": "OKP",
                "x": URL_SAFE_NO_PAD.encode(key.to_bytes()),
            }),
            PublicKey::P256(key) => {
                let point = key.to_encoded_point(false);
                let x = point
                    .x()
                    .map(|x| URL_SAFE_NO_PAD.encode(x))
                    .unwrap_or_default();
                let y = point
                    .y()
                    .map(|y| URL_SAFE_NO_PAD.encode(y))
                    .unwrap_or_default();
                json!({"crv": "P-256", "kty": "EC", "x": x, "y": y})
            }
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

/// RFC 7638 thumbprint of the required members of a JWK. serde_json's map
/// is ordered by key, which is exactly the lexicographic order RFC 7638 asks
/// for, and its output has no whitespace.
pub fn jwk_thumbprint(required: &Map<String, Value>) -> String {
    let canonical = Value::Object(required.clone()).to_string();
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // The RSA example of RFC 7638 section 3.1 checks the canonical form.
        let jwk = json!({
            "e": "AQAB",
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        });
        let Value::Object(map) = jwk else { return };
        assert_eq!(
            jwk_thumbprint(&map),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn jwk_round_trip() {
        for alg in [Alg::EdDsa, Alg::Es256] {
            let key = crate::SecretKey::generate(alg).public_key();
            let Value::Object(jwk) = key.to_jwk("k") else {
                return;
            };
            assert_eq!(PublicKey::from_jwk(&jwk).expect("reads"), key);
            assert_eq!(
                PublicKey::from_bytes(alg, &key.to_bytes()).expect("reads"),
                key
            );
        }
    }

    #[test]
    fn es256_zero_signature_is_refused() {
        let key = crate::SecretKey::generate(Alg::Es256).public_key();
        assert!(!key.verify(b"m", &[0u8; 64]));
    }
}
