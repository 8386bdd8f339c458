//! The audit log's place in the server: opening it, carrying identity
//! events from the store's outbox into it, anchoring its checkpoints in
//! the store, and the `audit` commands.
//!
//! Identity events (sign-ins, tokens, rejections, key and account changes)
//! are written by the issuer and the verifier, and by admin commands in
//! other processes, to the store's `security_events` table. Only the
//! process holding the log's lock appends, so the server imports that
//! outbox in order, remembering how far it got.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use stormproof_audit::search::{Filter, Prefilter};
use stormproof_audit::{
    AccessKind, Actor, AuditEvent, AuditLog, CheckpointSigner, ErrorKind, LogOptions, LogReader,
    Outcome, Target, format_time, latest_checkpoint,
};
use stormproof_identity::MASTER_KEY_FILE;
use stormproof_keys::MasterKey;
use stormproof_store::{SecurityEventRecord, SqliteStore, Store};

use crate::cli::{AuditCommand, AuditFilterArgs};
use crate::config::Config;

/// The log's directory inside the data directory.
pub const AUDIT_DIR: &str = "audit";

/// The last `security_events` id imported into the log.
pub const OUTBOX_CURSOR_SETTING: &str = "audit_outbox_cursor";

/// The latest checkpoint, copied into the store: a second, independent
/// anchor, so deleting the whole log directory does not pass `audit verify`.
pub const CHECKPOINT_SETTING: &str = "audit_checkpoint";

/// Events imported from the outbox per append.
const OUTBOX_BATCH: usize = 1000;

/// The audit directory of a data directory.
pub fn audit_dir(data: &Path) -> PathBuf {
    data.join(AUDIT_DIR)
}

/// Opens the log for appending; fails if another process has it open.
pub fn open_log(data: &Path, origin: &str) -> anyhow::Result<AuditLog> {
    let dir = audit_dir(data);
    // A log keeps the origin it was created with: its checkpoints name it,
    // and a server later started under another public URL must not look
    // like a different log.
    let kept = std::fs::read_to_string(dir.join("checkpoint.vkey"))
        .ok()
        .and_then(|vkey| vkey.trim().split('+').next().map(str::to_owned))
        .filter(|name| !name.is_empty());
    let origin = kept.as_deref().unwrap_or(origin);
    let master =
        MasterKey::load_or_create(&data.join(MASTER_KEY_FILE)).context("opening the master key")?;
    let signer = CheckpointSigner::load_or_create(&dir, &master, origin)
        .context("opening the audit checkpoint key")?;
    let options = LogOptions {
        origin: origin.to_owned(),
        ..LogOptions::default()
    };
    match AuditLog::open(&dir, signer, options) {
        Ok(log) => Ok(log),
        Err(error) if matches!(error.kind, ErrorKind::Locked) => {
            bail!(
                "the audit log in {} is open in another process (is the server running?)",
                dir.display()
            )
        }
        Err(error) => {
            Err(error).with_context(|| format!("opening the audit log in {}", dir.display()))
        }
    }
}

/// The checkpoint origin: the public URL's host and path, plus `/audit`,
/// as C2SP asks (a schema-less URL naming the log).
pub fn origin(public_url: &str) -> String {
    let bare = public_url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    format!("{bare}/audit")
}

fn string(detail: &Value, key: &str) -> Option<String> {
    detail.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Failure kinds among the store's security events.
fn is_failure(kind: &str) -> bool {
    matches!(
        kind,
        "token_rejected"
            | "sign_in_failed"
            | "client_auth_failed"
            | "auth_code_reused"
            | "refresh_token_reused"
    )
}

/// One store security event as an audit record.
pub fn from_security_event(store: &dyn Store, record: &SecurityEventRecord) -> AuditEvent {
    let detail = &record.detail;
    let protocol = match (record.kind.as_str(), record.reason.as_str()) {
        (_, "admin" | "admin_cli") => "cli",
        ("token_rejected", _) if record.user_agent.as_deref() == Some("smtp-submission") => "smtp",
        ("token_rejected", _) => "http",
        _ => "oidc",
    };
    let user_id = string(detail, "user").or_else(|| string(detail, "sub"));
    let tenant = record
        .tenant
        .as_deref()
        .and_then(|t| stormproof_types::TenantName::parse(t).ok());
    let email = string(detail, "email").or_else(|| {
        let (tenant, id) = (tenant.as_ref()?, user_id.as_ref()?);
        Some(store.user_by_id(tenant, id).ok()??.email.to_string())
    });
    // Changes made by an operator act on a user; the others are the user's
    // own doing.
    let operator = protocol == "cli";
    let actor = Actor {
        user: if operator { None } else { email.clone() },
        user_id: if operator { None } else { user_id.clone() },
        client_id: string(detail, "client_id"),
        session: string(detail, "sid"),
        token: string(detail, "jti"),
        ip: record.ip.clone(),
        user_agent: record.user_agent.clone(),
        protocol: protocol.into(),
    };
    let outcome = if is_failure(&record.kind) {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    let mut event = AuditEvent::new(
        record.time.saturating_mul(1000),
        &record.kind,
        outcome,
        actor,
    );
    event.time = format_time(record.time);
    event.tenant = record.tenant.clone();
    event.reason = Some(record.reason.clone());
    event.access = AccessKind::None;
    let items: Vec<String> = ["kid", "id"]
        .iter()
        .filter_map(|key| string(detail, key))
        .chain(
            (record.kind.starts_with("client_"))
                .then(|| string(detail, "client_id"))
                .flatten(),
        )
        .collect();
    event.count = items.len() as u64;
    event.target = Target {
        owner: if operator { email } else { None },
        items,
        ..Target::default()
    };
    let mut detail = detail.clone();
    if let Some(object) = detail.as_object_mut() {
        object.insert("source_event".into(), Value::from(record.id));
    }
    event.detail = detail;
    event
}

/// Appends every outbox event not yet in the log. Returns how many.
pub fn import_outbox(store: &dyn Store, log: &AuditLog) -> anyhow::Result<usize> {
    let mut cursor: i64 = store
        .setting(OUTBOX_CURSOR_SETTING)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut imported = 0;
    loop {
        let records = store.security_events(cursor, OUTBOX_BATCH)?;
        let Some(last) = records.last().map(|r| r.id) else {
            return Ok(imported);
        };
        let events: Vec<AuditEvent> = records
            .iter()
            .map(|r| from_security_event(store, r))
            .collect();
        imported += events.len();
        // Durable in the log before the cursor moves: a crash in between
        // imports a few events twice, never loses one.
        log.append(events).wait()?;
        cursor = last;
        store.set_setting(OUTBOX_CURSOR_SETTING, &cursor.to_string())?;
    }
}

/// Copies the log's latest checkpoint into the store when it changed.
pub fn anchor_checkpoint(store: &dyn Store, log: &AuditLog, last: &mut u64) -> anyhow::Result<()> {
    let checkpoint = log.checkpoint()?;
    if checkpoint.size != *last {
        store.set_setting(CHECKPOINT_SETTING, &checkpoint.note)?;
        *last = checkpoint.size;
    }
    Ok(())
}

/// How often the outbox is imported: identity events, rejected tokens
/// above all, reach the log and the detectors within this.
pub const OUTBOX_POLL: Duration = Duration::from_millis(50);

/// How often the latest checkpoint is copied into the store.
const ANCHOR_EVERY: Duration = Duration::from_secs(1);

/// The server's audit work: the outbox import every [`OUTBOX_POLL`],
/// checkpoint anchoring every second, and pruning once a day.
pub async fn run_background(store: Arc<dyn Store>, log: AuditLog, retention: Duration) {
    let mut tick = tokio::time::interval(OUTBOX_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut anchored = u64::MAX;
    let mut last_anchor = None::<tokio::time::Instant>;
    let mut last_prune = None::<tokio::time::Instant>;
    loop {
        tick.tick().await;
        let (store, log) = (store.clone(), log.clone());
        let anchor_due = last_anchor.is_none_or(|at| at.elapsed() >= ANCHOR_EVERY);
        let prune_due = last_prune.is_none_or(|at| at.elapsed() > Duration::from_secs(86_400));
        let result = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
            import_outbox(store.as_ref(), &log)?;
            if anchor_due {
                anchor_checkpoint(store.as_ref(), &log, &mut anchored)?;
            }
            if prune_due {
                prune(&log, retention)?;
            }
            Ok(anchored)
        })
        .await;
        match result {
            Ok(Ok(size)) => {
                anchored = size;
                if anchor_due {
                    last_anchor = Some(tokio::time::Instant::now());
                }
                if prune_due {
                    last_prune = Some(tokio::time::Instant::now());
                }
            }
            Ok(Err(error)) => {
                tracing::error!(message = "audit background work failed", error = %format!("{error:#}"))
            }
            Err(error) => tracing::error!(message = "audit background task panicked", %error),
        }
    }
}

fn cutoff(retention: Duration) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let before = now.saturating_sub(retention.as_secs());
    format_time(i64::try_from(before).unwrap_or(0))
}

fn prune(log: &AuditLog, retention: Duration) -> anyhow::Result<()> {
    let report = log.prune(&cutoff(retention))?;
    if report.records_removed > 0 {
        tracing::info!(
            message = "audit records past retention pruned",
            records = report.records_removed,
            segments = report.segments_removed
        );
    }
    Ok(())
}

fn filter(args: AuditFilterArgs) -> anyhow::Result<Filter> {
    let mut filter = Filter {
        tenant: args.tenant,
        user: args.user,
        owner: args.owner,
        session: args.session,
        client: args.client,
        ip: args.ip,
        operation: args.operation,
        ..Filter::default()
    };
    if let Some(since) = args.since {
        filter = filter
            .since(&since)
            .with_context(|| format!("--since {since:?}: use RFC 3339 or Unix seconds"))?;
    }
    if let Some(until) = args.until {
        filter = filter
            .until(&until)
            .with_context(|| format!("--until {until:?}: use RFC 3339 or Unix seconds"))?;
    }
    Ok(filter)
}

/// Records an operator's read of the log through the store's outbox; the
/// server carries it into the log.
pub fn record_operator_read(data: &Path, operation: &str, filter: &Filter, count: usize) {
    let Ok(store) = SqliteStore::open(data) else {
        return;
    };
    let record = SecurityEventRecord {
        id: 0,
        time: stormproof_types::Clock::now(&stormproof_types::SystemClock),
        tenant: filter.tenant.clone(),
        kind: operation.into(),
        reason: "admin_cli".into(),
        detail: serde_json::json!({"filter": format!("{filter:?}"), "count": count}),
        ip: None,
        user_agent: Some("stormproof-cli".into()),
    };
    if let Err(error) = store.record_security_event(&record) {
        tracing::warn!(message = "could not record the operator's read", %error);
    }
}

/// `stormproof audit ...`.
pub fn run(data: &Path, config: &Config, command: AuditCommand) -> anyhow::Result<()> {
    let dir = audit_dir(data);
    match command {
        AuditCommand::Verify { checkpoint } => verify(data, &dir, checkpoint.as_deref()),
        AuditCommand::Checkpoint => {
            let checkpoint = match open_log(data, &local_origin(data, config)) {
                // No server running: sign what it left unsigned.
                Ok(log) => {
                    let checkpoint = log.checkpoint();
                    log.close()?;
                    Some(checkpoint?)
                }
                Err(_) => latest_checkpoint(&dir)?,
            };
            match checkpoint {
                Some(checkpoint) => {
                    print!("{}", checkpoint.note);
                    Ok(())
                }
                None => bail!("the audit log has no checkpoint yet"),
            }
        }
        AuditCommand::Search {
            filter: args,
            json: _,
            limit,
        } => {
            let filter = filter(args)?;
            let prefilter = Prefilter::new(&filter);
            let reader = LogReader::open(&dir)?;
            let mut printed = 0;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for record in reader.records(0) {
                if limit.is_some_and(|l| printed >= l) {
                    break;
                }
                let record = record?;
                if prefilter.may_match(&record.bytes) && filter.matches(&record.event()?) {
                    use std::io::Write;
                    out.write_all(&record.bytes)?;
                    out.write_all(b"\n")?;
                    printed += 1;
                }
            }
            drop(out);
            record_operator_read(data, "audit.search", &filter, printed);
            Ok(())
        }
        AuditCommand::Export {
            filter: args,
            format,
        } => {
            let ocsf = match format.as_str() {
                "json" => false,
                "ocsf" => true,
                other => bail!("--format {other:?}: use json or ocsf"),
            };
            let filter = filter(args)?;
            let prefilter = Prefilter::new(&filter);
            let reader = LogReader::open(&dir)?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut printed = 0;
            for record in reader.records(0) {
                use std::io::Write;
                let record = record?;
                if !prefilter.may_match(&record.bytes) {
                    continue;
                }
                let event = record.event()?;
                if !filter.matches(&event) {
                    continue;
                }
                if ocsf {
                    serde_json::to_writer(&mut out, &stormproof_audit::ocsf::to_ocsf(&event))?;
                } else {
                    out.write_all(&record.bytes)?;
                }
                out.write_all(b"\n")?;
                printed += 1;
            }
            drop(out);
            record_operator_read(data, "audit.export", &filter, printed);
            Ok(())
        }
        AuditCommand::Prune => {
            let retention = config.audit.retention()?;
            let log = open_log(data, &local_origin(data, config))?;
            let report = log.prune(&cutoff(retention));
            log.close()?;
            let report = report?;
            println!(
                "pruned {} records in {} segments older than {}",
                report.records_removed,
                report.segments_removed,
                cutoff(retention)
            );
            Ok(())
        }
    }
}

/// The origin the server signs checkpoints under, for commands run beside it.
fn local_origin(data: &Path, config: &Config) -> String {
    let url = config.server.public_url.clone().or_else(|| {
        SqliteStore::open(data)
            .ok()?
            .setting(crate::serve::PUBLIC_URL_SETTING)
            .ok()?
    });
    origin(url.as_deref().unwrap_or("http://127.0.0.1:8080"))
}

fn verify(data: &Path, dir: &Path, external: Option<&Path>) -> anyhow::Result<()> {
    let external = match external {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    // The store's copy of the latest checkpoint is a second anchor.
    let anchor = if data.join(stormproof_store::DATABASE_FILE).exists() {
        SqliteStore::open(data)?.setting(CHECKPOINT_SETTING)?
    } else {
        None
    };
    let mut report = None;
    for (what, checkpoint) in [
        ("the checkpoint file", external.as_deref()),
        ("the store's anchor", anchor.as_deref()),
    ] {
        if checkpoint.is_none() && report.is_some() {
            continue;
        }
        match stormproof_audit::verify(dir, checkpoint) {
            Ok(r) => report = Some(r),
            Err(failure) => {
                let at = failure
                    .first_bad_record
                    .map(|seq| format!(" (first bad record: {seq})"))
                    .unwrap_or_default();
                let against = if checkpoint.is_some() {
                    format!(", checked against {what}")
                } else {
                    String::new()
                };
                bail!(
                    "audit log verification FAILED{at}{against}: {}",
                    failure.message
                );
            }
        }
    }
    if let Some(report) = report {
        println!(
            "audit log OK: {} records, {} checkpoints{}{}",
            report.records,
            report.checkpoints,
            report
                .latest
                .map(|c| format!(", latest at size {}", c.size))
                .unwrap_or_default(),
            if report.unchecked_tail > 0 {
                format!(
                    ", {} records after the latest checkpoint",
                    report.unchecked_tail
                )
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
