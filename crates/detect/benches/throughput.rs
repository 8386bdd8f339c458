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
//! `STORMPROOF_BENCH_ONLY=sigma` measures only the prefiltered rules, for
//! profiling.)

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

/// The 8 shipped documents and the 92 generated: 100 rules and correlations.
fn write_rules(dir: &Path) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let mut copied = 0;
    for entry in std::fs::read_dir(&shipped).into_iter().flatten().flatten() {
        if std::fs::copy(entry.path(), dir.join(entry.file_name())).is_ok() {
            copied += 1;
        }
    }
    if copied == 0 {
        panic!("no shipped rules in {}", shipped.display());
    }
    let generated = sigma_rules::generated();
    assert_eq!(generated.len(), 92);
    if let Err(e) = std::fs::write(dir.join("generated.yml"), generated.join("---\n")) {
        panic!("writing rules: {e}");
    }
}

/// Which detectors a measurement runs.
#[derive(Clone, Copy)]
enum Rules {
    None,
    Prefiltered,
    Unfiltered,
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
        config.sigma.prefilter = matches!(rules, Rules::Prefiltered);
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
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr());
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
    let mut rates = Rates {
        wall: Vec::new(),
        cpu: Vec::new(),
        alerts: String::new(),
    };
    for _ in 0..runs {
        let (dir, mut engine) = warmed(setup);
        let (start, start_cpu) = (Instant::now(), thread_cpu());
        let mut by_detector = std::collections::BTreeMap::<String, usize>::new();
        for event in &setup.measured {
            for alert in engine.process(event) {
                let name = match alert.rule {
                    Some(rule) => format!("{} {rule}", alert.detector),
                    None => alert.detector,
                };
                *by_detector.entry(name).or_default() += 1;
            }
        }
        rates
            .wall
            .push(MEASURED as f64 / start.elapsed().as_secs_f64());
        rates
            .cpu
            .push(MEASURED as f64 / (thread_cpu() - start_cpu).as_secs_f64());
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

    if std::env::var("STORMPROOF_BENCH_ONLY").as_deref() == Ok("sigma") {
        let full = events_per_second(&all, runs);
        full.row("built-ins + 100 Sigma rules");
        return;
    }
    let peer = events_per_second(&builtins, runs);
    let full = events_per_second(&all, runs);
    let slow = events_per_second(&unfiltered, runs);
    println!();
    println!("events per second over {MEASURED} events, {runs} runs each:");
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>10}",
        "", "wall best", "wall med", "CPU best", "CPU med"
    );
    peer.row("built-ins only");
    full.row("built-ins + 100 Sigma rules");
    slow.row("built-ins + 100 Sigma rules, no prefilter");
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
    if full.alerts != slow.alerts {
        panic!("the prefilter changed the alerts");
    }
}
