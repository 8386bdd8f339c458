//! Alert sinks: each new alert, as it is raised, to a webhook (JSON POST,
//! retried until it is accepted), to syslog (RFC 5424), into the tenant's
//! security contacts' mailboxes, and counted for Prometheus.
//!
//! Each sink is a component: a URL in the configuration, built once, run as
//! its own task with its own queue, so a receiver that is down delays only
//! itself, and catches up in order when it comes back.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use stormproof_detect::{Alert, Severity};
use stormproof_mail::Delivery;
use stormproof_store::Store;
use stormproof_types::{Email, TenantName};
use tokio::sync::mpsc;

use crate::notify::{Notice, deliver_notice};

/// Alerts waiting for one sink beyond this are dropped from its queue (they
/// stay in the store, and the drop is counted and logged).
pub const SINK_QUEUE: usize = 100_000;

/// One alert sink, as configured under `[[alerts.sinks]]` or by
/// `serve --alert-webhook URL`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSinkConfig {
    /// `https://...` / `http://...` (webhook), `syslog+udp://host:port`,
    /// `syslog+tcp://host:port`, or `mailbox:` (the tenant's security
    /// contacts, in their Stormproof mailboxes).
    pub url: String,
}

/// What sinks share.
#[derive(Clone)]
pub struct SinkContext {
    /// For mailbox delivery.
    pub store: Arc<dyn Store>,
    /// For mailbox delivery.
    pub delivery: Delivery,
    /// Each tenant's security contacts.
    pub contacts: Arc<BTreeMap<String, Vec<Email>>>,
    /// This server's name, for syslog.
    pub hostname: String,
}

/// Counts of alerts raised and of deliveries that failed, for `/metrics`.
#[derive(Debug, Default)]
pub struct AlertMetrics {
    raised: Mutex<BTreeMap<(String, Severity), u64>>,
    failures: Mutex<BTreeMap<String, u64>>,
}

impl AlertMetrics {
    fn raised(&self, alert: &Alert) {
        if let Ok(mut raised) = self.raised.lock() {
            *raised
                .entry((alert.detector.clone(), alert.severity))
                .or_default() += 1;
        }
    }

    fn failed(&self, sink: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            *failures.entry(sink.to_owned()).or_default() += 1;
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP stormproof_alerts_total Alerts raised, by detector and severity.\n\
             # TYPE stormproof_alerts_total counter\n",
        );
        if let Ok(raised) = self.raised.lock() {
            for ((detector, severity), count) in raised.iter() {
                let _ = writeln!(
                    out,
                    "stormproof_alerts_total{{detector=\"{detector}\",severity=\"{}\"}} {count}",
                    severity.as_str()
                );
            }
        }
        out.push_str(
            "# HELP stormproof_alert_delivery_failures_total Failed alert deliveries, by sink kind.\n\
             # TYPE stormproof_alert_delivery_failures_total counter\n",
        );
        if let Ok(failures) = self.failures.lock() {
            for (sink, count) in failures.iter() {
                let _ = writeln!(
                    out,
                    "stormproof_alert_delivery_failures_total{{sink=\"{sink}\"}} {count}"
                );
            }
        }
    }
}

enum Kind {
    Webhook(reqwest::Client, String),
    Syslog { tcp: bool, address: String },
    Mailbox,
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Webhook(..) => "webhook",
            Kind::Syslog { .. } => "syslog",
            Kind::Mailbox => "mailbox",
        }
    }
}

/// A sink's URL is not one this server can send to.
#[derive(Debug, thiserror::Error)]
#[error("alert sink {url}: {reason}")]
pub struct AlertSinkError {
    url: String,
    reason: String,
}

impl AlertSinkConfig {
    fn build(&self) -> Result<Kind, AlertSinkError> {
        let error = |reason: &str| AlertSinkError {
            url: self.url.clone(),
            reason: reason.into(),
        };
        if let Some(address) = self.url.strip_prefix("syslog+udp://") {
            Ok(Kind::Syslog {
                tcp: false,
                address: address.trim_end_matches('/').into(),
            })
        } else if let Some(address) = self.url.strip_prefix("syslog+tcp://") {
            Ok(Kind::Syslog {
                tcp: true,
                address: address.trim_end_matches('/').into(),
            })
        } else if self.url == "mailbox:" {
            Ok(Kind::Mailbox)
        } else if self.url.starts_with("http://") || self.url.starts_with("https://") {
            // No idle connections kept: alerts are rare, and a receiver
            // that closes each connection after answering (many small ones
            // do) would otherwise fail the next POST on a dead pooled
            // connection, delaying it by a retry.
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| error(&e.to_string()))?;
            Ok(Kind::Webhook(client, self.url.clone()))
        } else {
            Err(error(
                "expected http(s)://, syslog+udp://, syslog+tcp:// or mailbox:",
            ))
        }
    }
}

/// Fans each alert out to every sink's queue.
#[derive(Clone)]
pub struct AlertDispatcher {
    queues: Vec<mpsc::Sender<Arc<Alert>>>,
    metrics: Arc<AlertMetrics>,
}

impl std::fmt::Debug for AlertDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertDispatcher")
            .field("sinks", &self.queues.len())
            .finish()
    }
}

impl AlertDispatcher {
    /// Builds every sink and starts its task on the current runtime.
    pub fn spawn(
        sinks: &[AlertSinkConfig],
        context: SinkContext,
        metrics: Arc<AlertMetrics>,
    ) -> Result<Self, AlertSinkError> {
        let mut queues = Vec::new();
        for config in sinks {
            let kind = config.build()?;
            let (tx, rx) = mpsc::channel(SINK_QUEUE);
            tokio::spawn(run(kind, rx, context.clone(), metrics.clone()));
            queues.push(tx);
        }
        Ok(Self { queues, metrics })
    }

    /// Queues `alert` for every sink; never waits.
    pub fn dispatch(&self, alert: Alert) {
        self.metrics.raised(&alert);
        let alert = Arc::new(alert);
        for queue in &self.queues {
            if queue.try_send(alert.clone()).is_err() {
                self.metrics.failed("queue_full");
                tracing::error!(message = "alert sink queue full; alert kept in the store only", id = %alert.id);
            }
        }
    }
}

async fn run(
    kind: Kind,
    mut rx: mpsc::Receiver<Arc<Alert>>,
    context: SinkContext,
    metrics: Arc<AlertMetrics>,
) {
    let mut pending: VecDeque<Arc<Alert>> = VecDeque::new();
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(alert) => pending.push_back(alert),
                None => return,
            }
        }
        while let Ok(alert) = rx.try_recv() {
            pending.push_back(alert);
        }
        let mut backoff = Duration::from_millis(200);
        while let Some(alert) = pending.front() {
            match send(&kind, alert, &context).await {
                Ok(()) => {
                    pending.pop_front();
                    backoff = Duration::from_millis(200);
                }
                Err(error) => {
                    metrics.failed(kind.name());
                    tracing::warn!(message = "alert delivery failed; retrying", sink = kind.name(), id = %alert.id, %error);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    while let Ok(more) = rx.try_recv() {
                        pending.push_back(more);
                    }
                }
            }
        }
    }
}

/// One RFC 5424 line for an alert: facility 13 (log audit), severity from
/// the alert's.
pub fn syslog_line(hostname: &str, alert: &Alert) -> String {
    let severity = match alert.severity {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    };
    stormproof_audit::sinks::rfc5424_message(
        severity,
        &alert.time,
        hostname,
        "alert",
        "-",
        &serde_json::to_string(alert).unwrap_or_default(),
    )
}

async fn send(kind: &Kind, alert: &Alert, context: &SinkContext) -> Result<(), String> {
    match kind {
        Kind::Webhook(client, url) => {
            let response = client
                .post(url)
                .json(alert)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {}", response.status()))
            }
        }
        Kind::Syslog { tcp, address } => {
            let line = syslog_line(&context.hostname, alert);
            if *tcp {
                use tokio::io::AsyncWriteExt;
                let mut stream = tokio::net::TcpStream::connect(address.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                stream
                    .write_all(format!("{} {line}", line.len()).as_bytes())
                    .await
                    .map_err(|e| e.to_string())
            } else {
                let socket = tokio::net::UdpSocket::bind("0.0.0.0:0")
                    .await
                    .map_err(|e| e.to_string())?;
                socket
                    .send_to(line.as_bytes(), address.as_str())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
        Kind::Mailbox => {
            let Some(tenant) = alert
                .tenant
                .as_deref()
                .and_then(|t| TenantName::parse(t).ok())
            else {
                return Ok(());
            };
            let Some(recipients) = context.contacts.get(tenant.as_str()).cloned() else {
                return Ok(());
            };
            let notice = Notice {
                tenant,
                recipients,
                subject: format!(
                    "Stormproof alert ({}): {}",
                    alert.severity.as_str(),
                    alert.detector
                ),
                body: format!(
                    "What happened\r\n\r\n{}\r\n\r\nDetector: {}\r\nSeverity: {}\r\nTime: {}\r\nUser: {}\r\nClient: {}\r\nSession: {}\r\nAddress: {}\r\nAudit records: {:?}\r\nAlert id: {}\r\n\r\nFind what was read with: stormproof report exposure --session <sid> --json\r\n",
                    alert.summary,
                    alert.detector,
                    alert.severity.as_str(),
                    alert.time,
                    alert.user.as_deref().unwrap_or("-"),
                    alert.client_id.as_deref().unwrap_or("-"),
                    alert.session.as_deref().unwrap_or("-"),
                    alert.ip.as_deref().unwrap_or("-"),
                    alert.evidence,
                    alert.id,
                ),
            };
            let (store, delivery) = (context.store.clone(), context.delivery.clone());
            let now = stormproof_types::Clock::now(&stormproof_types::SystemClock);
            tokio::task::spawn_blocking(move || {
                deliver_notice(store.as_ref(), &delivery, &notice, now)
            })
            .await
            .map_err(|e| e.to_string())?
            .map(|_| ())
            .map_err(|e| e.to_string())
        }
    }
}
