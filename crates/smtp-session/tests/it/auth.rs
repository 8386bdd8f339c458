//! SASL on the submission port: PLAIN, OAUTHBEARER and XOAUTH2, and the
//! failure dialogues.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use stormproof_smtp_session::{BearerMechanism, Credentials, Decision, Event, MAX_ERRORS, Session};
use zeroize::Zeroizing;

use crate::testkit::{accept_all, drive, last, lines, run, run_with, submission};

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The events of `input` on a submission session, with `policy`.
fn events(input: &str, policy: &mut dyn FnMut(&Event) -> Decision) -> Vec<Event> {
    let mut session = Session::new(submission()).unwrap();
    drive(&mut session, input.as_bytes(), usize::MAX, policy)
}

fn credentials(events: &[Event]) -> Vec<Credentials> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Authenticate(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn plain(authzid: Option<&str>, authcid: &str, password: &str) -> Credentials {
    Credentials::Plain {
        authzid: authzid.map(str::to_owned),
        authcid: authcid.to_owned(),
        password: Zeroizing::new(password.to_owned()),
    }
}

fn bearer(user: Option<&str>, token: &str, mechanism: BearerMechanism) -> Credentials {
    Credentials::Bearer {
        user: user.map(str::to_owned),
        token: Zeroizing::new(token.to_owned()),
        mechanism,
    }
}

#[test]
fn plain_with_an_initial_response_then_mail() {
    let input = lines(&[
        "EHLO c",
        &format!("AUTH PLAIN {}", b64(b"\0alice@smtp.test\0app-password")),
        "MAIL FROM:<alice@smtp.test>",
    ]);
    let mut session = Session::new(submission()).unwrap();
    let events = drive(&mut session, input.as_bytes(), usize::MAX, &mut accept_all);
    assert_eq!(
        credentials(&events),
        [plain(None, "alice@smtp.test", "app-password")]
    );
    assert!(session.is_authenticated());
    let transcript = crate::testkit::transcript(&events);
    assert_eq!(
        transcript[transcript.len() - 3..],
        [
            "235 2.7.0 Authentication successful",
            "MAIL <alice@smtp.test>",
            "250 2.1.0 Sender OK"
        ]
    );
    assert!(!transcript.iter().any(|l| l.contains("app-password")));
}

#[test]
fn plain_with_a_continuation() {
    let input = lines(&["EHLO c", "AUTH PLAIN", &b64(b"admin\0alice\0pw")]);
    let events = events(&input, &mut accept_all);
    assert_eq!(credentials(&events), [plain(Some("admin"), "alice", "pw")]);
    let transcript = crate::testkit::transcript(&events);
    assert_eq!(transcript[transcript.len() - 3], "334 ");
}

#[test]
fn oauthbearer_and_xoauth2_messages() {
    let oauthbearer =
        b64(b"n,a=alice@smtp.test,\x01host=smtp.test\x01auth=Bearer eyJ.a-b_c\x01\x01");
    let xoauth2 = b64(b"user=alice@smtp.test\x01auth=Bearer ya29.tok\x01\x01");
    let cases = [
        (
            format!("AUTH OAUTHBEARER {oauthbearer}"),
            bearer(
                Some("alice@smtp.test"),
                "eyJ.a-b_c",
                BearerMechanism::OAuthBearer,
            ),
        ),
        (
            format!("AUTH XOAUTH2 {xoauth2}"),
            bearer(
                Some("alice@smtp.test"),
                "ya29.tok",
                BearerMechanism::XOAuth2,
            ),
        ),
        (
            format!("auth xoauth2\r\n{xoauth2}"),
            bearer(
                Some("alice@smtp.test"),
                "ya29.tok",
                BearerMechanism::XOAuth2,
            ),
        ),
    ];
    for (command, expected) in cases {
        let input = format!("EHLO c\r\n{command}\r\n");
        let events = events(&input, &mut accept_all);
        assert_eq!(credentials(&events), [expected], "{command}");
        let transcript = crate::testkit::transcript(&events);
        assert_eq!(
            transcript.last().unwrap(),
            "235 2.7.0 Authentication successful"
        );
    }
}

#[test]
fn auth_reply_codes() {
    const EHLO: &str = "EHLO c\r\n";
    let cases: &[(&str, &str, &str)] = &[
        (
            EHLO,
            "AUTH PLAIN\r\n*",
            "501 5.0.0 Authentication cancelled",
        ),
        (
            EHLO,
            "AUTH PLAIN !!!!",
            "501 5.5.2 Cannot decode base64 response",
        ),
        (
            EHLO,
            "AUTH PLAIN AGFsaWNlAHNlY3JldA",
            "501 5.5.2 Cannot decode base64 response",
        ),
        (
            EHLO,
            "AUTH PLAIN\r\nAGFs aWNlAHNlY3JldA==",
            "501 5.5.2 Cannot decode base64 response",
        ),
        (
            EHLO,
            "AUTH PLAIN YWxpY2UAc2VjcmV0",
            "501 5.5.2 Malformed authentication message",
        ),
        (
            EHLO,
            "AUTH PLAIN =",
            "501 5.5.2 Malformed authentication message",
        ),
        (
            EHLO,
            "AUTH XOAUTH2 dXNlcj11AQE=",
            "501 5.5.2 Malformed authentication message",
        ),
        (
            EHLO,
            "AUTH LOGIN",
            "504 5.5.4 Unrecognized authentication type",
        ),
        (
            EHLO,
            "AUTH CRAM-MD5",
            "504 5.5.4 Unrecognized authentication type",
        ),
        (
            EHLO,
            "AUTH",
            "501 5.5.4 Syntax: AUTH mechanism [initial-response]",
        ),
        (
            "",
            "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
            "503 5.5.1 Send EHLO first",
        ),
        (
            "HELO c\r\n",
            "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
            "503 5.5.1 Send EHLO first",
        ),
        (
            EHLO,
            "MAIL FROM:<alice@smtp.test>",
            "530 5.7.0 Authentication required",
        ),
        (
            "",
            "MAIL FROM:<alice@smtp.test>",
            "503 5.5.1 Send HELO or EHLO first",
        ),
        (
            "EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
            "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
            "503 5.5.1 Already authenticated",
        ),
    ];
    for (preamble, command, expected) in cases {
        let input = format!("{preamble}{command}\r\n");
        assert_eq!(last(submission(), &input), *expected, "{command:?}");
    }
}

#[test]
fn auth_needs_tls_when_configured() {
    let mut config = submission();
    config.tls_active = false;
    config.tls_available = true;
    let transcript = run(config.clone(), "EHLO c\r\n");
    assert!(
        !transcript.iter().any(|l| l.contains("AUTH")),
        "{transcript:?}"
    );
    assert_eq!(
        last(
            config.clone(),
            "EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"
        ),
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );
    assert_eq!(
        last(config, "EHLO c\r\nMAIL FROM:<a@smtp.test>\r\n"),
        "530 5.7.0 Authentication required"
    );
}

#[test]
fn a_refused_password_gets_535() {
    let input = format!(
        "EHLO c\r\nAUTH PLAIN {}\r\nMAIL FROM:<a@b.c>\r\n",
        b64(b"\0alice\0wrong")
    );
    let transcript = run_with(submission(), input.as_bytes(), &mut |_| {
        Decision::auth_failed()
    });
    assert_eq!(
        transcript[transcript.len() - 2..],
        [
            "535 5.7.8 Authentication credentials invalid",
            "530 5.7.0 Authentication required"
        ]
    );
}

#[test]
fn a_refused_bearer_token_gets_the_rfc_7628_dialogue() {
    let oauthbearer = b64(b"n,,\x01auth=Bearer expired\x01\x01");
    let xoauth2 = b64(b"user=a@smtp.test\x01auth=Bearer expired\x01\x01");
    // OAUTHBEARER clients acknowledge with %x01; XOAUTH2 clients with an empty line.
    let cases = [
        format!("AUTH OAUTHBEARER {oauthbearer}\r\nAQ=="),
        format!("AUTH XOAUTH2 {xoauth2}\r\n"),
        format!("AUTH OAUTHBEARER\r\n{oauthbearer}\r\nAQ=="),
    ];
    for case in cases {
        let input = format!("EHLO c\r\n{case}\r\nAUTH PLAIN {}\r\n", b64(b"\0a\0b"));
        let mut first = true;
        let mut policy = |event: &Event| match event {
            Event::Authenticate(Credentials::Bearer { .. }) if first => {
                first = false;
                Decision::auth_failed()
            }
            _ => Decision::Accept,
        };
        let transcript = run_with(submission(), input.as_bytes(), &mut policy);
        let tail: Vec<&str> = transcript
            .iter()
            .rev()
            .take(4)
            .rev()
            .map(String::as_str)
            .collect();
        assert_eq!(
            tail[..2],
            [
                // base64 of {"status":"invalid_token"}
                "334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=",
                "535 5.7.8 Authentication credentials invalid",
            ],
            "{case:?}"
        );
        // The failed exchange left the session unauthenticated: PLAIN may follow.
        assert_eq!(tail[3], "235 2.7.0 Authentication successful", "{case:?}");
    }
}

#[test]
fn a_temporary_bearer_failure_skips_the_dialogue() {
    let input = format!(
        "EHLO c\r\nAUTH OAUTHBEARER {}\r\n",
        b64(b"n,,\x01auth=Bearer t\x01\x01")
    );
    let mut policy = |_: &Event| Decision::reject(454, "4.7.0", "Temporary authentication failure");
    assert_eq!(
        run_with(submission(), input.as_bytes(), &mut policy)
            .last()
            .unwrap(),
        "454 4.7.0 Temporary authentication failure"
    );
}

#[test]
fn repeated_auth_failures_close_the_connection() {
    let attempt = format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0guess"));
    let input = format!("EHLO c\r\n{}", attempt.repeat(MAX_ERRORS + 3));
    let transcript = run_with(submission(), input.as_bytes(), &mut |_| {
        Decision::auth_failed()
    });
    let failures = transcript.iter().filter(|l| l.starts_with("535 ")).count();
    assert_eq!(failures, MAX_ERRORS);
    assert_eq!(
        transcript[transcript.len() - 2..],
        [
            "421 4.7.0 smtp.test Too many errors, closing connection",
            "CLOSE"
        ]
    );
}

#[test]
fn session_debug_output_leaves_out_buffered_input() {
    let mut session = Session::new(submission()).unwrap();
    let secret = b64(b"\0alice\0hunter2hunter2");
    let input = format!("EHLO c\r\nAUTH PLAIN\r\n{secret}\r\n");
    assert_eq!(session.feed(input.as_bytes()), input.len());
    let debug = format!("{session:?}");
    assert!(debug.contains("buffered_len"), "{debug}");
    assert!(
        !debug.contains(&secret) && !debug.contains("[69, 72, 76, 79"),
        "{debug}"
    );
}
