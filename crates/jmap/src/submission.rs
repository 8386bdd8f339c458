//! `EmailSubmission/get`, `/changes`, `/query`, `/queryChanges` and `/set`
//! (RFC 8621 section 7).
//!
//! Sending happens inside `/set`, and only to users of this server, in any
//! tenant: a recipient is local when a tenant here owns its domain and has
//! an enabled user with a mail account at that address, the same rule the
//! SMTP front applies. Each copy goes into the recipient's inbox through
//! `Delivery::deliver` before the call answers, so every submission is
//! `final` at once and none can be undone.
//!
//! This server has no outbound relay yet. A submission naming any other
//! recipient is refused whole with `forbiddenToSend`, and nothing is
//! delivered to anyone.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use mail_parser::{Address, Message};
use serde_json::{Map, Value, json};
use stormproof_mail::{ErrorKind as DeliveryError, Target};
use stormproof_store::{
    ChangeType, EmailRecord, EmailSubmissionRecord, IdentityRecord, MailAccount,
    NewEmailSubmission, Store,
};
use stormproof_types::{Email, TenantName};

use crate::args::{self, Args, MethodError, SetError, map_or_null};
use crate::identity::same_address;
use crate::query::{self, Filter, Window};
use crate::{Access, Ctx, MAX_SUBMISSION_RECIPIENTS, body, date, email, state};

const PROPERTIES: &[&str] = &[
    "id",
    "identityId",
    "emailId",
    "threadId",
    "envelope",
    "sendAt",
    "undoStatus",
    "deliveryStatus",
    "dsnBlobIds",
    "mdnBlobIds",
];

/// Properties that tell who a message went to.
const RECIPIENT_PROPERTIES: &[&str] = &["envelope", "deliveryStatus"];

/// Every submission is delivered before `/set` answers.
const FINAL: &str = "final";

fn render(submission: &EmailSubmissionRecord, properties: &[String]) -> Value {
    let stored = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let mut out = Map::new();
    for property in properties {
        let value = match property.as_str() {
            "id" => json!(submission.id),
            "identityId" => json!(submission.identity_id),
            "emailId" => json!(submission.email_id),
            "threadId" => json!(submission.thread_id),
            "envelope" => stored(&submission.envelope),
            "sendAt" => json!(date::format_utc(submission.send_at)),
            "undoStatus" => json!(submission.undo_status),
            "deliveryStatus" => stored(&submission.delivery_status),
            "dsnBlobIds" | "mdnBlobIds" => json!([]),
            _ => continue,
        };
        out.insert(property.clone(), value);
    }
    Value::Object(out)
}

/// `EmailSubmission/get`. Recorded as a read of the emails it names, and
/// of content when it returns recipients.
pub(crate) fn get(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    let (account, ids, properties) = ctx.standard_get(args, PROPERTIES)?;
    let all = ctx
        .store()
        .email_submissions(ctx.tenant(), &account.account_id)?;
    let (mut found, mut not_found) = (Vec::new(), Vec::new());
    match ids {
        None => found.extend(all.iter()),
        Some(ids) => {
            for id in ids {
                let resolved = ctx.resolve_id(&id);
                match all.iter().find(|s| Some(&s.id) == resolved.as_ref()) {
                    Some(submission) => found.push(submission),
                    None => not_found.push(id),
                }
            }
        }
    }
    let max = ctx.config().max_objects_in_get;
    if found.len() > max {
        return Err(MethodError::too_large(max));
    }
    let content = properties
        .iter()
        .any(|p| RECIPIENT_PROPERTIES.contains(&p.as_str()));
    let mut access = Access::new("EmailSubmission/get", &account.account_id, content);
    access.email_ids = found.iter().map(|s| s.email_id.clone()).collect();
    ctx.record(access);
    let list: Vec<Value> = found.iter().map(|s| render(s, &properties)).collect();
    Ok(json!({
        "accountId": account.account_id,
        "state": state(&account),
        "list": list,
        "notFound": not_found,
    }))
}

/// `EmailSubmission/changes`.
pub(crate) fn changes(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    crate::changes_response(ctx, args, ChangeType::EmailSubmission)
}

/// One `EmailSubmission/query` filter condition.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    IdentityIds(Vec<String>),
    EmailIds(Vec<String>),
    ThreadIds(Vec<String>),
    UndoStatus(String),
    Before(i64),
    After(i64),
}

fn condition(ctx: &Ctx<'_>, map: Map<String, Value>) -> Result<Vec<Cond>, MethodError> {
    let bad =
        |name: &str, what: &str| MethodError::invalid_arguments(format!("'{name}' must be {what}"));
    map.into_iter()
        .map(|(name, value)| {
            let ids = |value: Value| {
                args::strings(value)
                    .map(|ids| {
                        ids.into_iter()
                            .map(|id| ctx.resolve_id(&id).unwrap_or(id))
                            .collect()
                    })
                    .ok_or_else(|| bad(&name, "an array of ids"))
            };
            let when = |value: &Value| {
                value
                    .as_str()
                    .and_then(date::parse_utc)
                    .ok_or_else(|| bad(&name, "a UTCDate"))
            };
            Ok(match name.as_str() {
                "identityIds" => Cond::IdentityIds(ids(value)?),
                "emailIds" => Cond::EmailIds(ids(value)?),
                "threadIds" => Cond::ThreadIds(ids(value)?),
                "undoStatus" => match value {
                    Value::String(status) => Cond::UndoStatus(status),
                    _ => return Err(bad(&name, "a string")),
                },
                "before" => Cond::Before(when(&value)?),
                "after" => Cond::After(when(&value)?),
                _ => {
                    return Err(MethodError::new(
                        "unsupportedFilter",
                        format!("unknown filter property '{name}'"),
                    ));
                }
            })
        })
        .collect()
}

fn matches(cond: &Cond, s: &EmailSubmissionRecord) -> bool {
    match cond {
        Cond::IdentityIds(ids) => ids.contains(&s.identity_id),
        Cond::EmailIds(ids) => ids.contains(&s.email_id),
        Cond::ThreadIds(ids) => ids.contains(&s.thread_id),
        Cond::UndoStatus(status) => &s.undo_status == status,
        Cond::Before(time) => s.send_at < *time,
        Cond::After(time) => s.send_at >= *time,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    EmailId,
    ThreadId,
    SentAt,
}

fn sort_key(property: &str, _: &mut Map<String, Value>) -> Result<Option<SortKey>, MethodError> {
    Ok(match property {
        "emailId" => Some(SortKey::EmailId),
        "threadId" => Some(SortKey::ThreadId),
        "sentAt" => Some(SortKey::SentAt),
        _ => None,
    })
}

type Parsed = (Option<Filter<Vec<Cond>>>, Vec<(SortKey, bool)>);

fn parse_query(ctx: &Ctx<'_>, args: &mut Args) -> Result<Parsed, MethodError> {
    let filter = args
        .value("filter")
        .map(|f| query::parse_filter(f, &mut |map| condition(ctx, map)))
        .transpose()?;
    let sort = query::parse_sort(args.value("sort"), sort_key)?;
    Ok((filter, sort))
}

fn run_query(submissions: &[EmailSubmissionRecord], (filter, sort): &Parsed) -> Vec<String> {
    let mut hits: Vec<&EmailSubmissionRecord> = submissions
        .iter()
        .filter(|s| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&|conds: &Vec<Cond>| conds.iter().all(|c| matches(c, s))))
        })
        .collect();
    // The store lists oldest first; a stable sort keeps that for ties.
    hits.sort_by(|a, b| {
        sort.iter()
            .map(|(key, ascending)| {
                let order = match key {
                    SortKey::EmailId => a.email_id.cmp(&b.email_id),
                    SortKey::ThreadId => a.thread_id.cmp(&b.thread_id),
                    SortKey::SentAt => a.send_at.cmp(&b.send_at),
                };
                if *ascending { order } else { order.reverse() }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    hits.into_iter().map(|s| s.id.clone()).collect()
}

/// `EmailSubmission/query`.
pub(crate) fn query(ctx: &mut Ctx<'_>, mut args: Args) -> Result<Value, MethodError> {
    let account = ctx.account(&args.required_string("accountId")?)?;
    let parsed = parse_query(ctx, &mut args)?;
    let window = Window::from_args(&mut args)?;
    args.finish()?;
    let submissions = ctx
        .store()
        .email_submissions(ctx.tenant(), &account.account_id)?;
    let ids = run_query(&submissions, &parsed);
    let page = window.apply(&ids, None)?;
    Ok(window.response(&account.account_id, state(&account), page, ids.len()))
}

/// `EmailSubmission/queryChanges`.
pub(crate) fn query_changes(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    query::query_changes(
        ctx,
        args,
        |args| parse_query(ctx, args),
        |ctx, account, parsed| {
            let submissions = ctx
                .store()
                .email_submissions(ctx.tenant(), &account.account_id)?;
            Ok(run_query(&submissions, &parsed).len())
        },
    )
}

/// The SMTP envelope of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Envelope {
    mail_from: String,
    rcpt_to: Vec<String>,
}

impl Envelope {
    fn to_json(&self) -> Value {
        json!({
            "mailFrom": { "email": self.mail_from, "parameters": null },
            "rcptTo": self.rcpt_to.iter()
                .map(|email| json!({ "email": email, "parameters": null }))
                .collect::<Vec<_>>(),
        })
    }
}

fn invalid_envelope(description: &str) -> SetError {
    SetError::invalid(&["envelope"], description)
}

/// One envelope `Address`. SMTP parameters are refused: the server offers
/// no submission extensions.
fn envelope_address(value: &Value) -> Result<String, SetError> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid_envelope("an envelope Address must be an object"))?;
    if object.keys().any(|k| k != "email" && k != "parameters") {
        return Err(invalid_envelope(
            "an envelope Address has only email and parameters",
        ));
    }
    match object.get("parameters") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) if p.is_empty() => {}
        Some(_) => {
            return Err(invalid_envelope(
                "SMTP parameters are not supported: submissionExtensions is empty",
            ));
        }
    }
    object
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| invalid_envelope("an envelope Address needs an email string"))
}

fn parse_envelope(value: &Value) -> Result<Envelope, SetError> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid_envelope("the envelope must be an object"))?;
    if object.keys().any(|k| k != "mailFrom" && k != "rcptTo") {
        return Err(invalid_envelope("an Envelope has only mailFrom and rcptTo"));
    }
    let mail_from = envelope_address(
        object
            .get("mailFrom")
            .ok_or_else(|| invalid_envelope("the envelope needs mailFrom"))?,
    )?;
    let rcpt_to = object
        .get("rcptTo")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid_envelope("the envelope needs an rcptTo array"))?
        .iter()
        .map(envelope_address)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Envelope { mail_from, rcpt_to })
}

fn address_strings(address: Option<&Address<'_>>) -> Vec<String> {
    address
        .map(|a| {
            a.iter()
                .filter_map(|addr| addr.address().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The envelope RFC 8621 section 7 derives when the client gives none:
/// `Sender:` (else the first `From:`) and every `To:`, `Cc:` and `Bcc:`.
fn derived_envelope(message: &Message<'_>, record: &EmailRecord) -> Envelope {
    let mail_from = address_strings(message.sender())
        .into_iter()
        .next()
        .or_else(|| record.from.first().map(|a| a.email.clone()))
        .unwrap_or_default();
    let rcpt_to = [message.to(), message.cc(), message.bcc()]
        .into_iter()
        .flat_map(address_strings)
        .collect();
    Envelope { mail_from, rcpt_to }
}

/// Where one recipient's copy goes.
enum Destination {
    /// A user of this server: the tenant and mail account.
    Local(TenantName, String),
    /// A domain no tenant here owns.
    Remote,
    /// A domain of this server without such a user.
    Unknown,
}

/// The SMTP front's rule for local recipients, across all tenants.
fn destination(store: &dyn Store, address: &Email) -> Result<Destination, SetError> {
    let Some(tenant) = store.tenant_for_domain(address.domain())? else {
        return Ok(Destination::Remote);
    };
    let Some(user) = store
        .user_by_email(&tenant, address)?
        .filter(|user| user.enabled)
    else {
        return Ok(Destination::Unknown);
    };
    Ok(match store.mail_account_for_user(&tenant, &user.id)? {
        Some(account) => Destination::Local(tenant, account.account_id),
        None => Destination::Unknown,
    })
}

fn recipients_error(kind: &'static str, description: String, addresses: Vec<String>) -> SetError {
    let mut error = SetError::new(kind, description);
    error
        .extra
        .insert("invalidRecipients".into(), json!(addresses));
    error
}

/// The raw message without its `Bcc:` fields, which would tell every
/// recipient who else was blind-copied (RFC 5322 section 3.6.3).
fn without_bcc(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    let mut skipping = false;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        if line == b"\r\n" || line == b"\n" {
            // The end of the header section: the body goes as it is.
            out.extend_from_slice(rest);
            return out;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            skipping = line
                .iter()
                .position(|&b| b == b':')
                .is_some_and(|colon| line[..colon].trim_ascii_end().eq_ignore_ascii_case(b"bcc"));
        }
        if !skipping {
            out.extend_from_slice(line);
        }
        rest = tail;
    }
    out
}

/// What a successful create produced.
struct Sent {
    response: Value,
    submission_id: String,
    email_id: String,
}

/// Checks, delivers and records one submission. `read` collects every
/// email whose content was read, for the audit log.
fn create_one(
    ctx: &Ctx<'_>,
    account: &MailAccount,
    identities: &[IdentityRecord],
    object: &Value,
    read: &mut Vec<EmailRecord>,
) -> Result<Sent, SetError> {
    let Value::Object(object) = object else {
        return Err(SetError::invalid(
            &[],
            "an EmailSubmission must be an object",
        ));
    };
    let bad: Vec<String> = object
        .keys()
        .filter(|k| !matches!(k.as_str(), "identityId" | "emailId" | "envelope"))
        .cloned()
        .collect();
    if !bad.is_empty() {
        return Err(SetError {
            properties: bad,
            ..SetError::new(
                "invalidProperties",
                "only identityId, emailId and envelope can be set",
            )
        });
    }
    let identity = object
        .get("identityId")
        .and_then(Value::as_str)
        .and_then(|id| ctx.resolve_id(id))
        .and_then(|id| identities.iter().find(|i| i.id == id))
        .ok_or_else(|| SetError::invalid(&["identityId"], "no such identity"))?;
    let record = match object
        .get("emailId")
        .and_then(Value::as_str)
        .and_then(|id| ctx.resolve_id(id))
    {
        Some(id) => ctx
            .store()
            .emails(ctx.tenant(), &account.account_id, &[id])?
            .pop(),
        None => None,
    }
    .ok_or_else(|| SetError::invalid(&["emailId"], "no such email"))?;
    if record.from.is_empty()
        || !record
            .from
            .iter()
            .all(|a| same_address(&a.email, &identity.email))
    {
        return Err(SetError::new(
            "forbiddenFrom",
            format!(
                "the email's From must be the identity's address, {}",
                identity.email
            ),
        ));
    }

    let raw = ctx.delivery().blobs().get(&record.blob_id)?;
    read.push(record.clone());
    let given = object.get("envelope").filter(|v| !v.is_null());
    let envelope = match given {
        Some(value) => parse_envelope(value)?,
        None => {
            let message = body::parse_message(&raw)
                .ok_or_else(|| SetError::new("invalidEmail", "the email cannot be parsed"))?;
            derived_envelope(&message, &record)
        }
    };
    if !same_address(&envelope.mail_from, &identity.email) {
        return Err(SetError::new(
            "forbiddenMailFrom",
            format!(
                "the envelope's mailFrom must be the identity's address, {}",
                identity.email
            ),
        ));
    }

    // Recipients, each once, in order.
    let (mut rcpt_to, mut invalid, mut seen) = (Vec::new(), Vec::new(), HashSet::new());
    for address in &envelope.rcpt_to {
        match Email::parse(address) {
            Ok(parsed) => {
                if seen.insert(parsed.clone()) {
                    rcpt_to.push(parsed);
                }
            }
            Err(_) => invalid.push(address.clone()),
        }
    }
    if !invalid.is_empty() {
        return Err(recipients_error(
            "invalidRecipients",
            "these recipients are not email addresses".into(),
            invalid,
        ));
    }
    if rcpt_to.is_empty() {
        return Err(SetError::new(
            "noRecipients",
            "the envelope has no recipients",
        ));
    }
    if rcpt_to.len() > MAX_SUBMISSION_RECIPIENTS {
        let mut error = SetError::new(
            "tooManyRecipients",
            format!("at most {MAX_SUBMISSION_RECIPIENTS} recipients per submission"),
        );
        error
            .extra
            .insert("maxRecipients".into(), json!(MAX_SUBMISSION_RECIPIENTS));
        return Err(error);
    }
    let mut local = Vec::new();
    let (mut remote, mut unknown) = (Vec::new(), Vec::new());
    for address in &rcpt_to {
        match destination(ctx.store(), address)? {
            Destination::Local(tenant, account_id) => local.push((address, tenant, account_id)),
            Destination::Remote => remote.push(address.to_string()),
            Destination::Unknown => unknown.push(address.to_string()),
        }
    }
    if !remote.is_empty() {
        return Err(SetError::new(
            "forbiddenToSend",
            format!(
                "remote delivery is not available: this server has no outbound relay yet, \
                 so it can only deliver to its own users; {} cannot be reached. \
                 Nothing was sent.",
                remote.join(", ")
            ),
        ));
    }
    if !unknown.is_empty() {
        return Err(recipients_error(
            "invalidRecipients",
            "no such user on this server".into(),
            unknown,
        ));
    }

    // Deliver, as the SMTP front does: trace fields first, then the
    // message without its Bcc.
    let now = ctx.now();
    let mut message = format!(
        "Return-Path: <{}>\r\nReceived: by {} with JMAP; {}\r\n",
        envelope.mail_from,
        ctx.config().hostname,
        date::format_rfc5322(now),
    )
    .into_bytes();
    message.extend_from_slice(&without_bcc(&raw));
    let mut status = Map::new();
    for (address, tenant, account_id) in local {
        let outcome = ctx.delivery().deliver(
            &tenant,
            &account_id,
            &message,
            Target::Role("inbox"),
            &[],
            now,
        );
        let (reply, delivered) = match outcome {
            Ok(_) => ("250 2.1.5 Delivered", "yes"),
            Err(error) => {
                tracing::warn!(message = "JMAP submission: local delivery failed", %error);
                match error.kind {
                    DeliveryError::TooLarge => {
                        return Err(SetError::new("tooLarge", "the message is too large"));
                    }
                    DeliveryError::Store(e)
                        if matches!(e.kind, stormproof_store::ErrorKind::QuotaExceeded { .. }) =>
                    {
                        ("552 5.2.2 Mailbox full", "no")
                    }
                    _ => ("451 4.3.0 Local delivery failed", "no"),
                }
            }
        };
        status.insert(
            address.to_string(),
            json!({ "smtpReply": reply, "delivered": delivered, "displayed": "unknown" }),
        );
    }
    let envelope = Envelope {
        mail_from: envelope.mail_from,
        rcpt_to: rcpt_to.iter().map(Email::to_string).collect(),
    };
    let new = NewEmailSubmission {
        identity_id: identity.id.clone(),
        email_id: record.id.clone(),
        thread_id: record.thread_id.clone(),
        envelope: envelope.to_json().to_string(),
        send_at: now,
        undo_status: FINAL.into(),
        delivery_status: Value::Object(status.clone()).to_string(),
    };
    let submission_id =
        ctx.store()
            .create_email_submission(ctx.tenant(), &account.account_id, &new)?;
    tracing::info!(
        message = "JMAP submission delivered",
        submission_id = %submission_id,
        recipients = status.len()
    );
    let mut response = json!({
        "id": submission_id,
        "threadId": record.thread_id,
        "sendAt": date::format_utc(now),
        "undoStatus": FINAL,
        "deliveryStatus": status,
        "dsnBlobIds": [],
        "mdnBlobIds": [],
    });
    if given.is_none() {
        response["envelope"] = envelope.to_json();
    }
    Ok(Sent {
        response,
        submission_id,
        email_id: record.id,
    })
}

fn update_one(submission: &EmailSubmissionRecord, patch: &Value) -> Result<(), SetError> {
    let Value::Object(patch) = patch else {
        return Err(SetError::invalid(&[], "a patch must be an object"));
    };
    let current = render(
        submission,
        &PROPERTIES
            .iter()
            .map(|p| (*p).to_owned())
            .collect::<Vec<_>>(),
    );
    if patch.get("undoStatus").and_then(Value::as_str) == Some("canceled") {
        return Err(SetError::new(
            "cannotUnsend",
            "submissions are delivered at once and cannot be cancelled",
        ));
    }
    let bad: Vec<String> = patch
        .iter()
        .filter(|(property, value)| current.get(property.as_str()) != Some(value))
        .map(|(property, _)| property.clone())
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(SetError {
            properties: bad,
            ..SetError::new(
                "invalidProperties",
                "only undoStatus can change, and only while pending",
            )
        })
    }
}

/// `EmailSubmission/set`, with `onSuccessUpdateEmail` and
/// `onSuccessDestroyEmail` answered by an implicit `Email/set` response
/// under the same call id.
pub(crate) fn set(ctx: &mut Ctx<'_>, mut args: Args) -> Result<Value, MethodError> {
    let account = ctx.account(&args.required_string("accountId")?)?;
    let if_in_state = args.string("ifInState")?;
    let create = args.object("create")?.unwrap_or_default();
    let update = args.object("update")?.unwrap_or_default();
    let destroy = args.strings("destroy")?.unwrap_or_default();
    let on_update = args.object("onSuccessUpdateEmail")?.unwrap_or_default();
    let on_destroy = args.strings("onSuccessDestroyEmail")?.unwrap_or_default();
    args.finish()?;
    let max = ctx.config().max_objects_in_set;
    if create.len() + update.len() + destroy.len() > max {
        return Err(MethodError::too_large(max));
    }
    if if_in_state.is_some_and(|s| s != state(&account)) {
        return Err(MethodError::state_mismatch());
    }
    let identities = ctx.store().identities(ctx.tenant(), &account.account_id)?;
    // Submission id, and `#creationId` for this call's creates, to the
    // email of each submission created, updated or destroyed.
    let mut succeeded: HashMap<String, String> = HashMap::new();

    let (mut created, mut not_created) = (Map::new(), Map::new());
    let mut read = Vec::new();
    for (cid, object) in &create {
        match create_one(ctx, &account, &identities, object, &mut read) {
            Ok(sent) => {
                ctx.created_ids
                    .insert(cid.clone(), sent.submission_id.clone());
                succeeded.insert(format!("#{cid}"), sent.email_id.clone());
                succeeded.insert(sent.submission_id, sent.email_id);
                created.insert(cid.clone(), sent.response);
            }
            Err(error) => {
                not_created.insert(cid.clone(), error.to_json());
            }
        }
    }
    if !read.is_empty() {
        let access =
            Access::new("EmailSubmission/set", &account.account_id, true).with_emails(&read);
        ctx.record(access);
    }

    let submissions = ctx
        .store()
        .email_submissions(ctx.tenant(), &account.account_id)?;
    let find = |ctx: &Ctx<'_>, key: &str| {
        let id = ctx.resolve_id(key)?;
        submissions.iter().find(|s| s.id == id)
    };
    let (mut updated, mut not_updated) = (Map::new(), Map::new());
    for (key, patch) in &update {
        let outcome = match find(ctx, key) {
            Some(submission) => update_one(submission, patch).map(|()| submission),
            None => Err(SetError::not_found()),
        };
        match outcome {
            Ok(submission) => {
                succeeded.insert(submission.id.clone(), submission.email_id.clone());
                updated.insert(key.clone(), Value::Null);
            }
            Err(error) => {
                not_updated.insert(key.clone(), error.to_json());
            }
        }
    }

    let (mut destroyed, mut not_destroyed) = (Vec::new(), Map::new());
    for key in destroy {
        let outcome = match find(ctx, &key) {
            Some(submission) => ctx
                .store()
                .destroy_email_submission(ctx.tenant(), &account.account_id, &submission.id)
                .map(|()| submission)
                .map_err(SetError::from),
            None => Err(SetError::not_found()),
        };
        match outcome {
            Ok(submission) => {
                succeeded.insert(submission.id.clone(), submission.email_id.clone());
                destroyed.push(submission.id.clone());
            }
            Err(error) => {
                not_destroyed.insert(key, error.to_json());
            }
        }
    }

    let after = ctx.account(&account.account_id)?;
    let response = json!({
        "accountId": account.account_id,
        "oldState": state(&account),
        "newState": state(&after),
        "created": map_or_null(created),
        "updated": map_or_null(updated),
        "destroyed": if destroyed.is_empty() { Value::Null } else { json!(destroyed) },
        "notCreated": map_or_null(not_created),
        "notUpdated": map_or_null(not_updated),
        "notDestroyed": map_or_null(not_destroyed),
    });

    // Only for submissions that succeeded (RFC 8621 section 7.5).
    let email_updates: Map<String, Value> = on_update
        .into_iter()
        .filter_map(|(key, patch)| succeeded.get(&key).map(|email| (email.clone(), patch)))
        .collect();
    let email_destroys: Vec<String> = on_destroy
        .iter()
        .filter_map(|key| succeeded.get(key).cloned())
        .collect();
    if !email_updates.is_empty() || !email_destroys.is_empty() {
        let mut email_args = Map::new();
        email_args.insert("accountId".into(), json!(account.account_id));
        if !email_updates.is_empty() {
            email_args.insert("update".into(), Value::Object(email_updates));
        }
        if !email_destroys.is_empty() {
            email_args.insert("destroy".into(), json!(email_destroys));
        }
        let follow_up = match email::set(ctx, Args::new(email_args)) {
            Ok(Value::Object(result)) => ("Email/set".to_owned(), result),
            Ok(_) => ("Email/set".to_owned(), Map::new()),
            Err(error) => ("error".to_owned(), error.to_map()),
        };
        ctx.follow_ups.push(follow_up);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcc_fields_are_removed_and_nothing_else() {
        let cases: &[(&str, &str)] = &[
            (
                "From: a@x\r\nBcc: secret@x,\r\n  other@x\r\nTo: b@x\r\n\r\nBcc: body line\r\n",
                "From: a@x\r\nTo: b@x\r\n\r\nBcc: body line\r\n",
            ),
            ("BCC : s@x\nSubject: hi\n\nbody\n", "Subject: hi\n\nbody\n"),
            (
                "X-Bcc-Note: kept\r\nSubject: Bcc: kept\r\n\r\n",
                "X-Bcc-Note: kept\r\nSubject: Bcc: kept\r\n\r\n",
            ),
            ("Subject: no body\r\nBcc: s@x\r\n", "Subject: no body\r\n"),
        ];
        for (input, expect) in cases {
            assert_eq!(
                String::from_utf8_lossy(&without_bcc(input.as_bytes())),
                *expect,
                "{input:?}"
            );
        }
    }

    #[test]
    fn envelopes_parse_strictly() {
        let ok = json!({"mailFrom": {"email": "a@x.test", "parameters": null},
                        "rcptTo": [{"email": "b@y.test"}, {"email": "c@y.test", "parameters": {}}]});
        assert_eq!(
            parse_envelope(&ok).ok(),
            Some(Envelope {
                mail_from: "a@x.test".into(),
                rcpt_to: vec!["b@y.test".into(), "c@y.test".into()],
            })
        );
        let bad = [
            json!("a@x.test"),
            json!({"mailFrom": {"email": "a@x.test"}}),
            json!({"rcptTo": []}),
            json!({"mailFrom": {"email": "a@x.test", "parameters": {"SIZE": "10"}}, "rcptTo": []}),
            json!({"mailFrom": {"email": "a@x.test"}, "rcptTo": ["b@y.test"]}),
            json!({"mailFrom": {"email": "a@x.test"}, "rcptTo": [], "extra": 1}),
        ];
        for value in bad {
            assert_eq!(
                parse_envelope(&value).map_err(|e| e.kind).err(),
                Some("invalidProperties"),
                "{value}"
            );
        }
    }
}
