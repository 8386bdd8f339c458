//! The SMTP session over arbitrary client bytes, in both modes, fed in
//! chunks the input chooses, with decisions alternating between accept and
//! reject. It must never panic, never hold more than its limits, and never
//! emit a reply that is not CRLF-terminated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stormproof_smtp_session::{Config, Decision, Event, MAX_INPUT_BUFFER, Mode, Session};

const MAX_MESSAGE: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else { return };
    let mode = if control & 1 == 0 { Mode::Inbound } else { Mode::Submission };
    let mut config = Config::new("mx.test", mode);
    config.max_message_size = MAX_MESSAGE;
    config.tls_available = control & 2 != 0;
    config.require_tls_for_auth = control & 4 != 0;
    let Ok(mut session) = Session::new(config) else { return };
    let chunk = usize::from(control >> 3).max(1);
    let mut decisions = 0usize;
    let mut pending: &[u8] = input;
    // Bounded: every round either consumes input or ends.
    for _ in 0..input.len() * 4 + 16 {
        while let Some(event) = session.next_event() {
            match event {
                Event::Reply(bytes) => assert!(bytes.ends_with(b"\r\n")),
                Event::StartTls => {
                    let _ = session.tls_started();
                }
                Event::Close => return,
                event if event.needs_decision() => {
                    decisions += 1;
                    let decision = if decisions % 3 == 0 { Decision::reject(550, "5.7.1", "No") } else { Decision::Accept };
                    let _ = session.respond(decision);
                }
                _ => {}
            }
        }
        assert!(session.buffered_len() <= MAX_INPUT_BUFFER + MAX_MESSAGE);
        if pending.is_empty() {
            return;
        }
        let end = chunk.min(pending.len());
        let taken = session.feed(&pending[..end]);
        pending = &pending[taken..];
    }
});
