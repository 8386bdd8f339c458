//! The Sigma prefilter changes nothing but speed: over a varied stream, an
//! engine that evaluates only the rules an event could match raises
//! exactly the alerts of one that evaluates every rule on every event.

#[path = "../../benches/sigma_rules.rs"]
mod sigma_rules;

use std::path::Path;

use stormproof_audit::{AccessKind, AuditEvent, Outcome};
use stormproof_detect::{Alert, DetectConfig};

use crate::benign_week::world::{World, WorldSpec};
use crate::support::*;

/// Rules written to trip the analysis up: case, wildcards, substrings,
/// negation, selectors, several conditions, keywords, odd fields.
const TRICKY: &[&str] = &[
    "    sel:\n        operation|cased: Email/get\n    condition: sel",
    "    sel:\n        operation: EMAIL/GET\n        outcome: SUCCESS\n    condition: sel",
    "    sel:\n        operation: 'Email/*'\n    condition: sel",
    "    sel:\n        operation|contains: SIGN\n    condition: sel",
    "    sel:\n        operation|startswith: smtp.\n        actor.protocol: smtp\n    condition: sel",
    "    sel:\n        operation|endswith: _failed\n    condition: sel",
    "    sel:\n        operation: sign_in\n    condition: not sel",
    "    sel:\n        operation: token_issued\n    filter:\n        reason: refresh\n    condition: sel and not filter",
    "    sel_a:\n        operation: download\n    sel_b:\n        operation: Thread/get\n    condition: 1 of sel_*",
    "    sel_a:\n        operation: Email/query\n    sel_b:\n        access: metadata\n    condition: all of sel_*",
    "    a:\n        operation: sign_in\n    b:\n        operation: token_rejected\n        reason: expired\n    condition:\n        - a\n        - b",
    "    a:\n        operation: sign_in_failed\n    b:\n        actor.user|endswith: '0@northwind.test'\n    condition: a or b",
    "    sel:\n        - operation: key_rotated\n        - actor.protocol: cli\n          reason: admin\n    condition: sel",
    "    sel:\n        actor.ip|cidr:\n            - 198.18.0.0/16\n            - 2001:db8::/32\n            - 192.0.2.0/24\n        access: content\n    condition: sel",
    "    sel:\n        actor.ip: 192.0.2.7\n    condition: sel",
    "    sel:\n        actor.ip|cidr: 100.64.0.0/10\n    internal:\n        actor.ip|cidr: 100.96.0.0/12\n    condition: sel and not internal",
    "    sel:\n        actor.user_agent|contains|all:\n            - mozilla\n            - FIREFOX\n    condition: sel",
    "    sel:\n        actor.user_agent|contains|cased: Android\n    condition: sel",
    "    sel:\n        actor.user_agent|re: '(?i)iphone'\n        operation: Email/query\n    condition: sel",
    "    sel:\n        reason: null\n        operation: sign_in_failed\n    condition: sel",
    "    sel:\n        reason|exists: false\n    condition: sel",
    "    sel:\n        tenant: FABRIKAM\n        count|gte: 200\n    condition: sel",
    "    sel:\n        target.owner|startswith: support@\n    condition: sel",
    "    sel:\n        target.items: M1\n    condition: sel",
    "    sel:\n        detail.amr: otp\n        operation: sign_in\n    condition: sel",
    "    sel:\n        detail.forgery: true\n    condition: sel",
    "    keywords:\n        - ARCHIVER\n        - 'old phone'\n    condition: keywords",
    "    keywords:\n        - '*tailspin*k2*'\n    condition: keywords",
    "    sel:\n        operation: sign_in\n    kw:\n        - Pixel\n    condition: sel and kw",
    "    sel:\n        actor.client_id|fieldref: actor.user_agent\n    condition: sel",
];

fn write_rules(dir: &Path) {
    // The shipped rules and the templates beside them.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    for folder in [shipped.clone(), shipped.join("templates")] {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    write(
        &dir.join("generated.yml"),
        &sigma_rules::generated().join("---\n"),
    );
    let tricky: Vec<String> = TRICKY
        .iter()
        .enumerate()
        .map(|(i, detection)| {
            format!(
                "title: Tricky {i}\nid: tricky-{i}\nlogsource:\n    product: stormproof\ndetection:\n{detection}\nlevel: medium\n"
            )
        })
        .collect();
    write(&dir.join("tricky.yml"), &tricky.join("---\n"));
}

/// A day of the benign world, then the same events bent out of shape:
/// operations in other cases and scripts, addresses with ports, brackets
/// and nonsense, attack tools' user agents, fields missing.
fn stream() -> Vec<AuditEvent> {
    let mut world = World::new(&WorldSpec::small(11, 24));
    let mut events = world.next_day();
    let odd_operations = [
        "EMAIL/GET",
        "Sign_In",
        "sign_\u{130}n",
        "Token_Rejected",
        "\u{212a}ey_rotated",
        "",
        "custom_op",
    ];
    let odd_addresses = [
        "192.0.2.7",
        "192.0.2.7:443",
        "[2001:db8::1]:443",
        "2001:db8:bad2::9",
        "::ffff:198.18.3.4",
        "185.220.101.3",
        "100.97.1.1",
        "100.64.0.1",
        "unknown",
        "",
    ];
    let odd_agents = [
        "PYTHON-REQUESTS/2.31",
        "curl/8.4",
        "Client=REST;Client=RESTSystem;;",
        "Mozilla/5.0 FIREFOX",
        "sqlmap/1.7",
        "ÄRCHIVER",
        "nuclei",
    ];
    let reasons = [
        "never_issued",
        "expired",
        "revoked",
        "wrong_audience",
        "alg_none",
        "client_credentials",
        "device_code",
        "bad_credentials",
        "locked",
    ];
    let mut odd = Vec::new();
    for (i, event) in events.iter().enumerate().step_by(7) {
        let mut e = event.clone();
        match i % 11 {
            0 => e.operation = odd_operations[i % odd_operations.len()].into(),
            1 => e.actor.ip = Some(odd_addresses[i % odd_addresses.len()].into()),
            2 => e.actor.user_agent = Some(odd_agents[i % odd_agents.len()].into()),
            3 => {
                e.reason = Some(reasons[i % reasons.len()].into());
                e.outcome = Outcome::Failure;
            }
            4 => {
                e.tenant = None;
                e.reason = None;
                e.actor.ip = None;
            }
            5 => {
                e.count = 5_000;
                e.access = AccessKind::Content;
            }
            6 => e.detail = serde_json::json!({"note": "EVIL-TOKEN-MARKER", "forgery": true}),
            7 => e.actor.user = Some(format!("svc-{i}@gmail.com")),
            8 => e.actor.client_id = e.actor.user_agent.clone(),
            9 => e.actor.protocol = "CLI".into(),
            _ => e.operation = e.operation.to_uppercase(),
        }
        odd.push(e);
    }
    events.extend(odd);
    events.extend(attacks(&events));
    events.sort_by(|a, b| a.time.cmp(&b.time));
    for (seq, event) in events.iter_mut().enumerate() {
        event.seq = seq as u64;
    }
    events
}

/// Events of the kinds the rules look for, their fields drawn at random
/// from what the rules name and what they do not.
fn attacks(benign: &[AuditEvent]) -> Vec<AuditEvent> {
    use rand::{Rng, SeedableRng, seq::SliceRandom};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let operations = [
        "sign_in",
        "sign_in_failed",
        "token_issued",
        "token_rejected",
        "Email/get",
        "download",
        "Thread/get",
        "smtp.submission",
        "smtp.auth_failed",
        "EmailSubmission/set",
        "user_created",
        "app_password_created",
        "client_created",
        "totp_disabled",
        "key_imported",
        "session_revoked",
        "Identity/set",
        "refresh_token_reused",
        "client_auth_failed",
        "device_approved",
    ];
    let agents = [
        "python-requests/2.31",
        "Go-http-client/1.1",
        "okhttp/4.9",
        "AADInternals",
        "ruler/2.4",
        "Client=REST;Client=RESTSystem;;",
        "EWS-Export",
        "NetExec",
        "masscan/1.3",
        "Mozilla/5.0",
    ];
    let addresses = [
        "192.0.2.7",
        "203.0.113.9",
        "2001:db8:bad1::5",
        "185.220.101.3",
        "2a0b:f4c3::1",
        "198.18.5.5",
        "100.64.9.9",
        "172.16.4.4",
        "8.8.8.8",
    ];
    let reasons = [
        "client_credentials",
        "device_code",
        "admin_cli",
        "refresh",
        "alg_none",
        "hmac_alg",
        "cross_tenant_key",
        "revoked",
        "wrong_audience",
        "malformed",
        "locked",
        "mfa_failed",
        "bad_credentials",
    ];
    let clients = ["exporter", "mailbox-migrator", "reporting-bot", "webmail"];
    let mut out = Vec::new();
    for (i, base) in benign.iter().step_by(5).take(4_000).enumerate() {
        let mut e = base.clone();
        e.operation = (*operations.choose(&mut rng).unwrap_or(&"sign_in")).into();
        e.actor.user_agent = Some((*agents.choose(&mut rng).unwrap_or(&"")).into());
        e.actor.ip = Some((*addresses.choose(&mut rng).unwrap_or(&"")).into());
        e.reason = Some((*reasons.choose(&mut rng).unwrap_or(&"")).into());
        e.actor.client_id = Some((*clients.choose(&mut rng).unwrap_or(&"")).into());
        e.outcome = if rng.gen_bool(0.5) {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        e.access = [AccessKind::Content, AccessKind::Metadata, AccessKind::None][i % 3];
        e.count = [1, 60, 250, 1_500, 6_000][i % 5];
        if rng.gen_bool(0.3) {
            e.actor.protocol = "cli".into();
        }
        e.detail = match i % 4 {
            0 => serde_json::json!({"amr": ["pwd"]}),
            1 => serde_json::json!({"amr": ["pwd", "otp"]}),
            2 => serde_json::json!({"changed": ["replyTo", "bcc"]}),
            _ => serde_json::Value::Null,
        };
        out.push(e);
    }
    out
}

fn sigma_alerts(rules: &Path, prefilter: bool, events: &[AuditEvent]) -> Vec<Alert> {
    let mut text = String::from("dedup_window = \"0s\"\n");
    for name in stormproof_detect::DETECTORS {
        if *name != "sigma" {
            text.push_str(&format!("[{name}]\nenabled = false\n"));
        }
    }
    text.push_str(&format!(
        "[sigma]\nrules_dir = {:?}\nreload_interval = \"0s\"\nprefilter = {prefilter}\n",
        rules.display().to_string()
    ));
    let config: DetectConfig = config(&text);
    run_fresh(&config, events)
}

#[test]
fn the_prefilter_raises_exactly_the_alerts_of_a_full_evaluation() {
    let rules = tempfile::tempdir().unwrap();
    write_rules(rules.path());
    let events = stream();
    // No deduplication: every match is an alert, so a missed one shows.
    let fast = sigma_alerts(rules.path(), true, &events);
    let full = sigma_alerts(rules.path(), false, &events);
    assert_eq!(fast.len(), full.len());
    for (i, (a, b)) in fast.iter().zip(&full).enumerate() {
        assert_eq!(a, b, "alert {i} differs");
    }
    // Not vacuous: many rules of each kind fired.
    let mut fired: Vec<&str> = fast.iter().filter_map(|a| a.rule.as_deref()).collect();
    fired.sort_unstable();
    fired.dedup();
    let tricky = fired.iter().filter(|r| r.starts_with("tricky-")).count();
    let generated = fired.iter().filter(|r| r.starts_with("gen-")).count();
    assert!(tricky >= 20, "{tricky} tricky rules fired: {fired:?}");
    assert!(
        generated >= 40,
        "{generated} generated rules fired: {fired:?}"
    );
    assert!(fast.len() > 1_000, "{} alerts", fast.len());
}

/// `process_batch` runs Sigma on a second thread; what comes out, and what
/// the store holds after, must be what one call per event gives.
#[test]
fn a_batch_is_processed_as_its_events_one_by_one() {
    use stormproof_store::DetectionStore;
    let rules = tempfile::tempdir().unwrap();
    write_rules(rules.path());
    let events: Vec<_> = stream().into_iter().step_by(3).collect();
    let text = format!(
        "learning_window = \"1h\"\n[sigma]\nrules_dir = {:?}\nreload_interval = \"0s\"\n",
        rules.path().display().to_string()
    );
    let config: DetectConfig = config(&text);
    let one_by_one = TestStore::new();
    let batched = TestStore::new();
    let (mut a, mut b) = (one_by_one.engine(&config), batched.engine(&config));
    let expected = run(&mut a, &events);
    let mut got = Vec::new();
    // Uneven chunks: some too small for a second thread, some split.
    for chunk in events.chunks(1_000).flat_map(|c| {
        let (small, large) = c.split_at(30.min(c.len()));
        [small, large]
    }) {
        got.extend(b.process_batch(chunk));
    }
    assert!(expected.len() > 100, "{} alerts", expected.len());
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "alert {i} differs");
    }
    a.flush().unwrap();
    b.flush().unwrap();
    let stored = |store: &TestStore| {
        let alerts = store.store.alerts(None, "", 1_000_000).unwrap();
        let state: Vec<_> = stormproof_detect::DETECTORS
            .iter()
            .map(|d| store.store.detector_state_scan(d).unwrap())
            .collect();
        (alerts, state)
    };
    let (alerts_a, state_a) = stored(&one_by_one);
    let (alerts_b, state_b) = stored(&batched);
    assert_eq!(alerts_a.len(), alerts_b.len());
    for (x, y) in alerts_a.iter().zip(&alerts_b) {
        assert!(x == y, "stored alerts differ: {x:?} {y:?}");
    }
    for (x, y) in state_a.iter().zip(&state_b) {
        assert_eq!(x.len(), y.len());
        for (r, q) in x.iter().zip(y) {
            // Sigma's correlation windows are saved from hash maps, in an
            // order of their own: compare what they hold.
            let (mut r, mut q) = (r.clone(), q.clone());
            r.value = r.value.map(|v| canonical(&v));
            q.value = q.value.map(|v| canonical(&v));
            assert!(r == q, "stored state differs: {r:?} {q:?}");
        }
    }
}

/// JSON with every array sorted, for comparing maps saved as lists of pairs.
fn canonical(text: &str) -> String {
    fn sort(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(sort);
                items.sort_by_key(|v| v.to_string());
            }
            serde_json::Value::Object(map) => map.values_mut().for_each(sort),
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut value) => {
            sort(&mut value);
            value.to_string()
        }
        Err(_) => text.to_owned(),
    }
}
