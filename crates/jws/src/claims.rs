//! The claim sets Stormproof issues and accepts, read strictly by type.

use serde::Serialize;
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
        let object = strict::object(json)?;
        let mut reader = Reader(object);
        let cnf = match reader.take("cnf") {
            None => None,
            Some(value) => {
                let mut cnf = Reader(strict::into_object(value, "cnf")?);
                Some(Confirmation {
                    jkt: cnf.string("jkt")?,
                })
            }
        };
        let aud = match reader.take("aud") {
            Some(Value::String(one)) => Audience::One(one),
            Some(Value::Array(items)) => Audience::Many(
                items
                    .into_iter()
                    .map(|v| strict::string(v, "aud"))
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => return Err(ErrorKind::WrongType("aud").into()),
            None => return Err(ErrorKind::MissingMember("aud").into()),
        };
        Ok(Self {
            iss: reader.string("iss")?,
            sub: reader.string("sub")?,
            aud,
            exp: reader.integer("exp")?,
            iat: reader.integer("iat")?,
            nbf: reader.optional_integer("nbf")?,
            jti: reader.string("jti")?,
            tid: reader.string("tid")?,
            sid: reader.string("sid")?,
            client_id: reader.string("client_id")?,
            scope: reader.optional_string("scope")?.unwrap_or_default(),
            cnf,
        })
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
    fn optional_integer(&mut self, name: &'static str) -> Result<Option<i64>, Error> {
        self.take(name)
            .map(|v| strict::integer(v, name))
            .transpose()
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
