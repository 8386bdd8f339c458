//! `/query` machinery (RFC 8620 section 5.5): filter trees, result windows,
//! and `Email/query` with its filters and sorts (RFC 8621 section 4.4).
//!
//! The store offers no query planner, so an email query loads the
//! account's records and filters them in memory; full-text conditions are
//! answered by the store's index first.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};
use stormproof_store::{EmailAddress, EmailRecord};

use crate::args::{Args, MethodError};
use crate::{Access, Ctx, date, email, parse_state, state};

/// Sort properties `Email/query` supports, as advertised in the Session.
pub(crate) const EMAIL_SORT_OPTIONS: &[&str] = &[
    "receivedAt",
    "sentAt",
    "size",
    "subject",
    "from",
    "to",
    "hasKeyword",
];

/// A filter tree: operators over conditions of type `C`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter<C> {
    And(Vec<Filter<C>>),
    Or(Vec<Filter<C>>),
    Not(Vec<Filter<C>>),
    Cond(C),
}

impl<C> Filter<C> {
    pub fn matches(&self, test: &impl Fn(&C) -> bool) -> bool {
        match self {
            Filter::And(list) => list.iter().all(|f| f.matches(test)),
            Filter::Or(list) => list.iter().any(|f| f.matches(test)),
            Filter::Not(list) => !list.iter().any(|f| f.matches(test)),
            Filter::Cond(c) => test(c),
        }
    }

    /// Every condition not under a `NOT`, for highlighting.
    pub fn positive<'a>(&'a self, out: &mut Vec<&'a C>) {
        match self {
            Filter::And(list) | Filter::Or(list) => list.iter().for_each(|f| f.positive(out)),
            Filter::Not(_) => {}
            Filter::Cond(c) => out.push(c),
        }
    }

    pub fn conditions<'a>(&'a self, out: &mut Vec<&'a C>) {
        match self {
            Filter::And(list) | Filter::Or(list) | Filter::Not(list) => {
                list.iter().for_each(|f| f.conditions(out))
            }
            Filter::Cond(c) => out.push(c),
        }
    }
}

/// Deepest filter nesting accepted.
const MAX_FILTER_DEPTH: usize = 16;

/// Parses a `FilterOperator`/`FilterCondition` tree, handing each condition
/// object to `condition`.
pub(crate) fn parse_filter<C>(
    value: Value,
    condition: &mut impl FnMut(Map<String, Value>) -> Result<C, MethodError>,
) -> Result<Filter<C>, MethodError> {
    parse_filter_at(value, condition, 0)
}

fn parse_filter_at<C>(
    value: Value,
    condition: &mut impl FnMut(Map<String, Value>) -> Result<C, MethodError>,
    depth: usize,
) -> Result<Filter<C>, MethodError> {
    if depth > MAX_FILTER_DEPTH {
        return Err(MethodError::new(
            "unsupportedFilter",
            "filter nested too deeply",
        ));
    }
    let Value::Object(mut map) = value else {
        return Err(MethodError::invalid_arguments("a filter must be an object"));
    };
    let Some(operator) = map.remove("operator") else {
        return condition(map).map(Filter::Cond);
    };
    let Some(Value::Array(conditions)) = map.remove("conditions") else {
        return Err(MethodError::invalid_arguments(
            "a FilterOperator needs a 'conditions' array",
        ));
    };
    if let Some(extra) = map.keys().next() {
        return Err(MethodError::invalid_arguments(format!(
            "unknown FilterOperator property '{extra}'"
        )));
    }
    let list = conditions
        .into_iter()
        .map(|c| parse_filter_at(c, condition, depth + 1))
        .collect::<Result<Vec<_>, _>>()?;
    match operator.as_str() {
        Some("AND") => Ok(Filter::And(list)),
        Some("OR") => Ok(Filter::Or(list)),
        Some("NOT") => Ok(Filter::Not(list)),
        _ => Err(MethodError::invalid_arguments(
            "'operator' must be AND, OR or NOT",
        )),
    }
}

/// `position`, `anchor`, `anchorOffset`, `limit`, `calculateTotal`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Window {
    pub position: i64,
    pub anchor: Option<String>,
    pub anchor_offset: i64,
    pub limit: Option<usize>,
    pub calculate_total: bool,
}

/// A window applied to a result list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub position: usize,
    pub ids: Vec<String>,
    /// Set when the server's cap cut the results short.
    pub limit: Option<usize>,
}

impl Window {
    pub fn from_args(args: &mut Args) -> Result<Self, MethodError> {
        Ok(Self {
            position: args.int("position")?.unwrap_or(0),
            anchor: args.string("anchor")?,
            anchor_offset: args.int("anchorOffset")?.unwrap_or(0),
            limit: args
                .uint("limit")?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            calculate_total: args.bool("calculateTotal")?.unwrap_or(false),
        })
    }

    pub fn apply(&self, ids: &[String], cap: Option<usize>) -> Result<Page, MethodError> {
        let total = ids.len() as i64;
        let start = match &self.anchor {
            Some(anchor) => {
                let index = ids.iter().position(|id| id == anchor).ok_or_else(|| {
                    MethodError::new("anchorNotFound", "the anchor is not in the results")
                })?;
                (index as i64).saturating_add(self.anchor_offset).max(0)
            }
            None if self.position < 0 => (total + self.position).max(0),
            None => self.position,
        }
        .min(total) as usize;
        let wanted = self.limit.unwrap_or(usize::MAX);
        let count = match cap {
            Some(cap) if cap < wanted => cap,
            _ => wanted,
        };
        let end = start.saturating_add(count).min(ids.len());
        let cut_by_cap = cap.is_some_and(|cap| cap < wanted && end < ids.len());
        Ok(Page {
            position: start,
            ids: ids[start..end].to_vec(),
            limit: cut_by_cap.then_some(count),
        })
    }

    /// The standard `/query` response around a page.
    pub fn response(
        &self,
        account_id: &str,
        query_state: String,
        page: Page,
        total: usize,
    ) -> Value {
        let mut response = json!({
            "accountId": account_id,
            "queryState": query_state,
            "canCalculateChanges": false,
            "position": page.position,
            "ids": page.ids,
        });
        if self.calculate_total {
            response["total"] = json!(total);
        }
        if let Some(limit) = page.limit {
            response["limit"] = json!(limit);
        }
        response
    }
}

/// Shared `/queryChanges`: this server keeps no query history, so only an
/// unchanged state can be answered (with no changes); anything else is
/// `cannotCalculateChanges`, as RFC 8620 section 5.6 permits.
pub(crate) fn query_changes<P>(
    ctx: &Ctx<'_>,
    mut args: Args,
    parse: impl FnOnce(&mut Args) -> Result<P, MethodError>,
    total: impl FnOnce(&Ctx<'_>, &stormproof_store::MailAccount, P) -> Result<usize, MethodError>,
) -> Result<Value, MethodError> {
    let account = ctx.account(&args.required_string("accountId")?)?;
    let since = args.required_string("sinceQueryState")?;
    args.uint("maxChanges")?;
    args.string("upToId")?;
    let calculate_total = args.bool("calculateTotal")?.unwrap_or(false);
    let parsed = parse(&mut args)?;
    args.finish()?;
    if parse_state(&since, &account) != Some(account.modseq) {
        return Err(MethodError::cannot_calculate_changes());
    }
    let mut response = json!({
        "accountId": account.account_id,
        "oldQueryState": since,
        "newQueryState": state(&account),
        "removed": [],
        "added": [],
    });
    if calculate_total {
        response["total"] = json!(total(ctx, &account, parsed)?);
    }
    Ok(response)
}

/// One `Email/query` filter condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EmailCond {
    InMailbox(String),
    InMailboxOtherThan(Vec<String>),
    Before(i64),
    After(i64),
    MinSize(i64),
    MaxSize(i64),
    AllInThreadHaveKeyword(String),
    SomeInThreadHaveKeyword(String),
    NoneInThreadHaveKeyword(String),
    HasKeyword(String),
    NotKeyword(String),
    HasAttachment(bool),
    /// Full text: the store's index over subject, addresses and body.
    Text(String),
    From(String),
    To(String),
    Cc(String),
    Subject(String),
    /// Answered by the same index as `text` (it also covers headers).
    Body(String),
}

/// A `FilterCondition`: all its properties must match.
pub(crate) type EmailFilter = Filter<Vec<EmailCond>>;

fn keyword_arg(name: &str, value: Value) -> Result<String, MethodError> {
    match value {
        Value::String(k) if email::valid_keyword(&k) => Ok(k.to_ascii_lowercase()),
        _ => Err(MethodError::invalid_arguments(format!(
            "'{name}' must be a keyword"
        ))),
    }
}

fn string_arg(name: &str, value: Value) -> Result<String, MethodError> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(MethodError::invalid_arguments(format!(
            "'{name}' must be a string"
        ))),
    }
}

fn date_arg(name: &str, value: Value) -> Result<i64, MethodError> {
    value
        .as_str()
        .and_then(date::parse_utc)
        .ok_or_else(|| MethodError::invalid_arguments(format!("'{name}' must be a UTCDate")))
}

fn size_arg(name: &str, value: Value) -> Result<i64, MethodError> {
    value.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
        MethodError::invalid_arguments(format!("'{name}' must be an unsigned integer"))
    })
}

/// Parses one email `FilterCondition`, resolving creation ids in mailbox ids.
pub(crate) fn email_condition(
    ctx: &Ctx<'_>,
    map: Map<String, Value>,
) -> Result<Vec<EmailCond>, MethodError> {
    let mut conds = Vec::new();
    let mailbox = |id: String| ctx.resolve_id(&id).unwrap_or(id);
    for (name, value) in map {
        let cond = match name.as_str() {
            "inMailbox" => EmailCond::InMailbox(mailbox(string_arg(&name, value)?)),
            "inMailboxOtherThan" => EmailCond::InMailboxOtherThan(
                crate::args::strings(value)
                    .ok_or_else(|| {
                        MethodError::invalid_arguments(
                            "'inMailboxOtherThan' must be an array of ids",
                        )
                    })?
                    .into_iter()
                    .map(mailbox)
                    .collect(),
            ),
            "before" => EmailCond::Before(date_arg(&name, value)?),
            "after" => EmailCond::After(date_arg(&name, value)?),
            "minSize" => EmailCond::MinSize(size_arg(&name, value)?),
            "maxSize" => EmailCond::MaxSize(size_arg(&name, value)?),
            "allInThreadHaveKeyword" => {
                EmailCond::AllInThreadHaveKeyword(keyword_arg(&name, value)?)
            }
            "someInThreadHaveKeyword" => {
                EmailCond::SomeInThreadHaveKeyword(keyword_arg(&name, value)?)
            }
            "noneInThreadHaveKeyword" => {
                EmailCond::NoneInThreadHaveKeyword(keyword_arg(&name, value)?)
            }
            "hasKeyword" => EmailCond::HasKeyword(keyword_arg(&name, value)?),
            "notKeyword" => EmailCond::NotKeyword(keyword_arg(&name, value)?),
            "hasAttachment" => EmailCond::HasAttachment(value.as_bool().ok_or_else(|| {
                MethodError::invalid_arguments("'hasAttachment' must be a boolean")
            })?),
            "text" => EmailCond::Text(string_arg(&name, value)?),
            "from" => EmailCond::From(string_arg(&name, value)?),
            "to" => EmailCond::To(string_arg(&name, value)?),
            "cc" => EmailCond::Cc(string_arg(&name, value)?),
            "subject" => EmailCond::Subject(string_arg(&name, value)?),
            "body" => EmailCond::Body(string_arg(&name, value)?),
            "bcc" | "header" => {
                return Err(MethodError::new(
                    "unsupportedFilter",
                    format!("the '{name}' filter is not supported"),
                ));
            }
            _ => {
                return Err(MethodError::new(
                    "unsupportedFilter",
                    format!("unknown filter property '{name}'"),
                ));
            }
        };
        conds.push(cond);
    }
    Ok(conds)
}

pub(crate) fn parse_email_filter(ctx: &Ctx<'_>, value: Value) -> Result<EmailFilter, MethodError> {
    parse_filter(value, &mut |map| email_condition(ctx, map))
}

/// A sort comparator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SortKey {
    ReceivedAt,
    SentAt,
    Size,
    Subject,
    From,
    To,
    HasKeyword(String),
}

/// Parses the `sort` argument with `key` naming the supported properties.
pub(crate) fn parse_sort<K>(
    value: Option<Value>,
    key: impl Fn(&str, &mut Map<String, Value>) -> Result<Option<K>, MethodError>,
) -> Result<Vec<(K, bool)>, MethodError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(list) = value else {
        return Err(MethodError::invalid_arguments("'sort' must be an array"));
    };
    let mut out = Vec::new();
    for comparator in list {
        let Value::Object(mut map) = comparator else {
            return Err(MethodError::invalid_arguments(
                "a Comparator must be an object",
            ));
        };
        let property = match map.remove("property") {
            Some(Value::String(p)) => p,
            _ => {
                return Err(MethodError::invalid_arguments(
                    "a Comparator needs a 'property' string",
                ));
            }
        };
        let ascending = match map.remove("isAscending") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                return Err(MethodError::invalid_arguments(
                    "'isAscending' must be a boolean",
                ));
            }
        };
        match map.remove("collation") {
            None | Some(Value::Null) => {}
            Some(Value::String(c)) if c == "i;unicode-casemap" => {}
            Some(_) => {
                return Err(MethodError::new("unsupportedSort", "unsupported collation"));
            }
        }
        let parsed = key(&property, &mut map)?.ok_or_else(|| {
            MethodError::new("unsupportedSort", format!("cannot sort by '{property}'"))
        })?;
        if let Some(extra) = map.keys().next() {
            return Err(MethodError::invalid_arguments(format!(
                "unknown Comparator property '{extra}'"
            )));
        }
        out.push((parsed, ascending));
    }
    Ok(out)
}

fn email_sort_key(
    property: &str,
    map: &mut Map<String, Value>,
) -> Result<Option<SortKey>, MethodError> {
    Ok(Some(match property {
        "receivedAt" => SortKey::ReceivedAt,
        "sentAt" => SortKey::SentAt,
        "size" => SortKey::Size,
        "subject" => SortKey::Subject,
        "from" => SortKey::From,
        "to" => SortKey::To,
        "hasKeyword" => match map.remove("keyword") {
            Some(value) => SortKey::HasKeyword(keyword_arg("keyword", value)?),
            None => {
                return Err(MethodError::invalid_arguments(
                    "sorting by hasKeyword needs 'keyword'",
                ));
            }
        },
        _ => return Ok(None),
    }))
}

fn first_address(list: &[EmailAddress]) -> String {
    list.first()
        .map(|a| match a.name.as_deref() {
            Some(name) if !name.is_empty() => name.to_lowercase(),
            _ => a.email.to_lowercase(),
        })
        .unwrap_or_default()
}

fn compare(a: &EmailRecord, b: &EmailRecord, key: &SortKey) -> Ordering {
    match key {
        SortKey::ReceivedAt => a.received_at.cmp(&b.received_at),
        SortKey::SentAt => a.sent_at.cmp(&b.sent_at),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Subject => {
            let s = |r: &EmailRecord| r.subject.as_deref().unwrap_or_default().to_lowercase();
            s(a).cmp(&s(b))
        }
        SortKey::From => first_address(&a.from).cmp(&first_address(&b.from)),
        SortKey::To => first_address(&a.to).cmp(&first_address(&b.to)),
        SortKey::HasKeyword(k) => a.keywords.contains(k).cmp(&b.keywords.contains(k)),
    }
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn addresses_match(list: &[EmailAddress], needle: &str) -> bool {
    list.iter().any(|a| {
        contains_ci(&a.email, needle) || a.name.as_deref().is_some_and(|n| contains_ci(n, needle))
    })
}

/// What condition evaluation needs beyond the record itself.
struct Env<'a> {
    /// Full-text query to the ids it matched.
    fts: HashMap<String, HashSet<String>>,
    /// Thread id to the keyword lists of its emails.
    threads: HashMap<&'a str, Vec<&'a [String]>>,
}

fn matches(cond: &EmailCond, r: &EmailRecord, env: &Env<'_>) -> bool {
    let in_thread = |k: &String| -> Vec<bool> {
        env.threads
            .get(r.thread_id.as_str())
            .map(|all| all.iter().map(|kws| kws.contains(k)).collect())
            .unwrap_or_default()
    };
    let fts = |text: &String| env.fts.get(text).is_some_and(|ids| ids.contains(&r.id));
    match cond {
        EmailCond::InMailbox(m) => r.mailboxes.iter().any(|x| &x.mailbox_id == m),
        EmailCond::InMailboxOtherThan(list) => {
            r.mailboxes.iter().any(|x| !list.contains(&x.mailbox_id))
        }
        EmailCond::Before(t) => r.received_at < *t,
        EmailCond::After(t) => r.received_at >= *t,
        EmailCond::MinSize(n) => r.size >= *n,
        EmailCond::MaxSize(n) => r.size < *n,
        EmailCond::AllInThreadHaveKeyword(k) => in_thread(k).iter().all(|b| *b),
        EmailCond::SomeInThreadHaveKeyword(k) => in_thread(k).iter().any(|b| *b),
        EmailCond::NoneInThreadHaveKeyword(k) => !in_thread(k).iter().any(|b| *b),
        EmailCond::HasKeyword(k) => r.keywords.contains(k),
        EmailCond::NotKeyword(k) => !r.keywords.contains(k),
        EmailCond::HasAttachment(b) => r.has_attachment == *b,
        EmailCond::Text(t) | EmailCond::Body(t) => fts(t),
        EmailCond::From(t) => addresses_match(&r.from, t),
        EmailCond::To(t) => addresses_match(&r.to, t),
        EmailCond::Cc(t) => addresses_match(&r.cc, t),
        EmailCond::Subject(t) => r.subject.as_deref().is_some_and(|s| contains_ci(s, t)),
    }
}

/// Runs a filter over every email of the account and sorts the result.
pub(crate) fn run(
    ctx: &Ctx<'_>,
    account: &stormproof_store::MailAccount,
    filter: Option<&EmailFilter>,
    sort: &[(SortKey, bool)],
    collapse_threads: bool,
) -> Result<Vec<EmailRecord>, MethodError> {
    let records = ctx.all_emails(account)?;
    let mut env = Env {
        fts: HashMap::new(),
        threads: HashMap::new(),
    };
    for r in &records {
        env.threads
            .entry(r.thread_id.as_str())
            .or_default()
            .push(&r.keywords);
    }
    if let Some(filter) = filter {
        let mut conds = Vec::new();
        filter.conditions(&mut conds);
        for cond in conds.into_iter().flatten() {
            if let EmailCond::Text(t) | EmailCond::Body(t) = cond
                && !env.fts.contains_key(t)
            {
                let hits = ctx.store().search_emails(
                    ctx.tenant(),
                    &account.account_id,
                    t,
                    records.len().max(1),
                )?;
                env.fts.insert(t.clone(), hits.into_iter().collect());
            }
        }
    }
    let mut hits: Vec<&EmailRecord> = records
        .iter()
        .filter(|r| {
            filter.is_none_or(|f| {
                f.matches(&|conds: &Vec<EmailCond>| conds.iter().all(|c| matches(c, r, &env)))
            })
        })
        .collect();
    let default_sort = [(SortKey::ReceivedAt, false)];
    let sort = if sort.is_empty() {
        &default_sort[..]
    } else {
        sort
    };
    hits.sort_by(|a, b| {
        sort.iter()
            .map(|(key, ascending)| {
                let order = compare(a, b, key);
                if *ascending { order } else { order.reverse() }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| {
                b.received_at
                    .cmp(&a.received_at)
                    .then_with(|| a.id.cmp(&b.id))
            })
    });
    if collapse_threads {
        let mut seen = HashSet::new();
        hits.retain(|r| seen.insert(r.thread_id.clone()));
    }
    Ok(hits.into_iter().cloned().collect())
}

/// `Email/query`.
pub(crate) fn email_query(ctx: &mut Ctx<'_>, mut args: Args) -> Result<Value, MethodError> {
    let account = ctx.account(&args.required_string("accountId")?)?;
    let filter = args
        .value("filter")
        .map(|f| parse_email_filter(ctx, f))
        .transpose()?;
    let sort = parse_sort(args.value("sort"), email_sort_key)?;
    let window = Window::from_args(&mut args)?;
    let collapse = args.bool("collapseThreads")?.unwrap_or(false);
    args.finish()?;
    let results = run(ctx, &account, filter.as_ref(), &sort, collapse)?;
    let ids: Vec<String> = results.iter().map(|r| r.id.clone()).collect();
    let page = window.apply(&ids, Some(ctx.config().max_objects_in_get))?;
    let returned: HashSet<&String> = page.ids.iter().collect();
    let access = Access::new("Email/query", &account.account_id, false)
        .with_emails(results.iter().filter(|r| returned.contains(&r.id)));
    ctx.record(access);
    Ok(window.response(&account.account_id, state(&account), page, ids.len()))
}

/// `Email/queryChanges`.
pub(crate) fn email_query_changes(ctx: &mut Ctx<'_>, args: Args) -> Result<Value, MethodError> {
    let parse = |args: &mut Args| -> Result<_, MethodError> {
        let filter = args
            .value("filter")
            .map(|f| parse_email_filter(ctx, f))
            .transpose()?;
        let sort = parse_sort(args.value("sort"), email_sort_key)?;
        let collapse = args.bool("collapseThreads")?.unwrap_or(false);
        Ok((filter, sort, collapse))
    };
    query_changes(
        ctx,
        args,
        parse,
        |ctx, account, (filter, sort, collapse)| {
            Ok(run(ctx, account, filter.as_ref(), &sort, collapse)?.len())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("e{i}")).collect()
    }

    #[test]
    fn windows() {
        let list = ids(5);
        let w = |position, anchor: Option<&str>, anchor_offset, limit| Window {
            position,
            anchor: anchor.map(str::to_owned),
            anchor_offset,
            limit,
            calculate_total: false,
        };
        type Expect = Result<(usize, Vec<&'static str>, Option<usize>), &'static str>;
        let cases: Vec<(Window, Option<usize>, Expect)> = vec![
            (
                w(0, None, 0, None),
                None,
                Ok((0, vec!["e0", "e1", "e2", "e3", "e4"], None)),
            ),
            (
                w(1, None, 0, Some(2)),
                None,
                Ok((1, vec!["e1", "e2"], None)),
            ),
            (w(-2, None, 0, None), None, Ok((3, vec!["e3", "e4"], None))),
            (w(-9, None, 0, Some(1)), None, Ok((0, vec!["e0"], None))),
            (w(9, None, 0, None), None, Ok((5, vec![], None))),
            (
                w(0, Some("e3"), -1, Some(2)),
                None,
                Ok((2, vec!["e2", "e3"], None)),
            ),
            (
                w(0, Some("e1"), -5, Some(1)),
                None,
                Ok((0, vec!["e0"], None)),
            ),
            (w(0, Some("nope"), 0, None), None, Err("anchorNotFound")),
            (
                w(0, None, 0, None),
                Some(2),
                Ok((0, vec!["e0", "e1"], Some(2))),
            ),
            (
                w(3, None, 0, None),
                Some(2),
                Ok((3, vec!["e3", "e4"], None)),
            ),
            (w(0, None, 0, Some(1)), Some(2), Ok((0, vec!["e0"], None))),
        ];
        for (window, cap, expect) in cases {
            let got = window
                .apply(&list, cap)
                .map(|p| (p.position, p.ids, p.limit))
                .map_err(|e| e.kind);
            let expect =
                expect.map(|(p, i, l)| (p, i.into_iter().map(String::from).collect::<Vec<_>>(), l));
            assert_eq!(got, expect, "{window:?} cap {cap:?}");
        }
    }

    #[test]
    fn filter_operators() {
        let parse = |v: Value| {
            parse_filter(v, &mut |map: Map<String, Value>| {
                Ok(map.get("n").and_then(Value::as_i64).unwrap_or(-1))
            })
        };
        let f = parse(json!({"operator": "OR", "conditions": [
            {"n": 1},
            {"operator": "NOT", "conditions": [{"n": 2}, {"n": 3}]}
        ]}))
        .unwrap();
        let cases: &[(i64, bool)] = &[(1, true), (2, false), (3, false), (4, true)];
        for (value, expect) in cases {
            assert_eq!(f.matches(&|n: &i64| n == value), *expect, "{value}");
        }
        let mut positive = Vec::new();
        f.positive(&mut positive);
        assert_eq!(positive, vec![&1]);
        for bad in [
            json!({"operator": "XOR", "conditions": []}),
            json!({"operator": "AND"}),
            json!({"operator": "AND", "conditions": [], "extra": 1}),
            json!([1]),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
