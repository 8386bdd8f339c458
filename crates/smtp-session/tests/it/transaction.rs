//! Whole dialogues, the EHLO advertisement, and one line per reply code.

use stormproof_smtp_session::{
    Config, Decision, Error, ErrorKind, Event, MAX_ERRORS, Mode, Session,
};

use crate::testkit::{accept_all, drive, inbound, last, lines, run, run_with, submission};

#[test]
fn a_full_inbound_transaction() {
    let input = lines(&[
        "EHLO client.example",
        "MAIL FROM:<alice@example.com> SIZE=20 BODY=8BITMIME",
        "RCPT TO:<bob@mx.test>",
        "RCPT TO:<carol@mx.test>",
        "DATA",
        "Subject: hi",
        "",
        "Hello.",
        ".",
        "QUIT",
    ]);
    assert_eq!(
        run(inbound(), &input),
        [
            "250-mx.test",
            "250-PIPELINING",
            "250-SIZE 10000",
            "250-8BITMIME",
            "250-SMTPUTF8",
            "250 ENHANCEDSTATUSCODES",
            "MAIL <alice@example.com>",
            "250 2.1.0 Sender OK",
            "RCPT <bob@mx.test>",
            "250 2.1.5 Recipient OK",
            "RCPT <carol@mx.test>",
            "250 2.1.5 Recipient OK",
            "354 End data with <CR><LF>.<CR><LF>",
            r#"MESSAGE <alice@example.com> ["bob@mx.test", "carol@mx.test"] "Subject: hi\r\n\r\nHello.\r\n""#,
            "250 2.0.0 Message accepted for delivery",
            "221 2.0.0 mx.test Service closing transmission channel",
            "CLOSE",
        ]
    );
}

#[test]
fn greeting_and_envelope_details() {
    let mut session = Session::new(inbound()).unwrap();
    assert_eq!(session.greeting(), b"220 mx.test ESMTP Stormproof\r\n");
    let input = lines(&[
        "EHLO client.example",
        "MAIL FROM:<> SIZE=20 BODY=8BITMIME SMTPUTF8",
        "RCPT TO:<j\u{fc}rgen@mx.test>",
        "DATA",
        ".",
    ]);
    let events = drive(&mut session, input.as_bytes(), usize::MAX, &mut accept_all);
    assert_eq!(session.helo_name(), Some("client.example"));
    assert!(events.contains(&Event::MailFrom {
        reverse_path: String::new(),
        size: Some(20),
        body_8bit: true,
        smtputf8: true,
    }));
    assert!(events.contains(&Event::Message {
        reverse_path: String::new(),
        recipients: vec!["j\u{fc}rgen@mx.test".to_owned()],
        body_8bit: true,
        smtputf8: true,
        data: Vec::new(),
    }));
}

#[test]
fn ehlo_advertisement_follows_mode_and_tls() {
    // (mode, tls_available, tls_active, require_tls_for_auth, extra lines)
    let cases: &[(Mode, bool, bool, bool, &[&str])] = &[
        (Mode::Inbound, false, false, true, &[]),
        (Mode::Inbound, true, false, true, &["STARTTLS"]),
        (Mode::Inbound, true, true, true, &[]),
        (Mode::Submission, true, false, true, &["STARTTLS"]),
        (
            Mode::Submission,
            true,
            false,
            false,
            &["STARTTLS", "AUTH PLAIN OAUTHBEARER XOAUTH2"],
        ),
        (
            Mode::Submission,
            false,
            true,
            true,
            &["AUTH PLAIN OAUTHBEARER XOAUTH2"],
        ),
        (
            Mode::Submission,
            false,
            false,
            false,
            &["AUTH PLAIN OAUTHBEARER XOAUTH2"],
        ),
    ];
    for &(mode, available, active, require, extra) in cases {
        let mut config = Config::new("h.test", mode);
        config.max_message_size = 5;
        config.tls_available = available;
        config.tls_active = active;
        config.require_tls_for_auth = require;
        let mut expected: Vec<String> = ["h.test", "PIPELINING", "SIZE 5", "8BITMIME", "SMTPUTF8"]
            .iter()
            .chain(["ENHANCEDSTATUSCODES"].iter())
            .chain(extra.iter())
            .map(|l| format!("250-{l}"))
            .collect();
        if let Some(final_line) = expected.last_mut() {
            final_line.replace_range(3..4, " ");
        }
        assert_eq!(
            run(config, "EHLO c\r\n"),
            expected,
            "{mode:?} {available} {active} {require}"
        );
    }
}

#[test]
fn helo_gets_a_plain_250_and_no_extensions() {
    assert_eq!(run(inbound(), "HELO c\r\n"), ["250 mx.test"]);
    assert_eq!(
        last(inbound(), "HELO c\r\nMAIL FROM:<a@b.c> SIZE=10\r\n"),
        "555 5.5.4 MAIL parameters require EHLO"
    );
    assert_eq!(
        last(inbound(), "HELO c\r\nMAIL FROM:<a@b.c>\r\n"),
        "250 2.1.0 Sender OK"
    );
}

/// One command after a preamble, and the reply it gets.
#[test]
fn reply_codes() {
    const EHLO: &str = "EHLO c\r\n";
    const MAIL: &str = "EHLO c\r\nMAIL FROM:<a@b.c>\r\n";
    const RCPT: &str = "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@mx.test>\r\n";
    let cases: &[(&str, &str, &str)] = &[
        // Command order.
        ("", "MAIL FROM:<a@b.c>", "503 5.5.1 Send HELO or EHLO first"),
        (
            EHLO,
            "RCPT TO:<d@mx.test>",
            "503 5.5.1 Need MAIL before RCPT",
        ),
        (EHLO, "DATA", "503 5.5.1 Need MAIL command"),
        (MAIL, "MAIL FROM:<a@b.c>", "503 5.5.1 Nested MAIL command"),
        (MAIL, "DATA", "554 5.5.1 No valid recipients"),
        // Unknown and unoffered commands.
        (EHLO, "FOO bar", "500 5.5.2 Command unrecognized"),
        (EHLO, "", "500 5.5.2 Command unrecognized"),
        (RCPT, "BDAT 10 LAST", "500 5.5.2 Command unrecognized"),
        (EHLO, "LHLO c", "500 5.5.2 Command unrecognized"),
        (EHLO, "ETRN example.com", "500 5.5.2 Command unrecognized"),
        (EHLO, "EXPN staff", "502 5.5.1 EXPN not implemented"),
        (EHLO, "AUTH PLAIN AGEAYg==", "502 5.5.1 AUTH not available"),
        (EHLO, "STARTTLS", "502 5.5.1 STARTTLS not available"),
        // Syntax.
        (
            EHLO,
            "MAIL FROM:a@b.c",
            "501 5.5.4 Syntax: MAIL FROM:<reverse-path> [parameters]",
        ),
        (
            EHLO,
            "MAIL FROM:<a@@b.c>",
            "501 5.1.7 Invalid sender address",
        ),
        (MAIL, "RCPT TO:<>", "501 5.1.3 Invalid recipient address"),
        (
            MAIL,
            "RCPT TO:<a..b@c>",
            "501 5.1.3 Invalid recipient address",
        ),
        ("", "EHLO", "501 5.5.4 Syntax: EHLO domain"),
        (EHLO, "VRFY", "501 5.5.4 Syntax: VRFY string"),
        (
            EHLO,
            "MAIL FROM:<a@b.c> SIZE=x",
            "501 5.5.4 Invalid command arguments",
        ),
        (EHLO, "NOOP\rX", "500 5.5.2 Bare CR or NUL not allowed"),
        (EHLO, "NOOP \0", "500 5.5.2 Bare CR or NUL not allowed"),
        // Parameters.
        (
            EHLO,
            "MAIL FROM:<a@b.c> RET=FULL",
            "555 5.5.4 Unsupported MAIL parameter",
        ),
        (
            EHLO,
            "MAIL FROM:<a@b.c> BODY=BINARYMIME",
            "555 5.5.4 Unsupported MAIL parameter",
        ),
        (
            EHLO,
            "MAIL FROM:<a@b.c> REQUIRETLS",
            "555 5.5.4 Unsupported MAIL parameter",
        ),
        (
            EHLO,
            "MAIL FROM:<a@b.c> FOO=BAR",
            "555 5.5.4 Unsupported parameter",
        ),
        (EHLO, "MAIL FROM:<a@b.c> AUTH=<>", "250 2.1.0 Sender OK"),
        (
            MAIL,
            "RCPT TO:<d@mx.test> NOTIFY=NEVER",
            "555 5.5.4 Unsupported RCPT parameter",
        ),
        // Size and address policy the session knows about.
        (
            EHLO,
            "MAIL FROM:<a@b.c> SIZE=10001",
            "552 5.3.4 Message size exceeds fixed maximum message size",
        ),
        (EHLO, "MAIL FROM:<a@b.c> SIZE=10000", "250 2.1.0 Sender OK"),
        (
            EHLO,
            "MAIL FROM:<\u{e4}@b.c>",
            "553 5.6.7 Non-ASCII address requires SMTPUTF8",
        ),
        (
            MAIL,
            "RCPT TO:<\u{e4}@mx.test>",
            "553 5.6.7 Non-ASCII address requires SMTPUTF8",
        ),
        (
            EHLO,
            "MAIL FROM:<\u{e4}@b.c> SMTPUTF8",
            "250 2.1.0 Sender OK",
        ),
        (MAIL, "RCPT TO:<Postmaster>", "250 2.1.5 Recipient OK"),
        // Housekeeping.
        ("", "NOOP", "250 2.0.0 OK"),
        ("", "RSET", "250 2.0.0 OK"),
        (
            EHLO,
            "VRFY root",
            "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
        ),
        (
            "",
            "HELP",
            "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT STARTTLS AUTH",
        ),
        (RCPT, "DATA", "354 End data with <CR><LF>.<CR><LF>"),
    ];
    for (preamble, command, expected) in cases {
        let input = format!("{preamble}{command}\r\n");
        assert_eq!(last(inbound(), &input), *expected, "{command:?}");
    }
}

#[test]
fn a_line_ended_by_bare_lf_is_refused() {
    assert_eq!(
        run(inbound(), "NOOP\nNOOP\r\n"),
        ["500 5.5.2 Line must end with CRLF", "250 2.0.0 OK"]
    );
}

#[test]
fn postmaster_is_reported_by_name() {
    let transcript = run(
        inbound(),
        "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<PostMaster>\r\n",
    );
    assert!(
        transcript.contains(&"RCPT <postmaster>".to_owned()),
        "{transcript:?}"
    );
}

#[test]
fn rset_and_ehlo_clear_the_transaction() {
    let tx = "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@mx.test>\r\n";
    let after_rset = format!("EHLO c\r\n{tx}RSET\r\nDATA\r\n");
    assert_eq!(last(inbound(), &after_rset), "503 5.5.1 Need MAIL command");
    let after_ehlo = format!("EHLO c\r\n{tx}EHLO c\r\nRCPT TO:<d@mx.test>\r\n");
    assert_eq!(
        last(inbound(), &after_ehlo),
        "503 5.5.1 Need MAIL before RCPT"
    );
}

#[test]
fn embedder_rejections_are_relayed() {
    let input = lines(&[
        "EHLO c",
        "MAIL FROM:<a@b.c>",
        "RCPT TO:<nobody@mx.test>",
        "RCPT TO:<bob@mx.test>",
        "DATA",
        "x",
        ".",
        "MAIL FROM:<spammer@b.c>",
    ]);
    let mut policy = |event: &Event| match event {
        Event::Recipient { forward_path } if forward_path.starts_with("nobody") => {
            Decision::reject(550, "5.1.1", "No such user")
        }
        Event::Message { .. } => Decision::try_later(),
        Event::MailFrom { reverse_path, .. } if reverse_path.starts_with("spammer") => {
            Decision::reject(550, "5.7.1", "Sender refused")
        }
        _ => Decision::Accept,
    };
    let transcript = run_with(inbound(), input.as_bytes(), &mut policy);
    let replies: Vec<&str> = transcript
        .iter()
        .filter(|l| l.starts_with(char::is_numeric) && !l.starts_with("250-"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        replies,
        [
            "250 ENHANCEDSTATUSCODES",
            "250 2.1.0 Sender OK",
            "550 5.1.1 No such user",
            "250 2.1.5 Recipient OK",
            "354 End data with <CR><LF>.<CR><LF>",
            "451 4.3.0 Temporary failure, try again later",
            "550 5.7.1 Sender refused",
        ]
    );
}

#[test]
fn all_recipients_rejected_keeps_the_transaction_open() {
    let input = lines(&[
        "EHLO c",
        "MAIL FROM:<a@b.c>",
        "RCPT TO:<x@mx.test>",
        "DATA",
        "RCPT TO:<y@mx.test>",
        "DATA",
    ]);
    let mut policy = |event: &Event| match event {
        Event::Recipient { forward_path } if forward_path.starts_with('x') => {
            Decision::reject(550, "5.1.1", "No such user")
        }
        _ => Decision::Accept,
    };
    let transcript = run_with(inbound(), input.as_bytes(), &mut policy);
    assert_eq!(
        transcript[transcript.len() - 4..],
        [
            "554 5.5.1 No valid recipients",
            "RCPT <y@mx.test>",
            "250 2.1.5 Recipient OK",
            "354 End data with <CR><LF>.<CR><LF>",
        ]
    );
}

#[test]
fn too_many_recipients() {
    let mut config = inbound();
    config.max_recipients = 2;
    let input =
        "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<1@x.y>\r\nRCPT TO:<2@x.y>\r\nRCPT TO:<3@x.y>\r\n";
    assert_eq!(last(config, input), "452 4.5.3 Too many recipients");
    // A rejected recipient does not use up a slot.
    let mut config = inbound();
    config.max_recipients = 1;
    let mut policy = |event: &Event| match event {
        Event::Recipient { forward_path } if forward_path.starts_with('1') => {
            Decision::reject(550, "5.1.1", "No such user")
        }
        _ => Decision::Accept,
    };
    let input = "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<1@x.y>\r\nRCPT TO:<2@x.y>\r\n";
    let transcript = run_with(config, input.as_bytes(), &mut policy);
    assert_eq!(transcript.last().unwrap(), "250 2.1.5 Recipient OK");
}

#[test]
fn too_many_errors_closes_with_421() {
    let input = "BOGUS\r\n".repeat(MAX_ERRORS + 5);
    let transcript = run(inbound(), &input);
    assert_eq!(transcript.len(), MAX_ERRORS + 2);
    assert!(
        transcript[..MAX_ERRORS]
            .iter()
            .all(|l| l == "500 5.5.2 Command unrecognized")
    );
    assert_eq!(
        transcript[MAX_ERRORS..],
        [
            "421 4.7.0 mx.test Too many errors, closing connection",
            "CLOSE"
        ]
    );

    // Input after the close is taken and dropped.
    let mut session = Session::new(inbound()).unwrap();
    drive(&mut session, input.as_bytes(), usize::MAX, &mut accept_all);
    assert!(session.is_closed());
    assert_eq!(session.feed(b"NOOP\r\n"), 6);
    assert_eq!(session.next_event(), None);
    assert_eq!(session.buffered_len(), 0);
}

#[test]
fn quit_closes() {
    assert_eq!(
        run(inbound(), "QUIT\r\nNOOP\r\n"),
        [
            "221 2.0.0 mx.test Service closing transmission channel",
            "CLOSE"
        ]
    );
}

#[test]
fn a_half_received_message_is_never_emitted() {
    let mut session = Session::new(inbound()).unwrap();
    let input =
        "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@mx.test>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.";
    let events = drive(&mut session, input.as_bytes(), usize::MAX, &mut accept_all);
    assert!(!events.iter().any(|e| matches!(e, Event::Message { .. })));
    assert_eq!(session.next_event(), None);
}

#[test]
fn decisions_block_until_answered() {
    let mut session = Session::new(inbound()).unwrap();
    let input = b"EHLO c\r\nMAIL FROM:<a@b.c>\r\nNOOP\r\n";
    assert_eq!(session.feed(input), input.len());
    assert!(matches!(session.next_event(), Some(Event::Reply(_))));
    assert!(matches!(session.next_event(), Some(Event::MailFrom { .. })));
    // NOOP is buffered but not processed while MAIL waits.
    assert_eq!(session.next_event(), None);
    assert_eq!(session.next_event(), None);
    session.respond(Decision::Accept).unwrap();
    assert_eq!(
        session.next_event(),
        Some(Event::Reply(b"250 2.1.0 Sender OK\r\n".to_vec()))
    );
    assert_eq!(
        session.next_event(),
        Some(Event::Reply(b"250 2.0.0 OK\r\n".to_vec()))
    );
    assert_eq!(session.next_event(), None);
}

#[test]
fn embedder_mistakes_are_errors() {
    let kind = |result: Result<_, Error>| result.unwrap_err().kind;
    let mut session = Session::new(inbound()).unwrap();
    assert_eq!(
        kind(session.respond(Decision::Accept)),
        ErrorKind::NoPendingDecision
    );
    assert_eq!(kind(session.tls_started()), ErrorKind::NotAwaitingTls);

    assert_eq!(session.feed(b"EHLO c\r\nMAIL FROM:<a@b.c>\r\n"), 27);
    while session.next_event().is_some_and(|e| !e.needs_decision()) {}
    let bad = [
        Decision::reject(250, "2.0.0", "OK"),
        Decision::reject(550, "4.1.1", "mismatch"),
        Decision::reject(550, "5.1.1", "x\r\n250 2.0.0 injected"),
    ];
    for decision in bad {
        assert!(matches!(
            kind(session.respond(decision)),
            ErrorKind::InvalidReply(_)
        ));
    }
    // The failed calls changed nothing: the decision is still pending.
    session
        .respond(Decision::reject(550, "5.7.1", "No"))
        .unwrap();
    assert_eq!(
        session.next_event(),
        Some(Event::Reply(b"550 5.7.1 No\r\n".to_vec()))
    );
}

#[test]
fn invalid_configs_are_refused() {
    let cases: &[(&str, usize, usize, ErrorKind)] = &[
        ("", 1, 1, ErrorKind::InvalidHostname),
        ("mx.test\r\n250 x", 1, 1, ErrorKind::InvalidHostname),
        ("mx test", 1, 1, ErrorKind::InvalidHostname),
        ("mx.test", 0, 1, ErrorKind::InvalidLimit("max_recipients")),
        ("mx.test", 1, 0, ErrorKind::InvalidLimit("max_message_size")),
    ];
    for (host, recipients, size, kind) in cases {
        let mut config = Config::new(*host, Mode::Inbound);
        config.max_recipients = *recipients;
        config.max_message_size = *size;
        assert_eq!(Session::new(config).unwrap_err().kind, *kind, "{host:?}");
    }
    assert!(Session::new(submission()).is_ok());
}
