//! The log directory on disk, and the derived files that make proofs cheap.
//!
//! ```text
//! dir/LOCK                         flock(2)ed by the one writing process
//! dir/checkpoint.key               the audit key, sealed under the master key (0600)
//! dir/checkpoint.vkey              its public verifier key, one line
//! dir/checkpoints                  one JSON line {"note": ...} per signed checkpoint
//! dir/manifest                     after pruning: {"pruned": p, "frontier": [...]}
//! dir/segments/<first>.log         the records first.. as JSON lines ('\n' ends each)
//! dir/segments/<first>.hashes      derived: the 32-byte leaf hash of each of them
//! dir/tree/level-NN                derived: node hashes at level NN >= 6
//! ```
//!
//! `<first>` is the segment's first seq, 20 digits, so names sort in log
//! order and a segment's record count is the next segment's first minus its
//! own. A segment is rotated once it reaches `segment_bytes`.
//!
//! The derived files let an inclusion proof read `O(log n)` hashes: a node
//! at level 6 or above is one read from its level file, one below is folded
//! from at most 32 leaf hashes. Each level file starts with the index of its
//! first node as 8 little-endian bytes (nodes lying wholly before the
//! pruned point are removed). Derived files are written after the records
//! they describe and synced before each checkpoint, so a reopened log
//! trusts them only up to its latest checkpoint and recomputes the rest;
//! [`crate::verify`] recomputes all of them.
//!
//! The manifest keeps the Merkle frontier of the pruned prefix: the hashes
//! of the complete subtrees covering `[0, p)`, one per set bit of `p`. With
//! it, the root of every tree of at least `p` records is computed from the
//! records that remain.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind as IoKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::merkle::{Frontier, NodeSource, node_hash, perfect_root, subtree_range};
use crate::note::{sync_dir, write_atomically};
use crate::{Error, ErrorKind};

pub(crate) const LOCK_FILE: &str = "LOCK";
pub(crate) const MANIFEST_FILE: &str = "manifest";
pub(crate) const SEGMENTS_DIR: &str = "segments";
pub(crate) const TREE_DIR: &str = "tree";
/// The lowest tree level kept in a level file: below it, nodes are folded
/// from leaf hashes, at most `2^(STORED_LEVEL - 1)` of them.
pub(crate) const STORED_LEVEL: u32 = 6;
/// Bytes before the first node of a level file.
pub(crate) const LEVEL_HEADER: u64 = 8;
pub(crate) const HASH_LEN: u64 = 32;

pub(crate) fn segments_dir(dir: &Path) -> PathBuf {
    dir.join(SEGMENTS_DIR)
}

pub(crate) fn tree_dir(dir: &Path) -> PathBuf {
    dir.join(TREE_DIR)
}

pub(crate) fn log_path(dir: &Path, first: u64) -> PathBuf {
    segments_dir(dir).join(format!("{first:020}.log"))
}

pub(crate) fn hashes_path(dir: &Path, first: u64) -> PathBuf {
    segments_dir(dir).join(format!("{first:020}.hashes"))
}

pub(crate) fn level_path(dir: &Path, level: u32) -> PathBuf {
    tree_dir(dir).join(format!("level-{level:02}"))
}

/// A file name in `segments/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentFile {
    Log(u64),
    Hashes(u64),
}

pub(crate) fn parse_segment_name(name: &str) -> Option<SegmentFile> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let first = stem.parse().ok()?;
    match ext {
        "log" => Some(SegmentFile::Log(first)),
        "hashes" => Some(SegmentFile::Hashes(first)),
        _ => None,
    }
}

pub(crate) fn parse_level_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("level-")?;
    let level: u32 = (digits.len() == 2 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()?;
    (STORED_LEVEL..64).contains(&level).then_some(level)
}

/// The first seqs of the segments in `dir`, in order; empty if there are
/// none (or no directory).
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>, Error> {
    let entries = match fs::read_dir(segments_dir(dir)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == IoKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut firsts = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(SegmentFile::Log(first)) =
            entry.file_name().to_str().and_then(parse_segment_name)
        {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// The index of the segment holding record `seq`: the last one starting at
/// or before it.
pub(crate) fn segment_of(segments: &[u64], seq: u64) -> Option<usize> {
    segments
        .partition_point(|&first| first <= seq)
        .checked_sub(1)
}

/// Complete lines in `bytes`, and the length of them (up to and including
/// the last newline); bytes after it are a torn write.
pub(crate) fn complete_lines(bytes: &[u8]) -> (u64, usize) {
    let count = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    let len = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |at| at + 1);
    (count, len)
}

/// Counts the complete lines of a file without holding it in memory.
pub(crate) fn count_lines(path: &Path) -> Result<(u64, u64, u64), Error> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut count, mut complete, mut offset) = (0u64, 0u64, 0u64);
    loop {
        let read = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == IoKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let (lines, len) = complete_lines(&buf[..read]);
        if lines > 0 {
            count += lines;
            complete = offset + len as u64;
        }
        offset += read as u64;
    }
    Ok((count, complete, offset))
}

/// What pruning leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// The Merkle frontier of the removed records `[0, p)`; `p` is its size.
    pub(crate) frontier: Frontier,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredManifest {
    pruned: u64,
    frontier: Vec<String>,
}

impl Manifest {
    pub(crate) fn pruned(&self) -> u64 {
        self.frontier.size()
    }

    fn encode(&self) -> Result<Vec<u8>, Error> {
        let stored = StoredManifest {
            pruned: self.pruned(),
            frontier: self
                .frontier
                .nodes()
                .iter()
                .map(|h| STANDARD.encode(h))
                .collect(),
        };
        let mut bytes =
            serde_json::to_vec(&stored).map_err(|e| corrupt(&format!("manifest: {e}")))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Reads `dir/manifest`; a log never pruned has none and prunes nothing.
    /// Anything but the exact bytes [`Manifest::write`] writes is an error.
    pub(crate) fn read(dir: &Path) -> Result<Self, Error> {
        let bytes = match fs::read(dir.join(MANIFEST_FILE)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == IoKind::NotFound => {
                return Ok(Self {
                    frontier: Frontier::new(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let bad = || corrupt("the manifest is not what pruning writes");
        let stored: StoredManifest = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let nodes = stored
            .frontier
            .iter()
            .map(|h| {
                let raw = STANDARD.decode(h).ok()?;
                <[u8; 32]>::try_from(raw).ok()
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad)?;
        let frontier = Frontier::from_parts(stored.pruned, nodes).ok_or_else(bad)?;
        let manifest = Self { frontier };
        if manifest.encode()? != bytes {
            return Err(bad());
        }
        Ok(manifest)
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<(), Error> {
        write_atomically(dir, MANIFEST_FILE, &self.encode()?)
    }
}

/// Reads stored records in order, from segment files named by their first
/// seq. A segment holds the records up to the next segment's first.
pub(crate) struct RecordCursor {
    dir: PathBuf,
    segments: Vec<u64>,
    current: Option<(usize, BufReader<File>)>,
    next: u64,
    /// Stop before this seq; `u64::MAX` to read to the last complete line.
    end: u64,
    /// Set at a torn final line: what follows it is not a record boundary.
    done: bool,
}

impl RecordCursor {
    pub(crate) fn new(dir: &Path, segments: Vec<u64>, from: u64, end: u64) -> Self {
        Self {
            dir: dir.to_owned(),
            segments,
            current: None,
            next: from,
            end,
            done: false,
        }
    }

    /// Reads the next record into `line` (without its newline) and returns
    /// its seq; `None` at the end or at a torn final line.
    pub(crate) fn next_into(&mut self, line: &mut Vec<u8>) -> Result<Option<u64>, Error> {
        if self.next >= self.end || self.done {
            return Ok(None);
        }
        let Some(want) = segment_of(&self.segments, self.next) else {
            return Err(corrupt(&format!(
                "record {} is not in any segment",
                self.next
            )));
        };
        let last = want + 1 == self.segments.len();
        let reader = match &mut self.current {
            Some((at, reader)) if *at == want => reader,
            _ => {
                let first = self.segments[want];
                let file = File::open(log_path(&self.dir, first))?;
                let mut reader = BufReader::with_capacity(1 << 20, file);
                let wanted = self.next - first;
                if skip_lines(&mut reader, wanted)? < wanted {
                    if last && self.end == u64::MAX {
                        // Asked for records past the end: there are none yet.
                        self.done = true;
                        return Ok(None);
                    }
                    return Err(corrupt(&format!("record {} is missing", self.next)));
                }
                &mut self.current.insert((want, reader)).1
            }
        };
        line.clear();
        reader.read_until(b'\n', line)?;
        if line.pop() != Some(b'\n') {
            // A torn write, or the writer is mid-line: either way not a record.
            if last && self.end == u64::MAX {
                self.done = true;
                return Ok(None);
            }
            return Err(corrupt(&format!("record {} is missing", self.next)));
        }
        let seq = self.next;
        self.next += 1;
        Ok(Some(seq))
    }
}

/// Skips up to `lines` complete lines; returns how many it skipped.
fn skip_lines(reader: &mut impl BufRead, lines: u64) -> Result<u64, Error> {
    let mut skipped = 0;
    while skipped < lines {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let mut used = buf.len();
        for (at, _) in buf.iter().enumerate().filter(|(_, b)| **b == b'\n') {
            skipped += 1;
            if skipped == lines {
                used = at + 1;
                break;
            }
        }
        reader.consume(used);
    }
    Ok(skipped)
}

/// Node hashes read from the derived files, for proofs and recovery. Nodes
/// wholly inside a pruned prefix come from the manifest's frontier (the only
/// ones there that a proof about the remaining records can need); nodes
/// straddling it are recomputed from their children.
pub(crate) struct DiskNodes<'a> {
    dir: &'a Path,
    pruned: &'a Frontier,
    segments: &'a [u64],
    /// Nodes must lie within `[0, limit)`.
    limit: u64,
    files: HashMap<PathBuf, File>,
    /// Each level file's first node index, from its header.
    bases: HashMap<u32, u64>,
}

impl<'a> DiskNodes<'a> {
    pub(crate) fn new(
        dir: &'a Path,
        pruned: &'a Frontier,
        segments: &'a [u64],
        limit: u64,
    ) -> Self {
        Self {
            dir,
            pruned,
            segments,
            limit,
            files: HashMap::new(),
            bases: HashMap::new(),
        }
    }

    fn read_at(&mut self, path: PathBuf, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let file = match self.files.entry(path) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let file = File::open(entry.key())?;
                entry.insert(file)
            }
        };
        file.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == IoKind::UnexpectedEof {
                corrupt("a derived hash file is shorter than the log")
            } else {
                e.into()
            }
        })
    }

    /// The leaf hashes of records `[start, end)`.
    pub(crate) fn leaves(&mut self, start: u64, end: u64) -> Result<Vec<[u8; 32]>, Error> {
        let mut out = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
        let mut at = start;
        while at < end {
            let index = segment_of(self.segments, at)
                .ok_or_else(|| corrupt(&format!("record {at} is not in any segment")))?;
            let first = self.segments[index];
            let stop = self
                .segments
                .get(index + 1)
                .map_or(end, |&next| next.min(end));
            let mut buf = vec![0u8; usize::try_from((stop - at) * HASH_LEN).unwrap_or(0)];
            self.read_at(
                hashes_path(self.dir, first),
                (at - first) * HASH_LEN,
                &mut buf,
            )?;
            out.extend(
                buf.chunks_exact(32)
                    .filter_map(|c| <[u8; 32]>::try_from(c).ok()),
            );
            at = stop;
        }
        Ok(out)
    }
}

impl NodeSource for DiskNodes<'_> {
    fn node(&mut self, level: u32, index: u64) -> Result<[u8; 32], Error> {
        let (start, end) = subtree_range(level, index)?;
        if end > self.limit {
            return Err(ErrorKind::BadRequest("beyond the durable log".into()).into());
        }
        let pruned = self.pruned.size();
        if end <= pruned {
            return Frontier::positions(pruned)
                .zip(self.pruned.nodes())
                .find(|(at, _)| *at == (level, index))
                .map(|(_, hash)| *hash)
                .ok_or_else(|| ErrorKind::BadRequest("those records were pruned".into()).into());
        }
        if start < pruned {
            // Straddles the pruned point; level >= 1 since a leaf cannot.
            let left = self.node(level - 1, index * 2)?;
            let right = self.node(level - 1, index * 2 + 1)?;
            return Ok(node_hash(&left, &right));
        }
        if level >= STORED_LEVEL {
            // The header, not the manifest: a prune being planned has not
            // cut the level files yet.
            let base = match self.bases.get(&level) {
                Some(&base) => base,
                None => {
                    let mut header = [0u8; LEVEL_HEADER as usize];
                    self.read_at(level_path(self.dir, level), 0, &mut header)?;
                    let base = u64::from_le_bytes(header);
                    self.bases.insert(level, base);
                    base
                }
            };
            if index < base {
                return Err(corrupt("a tree level file starts after the node asked for"));
            }
            let mut hash = [0u8; 32];
            self.read_at(
                level_path(self.dir, level),
                LEVEL_HEADER + (index - base) * HASH_LEN,
                &mut hash,
            )?;
            return Ok(hash);
        }
        Ok(perfect_root(self.leaves(start, end)?))
    }
}

/// The level files being appended to, with the nodes not yet written.
pub(crate) struct LevelFiles {
    dir: PathBuf,
    pruned: u64,
    files: Vec<Option<File>>,
    pending: Vec<Vec<u8>>,
    /// Levels written since their last sync, one bit each.
    unsynced: u64,
}

impl LevelFiles {
    pub(crate) fn new(dir: &Path, pruned: u64) -> Self {
        Self {
            dir: dir.to_owned(),
            pruned,
            files: (0..64).map(|_| None).collect(),
            pending: (0..64).map(|_| Vec::new()).collect(),
            unsynced: 0,
        }
    }

    /// The base index each existing level file declares, by level.
    pub(crate) fn stored_bases(dir: &Path) -> Result<Vec<(u32, Option<u64>, u64)>, Error> {
        let mut out = Vec::new();
        for level in STORED_LEVEL..64 {
            let path = level_path(dir, level);
            let mut file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == IoKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let len = file.metadata()?.len();
            let mut header = [0u8; LEVEL_HEADER as usize];
            let base = match file.read_exact(&mut header) {
                Ok(()) => Some(u64::from_le_bytes(header)),
                Err(e) if e.kind() == IoKind::UnexpectedEof => None,
                Err(e) => return Err(e.into()),
            };
            out.push((level, base, len));
        }
        Ok(out)
    }

    /// Queues a node completed by an append.
    pub(crate) fn push(&mut self, level: u32, hash: &[u8; 32]) {
        if let Some(pending) = self.pending.get_mut(level as usize) {
            pending.extend_from_slice(hash);
        }
    }

    fn file(&mut self, level: u32) -> Result<&mut File, Error> {
        let slot = &mut self.files[level as usize];
        if let Some(file) = slot {
            return Ok(file);
        }
        let path = level_path(&self.dir, level);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        if file.metadata()?.len() == 0 {
            file.write_all(&(self.pruned >> level).to_le_bytes())?;
            file.sync_data()?;
            sync_dir(&tree_dir(&self.dir))?;
        }
        Ok(slot.insert(file))
    }

    /// Writes the queued nodes.
    pub(crate) fn write_pending(&mut self) -> Result<(), Error> {
        for level in STORED_LEVEL..64 {
            if self.pending[level as usize].is_empty() {
                continue;
            }
            let pending = std::mem::take(&mut self.pending[level as usize]);
            self.file(level)?.write_all(&pending)?;
            self.pending[level as usize] = pending;
            self.pending[level as usize].clear();
            self.unsynced |= 1 << level;
        }
        Ok(())
    }

    /// Syncs every level file written since the last sync.
    pub(crate) fn sync(&mut self) -> Result<(), Error> {
        for level in STORED_LEVEL..64 {
            if self.unsynced & (1 << level) != 0
                && let Some(file) = &self.files[level as usize]
            {
                file.sync_data()?;
            }
        }
        self.unsynced = 0;
        Ok(())
    }

    /// Cuts every level file back to the nodes of the first `size` records.
    pub(crate) fn truncate_to(&mut self, size: u64) -> Result<(), Error> {
        for level in STORED_LEVEL..64 {
            let path = level_path(&self.dir, level);
            let keep = LEVEL_HEADER + ((size >> level) - (self.pruned >> level)) * HASH_LEN;
            match fs::metadata(&path) {
                Ok(meta) if meta.len() > keep => {
                    let file = OpenOptions::new().write(true).open(&path)?;
                    file.set_len(keep)?;
                    file.sync_data()?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == IoKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            self.files[level as usize] = None;
        }
        Ok(())
    }

    /// Removes every level file, for a rebuild from the records.
    pub(crate) fn remove_all(&mut self) -> Result<(), Error> {
        for level in STORED_LEVEL..64 {
            self.files[level as usize] = None;
            match fs::remove_file(level_path(&self.dir, level)) {
                Ok(()) => {}
                Err(e) if e.kind() == IoKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        sync_dir(&tree_dir(&self.dir))
    }

    /// After pruning to `pruned`: drops the nodes lying wholly before it
    /// from every level file (through a synced copy and a rename).
    pub(crate) fn rebase(&mut self, pruned: u64) -> Result<(), Error> {
        self.write_pending()?;
        for (level, base, _) in Self::stored_bases(&self.dir)? {
            let new_base = pruned >> level;
            let Some(base) = base.filter(|&base| base <= new_base) else {
                return Err(corrupt(&format!(
                    "tree level {level} does not start where the log does"
                )));
            };
            if base == new_base {
                continue;
            }
            let path = level_path(&self.dir, level);
            let bytes = fs::read(&path)?;
            let skip =
                usize::try_from(LEVEL_HEADER + (new_base - base) * HASH_LEN).unwrap_or(usize::MAX);
            let tail = bytes.get(skip..).unwrap_or_default();
            let tmp = path.with_extension("tmp");
            let mut file = File::create(&tmp)?;
            file.write_all(&new_base.to_le_bytes())?;
            file.write_all(tail)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            self.files[level as usize] = None;
        }
        sync_dir(&tree_dir(&self.dir))?;
        self.pruned = pruned;
        Ok(())
    }
}

pub(crate) fn corrupt(what: &str) -> Error {
    ErrorKind::Corrupt(what.to_owned()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_strictly() {
        assert_eq!(
            parse_segment_name("00000000000000000064.log"),
            Some(SegmentFile::Log(64))
        );
        assert_eq!(
            parse_segment_name("00000000000000000064.hashes"),
            Some(SegmentFile::Hashes(64))
        );
        for bad in [
            "64.log",
            "0000000000000000006a.log",
            "00000000000000000064.log.tmp",
            "x",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
        assert_eq!(parse_level_name("level-06"), Some(6));
        assert_eq!(parse_level_name("level-05"), None);
        assert_eq!(parse_level_name("level-6"), None);
        assert_eq!(parse_level_name("level-64"), None);
    }

    #[test]
    fn segments_are_found_by_seq() {
        let segments = [10, 20, 35];
        for (seq, want) in [
            (9, None),
            (10, Some(0)),
            (19, Some(0)),
            (20, Some(1)),
            (99, Some(2)),
        ] {
            assert_eq!(segment_of(&segments, seq), want, "{seq}");
        }
    }

    #[test]
    fn torn_lines_are_not_counted() {
        assert_eq!(complete_lines(b""), (0, 0));
        assert_eq!(complete_lines(b"a\nb\nc"), (2, 4));
        assert_eq!(complete_lines(b"a\nb\n"), (2, 4));
    }
}
