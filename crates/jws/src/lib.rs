//! Compact JWS (RFC 7515) and JWT claims (RFC 7519, RFC 9068, RFC 9449),
//! parsed strictly and encoded, with no IO and no key handling.
//!
//! This crate owns the wire format only. It never verifies a signature and
//! never chooses a key or an algorithm: it hands the signing input, the
//! signature bytes and the decoded header to the verifier, which decides.
//!
//! Strictness is the point. Input is refused when it is over [`MAX_TOKEN_LEN`],
//! not exactly three dot-separated parts, not canonical unpadded base64url,
//! not a JSON object, has a duplicate member anywhere, or has a registered
//! member of the wrong JSON type.
//!
//! ```
//! use stormproof_jws::{Compact, Header};
//! let token = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.e30.AAAA";
//! let compact = Compact::parse(token).unwrap();
//! let header = Header::parse(&compact.header_json).unwrap();
//! assert_eq!(header.alg, "EdDSA");
//! assert_eq!(header.kid.as_deref(), Some("k1"));
//! ```
#![deny(missing_docs)]

mod claims;
mod strict;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use claims::{AccessClaims, Audience, Confirmation, DpopClaims, IdClaims};
pub use strict::{Error, ErrorKind};

/// The longest token accepted, in bytes. Stormproof's own tokens are under
/// 1 KiB; 8 KiB leaves room for large scopes while bounding work per request.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The longest decoded header accepted, in bytes.
pub const MAX_HEADER_LEN: usize = 1024;

/// The most members a header or claims object may have, and the deepest
/// nesting of arrays and objects inside it.
pub const MAX_MEMBERS: usize = 64;
/// See [`MAX_MEMBERS`].
pub const MAX_DEPTH: usize = 4;

/// A compact JWS split into its parts, with header, payload and signature
/// decoded. Nothing here is trusted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compact<'a> {
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: the bytes that were signed.
    pub signing_input: &'a [u8],
    /// The decoded protected header.
    pub header_json: Vec<u8>,
    /// The decoded payload.
    pub payload: Vec<u8>,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

impl<'a> Compact<'a> {
    /// Splits and decodes a compact serialization.
    pub fn parse(token: &'a str) -> Result<Self, Error> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(ErrorKind::TooLong.into());
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ErrorKind::NotThreeParts.into());
        };
        if h.is_empty() || p.is_empty() || s.is_empty() {
            return Err(ErrorKind::EmptyPart.into());
        }
        let header_json = decode_part(h)?;
        if header_json.len() > MAX_HEADER_LEN {
            return Err(ErrorKind::TooLong.into());
        }
        let payload = decode_part(p)?;
        let signature = decode_part(s)?;
        Ok(Self {
            signing_input: &token.as_bytes()[..h.len() + 1 + p.len()],
            header_json,
            payload,
            signature,
        })
    }
}

/// Decodes one part, accepting only canonical unpadded base64url.
fn decode_part(part: &str) -> Result<Vec<u8>, Error> {
    // The engine refuses padding and non-zero trailing bits, which makes the
    // encoding canonical: one byte string has exactly one accepted text.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ErrorKind::Base64.into())
}

/// The protected header of a JWS, with every member Stormproof understands.
///
/// Members that would let a token name its own verification key (`jwk`,
/// `jku`, `x5u`, `x5c`) are recorded so the caller can refuse them; an
/// access token carrying any of them is rejected by the verifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// The `alg` member, as written. Only informative: the key record decides.
    pub alg: String,
    /// The `typ` member.
    pub typ: Option<String>,
    /// The `kid` member.
    pub kid: Option<String>,
    /// The `crit` member's names; any at all is unsupported.
    pub crit: Option<Vec<String>>,
    /// An embedded public key, allowed only in DPoP proofs.
    pub jwk: Option<serde_json::Map<String, serde_json::Value>>,
    /// Whether `jku`, `x5u`, `x5c` or `x5t` appeared.
    pub has_key_reference: bool,
}

impl Header {
    /// Parses a decoded header strictly.
    pub fn parse(json: &[u8]) -> Result<Self, Error> {
        let object = strict::object(json)?;
        let mut header = Header::default();
        let mut alg = None;
        for (name, value) in object {
            match name.as_str() {
                "alg" => alg = Some(strict::string(value, "alg")?),
                "typ" => header.typ = Some(strict::string(value, "typ")?),
                "kid" => header.kid = Some(strict::string(value, "kid")?),
                "crit" => header.crit = Some(strict::string_array(value, "crit")?),
                "jwk" => header.jwk = Some(strict::into_object(value, "jwk")?),
                "jku" | "x5u" | "x5c" | "x5t" | "x5t#S256" => header.has_key_reference = true,
                _ => {}
            }
        }
        header.alg = alg.ok_or(ErrorKind::MissingMember("alg"))?;
        Ok(header)
    }
}

/// Encodes `header` and `claims` and signs them with `sign`, returning the
/// compact serialization. `sign` receives the signing input.
pub fn encode<E>(
    header: &serde_json::Value,
    claims: &serde_json::Value,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<String, E> {
    let mut token = String::with_capacity(512);
    URL_SAFE_NO_PAD.encode_string(header.to_string(), &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut token);
    let signature = sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// The base64url encoding (unpadded) of `bytes`, as used throughout JOSE.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes canonical unpadded base64url.
pub fn b64_decode(text: &str) -> Result<Vec<u8>, Error> {
    decode_part(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        b64(s)
    }

    fn token(h: &str, p: &str) -> String {
        format!("{}.{}.AAAA", enc(h), enc(p))
    }

    #[test]
    fn compact_shapes() {
        let good = token(r#"{"alg":"EdDSA"}"#, "{}");
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        let cases: Vec<(String, Option<ErrorKind>)> = vec![
            (good.clone(), None),
            ("a.b".into(), Some(ErrorKind::NotThreeParts)),
            (format!("{good}.x"), Some(ErrorKind::NotThreeParts)),
            (format!("{}..AAAA", enc("{}")), Some(ErrorKind::EmptyPart)),
            (format!("{}.e30=.AAAA", enc("{}")), Some(ErrorKind::Base64)),
            (format!("{}.e30.AAA+", enc("{}")), Some(ErrorKind::Base64)),
            // "e31" decodes to the same bytes as "e30" only if trailing bits are ignored.
            (format!("{}.e31.AAAA", enc("{}")), Some(ErrorKind::Base64)),
            (long, Some(ErrorKind::TooLong)),
        ];
        for (input, expect) in cases {
            let got = Compact::parse(&input).err().map(|e| e.kind);
            assert_eq!(got, expect, "{input:.40}");
        }
    }

    #[test]
    fn headers() {
        // (alg, kid, has_key_reference) or the error.
        type Expect = Result<(&'static str, Option<&'static str>, bool), ErrorKind>;
        let cases: &[(&str, Expect)] = &[
            (
                r#"{"alg":"EdDSA","kid":"k"}"#,
                Ok(("EdDSA", Some("k"), false)),
            ),
            (r#"{"alg":"none"}"#, Ok(("none", None, false))),
            (
                r#"{"alg":"ES256","jku":"https://x"}"#,
                Ok(("ES256", None, true)),
            ),
            (
                r#"{"alg":"ES256","x5c":["MII"]}"#,
                Ok(("ES256", None, true)),
            ),
            (
                r#"{"alg":"EdDSA","alg":"EdDSA"}"#,
                Err(ErrorKind::DuplicateMember),
            ),
            (r#"{"alg":1}"#, Err(ErrorKind::WrongType("alg"))),
            (r#"{"kid":"k"}"#, Err(ErrorKind::MissingMember("alg"))),
            (r#"["alg"]"#, Err(ErrorKind::NotAnObject)),
            (r#"{"alg":"EdDSA"} x"#, Err(ErrorKind::Json)),
            (
                r#"{"alg":"EdDSA","x":{"a":1,"a":2}}"#,
                Err(ErrorKind::DuplicateMember),
            ),
            (
                r#"{"alg":"EdDSA","x":[[[[[1]]]]]}"#,
                Err(ErrorKind::TooDeep),
            ),
        ];
        for (input, expect) in cases {
            let got = Header::parse(input.as_bytes())
                .map(|h| (h.alg.clone(), h.kid.clone(), h.has_key_reference))
                .map_err(|e| e.kind);
            let expect = expect
                .clone()
                .map(|(a, k, r)| (a.to_owned(), k.map(str::to_owned), r));
            assert_eq!(got, expect, "{input}");
        }
    }

    #[test]
    fn encode_round_trips() {
        let header = serde_json::json!({"alg": "EdDSA", "kid": "k1"});
        let claims = serde_json::json!({"sub": "alice"});
        let token = encode::<()>(&header, &claims, |_| Ok(vec![1, 2, 3])).unwrap_or_default();
        let compact = Compact::parse(&token).expect("parses");
        assert_eq!(compact.signature, vec![1, 2, 3]);
        assert_eq!(
            Header::parse(&compact.header_json)
                .map(|h| h.alg)
                .ok()
                .as_deref(),
            Some("EdDSA")
        );
    }
}
