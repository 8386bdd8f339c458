//! The engine: runs every enabled detector over each event, deduplicates
//! what they raise, stores new alerts at once and learned state in batches.

use std::borrow::Borrow;
use std::sync::Arc;

use hashbrown::HashMap;
use sha2::{Digest, Sha256};
use stormproof_audit::{AuditEvent, format_time_ms};
use stormproof_store::{AlertRecord, DetectorStateRecord, Store};
use stormproof_types::TenantName;

use crate::Result;
use crate::alert::{Alert, Severity};
use crate::config::{DetectConfig, millis};
use crate::detectors::{Output, Slot, build_all};
use crate::prefilter::Scratch;
use crate::sigma::{Detections, Sigma};
use crate::view::{View, parse_time_ms};

/// Learned state waiting for the store beyond this many records is written
/// at once, whatever the flush interval.
const MAX_PENDING_STATE: usize = 8192;

/// New alerts waiting for the store beyond this many are written at once.
const MAX_PENDING_ALERTS: usize = 256;

/// A deduplication start later than any time: the store writes a new row.
const FORCE_NEW: &str = "~";

/// If the store keeps failing, state beyond this is dropped (oldest first)
/// rather than growing without bound; detectors keep it in memory anyway.
const MAX_RETAINED_STATE: usize = 1 << 20;

/// The detection engine. Feed it audit events in log order with
/// [`Engine::process`]; it returns the alerts that are new.
/// [`Engine::process_batch`] does the same for many events, evaluating
/// Sigma rules on a second thread.
///
/// Critical alerts are written to the store before `process` returns.
/// Other alerts, alert counts and learned state are written in batches:
/// every `flush_interval` of event time, when many are waiting, on
/// [`Engine::flush`], and when the engine is dropped. A crash loses at most
/// what was raised or learned since the last batch, from the store only.
pub struct Engine {
    store: Arc<dyn Store>,
    slots: Vec<Slot>,
    dedup_window_ms: i64,
    flush_interval_ms: i64,
    /// The latest event time seen.
    now_ms: i64,
    last_flush_ms: Option<i64>,
    /// (tenant, dedup key) to when it last fired, for alerts within the window.
    recent: HashMap<String, i64>,
    /// Repeats of recent alerts, by (tenant, dedup key), to be counted in
    /// the store with the next batch.
    repeats: HashMap<String, AlertRecord>,
    /// New alerts, below critical, waiting for the next batch.
    new_alerts: Vec<AlertRecord>,
    pending: Vec<DetectorStateRecord>,
    out: Output,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("detectors", &self.detectors())
            .field("now_ms", &self.now_ms)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds the enabled detectors and loads what they learned before from
    /// the store. Fails on a bad setting or an unreadable Sigma rule.
    pub fn new(config: &DetectConfig, store: Arc<dyn Store>) -> Result<Self> {
        let mut slots = build_all(config)?;
        for slot in &mut slots {
            let records = store.detector_state_scan(slot.name)?;
            tracing::debug!(
                message = "detector state loaded",
                detector = slot.name,
                records = records.len()
            );
            slot.detector.restore(records)?;
        }
        Ok(Self {
            store,
            slots,
            dedup_window_ms: millis(config.dedup_window),
            flush_interval_ms: millis(config.flush_interval),
            now_ms: i64::MIN,
            last_flush_ms: None,
            recent: HashMap::new(),
            repeats: HashMap::new(),
            new_alerts: Vec::new(),
            pending: Vec::new(),
            out: Output::default(),
        })
    }

    /// The names of the detectors running, in the order they see events.
    pub fn detectors(&self) -> Vec<&'static str> {
        self.slots.iter().map(|s| s.name).collect()
    }

    /// Looks at one event and returns the alerts it raised that are new:
    /// a repeat of an alert within the deduplication window is counted on
    /// the stored alert instead.
    pub fn process(&mut self, event: &AuditEvent) -> Vec<Alert> {
        let time_ms = event_time(event, self.now_ms);
        self.now_ms = self.now_ms.max(time_ms);
        let view = View::new(event, time_ms);
        for slot in &mut self.slots {
            let first = self.out.alerts.len();
            slot.detector.observe(&view, &mut self.out);
            for alert in &mut self.out.alerts[first..] {
                slot.switches.apply(alert);
            }
        }
        self.pending.append(&mut self.out.state);
        let mut new = Vec::new();
        if !self.out.alerts.is_empty() {
            let raised = std::mem::take(&mut self.out.alerts);
            for alert in raised {
                if let Some(alert) = self.admit(alert, time_ms) {
                    new.push(alert);
                }
            }
        }
        self.flush_if_due();
        new
    }

    /// [`Engine::process`] for many events: the same alerts, in the same
    /// order, and the same writes to the store, but Sigma rules are
    /// evaluated on a second thread while the built-in detectors run on
    /// this one. Each detector still sees every event in order; the
    /// engine then deduplicates, stores and returns the alerts of each event
    /// in turn, exactly as one call per event would.
    pub fn process_batch<E: Borrow<AuditEvent> + Sync>(&mut self, events: &[E]) -> Vec<Alert> {
        let mut new = Vec::new();
        for chunk in events.chunks(BATCH) {
            let sigma_last = self.slots.len() > 1
                && self
                    .slots
                    .last()
                    .is_some_and(|slot| slot.name == crate::sigma::NAME);
            if chunk.len() < MIN_PARALLEL || !sigma_last {
                for event in chunk {
                    new.extend(self.process(event.borrow()));
                }
            } else {
                self.process_parallel(chunk, &mut new);
            }
        }
        new
    }

    fn process_parallel<E: Borrow<AuditEvent> + Sync>(
        &mut self,
        events: &[E],
        new: &mut Vec<Alert>,
    ) {
        // Each event's time as `process` would read it.
        let mut latest = self.now_ms;
        let times: Vec<i64> = events
            .iter()
            .map(|event| {
                let time_ms = event_time(event.borrow(), latest);
                latest = latest.max(time_ms);
                time_ms
            })
            .collect();
        let Some((last, builtins)) = self.slots.split_last_mut() else {
            return;
        };
        let first_sigma = builtins.len();
        let Some(sigma) = last.detector.as_sigma() else {
            // `process_batch` comes here only with Sigma last.
            for event in events {
                new.extend(self.process(event.borrow()));
            }
            return;
        };
        // Rules are reloaded only between batches here, so both stages of
        // every event see the same rules.
        if let Some(&first) = times.first() {
            sigma.poll(first);
        }
        // Stage one on both threads, each taking half the events; then
        // stage two beside the built-in detectors.
        let mut detections = detect_all(sigma, events);
        let (front, back) = std::thread::scope(|scope| {
            let back =
                scope.spawn(|| correlate_all(sigma, first_sigma, events, &times, &mut detections));
            let front = observe_all(builtins, events, &times);
            (front, back.join())
        });
        let back = match back {
            Ok(back) => back,
            // A detector that panicked on its thread panics on this one.
            Err(panic) => std::panic::resume_unwind(panic),
        };
        // Built-ins' alerts and state, then Sigma's, event by event: slot
        // order, as `process` keeps it.
        let mut alerts = [
            front.alerts.into_iter().peekable(),
            back.alerts.into_iter().peekable(),
        ];
        let mut state = [
            front.state.into_iter().peekable(),
            back.state.into_iter().peekable(),
        ];
        let mut raised = Vec::new();
        for (i, &time_ms) in times.iter().enumerate() {
            self.now_ms = self.now_ms.max(time_ms);
            for records in &mut state {
                while let Some((_, record)) = records.next_if(|(at, _)| *at == i) {
                    self.pending.push(record);
                }
            }
            for list in &mut alerts {
                while let Some((_, slot, alert)) = list.next_if(|(at, _, _)| *at == i) {
                    raised.push((slot, alert));
                }
            }
            for (slot, mut alert) in raised.drain(..) {
                if let Some(slot) = self.slots.get(slot) {
                    slot.switches.apply(&mut alert);
                }
                if let Some(alert) = self.admit(alert, time_ms) {
                    new.push(alert);
                }
            }
            self.flush_if_due();
        }
    }

    fn flush_if_due(&mut self) {
        let last_flush = *self.last_flush_ms.get_or_insert(self.now_ms);
        let due = self.now_ms - last_flush >= self.flush_interval_ms
            || self.pending.len() >= MAX_PENDING_STATE
            || self.new_alerts.len() >= MAX_PENDING_ALERTS;
        if due && let Err(error) = self.write_batch(false) {
            tracing::warn!(message = "detector state not stored; will retry", %error);
        }
    }

    /// Writes everything waiting (learned state, alert counts, Sigma
    /// correlation windows) to the store now. The server calls this now and
    /// then and at shutdown; dropping the engine does it too.
    pub fn flush(&mut self) -> Result<()> {
        self.write_batch(true)
    }

    /// Re-reads the Sigma rules directory now. Returns how many rules are
    /// loaded, or `None` when Sigma is disabled. On error the rules in force
    /// stay in force. (The directory is also polled; see
    /// [`crate::SigmaConfig::reload_interval`].)
    pub fn reload_rules(&mut self) -> Result<Option<usize>> {
        let mut loaded = None;
        for slot in &mut self.slots {
            if let Some(n) = slot.detector.reload(self.now_ms.max(0), &mut self.out)? {
                loaded = Some(n);
            }
        }
        self.pending.append(&mut self.out.state);
        Ok(loaded)
    }

    /// Decides whether a raised alert is new. New critical alerts are
    /// stored at once; others join the next batch (a crash before it loses
    /// the stored copy, never the alert: it was returned, and replaying the
    /// audit log raises it again).
    fn admit(&mut self, mut alert: Alert, time_ms: i64) -> Option<Alert> {
        let key = format!(
            "{}\u{1f}{}",
            alert.tenant.as_deref().unwrap_or(""),
            alert.dedup_key
        );
        let window = self.dedup_window_ms;
        if let Some(last) = self.recent.get_mut(&key)
            && time_ms - *last <= window
        {
            // Most alerts raised are repeats: their id is worked out only
            // if one is stored.
            *last = (*last).max(time_ms);
            self.repeat(key, &mut alert);
            return None;
        }
        alert.id = alert_id(&alert);
        // Not seen by this process lately; the store may have it from
        // before a restart. A read, so no write stalls the event.
        let since = format_time_ms(time_ms.saturating_sub(window));
        let stored_tenant = alert
            .tenant
            .as_deref()
            .and_then(|t| TenantName::parse(t).ok());
        match self
            .store
            .alert_by_key(stored_tenant.as_ref(), &alert.dedup_key)
        {
            Ok(Some(row)) if row.last_seen >= since => {
                self.recent.insert(key.clone(), time_ms);
                self.repeat(key, &mut alert);
                return None;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(message = "alert deduplication read failed", %error),
        }
        self.recent.insert(key, time_ms);
        let record = record(&alert);
        if alert.severity == Severity::Critical {
            if let Err(error) = self.store.record_alert(&record, FORCE_NEW) {
                // Raised all the same; the next batch tries again.
                tracing::error!(message = "critical alert not stored", %error, detector = %alert.detector);
                self.new_alerts.push(record);
            }
        } else {
            self.new_alerts.push(record);
        }
        tracing::info!(
            message = "alert",
            detector = %alert.detector,
            severity = alert.severity.as_str(),
            tenant = alert.tenant.as_deref().unwrap_or(""),
            summary = %alert.summary,
        );
        Some(alert)
    }

    fn repeat(&mut self, key: String, alert: &mut Alert) {
        self.repeats
            .entry(key)
            .and_modify(|r| {
                r.count += 1;
                if alert.time > r.last_seen {
                    r.last_seen.clone_from(&alert.time);
                }
            })
            .or_insert_with(|| {
                if alert.id.is_empty() {
                    alert.id = alert_id(alert);
                }
                record(alert)
            });
    }

    fn write_batch(&mut self, full: bool) -> Result<()> {
        let now = self.now_ms.max(0);
        for slot in &mut self.slots {
            slot.detector.checkpoint(now, full, &mut self.out);
        }
        self.pending.append(&mut self.out.state);
        self.last_flush_ms = Some(now);
        let window = self.dedup_window_ms;
        self.recent.retain(|_, last| now - *last <= window);
        let mut result = Ok(());
        if !self.new_alerts.is_empty() {
            match self.store.record_alerts(&self.new_alerts, FORCE_NEW) {
                Ok(_) => self.new_alerts.clear(),
                Err(error) => {
                    tracing::warn!(message = "alerts not stored; will retry", %error, alerts = self.new_alerts.len());
                    // Counting repeats now could create their rows first.
                    return Err(error.into());
                }
            }
        }
        if !self.repeats.is_empty() {
            let repeats: Vec<AlertRecord> = self.repeats.drain().map(|(_, r)| r).collect();
            // The rows exist (or were lost to a failed write, and are
            // written now): add to whichever row holds the key.
            if let Err(error) = self.store.record_alerts(&repeats, "") {
                tracing::warn!(message = "alert counts not stored", %error, alerts = repeats.len());
                result = Err(error.into());
            }
        }
        if !self.pending.is_empty() {
            match self.store.detector_state_put(&self.pending) {
                Ok(()) => self.pending.clear(),
                Err(error) => {
                    if self.pending.len() > MAX_RETAINED_STATE {
                        let excess = self.pending.len() - MAX_RETAINED_STATE;
                        self.pending.drain(..excess);
                    }
                    result = Err(error.into());
                }
            }
        }
        result
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(error) = self.write_batch(true) {
            tracing::error!(message = "detector state not stored at shutdown", %error);
        }
    }
}

/// Events handed to the two threads at a time by [`Engine::process_batch`].
const BATCH: usize = 4096;

/// Fewer events than this are processed on one thread: starting the second
/// would cost more than it saves.
const MIN_PARALLEL: usize = 64;

/// An event's time in Unix milliseconds. An event whose time cannot be read
/// is taken to be as late as the latest seen: it is still examined, and
/// cannot move time backwards.
fn event_time(event: &AuditEvent, latest_ms: i64) -> i64 {
    match parse_time_ms(&event.time) {
        Some(ms) => ms,
        None => {
            tracing::warn!(message = "audit event with unreadable time", seq = event.seq, time = %event.time);
            latest_ms.max(0)
        }
    }
}

/// What some detectors raised and learned over a batch: alerts with the
/// event and slot that raised them, state with its event, in order.
#[derive(Default)]
struct Observed {
    alerts: Vec<(usize, usize, Alert)>,
    state: Vec<(usize, DetectorStateRecord)>,
}

impl Observed {
    /// Moves what slot `slot` put in `out` for event `i` here.
    fn collect(&mut self, i: usize, slot: usize, out: &mut Output) {
        self.alerts
            .extend(out.alerts.drain(..).map(|alert| (i, slot, alert)));
        self.state
            .extend(out.state.drain(..).map(|record| (i, record)));
    }
}

/// Runs `slots` (the engine's first slots) over `events`.
fn observe_all<E: Borrow<AuditEvent>>(slots: &mut [Slot], events: &[E], times: &[i64]) -> Observed {
    let mut out = Output::default();
    let mut observed = Observed::default();
    for (i, (event, &time_ms)) in events.iter().zip(times).enumerate() {
        let view = View::new(event.borrow(), time_ms);
        for (s, slot) in slots.iter_mut().enumerate() {
            slot.detector.observe(&view, &mut out);
            observed.collect(i, s, &mut out);
        }
    }
    observed
}

/// Sigma's first stage for every event of a batch, on this thread and one
/// more, each taking half.
fn detect_all<E: Borrow<AuditEvent> + Sync>(sigma: &Sigma, events: &[E]) -> Vec<Detections> {
    let run = |events: &[E]| {
        let (mut candidates, mut scratch) = (Vec::new(), Scratch::default());
        events
            .iter()
            .map(|event| sigma.detect(event.borrow(), &mut candidates, &mut scratch))
            .collect::<Vec<_>>()
    };
    let (first, second) = events.split_at(events.len() / 2);
    std::thread::scope(|scope| {
        let back = scope.spawn(|| run(second));
        let mut all = run(first);
        match back.join() {
            Ok(rest) => all.extend(rest),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        all
    })
}

/// Sigma's second stage over a batch, in order, collected as
/// [`observe_all`] collects.
fn correlate_all<E: Borrow<AuditEvent>>(
    sigma: &mut Sigma,
    slot: usize,
    events: &[E],
    times: &[i64],
    detections: &mut [Detections],
) -> Observed {
    let mut out = Output::default();
    let mut observed = Observed::default();
    for (i, ((event, &time_ms), found)) in events.iter().zip(times).zip(detections).enumerate() {
        sigma.correlate(&View::new(event.borrow(), time_ms), found.take(), &mut out);
        observed.collect(i, slot, &mut out);
    }
    observed
}

fn record(alert: &Alert) -> AlertRecord {
    AlertRecord {
        id: alert.id.clone(),
        tenant: alert
            .tenant
            .as_deref()
            .and_then(|t| TenantName::parse(t).ok()),
        time: alert.time.clone(),
        severity: alert.severity.as_str().to_owned(),
        detector: alert.detector.clone(),
        summary: alert.summary.clone(),
        dedup_key: alert.dedup_key.clone(),
        json: serde_json::to_string(alert).unwrap_or_default(),
        count: 1,
        last_seen: alert.time.clone(),
    }
}

/// A stable id: the same alert from the same log gets the same id.
fn alert_id(alert: &Alert) -> String {
    let mut hash = Sha256::new();
    for part in [
        alert.tenant.as_deref().unwrap_or(""),
        &alert.dedup_key,
        &alert.time,
        &alert.evidence.first().copied().unwrap_or(0).to_string(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("al-{hex}")
}
