//! STARTTLS (RFC 3207): the upgrade hand-off, the reset after it, and the
//! plaintext injection it must not let through (CVE-2011-0411).

use stormproof_smtp_session::{Config, Event, Mode, Session};

use crate::testkit::{accept_all, drive, last, lines, transcript};

fn plaintext() -> Config {
    let mut config = Config::new("mx.test", Mode::Inbound);
    config.tls_available = true;
    config
}

#[test]
fn the_upgrade_resets_the_session() {
    let mut session = Session::new(plaintext()).unwrap();
    let events = drive(
        &mut session,
        b"EHLO c\r\nSTARTTLS\r\n",
        usize::MAX,
        &mut accept_all,
    );
    let before = transcript(&events);
    assert!(before.contains(&"250 STARTTLS".to_owned()), "{before:?}");
    assert_eq!(
        before[before.len() - 2..],
        ["220 2.0.0 Ready to start TLS", "STARTTLS"]
    );
    // The test driver completed the handshake at once.
    assert!(session.tls_active());
    assert_eq!(session.helo_name(), None);

    let events = drive(
        &mut session,
        b"MAIL FROM:<a@b.c>\r\nEHLO c\r\n",
        usize::MAX,
        &mut accept_all,
    );
    let after = transcript(&events);
    assert_eq!(after[0], "503 5.5.1 Send HELO or EHLO first");
    assert!(!after.iter().any(|l| l.ends_with("STARTTLS")), "{after:?}");
    let events = drive(&mut session, b"STARTTLS\r\n", usize::MAX, &mut accept_all);
    assert_eq!(transcript(&events), ["503 5.5.1 TLS already active"]);
    // A second STARTTLS in the plaintext packet is itself injected input.
    assert_eq!(
        last(plaintext(), "EHLO c\r\nSTARTTLS\r\nSTARTTLS\r\n"),
        "STARTTLS"
    );
}

#[test]
fn commands_pipelined_after_starttls_are_discarded() {
    // Regression test for CVE-2011-0411: a man in the middle appends
    // commands to the client's plaintext STARTTLS packet.
    let mut session = Session::new(plaintext()).unwrap();
    let injected =
        b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<x@mx.test>\r\n";
    assert_eq!(session.feed(injected), injected.len());
    let mut events = Vec::new();
    while let Some(event) = session.next_event() {
        events.push(event);
    }
    assert_eq!(events.last(), Some(&Event::StartTls));
    assert_eq!(session.buffered_len(), 0);
    // Bytes read from the plaintext socket before the handshake are dropped too.
    assert_eq!(session.feed(b"MAIL FROM:<evil@attacker.example>\r\n"), 35);
    assert_eq!(session.buffered_len(), 0);
    session.tls_started().unwrap();

    let protected = lines(&["EHLO c", "MAIL FROM:<good@example.com>"]);
    events.extend(drive(
        &mut session,
        protected.as_bytes(),
        usize::MAX,
        &mut accept_all,
    ));
    let mails: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::MailFrom { .. }))
        .collect();
    assert_eq!(mails.len(), 1);
    assert!(
        matches!(mails[0], Event::MailFrom { reverse_path, .. } if reverse_path == "good@example.com")
    );
}

#[test]
fn starttls_reply_codes() {
    let cases: &[(&str, &str)] = &[
        ("STARTTLS", "503 5.5.1 Send EHLO first"),
        ("HELO c\r\nSTARTTLS", "503 5.5.1 Send EHLO first"),
        (
            "EHLO c\r\nSTARTTLS now",
            "501 5.5.4 Syntax: STARTTLS (no parameters)",
        ),
        ("EHLO c\r\nstarttls", "220 2.0.0 Ready to start TLS"),
    ];
    for (input, expected) in cases {
        let transcript = crate::testkit::run(plaintext(), &format!("{input}\r\n"));
        let reply = transcript
            .iter()
            .rev()
            .find(|l| l.starts_with(char::is_numeric))
            .unwrap();
        assert_eq!(reply, expected, "{input:?}");
    }
}

#[test]
fn authentication_is_forgotten_after_the_upgrade() {
    let mut config = Config::new("smtp.test", Mode::Submission);
    config.tls_available = true;
    config.require_tls_for_auth = false;
    let mut session = Session::new(config).unwrap();
    let input = b"EHLO c\r\nAUTH PLAIN AGEAYg==\r\nSTARTTLS\r\n";
    drive(&mut session, input, usize::MAX, &mut accept_all);
    assert!(session.tls_active());
    assert!(!session.is_authenticated());
    let events = drive(
        &mut session,
        b"EHLO c\r\nMAIL FROM:<a@b.c>\r\n",
        usize::MAX,
        &mut accept_all,
    );
    assert_eq!(
        transcript(&events).last().unwrap(),
        "530 5.7.0 Authentication required"
    );
}
