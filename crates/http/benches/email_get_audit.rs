//! JMAP `Email/get` throughput with the audit record written ahead of each
//! response, side by side with the same calls without it, in one run.
//!
//! "Audit on" is exactly what the HTTP front's handler does per request,
//! on the server's runtime: on the blocking pool, the call
//! ([`stormproof_jmap::Jmap::api_recording`]), which hands over each access
//! as soon as the emails it reads are known, so its events are built
//! ([`stormproof_http::mail_access_events`]) and appended before a message
//! is loaded; then the body rendered; then, back on the runtime, the
//! response held until the events are durable. "Audit off" builds and
//! appends nothing. The off switch exists only here: the server has none.
//!
//! Requests run 16, 64 and 256 at a time. Rounds alternate on and off; a
//! level's ratio is the median of its per-round ratios. Throughput, the
//! figure the target is about, is each side's best level: the rate a
//! saturated server sustains.
//!
//! Run: `cargo bench -p stormproof-http --bench email_get_audit`.
//! `STORMPROOF_BENCH_ROUNDS=N` changes the rounds per level (15);
//! `STORMPROOF_BENCH_ONLY=on|off` runs one side alone, for profiling;
//! `STORMPROOF_BENCH_WAIT=none` appends without waiting for durability,
//! which no handler may do: it shows what recording costs apart from the
//! wait. `STORMPROOF_BENCH_GROUP_DELAY_US` sets the log's group delay
//! (500). Each level also reports how many records were already durable
//! when their response was ready, so that their task did not wait.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use stormproof_audit::{Actor, AuditLog, CheckpointSigner, LogOptions};
use stormproof_jmap::{Caller, Jmap, JmapConfig};
use stormproof_keys::MasterKey;
use stormproof_mail::{Delivery, Target};
use stormproof_store::{SqliteStore, Store};
use stormproof_types::TenantName;

/// Requests in flight at once: a moderately and a heavily loaded server.
const LEVELS: [usize; 3] = [16, 64, 256];
/// Short rounds, many of them: the machine's noise comes in bursts of
/// seconds, and a pair of rounds close together sees the same burst.
const REQUESTS_PER_ROUND: usize = 1600;
const ROUNDS: usize = 15;
const MESSAGES: usize = 200;
const IDS_PER_GET: usize = 10;

fn process_cpu() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

// The server's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Records found durable when their response was ready, and records
/// waited for.
static ALREADY_DURABLE: AtomicU64 = AtomicU64::new(0);
static WAITED: AtomicU64 = AtomicU64::new(0);

/// The share of records found durable since the last call, in percent;
/// "n/a" when nothing was awaited.
fn already_durable_percent() -> String {
    let durable = ALREADY_DURABLE.swap(0, Ordering::Relaxed) as f64;
    let waited = WAITED.swap(0, Ordering::Relaxed) as f64;
    if durable + waited == 0.0 {
        return "n/a".into();
    }
    format!("{:.0}%", 100.0 * durable / (durable + waited))
}

/// Sorts `values` and returns the middle one.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

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
    let mut options = LogOptions::default();
    if let Some(micros) = std::env::var("STORMPROOF_BENCH_GROUP_DELAY_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options.group_delay = Duration::from_micros(micros);
    }
    let log = AuditLog::open(&audit_dir, signer, options).unwrap();
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

    // The server's runtime: one worker per core, calls on the blocking pool.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let wait = std::env::var("STORMPROOF_BENCH_WAIT").map_or(true, |v| v != "none");
    let rounds: usize = std::env::var("STORMPROOF_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS);
    // Requests per second, and CPU time per request (all threads).
    let round = |in_flight: usize, audit: bool| -> (f64, f64) {
        let start = Instant::now();
        let cpu_start = process_cpu();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..in_flight)
                .map(|t| {
                    let (jmap, caller, log, actor, requests) = (
                        jmap.clone(),
                        caller.clone(),
                        log.clone(),
                        actor.clone(),
                        requests.clone(),
                    );
                    tokio::spawn(async move {
                        for i in 0..REQUESTS_PER_ROUND / in_flight {
                            let n = (t + i * in_flight) % requests.len();
                            let (jmap, caller, log, actor, all) = (
                                jmap.clone(),
                                caller.clone(),
                                log.clone(),
                                actor.clone(),
                                requests.clone(),
                            );
                            // As the handler: on the blocking pool, the call,
                            // queueing the record as soon as the emails are
                            // known, and the body rendered while it syncs;
                            // then, on the runtime, the wait for durability.
                            let (body, receipts) = tokio::task::spawn_blocking(move || {
                                let mut receipts = Vec::new();
                                let response =
                                    jmap.api_recording(&caller, &all[n], &mut |access| {
                                        if audit {
                                            receipts.push(log.append(
                                                stormproof_http::mail_access_events(
                                                    &actor,
                                                    "acme",
                                                    &caller,
                                                    std::slice::from_ref(access),
                                                ),
                                            ));
                                        }
                                    });
                                assert_eq!(response.status, 200);
                                let body = serde_json::to_vec(&response.body).unwrap();
                                (body, receipts)
                            })
                            .await
                            .unwrap();
                            for mut receipt in receipts {
                                if !wait {
                                    drop(receipt);
                                    continue;
                                }
                                // Was the record durable by the time the
                                // response was ready, or does the task wait?
                                let first = std::future::poll_fn(|cx| {
                                    std::task::Poll::Ready(
                                        std::pin::Pin::new(&mut receipt).poll(cx),
                                    )
                                })
                                .await;
                                match first {
                                    std::task::Poll::Ready(result) => {
                                        result.unwrap();
                                        ALREADY_DURABLE.fetch_add(1, Ordering::Relaxed);
                                    }
                                    std::task::Poll::Pending => {
                                        receipt.await.unwrap();
                                        WAITED.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            }
                            std::hint::black_box(body);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        let wall = start.elapsed().as_secs_f64();
        let cpu = process_cpu() - cpu_start;
        let requests = (REQUESTS_PER_ROUND / in_flight * in_flight) as f64;
        (requests / wall, cpu / requests * 1e6)
    };

    // For profiling one side alone: `STORMPROOF_BENCH_ONLY=on|off`.
    if let Ok(only) = std::env::var("STORMPROOF_BENCH_ONLY") {
        for _ in 0..rounds * 2 {
            round(LEVELS[0], only == "on");
        }
        println!(
            "records already durable when the response was ready: {}",
            already_durable_percent()
        );
        log.close().unwrap();
        return;
    }
    // Warm-up: caches, the log's first segment.
    round(LEVELS[0], true);
    round(LEVELS[0], false);
    already_durable_percent();
    let (mut peak_on, mut peak_off) = ((0.0, 0), (0.0, 0));
    for in_flight in LEVELS {
        let mut ratios = Vec::new();
        let mut cpu_ratios = Vec::new();
        let (mut on_all, mut off_all) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            // Alternate which goes first, so drift favours neither.
            let (on, off) = if r % 2 == 0 {
                let on = round(in_flight, true);
                (on, round(in_flight, false))
            } else {
                let off = round(in_flight, false);
                (round(in_flight, true), off)
            };
            println!(
                "{in_flight} in flight, round {r}: audit on {:.0} req/s ({:.0} us CPU each), \
                 off {:.0} req/s ({:.0} us), ratio {:.3}",
                on.0,
                on.1,
                off.0,
                off.1,
                on.0 / off.0
            );
            ratios.push(on.0 / off.0);
            cpu_ratios.push(off.1 / on.1);
            on_all.push(on.0);
            off_all.push(off.0);
        }
        let (on, off) = (median(&mut on_all), median(&mut off_all));
        if on > peak_on.0 {
            peak_on = (on, in_flight);
        }
        if off > peak_off.0 {
            peak_off = (off, in_flight);
        }
        let ratio = median(&mut ratios);
        println!(
            "email_get_audit: {in_flight} requests in flight, {IDS_PER_GET} emails per Email/get with bodies: \
             audit on {on:.0} req/s, off {off:.0} req/s; paired ratio median {ratio:.3} \
             (min {:.3}, max {:.3}); CPU per request off/on median {:.3}; \
             records already durable when the response was ready {}; target >= 0.95",
            ratios[0],
            ratios[ratios.len() - 1],
            median(&mut cpu_ratios),
            already_durable_percent(),
        );
    }
    println!(
        "email_get_audit: throughput (best level's median): audit on {:.0} req/s ({} in flight), \
         off {:.0} req/s ({} in flight); ratio {:.3}; target >= 0.95",
        peak_on.0,
        peak_on.1,
        peak_off.0,
        peak_off.1,
        peak_on.0 / peak_off.0
    );
    log.close().unwrap();
}
