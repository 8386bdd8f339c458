//! SMTP smuggling: only CR LF . CR LF ends a message, and a message with a
//! bare CR or LF is refused after its end. Nothing inside it ever runs as a
//! command.

use stormproof_smtp_session::Event;

use crate::testkit::{accept_all, inbound, run, run_with};

const START: &str = "EHLO c\r\nMAIL FROM:<alice@good.example>\r\nRCPT TO:<bob@mx.test>\r\nDATA\r\n";
const SMUGGLED: &str =
    "MAIL FROM:<ceo@victim.example>\r\nRCPT TO:<bob@mx.test>\r\nDATA\r\nWire the money.\r\n";

#[test]
fn smuggled_end_of_data_sequences_stay_in_the_first_message() {
    let sequences = [
        "\n.\n",
        "\n.\r\n",
        "\r\n.\n",
        "\r.\r\n",
        "\r\n.\r",
        "\r.\r",
        "\r.\n",
        "\n..\n",
        "\r\n.\r\r\n",
        "\r\n\x00.\r\n",
    ];
    for sequence in sequences {
        let input = format!("{START}Hello{sequence}{SMUGGLED}.\r\nQUIT\r\n");
        let transcript = run(inbound(), &input);
        let expected_end = if sequence.contains('\0') {
            // NUL is not a line ending: this one is just a message.
            "250 2.0.0 Message accepted for delivery"
        } else {
            "550 5.5.2 Bare LF or CR not allowed"
        };
        assert_eq!(
            transcript[transcript.len() - 3..],
            [
                expected_end,
                "221 2.0.0 mx.test Service closing transmission channel",
                "CLOSE"
            ],
            "{sequence:?}"
        );
        let mails = transcript
            .iter()
            .filter(|l| l.starts_with("MAIL <"))
            .count();
        assert_eq!(mails, 1, "{sequence:?}: {transcript:?}");
        let smuggled = |l: &String| l.starts_with("MAIL <ceo") || l.starts_with("MESSAGE <ceo");
        assert!(!transcript.iter().any(smuggled), "{sequence:?}");
    }
}

#[test]
fn a_rejected_message_clears_the_transaction() {
    let input = format!("{START}a\nb\r\n.\r\nRCPT TO:<carol@mx.test>\r\nMAIL FROM:<a@b.c>\r\n");
    let transcript = run(inbound(), &input);
    assert_eq!(
        transcript[transcript.len() - 4..],
        [
            "550 5.5.2 Bare LF or CR not allowed",
            "503 5.5.1 Need MAIL before RCPT",
            "MAIL <a@b.c>",
            "250 2.1.0 Sender OK",
        ]
    );
}

#[test]
fn dot_unstuffing() {
    let cases: &[(&str, &str)] = &[
        (".\r\n", ""),
        ("..\r\n.\r\n", ".\r\n"),
        ("..leading dot\r\n.\r\n", ".leading dot\r\n"),
        ("a\r\n...\r\n.\r\n", "a\r\n..\r\n"),
        ("trailing.\r\n.\r\n", "trailing.\r\n"),
        (". \r\n.\r\n", " \r\n"),
        ("a\r\n\r\n.\r\n", "a\r\n\r\n"),
    ];
    for (wire, stored) in cases {
        let input = format!("{START}{wire}");
        let mut session = stormproof_smtp_session::Session::new(inbound()).unwrap();
        let events =
            crate::testkit::drive(&mut session, input.as_bytes(), usize::MAX, &mut accept_all);
        let data = events.iter().find_map(|e| match e {
            Event::Message { data, .. } => Some(data.clone()),
            _ => None,
        });
        assert_eq!(data.as_deref(), Some(stored.as_bytes()), "{wire:?}");
    }
}

#[test]
fn a_dot_line_inside_a_header_does_not_end_the_message() {
    let input = format!("{START}Subject: x\r\n.foo\r\n\r\n.\r\n");
    let transcript = run_with(inbound(), input.as_bytes(), &mut accept_all);
    assert!(
        transcript
            .iter()
            .any(|l| l.ends_with(r#""Subject: x\r\nfoo\r\n\r\n""#)),
        "{transcript:?}"
    );
}
