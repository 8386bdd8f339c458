//! The MIME parsing path of delivery: any bytes an SMTP client sends after
//! DATA reach `stormproof_mail::parse`. It must never panic, and whatever it
//! accepts must yield a record within the stated limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(email) = stormproof_mail::parse(data, 0) {
        assert_eq!(email.size, data.len() as i64);
        assert!(email.preview.chars().count() <= stormproof_mail::PREVIEW_CHARS);
        assert!(email.base_subject.len() <= email.subject.as_deref().map_or(0, |s| s.len() * 4));
    }
});
