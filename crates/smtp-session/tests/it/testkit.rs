//! A scripted embedder and a transcript format that reads like a dialogue.

use stormproof_smtp_session::{Config, Decision, Event, MAX_INPUT_BUFFER, Mode, Session};

/// An inbound session config with a small size limit, so limits are cheap
/// to test.
pub fn inbound() -> Config {
    let mut config = Config::new("mx.test", Mode::Inbound);
    config.max_message_size = 10_000;
    config
}

/// A submission session config already under implicit TLS.
pub fn submission() -> Config {
    let mut config = Config::new("smtp.test", Mode::Submission);
    config.max_message_size = 10_000;
    config.tls_active = true;
    config
}

/// Accepts everything.
pub fn accept_all(_: &Event) -> Decision {
    Decision::Accept
}

/// Feeds `input` in pieces of `chunk` bytes, answering decisions with
/// `policy` and completing TLS at once on `StartTls`. Stops at `Close`.
/// Checks after every call that the session holds no more than its bounds.
pub fn drive(
    session: &mut Session,
    input: &[u8],
    chunk: usize,
    policy: &mut dyn FnMut(&Event) -> Decision,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut rest = input;
    loop {
        while let Some(event) = session.next_event() {
            if event.needs_decision() {
                session.respond(policy(&event)).unwrap();
            }
            if event == Event::StartTls {
                session.tls_started().unwrap();
            }
            let close = event == Event::Close;
            events.push(event);
            if close {
                assert!(session.is_closed());
                assert_eq!(session.next_event(), None);
                return events;
            }
        }
        if rest.is_empty() {
            return events;
        }
        let taken = session.feed(&rest[..chunk.min(rest.len())]);
        assert!(
            taken > 0,
            "the session took nothing while it had nothing to say"
        );
        assert!(session.buffered_len() <= MAX_INPUT_BUFFER + 10_000);
        rest = &rest[taken..];
    }
}

/// Runs `input` through a fresh session in one piece, accepting everything.
pub fn run(config: Config, input: &str) -> Vec<String> {
    run_with(config, input.as_bytes(), &mut accept_all)
}

/// Runs `input` through a fresh session in one piece with `policy`.
pub fn run_with(
    config: Config,
    input: &[u8],
    policy: &mut dyn FnMut(&Event) -> Decision,
) -> Vec<String> {
    let mut session = Session::new(config).unwrap();
    transcript(&drive(&mut session, input, usize::MAX, policy))
}

/// The last line of the transcript of `input`.
pub fn last(config: Config, input: &str) -> String {
    run(config, input).pop().unwrap_or_default()
}

/// One line per reply line or event.
pub fn transcript(events: &[Event]) -> Vec<String> {
    let mut lines = Vec::new();
    for event in events {
        match event {
            Event::Reply(bytes) => {
                let text = String::from_utf8(bytes.clone()).unwrap();
                assert!(text.ends_with("\r\n"), "reply without CRLF: {text:?}");
                for line in text.trim_end_matches("\r\n").split("\r\n") {
                    assert!(line.len() <= 510, "reply line too long: {line}");
                    lines.push(line.to_owned());
                }
            }
            Event::MailFrom { reverse_path, .. } => lines.push(format!("MAIL <{reverse_path}>")),
            Event::Recipient { forward_path } => lines.push(format!("RCPT <{forward_path}>")),
            Event::Authenticate(credentials) => lines.push(format!("AUTH {credentials:?}")),
            Event::StartTls => lines.push("STARTTLS".to_owned()),
            Event::Message {
                reverse_path,
                recipients,
                data,
                ..
            } => lines.push(format!(
                "MESSAGE <{reverse_path}> {recipients:?} {:?}",
                String::from_utf8_lossy(data)
            )),
            Event::Close => lines.push("CLOSE".to_owned()),
        }
    }
    lines
}

/// The given lines joined with CR LF, each terminated.
pub fn lines(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}
