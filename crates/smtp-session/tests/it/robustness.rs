//! Pseudo-random input, built from SMTP fragments and noise: the session
//! never panics, stays within its memory bounds, answers with well-formed
//! replies (checked by the test kit), and is indifferent to how input is
//! split. A cheap, hermetic stand-in for the fuzz target.

use stormproof_smtp_session::{Config, Mode};

use crate::chunking::{assert_split_invariant, events};
use crate::testkit::{inbound, submission};

/// xorshift64*: deterministic, so a failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "EHLO c\r\n",
    "HELO c\r\n",
    "MAIL FROM:<a@b.c>\r\n",
    "MAIL FROM:<> SIZE=100 BODY=8BITMIME SMTPUTF8\r\n",
    "MAIL FROM:<a@b.c> SIZE=99999999\r\n",
    "RCPT TO:<d@mx.test>\r\n",
    "RCPT TO:<x@mx.test>\r\n",
    "RCPT TO:<Postmaster>\r\n",
    "DATA\r\n",
    "BDAT 5 LAST\r\n",
    "RSET\r\n",
    "NOOP\r\n",
    "VRFY a\r\n",
    "HELP\r\n",
    "STARTTLS\r\n",
    "AUTH PLAIN AGEAYg==\r\n",
    "AUTH PLAIN\r\n",
    "AUTH OAUTHBEARER bixhPXUsAWF1dGg9QmVhcmVyIGV4cGlyZWQBAQ==\r\n",
    "AQ==\r\n",
    "*\r\n",
    "Subject: x\r\n",
    "\r\n.\r\n",
    ".\r\n",
    "..\r\n",
    "\r\n",
    "\n",
    "\r",
    ".",
    "\n.\n",
    "\r.\r\n",
    "\0",
    "\u{fc}",
];

/// Message content fragments, smuggling attempts among them.
const BODY: &[&str] = &[
    "Subject: x\r\n",
    "\r\n",
    "text\r\n",
    "..\r\n",
    ".x",
    "\n",
    "\r",
    "\n.\n",
    "\r.\r\n",
    "\r\n.\r",
    "\n.\r\n",
    "MAIL FROM:<evil@x.y>\r\n",
];

fn random_input(rng: &mut Rng) -> Vec<u8> {
    let mut input = Vec::new();
    if rng.below(4) != 0 {
        // Greet (and authenticate, on submission) so the session gets deep.
        input.extend_from_slice(b"EHLO c\r\nAUTH PLAIN AGEAYg==\r\n");
    }
    for _ in 0..rng.below(40) {
        match rng.below(20) {
            0 => {
                let byte = rng.next() as u8;
                input.extend(std::iter::repeat_n(byte, rng.below(1200)));
            }
            1 => input.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
            2..=11 => input.extend_from_slice(FRAGMENTS[rng.below(FRAGMENTS.len())].as_bytes()),
            _ => {
                // A mostly well-formed transaction, so DATA is reached often.
                input.extend_from_slice(
                    b"RSET\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@mx.test>\r\nDATA\r\n",
                );
                for _ in 0..rng.below(30) {
                    match rng.below(10) {
                        0 => input.extend(std::iter::repeat_n(b'y', rng.below(1100))),
                        _ => input.extend_from_slice(BODY[rng.below(BODY.len())].as_bytes()),
                    }
                }
                input.extend_from_slice(b"\r\n.\r\n");
            }
        }
    }
    input
}

#[test]
fn random_dialogues_are_handled_and_split_invariant() {
    let mut small = inbound();
    small.max_message_size = 500;
    small.max_recipients = 2;
    let mut plaintext_submission = Config::new("smtp.test", Mode::Submission);
    plaintext_submission.require_tls_for_auth = false;
    let configs = [inbound(), small, submission(), plaintext_submission];
    let mut rng = Rng(0x5EED_CAFE_F00D_D00D);
    for round in 0..400 {
        let input = random_input(&mut rng);
        let config = &configs[round % configs.len()];
        // STARTTLS is not offered in these configs, so the split cannot
        // change what counts as plaintext injection.
        assert_split_invariant(config, &input);
    }
}

#[test]
fn random_dialogues_with_starttls_offered() {
    let mut config = inbound();
    config.tls_available = true;
    let mut rng = Rng(0xDEC0_DE15_BAD5_EED5);
    for _ in 0..200 {
        let input = random_input(&mut rng);
        events(&config, &input, 1 + rng.below(100));
        events(&config, &input, usize::MAX);
    }
}
