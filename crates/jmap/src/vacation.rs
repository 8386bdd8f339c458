//! `VacationResponse/get` and `/set` (RFC 8621 section 8): the account's
//! one automatic-reply setting, id `singleton`, kept in the store.
//!
//! Only the setting is kept. No automatic reply is sent yet, even while
//! `isEnabled` is true: replying means sending to whoever wrote, which
//! needs the outbound relay this server does not have.

use serde_json::{Map, Value, json};
use stormproof_store::VacationResponse;

use crate::args::{Args, MethodError, SetError, map_or_null};
use crate::{Ctx, date, state};

/// The id of the one VacationResponse object.
const SINGLETON: &str = "singleton";

const PROPERTIES: &[&str] = &[
    "id",
    "isEnabled",
    "fromDate",
    "toDate",
    "subject",
    "textBody",
    "htmlBody",
];

fn render(vacation: &VacationResponse, properties: &[String]) -> Value {
    let mut out = Map::new();
    for property in properties {
        let value = match property.as_str() {
            "id" => json!(SINGLETON),
            "isEnabled" => json!(vacation.is_enabled),
            "fromDate" => json!(vacation.from_date.map(date::format_utc)),
            "toDate" => json!(vacation.to_date.map(date::format_utc)),
            "subject" => json!(vacation.subject),
            "textBody" => json!(vacation.text_body),
            "htmlBody" => json!(vacation.html_body),
            _ => continue,
        };
        out.insert(property.clone(), value);
    }
    Value::Object(out)
}

/// `VacationResponse/get`.
pub(crate) fn get(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    let (account, ids, properties) = ctx.standard_get(args, PROPERTIES)?;
    let vacation = ctx
        .store()
        .vacation_response(ctx.tenant(), &account.account_id)?
        .unwrap_or_default();
    let (mut list, mut not_found) = (Vec::new(), Vec::new());
    match ids {
        None => list.push(render(&vacation, &properties)),
        Some(ids) => {
            for id in ids {
                if id == SINGLETON {
                    list.push(render(&vacation, &properties));
                } else {
                    not_found.push(id);
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

/// A `String|null` value: `Some(None)` for null, `None` when it is neither.
fn optional_string(value: &Value) -> Option<Option<String>> {
    match value {
        Value::Null => Some(None),
        Value::String(text) => Some(Some(text.clone())),
        _ => None,
    }
}

/// A `UTCDate|null` value.
fn optional_date(value: &Value) -> Option<Option<i64>> {
    match value {
        Value::Null => Some(None),
        Value::String(text) => date::parse_utc(text).map(Some),
        _ => None,
    }
}

fn apply(vacation: &mut VacationResponse, patch: &Value) -> Result<(), SetError> {
    let Value::Object(patch) = patch else {
        return Err(SetError::invalid(&[], "a patch must be an object"));
    };
    let mut bad = Vec::new();
    for (property, value) in patch {
        let ok = match (property.as_str(), value) {
            ("id", value) => value == SINGLETON,
            ("isEnabled", Value::Bool(enabled)) => {
                vacation.is_enabled = *enabled;
                true
            }
            ("fromDate", value) => optional_date(value)
                .map(|d| vacation.from_date = d)
                .is_some(),
            ("toDate", value) => optional_date(value).map(|d| vacation.to_date = d).is_some(),
            ("subject", value) => optional_string(value)
                .map(|s| vacation.subject = s)
                .is_some(),
            ("textBody", value) => optional_string(value)
                .map(|s| vacation.text_body = s)
                .is_some(),
            ("htmlBody", value) => optional_string(value)
                .map(|s| vacation.html_body = s)
                .is_some(),
            _ => false,
        };
        if !ok {
            bad.push(property.clone());
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(SetError {
            properties: bad,
            ..SetError::new("invalidProperties", "invalid or unknown properties")
        })
    }
}

fn singleton_error(what: &str) -> Value {
    SetError::new(
        "singleton",
        format!("the VacationResponse is a singleton and cannot be {what}"),
    )
    .to_json()
}

/// `VacationResponse/set`: only `update` of `singleton`.
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
        .map(|cid| (cid.clone(), singleton_error("created")))
        .collect();
    let not_destroyed: Map<String, Value> = destroy
        .into_iter()
        .map(|id| (id, singleton_error("destroyed")))
        .collect();
    let (mut updated, mut not_updated) = (Map::new(), Map::new());
    for (key, patch) in &update {
        if key != SINGLETON {
            not_updated.insert(key.clone(), SetError::not_found().to_json());
            continue;
        }
        let mut vacation = ctx
            .store()
            .vacation_response(ctx.tenant(), &account.account_id)?
            .unwrap_or_default();
        let outcome = apply(&mut vacation, patch).and_then(|()| {
            ctx.store()
                .set_vacation_response(ctx.tenant(), &account.account_id, &vacation)
                .map_err(SetError::from)
        });
        match outcome {
            Ok(()) => {
                updated.insert(key.clone(), Value::Null);
            }
            Err(error) => {
                not_updated.insert(key.clone(), error.to_json());
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
        "destroyed": Value::Null,
        "notCreated": map_or_null(not_created),
        "notUpdated": map_or_null(not_updated),
        "notDestroyed": map_or_null(not_destroyed),
    }))
}
