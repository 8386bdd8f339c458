//! The DATA phase: dot-unstuffing, the end-of-data sequence, and the limits
//! on message and line size, without ever holding more than the limit.
//!
//! Only `CR LF . CR LF` ends a message. Every other spelling that some
//! server somewhere has accepted (`LF . LF`, `CR LF . LF`, `LF . CR LF`,
//! `CR . CR LF`, ...) stays inside the message, which is then refused for its
//! bare CR or LF. Ending early on any of them is SMTP smuggling: the rest of
//! the "message" would run as commands in a transaction the client never
//! authenticated for.

use crate::MAX_DATA_LINE;

/// Where the scanner stands relative to the line structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Just after CR LF, or at the very start of the data.
    LineStart,
    /// Inside a line.
    Text,
    /// A CR was read and not yet stored: it is a line end only if LF follows.
    Cr,
    /// A `.` was read at line start and not yet stored.
    Dot,
    /// `.` CR were read at line start: LF now ends the message.
    DotCr,
}

/// How a finished DATA phase turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A well-formed message, unstuffed, with CRLF line endings and without
    /// the terminating `.` CR LF.
    Message(Vec<u8>),
    /// A CR or LF that was not part of a CR LF pair.
    BareLineEnding,
    /// More than the configured maximum size.
    TooBig,
    /// A line longer than [`MAX_DATA_LINE`].
    LineTooLong,
}

/// Receives one message body.
pub(crate) struct DataReceiver {
    scan: Scan,
    body: Vec<u8>,
    limit: usize,
    line_len: usize,
    too_big: bool,
    bare_line_ending: bool,
    line_too_long: bool,
}

impl DataReceiver {
    /// A receiver that refuses bodies over `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            scan: Scan::LineStart,
            body: Vec::new(),
            limit,
            line_len: 0,
            too_big: false,
            bare_line_ending: false,
            line_too_long: false,
        }
    }

    /// Bytes held for the message so far.
    pub(crate) fn held(&self) -> usize {
        self.body.len()
    }

    /// Consumes `input` up to and including the end-of-data sequence.
    /// Returns how many bytes were consumed and whether the message ended;
    /// when it did not, all of `input` was consumed.
    pub(crate) fn ingest(&mut self, input: &[u8]) -> (usize, bool) {
        let mut at = 0;
        while at < input.len() {
            if self.scan == Scan::Text {
                // Most bytes are ordinary text: copy runs of them at once.
                let rest = &input[at..];
                let run = rest
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(rest.len());
                self.text(&rest[..run]);
                at += run;
            }
            let Some(&byte) = input.get(at) else { break };
            at += 1;
            if self.byte(byte) {
                return (at, true);
            }
        }
        (at, false)
    }

    /// Advances over one byte; true when it completed the end-of-data sequence.
    fn byte(&mut self, byte: u8) -> bool {
        match (self.scan, byte) {
            (Scan::DotCr, b'\n') => return true,
            (Scan::LineStart, b'.') => self.scan = Scan::Dot,
            (Scan::Cr, b'\n') => {
                self.store(b"\r\n");
                self.line_len = 0;
                self.scan = Scan::LineStart;
            }
            // The pending CR was bare; this one may still start a CR LF.
            (Scan::Cr | Scan::DotCr, b'\r') => {
                self.bare_line_ending = true;
                self.text(b"\r");
                self.scan = Scan::Cr;
            }
            (Scan::Cr | Scan::DotCr, _) => {
                self.bare_line_ending = true;
                self.text(b"\r");
                self.scan = Scan::Text;
                self.byte(byte);
            }
            (Scan::Dot, b'\r') => self.scan = Scan::DotCr,
            (_, b'\r') => self.scan = Scan::Cr,
            (_, b'\n') => {
                self.bare_line_ending = true;
                self.store(b"\n");
                self.scan = Scan::Text;
            }
            // A line starting with `.` and going on: the dot was stuffing
            // (RFC 5321 4.5.2), so it is dropped.
            (Scan::Dot | Scan::LineStart | Scan::Text, _) => {
                self.text(&[byte]);
                self.scan = Scan::Text;
            }
        }
        false
    }

    /// Stores line content, counting it against the line length limit.
    fn text(&mut self, bytes: &[u8]) {
        self.line_len += bytes.len();
        if self.line_len > MAX_DATA_LINE - 2 {
            self.line_too_long = true;
        }
        self.store(bytes);
    }

    /// Stores bytes unless the message is already over its limit. Once over,
    /// the body is dropped and the rest of the data is only scanned.
    fn store(&mut self, bytes: &[u8]) {
        if self.too_big {
            return;
        }
        if self.body.len() + bytes.len() > self.limit {
            self.too_big = true;
            self.body = Vec::new();
            return;
        }
        self.body.extend_from_slice(bytes);
    }

    /// The outcome, once [`Self::ingest`] reported the end. A bare line
    /// ending is reported first: it is the sign of a smuggling attempt.
    pub(crate) fn finish(self) -> Outcome {
        if self.bare_line_ending {
            Outcome::BareLineEnding
        } else if self.too_big {
            Outcome::TooBig
        } else if self.line_too_long {
            Outcome::LineTooLong
        } else {
            Outcome::Message(self.body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` whole and byte by byte; both must agree.
    fn check(input: &[u8], limit: usize) -> (usize, Option<Outcome>) {
        let mut whole = DataReceiver::new(limit);
        let (used, done) = whole.ingest(input);
        let mut bytewise = DataReceiver::new(limit);
        let mut bytewise_used = 0;
        let mut bytewise_done = false;
        for &b in input {
            let (n, d) = bytewise.ingest(&[b]);
            bytewise_used += n;
            if d {
                bytewise_done = true;
                break;
            }
        }
        assert_eq!((used, done), (bytewise_used, bytewise_done), "{input:?}");
        let outcome = done.then(|| whole.finish());
        let other = bytewise_done.then(|| bytewise.finish());
        assert_eq!(outcome, other, "{input:?}");
        (used, outcome)
    }

    fn message(body: &[u8]) -> Option<Outcome> {
        Some(Outcome::Message(body.to_vec()))
    }

    #[test]
    fn unstuffing_and_end_of_data() {
        let cases: &[(&[u8], usize, Option<Outcome>)] = &[
            (b".\r\n", 3, message(b"")),
            (b"a\r\n.\r\n", 6, message(b"a\r\n")),
            (b"a\r\n.\r\nQUIT\r\n", 6, message(b"a\r\n")),
            (b"..\r\n.\r\n", 7, message(b".\r\n")),
            (b"..foo\r\n.\r\n", 10, message(b".foo\r\n")),
            (b".foo\r\n.\r\n", 9, message(b"foo\r\n")),
            (b"a.\r\n.b\r\n.\r\n", 11, message(b"a.\r\nb\r\n")),
            (b"a\r\n\r\n.\r\n", 8, message(b"a\r\n\r\n")),
            (b"a\r\n", 3, None),
            (b"a\r\n.", 4, None),
            (b"a\r\n.\r", 5, None),
            (b"", 0, None),
        ];
        for (input, used, outcome) in cases {
            assert_eq!(check(input, 1000), (*used, outcome.clone()), "{input:?}");
        }
    }

    #[test]
    fn only_crlf_dot_crlf_ends_the_message() {
        // Each of these has been accepted as end-of-data by some server;
        // here each stays inside the message and taints it.
        let smuggles: &[&[u8]] = &[
            b"\n.\n",
            b"\n.\r\n",
            b"\r\n.\n",
            b"\r.\r\n",
            b"\r\n.\r",
            b"\r.\r",
            b"\r\n.\r\r\n",
        ];
        for smuggle in smuggles {
            let mut input = b"body".to_vec();
            input.extend_from_slice(smuggle);
            input.extend_from_slice(b"MAIL FROM:<x@y>\r\n");
            let (used, outcome) = check(&input, 1000);
            assert_eq!(
                (used, outcome),
                (input.len(), None),
                "{smuggle:?} ended early"
            );
            input.extend_from_slice(b".\r\n");
            let (used, outcome) = check(&input, 1000);
            assert_eq!(used, input.len(), "{smuggle:?}");
            assert_eq!(outcome, Some(Outcome::BareLineEnding), "{smuggle:?}");
        }
    }

    #[test]
    fn bare_line_endings_taint_the_message() {
        let cases: &[&[u8]] = &[
            b"a\nb\r\n.\r\n",
            b"a\rb\r\n.\r\n",
            b"\n.\r\n.\r\n",
            b"a\n\r\n.\r\n",
            b"a\r\r\n.\r\n",
            b".\n\r\n.\r\n",
        ];
        for input in cases {
            assert_eq!(
                check(input, 1000),
                (input.len(), Some(Outcome::BareLineEnding)),
                "{input:?}"
            );
        }
    }

    #[test]
    fn size_and_line_limits() {
        let line = |n: usize| {
            let mut v = vec![b'x'; n];
            v.extend_from_slice(b"\r\n.\r\n");
            v
        };
        let ok = line(MAX_DATA_LINE - 2);
        assert!(matches!(check(&ok, 10_000).1, Some(Outcome::Message(_))));
        let long = line(MAX_DATA_LINE - 1);
        assert_eq!(check(&long, 10_000).1, Some(Outcome::LineTooLong));
        // A stuffed dot does not count against the line.
        let mut stuffed = b".".to_vec();
        stuffed.extend_from_slice(&ok);
        assert!(matches!(
            check(&stuffed, 10_000).1,
            Some(Outcome::Message(_))
        ));

        assert_eq!(check(b"12345678\r\n.\r\n", 10).1, message(b"12345678\r\n"));
        assert_eq!(check(b"123456789\r\n.\r\n", 10).1, Some(Outcome::TooBig));
        // Bare line endings win over size: they are the attack signal.
        assert_eq!(
            check(b"123456789\n\r\n.\r\n", 5).1,
            Some(Outcome::BareLineEnding)
        );
    }

    #[test]
    fn an_oversized_body_is_dropped_not_held() {
        let mut receiver = DataReceiver::new(100);
        for _ in 0..1000 {
            let (_, done) = receiver.ingest(&[b'x'; 99]);
            assert!(!done);
            let (_, done) = receiver.ingest(b"\r\n");
            assert!(!done);
            assert!(receiver.held() <= 100);
        }
        assert_eq!(receiver.ingest(b".\r\n"), (3, true));
        assert_eq!(receiver.finish(), Outcome::TooBig);
    }
}
