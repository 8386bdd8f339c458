//! However the input is split, the session produces the same events.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use stormproof_smtp_session::{Config, Credentials, Decision, Event, Session};

use crate::testkit::{drive, inbound, submission};

/// A policy that depends only on the event, so runs can be compared.
pub fn fixed_policy(event: &Event) -> Decision {
    match event {
        Event::Recipient { forward_path } if forward_path.starts_with('x') => {
            Decision::reject(550, "5.1.1", "No such user")
        }
        Event::Authenticate(Credentials::Plain { password, .. })
            if password.as_str() == "wrong" =>
        {
            Decision::auth_failed()
        }
        Event::Authenticate(Credentials::Bearer { token, .. }) if token.as_str() == "expired" => {
            Decision::auth_failed()
        }
        Event::Message { data, .. } if data.starts_with(b"Spam") => {
            Decision::reject(554, "5.7.1", "Message refused")
        }
        _ => Decision::Accept,
    }
}

/// The events for `input` fed `chunk` bytes at a time.
pub fn events(config: &Config, input: &[u8], chunk: usize) -> Vec<Event> {
    let mut session = Session::new(config.clone()).unwrap();
    drive(&mut session, input, chunk, &mut fixed_policy)
}

/// Asserts that every split gives what one big feed gives.
pub fn assert_split_invariant(config: &Config, input: &[u8]) {
    let whole = events(config, input, usize::MAX);
    for chunk in [1, 2, 3, 5, 7, 64, 511, 4096] {
        assert_eq!(
            events(config, input, chunk),
            whole,
            "chunk {chunk}: {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn byte_at_a_time_equals_one_feed() {
    let mail = "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@mx.test>\r\nRCPT TO:<x@mx.test>\r\nDATA\r\n";
    let inbound_scripts = [
        format!("EHLO c\r\n{mail}Subject: one\r\n\r\n..dot\r\n.\r\n{mail}Spam\r\n.\r\nQUIT\r\n"),
        format!("EHLO c\r\n{mail}Hello\n.\nMAIL FROM:<evil@x.y>\r\n.\r\nNOOP\r\n"),
        format!("EHLO c\r\n{mail}a\r.\r\nb\r\n.\r\nRSET\r\n"),
        format!("EHLO c\r\n{}\r\nNOOP\r\n", "N".repeat(3000)),
        format!("EHLO c\r\n{mail}{}\r\n.\r\nNOOP\r\n", "L".repeat(1500)),
        format!(
            "EHLO c\r\n{mail}{}.\r\nNOOP\r\n",
            "0123456789\r\n".repeat(2000)
        ),
        "NOOP\nNOOP\rx\r\nNOOP\r\n".to_owned(),
        "BOGUS\r\n".repeat(12),
    ];
    for script in &inbound_scripts {
        assert_split_invariant(&inbound(), script.as_bytes());
    }

    let b64 = |bytes: &[u8]| STANDARD.encode(bytes);
    let submission_scripts = [
        format!(
            "EHLO c\r\nAUTH PLAIN {}\r\nAUTH PLAIN\r\n{}\r\nMAIL FROM:<a@b.c>\r\nQUIT\r\n",
            b64(b"\0a\0wrong"),
            b64(b"\0a\0right")
        ),
        format!(
            "EHLO c\r\nAUTH OAUTHBEARER {}\r\nAQ==\r\nAUTH XOAUTH2\r\n{}\r\nNOOP\r\n",
            b64(b"n,,\x01auth=Bearer expired\x01\x01"),
            b64(b"user=u\x01auth=Bearer fresh\x01\x01")
        ),
        format!("EHLO c\r\nAUTH PLAIN {}\r\nNOOP\r\n", "A".repeat(20_000)),
        "EHLO c\r\nAUTH PLAIN\r\n*\r\nAUTH LOGIN\r\n".to_owned(),
    ];
    for script in &submission_scripts {
        assert_split_invariant(&submission(), script.as_bytes());
    }
}
