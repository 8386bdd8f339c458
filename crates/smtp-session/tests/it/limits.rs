//! Named limits: line lengths, message size, and input held in memory.

use stormproof_smtp_session::{
    Decision, Event, MAX_AUTH_LINE, MAX_COMMAND_LINE, MAX_DATA_LINE, MAX_INPUT_BUFFER, Session,
};

use crate::testkit::{accept_all, drive, inbound, last, run, submission};

/// A NOOP line of exactly `len` bytes, CR LF included.
fn noop(len: usize) -> String {
    format!("NOOP {}\r\n", "x".repeat(len - 7))
}

#[test]
fn command_line_limit_is_512_with_crlf() {
    assert_eq!(noop(MAX_COMMAND_LINE).len(), MAX_COMMAND_LINE);
    assert_eq!(run(inbound(), &noop(MAX_COMMAND_LINE)), ["250 2.0.0 OK"]);
    assert_eq!(
        run(inbound(), &noop(MAX_COMMAND_LINE + 1)),
        ["500 5.5.6 Line too long"]
    );
}

#[test]
fn an_over_long_line_is_skipped_to_its_end() {
    let input = format!("{}NOOP\r\n", noop(100_000));
    assert_eq!(
        run(inbound(), &input),
        ["500 5.5.6 Line too long", "250 2.0.0 OK"]
    );
}

#[test]
fn an_endless_line_is_never_buffered() {
    let mut session = Session::new(inbound()).unwrap();
    let chunk = [b'A'; 100];
    for _ in 0..10_000 {
        assert_eq!(session.feed(&chunk), chunk.len());
        assert_eq!(session.next_event(), None);
        assert!(
            session.buffered_len() < MAX_COMMAND_LINE,
            "{}",
            session.buffered_len()
        );
    }
    assert_eq!(session.feed(b"\r\n"), 2);
    assert_eq!(
        session.next_event(),
        Some(Event::Reply(b"500 5.5.6 Line too long\r\n".to_vec()))
    );
}

#[test]
fn a_long_auth_line_is_allowed_on_submission_only() {
    let token = "A".repeat(MAX_AUTH_LINE - "AUTH PLAIN \r\n".len());
    let line = format!("EHLO c\r\nAUTH PLAIN {token}\r\n");
    // Refused for its content, not its length.
    assert_eq!(
        last(submission(), &line),
        "501 5.5.2 Cannot decode base64 response"
    );
    assert_eq!(last(inbound(), &line), "500 5.5.6 Line too long");
    let longer = format!("EHLO c\r\nAUTH PLAIN {token}AAAA\r\n");
    assert_eq!(last(submission(), &longer), "500 5.5.6 Line too long");
}

fn transaction(body: &[u8]) -> Vec<u8> {
    let mut input = b"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@mx.test>\r\nDATA\r\n".to_vec();
    input.extend_from_slice(body);
    input.extend_from_slice(b".\r\nNOOP\r\n");
    input
}

fn outcome(body: &[u8]) -> Vec<String> {
    let transcript = crate::testkit::run_with(inbound(), &transaction(body), &mut accept_all);
    transcript[transcript.len() - 2..].to_vec()
}

#[test]
fn data_line_limit_is_1000_with_crlf() {
    let mut fits = vec![b'x'; MAX_DATA_LINE - 2];
    fits.extend_from_slice(b"\r\n");
    assert_eq!(
        outcome(&fits),
        ["250 2.0.0 Message accepted for delivery", "250 2.0.0 OK"]
    );
    let mut long = vec![b'x'; MAX_DATA_LINE - 1];
    long.extend_from_slice(b"\r\n");
    assert_eq!(
        outcome(&long),
        [
            "554 5.6.0 Message line longer than 998 characters",
            "250 2.0.0 OK"
        ]
    );
}

#[test]
fn an_oversized_message_is_refused_without_being_held() {
    let mut session = Session::new(inbound()).unwrap();
    let start = b"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@mx.test>\r\nDATA\r\n";
    let events = drive(&mut session, start, usize::MAX, &mut accept_all);
    assert_eq!(events.len(), 6);
    let line = [b"y".repeat(78), b"\r\n".to_vec()].concat();
    let mut peak = 0;
    for _ in 0..20_000 {
        assert_eq!(session.feed(&line), line.len());
        assert_eq!(session.next_event(), None);
        peak = peak.max(session.buffered_len());
    }
    // 1.6 MB sent; never more than the 10 000-byte limit held.
    assert!(peak <= 10_000, "{peak}");
    assert_eq!(session.buffered_len(), 0);
    assert_eq!(session.feed(b".\r\nNOOP\r\n"), 9);
    assert_eq!(
        session.next_event(),
        Some(Event::Reply(
            b"552 5.3.4 Message size exceeds fixed maximum message size\r\n".to_vec()
        ))
    );
    // The transaction is over; the session goes on.
    assert_eq!(
        session.next_event(),
        Some(Event::Reply(b"250 2.0.0 OK\r\n".to_vec()))
    );
}

#[test]
fn a_message_at_the_size_limit_is_accepted() {
    let mut body = [b"z".repeat(98), b"\r\n".to_vec()].concat().repeat(100);
    assert_eq!(body.len(), 10_000);
    assert_eq!(outcome(&body)[0], "250 2.0.0 Message accepted for delivery");
    body.extend_from_slice(b"z\r\n");
    assert!(outcome(&body)[0].starts_with("552 5.3.4 "));
}

#[test]
fn feed_pushes_back_while_a_decision_is_pending() {
    let mut session = Session::new(inbound()).unwrap();
    let mut input = b"EHLO c\r\nMAIL FROM:<a@b.c>\r\n".to_vec();
    input.extend_from_slice(&b"NOOP\r\n".repeat(10_000));
    let taken = session.feed(&input);
    assert_eq!(taken, MAX_INPUT_BUFFER);
    assert!(matches!(session.next_event(), Some(Event::Reply(_))));
    assert!(matches!(session.next_event(), Some(Event::MailFrom { .. })));
    assert_eq!(session.next_event(), None);
    // Room was made only by the two lines processed.
    let taken = taken + session.feed(&input[taken..]);
    assert_eq!(taken, MAX_INPUT_BUFFER + 27);
    assert_eq!(session.feed(&input[taken..]), 0);
    assert_eq!(session.buffered_len(), MAX_INPUT_BUFFER);
    session.respond(Decision::Accept).unwrap();
    // Every pipelined NOOP is answered once the rest is offered again.
    let events = drive(&mut session, &input[taken..], usize::MAX, &mut accept_all);
    let oks = events
        .iter()
        .filter(|e| **e == Event::Reply(b"250 2.0.0 OK\r\n".to_vec()))
        .count();
    assert_eq!(oks, 10_000);
}
