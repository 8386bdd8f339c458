//! Sustained append rate: 8 threads each append batches of realistic
//! `Email/get` events (ten email ids and their message ids each) and wait
//! until each batch is durable, as request handlers do before answering.
//! Group commit folds whatever is queued into one write and one
//! `fdatasync`.
//!
//! Run with `cargo bench -p stormproof-audit --bench append`. Criterion
//! reports `elem/s` (events per second); a final sustained run of about two
//! seconds prints the rate once more, with the checkpoint timer on as in
//! production.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use stormproof_audit::{AuditEvent, AuditLog, CheckpointSigner, LogOptions};
use stormproof_keys::MasterKey;

mod common;

const THREADS: usize = 8;
const PER_BATCH: usize = 64;
const BATCHES: usize = 48;

struct Bench {
    _tmp: tempfile::TempDir,
    log: AuditLog,
}

fn open(interval: Duration) -> Bench {
    let tmp = tempfile::tempdir().unwrap();
    let master = MasterKey::load_or_create(&tmp.path().join("master.key")).unwrap();
    let dir = tmp.path().join("audit");
    let signer = CheckpointSigner::load_or_create(&dir, &master, "bench.example/audit").unwrap();
    let log = AuditLog::open(
        &dir,
        signer,
        LogOptions {
            origin: "bench.example/audit".into(),
            checkpoint_interval: interval,
            ..LogOptions::default()
        },
    )
    .unwrap();
    Bench { _tmp: tmp, log }
}

/// Appends `batches` batches per thread from `THREADS` threads; returns the
/// time from the common start until the last batch is durable, and the CPU
/// time the process spent meanwhile.
fn run(log: &AuditLog, batches: usize) -> (Duration, Duration) {
    let start = Arc::new(Barrier::new(THREADS + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let log = log.clone();
            let start = start.clone();
            // Built before the clock starts: making events is the caller's
            // cost, not the log's.
            let work: Vec<Vec<AuditEvent>> = (0..batches)
                .map(|b| {
                    (0..PER_BATCH)
                        .map(|i| common::email_get(thread, b * PER_BATCH + i))
                        .collect()
                })
                .collect();
            std::thread::spawn(move || {
                start.wait();
                for batch in work {
                    log.append(batch).wait().unwrap();
                }
            })
        })
        .collect();
    start.wait();
    let (began, cpu) = (Instant::now(), cpu_time());
    for thread in threads {
        thread.join().unwrap();
    }
    (began.elapsed(), cpu_time().saturating_sub(cpu))
}

fn bench(c: &mut Criterion) {
    let bench = open(Duration::ZERO);
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements((THREADS * BATCHES * PER_BATCH) as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("8_threads_64_per_batch_durable", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| run(&bench.log, BATCHES).0).sum());
    });
    group.finish();
    bench.log.close().unwrap();
}

/// This process's user and system CPU time so far, from `/proc/self/stat`
/// (in clock ticks of 10 ms), or zero where there is no such file.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// About two seconds of appends with checkpoints every second, as served.
/// The CPU time per event is printed too: on a shared machine the rate
/// depends on what else runs, the CPU cost does not.
fn sustained() {
    let bench = open(Duration::from_secs(1));
    let mut events = 0u64;
    let mut elapsed = Duration::ZERO;
    let mut cpu = Duration::ZERO;
    while elapsed < Duration::from_secs(2) {
        let (took, used) = run(&bench.log, BATCHES);
        elapsed += took;
        cpu += used;
        events += (THREADS * BATCHES * PER_BATCH) as u64;
    }
    bench.log.close().unwrap();
    println!(
        "sustained append: {:.0} events/s ({events} events, {THREADS} threads, {PER_BATCH} per batch, each batch waited durable; {:.1} us of CPU per event)",
        events as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / events as f64
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    sustained();
}
