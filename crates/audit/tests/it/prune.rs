//! Retention: pruned logs still verify and still catch edits.

use std::fs;

use stormproof_audit::merkle::{leaf_hash, verify_inclusion};
use stormproof_audit::{ErrorKind, LogReader, format_time_ms, prune, verify};

use crate::common::{T0, World, copy_dir, fill, segment_path, segments};

const DAY: i64 = 86_400_000;

/// 200 old records, then 100 a week later, checkpointed and closed.
fn aged_log() -> World {
    let world = World::new();
    let log = world.open();
    fill(&log, 200, 10, T0);
    fill(&log, 100, 10, T0 + 7 * DAY);
    log.checkpoint().unwrap();
    log.close().unwrap();
    world
}

#[test]
fn pruning_keeps_the_rest_verifiable() {
    let world = aged_log();
    let dir = world.dir();
    let before = format_time_ms(T0 + DAY);
    let report = prune(&dir, &before).unwrap();
    assert!(report.segments_removed > 0);
    let first = segments(&dir)[0];
    assert_eq!(report.records_removed, first);
    assert!(
        first <= 200 && first > 100,
        "only old segments go: first kept {first}"
    );

    let verified = verify(&dir, None).unwrap();
    assert_eq!((verified.records, verified.pruned), (300, first));
    let reader = LogReader::open(&dir).unwrap();
    assert_eq!(reader.first(), first);
    assert_eq!(reader.records(0).next().unwrap().unwrap().seq, first);
    // Pruning again removes nothing more.
    assert_eq!(prune(&dir, &before).unwrap().records_removed, 0);

    // Edits to what remains are still found.
    let copy = tempfile::tempdir().unwrap();
    let tampered = copy.path().join("audit");
    copy_dir(&dir, &tampered);
    let path = segment_path(&tampered, *segments(&tampered).last().unwrap());
    let text = fs::read_to_string(&path)
        .unwrap()
        .replacen("Email/get", "Email/gex", 1);
    fs::write(&path, text).unwrap();
    assert!(verify(&tampered, None).is_err());
    // And so are edits to the manifest.
    let copy = tempfile::tempdir().unwrap();
    let tampered = copy.path().join("audit");
    copy_dir(&dir, &tampered);
    let manifest = fs::read_to_string(tampered.join("manifest")).unwrap();
    let edited = manifest
        .replacen("\"frontier\":[\"", "\"frontier\":[\"A", 1)
        .replacen("=\"", "\"", 1);
    fs::write(tampered.join("manifest"), edited).unwrap();
    assert!(verify(&tampered, None).is_err());

    // The log goes on: appends, proofs and checkpoints after pruning.
    let log = world.open();
    fill(&log, 20, 10, T0 + 8 * DAY);
    let checkpoint = log.checkpoint().unwrap();
    let reader = LogReader::open(&dir).unwrap();
    let records: Vec<_> = reader.records(0).map(|r| r.unwrap()).collect();
    for index in [first, first + 1, 255, 319] {
        let record = &records[(index - first) as usize];
        let proof = log.inclusion_proof(index, 320).unwrap();
        assert!(verify_inclusion(
            &leaf_hash(&record.bytes),
            index,
            320,
            &proof,
            &checkpoint.root
        ));
    }
    assert!(
        matches!(log.inclusion_proof(0, 320), Err(e) if matches!(e.kind, ErrorKind::BadRequest(_)))
    );
    log.close().unwrap();
    verify(&dir, None).unwrap();
}

#[test]
fn the_open_log_prunes_under_its_writer() {
    let world = aged_log();
    let log = world.open();
    let report = log.prune(&format_time_ms(T0 + DAY)).unwrap();
    assert!(report.records_removed > 0);
    fill(&log, 30, 10, T0 + 8 * DAY);
    let live = verify(&world.dir(), None).unwrap();
    assert_eq!(live.pruned, report.records_removed);
    let checkpoint = log.checkpoint().unwrap();
    assert_eq!(checkpoint.size, 330);
    let proof = log.consistency_proof(300, 330).unwrap();
    let old = stormproof_audit::latest_checkpoint(&world.dir())
        .unwrap()
        .unwrap();
    assert_eq!(old.size, 330);
    assert!(!proof.is_empty());
    log.close().unwrap();
    let report = verify(&world.dir(), None).unwrap();
    assert_eq!(report.records, 330);
}

#[test]
fn nothing_unsigned_or_recent_is_pruned() {
    let world = World::new();
    let log = world.open();
    fill(&log, 100, 10, T0);
    // No checkpoint yet covers anything: nothing may go.
    assert_eq!(
        log.prune(&format_time_ms(T0 + DAY))
            .unwrap()
            .records_removed,
        0
    );
    log.checkpoint().unwrap();
    // Nothing is older than the cut-off.
    assert_eq!(log.prune(&format_time_ms(T0)).unwrap().records_removed, 0);
    assert!(matches!(log.prune("yesterday"), Err(e) if matches!(e.kind, ErrorKind::BadRequest(_))));
    log.close().unwrap();
}

#[test]
fn opening_finishes_an_interrupted_prune() {
    let world = aged_log();
    let dir = world.dir();
    let before = tempfile::tempdir().unwrap();
    copy_dir(&dir, before.path());
    prune(&dir, &format_time_ms(T0 + DAY)).unwrap();
    // A crash after the manifest was written: the old segments and the
    // uncut level files are still there.
    for entry in fs::read_dir(before.path().join("segments")).unwrap() {
        let entry = entry.unwrap();
        let target = dir.join("segments").join(entry.file_name());
        if !target.exists() {
            fs::copy(entry.path(), target).unwrap();
        }
    }
    for entry in fs::read_dir(before.path().join("tree")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.join("tree").join(entry.file_name())).unwrap();
    }
    assert!(verify(&dir, None).is_err(), "a half-done prune is reported");
    let log = world.open();
    fill(&log, 10, 10, T0 + 8 * DAY);
    log.close().unwrap();
    let report = verify(&dir, None).unwrap();
    assert_eq!(report.records, 310);
    assert!(report.pruned > 0);
}
