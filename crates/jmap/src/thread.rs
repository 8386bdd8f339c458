//! `Thread/get` and `Thread/changes` (RFC 8621 section 3).

use std::collections::HashMap;

use serde_json::{Value, json};
use stormproof_store::{ChangeType, EmailRecord};

use crate::args::{Args, MethodError};
use crate::{Access, Ctx, state};

const PROPERTIES: &[&str] = &["id", "emailIds"];

/// `Thread/get`. The store has no thread index to read from, so threads
/// are assembled from the account's emails.
pub(crate) fn get(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    let (account, ids, properties) = ctx.standard_get(args, PROPERTIES)?;
    let records = ctx.all_emails(&account)?;
    let mut threads: HashMap<&str, Vec<&EmailRecord>> = HashMap::new();
    for record in &records {
        threads
            .entry(record.thread_id.as_str())
            .or_default()
            .push(record);
    }
    for emails in threads.values_mut() {
        emails.sort_by(|a, b| {
            a.received_at
                .cmp(&b.received_at)
                .then_with(|| a.id.cmp(&b.id))
        });
    }
    let ids: Vec<String> = match ids {
        Some(ids) => ids,
        None => {
            let mut all: Vec<String> = threads.keys().map(|t| (*t).to_owned()).collect();
            all.sort();
            all
        }
    };
    let max = ctx.config().max_objects_in_get;
    if ids.len() > max {
        return Err(MethodError::too_large(max));
    }
    let (mut list, mut not_found) = (Vec::new(), Vec::new());
    let mut returned: Vec<&EmailRecord> = Vec::new();
    for id in ids {
        let Some(emails) = threads.get(id.as_str()) else {
            not_found.push(id);
            continue;
        };
        returned.extend(emails.iter().copied());
        let mut thread = json!({ "id": id });
        if properties.iter().any(|p| p == "emailIds") {
            thread["emailIds"] = json!(emails.iter().map(|e| &e.id).collect::<Vec<_>>());
        }
        list.push(thread);
    }
    let access = Access::new("Thread/get", &account.account_id, false).with_emails(returned);
    ctx.record(access);
    Ok(json!({
        "accountId": account.account_id,
        "state": state(&account),
        "list": list,
        "notFound": not_found,
    }))
}

/// `Thread/changes`.
pub(crate) fn changes(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    crate::changes_response(ctx, args, ChangeType::Thread)
}
