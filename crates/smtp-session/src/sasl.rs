//! SASL client messages for PLAIN (RFC 4616), OAUTHBEARER (RFC 7628) and
//! XOAUTH2 (Google's pre-standard form), parsed strictly. Checking the
//! credentials is the verifier's job, never this crate's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// The OAuth 2.0 SASL mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerMechanism {
    /// `OAUTHBEARER` (RFC 7628).
    OAuthBearer,
    /// `XOAUTH2`, as used by Gmail and Outlook clients.
    XOAuth2,
}

/// The SASL mechanisms offered in submission mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Plain,
    Bearer(BearerMechanism),
}

/// What a client presented to authenticate. The secret parts are zeroized
/// on drop and left out of `Debug` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `AUTH PLAIN`: a password, typically an app password.
    Plain {
        /// The identity to act as, when it differs from `authcid`.
        authzid: Option<String>,
        /// The identity whose password this is.
        authcid: String,
        /// The password.
        password: Zeroizing<String>,
    },
    /// `AUTH OAUTHBEARER` or `AUTH XOAUTH2`: an OAuth 2.0 access token.
    Bearer {
        /// The user the client names (OAUTHBEARER's optional `a=`,
        /// XOAUTH2's `user=`). Only a hint: the token decides who this is.
        user: Option<String>,
        /// The bearer token.
        token: Zeroizing<String>,
        /// Which mechanism carried it; it decides the failure dialogue.
        mechanism: BearerMechanism,
    },
}

/// The base64 challenge sent when a bearer token is refused (RFC 7628 3.2.2).
pub(crate) fn bearer_failure_challenge() -> String {
    STANDARD.encode(br#"{"status":"invalid_token"}"#)
}

/// Decodes one base64 client response. Only canonical, padded base64 with
/// no whitespace is accepted.
pub(crate) fn decode(response: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    STANDARD.decode(response).ok().map(Zeroizing::new)
}

/// Parses a decoded client message for `mechanism`; `None` when malformed.
pub(crate) fn parse(mechanism: Mechanism, message: &[u8]) -> Option<Credentials> {
    let text = std::str::from_utf8(message).ok()?;
    match mechanism {
        Mechanism::Plain => plain(text),
        Mechanism::Bearer(BearerMechanism::OAuthBearer) => oauthbearer(text),
        Mechanism::Bearer(BearerMechanism::XOAuth2) => xoauth2(text),
    }
}

/// `[authzid] NUL authcid NUL passwd` (RFC 4616 section 2).
fn plain(text: &str) -> Option<Credentials> {
    let mut parts = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if authcid.is_empty() || password.is_empty() {
        return None;
    }
    Some(Credentials::Plain {
        authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
        authcid: authcid.to_owned(),
        password: Zeroizing::new(password.to_owned()),
    })
}

/// `gs2-header %x01 *(key=value %x01) %x01` (RFC 7628 section 3.1), where
/// the gs2 header is `n,` or `y,` then an optional `a=authzid`, then `,`.
/// Channel binding (`p=`) is refused: OAUTHBEARER does not define it.
fn oauthbearer(text: &str) -> Option<Credentials> {
    let (flag, rest) = text.split_once(',')?;
    if flag != "n" && flag != "y" {
        return None;
    }
    let (authzid, rest) = rest.split_once(',')?;
    let user = match authzid {
        "" => None,
        _ => Some(saslname(authzid.strip_prefix("a=")?)?),
    };
    let pairs = key_values(rest.strip_prefix('\x01')?)?;
    let auth = find(&pairs, "auth")?;
    Some(Credentials::Bearer {
        user,
        token: Zeroizing::new(bearer_token(auth)?.to_owned()),
        mechanism: BearerMechanism::OAuthBearer,
    })
}

/// `user=<user> %x01 auth=Bearer <token> %x01 %x01`.
fn xoauth2(text: &str) -> Option<Credentials> {
    let pairs = key_values(text)?;
    let user = find(&pairs, "user").filter(|u| !u.is_empty())?;
    let auth = find(&pairs, "auth")?;
    Some(Credentials::Bearer {
        user: Some(user.to_owned()),
        token: Zeroizing::new(bearer_token(auth)?.to_owned()),
        mechanism: BearerMechanism::XOAuth2,
    })
}

/// Splits `key=value %x01 ... key=value %x01 %x01` into pairs. Keys are
/// letters only, values printable ASCII (RFC 7628's `value` also allows
/// whitespace), and no key may repeat: two `auth` values would leave it
/// ambiguous which one was checked.
fn key_values(text: &str) -> Option<Vec<(&str, &str)>> {
    let mut rest = text.strip_suffix('\x01')?;
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    while !rest.is_empty() {
        let (pair, tail) = rest.split_once('\x01')?;
        let (key, value) = pair.split_once('=')?;
        let key_ok = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic());
        let value_ok = value
            .bytes()
            .all(|b| matches!(b, 0x20..=0x7e | b'\t' | b'\r' | b'\n'));
        if !key_ok || !value_ok || pairs.iter().any(|(k, _)| *k == key) {
            return None;
        }
        pairs.push((key, value));
        rest = tail;
    }
    Some(pairs)
}

fn find<'a>(pairs: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// `Bearer 1*SP b64token` (RFC 6750 section 2.1; the scheme is
/// case-insensitive).
fn bearer_token(auth: &str) -> Option<&str> {
    let (scheme, token) = auth.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let ok = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    ok.then_some(token)
}

/// Decodes a GS2 `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=`
/// is malformed (RFC 5801 section 4).
fn saslname(escaped: &str) -> Option<String> {
    let mut name = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find('=') {
        name.push_str(rest.get(..at)?);
        name.push(match rest.get(at + 1..at + 3)? {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        rest = rest.get(at + 3..)?;
    }
    name.push_str(rest);
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_creds(authzid: Option<&str>, authcid: &str, password: &str) -> Option<Credentials> {
        Some(Credentials::Plain {
            authzid: authzid.map(str::to_owned),
            authcid: authcid.to_owned(),
            password: Zeroizing::new(password.to_owned()),
        })
    }

    fn bearer(user: Option<&str>, token: &str, mechanism: BearerMechanism) -> Option<Credentials> {
        Some(Credentials::Bearer {
            user: user.map(str::to_owned),
            token: Zeroizing::new(token.to_owned()),
            mechanism,
        })
    }

    #[test]
    fn plain_messages() {
        let cases: &[(&[u8], Option<Credentials>)] = &[
            (b"\0alice\0secret", plain_creds(None, "alice", "secret")),
            (
                b"admin\0alice\0secret",
                plain_creds(Some("admin"), "alice", "secret"),
            ),
            (
                b"\0al\xc3\xafce\0p w",
                plain_creds(None, "al\u{ef}ce", "p w"),
            ),
            (b"alice\0secret", None),
            (b"\0alice\0secret\0", None),
            (b"\0\0secret", None),
            (b"\0alice\0", None),
            (b"", None),
            (b"\0alice\0\xff", None),
        ];
        for (message, expected) in cases {
            assert_eq!(&parse(Mechanism::Plain, message), expected, "{message:?}");
        }
    }

    #[test]
    fn oauthbearer_messages() {
        use BearerMechanism::OAuthBearer as O;
        let cases: &[(&str, Option<Credentials>)] = &[
            (
                "n,a=u@x.org,\x01auth=Bearer t0k.en\x01\x01",
                bearer(Some("u@x.org"), "t0k.en", O),
            ),
            ("n,,\x01auth=Bearer tok\x01\x01", bearer(None, "tok", O)),
            (
                "y,,\x01auth=bearer  tok==\x01\x01",
                bearer(None, "tok==", O),
            ),
            (
                "n,a=a=2Cb=3Dc,\x01host=mx\x01port=587\x01auth=Bearer t\x01\x01",
                bearer(Some("a,b=c"), "t", O),
            ),
            ("p=tls-unique,,\x01auth=Bearer t\x01\x01", None),
            ("n,a=bad=2Xesc,\x01auth=Bearer t\x01\x01", None),
            ("n,u=x,\x01auth=Bearer t\x01\x01", None),
            ("n,,\x01auth=Bearer t\x01", None),
            ("n,,auth=Bearer t\x01\x01", None),
            ("n,,\x01auth=Basic dDp0\x01\x01", None),
            ("n,,\x01auth=Bearer \x01\x01", None),
            ("n,,\x01auth=Bearer t*k\x01\x01", None),
            ("n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01", None),
            ("n,,\x01host=mx\x01\x01", None),
            ("n,,\x01\x01", None),
            ("\x01", None),
        ];
        for (message, expected) in cases {
            let got = parse(Mechanism::Bearer(O), message.as_bytes());
            assert_eq!(&got, expected, "{message:?}");
        }
    }

    #[test]
    fn xoauth2_messages() {
        use BearerMechanism::XOAuth2 as X;
        let cases: &[(&str, Option<Credentials>)] = &[
            (
                "user=u@x.org\x01auth=Bearer ya29.tok\x01\x01",
                bearer(Some("u@x.org"), "ya29.tok", X),
            ),
            ("auth=Bearer t\x01user=u\x01\x01", bearer(Some("u"), "t", X)),
            ("user=u\x01auth=Bearer t\x01", None),
            ("auth=Bearer t\x01\x01", None),
            ("user=\x01auth=Bearer t\x01\x01", None),
            ("user=u\x01\x01", None),
            ("", None),
        ];
        for (message, expected) in cases {
            let got = parse(Mechanism::Bearer(X), message.as_bytes());
            assert_eq!(&got, expected, "{message:?}");
        }
    }

    #[test]
    fn base64_is_strict() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"AGFsaWNlAHNlY3JldA==", Some(b"\0alice\0secret")),
            (b"", Some(b"")),
            (b"AGFsaWNlAHNlY3JldA", None),
            (b"AGFsaWNlAHNlY3JldA=", None),
            (b"AGFsaWNl AHNlY3JldA==", None),
            (b"AGFsaWNlAHNlY3JldB==", None),
            (b"AGFsaWNlAHNlY3JldA-_", None),
            (b"*", None),
        ];
        for (input, expected) in cases {
            let got = decode(input);
            assert_eq!(got.as_deref().map(Vec::as_slice), *expected, "{input:?}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let creds = plain_creds(None, "alice", "hunter2hunter2");
        assert!(!format!("{creds:?}").contains("hunter2"));
        let creds = bearer(None, "sekrit-token", BearerMechanism::OAuthBearer);
        assert!(!format!("{creds:?}").contains("sekrit"));
    }
}
