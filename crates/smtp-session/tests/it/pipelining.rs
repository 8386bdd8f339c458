//! RFC 2920: many commands in one write, replies in order.

use stormproof_smtp_session::{Decision, Event, Session};

use crate::testkit::{accept_all, drive, inbound, lines, run, run_with};

#[test]
fn a_pipelined_group_is_answered_in_order() {
    let input = lines(&[
        "EHLO c",
        "MAIL FROM:<a@b.c>",
        "RCPT TO:<1@mx.test>",
        "RCPT TO:<2@mx.test>",
        "RCPT TO:<3@mx.test>",
        "DATA",
        "one",
        ".",
        "MAIL FROM:<e@f.g>",
        "RCPT TO:<4@mx.test>",
        "DATA",
        "two",
        ".",
        "QUIT",
    ]);
    let mut policy = |event: &Event| match event {
        Event::Recipient { forward_path } if forward_path.starts_with('2') => {
            Decision::reject(550, "5.1.1", "No such user")
        }
        _ => Decision::Accept,
    };
    let transcript = run_with(inbound(), input.as_bytes(), &mut policy);
    assert_eq!(
        transcript[6..],
        [
            "MAIL <a@b.c>",
            "250 2.1.0 Sender OK",
            "RCPT <1@mx.test>",
            "250 2.1.5 Recipient OK",
            "RCPT <2@mx.test>",
            "550 5.1.1 No such user",
            "RCPT <3@mx.test>",
            "250 2.1.5 Recipient OK",
            "354 End data with <CR><LF>.<CR><LF>",
            r#"MESSAGE <a@b.c> ["1@mx.test", "3@mx.test"] "one\r\n""#,
            "250 2.0.0 Message accepted for delivery",
            "MAIL <e@f.g>",
            "250 2.1.0 Sender OK",
            "RCPT <4@mx.test>",
            "250 2.1.5 Recipient OK",
            "354 End data with <CR><LF>.<CR><LF>",
            r#"MESSAGE <e@f.g> ["4@mx.test"] "two\r\n""#,
            "250 2.0.0 Message accepted for delivery",
            "221 2.0.0 mx.test Service closing transmission channel",
            "CLOSE",
        ]
    );
}

#[test]
fn errors_in_a_group_do_not_stop_it() {
    let input = lines(&[
        "EHLO c",
        "NOPE",
        "MAIL FROM:<a@b.c>",
        "RCPT TO:<>",
        "RCPT TO:<x@mx.test>",
        "RSET",
        "NOOP",
    ]);
    let transcript = run(inbound(), &input);
    assert_eq!(
        transcript[6..],
        [
            "500 5.5.2 Command unrecognized",
            "MAIL <a@b.c>",
            "250 2.1.0 Sender OK",
            "501 5.1.3 Invalid recipient address",
            "RCPT <x@mx.test>",
            "250 2.1.5 Recipient OK",
            "250 2.0.0 OK",
            "250 2.0.0 OK",
        ]
    );
}

#[test]
fn a_message_in_the_same_write_as_its_commands_is_one_message() {
    // Some clients write DATA and the content together; what follows the
    // end of data is commands again.
    let mut session = Session::new(inbound()).unwrap();
    let input = b"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@mx.test>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n";
    let events = drive(&mut session, input, usize::MAX, &mut accept_all);
    let messages = events
        .iter()
        .filter(|e| matches!(e, Event::Message { .. }))
        .count();
    assert_eq!(messages, 1);
    assert_eq!(
        events.last(),
        Some(&Event::Reply(b"250 2.0.0 OK\r\n".to_vec()))
    );
}
