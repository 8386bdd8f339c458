//! The engine: deduplication, the store, restarts, offline runs.

use stormproof_detect::{Format, detect_file, detect_stream, read_events};
use stormproof_store::DetectionStore;

use crate::support::*;

const ALICE: &str = "alice@acme.test";
const HOME_IP: &str = "203.0.113.5";
const AWAY_IP: &str = "198.51.100.9";

#[test]
fn repeats_within_the_window_are_counted_not_raised() {
    let config = config("dedup_window = \"1h\"\n[token_forgery]\nburst_threshold = 1000");
    let store = TestStore::new();
    let mut engine = store.engine(&config);
    // (at, alerts expected)
    let steps = [
        (0, 1),
        (10 * MINUTE, 0),
        (50 * MINUTE, 0),
        (3 * HOUR, 1),
        (3 * HOUR + 1, 0),
    ];
    for (i, (at, expected)) in steps.into_iter().enumerate() {
        let alerts = engine.process(&rejected(i as u64, at, "never_issued", AWAY_IP, "k1"));
        assert_eq!(alerts.len(), expected, "at {at}");
    }
    engine.flush().unwrap();
    let stored = store.store.alerts(None, "", 10).unwrap();
    let counts: Vec<u64> = stored.iter().map(|a| a.count).collect();
    assert_eq!(counts, [3, 2]);
    // Tenants are kept apart: the same key in another tenant is its own alert.
    let other = E(rejected(9, 3 * HOUR + 2, "never_issued", AWAY_IP, "k1"))
        .tenant(Some("beta"))
        .build();
    assert_eq!(engine.process(&other).len(), 1);
    let no_tenant = E(rejected(10, 3 * HOUR + 3, "never_issued", AWAY_IP, "k1"))
        .tenant(None)
        .build();
    assert_eq!(engine.process(&no_tenant).len(), 1);
}

#[test]
fn stored_alerts_are_the_alerts_raised() {
    let store = TestStore::new();
    let mut engine = store.engine(&only("token_forgery", ""));
    let alerts = engine.process(&rejected(3, 0, "never_issued", AWAY_IP, "k1"));
    let acme = stormproof_types::TenantName::parse("acme").unwrap();
    let stored = store
        .store
        .alert(Some(&acme), &alerts[0].id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.severity, "critical");
    assert_eq!(stored.detector, "token_forgery");
    assert_eq!(stored.dedup_key, alerts[0].dedup_key);
    let json: stormproof_detect::Alert = serde_json::from_str(&stored.json).unwrap();
    assert_eq!(json, alerts[0]);
}

#[test]
fn alerts_below_critical_are_stored_with_the_next_batch() {
    let store = TestStore::new();
    let mut engine = store.engine(&only("persistence", ""));
    let created = |seq, at| {
        E::new(seq, at, "client_created")
            .user(ALICE)
            .item("rogue-client")
            .build()
    };
    assert_eq!(engine.process(&created(0, 0)).len(), 1);
    assert!(
        store.store.alerts(None, "", 10).unwrap().is_empty(),
        "batched, not yet written"
    );
    // Five seconds of event time later the batch is written.
    assert!(engine.process(&created(1, 6)).is_empty());
    let stored = store.store.alerts(None, "", 10).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].severity, "medium");
    engine.flush().unwrap();
    assert_eq!(store.store.alerts(None, "", 10).unwrap()[0].count, 2);
}

#[test]
fn learned_state_survives_a_restart() {
    let config = config("learning_window = \"7d\"\n[bulk_access]\nfloor = 500\n");
    let store = TestStore::new();
    {
        let mut engine = store.engine(&config);
        // Day 0: the tenant, alice and mail-app are learned; alice's session
        // lives at home; a week of 300 items a day teaches the baseline.
        let mut events = vec![sign_in(0, 0, ALICE, "mail-app", HOME_IP, "s1")];
        for day in 0..8 {
            for i in 0..30 {
                let seq = 1 + day * 100 + i;
                events.push(
                    E::new(seq as u64, day * DAY + i * 60, "Email/get")
                        .user(ALICE)
                        .client("mail-app")
                        .session("s1")
                        .ip(HOME_IP)
                        .owner(ALICE)
                        .content(10)
                        .build(),
                );
            }
        }
        assert!(run(&mut engine, &events).is_empty());
        // Dropped without an explicit flush: dropping writes the batch.
    }
    let mut engine = stormproof_detect::Engine::new(&config, store.reopen()).unwrap();
    let after = |seq: u64, ip: &str, client: &str, items: u64| {
        E::new(seq, 8 * DAY + 3600 + seq as i64, "Email/get")
            .user(ALICE)
            .client(client)
            .session("s1")
            .ip(ip)
            .owner(ALICE)
            .content(items)
            .build()
    };
    // (event, detectors expected)
    let steps: Vec<(&str, _, Vec<&str>)> = vec![
        (
            "mail-app is still known; home is still home",
            after(1000, HOME_IP, "mail-app", 10),
            vec![],
        ),
        (
            "the session is still homed",
            after(1001, AWAY_IP, "mail-app", 10),
            vec!["token_replay"],
        ),
        // Still away: going home again within seconds would be the
        // session in two places at once.
        (
            "the tenant's learning is over",
            after(1002, AWAY_IP, "new-app", 10),
            vec!["first_seen_app"],
        ),
        // Baseline 300: 2000 is above the floor but under 10x, so no alert:
        // without the stored baseline it would be a cold start, over the floor.
        (
            "the baseline is remembered",
            after(1003, AWAY_IP, "mail-app", 2000),
            vec![],
        ),
    ];
    for (name, event, expected) in steps {
        let alerts = engine.process(&event);
        let detectors: Vec<&str> = alerts.iter().map(|a| a.detector.as_str()).collect();
        assert_eq!(detectors, expected, "{name}");
    }
}

#[test]
fn a_damaged_state_row_is_skipped_not_fatal() {
    let store = TestStore::new();
    let acme = stormproof_types::TenantName::parse("acme").ok();
    let row = |detector: &str, key: &str, value: &str| stormproof_store::DetectorStateRecord {
        tenant: acme.clone(),
        detector: detector.into(),
        key: key.into(),
        value: Some(value.into()),
        updated: "2023-11-14T22:13:20.000Z".into(),
    };
    store
        .store
        .detector_state_put(&[
            row("first_seen_app", "t", "yesterday"),
            row("token_replay", "s:s1", "not a network"),
            row("bulk_access", "u:alice@acme.test", "lots"),
        ])
        .unwrap();
    let mut engine = store.engine(&config(""));
    assert!(
        engine
            .process(&read(0, 0, ALICE, "mail-app", HOME_IP))
            .is_empty()
    );
}

#[test]
fn deduplication_survives_a_restart() {
    let store = TestStore::new();
    let config = only("token_forgery", "");
    let mut engine = store.engine(&config);
    assert_eq!(
        engine
            .process(&rejected(0, 0, "never_issued", AWAY_IP, "k1"))
            .len(),
        1
    );
    drop(engine);
    let mut engine = stormproof_detect::Engine::new(&config, store.reopen()).unwrap();
    assert!(
        engine
            .process(&rejected(1, 60, "never_issued", AWAY_IP, "k1"))
            .is_empty()
    );
    engine.flush().unwrap();
    let stored = store.reopen().alerts(None, "", 10).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].count, 2);
}

#[test]
fn configs_refuse_unknown_keys_and_bad_values() {
    let bad = [
        "learning_windw = \"7d\"",
        "learning_window = \"a week\"",
        "[token_forgery]\nburst = 3",
        "[bulk_access]\nfloor = -1",
    ];
    for text in bad {
        assert!(
            toml::from_str::<stormproof_detect::DetectConfig>(text).is_err(),
            "{text}"
        );
    }
    let unusable = [
        "anonymizing_networks = [\"not a network\"]",
        "[token_forgery]\nburst_threshold = 0",
        "[bulk_access]\nalpha = 1.5",
        "[token_replay]\nipv4_prefix = 33",
        "[sigma]\nrules_dir = \"/nonexistent/rules\"",
    ];
    for text in unusable {
        let store = TestStore::new();
        let config = config(text);
        assert!(
            stormproof_detect::Engine::new(&config, store.store.clone()).is_err(),
            "{text}"
        );
    }
    // Zero learning window is allowed.
    let store = TestStore::new();
    assert!(
        stormproof_detect::Engine::new(&config("learning_window = \"0s\""), store.store.clone())
            .is_ok()
    );
}

#[test]
fn offline_detection_over_a_log_file() {
    let store = TestStore::new();
    let events = [
        read(0, 0, ALICE, "mail-app", HOME_IP),
        rejected(1, 1, "never_issued", AWAY_IP, "k1"),
        rejected(2, 2, "ledger_mismatch", AWAY_IP, "k1"),
    ];
    let lines: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let path = store.dir.path().join("audit.jsonl");
    write(&path, &format!("{}\n\n", lines.join("\n")));
    let read_back = read_events(&path, Format::Stormproof).unwrap();
    assert_eq!(read_back, events);
    let mut engine = store.engine(&config(""));
    let mut seen = Vec::new();
    let stats = detect_stream(&mut engine, read_back, |a| seen.push(a.clone())).unwrap();
    assert_eq!(stats.events, 3);
    assert_eq!(stats.alerts, 2);
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|a| a.detector == "token_forgery"));

    write(&path, "{\"seq\": 0}\n");
    let error = read_events(&path, Format::Stormproof).unwrap_err();
    assert!(error.to_string().contains("record 1"), "{error}");

    // Read as it goes: what comes before a bad record is examined, then
    // the run stops with the record's number.
    write(
        &path,
        &format!("{}\n{}\nnot json\n{}\n", lines[0], lines[1], lines[2]),
    );
    // A fresh store: the first run's alerts would deduplicate these.
    let fresh = TestStore::new();
    let mut engine = fresh.engine(&config(""));
    let mut seen = Vec::new();
    let error = detect_file(&mut engine, &path, Format::Stormproof, |a| {
        seen.push(a.clone())
    })
    .unwrap_err();
    assert!(error.to_string().contains("record 3"), "{error}");
    assert_eq!(
        seen.len(),
        1,
        "the rejection before the bad line raised its alert"
    );
    assert_eq!("m365".parse::<Format>(), Ok(Format::M365));
    assert!("csv".parse::<Format>().is_err());
}
