//! Appending, durability, reopening and proofs.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;

use stormproof_audit::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use stormproof_audit::{
    AuditLog, Checkpoint, ErrorKind, LogOptions, LogReader, latest_checkpoint, verify,
};

use crate::common::{T0, World, event, fill, options, segment_path, segments};

#[test]
fn concurrent_appenders_get_consecutive_seqs() {
    let world = World::new();
    let log = world.open();
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut ranges = Vec::new();
                for round in 0..25u64 {
                    let n = 1 + (t + round) % 5;
                    let events = (0..n)
                        .map(|i| event(t * 1000 + round * 10 + i, T0))
                        .collect();
                    let range = log.append(events).wait().unwrap();
                    assert_eq!(range.end - range.start, n);
                    ranges.push(range);
                }
                ranges
            })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for thread in threads {
        for range in thread.join().unwrap() {
            for seq in range {
                assert!(seqs.insert(seq), "seq {seq} given twice");
            }
        }
    }
    let total = seqs.len() as u64;
    assert_eq!(
        seqs.iter().copied().collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>()
    );
    assert_eq!(log.size(), total);
    log.close().unwrap();

    let reader = LogReader::open(&world.dir()).unwrap();
    assert_eq!(reader.size(), total);
    let mut count = 0;
    for (position, record) in reader.records(0).enumerate() {
        let record = record.unwrap();
        assert_eq!(record.seq, position as u64);
        let event = record.event().unwrap();
        assert_eq!(event.seq, record.seq);
        assert_eq!(
            serde_json::to_vec(&event).unwrap(),
            record.bytes,
            "stored bytes are serde_json's"
        );
        count += 1;
    }
    assert_eq!(count, total);
    assert!(segments(&world.dir()).len() > 1, "small segments rotate");
    verify(&world.dir(), None).unwrap();
}

#[test]
fn reopening_keeps_everything_and_continues_the_numbering() {
    let world = World::new();
    let log = world.open();
    fill(&log, 100, 7, T0);
    log.close().unwrap();
    assert!(
        matches!(log.append(vec![event(0, T0)]).wait(), Err(e) if matches!(e.kind, ErrorKind::Closed))
    );

    let log = world.open();
    assert_eq!(log.size(), 100);
    let range = log
        .append(vec![event(100, T0), event(101, T0)])
        .wait()
        .unwrap();
    assert_eq!(range, 100..102);
    drop(log); // Dropping the last handle closes and signs too.

    let latest = latest_checkpoint(&world.dir()).unwrap().unwrap();
    assert_eq!(latest.size, 102);
    let report = verify(&world.dir(), None).unwrap();
    assert_eq!(report.records, 102);
    assert_eq!(report.unchecked_tail, 0);
    assert_eq!(report.checkpoints, 2);
    let reader = LogReader::open(&world.dir()).unwrap();
    let seqs: Vec<u64> = reader.records(95).map(|r| r.unwrap().seq).collect();
    assert_eq!(seqs, (95..102).collect::<Vec<_>>());
    assert_eq!(reader.records(102).count(), 0, "nothing past the end");
    assert_eq!(reader.records(500).count(), 0);
}

#[test]
fn a_torn_last_line_is_skipped_then_cut_off() {
    let world = World::new();
    let log = world.open();
    fill(&log, 30, 10, T0);
    log.close().unwrap();
    let last = *segments(&world.dir()).last().unwrap();
    // A crash in the middle of a write leaves half a line.
    let mut file = OpenOptions::new()
        .append(true)
        .open(segment_path(&world.dir(), last))
        .unwrap();
    file.write_all(br#"{"seq":30,"time":"2023-11"#).unwrap();
    drop(file);

    let reader = LogReader::open(&world.dir()).unwrap();
    assert_eq!(reader.size(), 30);
    assert_eq!(reader.records(0).count(), 30);
    let report = verify(&world.dir(), None).unwrap();
    assert_eq!(report.torn_tail, 25);
    assert_eq!(report.records, 30);

    let log = world.open();
    assert_eq!(log.size(), 30);
    assert_eq!(log.append(vec![event(30, T0)]).wait().unwrap(), 30..31);
    log.close().unwrap();
    let report = verify(&world.dir(), None).unwrap();
    assert_eq!((report.records, report.torn_tail), (31, 0));
}

#[test]
fn a_second_open_is_locked() {
    let world = World::new();
    let log = world.open();
    let second = AuditLog::open(&world.dir(), world.signer(), options());
    assert!(matches!(second, Err(e) if matches!(e.kind, ErrorKind::Locked)));
    assert!(matches!(
        stormproof_audit::prune(&world.dir(), "2030-01-01T00:00:00.000Z"),
        Err(e) if matches!(e.kind, ErrorKind::Locked)
    ));
    log.close().unwrap();
    // Closed: the lock is released with the last handle.
    drop(log);
    world.open().close().unwrap();
}

#[test]
fn checkpoints_grow_and_prove_what_they_hold() {
    let world = World::new();
    let log = world.open();
    let vkey = world.vkey();
    let empty = log.checkpoint().unwrap();
    assert_eq!(empty.size, 0);
    fill(&log, 150, 13, T0);
    let first = log.checkpoint().unwrap();
    assert_eq!(first.size, 150);
    assert_eq!(
        log.checkpoint().unwrap(),
        first,
        "no growth, no new checkpoint"
    );
    fill(&log, 20, 50, T0);
    let second = log.checkpoint().unwrap();
    assert_eq!(second.size, 170);
    for checkpoint in [&empty, &first, &second] {
        assert_eq!(
            Checkpoint::parse_and_verify(&checkpoint.note, &vkey).unwrap(),
            *checkpoint
        );
        assert!(checkpoint.note.starts_with("test.example/audit\n"));
    }

    let proof = log.consistency_proof(150, 170).unwrap();
    assert!(verify_consistency(
        150,
        170,
        &first.root,
        &second.root,
        &proof
    ));
    assert!(log.consistency_proof(0, 170).unwrap().is_empty());
    let reader = LogReader::open(&world.dir()).unwrap();
    let records: Vec<_> = reader.records(0).map(|r| r.unwrap()).collect();
    for index in [0u64, 1, 63, 64, 65, 127, 128, 149] {
        let leaf = leaf_hash(&records[index as usize].bytes);
        let proof = log.inclusion_proof(index, 150).unwrap();
        assert!(
            verify_inclusion(&leaf, index, 150, &proof, &first.root),
            "{index}"
        );
        let proof = log.inclusion_proof(index, 170).unwrap();
        assert!(
            verify_inclusion(&leaf, index, 170, &proof, &second.root),
            "{index}"
        );
    }
    assert!(
        matches!(log.inclusion_proof(170, 170), Err(e) if matches!(e.kind, ErrorKind::BadRequest(_)))
    );
    assert!(
        matches!(log.inclusion_proof(0, 171), Err(e) if matches!(e.kind, ErrorKind::BadRequest(_)))
    );
    log.close().unwrap();
}

#[test]
fn proofs_survive_reopening_and_lost_hash_files() {
    let world = World::new();
    let log = world.open();
    fill(&log, 300, 40, T0);
    let checkpoint = log.checkpoint().unwrap();
    log.close().unwrap();
    // Derived files are only a cache: without them the log rebuilds them.
    std::fs::remove_dir_all(world.dir().join("tree")).unwrap();
    std::fs::create_dir(world.dir().join("tree")).unwrap();
    for first in segments(&world.dir()) {
        std::fs::remove_file(
            world
                .dir()
                .join("segments")
                .join(format!("{first:020}.hashes")),
        )
        .unwrap();
    }
    let log = world.open();
    let reader = LogReader::open(&world.dir()).unwrap();
    let records: Vec<_> = reader.records(0).map(|r| r.unwrap()).collect();
    for index in (0..300).step_by(37) {
        let proof = log.inclusion_proof(index, 300).unwrap();
        let leaf = leaf_hash(&records[index as usize].bytes);
        assert!(verify_inclusion(
            &leaf,
            index,
            300,
            &proof,
            &checkpoint.root
        ));
    }
    log.close().unwrap();
    verify(&world.dir(), None).unwrap();
}

#[test]
fn subscribers_see_durable_events() {
    let world = World::new();
    let log = world.open();
    let mut feed = log.subscribe();
    log.append(vec![event(0, T0), event(1, T0)]).wait().unwrap();
    let first = feed.blocking_recv().unwrap();
    let second = feed.blocking_recv().unwrap();
    assert_eq!((first.seq, second.seq), (0, 1));
    assert_eq!(first.target.items, event(0, T0).target.items);
    // What the feed delivered is on disk.
    let reader = LogReader::open(&world.dir()).unwrap();
    let stored = reader.records(1).next().unwrap().unwrap().event().unwrap();
    assert_eq!(stored, *second);
    let shared: Arc<_> = second;
    assert_eq!(shared.operation, "Email/get");
    log.close().unwrap();
}

#[test]
fn receipts_resolve_in_async_code() {
    let world = World::new();
    let log = world.open();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let range = runtime.block_on(async {
        log.append(vec![event(0, T0)]).durable().await.unwrap();
        log.append(vec![event(1, T0), event(2, T0)]).durable().await
    });
    assert_eq!(range.unwrap(), 1..3);
    assert_eq!(log.append(Vec::new()).wait().unwrap(), 3..3);
    log.close().unwrap();
}

#[test]
fn a_timer_signs_checkpoints_while_the_log_grows() {
    let world = World::new();
    let log = world.open_with(LogOptions {
        checkpoint_interval: std::time::Duration::from_millis(20),
        ..options()
    });
    fill(&log, 10, 10, T0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while latest_checkpoint(&world.dir())
        .unwrap()
        .is_none_or(|c| c.size < 10)
    {
        assert!(std::time::Instant::now() < deadline, "no checkpoint signed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    log.close().unwrap();
}

#[test]
fn opening_with_another_key_is_refused() {
    let world = World::new();
    let log = world.open();
    fill(&log, 5, 5, T0);
    log.close().unwrap();
    std::fs::remove_file(world.dir().join("checkpoint.key")).unwrap();
    // A new key cannot take over the log: its verifier key would not match.
    let signer = stormproof_audit::CheckpointSigner::load_or_create(
        &world.dir(),
        &world.master,
        "test.example/audit",
    );
    assert!(matches!(signer, Err(e) if matches!(e.kind, ErrorKind::Key(_))));
}

#[test]
fn a_writer_gathering_a_group_gives_way_to_checkpoints_and_close() {
    let world = World::new();
    // Far longer than the test: only a checkpoint or close can end a group.
    let log = world.open_with(LogOptions {
        group_delay: std::time::Duration::from_secs(3600),
        ..options()
    });
    let (done, finished) = std::sync::mpsc::channel();
    let appender = log.clone();
    std::thread::spawn(move || {
        let mut appended = 0;
        for round in 0..20 {
            // Appends arriving together make the writer gather the next ones.
            let barrier = Arc::new(std::sync::Barrier::new(8));
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let (log, barrier) = (appender.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        log.append(vec![event(round * 8 + t, T0)])
                    })
                })
                .collect();
            let receipts: Vec<_> = threads
                .into_iter()
                .map(|thread| thread.join().unwrap())
                .collect();
            appended += receipts.len() as u64;
            let checkpoint = appender.checkpoint().unwrap();
            assert!(checkpoint.size <= appended);
            for receipt in receipts {
                receipt.wait().unwrap();
            }
        }
        let last = appender.append(vec![event(1_000, T0)]);
        appender.close().unwrap();
        last.wait().unwrap();
        done.send(appended + 1).unwrap();
    });
    let appended = finished
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the writer held a group back from a checkpoint or close");
    drop(log);
    let reopened = world.open();
    assert_eq!(reopened.size(), appended);
    reopened.close().unwrap();
}
