//! Reply lines: formatting, and checking the ones the embedder supplies.

use crate::{Error, ErrorKind, MAX_REPLY_LINE};

/// One reply line with an enhanced status code (RFC 3463).
pub(crate) fn line(code: u16, enhanced: &str, text: &str) -> Vec<u8> {
    format!("{code} {enhanced} {text}\r\n").into_bytes()
}

/// Formats an embedder's rejection, refusing anything that is not a single
/// well-formed 4xx/5xx line: a CR or LF in `text` would let whoever chose the
/// text (often echoing client input) inject further replies.
pub(crate) fn rejection(code: u16, enhanced: &str, text: &str) -> Result<Vec<u8>, Error> {
    let bad = |reason| Error::from(ErrorKind::InvalidReply(reason));
    if !(400..600).contains(&code) {
        return Err(bad("a rejection needs a 4xx or 5xx code"));
    }
    if !enhanced_matches(code, enhanced) {
        return Err(bad(
            "enhanced status code must be class.subject.detail matching the code",
        ));
    }
    if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(bad("text must be printable ASCII on one line"));
    }
    let reply = line(code, enhanced, text);
    if reply.len() > MAX_REPLY_LINE {
        return Err(bad("reply line longer than 512 bytes"));
    }
    Ok(reply)
}

/// Whether `enhanced` is `class.subject.detail` (RFC 3463: 1 to 3 digits for
/// subject and detail, no leading zero) with the class of `code`.
fn enhanced_matches(code: u16, enhanced: &str) -> bool {
    let number = |part: &str| {
        (1..=3).contains(&part.len())
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'))
    };
    let mut parts = enhanced.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    class == (code / 100).to_string() && number(subject) && number(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_single_safe_lines() {
        let long = "x".repeat(501);
        let cases: &[(u16, &str, &str, Result<&str, &str>)] = &[
            (
                550,
                "5.1.1",
                "No such user",
                Ok("550 5.1.1 No such user\r\n"),
            ),
            (451, "4.3.0", "Try later", Ok("451 4.3.0 Try later\r\n")),
            (554, "5.7.1", "", Ok("554 5.7.1 \r\n")),
            (250, "2.0.0", "OK", Err("code")),
            (600, "5.0.0", "x", Err("code")),
            (550, "4.1.1", "class mismatch", Err("enhanced")),
            (550, "5.1", "short", Err("enhanced")),
            (550, "5.1.1.1", "long", Err("enhanced")),
            (550, "5.01.1", "leading zero", Err("enhanced")),
            (550, "5.1000.1", "four digits", Err("enhanced")),
            (550, "5.1.x", "letter", Err("enhanced")),
            (550, "5.1.1", "a\r\n250 2.0.0 injected", Err("text")),
            (550, "5.1.1", "tab\there", Err("text")),
            (550, "5.1.1", "caf\u{e9}", Err("text")),
            (550, "5.1.1", &long, Err("512")),
        ];
        for (code, enhanced, text, expected) in cases {
            let got = rejection(*code, enhanced, text);
            match (expected, got) {
                (Ok(line), Ok(bytes)) => assert_eq!(bytes, line.as_bytes(), "{code} {enhanced}"),
                (
                    Err(word),
                    Err(Error {
                        kind: ErrorKind::InvalidReply(reason),
                    }),
                ) => {
                    assert!(reason.contains(word), "{code} {enhanced} {text}: {reason}")
                }
                (expected, got) => panic!("{code} {enhanced} {text}: {expected:?} vs {got:?}"),
            }
        }
    }
}
