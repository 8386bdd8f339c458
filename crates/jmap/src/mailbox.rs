//! `Mailbox/get`, `/changes`, `/query`, `/queryChanges` and `/set`
//! (RFC 8621 section 2).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};
use stormproof_store::{ChangeType, MailAccount, Mailbox, MailboxUpdate, NewMailbox};

use crate::args::{Args, MethodError, SetError, map_or_null};
use crate::query::{self, Filter, Window};
use crate::{Ctx, MAX_MAILBOX_NAME, state};

const PROPERTIES: &[&str] = &[
    "id",
    "name",
    "parentId",
    "role",
    "sortOrder",
    "totalEmails",
    "unreadEmails",
    "totalThreads",
    "unreadThreads",
    "myRights",
    "isSubscribed",
];

/// Properties only the server sets.
const SERVER_SET: &[&str] = &[
    "id",
    "totalEmails",
    "unreadEmails",
    "totalThreads",
    "unreadThreads",
    "myRights",
];

/// Mailbox roles from the IANA "IMAP Mailbox Name Attributes" registry.
const ROLES: &[&str] = &[
    "all",
    "archive",
    "drafts",
    "flagged",
    "important",
    "inbox",
    "junk",
    "sent",
    "subscribed",
    "trash",
    "snoozed",
    "scheduled",
    "memos",
];

fn my_rights() -> Value {
    json!({
        "mayReadItems": true,
        "mayAddItems": true,
        "mayRemoveItems": true,
        "maySetSeen": true,
        "maySetKeywords": true,
        "mayCreateChild": true,
        "mayRename": true,
        "mayDelete": true,
        "maySubmit": true,
    })
}

/// Threads with an email in the mailbox, and those with an unread one
/// there. Unread emails of the same thread in other mailboxes are not
/// counted (RFC 8621 would count them; the store has no per-thread index).
fn thread_counts(
    ctx: &Ctx<'_>,
    account: &MailAccount,
    mailbox: &Mailbox,
) -> Result<(usize, usize), MethodError> {
    if mailbox.total_emails == 0 {
        return Ok((0, 0));
    }
    let ids = ctx
        .store()
        .mailbox_email_ids(ctx.tenant(), &account.account_id, &mailbox.id)?;
    let records = ctx
        .store()
        .emails(ctx.tenant(), &account.account_id, &ids)?;
    let total: HashSet<&str> = records.iter().map(|r| r.thread_id.as_str()).collect();
    let unread: HashSet<&str> = records
        .iter()
        .filter(|r| !r.keywords.iter().any(|k| k == "$seen"))
        .map(|r| r.thread_id.as_str())
        .collect();
    Ok((total.len(), unread.len()))
}

fn render(mailbox: &Mailbox, properties: &[String], threads: Option<(usize, usize)>) -> Value {
    let (total_threads, unread_threads) = threads.unwrap_or_default();
    let mut out = Map::new();
    for property in properties {
        let value = match property.as_str() {
            "id" => json!(mailbox.id),
            "name" => json!(mailbox.name),
            "parentId" => json!(mailbox.parent_id),
            "role" => json!(mailbox.role),
            "sortOrder" => json!(mailbox.sort_order),
            "totalEmails" => json!(mailbox.total_emails),
            "unreadEmails" => json!(mailbox.unread_emails),
            "totalThreads" => json!(total_threads),
            "unreadThreads" => json!(unread_threads),
            "myRights" => my_rights(),
            "isSubscribed" => json!(mailbox.subscribed),
            _ => continue,
        };
        out.insert(property.clone(), value);
    }
    Value::Object(out)
}

/// `Mailbox/get`.
pub(crate) fn get(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    let (account, ids, properties) = ctx.standard_get(args, PROPERTIES)?;
    let mailboxes = ctx.store().mailboxes(ctx.tenant(), &account.account_id)?;
    let (found, not_found): (Vec<&Mailbox>, Vec<String>) = match &ids {
        None => (mailboxes.iter().collect(), Vec::new()),
        Some(ids) => {
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for id in ids {
                let resolved = ctx.resolve_id(id);
                match mailboxes.iter().find(|m| Some(&m.id) == resolved.as_ref()) {
                    Some(m) => found.push(m),
                    None => missing.push(id.clone()),
                }
            }
            (found, missing)
        }
    };
    let max = ctx.config().max_objects_in_get;
    if found.len() > max {
        return Err(MethodError::too_large(max));
    }
    let want_threads = properties
        .iter()
        .any(|p| p == "totalThreads" || p == "unreadThreads");
    let mut list = Vec::with_capacity(found.len());
    for mailbox in found {
        let threads = if want_threads {
            Some(thread_counts(ctx, &account, mailbox)?)
        } else {
            None
        };
        list.push(render(mailbox, &properties, threads));
    }
    Ok(json!({
        "accountId": account.account_id,
        "state": state(&account),
        "list": list,
        "notFound": not_found,
    }))
}

/// `Mailbox/changes`.
pub(crate) fn changes(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    let mut response = crate::changes_response(ctx, args, ChangeType::Mailbox)?;
    response["updatedProperties"] = Value::Null;
    Ok(response)
}

/// One `Mailbox/query` filter condition.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    ParentId(Option<String>),
    Name(String),
    Role(Option<String>),
    HasAnyRole(bool),
    IsSubscribed(bool),
}

fn condition(ctx: &Ctx<'_>, map: Map<String, Value>) -> Result<Vec<Cond>, MethodError> {
    let bad =
        |name: &str, what: &str| MethodError::invalid_arguments(format!("'{name}' must be {what}"));
    map.into_iter()
        .map(|(name, value)| {
            Ok(match (name.as_str(), value) {
                ("parentId", Value::Null) => Cond::ParentId(None),
                ("parentId", Value::String(id)) => {
                    Cond::ParentId(Some(ctx.resolve_id(&id).unwrap_or(id)))
                }
                ("parentId", _) => return Err(bad(&name, "an id or null")),
                ("name", Value::String(text)) => Cond::Name(text.to_lowercase()),
                ("name", _) => return Err(bad(&name, "a string")),
                ("role", Value::Null) => Cond::Role(None),
                ("role", Value::String(role)) => Cond::Role(Some(role.to_ascii_lowercase())),
                ("role", _) => return Err(bad(&name, "a string or null")),
                ("hasAnyRole", Value::Bool(b)) => Cond::HasAnyRole(b),
                ("hasAnyRole", _) => return Err(bad(&name, "a boolean")),
                ("isSubscribed", Value::Bool(b)) => Cond::IsSubscribed(b),
                ("isSubscribed", _) => return Err(bad(&name, "a boolean")),
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

fn matches(cond: &Cond, m: &Mailbox) -> bool {
    match cond {
        Cond::ParentId(p) => &m.parent_id == p,
        Cond::Name(text) => m.name.to_lowercase().contains(text),
        Cond::Role(role) => &m.role == role,
        Cond::HasAnyRole(b) => m.role.is_some() == *b,
        Cond::IsSubscribed(b) => m.subscribed == *b,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    SortOrder,
    Name,
}

fn sort_key(property: &str, _: &mut Map<String, Value>) -> Result<Option<SortKey>, MethodError> {
    Ok(match property {
        "sortOrder" => Some(SortKey::SortOrder),
        "name" => Some(SortKey::Name),
        _ => None,
    })
}

type Parsed = (Option<Filter<Vec<Cond>>>, Vec<(SortKey, bool)>, bool, bool);

fn parse_query(ctx: &Ctx<'_>, args: &mut Args) -> Result<Parsed, MethodError> {
    let filter = args
        .value("filter")
        .map(|f| query::parse_filter(f, &mut |map| condition(ctx, map)))
        .transpose()?;
    let sort = query::parse_sort(args.value("sort"), sort_key)?;
    let as_tree = args.bool("sortAsTree")?.unwrap_or(false);
    let filter_as_tree = args.bool("filterAsTree")?.unwrap_or(false);
    Ok((filter, sort, as_tree, filter_as_tree))
}

fn run_query(
    mailboxes: &[Mailbox],
    (filter, sort, as_tree, filter_as_tree): &Parsed,
) -> Vec<String> {
    let by_id: HashMap<&str, &Mailbox> = mailboxes.iter().map(|m| (m.id.as_str(), m)).collect();
    let passes = |m: &Mailbox| {
        filter
            .as_ref()
            .is_none_or(|f| f.matches(&|conds: &Vec<Cond>| conds.iter().all(|c| matches(c, m))))
    };
    let mut hits: Vec<&Mailbox> = mailboxes
        .iter()
        .filter(|m| {
            if !passes(m) {
                return false;
            }
            if !filter_as_tree {
                return true;
            }
            // Every ancestor must pass too.
            let mut seen = HashSet::new();
            let mut parent = m.parent_id.as_deref();
            while let Some(id) = parent {
                match by_id.get(id) {
                    Some(p) if seen.insert(id) => {
                        if !passes(p) {
                            return false;
                        }
                        parent = p.parent_id.as_deref();
                    }
                    _ => break,
                }
            }
            true
        })
        .collect();
    let default_sort = [(SortKey::SortOrder, true), (SortKey::Name, true)];
    let sort = if sort.is_empty() {
        &default_sort[..]
    } else {
        &sort[..]
    };
    hits.sort_by(|a, b| {
        sort.iter()
            .map(|(key, ascending)| {
                let order = match key {
                    SortKey::SortOrder => a.sort_order.cmp(&b.sort_order),
                    SortKey::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                };
                if *ascending { order } else { order.reverse() }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.id.cmp(&b.id))
    });
    if !as_tree {
        return hits.into_iter().map(|m| m.id.clone()).collect();
    }
    // Parents before children, siblings in sort order.
    let present: HashSet<&str> = hits.iter().map(|m| m.id.as_str()).collect();
    let mut children: HashMap<Option<&str>, Vec<&Mailbox>> = HashMap::new();
    for m in &hits {
        let parent = m.parent_id.as_deref().filter(|p| present.contains(p));
        children.entry(parent).or_default().push(m);
    }
    let mut out = Vec::with_capacity(hits.len());
    let mut stack: Vec<&Mailbox> = children.get(&None).cloned().unwrap_or_default();
    stack.reverse();
    let mut visited = HashSet::new();
    while let Some(m) = stack.pop() {
        if !visited.insert(m.id.as_str()) {
            continue;
        }
        out.push(m.id.clone());
        if let Some(kids) = children.get(&Some(m.id.as_str())) {
            stack.extend(kids.iter().rev());
        }
    }
    out
}

/// `Mailbox/query`.
pub(crate) fn query(ctx: &mut Ctx<'_>, mut args: Args) -> Result<Value, MethodError> {
    let account = ctx.account(&args.required_string("accountId")?)?;
    let parsed = parse_query(ctx, &mut args)?;
    let window = Window::from_args(&mut args)?;
    args.finish()?;
    let mailboxes = ctx.store().mailboxes(ctx.tenant(), &account.account_id)?;
    let ids = run_query(&mailboxes, &parsed);
    let page = window.apply(&ids, None)?;
    Ok(window.response(&account.account_id, state(&account), page, ids.len()))
}

/// `Mailbox/queryChanges`.
pub(crate) fn query_changes(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    query::query_changes(
        ctx,
        args,
        |args| parse_query(ctx, args),
        |ctx, account, parsed| {
            let mailboxes = ctx.store().mailboxes(ctx.tenant(), &account.account_id)?;
            Ok(run_query(&mailboxes, &parsed).len())
        },
    )
}

fn valid_name(name: &str) -> bool {
    !name.trim().is_empty() && name.len() <= MAX_MAILBOX_NAME && !name.chars().any(char::is_control)
}

/// Whether making `parent` the parent of `id` would create a cycle.
fn creates_cycle(mailboxes: &[Mailbox], id: &str, parent: Option<&str>) -> bool {
    let mut cursor = parent;
    let mut steps = 0;
    while let Some(current) = cursor {
        if current == id || steps > mailboxes.len() {
            return true;
        }
        steps += 1;
        cursor = mailboxes
            .iter()
            .find(|m| m.id == current)
            .and_then(|m| m.parent_id.as_deref());
    }
    false
}

/// Reads a `parentId` value: `Ok(None)` for top level.
fn parent_value(ctx: &Ctx<'_>, mailboxes: &[Mailbox], value: &Value) -> Result<Option<String>, ()> {
    match value {
        Value::Null => Ok(None),
        Value::String(id) => match ctx.resolve_id(id) {
            Some(id) if mailboxes.iter().any(|m| m.id == id) => Ok(Some(id)),
            _ => Err(()),
        },
        _ => Err(()),
    }
}

fn create_one(
    ctx: &Ctx<'_>,
    account: &MailAccount,
    mailboxes: &mut Vec<Mailbox>,
    object: &Value,
) -> Result<Value, SetError> {
    let Value::Object(object) = object else {
        return Err(SetError::invalid(&[], "a Mailbox must be an object"));
    };
    let mut new = NewMailbox::default();
    let mut name = None;
    let mut bad: Vec<String> = Vec::new();
    for (property, value) in object {
        let ok = match (property.as_str(), value) {
            ("name", Value::String(n)) if valid_name(n) => {
                name = Some(n.clone());
                true
            }
            ("parentId", value) => match parent_value(ctx, mailboxes, value) {
                Ok(parent) => {
                    new.parent_id = parent;
                    true
                }
                Err(()) => false,
            },
            ("role", Value::Null) => true,
            ("role", Value::String(role))
                if ROLES.contains(&role.as_str())
                    && !mailboxes.iter().any(|m| m.role.as_deref() == Some(role)) =>
            {
                new.role = Some(role.clone());
                true
            }
            ("sortOrder", value) if value.as_u64().is_some_and(|n| n < 1 << 31) => {
                new.sort_order = value.as_i64().unwrap_or_default();
                true
            }
            ("isSubscribed", Value::Bool(b)) => {
                new.subscribed = *b;
                true
            }
            _ => false,
        };
        if !ok {
            bad.push(property.clone());
        }
    }
    if name.is_none() && !bad.iter().any(|p| p == "name") {
        bad.push("name".into());
    }
    if !bad.is_empty() {
        let mut error = SetError::invalid(&[], "invalid, unknown or server-set properties");
        error.properties = bad;
        return Err(error);
    }
    new.name = name.unwrap_or_default();
    let id = ctx
        .store()
        .create_mailbox(ctx.tenant(), &account.account_id, &new)
        .map_err(|e| match e.kind {
            stormproof_store::ErrorKind::Conflict(_) => {
                SetError::invalid(&["name"], "a sibling mailbox has this name")
            }
            _ => SetError::from(e),
        })?;
    let mut created = json!({
        "id": id,
        "totalEmails": 0,
        "unreadEmails": 0,
        "totalThreads": 0,
        "unreadThreads": 0,
        "myRights": my_rights(),
    });
    for (property, value) in [
        ("parentId", json!(new.parent_id)),
        ("role", json!(new.role)),
        ("sortOrder", json!(new.sort_order)),
        ("isSubscribed", json!(new.subscribed)),
    ] {
        if !object.contains_key(property) {
            created[property] = value;
        }
    }
    mailboxes.push(Mailbox {
        id: id.clone(),
        parent_id: new.parent_id,
        name: new.name,
        role: new.role,
        sort_order: new.sort_order,
        uid_validity: 0,
        uid_next: 1,
        highest_modseq: 0,
        subscribed: new.subscribed,
        total_emails: 0,
        unread_emails: 0,
    });
    Ok(created)
}

fn update_one(
    ctx: &Ctx<'_>,
    account: &MailAccount,
    mailboxes: &mut [Mailbox],
    id: &str,
    patch: &Value,
) -> Result<(), SetError> {
    let Some(index) = mailboxes.iter().position(|m| m.id == id) else {
        return Err(SetError::not_found());
    };
    let Value::Object(patch) = patch else {
        return Err(SetError::invalid(&[], "a patch must be an object"));
    };
    let current = render(
        &mailboxes[index],
        &PROPERTIES
            .iter()
            .map(|p| (*p).to_owned())
            .collect::<Vec<_>>(),
        None,
    );
    let mut update = MailboxUpdate::default();
    let mut bad: Vec<String> = Vec::new();
    for (property, value) in patch {
        match (property.as_str(), value) {
            ("name", Value::String(n)) if valid_name(n) => update.name = Some(n.clone()),
            ("parentId", value) => match parent_value(ctx, mailboxes, value) {
                Ok(parent) if !creates_cycle(mailboxes, id, parent.as_deref()) => {
                    update.parent_id = Some(parent);
                }
                _ => bad.push(property.clone()),
            },
            ("sortOrder", value) if value.as_u64().is_some_and(|n| n < 1 << 31) => {
                update.sort_order = value.as_i64();
            }
            ("isSubscribed", Value::Bool(b)) => update.subscribed = Some(*b),
            // The store cannot change a role; setting it to what it is is fine.
            ("role", value) if current.get("role") == Some(value) => {}
            (p, value) if SERVER_SET.contains(&p) && current.get(p) == Some(value) => {}
            _ => bad.push(property.clone()),
        }
    }
    if !bad.is_empty() {
        let mut error = SetError::invalid(&[], "invalid, unknown or read-only properties");
        error.properties = bad;
        return Err(error);
    }
    if update == MailboxUpdate::default() {
        return Ok(());
    }
    ctx.store()
        .update_mailbox(ctx.tenant(), &account.account_id, id, &update)
        .map_err(|e| match e.kind {
            stormproof_store::ErrorKind::Conflict(_) => {
                SetError::invalid(&["name"], "a sibling mailbox has this name")
            }
            stormproof_store::ErrorKind::Invalid(reason) => {
                SetError::invalid(&["parentId"], reason)
            }
            _ => SetError::from(e),
        })?;
    let mailbox = &mut mailboxes[index];
    if let Some(name) = update.name {
        mailbox.name = name;
    }
    if let Some(parent) = update.parent_id {
        mailbox.parent_id = parent;
    }
    if let Some(order) = update.sort_order {
        mailbox.sort_order = order;
    }
    if let Some(subscribed) = update.subscribed {
        mailbox.subscribed = subscribed;
    }
    Ok(())
}

fn destroy_one(
    ctx: &Ctx<'_>,
    account: &MailAccount,
    mailboxes: &mut Vec<Mailbox>,
    id: &str,
    remove_emails: bool,
) -> Result<(), SetError> {
    if !mailboxes.iter().any(|m| m.id == id) {
        return Err(SetError::not_found());
    }
    ctx.store()
        .destroy_mailbox(ctx.tenant(), &account.account_id, id, remove_emails)
        .map_err(|e| match e.kind {
            stormproof_store::ErrorKind::Conflict(reason) if reason == "mailboxHasChild" => {
                SetError::new("mailboxHasChild", "destroy the child mailboxes first")
            }
            stormproof_store::ErrorKind::Conflict(reason) if reason == "mailboxHasEmail" => {
                SetError::new(
                    "mailboxHasEmail",
                    "the mailbox has emails; set onDestroyRemoveEmails to remove them",
                )
            }
            stormproof_store::ErrorKind::Invalid(reason) => SetError::new("forbidden", reason),
            _ => SetError::from(e),
        })?;
    mailboxes.retain(|m| m.id != id);
    Ok(())
}

fn depth(mailboxes: &[Mailbox], id: &str) -> usize {
    let mut depth = 0;
    let mut cursor = mailboxes.iter().find(|m| m.id == id);
    while let Some(m) = cursor {
        depth += 1;
        if depth > mailboxes.len() {
            break;
        }
        cursor = m
            .parent_id
            .as_deref()
            .and_then(|p| mailboxes.iter().find(|x| x.id == p));
    }
    depth
}

/// `Mailbox/set`.
pub(crate) fn set(ctx: &mut Ctx<'_>, mut args: Args) -> Result<Value, MethodError> {
    let account = ctx.account(&args.required_string("accountId")?)?;
    let if_in_state = args.string("ifInState")?;
    let create = args.object("create")?.unwrap_or_default();
    let update = args.object("update")?.unwrap_or_default();
    let destroy = args.strings("destroy")?.unwrap_or_default();
    let remove_emails = args.bool("onDestroyRemoveEmails")?.unwrap_or(false);
    args.finish()?;
    let max = ctx.config().max_objects_in_set;
    if create.len() + update.len() + destroy.len() > max {
        return Err(MethodError::too_large(max));
    }
    if if_in_state.is_some_and(|s| s != state(&account)) {
        return Err(MethodError::state_mismatch());
    }
    let mut mailboxes = ctx.store().mailboxes(ctx.tenant(), &account.account_id)?;
    let (mut created, mut not_created) = (Map::new(), Map::new());

    // Create parents before the children that name them by creation id.
    let mut pending: Vec<(String, Value)> = create.into_iter().collect();
    while !pending.is_empty() {
        let waiting: HashSet<String> = pending.iter().map(|(cid, _)| cid.clone()).collect();
        let waits_for_sibling = |object: &Value| {
            object
                .get("parentId")
                .and_then(Value::as_str)
                .and_then(|p| p.strip_prefix('#'))
                .is_some_and(|cid| waiting.contains(cid))
        };
        let (ready, blocked): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(_, o)| !waits_for_sibling(o));
        if ready.is_empty() {
            for (cid, _) in blocked {
                not_created.insert(
                    cid,
                    SetError::invalid(&["parentId"], "creation ids refer to each other in a cycle")
                        .to_json(),
                );
            }
            break;
        }
        for (cid, object) in ready {
            match create_one(ctx, &account, &mut mailboxes, &object) {
                Ok(value) => {
                    if let Some(id) = value.get("id").and_then(Value::as_str) {
                        ctx.created_ids.insert(cid.clone(), id.to_owned());
                    }
                    created.insert(cid, value);
                }
                Err(error) => {
                    not_created.insert(cid, error.to_json());
                }
            }
        }
        pending = blocked;
    }

    let (mut updated, mut not_updated) = (Map::new(), Map::new());
    for (key, patch) in &update {
        let outcome = match ctx.resolve_id(key) {
            Some(id) => update_one(ctx, &account, &mut mailboxes, &id, patch),
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

    // Children before parents, so a subtree can go in one call.
    let mut targets: Vec<(String, Option<String>)> = destroy
        .into_iter()
        .map(|key| {
            let id = ctx.resolve_id(&key);
            (key, id)
        })
        .collect();
    targets.sort_by_key(|(_, id)| {
        std::cmp::Reverse(id.as_deref().map_or(0, |id| depth(&mailboxes, id)))
    });
    let (mut destroyed, mut not_destroyed) = (Vec::new(), Map::new());
    for (key, id) in targets {
        let outcome = match &id {
            Some(id) => destroy_one(ctx, &account, &mut mailboxes, id, remove_emails),
            None => Err(SetError::not_found()),
        };
        match (outcome, id) {
            (Ok(()), Some(id)) => destroyed.push(id),
            (Err(error), _) => {
                not_destroyed.insert(key, error.to_json());
            }
            (Ok(()), None) => {}
        }
    }

    let after = ctx.account(&account.account_id)?;
    Ok(json!({
        "accountId": account.account_id,
        "oldState": state(&account),
        "newState": state(&after),
        "created": map_or_null(created),
        "updated": map_or_null(updated),
        "destroyed": if destroyed.is_empty() { Value::Null } else { json!(destroyed) },
        "notCreated": map_or_null(not_created),
        "notUpdated": map_or_null(not_updated),
        "notDestroyed": map_or_null(not_destroyed),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(id: &str, parent: Option<&str>, name: &str, order: i64) -> Mailbox {
        Mailbox {
            id: id.into(),
            parent_id: parent.map(str::to_owned),
            name: name.into(),
            role: None,
            sort_order: order,
            uid_validity: 1,
            uid_next: 1,
            highest_modseq: 0,
            subscribed: false,
            total_emails: 0,
            unread_emails: 0,
        }
    }

    #[test]
    fn trees_sort_parents_first_and_cycles_are_caught() {
        let all = vec![
            mailbox("c", Some("a"), "Child", 0),
            mailbox("a", None, "Zeta", 0),
            mailbox("b", None, "Alpha", 0),
            mailbox("d", Some("c"), "Grandchild", 0),
        ];
        let by_name: Parsed = (None, vec![(SortKey::Name, true)], false, false);
        assert_eq!(run_query(&all, &by_name), vec!["b", "c", "d", "a"]);
        let as_tree: Parsed = (None, vec![(SortKey::Name, true)], true, false);
        assert_eq!(run_query(&all, &as_tree), vec!["b", "a", "c", "d"]);
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("a", Some("d"), true),
            ("a", Some("a"), true),
            ("d", Some("b"), false),
            ("c", None, false),
        ];
        for (id, parent, expect) in cases {
            assert_eq!(
                creates_cycle(&all, id, *parent),
                *expect,
                "{id} under {parent:?}"
            );
        }
        assert_eq!(depth(&all, "d"), 3);
    }
}
