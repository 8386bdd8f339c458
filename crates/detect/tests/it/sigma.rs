//! Sigma rules: the shipped examples, loading, hot reload, correlations.

use std::path::{Path, PathBuf};

use stormproof_detect::{DetectConfig, Engine};

use crate::support::*;

const ALICE: &str = "alice@acme.test";

fn shipped_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

/// The shipped rules with the templates installed beside them, as an
/// operator installs a template once its lists are edited.
fn installed_rules() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for folder in [shipped_rules(), shipped_rules().join("templates")] {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    dir
}

fn sigma_only(dir: &Path, reload: &str) -> DetectConfig {
    let mut text = String::new();
    for name in stormproof_detect::DETECTORS {
        if *name != "sigma" {
            text.push_str(&format!("[{name}]\nenabled = false\n"));
        }
    }
    text.push_str(&format!(
        "[sigma]\nrules_dir = {:?}\nreload_interval = {reload:?}\n",
        dir.display().to_string()
    ));
    config(&text)
}

fn rules_of(alerts: &[stormproof_detect::Alert]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| a.rule.clone().unwrap_or_default())
        .collect()
}

#[test]
fn sigma_component() {
    let installed = installed_rules();
    let dir = installed.path();
    let section = format!("rules_dir = {:?}", dir.display().to_string());
    crate::compliance::check(&crate::compliance::Case {
        detector: "sigma",
        section: &section,
        positive: vec![
            E::new(1, 0, "Email/get")
                .user(ALICE)
                .ip("198.51.100.9")
                .owner(ALICE)
                .content(2)
                .build(),
        ],
        negative: vec![
            E::new(1, 0, "Email/get")
                .user(ALICE)
                .ip("10.1.2.3")
                .owner(ALICE)
                .content(2)
                .build(),
            E::new(2, 1, "sign_in_failed")
                .user(ALICE)
                .ip("10.1.2.3")
                .failed("bad_credentials")
                .build(),
        ],
    });
}

#[test]
fn the_shipped_rules() {
    let installed = installed_rules();
    let config = sigma_only(installed.path(), "0s");
    let outside = "3b0b8f8e-6f0e-4a53-9c3e-1d7f2a9e0c11";
    let rest = "4c8e2f1a-3b7d-4e9c-a5f6-0d1e2c3b4a87";
    let spray = "0c4b2a19-8e7d-4f3c-a6b5-9d8e7f6a5b54";
    let variety = "2d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e76";
    let failures = |n: u64, ip: &str| -> Vec<_> {
        (0..n)
            .map(|i| {
                E::new(i, i as i64 * 10, "sign_in_failed")
                    .user(ALICE)
                    .ip(ip)
                    .protocol("oidc")
                    .failed("bad_credentials")
                    .build()
            })
            .collect()
    };
    let then_success = |mut events: Vec<_>, ip: &str| {
        events.push(sign_in(100, 120, ALICE, "mail-app", ip, "s1"));
        events
    };
    let rejections = |reasons: &[&str]| -> Vec<_> {
        reasons
            .iter()
            .enumerate()
            .map(|(i, r)| rejected(i as u64, i as i64, r, "198.51.100.9", "k1"))
            .collect()
    };
    // (name, events, rules expected to alert, with severities)
    let cases: Vec<(&str, Vec<_>, Vec<(&str, &str)>)> = vec![
        (
            "read from outside",
            vec![
                E::new(1, 0, "Email/get")
                    .user(ALICE)
                    .ip("198.51.100.9")
                    .content(1)
                    .build(),
            ],
            vec![(outside, "medium")],
        ),
        (
            "read from the office",
            vec![
                E::new(1, 0, "Email/get")
                    .user(ALICE)
                    .ip("10.9.8.7")
                    .content(1)
                    .build(),
            ],
            vec![],
        ),
        (
            "metadata from outside",
            vec![
                E::new(1, 0, "Email/query")
                    .user(ALICE)
                    .ip("2001:db8::1")
                    .metadata(1)
                    .build(),
            ],
            vec![(outside, "medium")],
        ),
        (
            "failed read from outside",
            vec![
                E::new(1, 0, "Email/get")
                    .user(ALICE)
                    .ip("198.51.100.9")
                    .content(1)
                    .failed("forbidden")
                    .build(),
            ],
            vec![],
        ),
        (
            "the Storm-0558 client string",
            vec![
                E::new(1, 0, "Email/get")
                    .user(ALICE)
                    .ip("10.0.0.1")
                    .user_agent("Client=REST;Client=RESTSystem;;")
                    .content(9)
                    .build(),
            ],
            vec![(rest, "high")],
        ),
        (
            "five failures then success",
            then_success(failures(5, "192.0.2.44"), "192.0.2.44"),
            vec![(spray, "high")],
        ),
        (
            "four failures then success",
            then_success(failures(4, "192.0.2.44"), "192.0.2.44"),
            vec![],
        ),
        (
            "five failures, success elsewhere",
            then_success(failures(5, "192.0.2.44"), "192.0.2.45"),
            vec![],
        ),
        (
            "five failures, no success",
            failures(5, "192.0.2.44"),
            vec![],
        ),
        (
            "three kinds of bad token",
            rejections(&["expired", "bad_signature", "unknown_key"]),
            vec![(variety, "high")],
        ),
        (
            "one kind, many times",
            rejections(&["expired", "expired", "expired", "expired"]),
            vec![],
        ),
    ];
    for (name, events, expected) in cases {
        let alerts = run_fresh(&config, &events);
        let got: Vec<(String, String)> = alerts
            .iter()
            .map(|a| {
                (
                    a.rule.clone().unwrap_or_default(),
                    a.severity.as_str().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(r, s)| (r.to_string(), s.to_string()))
            .collect();
        assert_eq!(got, expected, "{name}: {alerts:#?}");
        for alert in &alerts {
            assert_eq!(alert.detector, "sigma");
        }
    }
}

#[test]
fn correlation_alerts_list_their_events() {
    let config = sigma_only(&shipped_rules(), "0s");
    let events: Vec<_> = ["expired", "bad_signature", "unknown_key"]
        .iter()
        .enumerate()
        .map(|(i, r)| rejected(10 + i as u64, i as i64, r, "198.51.100.9", "k1"))
        .collect();
    let alerts = run_fresh(&config, &events);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].evidence, [10, 11, 12]);
    assert!(
        alerts[0].summary.contains("actor.ip=198.51.100.9"),
        "{}",
        alerts[0].summary
    );
}

const RULE: &str = r#"
title: Watched user
id: watched-user
logsource:
    product: stormproof
detection:
    selection:
        actor.user: WATCHED
    condition: selection
level: LEVEL
"#;

fn rule(user: &str, level: &str) -> String {
    RULE.replace("WATCHED", user).replace("LEVEL", level)
}

#[test]
fn rules_reload_when_the_directory_changes() {
    let store = TestStore::new();
    let rules = tempfile::tempdir().unwrap();
    let file = rules.path().join("watch.yml");
    write(&file, &rule("alice@acme.test", "low"));
    let mut engine = store.engine(&sigma_only(rules.path(), "10s"));
    let login = |seq: u64, at: i64, user: &str| E::new(seq, at, "sign_in").user(user).build();
    assert_eq!(
        rules_of(&engine.process(&login(0, 0, ALICE))),
        ["watched-user"]
    );
    assert!(engine.process(&login(1, 1, "bob@acme.test")).is_empty());

    // Changed on disk: picked up at the next poll, 10 s of event time on.
    write(&file, &rule("bob@acme.test", "critical"));
    let mut later = |at| engine_time_alerts(&mut engine, at, "bob@acme.test");
    assert!(later(5).is_empty(), "polled too early");
    let alerts = later(11);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].severity.as_str(), "critical");

    // A broken file: the rules in force stay in force.
    write(&file, "title: [unclosed\n");
    assert_eq!(later(30).len(), 0, "deduplicated, but still matching");
    assert!(engine.reload_rules().is_err());
    write(
        &rules.path().join("also.yaml"),
        &rule("carol@acme.test", "high").replace("watched-user", "watched-carol"),
    );
    write(&file, &rule("bob@acme.test", "critical"));
    assert_eq!(engine.reload_rules().unwrap(), Some(2));
    assert_eq!(
        rules_of(&engine.process(&login(9, 40, "carol@acme.test"))),
        ["watched-carol"]
    );
}

fn engine_time_alerts(engine: &mut Engine, at: i64, user: &str) -> Vec<stormproof_detect::Alert> {
    engine.process(&E::new(1000 + at as u64, at, "sign_in").user(user).build())
}

#[test]
fn correlation_windows_survive_reloads_and_restarts() {
    let store = TestStore::new();
    let rules = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(shipped_rules().join("token_rejection_variety.yml")).unwrap();
    write(&rules.path().join("variety.yml"), &text);
    let config = sigma_only(rules.path(), "0s");
    let mut engine = store.engine(&config);
    assert!(
        engine
            .process(&rejected(0, 0, "expired", "198.51.100.9", "k1"))
            .is_empty()
    );
    // A reload keeps the window.
    assert_eq!(engine.reload_rules().unwrap(), Some(2));
    assert!(
        engine
            .process(&rejected(1, 1, "bad_signature", "198.51.100.9", "k1"))
            .is_empty()
    );
    // So does a restart: the window is saved on flush.
    engine.flush().unwrap();
    drop(engine);
    let mut engine = Engine::new(&config, store.reopen()).unwrap();
    let alerts = engine.process(&rejected(2, 2, "unknown_key", "198.51.100.9", "k1"));
    assert_eq!(rules_of(&alerts), ["2d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e76"]);
}

#[test]
fn a_bad_rule_fails_at_start() {
    let store = TestStore::new();
    let rules = tempfile::tempdir().unwrap();
    write(
        &rules.path().join("bad.yml"),
        "title: no detection\nlogsource: {product: stormproof}\n",
    );
    let error = Engine::new(&sigma_only(rules.path(), "0s"), store.store.clone()).unwrap_err();
    assert!(error.to_string().contains("bad.yml"), "{error}");
}
