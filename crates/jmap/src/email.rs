//! `Email/get`, `/changes`, `/set`, `/import`, `/copy` and `/parse`
//! (RFC 8621 section 4). Query lives in `query.rs`.

use std::collections::{BTreeSet, HashSet};

use mail_parser::Message;
use serde_json::{Map, Value, json};
use stormproof_mail::{ErrorKind as DeliveryError, Target};
use stormproof_store::{ChangeType, EmailAddress, EmailRecord, EmailUpdate, MailAccount};

use crate::args::{self, Args, MethodError, SetError, map_or_null};
use crate::body::{self, BodyOptions, HeaderProp};
use crate::{Access, Ctx, blob, date, state};

/// What `Email/get` returns when the client names no properties.
const GET_DEFAULT: &[&str] = &[
    "id",
    "blobId",
    "threadId",
    "mailboxIds",
    "keywords",
    "size",
    "receivedAt",
    "messageId",
    "inReplyTo",
    "references",
    "sender",
    "from",
    "to",
    "cc",
    "bcc",
    "replyTo",
    "subject",
    "sentAt",
    "hasAttachment",
    "preview",
    "bodyValues",
    "textBody",
    "htmlBody",
    "attachments",
];

/// What `Email/parse` returns by default: no store-only properties.
const PARSE_DEFAULT: &[&str] = &[
    "messageId",
    "inReplyTo",
    "references",
    "sender",
    "from",
    "to",
    "cc",
    "bcc",
    "replyTo",
    "subject",
    "sentAt",
    "hasAttachment",
    "preview",
    "bodyValues",
    "textBody",
    "htmlBody",
    "attachments",
];

/// Properties that describe an email without revealing what it says.
const METADATA: &[&str] = &[
    "id",
    "blobId",
    "threadId",
    "mailboxIds",
    "keywords",
    "size",
    "receivedAt",
    "hasAttachment",
];

/// Properties the store's record does not hold: the blob must be parsed.
const FROM_BLOB: &[&str] = &[
    "sender",
    "bcc",
    "replyTo",
    "headers",
    "bodyStructure",
    "bodyValues",
    "textBody",
    "htmlBody",
    "attachments",
];

fn valid_property(property: &str) -> bool {
    GET_DEFAULT.contains(&property)
        || property == "headers"
        || property == "bodyStructure"
        || HeaderProp::parse(property).is_some()
}

fn needs_blob(properties: &[String]) -> bool {
    properties
        .iter()
        .any(|p| FROM_BLOB.contains(&p.as_str()) || p.starts_with("header:"))
}

/// Whether returning these properties reveals content, for the audit log.
pub(crate) fn reveals_content(properties: &[String]) -> bool {
    properties.iter().any(|p| !METADATA.contains(&p.as_str()))
}

/// An IMAP/JMAP keyword: 1 to 255 printable ASCII characters without
/// `( ) { ] % * " \` (RFC 8621 section 4.1.1).
pub(crate) fn valid_keyword(keyword: &str) -> bool {
    (1..=255).contains(&keyword.len())
        && keyword
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b"(){]%*\"\\".contains(&b))
}

fn address_list(list: &[EmailAddress]) -> Value {
    if list.is_empty() {
        return Value::Null;
    }
    Value::Array(
        list.iter()
            .map(|a| json!({ "name": a.name, "email": a.email }))
            .collect(),
    )
}

fn id_list(list: &[String]) -> Value {
    if list.is_empty() {
        Value::Null
    } else {
        json!(list)
    }
}

/// One Email object. `stored` is false for `Email/parse`, whose results
/// have no id, thread, mailboxes, keywords or arrival time.
pub(crate) fn render(
    record: &EmailRecord,
    stored: bool,
    message: Option<&Message<'_>>,
    properties: &[String],
    options: &BodyOptions,
) -> Value {
    let mut out = Map::new();
    let blob_id = record.blob_id.as_str();
    for property in properties {
        let value = match (property.as_str(), message) {
            ("id", _) if stored => json!(record.id),
            ("threadId", _) if stored => json!(record.thread_id),
            ("mailboxIds", _) if stored => Value::Object(
                record
                    .mailboxes
                    .iter()
                    .map(|m| (m.mailbox_id.clone(), Value::Bool(true)))
                    .collect(),
            ),
            ("keywords", _) if stored => Value::Object(
                record
                    .keywords
                    .iter()
                    .map(|k| (k.clone(), Value::Bool(true)))
                    .collect(),
            ),
            ("receivedAt", _) if stored => json!(date::format_utc(record.received_at)),
            ("id" | "threadId" | "mailboxIds" | "keywords" | "receivedAt", _) => Value::Null,
            ("blobId", _) => json!(blob_id),
            ("size", _) => json!(record.size),
            ("messageId", _) => json!(record.message_id.as_ref().map(|id| [id])),
            ("inReplyTo", _) => id_list(&record.in_reply_to),
            ("references", _) => id_list(&record.references),
            ("from", _) => address_list(&record.from),
            ("to", _) => address_list(&record.to),
            ("cc", _) => address_list(&record.cc),
            ("subject", _) => json!(record.subject),
            ("sentAt", Some(m)) if m.date().is_some_and(|d| d.is_valid()) => {
                json!(m.date().map(|d| d.to_rfc3339()))
            }
            ("sentAt", _) => json!(record.sent_at.map(date::format_utc)),
            ("hasAttachment", _) => json!(record.has_attachment),
            ("preview", _) => json!(record.preview),
            (_, None) => Value::Null,
            ("sender", Some(m)) => body::addresses(m.sender()),
            ("bcc", Some(m)) => body::addresses(m.bcc()),
            ("replyTo", Some(m)) => body::addresses(m.reply_to()),
            ("headers", Some(m)) => body::headers(&m.raw_message, m.headers()),
            ("bodyStructure", Some(m)) => body::body_structure(m, blob_id, options),
            ("textBody", Some(m)) => body::part_list(m, &m.text_body, blob_id, options),
            ("htmlBody", Some(m)) => body::part_list(m, &m.html_body, blob_id, options),
            ("attachments", Some(m)) => body::part_list(m, &m.attachments, blob_id, options),
            ("bodyValues", Some(m)) => body::body_values(m, options),
            (other, Some(m)) => match HeaderProp::parse(other) {
                Some(prop) => body::header_property(m, &prop),
                None => continue,
            },
        };
        out.insert(property.clone(), value);
    }
    Value::Object(out)
}

/// `Email/get`.
pub(crate) fn get(ctx: &mut Ctx<'_>, mut args: Args) -> Result<Value, MethodError> {
    let account = ctx.account(&args.required_string("accountId")?)?;
    let ids = args.strings("ids")?;
    let properties = args::properties(args.strings("properties")?, GET_DEFAULT, valid_property)?;
    let options = BodyOptions::from_args(&mut args)?;
    args.finish()?;
    let max = ctx.config().max_objects_in_get;
    let ids = match ids {
        Some(ids) => ids,
        None => ctx.all_email_ids(&account)?,
    };
    if ids.len() > max {
        return Err(MethodError::too_large(max));
    }
    let resolved: Vec<String> = ids.iter().filter_map(|id| ctx.resolve_id(id)).collect();
    let records = ctx
        .store()
        .emails(ctx.tenant(), &account.account_id, &resolved)?;
    let found: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let not_found: Vec<&String> = ids
        .iter()
        .filter(|id| {
            ctx.resolve_id(id)
                .is_none_or(|r| !found.contains(r.as_str()))
        })
        .collect();
    // Recorded before any message is loaded: the audit record can sync
    // while they are read and rendered.
    let access = Access::new(
        "Email/get",
        &account.account_id,
        reveals_content(&properties),
    )
    .with_emails(&records);
    ctx.record(access);
    let parse = needs_blob(&properties);
    let mut list = Vec::with_capacity(records.len());
    for record in &records {
        if parse {
            let raw = ctx.delivery().blobs().get(&record.blob_id)?;
            let message = body::parse_message(&raw);
            list.push(render(
                record,
                true,
                message.as_ref(),
                &properties,
                &options,
            ));
        } else {
            list.push(render(record, true, None, &properties, &options));
        }
    }
    Ok(json!({
        "accountId": account.account_id,
        "state": state(&account),
        "list": list,
        "notFound": not_found,
    }))
}

/// `Email/changes`.
pub(crate) fn changes(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    crate::changes_response(ctx, args, ChangeType::Email)
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// A `{id: true}` set, as used by `keywords` and `mailboxIds`.
fn true_set(value: &Value) -> Option<Vec<String>> {
    value
        .as_object()?
        .iter()
        .map(|(k, v)| (v == &Value::Bool(true)).then(|| k.clone()))
        .collect()
}

fn update_one(
    ctx: &Ctx<'_>,
    account: &MailAccount,
    mailbox_ids: &HashSet<String>,
    record: &EmailRecord,
    patch: &Value,
) -> Result<(), SetError> {
    let Value::Object(patch) = patch else {
        return Err(SetError::invalid(&[], "a patch must be an object"));
    };
    let mut keywords: BTreeSet<String> = record.keywords.iter().cloned().collect();
    let mut mailboxes: BTreeSet<String> = record
        .mailboxes
        .iter()
        .map(|m| m.mailbox_id.clone())
        .collect();
    let (mut whole, mut partial) = (HashSet::new(), HashSet::new());
    let mut bad: Vec<String> = Vec::new();
    for (path, value) in patch {
        let (head, tail) = match path.split_once('/') {
            Some((head, tail)) => (head, Some(unescape(tail))),
            None => (path.as_str(), None),
        };
        let ok = match (head, tail) {
            ("keywords", None) => match true_set(value) {
                Some(set) if set.iter().all(|k| valid_keyword(k)) => {
                    keywords = set.iter().map(|k| k.to_ascii_lowercase()).collect();
                    whole.insert(head)
                }
                _ => false,
            },
            ("keywords", Some(keyword)) if valid_keyword(&keyword) => {
                let keyword = keyword.to_ascii_lowercase();
                partial.insert(head);
                match value {
                    Value::Bool(true) => {
                        keywords.insert(keyword);
                        true
                    }
                    // `null` is the RFC 8620 way to remove a patched
                    // member; `false` is what some clients (jmap-client
                    // among them) send, and can mean nothing else.
                    Value::Null | Value::Bool(false) => {
                        keywords.remove(&keyword);
                        true
                    }
                    _ => false,
                }
            }
            ("mailboxIds", None) => match true_set(value) {
                Some(set) => {
                    mailboxes = set
                        .iter()
                        .map(|id| ctx.resolve_id(id).unwrap_or_else(|| id.clone()))
                        .collect();
                    whole.insert(head)
                }
                None => false,
            },
            ("mailboxIds", Some(id)) => {
                let id = ctx.resolve_id(&id).unwrap_or(id);
                partial.insert(head);
                match value {
                    Value::Bool(true) => {
                        mailboxes.insert(id);
                        true
                    }
                    // `null` is the RFC 8620 way to remove a patched
                    // member; `false` is what some clients (jmap-client
                    // among them) send, and can mean nothing else.
                    Value::Null | Value::Bool(false) => {
                        mailboxes.remove(&id);
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if !ok {
            bad.push(path.clone());
        }
    }
    if let Some(both) = whole.intersection(&partial).next() {
        return Err(SetError::new(
            "invalidPatch",
            format!("'{both}' is both replaced and patched"),
        ));
    }
    if mailboxes.is_empty() || mailboxes.iter().any(|m| !mailbox_ids.contains(m)) {
        bad.push("mailboxIds".into());
    }
    if !bad.is_empty() {
        let mut error = SetError::invalid(
            &[],
            "only keywords and mailboxIds can be changed, to valid values",
        );
        error.properties = bad;
        return Err(error);
    }
    let old_keywords: BTreeSet<String> = record.keywords.iter().cloned().collect();
    let old_mailboxes: BTreeSet<String> = record
        .mailboxes
        .iter()
        .map(|m| m.mailbox_id.clone())
        .collect();
    let update = EmailUpdate {
        keywords: (keywords != old_keywords).then(|| keywords.into_iter().collect()),
        mailbox_ids: (mailboxes != old_mailboxes).then(|| mailboxes.into_iter().collect()),
    };
    if update == EmailUpdate::default() {
        return Ok(());
    }
    ctx.store()
        .update_email(ctx.tenant(), &account.account_id, &record.id, &update)
        .map_err(|e| match e.kind {
            stormproof_store::ErrorKind::NotFound(what) if what.starts_with("mailbox") => {
                SetError::invalid(&["mailboxIds"], "no such mailbox")
            }
            _ => SetError::from(e),
        })
}

/// `Email/set`: updates of keywords and mailboxes, and destroy. Creating an
/// email from parts is not offered: upload the message and `Email/import` it.
pub(crate) fn set(ctx: &mut Ctx<'_>, mut args: Args) -> Result<Value, MethodError> {
    let account = ctx.account(&args.required_string("accountId")?)?;
    let if_in_state = args.string("ifInState")?;
    let create = args.object("create")?.unwrap_or_default();
    let update = args.object("update")?.unwrap_or_default();
    let destroy = args.strings("destroy")?.unwrap_or_default();
    args.finish()?;
    let max = ctx.config().max_objects_in_set;
    if create.len() + update.len() + destroy.len() > max {
        return Err(MethodError::too_large(max));
    }
    if if_in_state.is_some_and(|s| s != state(&account)) {
        return Err(MethodError::state_mismatch());
    }
    let not_created: Map<String, Value> = create
        .keys()
        .map(|cid| {
            (
                cid.clone(),
                SetError::new(
                    "forbidden",
                    "creating emails from parts is not supported; upload the message and use Email/import",
                )
                .to_json(),
            )
        })
        .collect();

    let mailbox_ids: HashSet<String> = ctx
        .store()
        .mailboxes(ctx.tenant(), &account.account_id)?
        .into_iter()
        .map(|m| m.id)
        .collect();
    let (mut updated, mut not_updated) = (Map::new(), Map::new());
    for (key, patch) in &update {
        let record = match ctx.resolve_id(key) {
            Some(id) => ctx
                .store()
                .emails(ctx.tenant(), &account.account_id, &[id])?
                .pop(),
            None => None,
        };
        let outcome = match &record {
            Some(record) => update_one(ctx, &account, &mailbox_ids, record, patch),
            None => Err(SetError::not_found()),
        };
        match outcome {
            Ok(()) => {
                updated.insert(key.clone(), Value::Null);
            }
            Err(error) => {
                not_updated.insert(key.clone(), error.to_json());
            }
        }
    }

    let (mut destroyed, mut not_destroyed) = (Vec::new(), Map::new());
    for key in destroy {
        let outcome = match ctx.resolve_id(&key) {
            Some(id) => ctx
                .store()
                .destroy_email(ctx.tenant(), &account.account_id, &id)
                .map(|()| id)
                .map_err(SetError::from),
            None => Err(SetError::not_found()),
        };
        match outcome {
            Ok(id) => destroyed.push(id),
            Err(error) => {
                not_destroyed.insert(key, error.to_json());
            }
        }
    }

    let after = ctx.account(&account.account_id)?;
    Ok(json!({
        "accountId": account.account_id,
        "oldState": state(&account),
        "newState": state(&after),
        "created": Value::Null,
        "updated": map_or_null(updated),
        "destroyed": if destroyed.is_empty() { Value::Null } else { json!(destroyed) },
        "notCreated": map_or_null(not_created),
        "notUpdated": map_or_null(not_updated),
        "notDestroyed": map_or_null(not_destroyed),
    }))
}

fn import_one(
    ctx: &Ctx<'_>,
    account: &MailAccount,
    mailbox_ids: &HashSet<String>,
    object: &Value,
) -> Result<Value, SetError> {
    let Value::Object(object) = object else {
        return Err(SetError::invalid(&[], "an EmailImport must be an object"));
    };
    let mut bad: Vec<String> = object
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "blobId" | "mailboxIds" | "keywords" | "receivedAt"
            )
        })
        .cloned()
        .collect();
    let blob_id = object.get("blobId").and_then(Value::as_str);
    if blob_id.is_none() {
        bad.push("blobId".into());
    }
    let mailboxes: Option<Vec<String>> = object
        .get("mailboxIds")
        .and_then(true_set)
        .map(|set| {
            set.iter()
                .map(|id| ctx.resolve_id(id).unwrap_or_else(|| id.clone()))
                .collect()
        })
        .filter(|set: &Vec<String>| !set.is_empty() && set.iter().all(|m| mailbox_ids.contains(m)));
    if mailboxes.is_none() {
        bad.push("mailboxIds".into());
    }
    let keywords: Option<Vec<String>> = match object.get("keywords") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(value) => true_set(value)
            .filter(|set| set.iter().all(|k| valid_keyword(k)))
            .map(|set| set.iter().map(|k| k.to_ascii_lowercase()).collect()),
    };
    if keywords.is_none() {
        bad.push("keywords".into());
    }
    let received_at = match object.get("receivedAt") {
        None | Some(Value::Null) => Some(ctx.now()),
        Some(value) => value.as_str().and_then(date::parse_utc),
    };
    if received_at.is_none() {
        bad.push("receivedAt".into());
    }
    let (Some(blob_id), Some(mailboxes), Some(keywords), Some(received_at), true) =
        (blob_id, mailboxes, keywords, received_at, bad.is_empty())
    else {
        let mut error = SetError::invalid(&[], "invalid or unknown EmailImport properties");
        error.properties = bad;
        return Err(error);
    };
    let raw = blob::read(
        ctx.store(),
        ctx.delivery().blobs(),
        ctx.tenant(),
        &account.account_id,
        blob_id,
    )?
    .ok_or_else(|| SetError {
        not_found: vec![blob_id.to_owned()],
        ..SetError::new("blobNotFound", "no such blob in this account")
    })?;
    let stored = ctx
        .delivery()
        .deliver(
            ctx.tenant(),
            &account.account_id,
            &raw,
            Target::Mailboxes(&mailboxes),
            &keywords,
            received_at,
        )
        .map_err(|e| match e.kind {
            DeliveryError::NotAMessage => {
                SetError::new("invalidEmail", "the blob is not an RFC 5322 message")
            }
            DeliveryError::TooLarge => SetError::new("tooLarge", "the message is too large"),
            DeliveryError::NoMailbox(_) => SetError::invalid(&["mailboxIds"], "no such mailbox"),
            DeliveryError::Store(e) => SetError::from(e),
            _ => SetError::new("serverFail", "delivery failed"),
        })?;
    let record = ctx
        .store()
        .emails(
            ctx.tenant(),
            &account.account_id,
            std::slice::from_ref(&stored.email_id),
        )?
        .pop();
    Ok(json!({
        "id": stored.email_id,
        "blobId": record.as_ref().map_or(blob_id, |r| r.blob_id.as_str()),
        "threadId": stored.thread_id,
        "size": record.map_or(raw.len() as i64, |r| r.size),
    }))
}

/// `Email/import`: each blob goes through the same delivery path as SMTP.
pub(crate) fn import(ctx: &mut Ctx<'_>, mut args: Args) -> Result<Value, MethodError> {
    let account = ctx.account(&args.required_string("accountId")?)?;
    let if_in_state = args.string("ifInState")?;
    let emails = args
        .object("emails")?
        .ok_or_else(|| MethodError::invalid_arguments("'emails' is required"))?;
    args.finish()?;
    let max = ctx.config().max_objects_in_set;
    if emails.len() > max {
        return Err(MethodError::too_large(max));
    }
    if if_in_state.is_some_and(|s| s != state(&account)) {
        return Err(MethodError::state_mismatch());
    }
    let mailbox_ids: HashSet<String> = ctx
        .store()
        .mailboxes(ctx.tenant(), &account.account_id)?
        .into_iter()
        .map(|m| m.id)
        .collect();
    let (mut created, mut not_created) = (Map::new(), Map::new());
    // Importing reads an uploaded blob's content into the mailbox.
    let mut access = Access::new("Email/import", &account.account_id, true);
    for (cid, object) in &emails {
        match import_one(ctx, &account, &mailbox_ids, object) {
            Ok(value) => {
                if let Some(id) = value.get("id").and_then(Value::as_str) {
                    ctx.created_ids.insert(cid.clone(), id.to_owned());
                    access.email_ids.push(id.to_owned());
                }
                if let Some(blob) = value.get("blobId").and_then(Value::as_str) {
                    access.blob_ids.push(blob.to_owned());
                }
                created.insert(cid.clone(), value);
            }
            Err(error) => {
                not_created.insert(cid.clone(), error.to_json());
            }
        }
    }
    if !access.email_ids.is_empty() {
        ctx.record(access);
    }
    let after = ctx.account(&account.account_id)?;
    Ok(json!({
        "accountId": account.account_id,
        "oldState": state(&account),
        "newState": state(&after),
        "created": map_or_null(created),
        "notCreated": map_or_null(not_created),
    }))
}

/// `Email/copy`. RFC 8620 section 5.4 copies between two different
/// accounts; a caller here has exactly one, so every call ends in an error:
/// `accountNotFound`/`fromAccountNotFound` for an account that is not the
/// caller's, `invalidArguments` when both name the caller's own.
pub(crate) fn copy(ctx: &mut Ctx<'_>, mut args: Args) -> Result<Value, MethodError> {
    let from = args.required_string("fromAccountId")?;
    ctx.account(&args.required_string("accountId")?)?;
    args.string("ifFromInState")?;
    args.string("ifInState")?;
    args.object("create")?
        .ok_or_else(|| MethodError::invalid_arguments("'create' is required"))?;
    args.bool("onSuccessDestroyOriginal")?;
    args.string("destroyFromIfInState")?;
    args.finish()?;
    if ctx.account(&from).is_err() {
        return Err(MethodError {
            kind: "fromAccountNotFound",
            description: None,
        });
    }
    Err(MethodError::invalid_arguments(
        "fromAccountId must differ from accountId, and a caller has only one account",
    ))
}

fn record_from_parsed(
    parsed: stormproof_store::NewEmail,
    blob_id: &str,
    size: usize,
) -> EmailRecord {
    EmailRecord {
        id: String::new(),
        blob_id: blob_id.to_owned(),
        thread_id: String::new(),
        size: size as i64,
        received_at: 0,
        sent_at: parsed.sent_at,
        message_id: parsed.message_id,
        in_reply_to: parsed.in_reply_to,
        references: parsed.references,
        subject: parsed.subject,
        from: parsed.from,
        to: parsed.to,
        cc: parsed.cc,
        preview: parsed.preview,
        has_attachment: parsed.has_attachment,
        mailboxes: Vec::new(),
        keywords: Vec::new(),
    }
}

/// `Email/parse`: blobs the account owns (uploads, stored emails, attached
/// messages) as Email objects without ids.
pub(crate) fn parse(ctx: &mut Ctx<'_>, mut args: Args) -> Result<Value, MethodError> {
    let account = ctx.account(&args.required_string("accountId")?)?;
    let blob_ids = args
        .strings("blobIds")?
        .ok_or_else(|| MethodError::invalid_arguments("'blobIds' is required"))?;
    let requested = args.strings("properties")?;
    let asked_for_id = requested
        .as_ref()
        .is_some_and(|list| list.iter().any(|p| p == "id"));
    let mut properties = args::properties(requested, PARSE_DEFAULT, valid_property)?;
    if !asked_for_id {
        properties.retain(|p| p != "id");
    }
    let options = BodyOptions::from_args(&mut args)?;
    args.finish()?;
    let max = ctx.config().max_objects_in_get;
    if blob_ids.len() > max {
        return Err(MethodError::too_large(max));
    }
    let mut parsed = Map::new();
    let (mut not_parsable, mut not_found) = (Vec::new(), Vec::new());
    let mut access = Access::new("Email/parse", &account.account_id, true);
    for blob_id in blob_ids {
        let Some(raw) = blob::read(
            ctx.store(),
            ctx.delivery().blobs(),
            ctx.tenant(),
            &account.account_id,
            &blob_id,
        )?
        else {
            not_found.push(blob_id);
            continue;
        };
        let (Ok(fields), Some(message)) =
            (stormproof_mail::parse(&raw, 0), body::parse_message(&raw))
        else {
            not_parsable.push(blob_id);
            continue;
        };
        let record = record_from_parsed(fields, &blob_id, raw.len());
        access.blob_ids.push(blob_id.clone());
        access.message_ids.extend(record.message_id.clone());
        let email = render(&record, false, Some(&message), &properties, &options);
        parsed.insert(blob_id, email);
    }
    if !access.blob_ids.is_empty() {
        ctx.record(access);
    }
    Ok(json!({
        "accountId": account.account_id,
        "parsed": map_or_null(parsed),
        "notParsable": not_parsable,
        "notFound": not_found,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords() {
        let cases: &[(&str, bool)] = &[
            ("$seen", true),
            ("$Flagged", true),
            ("work-item_7", true),
            ("", false),
            ("two words", false),
            ("brace{", false),
            ("bracket[", true),
            ("brace]", false),
            ("100%", false),
            ("star*", false),
            ("quote\"", false),
            ("back\\slash", false),
            ("(paren", false),
            ("naïve", false),
        ];
        for (keyword, expect) in cases {
            assert_eq!(valid_keyword(keyword), *expect, "{keyword}");
        }
        assert!(!valid_keyword(&"k".repeat(256)));
    }

    #[test]
    fn content_or_metadata() {
        let cases: &[(&[&str], bool)] = &[
            (&["id", "keywords", "mailboxIds", "threadId"], false),
            (
                &["id", "size", "receivedAt", "blobId", "hasAttachment"],
                false,
            ),
            (&["id", "subject"], true),
            (&["id", "preview"], true),
            (&["id", "header:X-Secret:asText"], true),
            (&["id", "bodyValues"], true),
            (&["id", "from"], true),
        ];
        for (properties, expect) in cases {
            let list: Vec<String> = properties.iter().map(|p| (*p).to_owned()).collect();
            assert_eq!(reveals_content(&list), *expect, "{properties:?}");
        }
    }
}
