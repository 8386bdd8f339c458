//! Offline detection: reading a log file into events and running the
//! engine over them (`stormproof detect --input FILE`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
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
    open_events(path, format)?.collect()
}

/// The events of an input file, in file order, read as they are needed:
/// memory stays flat however long the file. (A Microsoft 365 export that
/// is one JSON array is the exception: it is parsed whole.) An unreadable
/// record ends the iteration with its error.
pub fn open_events(
    path: &Path,
    format: Format,
) -> Result<Box<dyn Iterator<Item = Result<AuditEvent>>>> {
    let io = |source| ErrorKind::Io {
        path: path.display().to_string(),
        source,
    };
    let name = path.display().to_string();
    let mut reader = BufReader::new(File::open(path).map_err(io)?);
    let is_array = loop {
        let buffer = reader.fill_buf().map_err(io)?;
        match buffer.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(at) => break buffer[at] == b'[',
            None if buffer.is_empty() => break false,
            None => {
                let len = buffer.len();
                reader.consume(len);
            }
        }
    };
    if format == Format::M365 && is_array {
        let mut text = String::new();
        reader.read_to_string(&mut text).map_err(io)?;
        return Ok(Box::new(m365::parse(&text, &name)?.into_iter().map(Ok)));
    }
    Ok(Box::new(lines_events(reader, format, name)))
}

/// The events of JSON lines in `format`, skipping blank lines (and, for
/// Microsoft 365, records that are not mail reads or sign-ins). An
/// unreadable line ends the iteration with its error.
pub(crate) fn lines_events<'a>(
    reader: impl BufRead + 'a,
    format: Format,
    name: String,
) -> impl Iterator<Item = Result<AuditEvent>> + 'a {
    let mut records = 0u64;
    let mut failed = false;
    reader.lines().enumerate().filter_map(move |(i, line)| {
        if failed {
            return None;
        }
        let error = |message: String| -> crate::Error {
            ErrorKind::Input {
                path: name.clone(),
                record: i + 1,
                message,
            }
            .into()
        };
        let parsed = match line {
            Err(source) => Err(ErrorKind::Io {
                path: name.clone(),
                source,
            }
            .into()),
            Ok(line) if line.trim().is_empty() => return None,
            Ok(line) => match format {
                Format::Stormproof => {
                    serde_json::from_str(line.trim()).map_err(|e| error(e.to_string()))
                }
                Format::M365 => {
                    let seq = records;
                    records += 1;
                    let event = serde_json::from_str(&line)
                        .map_err(|e| e.to_string())
                        .and_then(m365::unwrap_audit_data)
                        .map(|record| m365::to_event(&record, seq))
                        .map_err(error);
                    match event {
                        Ok(Some(event)) => Ok(event),
                        // Not a mail read or a sign-in.
                        Ok(None) => return None,
                        Err(e) => Err(e),
                    }
                }
            },
        };
        failed = parsed.is_err();
        Some(parsed)
    })
}

/// Runs the engine over the events of `path` as [`detect_stream`] does,
/// reading them as it goes. An unreadable record stops the run with its
/// error, after the events before it were examined (their alerts handed
/// to `out`) and the engine's state flushed.
pub fn detect_file(
    engine: &mut Engine,
    path: &Path,
    format: Format,
    mut out: impl FnMut(&Alert),
) -> Result<StreamStats> {
    let mut failure = None;
    let events = open_events(path, format)?.map_while(|event| match event {
        Ok(event) => Some(event),
        Err(error) => {
            failure = Some(error);
            None
        }
    });
    let stats = detect_stream(engine, events, &mut out)?;
    match failure {
        Some(error) => Err(error),
        None => Ok(stats),
    }
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
