//! The component contract every detector must keep, checked the same way
//! for each: it fires on its scenario and stays quiet on the benign one;
//! its switches work; its config refuses unknown keys; it is deterministic.

use std::collections::HashSet;

use stormproof_audit::AuditEvent;
use stormproof_detect::{DETECTORS, DetectConfig};

use crate::support::{config, only, run_fresh};

/// A scenario for one detector: `section` is extra TOML for its config.
pub struct Case<'a> {
    pub detector: &'a str,
    pub section: &'a str,
    pub positive: Vec<AuditEvent>,
    pub negative: Vec<AuditEvent>,
}

pub fn check(case: &Case<'_>) {
    let name = case.detector;
    assert!(DETECTORS.contains(&name), "{name} is not registered");
    let base = only(name, case.section);

    // Fires on its scenario, with well-formed alerts.
    let alerts = run_fresh(&base, &case.positive);
    assert!(
        !alerts.is_empty(),
        "{name}: no alert on the positive scenario"
    );
    let times: HashSet<&str> = case.positive.iter().map(|e| e.time.as_str()).collect();
    let seqs: HashSet<u64> = case.positive.iter().map(|e| e.seq).collect();
    let mut ids = HashSet::new();
    for alert in &alerts {
        assert_eq!(alert.detector, name);
        assert!(
            ids.insert(alert.id.clone()),
            "{name}: duplicate id {}",
            alert.id
        );
        assert!(!alert.dedup_key.is_empty(), "{name}: empty dedup key");
        assert!(!alert.summary.is_empty(), "{name}: empty summary");
        assert!(
            times.contains(alert.time.as_str()),
            "{name}: time {} is no event's",
            alert.time
        );
        assert!(!alert.evidence.is_empty(), "{name}: no evidence");
        for seq in &alert.evidence {
            assert!(seqs.contains(seq), "{name}: evidence {seq} is no event's");
        }
        // Off by default, except for forged tokens, where a key is
        // already in someone else's hands.
        assert_eq!(
            alert.auto_response,
            name == "token_forgery" && alert.response.is_some(),
            "{name}: auto_response default"
        );
        let json = serde_json::to_value(alert).unwrap();
        for field in [
            "id",
            "time",
            "tenant",
            "severity",
            "detector",
            "summary",
            "evidence",
            "user",
            "client_id",
            "session",
            "ip",
            "token_ids",
            "dedup_key",
        ] {
            assert!(
                json.get(field).is_some(),
                "{name}: alert JSON lacks {field}"
            );
        }
    }

    // Deterministic: the same events give the same alerts, ids included.
    assert_eq!(
        run_fresh(&base, &case.positive),
        alerts,
        "{name}: not deterministic"
    );

    // Quiet on the benign scenario.
    let quiet = run_fresh(&base, &case.negative);
    assert!(
        quiet.is_empty(),
        "{name}: alerts on the negative scenario: {quiet:#?}"
    );

    // `enabled = false` turns it off.
    let disabled = with_switch(name, case.section, "enabled = false");
    assert!(
        run_fresh(&disabled, &case.positive).is_empty(),
        "{name}: runs while disabled"
    );

    // `severity` replaces every alert's severity.
    let info = with_switch(name, case.section, "severity = \"info\"");
    for alert in run_fresh(&info, &case.positive) {
        assert_eq!(
            alert.severity.as_str(),
            "info",
            "{name}: severity override ignored"
        );
    }

    // `auto_response` marks alerts that carry a response.
    let auto = with_switch(name, case.section, "auto_response = true");
    for alert in run_fresh(&auto, &case.positive) {
        assert_eq!(
            alert.auto_response,
            alert.response.is_some(),
            "{name}: auto_response"
        );
    }

    // Unknown keys are refused.
    let typo = format!("[{name}]\nenabeld = false\n");
    assert!(
        toml::from_str::<DetectConfig>(&typo).is_err(),
        "{name}: accepted an unknown key"
    );
}

fn with_switch(name: &str, section: &str, switch: &str) -> DetectConfig {
    let mut text = String::from("learning_window = \"0s\"\n");
    for other in DETECTORS {
        if *other != name {
            text.push_str(&format!("[{other}]\nenabled = false\n"));
        }
    }
    text.push_str(&format!("[{name}]\n{section}\n{switch}\n"));
    config(&text)
}
