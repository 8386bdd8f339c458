//! `stormproof serve`: hardens the process, opens the store, keys and
//! verifier, starts the background work, and serves HTTP.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stormproof_http::{AppState, AuditState};
use stormproof_identity::Issuer;
use stormproof_keys::Pkcs11Token;
use stormproof_mail::Delivery;
use stormproof_smtp::{Listener, SmtpContext};
use stormproof_store::{SqliteStore, Store};

/// Where the DPoP proof ids already used outlive a restart.
const DPOP_MEMORY_FILE: &str = "dpop-seen";
use stormproof_types::{Clock, SystemClock};
use stormproof_verifier::{SecurityEventSink, Verifier, VerifierConfig};

use stormproof_respond::alerting::{AlertDispatcher, AlertMetrics, AlertSinkConfig, SinkContext};

use crate::cli::ServeArgs;
use crate::config::Config;

/// The setting where `serve` records its public URL, so that admin commands
/// run beside it mint tokens for the same issuer.
pub const PUBLIC_URL_SETTING: &str = "public_url";

/// How often the server looks for changes made by admin commands in other
/// processes (key revocations, session revocations). Well under the 1 s
/// promise.
const CHANGE_POLL: Duration = Duration::from_millis(200);

/// How often key schedules are checked.
const ROTATION_CHECK: Duration = Duration::from_secs(60);

const DEFAULT_HTTP: &str = "127.0.0.1:8080";

/// Keeps key material out of core dumps and away from ptrace: the process
/// becomes non-dumpable and its core size limit zero.
fn harden_process() -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl and setrlimit with constant, valid arguments touch
        // only this process's attributes.
        let dumpable = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        if dumpable != 0 {
            anyhow::bail!(
                "prctl(PR_SET_DUMPABLE, 0) failed: {}",
                std::io::Error::last_os_error()
            );
        }
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above; the struct outlives the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) } != 0 {
            anyhow::bail!(
                "setrlimit(RLIMIT_CORE, 0) failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

/// Opens the store, the HSM (if configured) and the issuer; shared with the
/// admin commands so both sides use the same settings.
pub fn open_issuer(
    data: &Path,
    config: &Config,
    public_url: &str,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(Arc<dyn Store>, Arc<Issuer>)> {
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(data)
            .with_context(|| format!("opening the store in {}", data.display()))?,
    );
    let hsm = match config.pkcs11()? {
        Some(pkcs11) => Some(Pkcs11Token::open(&pkcs11).context("opening the PKCS#11 token")?),
        None => None,
    };
    let issuer_config = config.issuer(public_url)?;
    let issuer = Issuer::open(store.clone(), clock, issuer_config, data, hsm)
        .context("opening the issuer")?;
    Ok((store, Arc::new(issuer)))
}

pub fn run(data: &Path, config: Config, args: ServeArgs) -> anyhow::Result<()> {
    harden_process()?;
    let http = args
        .http
        .or(config.server.http.clone())
        .unwrap_or_else(|| DEFAULT_HTTP.to_owned());
    let public_url = args
        .public_url
        .or(config.server.public_url.clone())
        .unwrap_or_else(|| format!("http://{http}"))
        .trim_end_matches('/')
        .to_owned();
    url::Url::parse(&public_url)
        .with_context(|| format!("--public-url {public_url} is not a URL"))?;

    let smtp = args.smtp.or(config.server.smtp.clone());
    let submission = args.submission.or(config.server.submission.clone());
    let header_read_timeout = config.server.header_read_timeout;
    let hostname = match args.hostname.or(config.server.hostname.clone()) {
        Some(name) => name,
        None => url::Url::parse(&public_url)?
            .host_str()
            .unwrap_or("localhost")
            .to_owned(),
    };

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (store, issuer) = open_issuer(data, &config, &public_url, clock.clone())?;
    store.set_setting(PUBLIC_URL_SETTING, &public_url)?;
    issuer
        .rotate_all()
        .context("bringing signing keys up to date")?;

    let issuer_config = issuer.config();
    let events = SecurityEventSink::spawn(store.clone(), clock.clone());
    let verifier = Arc::new(Verifier::new(
        store.clone(),
        clock.clone(),
        VerifierConfig {
            public_url: public_url.clone(),
            audience: public_url.clone(),
            leeway_secs: issuer_config.leeway,
            max_lifetime_secs: issuer_config.max_token_lifetime,
            ..VerifierConfig::default()
        },
        Some(events),
    )?);
    let dpop_memory = data.join(DPOP_MEMORY_FILE);
    verifier
        .restore_dpop_memory(&dpop_memory)
        .context("restoring the DPoP proof ids already used")?;

    let audit_log = crate::audit::open_log(data, &crate::audit::origin(&public_url))?;
    let audit_dir = crate::audit::audit_dir(data);
    let retention = config.audit.retention()?;
    let sinks = config
        .audit
        .sinks
        .iter()
        .map(|sink| sink.build(&hostname))
        .collect::<Result<Vec<_>, _>>()?;
    let sink_hostname = hostname.clone();

    let mut detect_config = config.detect.clone();
    if let Some(learning) = args.detect_learning {
        detect_config.learning_window = learning;
    }
    let engine = stormproof_detect::Engine::new(&detect_config, store.clone())
        .context("starting detection")?;
    let contacts = Arc::new(config.response.contacts()?);
    let mut alert_sinks = config.alerts.sinks.clone();
    if let Some(url) = args.alert_webhook.clone() {
        alert_sinks.push(AlertSinkConfig { url });
    }
    if !contacts.is_empty() && !alert_sinks.iter().any(|s| s.url == "mailbox:") {
        alert_sinks.push(AlertSinkConfig {
            url: "mailbox:".into(),
        });
    }

    let delivery = Delivery::open(store.clone(), data).context("opening mail delivery")?;
    let notices = delivery.clone();
    let jmap = stormproof_jmap::Jmap::new(
        store.clone(),
        delivery.clone(),
        stormproof_jmap::JmapConfig::for_base_url(&public_url),
    );
    let smtp_context = if smtp.is_some() || submission.is_some() {
        let authenticator = match config.dns.nameservers.as_deref() {
            None => Some(
                stormproof_smtp::authenticator_from_system()
                    .context("reading the system's DNS configuration")?,
            ),
            Some([]) => None,
            Some(nameservers) => Some(
                stormproof_smtp::authenticator(nameservers)
                    .context("setting up the DNS resolver")?,
            ),
        };
        Some(Arc::new(SmtpContext {
            store: store.clone(),
            delivery,
            authenticator,
            issuer: issuer.clone(),
            verifier: verifier.clone(),
            tls: Some(
                stormproof_smtp::load_or_generate(data, &hostname)
                    .context("preparing the STARTTLS certificate")?,
            ),
            hostname,
            clock: clock.clone(),
            audit: audit_log.clone(),
        }))
    } else {
        None
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&http).await.with_context(|| format!("binding {http}"))?;
        tracing::info!(message = "listening", http = %listener.local_addr()?, public_url = %public_url);

        for (address, kind) in [(smtp, Listener::Inbound), (submission, Listener::Submission)] {
            let (Some(address), Some(context)) = (address, smtp_context.clone()) else { continue };
            let listener = tokio::net::TcpListener::bind(&address).await.with_context(|| format!("binding {address}"))?;
            tracing::info!(message = "listening", smtp = %listener.local_addr()?, listener = ?kind);
            tokio::spawn(async move {
                if let Err(error) = stormproof_smtp::serve(listener, context, kind).await {
                    tracing::error!(message = "smtp listener failed", %error);
                }
            });
        }

        let watcher = verifier.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHANGE_POLL);
            loop {
                tick.tick().await;
                if let Err(error) = watcher.refresh() {
                    tracing::error!(message = "could not poll for key and revocation changes", %error);
                }
            }
        });
        let rotator = issuer.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ROTATION_CHECK);
            loop {
                tick.tick().await;
                let issuer = rotator.clone();
                // Key generation may wait on an HSM: keep it off the reactor.
                let _ = tokio::task::spawn_blocking(move || issuer.rotate_all()).await;
            }
        });

        let alert_metrics = Arc::new(AlertMetrics::default());
        let dispatcher = AlertDispatcher::spawn(
            &alert_sinks,
            SinkContext {
                store: store.clone(),
                delivery: notices.clone(),
                contacts: contacts.clone(),
                hostname: sink_hostname.clone(),
            },
            alert_metrics.clone(),
        )?;
        tokio::spawn(crate::detection::run(
            engine,
            audit_log.clone(),
            crate::detection::DetectionContext {
                store: store.clone(),
                issuer: issuer.clone(),
                verifier: verifier.clone(),
                delivery: notices,
                dispatcher,
                contacts,
                audit_dir: audit_dir.clone(),
            },
        ));

        tokio::spawn(crate::audit::run_background(
            store.clone(),
            audit_log.clone(),
            retention,
        ));
        for sink in sinks {
            // A sink resumes where it stopped, records written while the
            // server was down included; a new one starts at the log's end.
            let key = sink.cursor_key();
            let start = store
                .setting(&key)
                .ok()
                .flatten()
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(audit_log.size(), |stored| stored.min(audit_log.size()));
            let cursors = store.clone();
            let delivered: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |next: u64| {
                if let Err(error) = cursors.set_setting(&key, &next.to_string()) {
                    tracing::warn!(message = "audit sink cursor not stored", %error);
                }
            });
            tokio::spawn(sink.run(audit_log.clone(), audit_dir.clone(), start, delivered));
        }

        let audit = AuditState { log: audit_log.clone(), dir: audit_dir };
        let stopping_verifier = verifier.clone();
        let mut state = AppState::new(issuer, verifier, audit).with_jmap(jmap);
        state.metrics.push(Arc::new(AlertCounters(alert_metrics)));
        let header_read_timeout = header_read_timeout.unwrap_or(stormproof_http::HEADER_READ_TIMEOUT);
        stormproof_http::serve_with(listener, state, header_read_timeout, shutdown_signal()).await.context("serving HTTP")?;
        if let Err(error) = stopping_verifier.save_dpop_memory(&dpop_memory) {
            tracing::error!(message = "DPoP proof ids not saved; the next start refuses older proofs", %error);
        }
        // Whatever the outbox still holds, then a final checkpoint.
        let closing = audit_log.clone();
        let _ = tokio::task::spawn_blocking(move || {
            crate::audit::import_outbox(store.as_ref(), &closing)?;
            closing.close()?;
            anyhow::Ok(())
        })
        .await;
        tracing::info!(message = "stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The alert counters, shown at `/metrics`.
#[derive(Debug)]
struct AlertCounters(Arc<AlertMetrics>);

impl stormproof_http::MetricsSource for AlertCounters {
    fn render(&self, out: &mut String) {
        self.0.render(out);
    }
}
