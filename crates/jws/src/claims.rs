//! The claim sets Stormproof issues and accepts, read strictly by type.

use std::cell::Cell;

use serde::Serialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::strict::{self, Error, ErrorKind};

/// The `aud` claim: one string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is among the values.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// The `cnf` claim of a sender-constrained token (RFC 9449 section 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confirmation {
    /// The SHA-256 JWK thumbprint of the DPoP key.
    pub jkt: String,
}

/// The claims of a Stormproof access token (RFC 9068 plus `tid` and `sid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessClaims {
    /// Issuer: `<public-url>/t/<tenant>`.
    pub iss: String,
    /// Subject: the user's id, or the client id for client credentials.
    pub sub: String,
    /// Audience: this server.
    pub aud: Audience,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Token id, the ledger's key.
    pub jti: String,
    /// Tenant name.
    pub tid: String,
    /// Sign-in session id.
    pub sid: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The DPoP key binding, when the token is sender-constrained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

impl AccessClaims {
    /// Parses a decoded payload strictly.
    pub fn parse(json: &[u8]) -> Result<Self, Error> {
        // One pass straight into typed fields: no intermediate map. This is
        // on the verifier's uncached path, where every microsecond counts
        // against the signature check it sits beside.
        let failure = Cell::new(None);
        let mut de = serde_json::Deserializer::from_slice(json);
        let visitor = AccessVisitor { failure: &failure };
        let parsed = de::Deserializer::deserialize_map(&mut de, visitor)
            .and_then(|claims| de.end().map(|()| claims));
        match parsed {
            Ok(claims) => claims.finish(),
            Err(_) => Err(failure.take().unwrap_or(ErrorKind::Json).into()),
        }
    }
}

/// The fields of an access token as they are read, before required ones
/// are checked.
#[derive(Default)]
struct PartialAccess {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
    tid: Option<String>,
    sid: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    cnf: Option<Confirmation>,
}

impl PartialAccess {
    fn finish(self) -> Result<AccessClaims, Error> {
        let missing = |name| Error::from(ErrorKind::MissingMember(name));
        Ok(AccessClaims {
            iss: self.iss.ok_or_else(|| missing("iss"))?,
            sub: self.sub.ok_or_else(|| missing("sub"))?,
            aud: self.aud.ok_or_else(|| missing("aud"))?,
            exp: self.exp.ok_or_else(|| missing("exp"))?,
            iat: self.iat.ok_or_else(|| missing("iat"))?,
            nbf: self.nbf,
            jti: self.jti.ok_or_else(|| missing("jti"))?,
            tid: self.tid.ok_or_else(|| missing("tid"))?,
            sid: self.sid.ok_or_else(|| missing("sid"))?,
            client_id: self.client_id.ok_or_else(|| missing("client_id"))?,
            scope: self.scope.unwrap_or_default(),
            cnf: self.cnf,
        })
    }
}

struct AccessVisitor<'f> {
    failure: &'f Cell<Option<ErrorKind>>,
}

impl AccessVisitor<'_> {
    /// Records `kind` unless a more precise failure deeper down was
    /// recorded first, and returns the error that unwinds the parse.
    fn fail<E: de::Error>(&self, kind: ErrorKind) -> E {
        let earlier = self.failure.take();
        self.failure
            .set(Some(earlier.unwrap_or_else(|| kind.clone())));
        E::custom(kind)
    }

    /// Reads a value of a known member, mapping any failure to the member's
    /// wrong-type error unless a more precise one was already recorded.
    fn typed<'de, T: de::Deserialize<'de>, A: MapAccess<'de>>(
        &self,
        map: &mut A,
        name: &'static str,
        slot_taken: bool,
    ) -> Result<T, A::Error> {
        if slot_taken {
            return Err(self.fail(ErrorKind::DuplicateMember));
        }
        map.next_value::<T>()
            .map_err(|_| self.fail(ErrorKind::WrongType(name)))
    }

    fn strict_value<'de, A: MapAccess<'de>>(&self, map: &mut A) -> Result<Value, A::Error> {
        map.next_value_seed(strict::StrictSeed {
            depth: 1,
            failure: self.failure,
        })
    }
}

impl<'de> Visitor<'de> for AccessVisitor<'_> {
    type Value = PartialAccess;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object of access-token claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PartialAccess, A::Error> {
        let mut claims = PartialAccess::default();
        let mut others: Vec<String> = Vec::new();
        let mut members = 0usize;
        while let Some(key) = map.next_key::<String>()? {
            members += 1;
            if members > crate::MAX_MEMBERS {
                return Err(self.fail(ErrorKind::TooManyMembers));
            }
            match key.as_str() {
                "iss" => claims.iss = Some(self.typed(&mut map, "iss", claims.iss.is_some())?),
                "sub" => claims.sub = Some(self.typed(&mut map, "sub", claims.sub.is_some())?),
                "exp" => claims.exp = Some(self.typed(&mut map, "exp", claims.exp.is_some())?),
                "iat" => claims.iat = Some(self.typed(&mut map, "iat", claims.iat.is_some())?),
                "nbf" => claims.nbf = Some(self.typed(&mut map, "nbf", claims.nbf.is_some())?),
                "jti" => claims.jti = Some(self.typed(&mut map, "jti", claims.jti.is_some())?),
                "tid" => claims.tid = Some(self.typed(&mut map, "tid", claims.tid.is_some())?),
                "sid" => claims.sid = Some(self.typed(&mut map, "sid", claims.sid.is_some())?),
                "client_id" => {
                    claims.client_id =
                        Some(self.typed(&mut map, "client_id", claims.client_id.is_some())?)
                }
                "scope" => {
                    claims.scope = Some(self.typed(&mut map, "scope", claims.scope.is_some())?)
                }
                "aud" => {
                    if claims.aud.is_some() {
                        return Err(self.fail(ErrorKind::DuplicateMember));
                    }
                    let aud = match self.strict_value(&mut map)? {
                        Value::String(one) => Audience::One(one),
                        Value::Array(items) => Audience::Many(
                            items
                                .into_iter()
                                .map(|v| strict::string(v, "aud"))
                                .collect::<Result<_, _>>()
                                .map_err(|e| self.fail(e.kind))?,
                        ),
                        _ => return Err(self.fail(ErrorKind::WrongType("aud"))),
                    };
                    claims.aud = Some(aud);
                }
                "cnf" => {
                    if claims.cnf.is_some() {
                        return Err(self.fail(ErrorKind::DuplicateMember));
                    }
                    let value = self.strict_value(&mut map)?;
                    let mut cnf = strict::into_object(value, "cnf")
                        .map(Reader)
                        .map_err(|e| self.fail(e.kind))?;
                    let jkt = cnf.string("jkt").map_err(|e| self.fail(e.kind))?;
                    claims.cnf = Some(Confirmation { jkt });
                }
                _ => {
                    if others.contains(&key) {
                        return Err(self.fail(ErrorKind::DuplicateMember));
                    }
                    // Unknown members are ignored, but still held to the
                    // same rules: no duplicates inside, bounded depth.
                    self.strict_value(&mut map)?;
                    others.push(key);
                }
            }
        }
        Ok(claims)
    }
}

/// The claims of a DPoP proof (RFC 9449 section 4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DpopClaims {
    /// Proof id, unique per proof.
    pub jti: String,
    /// HTTP method of the request.
    pub htm: String,
    /// HTTP target URI, without query and fragment.
    pub htu: String,
    /// Creation time.
    pub iat: i64,
    /// Hash of the access token, when one is presented with the proof.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ath: Option<String>,
}

impl DpopClaims {
    /// Parses a decoded proof payload strictly.
    pub fn parse(json: &[u8]) -> Result<Self, Error> {
        let mut reader = Reader(strict::object(json)?);
        Ok(Self {
            jti: reader.string("jti")?,
            htm: reader.string("htm")?,
            htu: reader.string("htu")?,
            iat: reader.integer("iat")?,
            ath: reader.optional_string("ath")?,
        })
    }
}

/// The claims of an OpenID Connect ID token, for encoding only.
#[derive(Debug, Clone, Serialize)]
pub struct IdClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audience: the client id.
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Time of the sign-in.
    pub auth_time: i64,
    /// The nonce from the authorization request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Sign-in session id.
    pub sid: String,
    /// Left half of the access token's hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// The user's email address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Authentication methods used (`pwd`, `otp`).
    pub amr: Vec<String>,
}

struct Reader(Map<String, Value>);

impl Reader {
    fn take(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name)
    }
    fn string(&mut self, name: &'static str) -> Result<String, Error> {
        let value = self.take(name).ok_or(ErrorKind::MissingMember(name))?;
        strict::string(value, name)
    }
    fn optional_string(&mut self, name: &'static str) -> Result<Option<String>, Error> {
        self.take(name).map(|v| strict::string(v, name)).transpose()
    }
    fn integer(&mut self, name: &'static str) -> Result<i64, Error> {
        let value = self.take(name).ok_or(ErrorKind::MissingMember(name))?;
        strict::integer(value, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#""iss":"https://h/t/a","sub":"u","aud":"https://h","exp":2,"iat":1,"jti":"j","tid":"a","sid":"s","client_id":"c""#;

    #[test]
    fn access_claims() {
        let cases: Vec<(String, Option<ErrorKind>)> = vec![
            (format!("{{{BASE}}}"), None),
            (format!(r#"{{{BASE},"scope":"mail"}}"#), None),
            (format!(r#"{{{BASE},"cnf":{{"jkt":"x"}}}}"#), None),
            (
                format!(r#"{{{BASE},"sub":"v"}}"#),
                Some(ErrorKind::DuplicateMember),
            ),
            // An escaped name is the same name: no evading the duplicate check.
            (
                format!(r#"{{{BASE},"s\u0075b":"v"}}"#),
                Some(ErrorKind::DuplicateMember),
            ),
            (
                format!(r#"{{{BASE},"x":{{"a":1,"a":2}}}}"#),
                Some(ErrorKind::DuplicateMember),
            ),
            (
                format!(r#"{{{BASE},"x":[[[[[1]]]]]}}"#),
                Some(ErrorKind::TooDeep),
            ),
            (
                BASE.replace(r#""exp":2"#, r#""exp":"2""#).pipe_wrap(),
                Some(ErrorKind::WrongType("exp")),
            ),
            (
                BASE.replace(r#""exp":2"#, r#""exp":2.5"#).pipe_wrap(),
                Some(ErrorKind::WrongType("exp")),
            ),
            (
                BASE.replace(r#""sub":"u""#, r#""sub":["u"]"#).pipe_wrap(),
                Some(ErrorKind::WrongType("sub")),
            ),
            (
                BASE.replace(r#""aud":"https://h""#, r#""aud":7"#)
                    .pipe_wrap(),
                Some(ErrorKind::WrongType("aud")),
            ),
            (
                BASE.replace(r#","tid":"a""#, "").pipe_wrap(),
                Some(ErrorKind::MissingMember("tid")),
            ),
            (
                format!(r#"{{{BASE},"cnf":"x"}}"#),
                Some(ErrorKind::WrongType("cnf")),
            ),
            (
                format!(r#"{{{BASE},"extra":1,"extra":2}}"#),
                Some(ErrorKind::DuplicateMember),
            ),
        ];
        for (input, expect) in cases {
            let got = AccessClaims::parse(input.as_bytes()).err().map(|e| e.kind);
            assert_eq!(got, expect, "{input}");
        }
    }

    trait PipeWrap {
        fn pipe_wrap(self) -> String;
    }
    impl PipeWrap for String {
        fn pipe_wrap(self) -> String {
            format!("{{{self}}}")
        }
    }

    #[test]
    fn audience_forms() {
        let many = format!(
            "{{{}}}",
            BASE.replace(r#""aud":"https://h""#, r#""aud":["x","https://h"]"#)
        );
        let claims = AccessClaims::parse(many.as_bytes()).expect("parses");
        assert!(claims.aud.contains("https://h"));
        assert!(!claims.aud.contains("x2"));
    }
}
