//! Reading the log: search, export and sinks, in any process, without the
//! lock and while the server appends.
//!
//! A record is readable once its line is complete; an incomplete last line
//! (a write in progress, or a crash's torn write) is not a record and is
//! skipped. The reader trusts segment names for positions and checks
//! nothing else: [`crate::verify`] is the check.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::event::AuditEvent;
use crate::layout::{self, RecordCursor, list_segments, log_path};
use crate::{Error, ErrorKind};

/// A read-only view of a log directory.
#[derive(Debug)]
pub struct LogReader {
    dir: PathBuf,
    segments: Vec<u64>,
    size: OnceLock<u64>,
}

/// One stored record: its position and its exact bytes (the Merkle leaf),
/// without the line's newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record's position in the log.
    pub seq: u64,
    /// The record's JSON, exactly as stored.
    pub bytes: Vec<u8>,
}

impl StoredRecord {
    /// Parses the record.
    pub fn event(&self) -> Result<AuditEvent, Error> {
        serde_json::from_slice(&self.bytes).map_err(|e| {
            ErrorKind::Corrupt(format!("record {} is not an audit event: {e}", self.seq)).into()
        })
    }
}

impl LogReader {
    /// Opens the log in `dir` for reading. A missing or empty directory is
    /// an empty log.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        Ok(Self {
            dir: dir.to_owned(),
            segments: list_segments(dir)?,
            size: OnceLock::new(),
        })
    }

    /// The seq of the oldest record kept: 0 unless the log was pruned.
    pub fn first(&self) -> u64 {
        self.segments.first().copied().unwrap_or(0)
    }

    /// How many records the log holds (complete lines only, pruned ones
    /// included), counted once, on the first call.
    pub fn size(&self) -> u64 {
        *self.size.get_or_init(|| {
            let Some(&last) = self.segments.last() else {
                return 0;
            };
            match layout::count_lines(&log_path(&self.dir, last)) {
                Ok((lines, _, _)) => last + lines,
                // The segment was pruned or is unreadable: nothing past its start.
                Err(_) => last,
            }
        })
    }

    /// The records from seq `from` (or the oldest kept, if later) to the
    /// last complete line, in order. Reads lazily; records appended after
    /// [`LogReader::open`] are included if their segment was known then.
    pub fn records(&self, from: u64) -> impl Iterator<Item = Result<StoredRecord, Error>> + '_ {
        let mut cursor = RecordCursor::new(
            &self.dir,
            self.segments.clone(),
            from.max(self.first()),
            u64::MAX,
        );
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed {
                return None;
            }
            let mut bytes = Vec::new();
            match cursor.next_into(&mut bytes) {
                Ok(Some(seq)) => Some(Ok(StoredRecord { seq, bytes })),
                Ok(None) => None,
                Err(error) => {
                    failed = true;
                    Some(Err(error))
                }
            }
        })
    }
}
