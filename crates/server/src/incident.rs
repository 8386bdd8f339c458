//! The incident commands: `detect` over a file, `alerts list`, `revoke`,
//! and `report exposure`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use stormproof_audit::LogReader;
use stormproof_detect::{Engine, Format, detect_file};
use stormproof_identity::Issuer;
use stormproof_mail::Delivery;
use stormproof_respond::{
    ExposureQuery, RevocationTarget, deliver_notice, exposure, exposure_notices, revoke as end,
};
use stormproof_store::{SqliteStore, Store};
use stormproof_types::{Email, TenantName};

use crate::cli::{AlertsCommand, DetectArgs, ExposureArgs, RevokeArgs};
use crate::config::Config;

/// `detect --input FILE`: the engine over a file, with a throwaway store so
/// the server's learned state is neither read nor changed. Alerts go to
/// stdout as JSON lines.
pub fn detect(config: &Config, args: DetectArgs) -> anyhow::Result<()> {
    let format: Format = args.format.parse().map_err(anyhow::Error::msg)?;
    let scratch = tempfile::Builder::new()
        .prefix("stormproof-detect")
        .tempdir()
        .context("creating a scratch store")?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(scratch.path())?);
    let mut engine = Engine::new(&config.detect, store)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = None;
    // Events are read as the engine goes, so an export of any size runs
    // in bounded memory; a bad record stops the run after the ones before.
    let stats = detect_file(&mut engine, &args.input, format, |alert| {
        if failed.is_none()
            && let Err(error) = serde_json::to_writer(&mut out, alert)
                .map_err(anyhow::Error::from)
                .and_then(|()| Ok(out.write_all(b"\n")?))
        {
            failed = Some(error);
        }
    });
    if let Some(error) = failed {
        return Err(error);
    }
    // What was found before a bad record is printed all the same.
    out.flush()?;
    // The engine's final flush can fail too; a run that did is not trusted.
    let stats = stats?;
    tracing::info!(message = "detection done", ?stats);
    Ok(())
}

/// `alerts list`.
pub fn alerts(store: &Arc<dyn Store>, command: AlertsCommand) -> anyhow::Result<()> {
    let AlertsCommand::List {
        tenant,
        since,
        limit,
        json,
    } = command;
    let tenant = tenant
        .map(|t| TenantName::parse(&t).with_context(|| format!("tenant {t:?}")))
        .transpose()?;
    let after = match since {
        Some(text) => stormproof_audit::parse_time(&text)
            .with_context(|| format!("--since {text:?}: use RFC 3339 or Unix seconds"))?,
        None => String::new(),
    };
    let mut out = std::io::stdout().lock();
    for record in store.alerts(tenant.as_ref(), &after, limit)? {
        if json {
            let mut value: serde_json::Value =
                serde_json::from_str(&record.json).unwrap_or(serde_json::Value::Null);
            if let Some(object) = value.as_object_mut() {
                object.insert("count".into(), record.count.into());
                object.insert("last_seen".into(), record.last_seen.clone().into());
            }
            writeln!(out, "{value}")?;
        } else {
            writeln!(
                out,
                "{}  {:8}  {:18}  {:10}  x{}  {}",
                record.time,
                record.severity,
                record.detector,
                record.tenant.as_ref().map(|t| t.as_str()).unwrap_or("-"),
                record.count,
                record.summary
            )?;
        }
    }
    Ok(())
}

fn tenant(name: Option<&str>) -> anyhow::Result<Option<TenantName>> {
    name.map(|t| TenantName::parse(t).with_context(|| format!("tenant {t:?}")))
        .transpose()
}

/// `revoke --user | --client | --session | --ip`.
pub fn revoke(
    data: &Path,
    config: &Config,
    issuer: &Issuer,
    args: RevokeArgs,
) -> anyhow::Result<()> {
    let tenant_name = tenant(args.tenant.as_deref())?;
    let target = if let Some(user) = &args.user {
        RevocationTarget::User(Email::parse(user).with_context(|| format!("--user {user:?}"))?)
    } else if let Some(client_id) = &args.client {
        RevocationTarget::Client {
            tenant: tenant_name,
            client_id: client_id.clone(),
        }
    } else if let Some(sid) = &args.session {
        RevocationTarget::Session {
            tenant: tenant_name,
            sid: sid.clone(),
        }
    } else if let Some(ip) = &args.ip {
        RevocationTarget::Ip(ip.clone())
    } else {
        bail!("name a --user, --client, --session or --ip");
    };
    let reader = LogReader::open(&crate::audit::audit_dir(data))?;
    // Read what they saw before ending them, for the notices.
    let report = end(issuer, Some(&reader), &target)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"revoked_sessions": report.sessions.iter().map(|(t, s)| serde_json::json!({"tenant": t, "session": s})).collect::<Vec<_>>()})
        );
    } else {
        for (tenant, sid) in &report.sessions {
            println!("revoked session {sid} in tenant {tenant}");
        }
        println!("{} sessions revoked", report.sessions.len());
    }
    if args.notify {
        for (tenant, sid) in &report.sessions {
            let query = ExposureQuery {
                tenant: Some(tenant.clone()),
                session: Some(sid.clone()),
                ..ExposureQuery::default()
            };
            send_notices(
                data,
                config,
                issuer.store().as_ref(),
                &reader,
                &query,
                "An administrator revoked a sign-in session that read mail.",
                &[format!(
                    "Sign-in session {sid} and every token derived from it were revoked."
                )],
            )?;
        }
    }
    Ok(())
}

fn send_notices(
    data: &Path,
    config: &Config,
    store: &dyn Store,
    reader: &LogReader,
    query: &ExposureQuery,
    what: &str,
    done: &[String],
) -> anyhow::Result<usize> {
    let report = exposure(reader, store, query)?;
    let contacts = config.response.contacts()?;
    let owned: Arc<dyn Store> = Arc::new(SqliteStore::open(data)?);
    let delivery = Delivery::open(owned, data)?;
    let now = stormproof_types::Clock::now(&stormproof_types::SystemClock);
    let mut delivered = 0;
    for notice in exposure_notices(&report, what, done, &contacts) {
        delivered += deliver_notice(store, &delivery, &notice, now)?;
    }
    Ok(delivered)
}

/// `report exposure`.
pub fn exposure_report(
    data: &Path,
    config: &Config,
    issuer: &Issuer,
    args: ExposureArgs,
) -> anyhow::Result<()> {
    let parse = |flag: &str, text: &Option<String>| -> anyhow::Result<Option<String>> {
        text.as_deref()
            .map(|t| {
                stormproof_audit::parse_time(t)
                    .with_context(|| format!("{flag} {t:?}: use RFC 3339 or Unix seconds"))
            })
            .transpose()
    };
    let query = ExposureQuery {
        tenant: args.tenant.clone(),
        session: args.session.clone(),
        token: args.token.clone(),
        client: args.client.clone(),
        ip: args.ip.clone(),
        user: args.user.clone(),
        since: parse("--since", &args.since)?,
        until: parse("--until", &args.until)?,
    };
    let reader = LogReader::open(&crate::audit::audit_dir(data))?;
    let store = issuer.store();
    let report = exposure(&reader, store.as_ref(), &query)?;
    // The report shows subjects of customers' mail: an operator's read.
    crate::audit::record_operator_read(
        data,
        "report.exposure",
        &stormproof_audit::search::Filter {
            tenant: query.tenant.clone(),
            user: query.user.clone(),
            session: query.session.clone(),
            client: query.client.clone(),
            ip: query.ip.clone(),
            since: query.since.clone(),
            until: query.until.clone(),
            ..stormproof_audit::search::Filter::default()
        },
        report.items.len(),
    );
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} items read ({} Message-IDs with content) from the mailboxes of {}",
            report.items.len(),
            report.message_ids.len(),
            if report.owners.is_empty() {
                "nobody".to_owned()
            } else {
                report.owners.join(", ")
            }
        );
        for item in &report.items {
            println!(
                "{}  {:18} {:8}  {}  <{}>  {:?}",
                item.time,
                item.operation,
                format!("{:?}", item.access).to_lowercase(),
                item.owner.as_deref().unwrap_or("-"),
                item.message_id.as_deref().unwrap_or("-"),
                item.subject.as_deref().unwrap_or("")
            );
        }
    }
    if args.notify {
        let delivered = send_notices(
            data,
            config,
            store.as_ref(),
            &reader,
            &query,
            "Your security team found that mail was read without authority.",
            &["Your security team is investigating; the access is on the record.".to_owned()],
        )?;
        eprintln!("{delivered} notices delivered");
    }
    Ok(())
}
