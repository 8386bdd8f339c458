//! Following the log: every durable record from a cursor onwards, in
//! order, with none skipped. Live records come from the log's feed; a
//! consumer that starts behind, or falls so far behind that the feed drops
//! records, catches up from the files.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::event::AuditEvent;
use crate::{AuditLog, Error, ErrorKind, LogReader};

/// Records read from the files per catch-up step.
const CATCH_UP_BATCH: usize = 4096;

/// A consumer's position in the log.
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    feed: broadcast::Receiver<Arc<AuditEvent>>,
    backlog: VecDeque<Arc<AuditEvent>>,
    cursor: u64,
    lagged: bool,
}

impl Follower {
    /// Follows `log` (stored in `dir`) from record `cursor`. Records
    /// already durable from `cursor` on are read from the files at once,
    /// without waiting for a new one.
    pub fn new(log: &AuditLog, dir: PathBuf, cursor: u64) -> Self {
        // Subscribed first: a record made durable after `size` is read
        // either from the feed or from the files, never missed.
        let feed = log.subscribe();
        Self {
            lagged: cursor < log.size(),
            feed,
            dir,
            backlog: VecDeque::new(),
            cursor,
        }
    }

    /// The seq of the next record this follower will return.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The next records, at most `max`, waiting until there is at least one.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Arc<AuditEvent>>, Error> {
        loop {
            if self.backlog.is_empty() && !self.lagged {
                match self.feed.recv().await {
                    Ok(event) => self.backlog.push_back(event),
                    Err(RecvError::Lagged(_)) => self.lagged = true,
                    Err(RecvError::Closed) => return Err(ErrorKind::Closed.into()),
                }
            }
            loop {
                match self.feed.try_recv() {
                    Ok(event) => self.backlog.push_back(event),
                    Err(TryRecvError::Lagged(_)) => self.lagged = true,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => break,
                }
            }
            while self.backlog.front().is_some_and(|e| e.seq < self.cursor) {
                self.backlog.pop_front();
            }
            let gap = self.lagged || self.backlog.front().is_some_and(|e| e.seq > self.cursor);
            if gap {
                let caught_up = self.catch_up(max).await?;
                if !caught_up.is_empty() {
                    return Ok(caught_up);
                }
                // The files hold nothing newer yet: the feed is ahead only
                // of what is complete on disk, which cannot be; wait again.
                self.lagged = false;
                continue;
            }
            let mut batch = Vec::new();
            while batch.len() < max {
                match self.backlog.front() {
                    Some(event) if event.seq == self.cursor => {
                        self.cursor += 1;
                        batch.extend(self.backlog.pop_front());
                    }
                    _ => break,
                }
            }
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }

    async fn catch_up(&mut self, max: usize) -> Result<Vec<Arc<AuditEvent>>, Error> {
        let (dir, from) = (self.dir.clone(), self.cursor);
        let take = max.min(CATCH_UP_BATCH);
        let events = tokio::task::spawn_blocking(move || -> Result<Vec<AuditEvent>, Error> {
            let reader = LogReader::open(&dir)?;
            reader
                .records(from)
                .take(take)
                .map(|record| record.and_then(|r| r.event()))
                .collect()
        })
        .await
        .map_err(|e| ErrorKind::Corrupt(format!("catch-up task failed: {e}")))??;
        if let Some(last) = events.last() {
            self.cursor = last.seq + 1;
        }
        if events.len() < take {
            // Reached the end of the files: the feed has the rest.
            self.lagged = false;
        }
        Ok(events.into_iter().map(Arc::new).collect())
    }
}
