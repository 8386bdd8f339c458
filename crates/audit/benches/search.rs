//! A selective audit search (one session among a thousand users' reads)
//! over a log of 200,000 `Email/get` records: the scan as `search` runs it,
//! passing over records that lack the filter's values without parsing them,
//! side by side with parsing every record and matching the event.
//!
//! Run with `cargo bench -p stormproof-audit --bench search`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use stormproof_audit::search::{Filter, search};
use stormproof_audit::{AuditLog, CheckpointSigner, LogOptions, LogReader};
use stormproof_keys::MasterKey;

mod common;

const RECORDS: usize = 200_000;
const USERS: usize = 1_000;
const RUNS: usize = 5;

/// The fastest of `RUNS` runs of `scan`, in seconds, and what it found.
fn fastest(mut scan: impl FnMut() -> usize) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut found = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        found = scan();
        best = best.min(start.elapsed().as_secs_f64());
    }
    (best, found)
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let master = MasterKey::load_or_create(&tmp.path().join("master.key")).unwrap();
    let dir = tmp.path().join("audit");
    let signer = CheckpointSigner::load_or_create(&dir, &master, "bench.example/audit").unwrap();
    let log = AuditLog::open(&dir, signer, LogOptions::default()).unwrap();
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(1_000) {
        log.append(
            chunk
                .iter()
                .map(|&n| common::email_get(n % USERS, n))
                .collect(),
        )
        .wait()
        .unwrap();
    }
    log.close().unwrap();

    let reader = LogReader::open(&dir).unwrap();
    let filter = Filter {
        tenant: Some("example".into()),
        session: Some("s-421-91c2".into()),
        ..Filter::default()
    };
    let (prefiltered, found) = fastest(|| {
        search(&reader, &filter, 0, usize::MAX)
            .unwrap()
            .events
            .len()
    });
    let (parsed, parsed_found) = fastest(|| {
        reader
            .records(0)
            .filter(|record| filter.matches(&record.as_ref().unwrap().event().unwrap()))
            .count()
    });
    assert_eq!(found, parsed_found);
    assert_eq!(found, RECORDS / USERS);
    println!(
        "search: {RECORDS} records, one session's {found}: prefiltered {:.0} ms \
         ({:.0} records/s), every record parsed {:.0} ms ({:.0} records/s); speed-up {:.1}x",
        prefiltered * 1e3,
        RECORDS as f64 / prefiltered,
        parsed * 1e3,
        RECORDS as f64 / parsed,
        parsed / prefiltered,
    );
}
