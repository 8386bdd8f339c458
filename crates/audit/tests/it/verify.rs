//! Verification passes on an untouched log and catches each kind of edit.

use std::fs;
use std::path::{Path, PathBuf};

use stormproof_audit::{Checkpoint, VerifyFailure, VerifyReport, verify};

use crate::common::{T0, World, copy_dir, fill, segment_path, segments};

/// A closed log of 300 records in many segments, with checkpoints 0, 1
/// and 2 at sizes 100, 200 and 300.
struct Fixture {
    world: World,
    checkpoints: Vec<Checkpoint>,
}

impl Fixture {
    fn new() -> Self {
        let world = World::new();
        let log = world.open();
        let mut checkpoints = Vec::new();
        for _ in 0..3 {
            fill(&log, 100, 9, T0);
            checkpoints.push(log.checkpoint().unwrap());
        }
        log.close().unwrap();
        Self { world, checkpoints }
    }

    /// Verifies a copy of the log after `tamper` changed it.
    fn tampered(&self, tamper: impl FnOnce(&Path)) -> Result<VerifyReport, VerifyFailure> {
        self.tampered_external(None, tamper)
    }

    fn tampered_external(
        &self,
        external: Option<&str>,
        tamper: impl FnOnce(&Path),
    ) -> Result<VerifyReport, VerifyFailure> {
        let copy = tempfile::tempdir().unwrap();
        let dir = copy.path().join("audit");
        copy_dir(&self.world.dir(), &dir);
        tamper(&dir);
        verify(&dir, external)
    }
}

fn segment_of(dir: &Path, seq: u64) -> (u64, PathBuf) {
    let first = *segments(dir).iter().rev().find(|&&f| f <= seq).unwrap();
    (first, segment_path(dir, first))
}

/// Rewrites the lines of the segment holding `seq`, which is at `at` in it.
fn edit_lines(dir: &Path, seq: u64, edit: impl FnOnce(&mut Vec<Vec<u8>>, usize)) {
    let (first, path) = segment_of(dir, seq);
    let bytes = fs::read(&path).unwrap();
    let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    assert!(lines.pop().unwrap().is_empty());
    edit(&mut lines, (seq - first) as usize);
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    fs::write(&path, out).unwrap();
}

fn checkpoint_lines(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("checkpoints"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_checkpoint_lines(dir: &Path, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(dir.join("checkpoints"), text).unwrap();
}

fn replace(line: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8(line.to_vec())
        .unwrap()
        .replacen(from, to, 1)
        .into_bytes()
}

#[track_caller]
fn fails_at(result: Result<VerifyReport, VerifyFailure>, seq: Option<u64>) -> String {
    match result {
        Ok(report) => panic!("verification passed: {report:?}"),
        Err(failure) => {
            assert_eq!(failure.first_bad_record, seq, "{failure}");
            failure.message
        }
    }
}

#[test]
fn an_untouched_log_passes() {
    let fixture = Fixture::new();
    let report = verify(&fixture.world.dir(), None).unwrap();
    assert_eq!(report.records, 300);
    assert_eq!(report.checkpoints, 3);
    assert_eq!(report.latest.as_ref(), fixture.checkpoints.last());
    assert_eq!(
        (report.unchecked_tail, report.pruned, report.torn_tail),
        (0, 0, 0)
    );
    assert!(segments(&fixture.world.dir()).len() > 10);
    // So does the log as a running writer leaves it.
    let log = fixture.world.open();
    fill(&log, 5, 5, T0);
    let live = verify(&fixture.world.dir(), None).unwrap();
    assert_eq!((live.records, live.unchecked_tail), (305, 5));
    log.close().unwrap();
}

#[test]
fn a_missing_log_fails() {
    let world = World::new();
    fails_at(verify(&world.dir(), None), None);
}

#[test]
fn edited_records_are_named() {
    let fixture = Fixture::new();
    let edit = |seq: u64| {
        fixture.tampered(|dir| {
            edit_lines(dir, seq, |lines, at| {
                lines[at] = replace(&lines[at], "Email/get", "Email/gex")
            });
        })
    };
    fails_at(edit(5), Some(5));
    fails_at(edit(250), Some(250));
    // A record whose JSON no longer parses.
    let broken = fixture.tampered(|dir| edit_lines(dir, 42, |lines, at| lines[at].truncate(30)));
    fails_at(broken, Some(42));
    // Its seq changed.
    let renumbered = fixture.tampered(|dir| {
        edit_lines(dir, 120, |lines, at| {
            lines[at] = replace(&lines[at], "\"seq\":120", "\"seq\":121")
        });
    });
    fails_at(renumbered, Some(120));
}

#[test]
fn an_edit_with_its_hash_rewritten_still_fails() {
    let fixture = Fixture::new();
    let result = fixture.tampered(|dir| {
        let seq = 70;
        let mut edited = Vec::new();
        edit_lines(dir, seq, |lines, at| {
            lines[at] = replace(&lines[at], "alice@example.com", "alicx@example.com");
            edited = lines[at].clone();
        });
        let (first, _) = segment_of(dir, seq);
        let hashes = dir.join("segments").join(format!("{first:020}.hashes"));
        let mut bytes = fs::read(&hashes).unwrap();
        let at = ((seq - first) * 32) as usize;
        bytes[at..at + 32].copy_from_slice(&stormproof_audit::merkle::leaf_hash(&edited));
        fs::write(&hashes, bytes).unwrap();
    });
    // The tree level file (or the checkpoint) no longer agrees.
    fails_at(result, None);
}

#[test]
fn deleted_inserted_and_swapped_lines_are_named() {
    let fixture = Fixture::new();
    let deleted = fixture.tampered(|dir| edit_lines(dir, 7, |lines, at| drop(lines.remove(at))));
    fails_at(deleted, Some(7));
    // Two lines of one segment.
    let at = segments(&fixture.world.dir())[5];
    let swapped = fixture.tampered(|dir| {
        edit_lines(dir, at, |lines, i| lines.swap(i, i + 1));
    });
    let message = fails_at(swapped, Some(at));
    assert!(message.contains(&format!("record {}", at + 1)), "{message}");
    let inserted = fixture.tampered(|dir| {
        edit_lines(dir, 2, |lines, at| {
            let copy = lines[at].clone();
            lines.insert(at + 1, copy);
        });
    });
    fails_at(inserted, Some(3));
}

#[test]
fn deleted_segments_are_found() {
    let fixture = Fixture::new();
    let all = segments(&fixture.world.dir());
    let middle = all[all.len() / 2];
    let after = all[all.len() / 2 + 1];
    let result = fixture.tampered(|dir| {
        fs::remove_file(segment_path(dir, middle)).unwrap();
        fs::remove_file(dir.join("segments").join(format!("{middle:020}.hashes"))).unwrap();
    });
    let message = fails_at(result, Some(middle));
    assert!(message.contains(&format!("{}", after - 1)), "{message}");

    let first = fixture.tampered(|dir| {
        fs::remove_file(segment_path(dir, 0)).unwrap();
        fs::remove_file(dir.join("segments").join(format!("{:020}.hashes", 0))).unwrap();
    });
    fails_at(first, Some(0));

    let last = *all.last().unwrap();
    let result = fixture.tampered(|dir| {
        fs::remove_file(segment_path(dir, last)).unwrap();
        fs::remove_file(dir.join("segments").join(format!("{last:020}.hashes"))).unwrap();
    });
    let message = fails_at(result, Some(last));
    assert!(message.contains("checkpoint 2"), "{message}");

    // Only the records, not their hash file.
    let result = fixture.tampered(|dir| fs::remove_file(segment_path(dir, middle)).unwrap());
    fails_at(result, Some(middle));
}

#[test]
fn edited_and_removed_checkpoints_are_found() {
    let fixture = Fixture::new();
    let truncated = fixture.tampered(|dir| {
        let path = dir.join("checkpoints");
        let len = fs::metadata(&path).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 20)
            .unwrap();
    });
    fails_at(truncated, None);

    let middle = fixture.tampered(|dir| {
        let mut lines = checkpoint_lines(dir);
        lines.remove(1);
        write_checkpoint_lines(dir, &lines);
    });
    let message = fails_at(middle, None);
    assert!(message.contains("removed"), "{message}");

    let swapped = fixture.tampered(|dir| {
        let mut lines = checkpoint_lines(dir);
        lines.swap(0, 1);
        write_checkpoint_lines(dir, &lines);
    });
    fails_at(swapped, None);

    let edited_root = fixture.tampered(|dir| {
        let mut lines = checkpoint_lines(dir);
        let root = base64_root(&fixture.checkpoints[1]);
        let mut other = root.clone().into_bytes();
        other[0] = if other[0] == b'A' { b'B' } else { b'A' };
        lines[1] = lines[1].replace(&root, std::str::from_utf8(&other).unwrap());
        write_checkpoint_lines(dir, &lines);
    });
    fails_at(edited_root, None);

    let respaced = fixture.tampered(|dir| {
        let mut lines = checkpoint_lines(dir);
        lines[2] = lines[2].replacen("{\"note\":", "{\"note\": ", 1);
        write_checkpoint_lines(dir, &lines);
    });
    fails_at(respaced, None);
}

fn base64_root(checkpoint: &Checkpoint) -> String {
    checkpoint.note.lines().nth(2).unwrap().to_owned()
}

#[test]
fn another_verifier_key_fails() {
    let fixture = Fixture::new();
    let other = World::new();
    let vkey = other.vkey();
    let result = fixture
        .tampered(|dir| fs::write(dir.join("checkpoint.vkey"), format!("{vkey}\n")).unwrap());
    fails_at(result, None);
    let removed = fixture.tampered(|dir| fs::remove_file(dir.join("checkpoint.vkey")).unwrap());
    fails_at(removed, None);
}

#[test]
fn edited_derived_files_fail() {
    let fixture = Fixture::new();
    let hashes = fixture.tampered(|dir| {
        let path = dir.join("segments").join(format!("{:020}.hashes", 0));
        let mut bytes = fs::read(&path).unwrap();
        bytes[3 * 32 + 5] ^= 1;
        fs::write(&path, bytes).unwrap();
    });
    fails_at(hashes, Some(3));
    for level in ["level-06", "level-07", "level-08"] {
        let result = fixture.tampered(|dir| {
            let path = dir.join("tree").join(level);
            let mut bytes = fs::read(&path).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            fs::write(&path, bytes).unwrap();
        });
        fails_at(result, None);
    }
    let header = fixture.tampered(|dir| {
        let path = dir.join("tree").join("level-06");
        let mut bytes = fs::read(&path).unwrap();
        bytes[0] ^= 1;
        fs::write(&path, bytes).unwrap();
    });
    fails_at(header, None);
    let extra = fixture.tampered(|dir| {
        let path = dir.join("tree").join("level-06");
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0; 32]);
        fs::write(&path, bytes).unwrap();
    });
    fails_at(extra, None);
    let stray = fixture.tampered(|dir| fs::write(dir.join("notes.txt"), b"hello").unwrap());
    fails_at(stray, None);
    let stray = fixture.tampered(|dir| fs::write(dir.join("segments").join("x.log"), b"").unwrap());
    fails_at(stray, None);
}

#[test]
fn an_external_checkpoint_pins_the_log() {
    let fixture = Fixture::new();
    let kept = &fixture.checkpoints[1].note;
    let report = verify(&fixture.world.dir(), Some(kept)).unwrap();
    assert_eq!(report.records, 300);
    // As read back from a file that gained a blank line.
    verify(&fixture.world.dir(), Some(&format!("{kept}\n"))).unwrap();

    // Truncated below it, consistently: records, checkpoints and tree alike.
    let size = fixture_cut_size(&fixture);
    let cut = |dir: &Path| {
        for first in segments(dir) {
            if first >= 150 {
                fs::remove_file(segment_path(dir, first)).unwrap();
                fs::remove_file(dir.join("segments").join(format!("{first:020}.hashes"))).unwrap();
            }
        }
        let lines = checkpoint_lines(dir);
        write_checkpoint_lines(dir, &lines[..1]);
        for level in 6..64u32 {
            let path = dir.join("tree").join(format!("level-{level:02}"));
            if let Ok(file) = fs::OpenOptions::new().write(true).open(&path) {
                file.set_len(8 + (size >> level) * 32).unwrap();
            }
        }
    };
    // Without the external checkpoint the cut cannot be seen from inside...
    fixture.tampered(cut).unwrap();
    // ...with it, it can.
    let message = fails_at(fixture.tampered_external(Some(kept), cut), Some(size));
    assert!(message.contains("removed"), "{message}");

    // The newest checkpoint removed at a line boundary.
    let latest = &fixture.checkpoints[2].note;
    let dropped = |dir: &Path| {
        let lines = checkpoint_lines(dir);
        write_checkpoint_lines(dir, &lines[..2]);
    };
    fixture.tampered(dropped).unwrap();
    fails_at(fixture.tampered_external(Some(latest), dropped), None);

    // A checkpoint from another key is no anchor.
    let other = World::new();
    let log = other.open();
    fill(&log, 3, 3, T0);
    let foreign = log.checkpoint().unwrap();
    log.close().unwrap();
    fails_at(verify(&fixture.world.dir(), Some(&foreign.note)), None);
}

/// The first segment at or after 150: where the cut log ends.
fn fixture_cut_size(fixture: &Fixture) -> u64 {
    *segments(&fixture.world.dir())
        .iter()
        .find(|&&f| f >= 150)
        .unwrap()
}
