//! Engine throughput over a realistic mix of audit events: every built-in
//! detector plus 100 Sigma rules and correlations (the shipped ones and
//! those of `sigma_rules.rs`), beside the built-ins alone, and beside the
//! same rules without the prefilter (rsigma evaluating every rule on every
//! event). Each measurement starts from a warmed engine (about 150 s of
//! traffic already seen, its state in a real SQLite store), then times the
//! next 100,000 events. Prints events per second by wall time and by this
//! thread's CPU time, best and median of several runs, and the ratios.
//!
//! `cargo bench -p stormproof-detect --bench throughput`
//! (`STORMPROOF_BENCH_QUICK=1` skips criterion's sampling;
//! `STORMPROOF_BENCH_RUNS=N` sets the runs per figure, default 5;
//! `STORMPROOF_BENCH_ONLY=sigma` measures only the built-ins with the
//! prefiltered rules, `=alone` only the rules, `=batch` only
//! `process_batch`, for profiling; `STORMPROOF_BENCH_RULES=first` loads
//! the first generated mix instead, whose rules mostly name no operation.)

// A bench that cannot set up has nothing to measure: it stops loudly.
#![allow(clippy::panic)]
// Thread CPU time comes from getrusage.
#![allow(unsafe_code)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use stormproof_audit::{AccessKind, Actor, AuditEvent, Outcome};
use stormproof_detect::{DetectConfig, Engine};
use stormproof_store::SqliteStore;

mod sigma_rules;

// The `stormproof` binary's allocator, which the engine runs under.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WARMUP: usize = 100_000;
const MEASURED: usize = 100_000;
const T0: i64 = 1_700_000_000_000;

/// A small deterministic generator (xorshift), so every run sees the same mix.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Operations and their weights, per 10,000 events.
const OPERATIONS: &[(&str, u64)] = &[
    ("Email/get", 3000),
    ("Email/query", 1800),
    ("Thread/get", 800),
    ("SearchSnippet/get", 300),
    ("download", 600),
    ("smtp.submission", 400),
    ("EmailSubmission/set", 200),
    ("sign_in", 600),
    ("sign_in_failed", 250),
    ("token_issued", 1000),
    ("token_rejected", 250),
    ("smtp.auth", 400),
    ("smtp.auth_failed", 50),
    ("session_revoked", 49),
    ("app_password_created", 1),
];

/// Users per tenant; five tenants.
const USERS: u64 = 2000;

const CLIENTS: &[&str] = &["webmail", "desktop-mail", "mobile-mail", "calendar-sync"];

/// `n` events from `start` (ms), about one per millisecond, across five
/// tenants of 2,000 users each, most from office networks.
fn events(rng: &mut Rng, start: i64, first_seq: u64, n: usize) -> Vec<AuditEvent> {
    let total: u64 = OPERATIONS.iter().map(|(_, w)| w).sum();
    let mut out = Vec::with_capacity(n);
    let mut time = start;
    for i in 0..n {
        time += 1 + rng.below(2) as i64;
        let mut pick = rng.below(total);
        let operation = OPERATIONS
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or("Email/get", |(op, _)| *op);
        let tenant = rng.below(5);
        let user = rng.below(USERS);
        let email = format!("user{user}@tenant{tenant}.test");
        // Users mostly sit at their office; some are remote.
        let ip = if user.is_multiple_of(10) {
            format!(
                "198.51.{}.{}",
                user % 250,
                user / 250 * 10 + rng.below(4) + 1
            )
        } else {
            format!(
                "10.{tenant}.{}.{}",
                user % 250,
                user / 250 * 20 + rng.below(10) + 1
            )
        };
        let client = CLIENTS[(user % CLIENTS.len() as u64) as usize];
        let actor = Actor {
            user: Some(email.clone()),
            user_id: Some(format!("u{tenant}-{user}")),
            client_id: Some(client.into()),
            session: Some(format!("s{tenant}-{user}")),
            token: Some(format!("jti-{}", rng.next())),
            ip: Some(ip),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Stormproof-Webmail/1.0".into()),
            protocol: if operation.starts_with("smtp") {
                "smtp"
            } else {
                "jmap"
            }
            .into(),
        };
        let failed = operation.ends_with("_failed") || operation == "token_rejected";
        let outcome = if failed {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        let mut event = AuditEvent::new(time, operation, outcome, actor);
        event.seq = first_seq + i as u64;
        event.tenant = Some(format!("tenant{tenant}"));
        match operation {
            "Email/get"
            | "Thread/get"
            | "download"
            | "SearchSnippet/get"
            | "smtp.submission"
            | "EmailSubmission/set" => {
                event.access = AccessKind::Content;
                event.count = 1 + rng.below(20);
            }
            "Email/query" => {
                event.access = AccessKind::Metadata;
                event.count = 1 + rng.below(50);
            }
            "token_rejected" => {
                event.reason = Some(
                    ["expired", "expired", "revoked", "wrong_audience"][rng.below(4) as usize]
                        .into(),
                );
                event.detail = serde_json::json!({"kid": "k1", "forgery": false});
            }
            "sign_in_failed" | "smtp.auth_failed" => event.reason = Some("bad_credentials".into()),
            "token_issued" => event.reason = Some("refresh".into()),
            "sign_in" => {
                event.reason = Some("success".into());
                event.detail =
                    serde_json::json!({"sid": format!("s{tenant}-{user}"), "amr": ["pwd", "otp"]});
            }
            _ => {}
        }
        if event.access != AccessKind::None {
            // Their own mailbox; a few assistants also read their manager's.
            let delegate = user % 500 == 1 && rng.below(10) == 0;
            let owner = if delegate { user + 1 } else { user };
            event.target.owner = Some(format!("user{owner}@tenant{tenant}.test"));
            event.target.account = Some(format!("a{tenant}-{owner}"));
            event.target.mailboxes = vec!["inbox".into()];
            event.target.items = (0..event.count.min(4)).map(|j| format!("e{j}")).collect();
        }
        out.push(event);
    }
    out
}

/// The 7 shipped documents (not the templates) and the 93 generated: 100
/// rules and correlations.
fn write_rules(dir: &Path) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let mut copied = 0;
    for entry in std::fs::read_dir(&shipped).into_iter().flatten().flatten() {
        if entry.path().is_file()
            && std::fs::copy(entry.path(), dir.join(entry.file_name())).is_ok()
        {
            copied += 1;
        }
    }
    if copied == 0 {
        panic!("no shipped rules in {}", shipped.display());
    }
    let generated = if std::env::var("STORMPROOF_BENCH_RULES").as_deref() == Ok("first") {
        first_mix()
    } else {
        sigma_rules::generated()
    };
    assert_eq!(generated.len(), 93);
    if let Err(e) = std::fs::write(dir.join("generated.yml"), generated.join("---\n")) {
        panic!("writing rules: {e}");
    }
}

/// The bench's first 93 generated documents, kept to compare with: in
/// eight shapes, most naming no operation, so that every rule was
/// evaluated on most events whatever the prefilter (a regular expression on
/// `target.owner`, a threshold on `count`, a user agent substring...).
fn first_mix() -> Vec<String> {
    let mut docs = Vec::new();
    let mut i = 0;
    while docs.len() < 93 {
        let header = format!(
            "title: Generated rule {i}\nid: gen-{i}\nlogsource:\n    product: stormproof\n"
        );
        let body = match i % 8 {
            0 => format!(
                "detection:\n    sel:\n        operation:\n            - custom_op_{i}\n            - other_op_{i}\n    condition: sel\nlevel: low\n"
            ),
            1 => format!(
                "detection:\n    sel:\n        actor.user_agent|contains: 'scanner-{i}'\n    condition: sel\nlevel: medium\n"
            ),
            2 => format!(
                "detection:\n    sel:\n        actor.ip|cidr:\n            - 192.0.2.{}/32\n            - 2001:db8:{i}::/48\n        access: content\n    condition: sel\nlevel: high\n",
                i % 250
            ),
            3 => format!(
                "detection:\n    sel:\n        actor.user|startswith: 'svc-{i}-'\n        operation: Email/get\n    condition: sel\nlevel: medium\n"
            ),
            4 => format!(
                "detection:\n    sel:\n        target.owner|re: '^exec{i}[0-9]+@'\n    condition: sel\nlevel: medium\n"
            ),
            5 => format!(
                "detection:\n    sel:\n        access: content\n        count|gte: {}\n    condition: sel\nlevel: medium\n",
                500 + i
            ),
            6 => format!(
                "detection:\n    sel_a:\n        operation: sign_in_failed\n        reason: reason_{i}\n    sel_b:\n        operation: smtp.auth_failed\n        reason: other_{i}\n    filter:\n        actor.ip|cidr: 10.0.0.0/8\n    condition: 1 of sel_* and not filter\nlevel: medium\n"
            ),
            _ => {
                docs.push(format!(
                    "title: Generated base {i}\nid: gen-base-{i}\nname: gen_base_{i}\nlogsource:\n    product: stormproof\ndetection:\n    sel:\n        operation: token_rejected\n        reason: r{i}\n    condition: sel\nlevel: low\n"
                ));
                format!(
                    "correlation:\n    type: event_count\n    rules:\n        - gen_base_{i}\n    group-by:\n        - actor.ip\n    timespan: 5m\n    condition:\n        gte: 10\nlevel: high\n"
                )
            }
        };
        docs.push(format!("{header}{body}"));
        i += 1;
    }
    docs
}

/// Which detectors a measurement runs.
#[derive(Clone, Copy)]
enum Rules {
    /// The built-ins alone.
    None,
    /// The built-ins and the rules.
    Prefiltered,
    /// The same, without the prefilter.
    Unfiltered,
    /// The rules alone, no built-ins: Sigma's own cost.
    Alone,
}

struct Setup {
    config: DetectConfig,
    warmup: Vec<AuditEvent>,
    measured: Vec<AuditEvent>,
    _rules: Option<tempfile::TempDir>,
}

fn setup(rules: Rules) -> Setup {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let warmup = events(&mut rng, T0, 0, WARMUP);
    let start = warmup.last().map_or(T0, |e| parse_ms(&e.time)) + 1;
    let measured = events(&mut rng, start, WARMUP as u64, MEASURED);
    let mut config = DetectConfig {
        learning_window: Duration::from_secs(0),
        ..DetectConfig::default()
    };
    let rules = if let Rules::None = rules {
        config.sigma.enabled = false;
        None
    } else {
        config.sigma.prefilter = !matches!(rules, Rules::Unfiltered);
        if let Rules::Alone = rules {
            config.token_forgery.enabled = false;
            config.first_seen_app.enabled = false;
            config.token_replay.enabled = false;
            config.bulk_access.enabled = false;
            config.non_owner_access.enabled = false;
            config.persistence.enabled = false;
        }
        let dir = tempfile::tempdir().ok();
        if let Some(dir) = &dir {
            write_rules(dir.path());
            config.sigma.rules_dir = Some(dir.path().to_owned());
        }
        dir
    };
    Setup {
        config,
        warmup,
        measured,
        _rules: rules,
    }
}

fn parse_ms(time: &str) -> i64 {
    humantime::parse_rfc3339(time)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(T0, |d| d.as_millis() as i64)
}

/// A warmed engine over a fresh store: it has seen the warm-up events.
fn warmed(setup: &Setup) -> (tempfile::TempDir, Engine) {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    };
    let store = match SqliteStore::open(dir.path()) {
        Ok(store) => Arc::new(store),
        Err(e) => panic!("store: {e}"),
    };
    let mut engine = match Engine::new(&setup.config, store) {
        Ok(engine) => engine,
        Err(e) => panic!("engine: {e}"),
    };
    for event in &setup.warmup {
        black_box(engine.process(event));
    }
    let _ = engine.flush();
    (dir, engine)
}

fn run(engine: &mut Engine, events: &[AuditEvent]) -> usize {
    let mut alerts = 0;
    for event in events {
        alerts += engine.process(event).len();
    }
    alerts
}

fn bench(c: &mut Criterion, setups: &[(&str, &Setup)]) {
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    group.throughput(Throughput::Elements(MEASURED as u64));
    for (name, setup) in setups {
        group.bench_function(*name, |b| {
            b.iter_batched(
                || warmed(setup),
                |(dir, mut engine)| {
                    black_box(run(&mut engine, &setup.measured));
                    (dir, engine)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// This thread's CPU time: the machine is shared, so wall time alone
/// measures the neighbours too.
fn thread_cpu() -> Duration {
    cpu_of(libc::RUSAGE_THREAD)
}

/// The whole process's CPU time, every thread.
fn process_cpu() -> Duration {
    cpu_of(libc::RUSAGE_SELF)
}

fn cpu_of(who: libc::c_int) -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer it is given.
    let usage = unsafe {
        libc::getrusage(who, usage.as_mut_ptr());
        usage.assume_init()
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// Events per second by wall time and by CPU time, one pair per run.
struct Rates {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    alerts: String,
}

impl Rates {
    fn best(values: &[f64]) -> f64 {
        values.iter().copied().fold(0.0, f64::max)
    }

    fn median(values: &[f64]) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
    }

    fn row(&self, name: &str) {
        println!(
            "{name:<44} {:>10.0} {:>10.0} {:>10.0} {:>10.0}",
            Self::best(&self.wall),
            Self::median(&self.wall),
            Self::best(&self.cpu),
            Self::median(&self.cpu),
        );
    }
}

/// Timed runs, each from a freshly warmed engine: events per second by wall
/// time and by this thread's CPU time, and the alerts raised by detector.
fn events_per_second(setup: &Setup, runs: usize) -> Rates {
    timed(setup, runs, false)
}

/// The same through [`Engine::process_batch`]: Sigma on a second thread.
/// CPU time is the whole process's, both threads.
fn batched_events_per_second(setup: &Setup, runs: usize) -> Rates {
    timed(setup, runs, true)
}

fn timed(setup: &Setup, runs: usize, batched: bool) -> Rates {
    let mut rates = Rates {
        wall: Vec::new(),
        cpu: Vec::new(),
        alerts: String::new(),
    };
    for _ in 0..runs {
        let (dir, mut engine) = warmed(setup);
        let cpu = if batched { process_cpu } else { thread_cpu };
        let (start, start_cpu) = (Instant::now(), cpu());
        let mut by_detector = std::collections::BTreeMap::<String, usize>::new();
        let alerts: Vec<_> = if batched {
            engine.process_batch(&setup.measured)
        } else {
            setup
                .measured
                .iter()
                .flat_map(|e| engine.process(e))
                .collect()
        };
        let (wall, cpu) = (start.elapsed(), cpu() - start_cpu);
        for alert in alerts {
            let name = match alert.rule {
                Some(rule) => format!("{} {rule}", alert.detector),
                None => alert.detector,
            };
            *by_detector.entry(name).or_default() += 1;
        }
        rates.wall.push(MEASURED as f64 / wall.as_secs_f64());
        rates.cpu.push(MEASURED as f64 / cpu.as_secs_f64());
        let counts: Vec<String> = by_detector
            .iter()
            .map(|(d, n)| format!("{d} {n}"))
            .collect();
        rates.alerts = counts.join(", ");
        drop(engine);
        drop(dir);
    }
    rates
}

fn main() {
    let all = setup(Rules::Prefiltered);
    let unfiltered = setup(Rules::Unfiltered);
    let builtins = setup(Rules::None);
    // STORMPROOF_BENCH_QUICK=1 skips criterion's sampling and prints only
    // the side-by-side figures (for profiling).
    if std::env::var_os("STORMPROOF_BENCH_QUICK").is_none() {
        let mut c = Criterion::default().configure_from_args();
        bench(
            &mut c,
            &[
                ("all detectors + 100 sigma rules", &all),
                ("all detectors + 100 sigma rules, no prefilter", &unfiltered),
                ("built-ins only", &builtins),
            ],
        );
        c.final_summary();
    }
    let runs = std::env::var("STORMPROOF_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);

    let alone = setup(Rules::Alone);
    match std::env::var("STORMPROOF_BENCH_ONLY").as_deref() {
        Ok("sigma") => {
            events_per_second(&all, runs).row("built-ins + 100 Sigma rules");
            return;
        }
        Ok("alone") => {
            events_per_second(&alone, runs).row("100 Sigma rules alone");
            return;
        }
        Ok("batch") => {
            batched_events_per_second(&all, runs).row("built-ins + 100 Sigma rules, batched");
            return;
        }
        _ => {}
    }
    let peer = events_per_second(&builtins, runs);
    let full = events_per_second(&all, runs);
    let slow = events_per_second(&unfiltered, runs);
    let own = events_per_second(&alone, runs);
    let batched = batched_events_per_second(&all, runs);
    println!();
    println!("events per second over {MEASURED} events, {runs} runs each:");
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>10}",
        "", "wall best", "wall med", "CPU best", "CPU med"
    );
    peer.row("built-ins only");
    full.row("built-ins + 100 Sigma rules");
    slow.row("built-ins + 100 Sigma rules, no prefilter");
    own.row("100 Sigma rules alone, no built-ins");
    batched.row("built-ins + 100 Sigma rules, process_batch");
    let ratio = |a: &[f64], b: &[f64]| Rates::median(a) / Rates::median(b);
    println!(
        "{:<44} {:>21.2} {:>21.2}",
        "with Sigma / without (medians)",
        ratio(&full.wall, &peer.wall),
        ratio(&full.cpu, &peer.cpu)
    );
    println!(
        "{:<44} {:>21.2} {:>21.2}",
        "prefilter speed-up (medians)",
        ratio(&full.wall, &slow.wall),
        ratio(&full.cpu, &slow.cpu)
    );
    println!("target with Sigma: 200000");
    println!("new alerts, built-ins only:       {}", peer.alerts);
    println!("new alerts, with Sigma:           {}", full.alerts);
    println!("new alerts, Sigma, no prefilter:  {}", slow.alerts);
    println!("(process_batch runs Sigma on a second thread; its CPU column counts both threads)");
    if full.alerts != slow.alerts || full.alerts != batched.alerts {
        panic!("the prefilter or the batch changed the alerts");
    }
}
