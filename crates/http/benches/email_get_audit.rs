//! JMAP `Email/get` throughput with the audit record written ahead of each
//! response, side by side with the same calls without it, in one run.
//!
//! "Audit on" is exactly what the HTTP front does per request: run the
//! call, build the events ([`stormproof_http::mail_access_events`]), append
//! them and wait until they are durable. "Audit off" skips the last two
//! steps. The off switch exists only here: the server has none. Requests
//! run from several threads at once, as a loaded server would, so group
//! commit can share each fsync. Rounds alternate on and off; the ratio is
//! the median of the per-round ratios.
//!
//! Run: `cargo bench -p stormproof-http --bench email_get_audit`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Barrier};
use std::time::Instant;

use serde_json::json;
use stormproof_audit::{Actor, AuditLog, CheckpointSigner, LogOptions};
use stormproof_jmap::{Caller, Jmap, JmapConfig};
use stormproof_keys::MasterKey;
use stormproof_mail::{Delivery, Target};
use stormproof_store::{SqliteStore, Store};
use stormproof_types::TenantName;

/// Requests in flight at once: a moderately and a heavily loaded server.
const LEVELS: [usize; 2] = [16, 64];
const REQUESTS_PER_ROUND: usize = 3200;
const ROUNDS: usize = 5;
const MESSAGES: usize = 200;
const IDS_PER_GET: usize = 10;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let tenant = TenantName::parse("acme").unwrap();
    store
        .create_tenant(&tenant, &["acme.test".into()], 0)
        .unwrap();
    let user = stormproof_store::UserRecord {
        tenant: tenant.clone(),
        id: "u-alice".into(),
        email: stormproof_types::Email::parse("alice@acme.test").unwrap(),
        password_hash: String::new(),
        enabled: true,
        totp_sealed: None,
        created: 0,
    };
    store.create_user(&user).unwrap();
    let account = store
        .create_mail_account(&tenant, "u-alice", 1 << 30)
        .unwrap();
    let delivery = Delivery::open(store.clone(), dir.path()).unwrap();
    let mut ids = Vec::new();
    for n in 0..MESSAGES {
        let raw = format!(
            "From: Bob <bob@globex.test>\r\nTo: Alice <alice@acme.test>\r\nSubject: Report {n}\r\n\
             Message-ID: <m{n}@globex.test>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n{}\r\n",
            "The quarterly numbers are attached below. ".repeat(40)
        );
        let stored = delivery
            .deliver(
                &tenant,
                &account.account_id,
                raw.as_bytes(),
                Target::Role("inbox"),
                &[],
                1_772_445_600,
            )
            .unwrap();
        ids.push(stored.email_id);
    }
    let jmap = Arc::new(Jmap::new(
        store.clone(),
        delivery,
        JmapConfig::for_base_url("http://127.0.0.1"),
    ));
    let caller = Caller {
        tenant: tenant.clone(),
        account_id: account.account_id.clone(),
        username: "alice@acme.test".into(),
    };
    let master = MasterKey::load_or_create(&dir.path().join("master.key")).unwrap();
    let audit_dir = dir.path().join("audit");
    let signer = CheckpointSigner::load_or_create(&audit_dir, &master, "bench/audit").unwrap();
    let log = AuditLog::open(&audit_dir, signer, LogOptions::default()).unwrap();
    let actor = Actor {
        user: Some("alice@acme.test".into()),
        user_id: Some("u-alice".into()),
        client_id: Some("mail-app".into()),
        session: Some("s-bench".into()),
        token: Some("j-bench".into()),
        ip: Some("127.0.0.1".into()),
        user_agent: Some("bench".into()),
        protocol: "jmap".into(),
    };
    let requests: Vec<Vec<u8>> = ids
        .chunks(IDS_PER_GET)
        .map(|chunk| {
            json!({
                "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
                "methodCalls": [["Email/get", {
                    "accountId": account.account_id,
                    "ids": chunk,
                    "properties": ["subject", "from", "messageId", "preview", "bodyValues", "textBody"],
                    "fetchTextBodyValues": true,
                }, "g"]],
            })
            .to_string()
            .into_bytes()
        })
        .collect();
    let requests = Arc::new(requests);

    let round = |threads: usize, audit: bool| -> f64 {
        let barrier = Arc::new(Barrier::new(threads + 1));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (jmap, caller, log, actor, requests, barrier) = (
                    jmap.clone(),
                    caller.clone(),
                    log.clone(),
                    actor.clone(),
                    requests.clone(),
                    barrier.clone(),
                );
                std::thread::spawn(move || {
                    barrier.wait();
                    for i in 0..REQUESTS_PER_ROUND / threads {
                        let body = &requests[(t + i * threads) % requests.len()];
                        let response = jmap.api(&caller, body);
                        assert_eq!(response.status, 200);
                        if audit {
                            let events = stormproof_http::mail_access_events(
                                &actor,
                                "acme",
                                &caller,
                                &response.accessed,
                            );
                            log.append(events).wait().unwrap();
                        }
                        std::hint::black_box(response.body);
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for handle in handles {
            handle.join().unwrap();
        }
        REQUESTS_PER_ROUND as f64 / start.elapsed().as_secs_f64()
    };

    // Warm-up: caches, the log's first segment.
    round(LEVELS[0], true);
    round(LEVELS[0], false);
    for threads in LEVELS {
        let mut ratios = Vec::new();
        let (mut on_all, mut off_all) = (Vec::new(), Vec::new());
        for r in 0..ROUNDS {
            // Alternate which goes first, so drift favours neither.
            let (on, off) = if r % 2 == 0 {
                let on = round(threads, true);
                (on, round(threads, false))
            } else {
                let off = round(threads, false);
                (round(threads, true), off)
            };
            println!(
                "{threads} in flight, round {r}: audit on {on:.0} req/s, off {off:.0} req/s, ratio {:.3}",
                on / off
            );
            ratios.push(on / off);
            on_all.push(on);
            off_all.push(off);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let (on, off) = (median(&mut on_all), median(&mut off_all));
        let mut sorted = ratios.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        println!(
            "email_get_audit: {threads} requests in flight, {IDS_PER_GET} emails per Email/get with bodies: \
             audit on {on:.0} req/s, off {off:.0} req/s; paired ratio median {:.3} (min {:.3}, max {:.3}); target >= 0.95",
            sorted[sorted.len() / 2],
            sorted[0],
            sorted[sorted.len() - 1]
        );
    }
    log.close().unwrap();
}
