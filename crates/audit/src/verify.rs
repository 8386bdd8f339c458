//! Verification: recomputing the whole log from its stored bytes and
//! comparing it with every signed checkpoint.
//!
//! [`verify`] reads everything under the log directory except `LOCK` and
//! the sealed key, and trusts none of it:
//!
//! - every record must parse and carry its own position as `seq`, so a
//!   deleted, inserted or reordered line is named where it happened;
//! - every record's leaf hash is recomputed and compared with the hash the
//!   writer stored beside it, so an edited record is named too (unless the
//!   editor also rewrote that hash, in which case the root comparison below
//!   still fails);
//! - segment names must follow on from each other and from the pruned point;
//! - every checkpoint must verify with `checkpoint.vkey`, carry the next
//!   number (so none was removed from the middle), keep one origin and never
//!   shrink, and its root must equal the root recomputed from the records
//!   (and, after pruning, the manifest's frontier). Roots recomputed from one
//!   sequence of records are consistent with each other by construction;
//! - the derived `.hashes` and `tree/level-NN` files are recomputed and
//!   compared byte for byte; only entries after the latest checkpoint may
//!   be missing (a crash may have lost them; reopening rebuilds them);
//! - an external checkpoint, kept elsewhere, must verify with the same key,
//!   and the log must still hold its tree; if it is one of this log's
//!   numbered checkpoints, the stored copy must still be there.
//!
//! An incomplete last line is a torn write, not tampering: it is reported
//! in [`VerifyReport::torn_tail`]. What cannot be found from inside the
//! directory: removing the newest checkpoints and records together, or the
//! newest checkpoints alone at a line boundary. An external checkpoint (or
//! the store's anchor) catches both.
//!
//! Verification runs beside a writing server: it reads the checkpoints
//! before the records, and is lenient only about what a writer may be
//! adding at that moment (when `LOCK` is held).

use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, ErrorKind as IoKind, Read};
use std::path::Path;

use crate::event::AuditEvent;
use crate::layout::{
    HASH_LEN, LEVEL_HEADER, LOCK_FILE, MANIFEST_FILE, Manifest, SEGMENTS_DIR, STORED_LEVEL,
    SegmentFile, TREE_DIR, hashes_path, level_path, log_path, parse_level_name, parse_segment_name,
};
use crate::merkle::{Frontier, leaf_hash};
use crate::note::{
    CHECKPOINTS_FILE, Checkpoint, KEY_FILE, NoteVerifier, VKEY_FILE, decode_line, last_line,
    read_vkey,
};

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The log's size: the seq the next record gets, pruned records included.
    pub records: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// The latest checkpoint.
    pub latest: Option<Checkpoint>,
    /// Records after the latest checkpoint, which no signature covers yet.
    pub unchecked_tail: u64,
    /// Records removed by pruning (the log starts at this seq).
    pub pruned: u64,
    /// Bytes of an incomplete last line: a write in progress or cut short
    /// by a crash, never acknowledged, removed when the log is next opened.
    pub torn_tail: u64,
}

/// Why verification failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure {
    /// The first record found deleted, inserted, moved or edited, when the
    /// failure points at one.
    pub first_bad_record: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(seq) = self.first_bad_record {
            write!(f, " (first bad record: {seq})")?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyFailure {}

fn fail(message: impl Into<String>) -> VerifyFailure {
    VerifyFailure {
        first_bad_record: None,
        message: message.into(),
    }
}

fn fail_at(seq: u64, message: impl Into<String>) -> VerifyFailure {
    VerifyFailure {
        first_bad_record: Some(seq),
        message: message.into(),
    }
}

fn io(what: &str, error: impl fmt::Display) -> VerifyFailure {
    fail(format!("reading {what}: {error}"))
}

/// Read-only full check of the log in `dir` (see the module docs), and of
/// `external`, the text of a checkpoint note kept elsewhere, if given.
pub fn verify(dir: &Path, external: Option<&str>) -> Result<VerifyReport, VerifyFailure> {
    if !dir.is_dir() {
        return Err(fail(format!("there is no audit log at {}", dir.display())));
    }
    let live = writer_running(dir);
    check_entries(dir)?;
    let vkey = read_vkey(dir).map_err(|e| io(VKEY_FILE, e))?;
    let verifier = vkey
        .as_deref()
        .map(NoteVerifier::parse)
        .transpose()
        .map_err(|e| fail(format!("{VKEY_FILE}: {e}")))?;
    let manifest = Manifest::read(dir).map_err(|e| fail(format!("{MANIFEST_FILE}: {e}")))?;
    let pruned = manifest.pruned();

    // Checkpoints first: whatever they cover was on disk before them.
    let mut checkpoints = Checkpoints::open(dir, verifier.clone(), live)?;
    let latest_size = checkpoints.latest.as_ref().map_or(0, |c| c.size);
    let external = match external {
        None => None,
        Some(note) => {
            let verifier = verifier.as_ref().ok_or_else(|| {
                fail(format!(
                    "{VKEY_FILE} is missing: nothing to check the external checkpoint with"
                ))
            })?;
            // Kept in a file, a note may have gained a trailing blank line.
            let note = format!("{}\n", note.trim_end_matches(['\n', '\r', ' ']));
            Some(verifier.checkpoint(&note).map_err(|e| {
                fail(format!(
                    "the external checkpoint does not verify with {VKEY_FILE}: {e}"
                ))
            })?)
        }
    };
    checkpoints.external = external
        .as_ref()
        .and_then(|c| Some((c.number()?, c.text().to_owned())));
    checkpoints.advance()?;

    let segments = list_segment_files(dir)?;
    let levels = LevelChecks::open(dir, pruned, latest_size, live)?;
    let mut walk = Walk {
        frontier: manifest.frontier.clone(),
        checkpoints,
        levels,
        external: external.as_ref(),
        external_checked: false,
        checked_size: pruned,
    };
    walk.at_size()?;

    match segments.first() {
        Some(&first) if first > pruned => {
            return Err(fail_at(
                pruned,
                format!(
                    "records {pruned} to {} are missing: no segment holds them",
                    first - 1
                ),
            ));
        }
        Some(&first) if first < pruned => {
            return Err(fail(format!(
                "segment {first} lies before the pruned point {pruned}: an interrupted prune (opening the log finishes it)"
            )));
        }
        _ => {}
    }
    let mut torn_tail = 0;
    for (index, &first) in segments.iter().enumerate() {
        let next = segments.get(index + 1).copied();
        torn_tail = walk.segment(dir, first, next, latest_size, live)?;
    }

    let size = walk.frontier.size();
    walk.levels.finish(size)?;
    if let Some(checkpoint) = &walk.checkpoints.pending {
        return Err(fail_at(
            size,
            format!(
                "checkpoint {} covers {} records but the log holds only {size}: records were removed",
                walk.checkpoints.count - 1,
                checkpoint.size
            ),
        ));
    }
    if let Some(external) = &external {
        if external.size > size {
            return Err(fail_at(
                size,
                format!(
                    "the external checkpoint covers {} records but the log holds only {size}: records were removed",
                    external.size
                ),
            ));
        }
        if !walk.external_checked {
            return Err(fail(format!(
                "the external checkpoint covers {} records, since pruned, and is not among the stored checkpoints",
                external.size
            )));
        }
        if let Some(number) = external.number()
            && !walk.checkpoints.seen_external
        {
            return Err(fail(format!(
                "the external checkpoint is checkpoint {number}, which {CHECKPOINTS_FILE} no longer holds: checkpoints were removed"
            )));
        }
    }
    let latest = walk.checkpoints.latest.clone();
    let signed = latest.as_ref().map_or(pruned, |c| c.size.max(pruned));
    Ok(VerifyReport {
        records: size,
        checkpoints: walk.checkpoints.count,
        unchecked_tail: size.saturating_sub(signed),
        latest,
        pruned,
        torn_tail,
    })
}

/// Whether a writer holds the log's lock right now.
fn writer_running(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(LOCK_FILE)) else {
        return false;
    };
    matches!(
        file.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    )
}

/// Nothing may lie in the directory that verification does not check.
fn check_entries(dir: &Path) -> Result<(), VerifyFailure> {
    let known = [
        LOCK_FILE,
        KEY_FILE,
        VKEY_FILE,
        CHECKPOINTS_FILE,
        MANIFEST_FILE,
        SEGMENTS_DIR,
        TREE_DIR,
    ];
    for entry in fs::read_dir(dir).map_err(|e| io("the log directory", e))? {
        let entry = entry.map_err(|e| io("the log directory", e))?;
        let name = entry.file_name();
        if !known.iter().any(|k| name == **k) {
            return Err(fail(format!(
                "{} does not belong in the audit log directory",
                entry.path().display()
            )));
        }
    }
    Ok(())
}

/// The segments' first seqs, checking every file in `segments/`.
fn list_segment_files(dir: &Path) -> Result<Vec<u64>, VerifyFailure> {
    let folder = dir.join(SEGMENTS_DIR);
    let entries = match fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == IoKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("the segments", e)),
    };
    let (mut logs, mut hashes) = (Vec::new(), Vec::new());
    for entry in entries {
        let entry = entry.map_err(|e| io("the segments", e))?;
        match entry.file_name().to_str().and_then(parse_segment_name) {
            Some(SegmentFile::Log(first)) => logs.push(first),
            Some(SegmentFile::Hashes(first)) => hashes.push(first),
            None => {
                return Err(fail(format!(
                    "{} is not a segment file",
                    entry.path().display()
                )));
            }
        }
    }
    logs.sort_unstable();
    if let Some(orphan) = hashes
        .iter()
        .find(|first| logs.binary_search(first).is_err())
    {
        return Err(fail_at(
            *orphan,
            format!("segment {orphan} is missing: its hash file is there but its records are not"),
        ));
    }
    Ok(logs)
}

/// A record must parse and carry its position.
fn check_record(line: &[u8], seq: u64) -> Result<(), VerifyFailure> {
    let event: AuditEvent = serde_json::from_slice(line).map_err(|_| {
        fail_at(
            seq,
            format!("the record at position {seq} is not an audit event"),
        )
    })?;
    match event.seq {
        found if found == seq => Ok(()),
        found if found > seq => Err(fail_at(
            seq,
            format!(
                "the record at position {seq} is record {found}: records were deleted or moved"
            ),
        )),
        found => Err(fail_at(
            seq,
            format!(
                "the record at position {seq} is record {found}: a record was inserted or moved"
            ),
        )),
    }
}

/// The records read so far, as a frontier, and what must match it.
struct Walk<'a> {
    frontier: Frontier,
    checkpoints: Checkpoints,
    levels: LevelChecks,
    external: Option<&'a Checkpoint>,
    external_checked: bool,
    /// The size of the last checkpoint whose root matched.
    checked_size: u64,
}

impl Walk<'_> {
    /// Compares every checkpoint of the current size with the current root.
    fn at_size(&mut self) -> Result<(), VerifyFailure> {
        let size = self.frontier.size();
        let mut root = None;
        while let Some(checkpoint) = &self.checkpoints.pending {
            if checkpoint.size > size {
                break;
            }
            if checkpoint.size == size {
                let root = *root.get_or_insert_with(|| self.frontier.root());
                if checkpoint.root != root {
                    return Err(fail(format!(
                        "checkpoint {} does not match the records: one of records {} to {} was changed",
                        self.checkpoints.count - 1,
                        self.checked_size,
                        size.saturating_sub(1)
                    )));
                }
                self.checked_size = size;
            } else if self
                .external
                .is_some_and(|e| e.size == checkpoint.size && e.root == checkpoint.root)
            {
                // Pruned since: a stored checkpoint is all that is left to
                // compare the external one with.
                self.external_checked = true;
            }
            self.checkpoints.advance()?;
        }
        if let Some(external) = self.external
            && external.size == size
        {
            let root = *root.get_or_insert_with(|| self.frontier.root());
            if external.root != root {
                return Err(fail(format!(
                    "the external checkpoint does not match the records: one of records 0 to {} was changed",
                    size.saturating_sub(1)
                )));
            }
            self.external_checked = true;
        }
        Ok(())
    }

    /// Reads one segment's records; returns the length of a torn last line.
    fn segment(
        &mut self,
        dir: &Path,
        first: u64,
        next: Option<u64>,
        latest_size: u64,
        live: bool,
    ) -> Result<u64, VerifyFailure> {
        let position = self.frontier.size();
        if position != first {
            return Err(fail_at(
                position,
                format!(
                    "records {position} to {} are missing: segment {first} follows one that ends at {position}",
                    first.saturating_sub(1)
                ),
            ));
        }
        let hashes = match fs::read(hashes_path(dir, first)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == IoKind::NotFound => Vec::new(),
            Err(e) => return Err(io("a leaf hash file", e)),
        };
        let file = File::open(log_path(dir, first)).map_err(|e| io("a segment", e))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::new();
        let mut torn = 0;
        loop {
            line.clear();
            reader
                .read_until(b'\n', &mut line)
                .map_err(|e| io("a segment", e))?;
            if line.is_empty() {
                break;
            }
            let seq = self.frontier.size();
            if line.last() != Some(&b'\n') {
                if next.is_none() {
                    torn = line.len() as u64;
                    break;
                }
                return Err(fail_at(
                    seq,
                    format!("segment {first} ends in an incomplete record"),
                ));
            }
            line.pop();
            if let Some(next) = next
                && seq >= next
            {
                return Err(fail_at(
                    seq,
                    format!(
                        "segment {first} holds more records than fit before segment {next}: a record was inserted"
                    ),
                ));
            }
            check_record(&line, seq)?;
            let leaf = leaf_hash(&line);
            let at = usize::try_from((seq - first) * HASH_LEN).unwrap_or(usize::MAX);
            match hashes.get(at..at.saturating_add(32)) {
                Some(stored) if stored == leaf => {}
                Some(_) => {
                    return Err(fail_at(
                        seq,
                        format!(
                            "record {seq} is not what was written: its hash differs from the one stored when it was appended"
                        ),
                    ));
                }
                None if seq < latest_size => {
                    return Err(fail_at(
                        seq,
                        format!(
                            "the leaf hash of record {seq} is missing from segment {first}'s hash file"
                        ),
                    ));
                }
                None => {}
            }
            let mut mismatch = None;
            let levels = &mut self.levels;
            self.frontier.push(leaf, |level, index, hash| {
                if level >= STORED_LEVEL && mismatch.is_none() {
                    mismatch = levels.check(level, index, hash).err();
                }
            });
            if let Some(failure) = mismatch {
                return Err(failure);
            }
            self.at_size()?;
        }
        let end = self.frontier.size();
        if let Some(next) = next
            && end < next
        {
            return Err(fail_at(
                end,
                format!(
                    "records {end} to {} are missing from segment {first}",
                    next - 1
                ),
            ));
        }
        let stored = hashes.len() as u64 / HASH_LEN;
        let partial = !(hashes.len() as u64).is_multiple_of(HASH_LEN);
        let last = next.is_none();
        if stored > end - first && !(last && live) {
            return Err(fail(format!(
                "segment {first}'s hash file holds more hashes than the segment holds records"
            )));
        }
        if partial && !(last && (live || end > latest_size)) {
            return Err(fail(format!(
                "segment {first}'s hash file ends in a partial hash"
            )));
        }
        Ok(torn)
    }
}

/// The stream of stored checkpoints, each checked as it is read.
struct Checkpoints {
    reader: Option<BufReader<std::io::Take<File>>>,
    verifier: Option<NoteVerifier>,
    /// The next checkpoint not yet compared with the records.
    pending: Option<Checkpoint>,
    /// The last checkpoint in the file.
    latest: Option<Checkpoint>,
    /// Checkpoints read so far.
    count: u64,
    last_size: u64,
    origin: Option<String>,
    /// The external checkpoint's number and text, to find its stored copy.
    external: Option<(u64, String)>,
    seen_external: bool,
}

impl Checkpoints {
    fn open(dir: &Path, verifier: Option<NoteVerifier>, live: bool) -> Result<Self, VerifyFailure> {
        let path = dir.join(CHECKPOINTS_FILE);
        let file = match File::open(&path) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == IoKind::NotFound => None,
            Err(e) => return Err(io(CHECKPOINTS_FILE, e)),
        };
        let len = match &file {
            Some(file) => file.metadata().map_err(|e| io(CHECKPOINTS_FILE, e))?.len(),
            None => 0,
        };
        // What the writer appends from now on is not looked at.
        let (last, complete) = match last_line(&path, len).map_err(|e| io(CHECKPOINTS_FILE, e))? {
            Some((line, complete)) => (Some(line), complete),
            None => (None, 0),
        };
        if complete < len && !live {
            // A checkpoint is one small write; a kill cannot tear it.
            return Err(fail(format!(
                "{CHECKPOINTS_FILE} ends in an incomplete line: it was cut short"
            )));
        }
        let latest = match last {
            None => None,
            Some(line) => {
                let verifier = verifier.as_ref().ok_or_else(|| {
                    fail(format!("{VKEY_FILE} is missing but there are checkpoints"))
                })?;
                let note =
                    decode_line(&line).map_err(|e| fail(format!("{CHECKPOINTS_FILE}: {e}")))?;
                Some(verifier.checkpoint(&note).map_err(|e| {
                    fail(format!(
                        "the latest checkpoint does not verify with {VKEY_FILE}: {e}"
                    ))
                })?)
            }
        };
        Ok(Self {
            reader: file.map(|f| BufReader::new(f.take(complete))),
            verifier,
            pending: None,
            latest,
            count: 0,
            last_size: 0,
            origin: None,
            external: None,
            seen_external: false,
        })
    }

    fn advance(&mut self) -> Result<(), VerifyFailure> {
        self.pending = self.read()?;
        Ok(())
    }

    /// Reads and checks the next stored checkpoint.
    fn read(&mut self) -> Result<Option<Checkpoint>, VerifyFailure> {
        let Some(reader) = &mut self.reader else {
            return Ok(None);
        };
        let mut line = Vec::new();
        reader
            .read_until(b'\n', &mut line)
            .map_err(|e| io(CHECKPOINTS_FILE, e))?;
        if line.pop() != Some(b'\n') {
            return Ok(None);
        }
        let number = self.count;
        let bad = |why: String| fail(format!("checkpoint {number} in {CHECKPOINTS_FILE} {why}"));
        let note = decode_line(&line).map_err(|e| bad(format!("is unreadable: {e}")))?;
        let verifier = self
            .verifier
            .as_ref()
            .ok_or_else(|| fail(format!("{VKEY_FILE} is missing but there are checkpoints")))?;
        let checkpoint = verifier
            .checkpoint(&note)
            .map_err(|e| bad(format!("does not verify with {VKEY_FILE}: {e}")))?;
        match checkpoint.number() {
            Some(found) if found == number => {}
            Some(found) if found > number => {
                return Err(bad(format!(
                    "is numbered {found}: checkpoints {number} to {} were removed",
                    found - 1
                )));
            }
            Some(found) => {
                return Err(bad(format!(
                    "is numbered {found}: checkpoints were moved or copied"
                )));
            }
            None => return Err(bad("has no checkpoint number".into())),
        }
        if checkpoint.size < self.last_size {
            return Err(bad(format!(
                "covers {} records, fewer than the checkpoint before it ({})",
                checkpoint.size, self.last_size
            )));
        }
        match &self.origin {
            Some(origin) if *origin != checkpoint.origin => {
                return Err(bad(format!(
                    "names the log {:?}, not {origin:?}",
                    checkpoint.origin
                )));
            }
            Some(_) => {}
            None => self.origin = Some(checkpoint.origin.clone()),
        }
        if let Some((external, text)) = &self.external
            && *external == number
        {
            if checkpoint.text() != text {
                return Err(fail(format!(
                    "the external checkpoint {number} differs from the stored checkpoint {number}: the log signed two different trees under one number"
                )));
            }
            self.seen_external = true;
        }
        self.count += 1;
        self.last_size = checkpoint.size;
        Ok(Some(checkpoint))
    }
}

/// The record after the last one under node `index` at `level`.
fn node_end(level: u32, index: u64) -> u128 {
    (u128::from(index) + 1) << level
}

/// The level files, compared node by node with the recomputed tree.
struct LevelChecks {
    levels: Vec<Option<LevelCheck>>,
    latest_size: u64,
    live: bool,
}

struct LevelCheck {
    reader: BufReader<File>,
    base: u64,
    /// Complete nodes stored.
    stored: u64,
    partial: bool,
    /// Nodes compared so far.
    compared: u64,
}

impl LevelChecks {
    fn open(dir: &Path, pruned: u64, latest_size: u64, live: bool) -> Result<Self, VerifyFailure> {
        let mut levels: Vec<Option<LevelCheck>> = (0..64).map(|_| None).collect();
        let folder = dir.join(TREE_DIR);
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries.collect::<Vec<_>>(),
            Err(e) if e.kind() == IoKind::NotFound => Vec::new(),
            Err(e) => return Err(io("the tree", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io("the tree", e))?;
            let Some(level) = entry.file_name().to_str().and_then(parse_level_name) else {
                return Err(fail(format!(
                    "{} is not a tree file",
                    entry.path().display()
                )));
            };
            let path = level_path(dir, level);
            let mut file = File::open(&path).map_err(|e| io("the tree", e))?;
            let len = file.metadata().map_err(|e| io("the tree", e))?.len();
            if len == 0 {
                continue; // Created, then a crash before its header: holds nothing.
            }
            let mut header = [0u8; LEVEL_HEADER as usize];
            file.read_exact(&mut header)
                .map_err(|_| fail(format!("{} has no header", path.display())))?;
            let base = u64::from_le_bytes(header);
            if base != pruned >> level {
                return Err(fail(format!(
                    "{} starts at node {base}, not at {} where the log starts",
                    path.display(),
                    pruned >> level
                )));
            }
            levels[level as usize] = Some(LevelCheck {
                reader: BufReader::new(file),
                base,
                stored: (len - LEVEL_HEADER) / HASH_LEN,
                partial: !(len - LEVEL_HEADER).is_multiple_of(HASH_LEN),
                compared: 0,
            });
        }
        Ok(Self {
            levels,
            latest_size,
            live,
        })
    }

    /// Compares a node completed by the records with the stored one.
    fn check(&mut self, level: u32, index: u64, hash: &[u8; 32]) -> Result<(), VerifyFailure> {
        let required = node_end(level, index) <= u128::from(self.latest_size);
        let Some(check) = self.levels.get_mut(level as usize).and_then(Option::as_mut) else {
            if required {
                return Err(fail(format!("tree level {level} is missing")));
            }
            return Ok(());
        };
        let at = index - check.base;
        if at >= check.stored {
            if required {
                return Err(fail(format!("tree level {level} is missing node {index}")));
            }
            return Ok(());
        }
        if at != check.compared {
            return Err(fail(format!(
                "tree level {level} is out of step with the records"
            )));
        }
        let mut stored = [0u8; 32];
        check
            .reader
            .read_exact(&mut stored)
            .map_err(|e| io("the tree", e))?;
        check.compared += 1;
        if stored != *hash {
            return Err(fail(format!(
                "tree level {level} node {index} differs from the one the records give: the tree file was edited"
            )));
        }
        Ok(())
    }

    /// Nothing may be stored beyond the records, except what a running
    /// writer is adding.
    fn finish(&self, size: u64) -> Result<(), VerifyFailure> {
        for (level, check) in self.levels.iter().enumerate() {
            let Some(check) = check else { continue };
            let expected = (size >> level) - check.base;
            if check.stored > expected && !self.live {
                return Err(fail(format!(
                    "tree level {level} holds more nodes than the records give"
                )));
            }
            let partial = node_end(level as u32, check.base + check.stored);
            if check.partial && !self.live && partial <= u128::from(self.latest_size) {
                return Err(fail(format!("tree level {level} ends in a partial node")));
            }
        }
        Ok(())
    }
}
