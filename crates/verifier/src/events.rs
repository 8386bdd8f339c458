//! Security events for rejections, written off the request path.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use serde_json::json;
use stormproof_store::{SecurityEventRecord, Store};
use stormproof_types::{Clock, UnixTime};

use crate::reject::Rejection;

/// How many rejections may wait for the writer. A flood of forged tokens
/// beyond this is counted in [`SecurityEventSink::dropped`] instead of
/// slowing every request down to the speed of the database.
pub const EVENT_QUEUE_CAPACITY: usize = 10_000;

/// The longest claim value copied into an event; claims are attacker-chosen.
const MAX_FIELD_LEN: usize = 256;

enum Message {
    Event(Box<Pending>),
    Flush(SyncSender<()>),
}

struct Pending {
    rejection: Rejection,
    time: UnixTime,
    ip: Option<String>,
    user_agent: Option<String>,
}

/// Records each rejection as a `token_rejected` security event, through a
/// bounded queue and one background writer thread, so a request never
/// blocks on the store. Clones share the queue and the writer.
#[derive(Clone)]
pub struct SecurityEventSink {
    shared: Arc<Shared>,
}

struct Shared {
    // Options so the last owner can close the queue before joining the writer.
    sender: Option<SyncSender<Message>>,
    writer: Option<JoinHandle<()>>,
    clock: Arc<dyn Clock>,
    dropped: AtomicU64,
}

impl fmt::Debug for SecurityEventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityEventSink")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl SecurityEventSink {
    /// Starts the writer thread over `store`; `clock` stamps each event
    /// when it is queued.
    pub fn spawn(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let (sender, receiver) = mpsc::sync_channel(EVENT_QUEUE_CAPACITY);
        let writer = std::thread::Builder::new()
            .name("security-events".into())
            .spawn(move || write_events(store, receiver));
        let writer = match writer {
            Ok(handle) => Some(handle),
            Err(e) => {
                // Without a thread the queue fills and every event is counted
                // as dropped; requests still verify.
                tracing::error!(message = "cannot start the security event writer", error = %e);
                None
            }
        };
        Self {
            shared: Arc::new(Shared {
                sender: Some(sender),
                writer,
                clock,
                dropped: AtomicU64::new(0),
            }),
        }
    }

    /// Queues `rejection` without blocking; when the queue is full the event
    /// is counted as dropped.
    pub fn report(&self, rejection: &Rejection, ip: Option<&str>, user_agent: Option<&str>) {
        let pending = Pending {
            rejection: rejection.clone(),
            time: self.shared.clock.now(),
            ip: ip.map(|s| truncate(s).to_owned()),
            user_agent: user_agent.map(|s| truncate(s).to_owned()),
        };
        let sent = match &self.shared.sender {
            Some(sender) => match sender.try_send(Message::Event(Box::new(pending))) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            None => false,
        };
        if !sent {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Blocks until every event queued before the call has been written (or
    /// failed to write). For tests and orderly shutdown.
    pub fn flush(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if let Some(sender) = &self.shared.sender
            && sender.send(Message::Flush(ack)).is_ok()
        {
            let _ = done.recv();
        }
    }

    /// How many events were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Closing the queue lets the writer drain what is left and exit;
        // joining makes a clean shutdown lose no events.
        self.sender.take();
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
    }
}

fn write_events(store: Arc<dyn Store>, receiver: Receiver<Message>) {
    for message in receiver {
        match message {
            Message::Event(pending) => {
                let record = event_record(&pending);
                if let Err(e) = store.record_security_event(&record) {
                    tracing::error!(message = "cannot record security event", reason = %record.reason, error = %e);
                }
            }
            Message::Flush(ack) => {
                let _ = ack.try_send(());
            }
        }
    }
}

fn event_record(pending: &Pending) -> SecurityEventRecord {
    let r = &pending.rejection;
    SecurityEventRecord {
        id: 0,
        time: pending.time,
        tenant: r.tenant.as_ref().map(|t| t.as_str().to_owned()),
        kind: "token_rejected".into(),
        reason: r.reason.as_str().into(),
        detail: json!({
            "kid": r.kid,
            "jti": r.jti,
            "sub": r.subject,
            "client_id": r.client_id,
            "sid": r.session,
            "forgery": r.reason.is_forgery(),
        }),
        ip: pending.ip.clone(),
        user_agent: pending.user_agent.clone(),
    }
}

/// The longest prefix of `value` within [`MAX_FIELD_LEN`] bytes, cut on a
/// character boundary.
pub(crate) fn truncate(value: &str) -> &str {
    if value.len() <= MAX_FIELD_LEN {
        return value;
    }
    let mut end = MAX_FIELD_LEN;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        let long = "é".repeat(200);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_FIELD_LEN);
        assert_eq!(cut.chars().count(), MAX_FIELD_LEN / 2);
        assert_eq!(truncate("short"), "short");
    }
}
