//! Streaming sinks: every durable record, as it lands, sent on to a SIEM
//! over syslog (RFC 5424, UDP or TCP with RFC 6587 octet counting) or an
//! HTTPS webhook, as Stormproof JSON or OCSF.
//!
//! A sink reads the log itself from a cursor, woken by the live feed, so a
//! slow or unreachable receiver never slows appends and never loses its
//! place: it retries with backoff and resumes where it stopped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::event::{AuditEvent, Outcome};
use crate::{AuditLog, Follower, ocsf};

/// The most records sent in one webhook request.
pub const WEBHOOK_BATCH: usize = 256;

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    /// The audit record as stored.
    #[default]
    Json,
    /// OCSF 1.3.0, see [`ocsf`].
    Ocsf,
}

/// One sink, as configured under `[[audit.sinks]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `syslog+udp://host:port`, `syslog+tcp://host:port`, or an
    /// `http://` / `https://` webhook URL.
    pub url: String,
    /// Output format.
    #[serde(default)]
    pub format: SinkFormat,
}

/// A sink's configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[error("audit sink {url}: {reason}")]
pub struct SinkConfigError {
    url: String,
    reason: String,
}

enum Transport {
    SyslogUdp(String),
    SyslogTcp(String),
    Webhook(reqwest::Client, String),
}

/// A running sink's description, from [`SinkConfig::build`].
pub struct Sink {
    name: String,
    transport: Transport,
    format: SinkFormat,
    hostname: String,
}

impl SinkConfig {
    /// Checks the URL and builds the sink. `hostname` goes into syslog headers.
    pub fn build(&self, hostname: &str) -> Result<Sink, SinkConfigError> {
        let error = |reason: &str| SinkConfigError {
            url: self.url.clone(),
            reason: reason.into(),
        };
        let transport = if let Some(address) = self.url.strip_prefix("syslog+udp://") {
            Transport::SyslogUdp(address.trim_end_matches('/').to_owned())
        } else if let Some(address) = self.url.strip_prefix("syslog+tcp://") {
            Transport::SyslogTcp(address.trim_end_matches('/').to_owned())
        } else if self.url.starts_with("https://") || self.url.starts_with("http://") {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| error(&e.to_string()))?;
            Transport::Webhook(client, self.url.clone())
        } else {
            return Err(error(
                "expected syslog+udp://, syslog+tcp://, http:// or https://",
            ));
        };
        Ok(Sink {
            name: self.url.clone(),
            transport,
            format: self.format,
            hostname: hostname.to_owned(),
        })
    }
}

fn render(format: SinkFormat, event: &AuditEvent) -> Value {
    match format {
        SinkFormat::Json => serde_json::to_value(event).unwrap_or(Value::Null),
        SinkFormat::Ocsf => ocsf::to_ocsf(event),
    }
}

/// One RFC 5424 message: facility 13 (log audit), severity informational
/// or, for failures, warning; the record as the MSG.
pub fn syslog_message(hostname: &str, event: &AuditEvent, body: &Value) -> String {
    let severity = if event.outcome == Outcome::Failure {
        4
    } else {
        6
    };
    let msgid: String = event
        .operation
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let msgid = if msgid.is_empty() { "-".into() } else { msgid };
    // The IANA-registered `origin` SD-ID: a private one needs an enterprise
    // number of our own. The record's seq travels in the body (`seq`, or
    // OCSF `metadata.uid`).
    let structured = concat!(
        "[origin software=\"stormproof\" swVersion=\"",
        env!("CARGO_PKG_VERSION"),
        "\"]"
    );
    rfc5424_message(
        severity,
        &event.time,
        hostname,
        &msgid,
        structured,
        &body.to_string(),
    )
}

/// One RFC 5424 message from Stormproof: facility 13 (log audit),
/// `severity` 0 (emergency) to 7 (debug), APP-NAME `stormproof`, PROCID
/// this process. `structured_data` is `-` or whole SD-ELEMENTs.
pub fn rfc5424_message(
    severity: u8,
    time: &str,
    hostname: &str,
    msgid: &str,
    structured_data: &str,
    body: &str,
) -> String {
    format!(
        "<{}>1 {time} {} stormproof {} {msgid} {structured_data} {body}",
        13 * 8 + u32::from(severity.min(7)),
        if hostname.is_empty() { "-" } else { hostname },
        std::process::id(),
    )
}

impl Sink {
    async fn send(&self, events: &[AuditEvent]) -> Result<(), String> {
        match &self.transport {
            Transport::SyslogUdp(address) => {
                let socket = tokio::net::UdpSocket::bind(if address.starts_with('[') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                })
                .await
                .map_err(|e| e.to_string())?;
                for event in events {
                    let line = syslog_message(&self.hostname, event, &render(self.format, event));
                    socket
                        .send_to(line.as_bytes(), address.as_str())
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Transport::SyslogTcp(address) => {
                let mut stream = tokio::net::TcpStream::connect(address.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                let mut buffer = Vec::new();
                for event in events {
                    let line = syslog_message(&self.hostname, event, &render(self.format, event));
                    buffer.extend_from_slice(format!("{} {line}", line.len()).as_bytes());
                }
                stream.write_all(&buffer).await.map_err(|e| e.to_string())?;
                stream.flush().await.map_err(|e| e.to_string())
            }
            Transport::Webhook(client, url) => {
                for chunk in events.chunks(WEBHOOK_BATCH) {
                    let body: Vec<Value> = chunk.iter().map(|e| render(self.format, e)).collect();
                    let response = client
                        .post(url)
                        .json(&body)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if !response.status().is_success() {
                        return Err(format!("HTTP {}", response.status()));
                    }
                }
                Ok(())
            }
        }
    }

    /// A stable name for this sink's place in the log, under which its
    /// cursor can be stored: a hash of its URL, so a secret in the URL is
    /// stored nowhere else.
    pub fn cursor_key(&self) -> String {
        let digest = Sha256::digest(self.name.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("audit_sink_cursor:{hex}")
    }

    /// Sends every record from `start` onwards, forever, in order; a failed
    /// send is retried with backoff until it succeeds. After each delivery
    /// `delivered` is called (on the blocking pool) with the next record to
    /// send, for the caller to store and pass back as `start` after a
    /// restart. Delivery is at least once: a crash between a send and its
    /// `delivered` sends that batch again.
    pub async fn run(
        self,
        log: AuditLog,
        dir: PathBuf,
        start: u64,
        delivered: Arc<dyn Fn(u64) + Send + Sync>,
    ) {
        let mut follower = Follower::new(&log, dir, start);
        // Stored at once, so records that arrive before the first delivery
        // are not skipped by a restart.
        let first = delivered.clone();
        let _ = tokio::task::spawn_blocking(move || first(start)).await;
        loop {
            let batch = match follower.next_batch(WEBHOOK_BATCH * 4).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::info!(message = "audit sink stopping", sink = %self.name, %error);
                    return;
                }
            };
            let events: Vec<AuditEvent> = batch.iter().map(|e| e.as_ref().clone()).collect();
            let mut backoff = Duration::from_millis(250);
            while let Err(error) = self.send(&events).await {
                tracing::warn!(message = "audit sink delivery failed; will retry", sink = %self.name, %error);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            let (next, delivered) = (follower.cursor(), delivered.clone());
            let _ = tokio::task::spawn_blocking(move || delivered(next)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Actor;

    #[test]
    fn syslog_lines_follow_rfc_5424() {
        let mut event = AuditEvent::new(
            1_700_000_000_000,
            "token_rejected",
            Outcome::Failure,
            Actor::default(),
        );
        event.seq = 7;
        let line = syslog_message("mx1", &event, &Value::Null);
        let pid = std::process::id();
        assert_eq!(
            line,
            format!(
                "<108>1 2023-11-14T22:13:20.000Z mx1 stormproof {pid} token_rejected [origin software=\"stormproof\" swVersion=\"{}\"] null",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn unknown_schemes_are_refused() {
        let config = SinkConfig {
            url: "ftp://example".into(),
            format: SinkFormat::Json,
        };
        assert!(config.build("h").is_err());
        let config = SinkConfig {
            url: "syslog+udp://127.0.0.1:514".into(),
            format: SinkFormat::Ocsf,
        };
        assert!(config.build("h").is_ok());
    }
}
