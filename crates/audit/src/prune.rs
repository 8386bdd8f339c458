//! Retention: removing the oldest segments without losing verifiability.
//!
//! Pruning removes a prefix of closed segments whose records all happened
//! before a cut-off time and are all covered by the latest checkpoint. In
//! their place the manifest keeps the Merkle frontier of the removed prefix
//! `[0, p)`: the complete-subtree hashes covering it. From the frontier and
//! the remaining records, the root of every tree of at least `p` records is
//! computed again, so [`crate::verify`] still checks every later checkpoint
//! and still finds any edit to what remains. Checkpoints are kept (they are
//! small and they number the log's history); those of trees smaller than
//! `p` keep their signatures checked but their roots can no longer be.
//!
//! Before anything is removed the new frontier is checked against the latest
//! checkpoint's root: pruning never writes a frontier the signed log does
//! not vouch for.
//!
//! The order of the steps makes an interrupted prune safe: the manifest is
//! written first, then segments are removed, then the level files are cut;
//! opening the log finishes whatever is left.

use std::borrow::Cow;
use std::fs;
use std::io::ErrorKind as IoKind;
use std::path::Path;

use serde::Deserialize;

use crate::event::parse_time;
use crate::layout::{
    DiskNodes, LevelFiles, Manifest, RecordCursor, corrupt, hashes_path, list_segments, log_path,
    segments_dir,
};
use crate::log::lock_dir;
use crate::merkle::Frontier;
use crate::note::{Checkpoint, latest_checkpoint, sync_dir};
use crate::{Error, ErrorKind};

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Segment files removed.
    pub segments_removed: usize,
    /// Records removed.
    pub records_removed: u64,
}

/// A prune decided but not yet carried out.
#[derive(Debug)]
pub(crate) struct PrunePlan {
    /// The frontier of what was already pruned.
    from: Frontier,
    /// The frontier of what will be.
    to: Frontier,
    /// The first seqs of the segments to remove.
    remove: Vec<u64>,
}

impl PrunePlan {
    pub(crate) fn from(&self) -> &Frontier {
        &self.from
    }

    pub(crate) fn frontier(&self) -> &Frontier {
        &self.to
    }

    pub(crate) fn removes(&self, first: u64) -> bool {
        self.remove.contains(&first)
    }
}

/// Only the time of a record, for the retention check.
#[derive(Deserialize)]
struct Time<'a> {
    #[serde(borrow)]
    time: Cow<'a, str>,
}

/// Chooses the segments to remove and computes the frontier that will
/// replace them; `None` if nothing is old enough. Reads only closed
/// segments and derived data the checkpoint covers, so it runs beside the
/// writer.
pub(crate) fn plan(
    dir: &Path,
    before: &str,
    pruned: &Frontier,
    segments: &[u64],
    latest: &Checkpoint,
) -> Result<Option<PrunePlan>, Error> {
    if parse_time(before).as_deref() != Some(before) {
        return Err(ErrorKind::BadRequest(format!(
            "{before:?} is not a time in the log's format (2024-01-31T12:00:00.000Z)"
        ))
        .into());
    }
    let mut remove = Vec::new();
    let mut line = Vec::new();
    // Never the last segment: it is the one being written.
    for pair in segments.windows(2) {
        let (first, end) = (pair[0], pair[1]);
        if end > latest.size {
            break;
        }
        let mut cursor = RecordCursor::new(dir, segments.to_vec(), first, end);
        let mut old = true;
        while let Some(seq) = cursor.next_into(&mut line)? {
            let record: Time<'_> = serde_json::from_slice(&line)
                .map_err(|_| corrupt(&format!("record {seq} is not an audit record")))?;
            if *record.time >= *before {
                old = false;
                break;
            }
        }
        if !old {
            break;
        }
        remove.push(first);
    }
    let Some(&keep) = segments.get(remove.len()).filter(|_| !remove.is_empty()) else {
        return Ok(None);
    };
    let mut nodes = DiskNodes::new(dir, pruned, segments, latest.size);
    let to = Frontier::load(&mut nodes, keep)?;
    // The new frontier must give the signed root with what remains.
    let mut check = DiskNodes::new(dir, &to, &segments[remove.len()..], latest.size);
    if Frontier::load(&mut check, latest.size)?.root() != latest.root {
        return Err(corrupt(
            "the log does not match its latest checkpoint; run verify before pruning",
        ));
    }
    Ok(Some(PrunePlan {
        from: pruned.clone(),
        to,
        remove,
    }))
}

/// Carries out `plan`: manifest, then segments, then level files.
pub(crate) fn commit(
    dir: &Path,
    plan: &PrunePlan,
    levels: &mut LevelFiles,
) -> Result<PruneReport, Error> {
    Manifest {
        frontier: plan.to.clone(),
    }
    .write(dir)?;
    for &first in &plan.remove {
        for path in [log_path(dir, first), hashes_path(dir, first)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == IoKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    sync_dir(&segments_dir(dir))?;
    levels.rebase(plan.to.size())?;
    let report = PruneReport {
        segments_removed: plan.remove.len(),
        records_removed: plan.to.size() - plan.from.size(),
    };
    tracing::info!(
        message = "audit log pruned",
        segments = report.segments_removed,
        records = report.records_removed,
        first_kept = plan.to.size()
    );
    Ok(report)
}

/// Retention: removes whole closed segments whose every record's `time` is
/// before `before` (the format of [`crate::AuditEvent::time`]) and that the
/// latest checkpoint covers, keeping the rest verifiable (see the module
/// docs). Takes the log's lock, so it fails with `Locked` while a server
/// has the log open: use [`crate::AuditLog::prune`] there.
pub fn prune(dir: &Path, before: &str) -> Result<PruneReport, Error> {
    let _lock = lock_dir(dir)?;
    let Some(latest) = latest_checkpoint(dir)? else {
        return Ok(PruneReport::default());
    };
    let manifest = Manifest::read(dir)?;
    let segments = list_segments(dir)?;
    let Some(plan) = plan(dir, before, &manifest.frontier, &segments, &latest)? else {
        return Ok(PruneReport::default());
    };
    let mut levels = LevelFiles::new(dir, manifest.pruned());
    commit(dir, &plan, &mut levels)
}
