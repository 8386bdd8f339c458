//! Fuzzes the compact JWS front door: arbitrary bytes (as `&str` when valid
//! UTF-8) go to `Compact::parse`, and whatever it accepts is fed on to
//! `Header::parse`, `AccessClaims::parse` and `DpopClaims::parse`.
//!
//! Checks: no panic anywhere, and the "canonical base64url" promise: an
//! accepted token re-encodes to exactly the text it was parsed from, and
//! `signing_input` is the first two parts of that text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stormproof_jws::{AccessClaims, Compact, DpopClaims, Header, b64};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(compact) = Compact::parse(token) else {
        return;
    };

    let reencoded_input = format!("{}.{}", b64(&compact.header_json), b64(&compact.payload));
    assert_eq!(
        compact.signing_input,
        reencoded_input.as_bytes(),
        "accepted a non-canonical header or payload encoding"
    );
    assert_eq!(
        format!("{reencoded_input}.{}", b64(&compact.signature)),
        token,
        "accepted a non-canonical signature encoding"
    );

    let _ = Header::parse(&compact.header_json);
    let _ = AccessClaims::parse(&compact.payload);
    let _ = DpopClaims::parse(&compact.payload);
});
