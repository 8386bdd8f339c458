//! Microsoft 365 unified audit log records as audit events, so the same
//! detectors can be run over an Exchange Online tenant's history: the
//! first-seen-application rule that found Storm-0558 is meant to run here
//! too.
//!
//! Input is a JSON array or JSON lines. Each record is either the audit
//! record itself (as the Management Activity API returns it) or a Purview
//! search export row, whose `AuditData` member holds the record as a JSON
//! string or object.
//!
//! | Microsoft 365 | audit event |
//! |---|---|
//! | `MailItemsAccessed`, `MailAccessType` `Bind` | `Email/get`, access `content` |
//! | `MailItemsAccessed`, `MailAccessType` `Sync` | `Email/query`, access `metadata` |
//! | `UserLoggedIn` | `sign_in`, reason `success` |
//! | `UserLoginFailed` | `sign_in_failed`, reason `LogonError` |
//! | `CreationTime` (UTC) | `time` |
//! | `OrganizationId` (lowercased) | `tenant` |
//! | `UserId` (lowercased) | `actor.user` |
//! | `AppId`, else `ClientAppId`; sign-ins: `ApplicationId` | `actor.client_id` |
//! | `SessionId`, else `AppAccessContext.AADSessionId`; sign-ins: `DeviceProperties` `SessionId` | `actor.session` |
//! | `AppAccessContext.UniqueTokenId` | `actor.token` |
//! | `ClientIPAddress` / `ClientIP` (port removed) | `actor.ip` |
//! | `ClientInfoString`; sign-ins: `ExtendedProperties` `UserAgent` | `actor.user_agent` |
//! | `MailboxGuid` | `target.account` |
//! | `MailboxOwnerUPN` (lowercased) | `target.owner` |
//! | `Folders[].Path` | `target.mailboxes` |
//! | `Folders[].FolderItems[].InternetMessageId` | `target.items`, `target.message_ids` |
//!
//! `seq` is the record's position in the file, from 0; `actor.protocol` is
//! `m365`; `detail.m365` keeps the original operation, record type, record
//! id and both application ids. Other record types are skipped.

use serde_json::{Map, Value, json};
use stormproof_audit::{AccessKind, Actor, AuditEvent, Outcome};

use crate::view::{parse_ip, parse_time_ms};
use crate::{ErrorKind, Result};

/// Reads an export (`name` is for error messages) into events, skipping
/// records that are not mail reads or sign-ins.
pub fn parse(text: &str, name: &str) -> Result<Vec<AuditEvent>> {
    let error = |record: usize, message: String| -> crate::Error {
        ErrorKind::Input {
            path: name.to_owned(),
            record,
            message,
        }
        .into()
    };
    if !text.trim_start().starts_with('[') {
        // JSON lines, read as `stormproof detect` reads a file of them.
        return crate::input::lines_events(text.as_bytes(), crate::Format::M365, name.to_owned())
            .collect();
    }
    let all: Vec<Value> = serde_json::from_str(text).map_err(|e| error(0, e.to_string()))?;
    let records = all.into_iter().enumerate().map(|(i, v)| (i + 1, v));
    let mut events = Vec::new();
    let mut skipped = 0usize;
    for (seq, (position, record)) in records.enumerate() {
        let record = unwrap_audit_data(record).map_err(|e| error(position, e))?;
        match to_event(&record, seq as u64) {
            Some(event) => events.push(event),
            None => skipped += 1,
        }
    }
    tracing::info!(
        message = "m365 records read",
        file = name,
        events = events.len(),
        skipped
    );
    Ok(events)
}

/// A Purview export row's `AuditData`, or the record itself.
pub(crate) fn unwrap_audit_data(record: Value) -> std::result::Result<Value, String> {
    match record {
        Value::Object(mut map) => match map.remove("AuditData") {
            Some(Value::String(text)) => {
                serde_json::from_str(&text).map_err(|e| format!("AuditData: {e}"))
            }
            Some(inner @ Value::Object(_)) => Ok(inner),
            Some(_) => Err("AuditData is neither a string nor an object".into()),
            None => Ok(Value::Object(map)),
        },
        _ => Err("a record must be a JSON object".into()),
    }
}

fn field<'a>(record: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    record.get(name)?.as_str().filter(|s| !s.is_empty())
}

/// The `Value` of the `{Name, Value}` pair named `name` in a property list.
fn property<'a>(record: &'a Map<String, Value>, list: &str, name: &str) -> Option<&'a str> {
    record
        .get(list)?
        .as_array()?
        .iter()
        .find(|p| p.get("Name").and_then(Value::as_str) == Some(name))?
        .get("Value")?
        .as_str()
}

fn lower(text: Option<&str>) -> Option<String> {
    text.map(str::to_ascii_lowercase)
}

/// Converts one Microsoft 365 audit record. `None` for record types the
/// detectors have no use for.
pub fn to_event(record: &Value, seq: u64) -> Option<AuditEvent> {
    let record = record.as_object()?;
    let operation = field(record, "Operation")?;
    let time_ms = field(record, "CreationTime")
        .or_else(|| field(record, "CreationDate"))
        .and_then(parse_time_ms)?;
    let result = field(record, "ResultStatus").unwrap_or("Succeeded");
    let failed = matches!(
        result.to_ascii_lowercase().as_str(),
        "failed" | "failure" | "false"
    );
    let mut event = match operation {
        "MailItemsAccessed" => mail_items_accessed(record, time_ms)?,
        "UserLoggedIn" | "UserLoginFailed" => sign_in(record, operation, time_ms)?,
        _ => return None,
    };
    if failed && event.outcome == Outcome::Success {
        event.outcome = Outcome::Failure;
    }
    event.seq = seq;
    event.tenant = lower(field(record, "OrganizationId"));
    let original = json!({
        "operation": operation,
        "record_type": record.get("RecordType"),
        "id": field(record, "Id"),
        "workload": field(record, "Workload"),
        "app_id": field(record, "AppId").or_else(|| field(record, "ApplicationId")),
        "client_app_id": field(record, "ClientAppId"),
        "result_status": result,
    });
    if let Value::Object(detail) = &mut event.detail {
        detail.insert("m365".into(), original);
    }
    Some(event)
}

fn source_ip(record: &Map<String, Value>) -> Option<String> {
    let raw = field(record, "ClientIPAddress")
        .or_else(|| field(record, "ClientIP"))
        .or_else(|| field(record, "ActorIpAddress"))?;
    Some(parse_ip(raw).map_or_else(|| raw.to_owned(), |ip| ip.to_string()))
}

fn mail_items_accessed(record: &Map<String, Value>, time_ms: i64) -> Option<AuditEvent> {
    let access_type = property(record, "OperationProperties", "MailAccessType").unwrap_or("Bind");
    let (operation, access) = if access_type.eq_ignore_ascii_case("Sync") {
        ("Email/query", AccessKind::Metadata)
    } else {
        ("Email/get", AccessKind::Content)
    };
    let context = record.get("AppAccessContext").and_then(Value::as_object);
    let actor = Actor {
        user: lower(field(record, "UserId")),
        user_id: field(record, "UserKey").map(str::to_owned),
        client_id: field(record, "AppId")
            .or_else(|| field(record, "ClientAppId"))
            .map(str::to_owned),
        session: field(record, "SessionId")
            .or_else(|| context.and_then(|c| field(c, "AADSessionId")))
            .map(str::to_owned),
        token: context
            .and_then(|c| field(c, "UniqueTokenId"))
            .map(str::to_owned),
        ip: source_ip(record),
        user_agent: field(record, "ClientInfoString").map(str::to_owned),
        protocol: "m365".into(),
    };
    let mut event = AuditEvent::new(time_ms, operation, Outcome::Success, actor);
    event.access = access;
    let folders = record.get("Folders").and_then(Value::as_array);
    for folder in folders.into_iter().flatten() {
        if let Some(path) = folder.get("Path").and_then(Value::as_str) {
            event.target.mailboxes.push(path.to_owned());
        }
        let items = folder.get("FolderItems").and_then(Value::as_array);
        for item in items.into_iter().flatten() {
            if let Some(id) = item.get("InternetMessageId").and_then(Value::as_str) {
                event.target.items.push(id.to_owned());
            }
        }
    }
    event.target.message_ids = event.target.items.clone();
    if event.target.mailboxes.len() == 1 {
        event.target.mailbox = event.target.mailboxes.first().cloned();
    }
    event.target.account = field(record, "MailboxGuid").map(str::to_owned);
    event.target.owner = lower(field(record, "MailboxOwnerUPN"));
    let operations = record
        .get("OperationCount")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    event.count = match event.target.items.len() {
        0 => operations,
        n => n as u64,
    };
    event.detail = json!({ "mail_access_type": access_type });
    Some(event)
}

fn sign_in(record: &Map<String, Value>, operation: &str, time_ms: i64) -> Option<AuditEvent> {
    let success = operation == "UserLoggedIn";
    let session = property(record, "DeviceProperties", "SessionId").map(str::to_owned);
    let client_id = field(record, "ApplicationId").map(str::to_owned);
    let user = lower(field(record, "UserId"));
    let actor = Actor {
        user: user.clone(),
        user_id: field(record, "UserKey").map(str::to_owned),
        client_id: client_id.clone(),
        session: session.clone(),
        token: None,
        ip: source_ip(record),
        user_agent: property(record, "ExtendedProperties", "UserAgent").map(str::to_owned),
        protocol: "m365".into(),
    };
    let (name, outcome) = if success {
        ("sign_in", Outcome::Success)
    } else {
        ("sign_in_failed", Outcome::Failure)
    };
    let mut event = AuditEvent::new(time_ms, name, outcome, actor);
    event.reason = Some(if success {
        "success".to_owned()
    } else {
        field(record, "LogonError")
            .or_else(|| field(record, "ErrorNumber"))
            .unwrap_or("failed")
            .to_owned()
    });
    event.detail = json!({ "user": user, "sid": session, "client_id": client_id });
    Some(event)
}
