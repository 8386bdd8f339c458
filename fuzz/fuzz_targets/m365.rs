//! Fuzzes the Microsoft 365 audit export reader (`stormproof detect
//! --format m365`), which reads files a customer exported from another
//! system: JSON arrays or lines, flat or wrapped in `AuditData`.
//!
//! Checks: no panic; every event read has an operation and a well-formed
//! time, so the detectors downstream never see a half-built record.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(events) = stormproof_detect::m365::parse(text, "fuzz") {
        for event in events {
            assert!(!event.operation.is_empty());
            assert!(stormproof_audit::parse_time(&event.time).is_some(), "{}", event.time);
        }
    }
});
