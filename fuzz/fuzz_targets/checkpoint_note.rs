//! Fuzzes checkpoint notes, which `stormproof audit verify --checkpoint
//! FILE` reads from wherever a user kept them: the first line of the input
//! is the verifier key, the rest the signed note.
//!
//! Checks: no panic; a note that verifies parses to the same checkpoint
//! again, and keeps verifying with its own text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stormproof_audit::Checkpoint;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (vkey, note) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(checkpoint) = Checkpoint::parse_and_verify(note, vkey) {
        let again = Checkpoint::parse_and_verify(&checkpoint.note, vkey);
        assert!(again.is_ok(), "a verified note verifies again");
        if let Ok(again) = again {
            assert_eq!(again.size, checkpoint.size);
            assert_eq!(again.root, checkpoint.root);
            assert_eq!(again.origin, checkpoint.origin);
        }
    }
});
