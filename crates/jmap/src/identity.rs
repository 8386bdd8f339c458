//! `Identity/get`, `/changes` and `/set` (RFC 8621 section 6).
//!
//! An account sends only from its owner's own address. Its default identity
//! for that address is created on first use and cannot be destroyed; more
//! identities may be created for the same address with another name,
//! reply-to, bcc or signature. Any other address is `forbiddenFrom`.

use serde_json::{Map, Value, json};
use stormproof_store::{
    ChangeType, EmailAddress, IdentityRecord, IdentityUpdate, MailAccount, NewIdentity,
};
use stormproof_types::Email;

use crate::args::{Args, MethodError, SetError, map_or_null};
use crate::{Ctx, state};

const PROPERTIES: &[&str] = &[
    "id",
    "name",
    "email",
    "replyTo",
    "bcc",
    "textSignature",
    "htmlSignature",
    "mayDelete",
];

/// Whether two addresses are the same mailbox (domains and, as this server
/// stores them, local parts compare without case).
pub(crate) fn same_address(a: &str, b: &str) -> bool {
    match (Email::parse(a), Email::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The account's identities, creating the default one for the owner's
/// address if there is none yet.
pub(crate) fn identities(
    ctx: &Ctx<'_>,
    account: &MailAccount,
) -> Result<Vec<IdentityRecord>, MethodError> {
    let list = ctx.store().identities(ctx.tenant(), &account.account_id)?;
    if list.iter().any(|i| !i.may_delete) {
        return Ok(list);
    }
    let Some(owner) = ctx.owner_email(account)? else {
        return Ok(list);
    };
    let default = NewIdentity {
        email: owner.to_string(),
        may_delete: false,
        ..NewIdentity::default()
    };
    match ctx
        .store()
        .create_identity(ctx.tenant(), &account.account_id, &default)
    {
        Ok(_) => {}
        // A concurrent request created it first; the store keeps one.
        Err(e) if matches!(e.kind, stormproof_store::ErrorKind::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(ctx.store().identities(ctx.tenant(), &account.account_id)?)
}

fn address_json(list: Option<&Vec<EmailAddress>>) -> Value {
    match list {
        None => Value::Null,
        Some(list) => Value::Array(
            list.iter()
                .map(|a| json!({ "name": a.name, "email": a.email }))
                .collect(),
        ),
    }
}

fn render(identity: &IdentityRecord, properties: &[String]) -> Value {
    let mut out = Map::new();
    for property in properties {
        let value = match property.as_str() {
            "id" => json!(identity.id),
            "name" => json!(identity.name),
            "email" => json!(identity.email),
            "replyTo" => address_json(identity.reply_to.as_ref()),
            "bcc" => address_json(identity.bcc.as_ref()),
            "textSignature" => json!(identity.text_signature),
            "htmlSignature" => json!(identity.html_signature),
            "mayDelete" => json!(identity.may_delete),
            _ => continue,
        };
        out.insert(property.clone(), value);
    }
    Value::Object(out)
}

/// `Identity/get`.
pub(crate) fn get(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    let (account, ids, properties) = ctx.standard_get(args, PROPERTIES)?;
    let all = identities(ctx, &account)?;
    // Creating the default identity moved the state on.
    let account = ctx.account(&account.account_id)?;
    let (mut list, mut not_found) = (Vec::new(), Vec::new());
    match ids {
        None => list.extend(all.iter().map(|i| render(i, &properties))),
        Some(ids) => {
            for id in ids {
                let resolved = ctx.resolve_id(&id);
                match all.iter().find(|i| Some(&i.id) == resolved.as_ref()) {
                    Some(identity) => list.push(render(identity, &properties)),
                    None => not_found.push(id),
                }
            }
        }
    }
    Ok(json!({
        "accountId": account.account_id,
        "state": state(&account),
        "list": list,
        "notFound": not_found,
    }))
}

/// `Identity/changes`.
pub(crate) fn changes(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    crate::changes_response(ctx, args, ChangeType::Identity)
}

/// An `EmailAddress[]|null` value: `Some(None)` for null, `None` when it is
/// not one.
fn addresses_value(value: &Value) -> Option<Option<Vec<EmailAddress>>> {
    let Value::Array(items) = value else {
        return value.is_null().then_some(None);
    };
    items
        .iter()
        .map(|item| {
            let object = item.as_object()?;
            if object.keys().any(|k| k != "name" && k != "email") {
                return None;
            }
            let name = match object.get("name") {
                None | Some(Value::Null) => None,
                Some(Value::String(name)) => Some(name.clone()),
                Some(_) => return None,
            };
            let email = object.get("email")?.as_str()?;
            Email::parse(email).ok()?;
            Some(EmailAddress {
                name,
                email: email.to_owned(),
            })
        })
        .collect::<Option<Vec<_>>>()
        .map(Some)
}

fn invalid(bad: Vec<String>, description: &str) -> SetError {
    SetError {
        properties: bad,
        ..SetError::new("invalidProperties", description)
    }
}

fn create_one(
    ctx: &Ctx<'_>,
    account: &MailAccount,
    owner: Option<&Email>,
    object: &Value,
) -> Result<Value, SetError> {
    let Value::Object(object) = object else {
        return Err(SetError::invalid(&[], "an Identity must be an object"));
    };
    let mut new = NewIdentity {
        may_delete: true,
        ..NewIdentity::default()
    };
    let mut email = None;
    let mut bad = Vec::new();
    for (property, value) in object {
        let ok = match (property.as_str(), value) {
            ("name", Value::String(name)) => {
                new.name = name.clone();
                true
            }
            ("email", Value::String(address)) => {
                email = Some(address.clone());
                true
            }
            ("replyTo", value) => addresses_value(value).map(|v| new.reply_to = v).is_some(),
            ("bcc", value) => addresses_value(value).map(|v| new.bcc = v).is_some(),
            ("textSignature", Value::String(text)) => {
                new.text_signature = text.clone();
                true
            }
            ("htmlSignature", Value::String(html)) => {
                new.html_signature = html.clone();
                true
            }
            _ => false,
        };
        if !ok {
            bad.push(property.clone());
        }
    }
    if email.is_none() && !bad.iter().any(|p| p == "email") {
        bad.push("email".into());
    }
    if !bad.is_empty() {
        return Err(invalid(bad, "invalid, unknown or server-set properties"));
    }
    let email = email.unwrap_or_default();
    let parsed =
        Email::parse(&email).map_err(|_| SetError::invalid(&["email"], "not an email address"))?;
    if owner != Some(&parsed) {
        return Err(SetError::new(
            "forbiddenFrom",
            "an identity may only use the account's own address",
        ));
    }
    new.email = parsed.to_string();
    let id = ctx
        .store()
        .create_identity(ctx.tenant(), &account.account_id, &new)?;
    let mut created = json!({ "id": id, "mayDelete": true });
    for (property, value) in [
        ("name", json!(new.name)),
        ("email", json!(new.email)),
        ("replyTo", Value::Null),
        ("bcc", Value::Null),
        ("textSignature", json!("")),
        ("htmlSignature", json!("")),
    ] {
        if !object.contains_key(property) || property == "email" {
            created[property] = value;
        }
    }
    Ok(created)
}

fn update_one(
    ctx: &Ctx<'_>,
    account: &MailAccount,
    identity: &IdentityRecord,
    patch: &Value,
) -> Result<(), SetError> {
    let Value::Object(patch) = patch else {
        return Err(SetError::invalid(&[], "a patch must be an object"));
    };
    let current = render(
        identity,
        &PROPERTIES
            .iter()
            .map(|p| (*p).to_owned())
            .collect::<Vec<_>>(),
    );
    let mut update = IdentityUpdate::default();
    let mut bad = Vec::new();
    for (property, value) in patch {
        let ok = match (property.as_str(), value) {
            ("name", Value::String(name)) => {
                update.name = Some(name.clone());
                true
            }
            ("replyTo", value) => addresses_value(value)
                .map(|v| update.reply_to = Some(v))
                .is_some(),
            ("bcc", value) => addresses_value(value)
                .map(|v| update.bcc = Some(v))
                .is_some(),
            ("textSignature", Value::String(text)) => {
                update.text_signature = Some(text.clone());
                true
            }
            ("htmlSignature", Value::String(html)) => {
                update.html_signature = Some(html.clone());
                true
            }
            // Immutable or server-set: only its current value is accepted.
            ("id" | "email" | "mayDelete", value) => current.get(property) == Some(value),
            _ => false,
        };
        if !ok {
            bad.push(property.clone());
        }
    }
    if !bad.is_empty() {
        return Err(invalid(bad, "invalid, unknown or immutable properties"));
    }
    if update == IdentityUpdate::default() {
        return Ok(());
    }
    ctx.store()
        .update_identity(ctx.tenant(), &account.account_id, &identity.id, &update)?;
    Ok(())
}

/// `Identity/set`.
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
    let mut all = identities(ctx, &account)?;
    let account = ctx.account(&account.account_id)?;
    if if_in_state.is_some_and(|s| s != state(&account)) {
        return Err(MethodError::state_mismatch());
    }
    let owner = ctx.owner_email(&account)?;

    let (mut created, mut not_created) = (Map::new(), Map::new());
    for (cid, object) in &create {
        match create_one(ctx, &account, owner.as_ref(), object) {
            Ok(value) => {
                if let Some(id) = value.get("id").and_then(Value::as_str) {
                    ctx.created_ids.insert(cid.clone(), id.to_owned());
                }
                created.insert(cid.clone(), value);
            }
            Err(error) => {
                not_created.insert(cid.clone(), error.to_json());
            }
        }
    }
    if !created.is_empty() {
        all = ctx.store().identities(ctx.tenant(), &account.account_id)?;
    }

    let (mut updated, mut not_updated) = (Map::new(), Map::new());
    for (key, patch) in &update {
        let resolved = ctx.resolve_id(key);
        let outcome = match all.iter().find(|i| Some(&i.id) == resolved.as_ref()) {
            Some(identity) => update_one(ctx, &account, identity, patch),
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
        let resolved = ctx.resolve_id(&key);
        let outcome = match all.iter().find(|i| Some(&i.id) == resolved.as_ref()) {
            Some(identity) if !identity.may_delete => Err(SetError::new(
                "forbidden",
                "the account's default identity cannot be destroyed",
            )),
            Some(identity) => ctx
                .store()
                .destroy_identity(ctx.tenant(), &account.account_id, &identity.id)
                .map(|()| identity.id.clone())
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

    #[test]
    fn address_lists() {
        let cases: &[(Value, Option<usize>)] = &[
            (json!(null), Some(0)),
            (json!([]), Some(0)),
            (json!([{"email": "a@acme.test"}]), Some(1)),
            (json!([{"name": "A", "email": "a@acme.test"}]), Some(1)),
            (json!([{"name": null, "email": "a@acme.test"}]), Some(1)),
            (json!([{"email": "not an address"}]), None),
            (json!([{"name": 1, "email": "a@acme.test"}]), None),
            (json!([{"email": "a@acme.test", "extra": 1}]), None),
            (json!(["a@acme.test"]), None),
            (json!("a@acme.test"), None),
        ];
        for (value, expect) in cases {
            let got = addresses_value(value).map(|v| v.map_or(0, |l| l.len()));
            assert_eq!(got, *expect, "{value}");
        }
    }

    #[test]
    fn addresses_compare_as_mailboxes() {
        let cases = [
            ("alice@acme.test", "alice@acme.test", true),
            ("Alice@ACME.test", "alice@acme.test", true),
            ("alice@acme.test", "alice@acme.test.evil", false),
            ("alice@acme.test", "bob@acme.test", false),
            ("", "", false),
        ];
        for (a, b, expect) in cases {
            assert_eq!(same_address(a, b), expect, "{a} {b}");
        }
    }
}
