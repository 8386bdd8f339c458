//! Offline detection: reading a log file into events and running the
//! engine over them (`stormproof detect --input FILE`).

use std::path::Path;

use stormproof_audit::AuditEvent;

use crate::alert::Alert;
use crate::engine::Engine;
use crate::{ErrorKind, Result, m365};

/// An input file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Stormproof's audit log: one [`AuditEvent`] as JSON per line (the
    /// log's own segment files, or `stormproof audit search` output).
    #[default]
    Stormproof,
    /// A Microsoft 365 unified audit log export; see [`crate::m365`].
    M365,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        match text {
            "stormproof" => Ok(Format::Stormproof),
            "m365" => Ok(Format::M365),
            other => Err(format!(
                "unknown format {other:?}: expected stormproof or m365"
            )),
        }
    }
}

/// Reads a whole input file into events, in file order.
pub fn read_events(path: &Path, format: Format) -> Result<Vec<AuditEvent>> {
    let text = std::fs::read_to_string(path).map_err(|source| ErrorKind::Io {
        path: path.display().to_string(),
        source,
    })?;
    let name = path.display().to_string();
    match format {
        Format::Stormproof => parse_json_lines(&text, &name),
        Format::M365 => m365::parse(&text, &name),
    }
}

fn parse_json_lines(text: &str, name: &str) -> Result<Vec<AuditEvent>> {
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let event = serde_json::from_str(line).map_err(|e| ErrorKind::Input {
            path: name.to_owned(),
            record: i + 1,
            message: e.to_string(),
        })?;
        events.push(event);
    }
    Ok(events)
}

/// What an offline run saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStats {
    /// Events examined.
    pub events: u64,
    /// New alerts raised.
    pub alerts: u64,
}

/// Events taken from the input at a time: enough for
/// [`Engine::process_batch`] to keep its second thread busy.
const CHUNK: usize = 4096;

/// Runs the engine over `events` ([`Engine::process_batch`], a chunk at a
/// time), handing each new alert to `out`, then flushes the engine's state
/// to the store.
pub fn detect_stream(
    engine: &mut Engine,
    events: impl IntoIterator<Item = AuditEvent>,
    mut out: impl FnMut(&Alert),
) -> Result<StreamStats> {
    let mut stats = StreamStats::default();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        chunk.clear();
        chunk.extend(events.by_ref().take(CHUNK));
        stats.events += chunk.len() as u64;
        for alert in engine.process_batch(&chunk) {
            stats.alerts += 1;
            out(&alert);
        }
    }
    engine.flush()?;
    Ok(stats)
}
