//! Fuzzes the strict JSON reader directly: arbitrary bytes go to
//! `Header::parse`, `AccessClaims::parse` and `DpopClaims::parse`, which
//! refuse duplicate members, nesting deeper than `MAX_DEPTH` and objects or
//! arrays over `MAX_MEMBERS`.
//!
//! Checks: no panic, nothing the strict reader accepts is refused by plain
//! serde_json, and accepted claims survive a serialize/parse round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stormproof_jws::{AccessClaims, DpopClaims, Header};

fuzz_target!(|data: &[u8]| {
    let header = Header::parse(data);
    let access = AccessClaims::parse(data);
    let dpop = DpopClaims::parse(data);

    if header.is_ok() || access.is_ok() || dpop.is_ok() {
        let plain: Result<serde_json::Value, _> = serde_json::from_slice(data);
        assert!(
            matches!(plain, Ok(serde_json::Value::Object(_))),
            "strict reader accepted what serde_json refuses: {plain:?}"
        );
    }
    if let Ok(claims) = access {
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        assert_eq!(
            AccessClaims::parse(&json).as_ref(),
            Ok(&claims),
            "access round trip"
        );
    }
    if let Ok(claims) = dpop {
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        assert_eq!(
            DpopClaims::parse(&json).as_ref(),
            Ok(&claims),
            "DPoP round trip"
        );
    }
});
