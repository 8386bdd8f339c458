//! Each built-in detector: the compliance contract, then its own cases.

use stormproof_detect::Response;

use crate::compliance::{Case, check};
use crate::support::*;

const ALICE: &str = "alice@acme.test";
const BOB: &str = "bob@acme.test";
const HOME_IP: &str = "203.0.113.5";
const AWAY_IP: &str = "198.51.100.9";

#[test]
fn token_forgery_component() {
    check(&Case {
        detector: "token_forgery",
        section: "",
        positive: vec![rejected(1, 0, "never_issued", AWAY_IP, "k1")],
        negative: vec![
            rejected(1, 0, "expired", AWAY_IP, "k1"),
            rejected(2, 1, "wrong_audience", HOME_IP, "k1"),
            rejected(3, 2, "revoked", HOME_IP, "k1"),
            read(4, 3, ALICE, "mail-app", HOME_IP),
        ],
    });
}

#[test]
fn token_forgery_reasons() {
    let revoke = |kid: &str| Some(Response::RevokeKey { kid: kid.into() });
    // (reason, alerts raised as (detector, severity), response hint)
    let cases: &[(&str, &[(&str, &str)], Option<Response>)] = &[
        (
            "never_issued",
            &[("token_forgery", "critical")],
            revoke("k1"),
        ),
        (
            "ledger_mismatch",
            &[("token_forgery", "critical")],
            revoke("k1"),
        ),
        ("cross_tenant_key", &[("token_forgery", "critical")], None),
        ("unknown_key", &[("token_forgery", "critical")], None),
        ("key_compromised", &[("token_forgery", "critical")], None),
        ("key_expired", &[("token_forgery", "critical")], None),
        ("key_not_active", &[("token_forgery", "critical")], None),
        ("alg_none", &[("token_forgery", "critical")], None),
        ("hmac_alg", &[("token_forgery", "critical")], None),
        ("alg_mismatch", &[("token_forgery", "critical")], None),
        ("embedded_key", &[("token_forgery", "critical")], None),
        ("bad_signature", &[("token_forgery", "critical")], None),
        ("expired", &[], None),
        ("not_yet_valid", &[], None),
        ("dpop_replay", &[], None),
        ("session_revoked", &[], None),
    ];
    let config = only("token_forgery", "");
    for (reason, expected, response) in cases {
        let alerts = run_fresh(&config, &[rejected(7, 0, reason, AWAY_IP, "k1")]);
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(d, s)| (d.to_string(), s.to_string()))
            .collect();
        assert_eq!(kinds(&alerts), expected, "{reason}");
        if let Some(alert) = alerts.first() {
            assert_eq!(&alert.response, response, "{reason}");
            assert_eq!(alert.tenant.as_deref(), Some("acme"));
            assert_eq!(alert.ip.as_deref(), Some(AWAY_IP));
            assert_eq!(alert.token_ids, ["jti-7"]);
            assert_eq!(alert.session.as_deref(), Some("sid-claimed"));
            assert_eq!(alert.evidence, [7]);
            assert!(alert.summary.contains("k1"), "{}", alert.summary);
        }
    }
}

#[test]
fn a_thousand_forged_tokens_from_one_key_are_one_alert_counted() {
    let store = TestStore::new();
    let mut engine = store.engine(&only("token_forgery", "burst_threshold = 100000"));
    let events: Vec<_> = (0..1000)
        .map(|i| rejected(i, i as i64, "never_issued", AWAY_IP, "k1"))
        .collect();
    let alerts = run(&mut engine, &events);
    assert_eq!(alerts.len(), 1);
    engine.flush().unwrap();
    use stormproof_store::DetectionStore;
    let stored = store.store.alerts(None, "", 10).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].count, 1000);
    assert_eq!(stored[0].id, alerts[0].id);
    // Another key is another incident.
    let other = engine.process(&rejected(2000, 2000, "never_issued", AWAY_IP, "k2"));
    assert_eq!(other.len(), 1);
}

#[test]
fn rejection_bursts_from_one_address() {
    let config = only(
        "token_forgery",
        "burst_threshold = 20\nburst_window = \"5m\"",
    );
    let burst_of = |reason: &'static str| {
        move |n: u64, spacing: i64, ip: &dyn Fn(u64) -> String| -> Vec<_> {
            (0..n)
                .map(|i| rejected(i, i as i64 * spacing, reason, &ip(i), "k1"))
                .collect()
        }
    };
    let burst = burst_of("revoked");
    let same = |_| AWAY_IP.to_string();
    let spread = |i| format!("198.51.100.{i}");
    let counting_expired = only(
        "token_forgery",
        "burst_threshold = 20\nburst_window = \"5m\"\nburst_ignore = []",
    );
    // (name, config, events, alerts expected)
    let cases: Vec<(&str, &_, Vec<_>, usize)> = vec![
        ("20 in 20 seconds", &config, burst(20, 1, &same), 1),
        (
            "60 in a minute: one alert, counted",
            &config,
            burst(60, 1, &same),
            1,
        ),
        ("19 in 19 seconds", &config, burst(19, 1, &same), 0),
        ("20 over an hour", &config, burst(20, 180, &same), 0),
        ("20 from 20 addresses", &config, burst(20, 1, &spread), 0),
        // Clients waking from sleep behind an office's address.
        (
            "20 expired tokens",
            &config,
            burst_of("expired")(20, 1, &same),
            0,
        ),
        (
            "20 expired tokens, when asked to count them",
            &counting_expired,
            burst_of("expired")(20, 1, &same),
            1,
        ),
    ];
    for (name, config, events, expected) in cases {
        let alerts = run_fresh(config, &events);
        assert_eq!(alerts.len(), expected, "{name}");
        if let Some(alert) = alerts.first() {
            assert_eq!(alert.severity.as_str(), "high");
            assert_eq!(alert.evidence.len(), 20, "{name}");
            assert_eq!(alert.dedup_key, format!("token_forgery:burst:{AWAY_IP}"));
        }
    }
}

#[test]
fn first_seen_app_component() {
    check(&Case {
        detector: "first_seen_app",
        section: "",
        positive: vec![read(1, 0, ALICE, "evil-app", AWAY_IP)],
        negative: vec![
            sign_in(1, 0, ALICE, "evil-app", AWAY_IP, "s1"),
            rejected(2, 1, "expired", AWAY_IP, "k1"),
            E::new(3, 2, "Email/get")
                .user(ALICE)
                .client("evil-app")
                .content(5)
                .failed("forbidden")
                .build(),
        ],
    });
}

#[test]
fn first_seen_app_learns_then_alerts() {
    let config = config(
        "learning_window = \"7d\"\n[bulk_access]\nenabled = false\n[token_replay]\nenabled = false",
    );
    // (event, alerts expected as (detector, severity))
    const CAROL: &str = "carol@acme.test";
    let steps: Vec<(&str, _, Vec<(&str, &str)>)> = vec![
        (
            "day 0: mail-app is learned",
            read(1, 0, ALICE, "mail-app", HOME_IP),
            vec![],
        ),
        (
            "day 1: other-app is learned",
            read(2, DAY, CAROL, "other-app", HOME_IP),
            vec![],
        ),
        (
            "day 8: a known app",
            read(3, 8 * DAY, ALICE, "mail-app", HOME_IP),
            vec![],
        ),
        (
            "day 8: a new app",
            read(4, 8 * DAY + 1, ALICE, "new-app", AWAY_IP),
            vec![("first_seen_app", "high")],
        ),
        (
            "day 8: the new app again, by a new user",
            read(5, 8 * DAY + 2, BOB, "new-app", AWAY_IP),
            vec![],
        ),
        (
            "day 9: alice's first read through a known app",
            read(6, 9 * DAY, ALICE, "other-app", HOME_IP),
            vec![("first_seen_app", "medium")],
        ),
        (
            "day 9: bob is still being learned",
            read(7, 9 * DAY + 1, BOB, "other-app", HOME_IP),
            vec![],
        ),
        (
            "day 16: bob, known a week, through mail-app for the first time",
            read(8, 16 * DAY, BOB, "mail-app", HOME_IP),
            vec![("first_seen_app", "medium")],
        ),
        (
            "day 16: and again",
            read(9, 16 * DAY + 1, BOB, "mail-app", HOME_IP),
            vec![],
        ),
    ];
    let store = TestStore::new();
    let mut engine = store.engine(&config);
    for (name, event, expected) in steps {
        let alerts = engine.process(&event);
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(d, s)| (d.to_string(), s.to_string()))
            .collect();
        assert_eq!(kinds(&alerts), expected, "{name}");
    }
}

#[test]
fn a_new_app_names_its_client_and_suggests_blocking_it() {
    let alerts = run_fresh(
        &only("first_seen_app", ""),
        &[read(1, 0, ALICE, "evil-app", AWAY_IP)],
    );
    assert_eq!(alerts[0].client_id.as_deref(), Some("evil-app"));
    assert_eq!(
        alerts[0].response,
        Some(Response::BlockClient {
            client_id: "evil-app".into()
        })
    );
    assert!(alerts[0].summary.contains("evil-app"));
}

#[test]
fn token_replay_component() {
    check(&Case {
        detector: "token_replay",
        section: "",
        positive: vec![
            sign_in(1, 0, ALICE, "mail-app", HOME_IP, "s1"),
            E::new(2, 60, "Email/get")
                .user(ALICE)
                .client("mail-app")
                .session("s1")
                .ip(AWAY_IP)
                .content(3)
                .build(),
        ],
        negative: vec![
            sign_in(1, 0, ALICE, "mail-app", HOME_IP, "s1"),
            E::new(2, 60, "Email/get")
                .user(ALICE)
                .client("mail-app")
                .session("s1")
                .ip("203.0.113.77")
                .content(3)
                .build(),
            E::new(3, 61, "token_issued")
                .user(ALICE)
                .client("mail-app")
                .session("s1")
                .ip("203.0.113.200")
                .reason("refresh")
                .build(),
            // A rejected token naming the session proves nothing.
            rejected(4, 62, "expired", AWAY_IP, "k1"),
        ],
    });
}

#[test]
fn token_replay_networks() {
    let use_at = |seq: u64, at: i64, ip: &str, sid: &str| {
        E::new(seq, at, "Email/get")
            .user(ALICE)
            .client("mail-app")
            .session(sid)
            .ip(ip)
            .content(1)
            .build()
    };
    let use_from = |seq: u64, ip: &str, sid: &str| use_at(seq, seq as i64, ip, sid);
    let colleague = |seq: u64, user: &str, ip: &str| {
        sign_in(seq, seq as i64, user, "a", ip, &format!("s-{user}"))
    };
    let anonymizing = "anonymizing_networks = [\"185.220.100.0/22\", \"2001:db8:dead::/48\"]\n";
    let learning = "learning_window = \"7d\"\n";
    let no_familiarity = "[token_replay]\nfamiliar_ttl = \"0s\"\n";
    // (name, extra config, events, severities of the alerts expected)
    let cases: Vec<(&str, &str, Vec<_>, Vec<&str>)> = vec![
        (
            "same /24",
            "",
            vec![
                sign_in(0, 0, ALICE, "a", "203.0.113.5", "s"),
                use_from(1, "203.0.113.250", "s"),
            ],
            vec![],
        ),
        (
            "other /24 of the provider she signed in from",
            "",
            vec![
                sign_in(0, 0, ALICE, "a", "203.0.113.5", "s"),
                use_from(1, "203.0.114.5", "s"),
            ],
            vec![],
        ),
        (
            "another provider: moved",
            "",
            vec![
                sign_in(0, 0, ALICE, "a", HOME_IP, "s"),
                use_from(1, AWAY_IP, "s"),
            ],
            vec!["medium"],
        ),
        (
            "same /48",
            "",
            vec![
                sign_in(0, 0, ALICE, "a", "2001:db8:1:1::5", "s"),
                use_from(1, "2001:db8:1:ffff::9", "s"),
            ],
            vec![],
        ),
        (
            "other /48 of the same /32",
            "",
            vec![
                sign_in(0, 0, ALICE, "a", "2001:db8:1:1::5", "s"),
                use_from(1, "2001:db8:2::9", "s"),
            ],
            vec![],
        ),
        (
            "another IPv6 provider",
            "",
            vec![
                sign_in(0, 0, ALICE, "a", "2001:db8:1:1::5", "s"),
                use_from(1, "3fff:7::9", "s"),
            ],
            vec!["medium"],
        ),
        (
            "familiarity off: any other /24",
            no_familiarity,
            vec![
                sign_in(0, 0, ALICE, "a", "203.0.113.5", "s"),
                use_from(1, "203.0.114.5", "s"),
            ],
            vec!["medium"],
        ),
        (
            "familiarity off, a /16 setting",
            "[token_replay]\nfamiliar_ttl = \"0s\"\nipv4_prefix = 16\n",
            vec![
                sign_in(0, 0, ALICE, "a", "203.0.113.5", "s"),
                use_from(1, "203.0.114.5", "s"),
            ],
            vec![],
        ),
        (
            "first use defines home",
            "",
            vec![
                use_from(0, "203.0.113.5", "s"),
                use_from(1, "203.0.113.6", "s"),
                use_from(2, AWAY_IP, "s"),
            ],
            vec!["medium"],
        ),
        (
            "re-sign-in moves home",
            "",
            vec![
                sign_in(0, 0, ALICE, "a", "203.0.113.5", "s"),
                sign_in(1, 1, ALICE, "a", AWAY_IP, "s"),
                use_from(2, AWAY_IP, "s"),
            ],
            vec![],
        ),
        (
            "a sign-in elsewhere makes that provider familiar",
            "",
            vec![
                sign_in(0, 0, ALICE, "a", HOME_IP, "s"),
                sign_in(1, 1, ALICE, "b", AWAY_IP, "other"),
                use_from(2, "198.51.7.7", "s"),
            ],
            vec![],
        ),
        (
            "two away uses, one block: one alert",
            "",
            vec![
                sign_in(0, 0, ALICE, "a", HOME_IP, "s"),
                use_from(1, AWAY_IP, "s"),
                use_from(2, "198.51.100.10", "s"),
            ],
            vec!["medium"],
        ),
        (
            "sessions are per session",
            "",
            vec![
                sign_in(0, 0, ALICE, "a", HOME_IP, "s1"),
                use_from(1, AWAY_IP, "s2"),
            ],
            vec![],
        ),
        (
            "what she used in her first week is familiar",
            learning,
            vec![
                sign_in(0, 0, ALICE, "a", HOME_IP, "s"),
                use_at(1, HOUR, AWAY_IP, "s"),
                use_at(2, 8 * DAY, "198.51.7.7", "s"),
            ],
            vec![],
        ),
        (
            "after her first week, a new provider is not",
            learning,
            vec![
                sign_in(0, 0, ALICE, "a", HOME_IP, "s"),
                use_at(1, HOUR, AWAY_IP, "s"),
                use_at(2, 8 * DAY, "192.0.2.7", "s"),
            ],
            vec!["medium"],
        ),
        (
            "a provider three colleagues use",
            "",
            vec![
                colleague(0, BOB, "192.0.2.1"),
                colleague(1, "carol@acme.test", "192.0.2.2"),
                colleague(2, "dave@acme.test", "192.0.3.3"),
                sign_in(3, 3, ALICE, "a", HOME_IP, "s"),
                use_from(4, "192.0.9.9", "s"),
            ],
            vec![],
        ),
        (
            "a provider two colleagues use",
            "",
            vec![
                colleague(0, BOB, "192.0.2.1"),
                colleague(1, "carol@acme.test", "192.0.2.2"),
                sign_in(3, 3, ALICE, "a", HOME_IP, "s"),
                use_from(4, "192.0.9.9", "s"),
            ],
            vec!["medium"],
        ),
        (
            "back and forth: two places at once",
            "",
            vec![
                sign_in(0, 0, ALICE, "a", HOME_IP, "s"),
                use_from(1, AWAY_IP, "s"),
                use_from(2, HOME_IP, "s"),
                use_from(3, AWAY_IP, "s"),
                use_from(4, HOME_IP, "s"),
            ],
            vec!["medium", "high"],
        ),
        (
            "away, then home an hour later: moved, not in two places",
            "",
            vec![
                sign_in(0, 0, ALICE, "a", HOME_IP, "s"),
                use_at(1, 60, AWAY_IP, "s"),
                use_at(2, HOUR, HOME_IP, "s"),
                use_at(3, 2 * HOUR, AWAY_IP, "s"),
            ],
            vec!["medium"],
        ),
        (
            "Tor exit",
            anonymizing,
            vec![use_from(0, "185.220.101.3", "s")],
            vec!["high"],
        ),
        (
            "next to a Tor exit",
            anonymizing,
            vec![use_from(0, "185.220.104.3", "s")],
            vec![],
        ),
        (
            "IPv6 anonymizer",
            anonymizing,
            vec![use_from(0, "2001:db8:dead:7::1", "s")],
            vec!["high"],
        ),
    ];
    for (name, extra, events, expected) in cases {
        let mut text = String::from("learning_window = \"0s\"\n");
        if !extra.starts_with("learning_window") {
            text.push_str(extra);
        } else {
            text = extra.to_owned();
        }
        for other in [
            "token_forgery",
            "first_seen_app",
            "bulk_access",
            "non_owner_access",
            "persistence",
            "sigma",
        ] {
            text.push_str(&format!("\n[{other}]\nenabled = false\n"));
        }
        let alerts = run_fresh(&config(&text), &events);
        let severities: Vec<&str> = alerts.iter().map(|a| a.severity.as_str()).collect();
        assert_eq!(severities, expected, "{name}: {alerts:#?}");
        for alert in &alerts {
            assert_eq!(alert.detector, "token_replay");
            assert_eq!(
                alert.response,
                Some(Response::RevokeSession {
                    session: "s".into()
                }),
                "{name}"
            );
        }
    }
}

#[test]
fn bulk_access_component() {
    let burst: Vec<_> = (0..20)
        .map(|i| {
            E::new(i, i as i64 * 30, "Email/get")
                .user(ALICE)
                .client("mail-app")
                .ip(HOME_IP)
                .owner(ALICE)
                .content(10)
                .build()
        })
        .collect();
    let trickle: Vec<_> = (0..5)
        .map(|i| {
            E::new(i, i as i64 * 30, "Email/get")
                .user(ALICE)
                .client("mail-app")
                .ip(HOME_IP)
                .owner(ALICE)
                .content(10)
                .build()
        })
        .collect();
    check(&Case {
        detector: "bulk_access",
        section: "floor = 100",
        positive: burst,
        negative: trickle,
    });
}

#[test]
fn bulk_access_against_the_baseline() {
    let config = only(
        "bulk_access",
        "floor = 500\nmultiplier = 10.0\nwindow = \"1h\"",
    );
    // Five hours of 300 items an hour, in 30 reads of 10.
    let mut seq = 0;
    let mut usual = Vec::new();
    for hour in 0..5 {
        for i in 0..30 {
            seq += 1;
            usual.push(
                E::new(seq, hour * HOUR + i * 60, "Email/get")
                    .user(ALICE)
                    .client("mail-app")
                    .ip(HOME_IP)
                    .owner(ALICE)
                    .content(10)
                    .build(),
            );
        }
    }
    let hour_of = |items: u64, seq0: u64| -> Vec<_> {
        (0..items / 100)
            .map(|i| {
                E::new(seq0 + i, 6 * HOUR + i as i64 * 30, "Email/get")
                    .user(ALICE)
                    .client("mail-app")
                    .ip(HOME_IP)
                    .owner(ALICE)
                    .content(100)
                    .build()
            })
            .collect()
    };
    // (name, the sixth hour's reading, alerts expected)
    let cases = [
        ("usual", 300, 0),
        ("heavy but within 10x", 2500, 0),
        ("far above", 4000, 2),
    ];
    for (name, items, expected) in cases {
        let mut events = usual.clone();
        events.extend(hour_of(items, 1000));
        let alerts = run_fresh(&config, &events);
        assert!(alerts.iter().all(|a| a.detector == "bulk_access"));
        // One for the user, one for the client.
        assert_eq!(alerts.len(), expected, "{name}: {alerts:#?}");
    }
    // No history: only the floor applies.
    let cold = hour_of(400, 0);
    assert!(run_fresh(&config, &cold).is_empty());
    let cold = hour_of(600, 0);
    assert_eq!(run_fresh(&config, &cold).len(), 2);
    // Metadata syncs do not count unless asked to.
    let sync: Vec<_> = (0..10)
        .map(|i| {
            E::new(i, i as i64, "Email/query")
                .user(ALICE)
                .client("mail-app")
                .owner(ALICE)
                .metadata(1000)
                .build()
        })
        .collect();
    assert!(run_fresh(&config, &sync).is_empty());
    let counting = only("bulk_access", "floor = 500\ncount_metadata = true");
    assert_eq!(run_fresh(&counting, &sync).len(), 2);
}

#[test]
fn bulk_access_one_app_many_mailboxes() {
    let harvest = |n: u64, ip: &dyn Fn(u64) -> String, client: &str| -> Vec<_> {
        (0..n)
            .map(|i| {
                let victim = format!("user{i}@acme.test");
                E::new(i, i as i64 * 20, "Email/get")
                    .user(&victim)
                    .client(client)
                    .ip(&ip(i))
                    .owner(&victim)
                    .content(1)
                    .build()
            })
            .collect()
    };
    let one = |_| AWAY_IP.to_string();
    let many = |i| format!("192.0.2.{i}");
    let config = only(
        "bulk_access",
        "accounts_threshold = 10\naccounts_window = \"10m\"\nexempt_clients = [\"archiver\"]",
    );
    // (name, events, alerts expected)
    let cases: Vec<(&str, Vec<_>, usize)> = vec![
        (
            "10 mailboxes from one address",
            harvest(10, &one, "harvester"),
            1,
        ),
        (
            "30 mailboxes: one alert, counted",
            harvest(30, &one, "harvester"),
            1,
        ),
        ("9 mailboxes", harvest(9, &one, "harvester"), 0),
        (
            "10 users at 10 addresses",
            harvest(10, &many, "mail-app"),
            0,
        ),
        ("an exempt client", harvest(10, &one, "archiver"), 0),
    ];
    for (name, events, expected) in cases {
        let alerts = run_fresh(&config, &events);
        assert_eq!(alerts.len(), expected, "{name}");
        if let Some(alert) = alerts.first() {
            assert_eq!(alert.evidence.len(), 10, "{name}");
            assert_eq!(alert.client_id.as_deref(), Some("harvester"));
        }
    }
    // Spread over more than the window: never 10 at once.
    let slow: Vec<_> = harvest(10, &one, "harvester")
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.time = stormproof_audit::format_time_ms(T0 + i as i64 * 120_000);
            e
        })
        .collect();
    assert!(run_fresh(&config, &slow).is_empty());
}

/// Regression: every office behind one NAT address raised a spread alert
/// each morning, its staff reading their own mail through webmail.
#[test]
fn bulk_access_colleagues_behind_one_address() {
    let office = "198.51.100.7";
    let day = |d: i64, first_seq: u64, users: std::ops::Range<u64>| -> Vec<_> {
        users
            .map(|i| {
                let user = format!("user{i}@acme.test");
                E::new(first_seq + i, d * DAY + i as i64 * 20, "Email/get")
                    .user(&user)
                    .client("webmail")
                    .ip(office)
                    .owner(&user)
                    .content(1)
                    .build()
            })
            .collect()
    };
    let spread_only = "accounts_threshold = 10";
    // (name, learning window, events, alerts expected)
    let cases: Vec<(&str, &str, Vec<_>, usize)> = vec![
        ("ten people new to the address", "0s", day(0, 0, 0..10), 1),
        (
            "the same ten the next day",
            "0s",
            [day(0, 0, 0..10), day(1, 100, 0..10)].concat(),
            1,
        ),
        (
            "ten regulars and one newcomer",
            "0s",
            [day(0, 0, 0..9), day(1, 100, 0..9), day(1, 200, 20..21)].concat(),
            0,
        ),
        (
            "the first morning of a new deployment",
            "7d",
            day(0, 0, 0..30),
            0,
        ),
    ];
    for (name, learning, events, expected) in cases {
        let mut text = format!("learning_window = \"{learning}\"\n");
        for other in stormproof_detect::DETECTORS {
            if *other != "bulk_access" {
                text.push_str(&format!("[{other}]\nenabled = false\n"));
            }
        }
        text.push_str(&format!("[bulk_access]\n{spread_only}\n"));
        let alerts = run_fresh(&config(&text), &events);
        assert_eq!(alerts.len(), expected, "{name}: {alerts:#?}");
    }
}

#[test]
fn non_owner_access_component() {
    check(&Case {
        detector: "non_owner_access",
        section: "exempt_actors = [\"Journal@acme.test\"]",
        positive: vec![
            E::new(1, 0, "Email/get")
                .user(BOB)
                .client("mail-app")
                .ip(HOME_IP)
                .owner(ALICE)
                .content(4)
                .build(),
            E::new(2, 1, "download")
                .protocol("cli")
                .owner(ALICE)
                .content(1)
                .build(),
        ],
        negative: vec![
            read(1, 0, ALICE, "mail-app", HOME_IP),
            E::new(2, 1, "Email/get")
                .user("ALICE@acme.test")
                .owner(ALICE)
                .content(4)
                .build(),
            E::new(3, 2, "Email/get")
                .user("journal@acme.test")
                .owner(ALICE)
                .content(4)
                .build(),
            E::new(4, 3, "Email/get")
                .user(BOB)
                .owner(ALICE)
                .content(4)
                .failed("forbidden")
                .build(),
            E::new(5, 4, "sign_in").user(BOB).owner(ALICE).build(),
        ],
    });
}

#[test]
fn operator_reads_can_be_turned_off() {
    let event = E::new(1, 0, "download")
        .protocol("cli")
        .owner(ALICE)
        .content(1)
        .build();
    assert_eq!(
        run_fresh(&only("non_owner_access", ""), std::slice::from_ref(&event)).len(),
        1
    );
    assert!(
        run_fresh(
            &only("non_owner_access", "operator_reads = false"),
            &[event]
        )
        .is_empty()
    );
}

#[test]
fn non_owner_access_delegates() {
    let read_of = |seq: u64, actor: &str, owner: &str| {
        E::new(seq, seq as i64, "Email/get")
            .user(actor)
            .client("mail-app")
            .ip(HOME_IP)
            .owner(owner)
            .content(3)
            .build()
    };
    let config = only(
        "non_owner_access",
        "[non_owner_access.delegates]\n\"Support@acme.test\" = [\"Bob@acme.test\"]",
    );
    // (name, event, alerts expected)
    let cases = [
        (
            "a delegate on their mailbox",
            read_of(1, BOB, "support@acme.test"),
            0,
        ),
        ("the delegate elsewhere", read_of(2, BOB, ALICE), 1),
        (
            "someone else on the shared mailbox",
            read_of(3, "carol@acme.test", "support@acme.test"),
            1,
        ),
    ];
    for (name, event, expected) in cases {
        let alerts = run_fresh(&config, &[event]);
        assert_eq!(alerts.len(), expected, "{name}: {alerts:#?}");
    }
}

#[test]
fn persistence_component() {
    check(&Case {
        detector: "persistence",
        section: "",
        positive: vec![
            E::new(1, 0, "app_password_created")
                .user(ALICE)
                .protocol("http")
                .item("ap-1")
                .build(),
        ],
        negative: vec![
            E::new(1, 0, "app_password_created")
                .user(ALICE)
                .failed("bad_credentials")
                .build(),
            E::new(2, 1, "app_password_revoked").user(ALICE).build(),
            sign_in(3, 2, ALICE, "mail-app", HOME_IP, "s1"),
        ],
    });
}

#[test]
fn persistence_operations() {
    // (operation, alerts with the default list)
    let cases = [
        ("app_password_created", 1),
        ("client_created", 1),
        ("Identity/set", 1),
        ("forwarding_set", 1),
        ("redirect_set", 1),
        ("totp_disabled", 1),
        ("key_imported", 1),
        ("totp_enrolled", 0),
        ("user_created", 0),
        ("Email/get", 0),
    ];
    let config = only("persistence", "");
    for (operation, expected) in cases {
        let alerts = run_fresh(&config, &[E::new(1, 0, operation).user(ALICE).build()]);
        assert_eq!(alerts.len(), expected, "{operation}");
        if let Some(alert) = alerts.first() {
            assert_eq!(alert.severity.as_str(), "medium");
        }
    }
    let narrowed = only("persistence", "operations = [\"totp_disabled\"]");
    assert!(
        run_fresh(
            &narrowed,
            &[E::new(1, 0, "client_created").user(ALICE).build()]
        )
        .is_empty()
    );
}
