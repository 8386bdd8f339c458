//! The writing side: one process holds the log open, callers enqueue events,
//! and a writer thread writes them in groups, each made durable with one
//! `fdatasync`.
//!
//! [`AuditLog::append`] serializes, numbers and hashes the events on the
//! caller's thread (callers run in parallel; the writer is one thread) and
//! hands them to the writer through a bounded queue. The writer takes all
//! that is queued, writes the records and then the hashes derived from
//! them, syncs, and only then resolves the receipts and publishes the
//! events to subscribers: a receipt that resolved is on disk. Appends that
//! arrive during a sync queue up and form the next group; while they keep
//! arriving, the writer also lets them gather for `group_delay`. The writer
//! also owns the checkpoints: one every `checkpoint_interval` when the log
//! grew, one at open for records a crash left unsigned, and a last one on
//! close; it syncs before it signs.
//!
//! Opening recovers from a crash: an incomplete last line was never
//! acknowledged and is cut off, and the derived hash files are trusted only
//! up to the latest checkpoint (they were synced before it was signed) and
//! recomputed from the records after it.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{ErrorKind as IoKind, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::event::AuditEvent;
use crate::layout::{
    self, DiskNodes, LOCK_FILE, LevelFiles, Manifest, RecordCursor, STORED_LEVEL, corrupt,
    hashes_path, list_segments, log_path, segment_of, segments_dir, tree_dir,
};
use crate::merkle::{self, Frontier, leaf_hash};
use crate::note::{
    CHECKPOINTS_FILE, Checkpoint, CheckpointSigner, NoteVerifier, decode_line, encode_line,
    last_line, sync_dir, valid_origin,
};
use crate::prune::{self, PrunePlan, PruneReport};
use crate::{Error, ErrorKind};

/// How every record's JSON starts once serialized with `seq` 0. `seq` is
/// the first field of [`AuditEvent`], so a record's bytes are this prefix
/// with the real number spliced in: callers serialize in parallel before
/// they know their numbers.
const SEQ0: &[u8] = b"{\"seq\":0,";
const SEQ_KEY: &[u8] = b"{\"seq\":";

/// An appending thread's serialization buffer.
#[derive(Default)]
struct Scratch {
    json: Vec<u8>,
    ends: Vec<usize>,
}

/// A larger buffer (from one huge append) is freed rather than kept.
const MAX_SCRATCH: usize = 4 << 20;

/// A group this large is written without waiting out the group delay.
const GROUP_RECORDS: u64 = 4096;

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

/// How the log is run.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The checkpoints' origin line: the log's name.
    pub origin: String,
    /// How often a checkpoint is signed while the log grows. Zero signs
    /// only at open, on [`AuditLog::checkpoint`] and on close.
    pub checkpoint_interval: Duration,
    /// Segment files are rotated once they reach this size.
    pub segment_bytes: u64,
    /// How many events may wait for the writer before `append` blocks.
    pub queue_capacity: usize,
    /// While appends keep arriving, how long the writer gathers them into
    /// one group before writing, so one sync serves many callers. An idle
    /// log writes the first append at once. Zero writes each wake-up.
    pub group_delay: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            origin: "stormproof/audit".to_owned(),
            checkpoint_interval: Duration::from_secs(1),
            segment_bytes: 64 << 20,
            queue_capacity: 65_536,
            group_delay: Duration::from_micros(500),
        }
    }
}

/// The audit log, open for appending. Cheap to clone; the last clone
/// dropped closes it (prefer [`AuditLog::close`], which reports errors).
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<Result<(), Error>>>>,
    /// One prune at a time.
    pruning: Mutex<()>,
    /// The flock on `LOCK`, held until the log is closed.
    lock: Mutex<Option<File>>,
}

/// What the appenders, the writer and the readers of proofs share.
struct Shared {
    dir: PathBuf,
    queue: Mutex<Queue>,
    /// Wakes the writer.
    work: Condvar,
    /// Wakes appenders waiting for room.
    room: Condvar,
    capacity: u64,
    durable: AtomicU64,
    feed: broadcast::Sender<Arc<AuditEvent>>,
    layout: RwLock<Layout>,
    latest: Mutex<Option<Checkpoint>>,
}

/// Which records are where, for proofs.
struct Layout {
    pruned: Frontier,
    segments: Vec<u64>,
}

#[derive(Default)]
struct Queue {
    /// The next seq to hand out.
    next_seq: u64,
    /// The first seq the writer has not taken yet.
    next_write: u64,
    /// Batches ready to write, by first seq. Seqs are handed out under the
    /// lock but batches arrive once their caller has built them, so the
    /// writer takes only the run that follows on from `next_write`.
    ready: BTreeMap<u64, Batch>,
    /// Events numbered and not yet taken by the writer.
    queued: u64,
    commands: Vec<Command>,
    closing: bool,
    stopped: bool,
    /// The writer sleeps until an append wakes it. While it gathers a
    /// group it wakes on its own, so appends need not signal it.
    writer_idle: bool,
}

/// One `append` call's records, each line complete with its newline.
struct Batch {
    first: u64,
    bytes: Vec<u8>,
    /// Where each line ends in `bytes`.
    ends: Vec<usize>,
    leaves: Vec<[u8; 32]>,
    /// The events themselves, only when someone subscribes.
    events: Option<Vec<AuditEvent>>,
    slot: Arc<Slot>,
}

enum Command {
    Checkpoint(mpsc::Sender<Result<Checkpoint, Error>>),
    Prune(Box<PrunePlan>, mpsc::Sender<Result<PruneReport, Error>>),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere leaves the data as consistent as it was; the writer
    // never panics mid-update (the lints forbid it), so keep going.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes the exclusive lock on `dir/LOCK`, or fails with `Locked`.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, Error> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ErrorKind::Locked.into()),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

impl AuditLog {
    /// Opens (creating if needed) the log in `dir`: takes the exclusive lock
    /// (`Locked` if another process holds it), cuts off a torn last line,
    /// rebuilds the Merkle frontier, and starts the writer thread.
    pub fn open(dir: &Path, signer: CheckpointSigner, options: LogOptions) -> Result<Self, Error> {
        if !valid_origin(&options.origin) {
            return Err(
                ErrorKind::BadRequest("the origin must be one non-empty line".into()).into(),
            );
        }
        for sub in [dir.to_owned(), segments_dir(dir), tree_dir(dir)] {
            if !sub.is_dir() {
                fs::create_dir_all(&sub)?;
                if let Some(parent) = sub.parent() {
                    sync_dir(parent)?;
                }
            }
        }
        let lock_file = lock_dir(dir)?;
        remove_leftovers(dir)?;
        let verifier = signer.verifier();
        let manifest = Manifest::read(dir)?;
        let pruned = manifest.pruned();

        let (latest, next_number) = recover_checkpoints(dir, &verifier)?;
        let segments = recover_segments(dir, pruned)?;
        let Some(&last_first) = segments.last() else {
            return Err(corrupt("no segment after recovery"));
        };
        let size = last_first + repair_tail(&log_path(dir, last_first))?;
        if let Some(checkpoint) = &latest
            && checkpoint.size > size
        {
            return Err(corrupt(&format!(
                "checkpoint {} covers {} records but the log holds {size}: records were lost or removed",
                checkpoint.number().unwrap_or_default(),
                checkpoint.size
            )));
        }
        let (frontier, levels) = recover_derived(dir, &manifest, &segments, size, latest.as_ref())?;

        let segment = Segment::open(dir, last_first, size - last_first, options.segment_bytes)?;
        let (feed, _) = broadcast::channel(options.queue_capacity.clamp(1, 1 << 16));
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            queue: Mutex::new(Queue {
                next_seq: size,
                next_write: size,
                ..Queue::default()
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            capacity: options.queue_capacity.max(1) as u64,
            durable: AtomicU64::new(size),
            feed,
            layout: RwLock::new(Layout {
                pruned: manifest.frontier.clone(),
                segments,
            }),
            latest: Mutex::new(latest.clone()),
        });
        let unsigned = latest.as_ref().map_or(size > 0, |c| c.size < size);
        let writer = Writer {
            shared: shared.clone(),
            dir: dir.to_owned(),
            origin: options.origin,
            interval: options.checkpoint_interval,
            group_delay: options.group_delay,
            segment_bytes: options.segment_bytes,
            signer,
            frontier,
            segment,
            levels,
            checkpoints: None,
            latest,
            next_number,
            hashes: Vec::with_capacity(64 << 10),
        };
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(unsigned))?;
        tracing::info!(message = "audit log open", dir = %dir.display(), records = size);
        Ok(Self {
            inner: Arc::new(Handle {
                shared,
                writer: Mutex::new(Some(thread)),
                pruning: Mutex::new(()),
                lock: Mutex::new(Some(lock_file)),
            }),
        })
    }

    /// Numbers `events` consecutively (overwriting their `seq`), serializes
    /// each with `serde_json` (those bytes are the record and the Merkle
    /// leaf) and queues them for the writer. Blocks only while the queue is
    /// full. The receipt resolves once they are on disk.
    pub fn append(&self, mut events: Vec<AuditEvent>) -> Receipt {
        let (receipt, slot) = Receipt::new();
        let shared = &self.inner.shared;
        // Serialized before the seqs are known, with `seq` 0; the numbers
        // are spliced in below. Failing here leaves no gap in the seqs. The
        // buffer is the thread's own, reused from one append to the next.
        let mut scratch = SCRATCH.take();
        scratch.json.clear();
        scratch.ends.clear();
        for event in &mut events {
            event.seq = 0;
            let start = scratch.json.len();
            if let Err(error) = serde_json::to_writer(&mut scratch.json, event) {
                slot.resolve(Err(corrupt(&format!(
                    "an audit event does not serialize: {error}"
                ))));
                return receipt;
            }
            if !scratch.json[start..].starts_with(SEQ0) {
                slot.resolve(Err(corrupt("an audit event does not start with its seq")));
                return receipt;
            }
            let end = scratch.json.len();
            scratch.ends.push(end);
        }
        // Only subscribers need the events; otherwise free them here, on
        // the caller's thread, rather than on the writer's.
        let mut events = (shared.feed.receiver_count() > 0).then_some(events);
        let count = scratch.ends.len() as u64;
        let first = {
            let mut queue = lock(&shared.queue);
            while !queue.closing
                && !queue.stopped
                && queue.queued > 0
                && queue.queued + count > shared.capacity
            {
                queue = shared
                    .room
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if queue.closing || queue.stopped {
                drop(queue);
                slot.resolve(Err(ErrorKind::Closed.into()));
                return receipt;
            }
            let first = queue.next_seq;
            queue.next_seq += count;
            queue.queued += count;
            first
        };
        if count == 0 {
            slot.resolve(Ok(first..first));
            return receipt;
        }
        // From here nothing can fail: every seq handed out gets its record.
        let batch = Batch::build(first, &scratch.json, &scratch.ends, events.take(), slot);
        if scratch.json.capacity() <= MAX_SCRATCH {
            SCRATCH.set(scratch);
        }
        let mut queue = lock(&shared.queue);
        if queue.stopped {
            drop(queue);
            batch.slot.resolve(Err(ErrorKind::Closed.into()));
            return receipt;
        }
        queue.ready.insert(first, batch);
        let wake = queue.writer_idle || queue.queued >= shared.group_records();
        drop(queue);
        // A wake-up costs a system call and a context switch per append;
        // a writer gathering a group picks the batch up when it is done.
        if wake {
            shared.work.notify_one();
        }
        receipt
    }

    /// How many records are durable.
    pub fn size(&self) -> u64 {
        self.inner.shared.durable.load(Ordering::Acquire)
    }

    /// Signs and stores a checkpoint of the durable log now, if it grew
    /// since the latest (or there is none yet), and returns the latest.
    pub fn checkpoint(&self) -> Result<Checkpoint, Error> {
        let (reply, answer) = mpsc::channel();
        self.command(Command::Checkpoint(reply))?;
        answer.recv().map_err(|_| Error::from(ErrorKind::Closed))?
    }

    fn command(&self, command: Command) -> Result<(), Error> {
        let shared = &self.inner.shared;
        let mut queue = lock(&shared.queue);
        if queue.closing || queue.stopped {
            return Err(ErrorKind::Closed.into());
        }
        queue.commands.push(command);
        drop(queue);
        shared.work.notify_one();
        Ok(())
    }

    /// Durable events as they are written, for live detection. A receiver
    /// sees events appended after it subscribed; one that lags too far
    /// behind gets `Lagged` and should read the gap with a `LogReader`.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AuditEvent>> {
        self.inner.shared.feed.subscribe()
    }

    /// The inclusion proof of record `index` in the tree of the first
    /// `size` records (`size` at most [`AuditLog::size`]).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<[u8; 32]>, Error> {
        if index >= size || size > self.size() {
            return Err(ErrorKind::BadRequest(format!(
                "no record {index} in a tree of {size} (the log holds {})",
                self.size()
            ))
            .into());
        }
        let shared = &self.inner.shared;
        let layout = shared.layout.read().unwrap_or_else(PoisonError::into_inner);
        let mut nodes = DiskNodes::new(&shared.dir, &layout.pruned, &layout.segments, size);
        merkle::inclusion_path(&mut nodes, index, size)
    }

    /// The consistency proof between the trees of the first `old` and the
    /// first `new` records (`new` at most [`AuditLog::size`]).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, Error> {
        if old > new || new > self.size() {
            return Err(ErrorKind::BadRequest(format!(
                "no consistency proof from {old} to {new} (the log holds {})",
                self.size()
            ))
            .into());
        }
        let shared = &self.inner.shared;
        let layout = shared.layout.read().unwrap_or_else(PoisonError::into_inner);
        let mut nodes = DiskNodes::new(&shared.dir, &layout.pruned, &layout.segments, new);
        merkle::consistency_path(&mut nodes, old, new)
    }

    /// Removes closed segments whose records all happened before `before`
    /// (same format as [`AuditEvent::time`]) and are covered by a
    /// checkpoint; see [`crate::prune()`]. The segments are read on the
    /// caller's thread; the writer only swaps the files.
    pub fn prune(&self, before: &str) -> Result<PruneReport, Error> {
        let _one = lock(&self.inner.pruning);
        let shared = &self.inner.shared;
        let Some(latest) = lock(&shared.latest).clone() else {
            return Ok(PruneReport::default());
        };
        let (pruned, segments) = {
            let layout = shared.layout.read().unwrap_or_else(PoisonError::into_inner);
            (layout.pruned.clone(), layout.segments.clone())
        };
        let Some(plan) = prune::plan(&shared.dir, before, &pruned, &segments, &latest)? else {
            return Ok(PruneReport::default());
        };
        let (reply, answer) = mpsc::channel();
        self.command(Command::Prune(Box::new(plan), reply))?;
        answer.recv().map_err(|_| Error::from(ErrorKind::Closed))?
    }

    /// Waits for everything queued so far to be durable, signs a final
    /// checkpoint and stops the writer. Later appends fail with `Closed`.
    pub fn close(&self) -> Result<(), Error> {
        self.inner.close()
    }
}

impl Shared {
    /// How many queued records make the writer stop gathering, leaving
    /// room for appends to go on while it writes.
    fn group_records(&self) -> u64 {
        GROUP_RECORDS.min(self.capacity.div_ceil(2))
    }
}

impl Queue {
    /// Whether the writer has something to do.
    fn has_work(&self) -> bool {
        self.ready
            .first_key_value()
            .is_some_and(|(&first, _)| first == self.next_write)
            || !self.commands.is_empty()
            || (self.closing && self.next_write == self.next_seq)
            || self.stopped
    }

    /// The batches that follow on from what was written, in order.
    fn take_ready(&mut self) -> VecDeque<Batch> {
        let mut taken = VecDeque::new();
        while let Some(entry) = self.ready.first_entry()
            && *entry.key() == self.next_write
        {
            let batch = entry.remove();
            self.next_write += batch.len();
            self.queued -= batch.len();
            taken.push_back(batch);
        }
        taken
    }
}

impl Handle {
    fn close(&self) -> Result<(), Error> {
        let Some(thread) = lock(&self.writer).take() else {
            return Ok(());
        };
        lock(&self.shared.queue).closing = true;
        self.shared.work.notify_one();
        self.shared.room.notify_all();
        let result = match thread.join() {
            Ok(result) => result,
            Err(_) => Err(ErrorKind::Closed.into()),
        };
        // The writer is gone: another process may open the log now.
        drop(lock(&self.lock).take());
        result
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::error!(message = "closing the audit log failed", %error);
        }
    }
}

/// A promise that records are durable.
#[must_use = "records are durable only once the receipt resolves"]
pub struct Receipt {
    slot: Arc<Slot>,
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    ready: Condvar,
}

#[derive(Default)]
struct SlotState {
    result: Option<Result<Range<u64>, Error>>,
    waker: Option<Waker>,
    /// A thread sleeps in [`Receipt::wait`]. Async waiters do not, and a
    /// notify nobody waits for still costs a system call per receipt.
    sleeping: bool,
}

impl Slot {
    fn resolve(&self, result: Result<Range<u64>, Error>) {
        let (waker, sleeping) = {
            let mut state = lock(&self.state);
            state.result = Some(result);
            (state.waker.take(), state.sleeping)
        };
        if sleeping {
            self.ready.notify_all();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Receipt {
    fn new() -> (Self, Arc<Slot>) {
        let slot = Arc::new(Slot::default());
        (Self { slot: slot.clone() }, slot)
    }

    /// Blocks until the records are durable and returns their seqs. For
    /// synchronous code and `spawn_blocking`.
    pub fn wait(self) -> Result<Range<u64>, Error> {
        let mut state = lock(&self.slot.state);
        loop {
            if let Some(result) = state.result.take() {
                return result;
            }
            state.sleeping = true;
            state = self
                .slot
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The same, for async code.
    pub async fn durable(self) -> Result<Range<u64>, Error> {
        self.await
    }
}

impl Future for Receipt {
    type Output = Result<Range<u64>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = lock(&self.slot.state);
        match state.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                if !state
                    .waker
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    state.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// An error for each waiter from one failure (errors are not `Clone`).
fn echo(error: &Error) -> Error {
    match &error.kind {
        ErrorKind::Io(e) => ErrorKind::Io(std::io::Error::new(e.kind(), e.to_string())).into(),
        ErrorKind::Locked => ErrorKind::Locked.into(),
        ErrorKind::Closed => ErrorKind::Closed.into(),
        ErrorKind::Corrupt(what) => ErrorKind::Corrupt(what.clone()).into(),
        ErrorKind::Key(what) => ErrorKind::Key(what.clone()).into(),
        ErrorKind::BadRequest(what) => ErrorKind::BadRequest(what.clone()).into(),
    }
}

impl Batch {
    /// The records numbered from `first`: `json` holds them with `seq` 0,
    /// ending at `ends`.
    fn build(
        first: u64,
        json: &[u8],
        ends: &[usize],
        mut events: Option<Vec<AuditEvent>>,
        slot: Arc<Slot>,
    ) -> Self {
        let mut bytes = Vec::with_capacity(json.len() + ends.len() * 21);
        let mut line_ends = Vec::with_capacity(ends.len());
        let mut leaves = Vec::with_capacity(ends.len());
        let mut digits = [0u8; 20];
        let mut start = 0;
        for (seq, &end) in (first..).zip(ends) {
            // `rest` starts at the comma after `"seq":0`.
            let rest = json.get(start + SEQ0.len() - 1..end).unwrap_or_default();
            start = end;
            let at = bytes.len();
            bytes.extend_from_slice(SEQ_KEY);
            bytes.extend_from_slice(decimal(seq, &mut digits));
            bytes.extend_from_slice(rest);
            leaves.push(leaf_hash(&bytes[at..]));
            bytes.push(b'\n');
            line_ends.push(bytes.len());
        }
        if let Some(events) = &mut events {
            for (seq, event) in (first..).zip(events.iter_mut()) {
                event.seq = seq;
            }
        }
        Self {
            first,
            bytes,
            ends: line_ends,
            leaves,
            events,
            slot,
        }
    }

    fn len(&self) -> u64 {
        self.ends.len() as u64
    }
}

/// Writes `n` in decimal into `buf`, returning the digits.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// The segment being appended to.
struct Segment {
    first: u64,
    records: u64,
    bytes: u64,
    log: File,
    hashes: File,
}

impl Segment {
    /// Opens the segment to append to, with room for `reserve` bytes.
    fn open(dir: &Path, first: u64, records: u64, reserve: u64) -> Result<Self, Error> {
        let log = OpenOptions::new()
            .append(true)
            .create(true)
            .open(log_path(dir, first))?;
        reserve_blocks(&log, reserve);
        let hashes = OpenOptions::new()
            .append(true)
            .create(true)
            .open(hashes_path(dir, first))?;
        Ok(Self {
            first,
            records,
            bytes: log.metadata()?.len(),
            log,
            hashes,
        })
    }

    fn create(dir: &Path, first: u64, reserve: u64) -> Result<Self, Error> {
        let create = |path: PathBuf| OpenOptions::new().append(true).create_new(true).open(path);
        let log = create(log_path(dir, first))?;
        reserve_blocks(&log, reserve);
        let hashes = create(hashes_path(dir, first))?;
        // The new names must survive a crash before any record in them is
        // acknowledged.
        sync_dir(&segments_dir(dir))?;
        Ok(Self {
            first,
            records: 0,
            bytes: 0,
            log,
            hashes,
        })
    }
}

/// Allocates the first `bytes` of `file` without changing its size, so
/// appends within them allocate no blocks and their `fdatasync` has less
/// metadata to commit: on ext4 a quarter less CPU and latency per sync.
/// Readers see the same file; a file system that cannot do this just
/// allocates as it goes.
#[cfg(target_os = "linux")]
fn reserve_blocks(file: &File, bytes: u64) {
    use std::os::fd::AsRawFd;
    let Ok(len) = libc::off_t::try_from(bytes) else {
        return;
    };
    if len == 0 {
        return;
    }
    // SAFETY: fallocate only reads its integer arguments; the descriptor is
    // open for the life of `file`.
    let status = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, len) };
    if status != 0 {
        tracing::debug!(
            message = "audit segment not preallocated",
            error = %std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn reserve_blocks(_file: &File, _bytes: u64) {}

/// The writer thread's state.
struct Writer {
    shared: Arc<Shared>,
    dir: PathBuf,
    origin: String,
    interval: Duration,
    group_delay: Duration,
    segment_bytes: u64,
    signer: CheckpointSigner,
    frontier: Frontier,
    segment: Segment,
    levels: LevelFiles,
    checkpoints: Option<File>,
    latest: Option<Checkpoint>,
    next_number: u64,
    /// Leaf hashes of records written, not yet written themselves.
    hashes: Vec<u8>,
}

impl Writer {
    fn run(mut self, unsigned: bool) -> Result<(), Error> {
        let result = self.serve(unsigned);
        if let Err(error) = &result {
            tracing::error!(message = "the audit log writer stopped", %error);
        }
        // Whatever happened, nothing more will be written: fail the rest.
        let (batches, commands) = {
            let mut queue = lock(&self.shared.queue);
            queue.stopped = true;
            (
                std::mem::take(&mut queue.ready),
                std::mem::take(&mut queue.commands),
            )
        };
        self.shared.room.notify_all();
        let stopped = || match &result {
            Ok(()) => Error::from(ErrorKind::Closed),
            Err(error) => echo(error),
        };
        for batch in batches.into_values() {
            batch.slot.resolve(Err(stopped()));
        }
        for command in commands {
            // The requester may have gone; nothing to do then.
            match command {
                Command::Checkpoint(reply) => drop(reply.send(Err(stopped()))),
                Command::Prune(_, reply) => drop(reply.send(Err(stopped()))),
            }
        }
        result
    }

    fn serve(&mut self, unsigned: bool) -> Result<(), Error> {
        if unsigned {
            self.checkpoint()?;
        }
        let timed = !self.interval.is_zero();
        let mut next_tick = Instant::now() + self.interval;
        // Whether the last group served more than one append: appends are
        // arriving together, and waiting for the next ones pays. A lone
        // client appending one request after another never waits.
        let mut busy = false;
        loop {
            let (batches, commands, closing) = {
                let mut queue = lock(&self.shared.queue);
                loop {
                    if queue.has_work() {
                        break;
                    }
                    let now = Instant::now();
                    if timed && now >= next_tick {
                        break;
                    }
                    queue.writer_idle = true;
                    queue = if timed {
                        self.shared
                            .work
                            .wait_timeout(queue, next_tick - now)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0
                    } else {
                        self.shared
                            .work
                            .wait(queue)
                            .unwrap_or_else(PoisonError::into_inner)
                    };
                    queue.writer_idle = false;
                }
                if busy && !self.group_delay.is_zero() {
                    queue = self.gather(queue);
                }
                let batches = queue.take_ready();
                // Closing waits for every seq handed out to be written.
                let drained = queue.next_write == queue.next_seq;
                (
                    batches,
                    std::mem::take(&mut queue.commands),
                    queue.closing && drained,
                )
            };
            // Appenders may fill the queue again while this group is written.
            self.shared.room.notify_all();
            if !batches.is_empty() {
                busy = batches.len() > 1;
                self.commit(batches)?;
            }
            for command in commands {
                self.command(command)?;
            }
            if timed && Instant::now() >= next_tick {
                self.checkpoint()?;
                next_tick = Instant::now() + self.interval;
            }
            if closing {
                self.checkpoint()?;
                self.levels.sync()?;
                self.segment.hashes.sync_data()?;
                return Ok(());
            }
        }
    }

    /// Lets appends gather for the group delay, unless something else
    /// needs the writer or the group is already large.
    fn gather<'a>(&self, mut queue: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        let until = Instant::now() + self.group_delay;
        loop {
            if !queue.commands.is_empty()
                || queue.closing
                || queue.stopped
                || queue.queued >= self.shared.group_records()
            {
                return queue;
            }
            let now = Instant::now();
            if now >= until {
                return queue;
            }
            queue = self
                .shared
                .work
                .wait_timeout(queue, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn command(&mut self, command: Command) -> Result<(), Error> {
        match command {
            Command::Checkpoint(reply) => {
                let result = self.checkpoint();
                let answer = result.as_ref().map_err(echo).cloned();
                let _ = reply.send(answer);
                result.map(|_| ())
            }
            Command::Prune(plan, reply) => {
                let result = self.prune(&plan);
                // A failed prune leaves the log as it was or half-pruned,
                // which reopening finishes; the writer goes on either way.
                let _ = reply.send(result);
                Ok(())
            }
        }
    }

    /// Writes and syncs one group, then resolves its receipts and
    /// publishes its events. A failed write or sync stops the writer: a
    /// failed fsync cannot be retried safely.
    fn commit(&mut self, batches: VecDeque<Batch>) -> Result<(), Error> {
        let written = self
            .write_group(&batches)
            .and_then(|()| Ok(self.segment.log.sync_data()?));
        if let Err(error) = written {
            tracing::error!(message = "writing the audit log failed", %error);
            for batch in &batches {
                batch.slot.resolve(Err(echo(&error)));
            }
            return Err(error);
        }
        self.shared
            .durable
            .fetch_max(self.frontier.size(), Ordering::AcqRel);
        for batch in &batches {
            batch
                .slot
                .resolve(Ok(batch.first..batch.first + batch.len()));
        }
        for batch in batches {
            for event in batch.events.into_iter().flatten() {
                // No receivers is fine: the feed is best effort.
                let _ = self.shared.feed.send(Arc::new(event));
            }
        }
        Ok(())
    }

    fn write_group(&mut self, batches: &VecDeque<Batch>) -> Result<(), Error> {
        for batch in batches {
            // Records go straight from the caller's buffer to the file, in
            // runs broken only where a segment rotates.
            let (mut run, mut start) = (0, 0);
            for (&end, leaf) in batch.ends.iter().zip(&batch.leaves) {
                if self.segment.records > 0 && self.segment.bytes >= self.segment_bytes {
                    self.segment.log.write_all(&batch.bytes[run..start])?;
                    run = start;
                    self.rotate()?;
                }
                self.hashes.extend_from_slice(leaf);
                let levels = &mut self.levels;
                self.frontier.push(*leaf, |level, _, hash| {
                    if level >= STORED_LEVEL {
                        levels.push(level, hash);
                    }
                });
                self.segment.records += 1;
                self.segment.bytes += (end - start) as u64;
                start = end;
            }
            self.segment.log.write_all(&batch.bytes[run..])?;
        }
        self.write_derived()
    }

    /// Writes the hashes derived from records already written: derived data
    /// never runs ahead of the records it describes.
    fn write_derived(&mut self) -> Result<(), Error> {
        self.segment.hashes.write_all(&self.hashes)?;
        self.hashes.clear();
        self.levels.write_pending()
    }

    fn rotate(&mut self) -> Result<(), Error> {
        self.write_derived()?;
        self.segment.log.sync_data()?;
        self.segment.hashes.sync_data()?;
        let first = self.frontier.size();
        self.segment = Segment::create(&self.dir, first, self.segment_bytes)?;
        self.shared
            .layout
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .segments
            .push(first);
        tracing::debug!(message = "audit segment rotated", first);
        Ok(())
    }

    /// Signs and stores a checkpoint of the durable log if it grew.
    fn checkpoint(&mut self) -> Result<Checkpoint, Error> {
        let size = self.frontier.size();
        if let Some(latest) = &self.latest
            && latest.size == size
        {
            return Ok(latest.clone());
        }
        // Sign only what is on disk. A reopened log trusts the derived
        // files up to its latest checkpoint: they must be on disk before it
        // is too.
        self.segment.log.sync_data()?;
        self.shared.durable.fetch_max(size, Ordering::AcqRel);
        self.segment.hashes.sync_data()?;
        self.levels.sync()?;
        let checkpoint = self.signer.sign_checkpoint(
            &self.origin,
            size,
            &self.frontier.root(),
            self.next_number,
        );
        let line = encode_line(&checkpoint)?;
        let file = match &mut self.checkpoints {
            Some(file) => file,
            None => {
                let path = self.dir.join(CHECKPOINTS_FILE);
                let existed = path.exists();
                let file = OpenOptions::new().append(true).create(true).open(&path)?;
                if !existed {
                    sync_dir(&self.dir)?;
                }
                self.checkpoints.insert(file)
            }
        };
        // One write: a crash cannot leave half a line that a kill could.
        file.write_all(&line)?;
        file.sync_data()?;
        self.next_number += 1;
        self.latest = Some(checkpoint.clone());
        *lock(&self.shared.latest) = Some(checkpoint.clone());
        tracing::debug!(message = "audit checkpoint signed", size);
        Ok(checkpoint)
    }

    fn prune(&mut self, plan: &PrunePlan) -> Result<PruneReport, Error> {
        let mut layout = self
            .shared
            .layout
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if layout.pruned != *plan.from() || plan.removes(self.segment.first) {
            return Err(
                ErrorKind::BadRequest("the log changed while pruning was planned".into()).into(),
            );
        }
        let report = prune::commit(&self.dir, plan, &mut self.levels)?;
        layout.pruned = plan.frontier().clone();
        layout
            .segments
            .retain(|&first| first >= plan.frontier().size());
        Ok(report)
    }
}

/// Removes temporary files an interrupted atomic write left.
fn remove_leftovers(dir: &Path) -> Result<(), Error> {
    for folder in [dir.to_owned(), tree_dir(dir)] {
        for entry in fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "tmp") {
                fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

/// The latest checkpoint and the next checkpoint's number, after cutting a
/// torn last line off the `checkpoints` file. A latest checkpoint that the
/// signer's key does not verify stops the log: appending would mix keys.
fn recover_checkpoints(
    dir: &Path,
    verifier: &NoteVerifier,
) -> Result<(Option<Checkpoint>, u64), Error> {
    let path = dir.join(CHECKPOINTS_FILE);
    let Some((line, complete)) = last_line(&path, u64::MAX)? else {
        if path.exists() && fs::metadata(&path)?.len() > 0 {
            truncate(&path, 0, "checkpoint")?;
        }
        return Ok((None, 0));
    };
    truncate(&path, complete, "checkpoint")?;
    let note = decode_line(&line)?;
    let checkpoint = verifier.checkpoint(&note).map_err(|error| {
        ErrorKind::Key(format!(
            "the latest checkpoint in {} does not verify with this audit key: {error}",
            dir.display()
        ))
    })?;
    let number = checkpoint
        .number()
        .ok_or_else(|| corrupt("the latest checkpoint has no number"))?;
    Ok((Some(checkpoint), number + 1))
}

/// Cuts `path` to `len` bytes if longer: what lies beyond is a torn write
/// that was never acknowledged.
fn truncate(path: &Path, len: u64, what: &str) -> Result<(), Error> {
    let file = OpenOptions::new().write(true).open(path)?;
    let had = file.metadata()?.len();
    if had > len {
        tracing::warn!(
            message = "cutting off an incomplete audit write left by a crash",
            what,
            path = %path.display(),
            bytes = had - len
        );
        file.set_len(len)?;
        file.sync_all()?;
    }
    Ok(())
}

/// The segments, after finishing an interrupted prune; creates the first
/// segment of an empty log.
fn recover_segments(dir: &Path, pruned: u64) -> Result<Vec<u64>, Error> {
    let mut segments = list_segments(dir)?;
    // Segments wholly before the pruned point are what an interrupted prune
    // had yet to delete; the manifest already stands for them.
    while segments.len() > 1 && segments[1] <= pruned {
        let first = segments.remove(0);
        for path in [log_path(dir, first), hashes_path(dir, first)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == IoKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        sync_dir(&segments_dir(dir))?;
    }
    match segments.first() {
        None => {
            drop(Segment::create(dir, pruned, 0)?);
            Ok(vec![pruned])
        }
        Some(&first) if first == pruned => Ok(segments),
        Some(&first) => Err(corrupt(&format!(
            "the log should start at record {pruned} but its first segment starts at {first}"
        ))),
    }
}

/// Cuts a torn last line off a segment; returns its complete records.
fn repair_tail(path: &Path) -> Result<u64, Error> {
    let (records, complete, _) = layout::count_lines(path)?;
    truncate(path, complete, "record")?;
    Ok(records)
}

/// Brings the derived files in line with the records and returns the
/// frontier of all `size` records, with the level files ready to append.
fn recover_derived(
    dir: &Path,
    manifest: &Manifest,
    segments: &[u64],
    size: u64,
    latest: Option<&Checkpoint>,
) -> Result<(Frontier, LevelFiles), Error> {
    let pruned = manifest.pruned();
    let mut levels = LevelFiles::new(dir, pruned);
    let mut rebuild = false;
    for (level, base, _) in LevelFiles::stored_bases(dir)? {
        match base {
            Some(base) if base == pruned >> level => {}
            // An interrupted prune: finish cutting the level files.
            Some(base) if base < pruned >> level => levels.rebase(pruned)?,
            _ => rebuild = true,
        }
    }
    let trusted = latest.map_or(0, |c| c.size).max(pruned);
    let mut frontier = None;
    if !rebuild {
        match trusted_frontier(dir, manifest, segments, size, trusted, latest) {
            Ok(found) => frontier = Some(found),
            Err(error) => {
                tracing::warn!(message = "rebuilding the audit log's hash files", %error);
            }
        }
    }
    let (mut frontier, from) = match frontier {
        Some(frontier) => {
            levels.truncate_to(trusted)?;
            (frontier, trusted)
        }
        None => {
            levels.remove_all()?;
            (manifest.frontier.clone(), pruned)
        }
    };
    // Cut each segment's leaf hashes back to the records before `from`.
    for (index, &first) in segments.iter().enumerate() {
        let end = segments.get(index + 1).copied().unwrap_or(size);
        let keep = from.clamp(first, end.max(first)) - first;
        let path = hashes_path(dir, first);
        match fs::metadata(&path) {
            Ok(meta) if meta.len() > keep * layout::HASH_LEN => {
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(keep * layout::HASH_LEN)?;
                file.sync_data()?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == IoKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Recompute everything after `from` from the records themselves.
    let mut cursor = RecordCursor::new(dir, segments.to_vec(), from, size);
    let mut line = Vec::new();
    let mut current: Option<(usize, File, Vec<u8>)> = None;
    while let Some(seq) = cursor.next_into(&mut line)? {
        let index =
            segment_of(segments, seq).ok_or_else(|| corrupt("record outside the segments"))?;
        if current.as_ref().is_none_or(|(at, _, _)| *at != index) {
            if let Some((_, mut file, pending)) = current.take() {
                file.write_all(&pending)?;
                file.sync_data()?;
            }
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .open(hashes_path(dir, segments[index]))?;
            current = Some((index, file, Vec::new()));
        }
        let leaf = leaf_hash(&line);
        if let Some((_, _, pending)) = &mut current {
            pending.extend_from_slice(&leaf);
        }
        frontier.push(leaf, |level, _, hash| {
            if level >= STORED_LEVEL {
                levels.push(level, hash);
            }
        });
    }
    if let Some((_, mut file, pending)) = current.take() {
        file.write_all(&pending)?;
        file.sync_data()?;
    }
    levels.write_pending()?;
    if frontier.size() != size {
        return Err(corrupt(
            "the segments hold fewer records than their names imply",
        ));
    }
    Ok((frontier, levels))
}

/// The frontier at `trusted` from the derived files, if they hold it and it
/// matches the latest checkpoint.
fn trusted_frontier(
    dir: &Path,
    manifest: &Manifest,
    segments: &[u64],
    size: u64,
    trusted: u64,
    latest: Option<&Checkpoint>,
) -> Result<Frontier, Error> {
    for (index, &first) in segments.iter().enumerate() {
        let end = segments.get(index + 1).copied().unwrap_or(size);
        let need = trusted.clamp(first, end.max(first)) - first;
        let have = match fs::metadata(hashes_path(dir, first)) {
            Ok(meta) => meta.len() / layout::HASH_LEN,
            Err(e) if e.kind() == IoKind::NotFound => 0,
            Err(e) => return Err(e.into()),
        };
        if have < need {
            return Err(corrupt("a leaf hash file is short"));
        }
    }
    let mut nodes = DiskNodes::new(dir, &manifest.frontier, segments, trusted);
    let frontier = Frontier::load(&mut nodes, trusted)?;
    if let Some(checkpoint) = latest
        && checkpoint.size == trusted
        && checkpoint.root != frontier.root()
    {
        return Err(corrupt(
            "the stored hashes do not match the latest checkpoint",
        ));
    }
    Ok(frontier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, Outcome};

    #[test]
    fn records_are_their_seq0_json_with_the_seq_spliced_in() {
        let mut event = AuditEvent::new(
            1_700_000_000_000,
            "Email/get",
            Outcome::Success,
            Actor::default(),
        );
        event.target.items = vec!["M1".into(), "M2".into()];
        let seq0 = serde_json::to_vec(&event).unwrap();
        assert!(seq0.starts_with(SEQ0));
        let mut digits = [0u8; 20];
        for seq in [0, 1, 9, 10, 12_345, u64::MAX] {
            event.seq = seq;
            let mut spliced = SEQ_KEY.to_vec();
            spliced.extend_from_slice(decimal(seq, &mut digits));
            spliced.extend_from_slice(&seq0[SEQ0.len() - 1..]);
            assert_eq!(spliced, serde_json::to_vec(&event).unwrap(), "{seq}");
        }
    }
}
