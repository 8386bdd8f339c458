//! Which Sigma rules an audit event could match, decided before any rule
//! is evaluated.
//!
//! Real rules almost always name what happened (`operation: sign_in`). At
//! load, each compiled rule is read for what an event must have to match
//! it: the values a field such as `operation` or `outcome` must take, the
//! text a field must contain, start or end with (case-insensitively), or
//! the networks `actor.ip` must be in, wherever the rule's condition
//! requires them (through `and`, and through `or` when every branch
//! requires something of the same field). Rules are then listed by
//! operation, so an event looks up its own operation once and checks only
//! the rules that name it or name no operation. Their other requirements
//! are checked against the event's values lowercased once and its address
//! parsed once, where rsigma lowercases and parses per rule. Only the
//! rules that pass are evaluated, by rsigma, in load order: the results are
//! exactly those of evaluating every rule.
//!
//! **Invariant:** a rule is skipped only when it cannot match. The analysis
//! keeps a requirement only where it is sure (equality, case-insensitive
//! substring and CIDR matchers on single-valued fields, under `and`, `or`
//! and quantified selectors); anything else (`not`, regular expressions,
//! case-sensitive substrings, keywords, numbers, field references)
//! requires nothing, and such a rule is checked against every event.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::net::IpAddr;

use hashbrown::HashMap;
use ipnet::IpNet;
use rsigma_eval::matcher::{GroupMode, ascii_lowercase_cow};
use rsigma_eval::{CompiledDetection, CompiledMatcher, CompiledRule};
use rsigma_parser::{ConditionExpr, Quantifier};
use stormproof_audit::AuditEvent;

use crate::sigma::{SigmaEvent, access_str, outcome_str};

/// Distinct raw operation spellings remembered; beyond this, an unseen
/// spelling is lowercased and looked up each time.
const MAX_MEMO: usize = 1024;

/// The single-valued text fields of the Sigma schema (one string, or null,
/// per event): the ones a requirement can be checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Operation,
    Outcome,
    Access,
    Reason,
    Tenant,
    Time,
    User,
    UserId,
    Client,
    Session,
    Token,
    Ip,
    UserAgent,
    Protocol,
    Account,
    Owner,
    Mailbox,
}

impl Field {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "operation" => Field::Operation,
            "outcome" => Field::Outcome,
            "access" => Field::Access,
            "reason" => Field::Reason,
            "tenant" => Field::Tenant,
            "time" => Field::Time,
            "actor.user" => Field::User,
            "actor.user_id" => Field::UserId,
            "actor.client_id" => Field::Client,
            "actor.session" => Field::Session,
            "actor.token" => Field::Token,
            "actor.ip" => Field::Ip,
            "actor.user_agent" => Field::UserAgent,
            "actor.protocol" => Field::Protocol,
            "target.account" => Field::Account,
            "target.owner" => Field::Owner,
            "target.mailbox" => Field::Mailbox,
            _ => return None,
        })
    }

    /// The event's value, as [`crate::sigma::SigmaEvent`] reports it; `None`
    /// where it reports null.
    fn value(self, event: &AuditEvent) -> Option<&str> {
        let (a, t) = (&event.actor, &event.target);
        match self {
            Field::Operation => Some(&event.operation),
            Field::Outcome => Some(outcome_str(event.outcome)),
            Field::Access => Some(access_str(event.access)),
            Field::Reason => event.reason.as_deref(),
            Field::Tenant => event.tenant.as_deref(),
            Field::Time => Some(&event.time),
            Field::User => a.user.as_deref(),
            Field::UserId => a.user_id.as_deref(),
            Field::Client => a.client_id.as_deref(),
            Field::Session => a.session.as_deref(),
            Field::Token => a.token.as_deref(),
            Field::Ip => a.ip.as_deref(),
            Field::UserAgent => a.user_agent.as_deref(),
            Field::Protocol => Some(&a.protocol),
            Field::Account => t.account.as_deref(),
            Field::Owner => t.owner.as_deref(),
            Field::Mailbox => t.mailbox.as_deref(),
        }
    }
}

/// How many [`Field`]s there are.
const FIELD_COUNT: usize = 17;

/// A comparison with a field's lowercased value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Exact,
    Contains,
    StartsWith,
    EndsWith,
}

/// Something an event must have for a rule to match it.
#[derive(Debug, Clone, PartialEq)]
enum Need {
    /// The field's value, lowercased as rsigma lowercases, passes one of
    /// these comparisons.
    Text(Field, Vec<(Op, String)>),
    /// One of the event's string values (any field, `detail` included),
    /// lowercased, passes one of these: a keyword.
    Keyword(Vec<(Op, String)>),
    /// `actor.ip` is an address inside one of these.
    Networks(Vec<IpNet>),
}

/// What a matcher accepts, when it accepts only particular text or networks.
enum Accepts {
    Text(Vec<(Op, String)>),
    Networks(Vec<IpNet>),
}

/// What a matcher can match, if it can match nothing else. A
/// case-insensitive pattern is kept as rsigma compares it (already
/// lowercased; the event's value lowercased must pass). A case-sensitive
/// value is kept lowercased, which the lowercased event value must then
/// equal; a case-sensitive substring is not kept, since lowercasing a part
/// of a text need not give a part of the lowercased text.
fn accepts(matcher: &CompiledMatcher) -> Option<Accepts> {
    let text = |op, value: &String| Some(Accepts::Text(vec![(op, value.clone())]));
    match matcher {
        CompiledMatcher::Exact {
            value,
            case_insensitive: true,
        } => text(Op::Exact, value),
        CompiledMatcher::Exact {
            value,
            case_insensitive: false,
        } => text(Op::Exact, &value.to_lowercase()),
        CompiledMatcher::Contains {
            value,
            case_insensitive: true,
        } => text(Op::Contains, value),
        CompiledMatcher::StartsWith {
            value,
            case_insensitive: true,
        } => text(Op::StartsWith, value),
        CompiledMatcher::EndsWith {
            value,
            case_insensitive: true,
        } => text(Op::EndsWith, value),
        CompiledMatcher::AhoCorasickSet {
            needles,
            case_insensitive: true,
            ..
        } => Some(Accepts::Text(
            needles.iter().map(|n| (Op::Contains, n.clone())).collect(),
        )),
        CompiledMatcher::Cidr(net) => Some(Accepts::Networks(vec![*net])),
        // Any one: the union of what each accepts, if each is particular.
        CompiledMatcher::AnyOf(children)
        | CompiledMatcher::CaseInsensitiveGroup {
            children,
            mode: GroupMode::Any,
        } => {
            let mut all = accepts(children.first()?)?;
            for child in &children[1..] {
                match (&mut all, accepts(child)?) {
                    (Accepts::Text(a), Accepts::Text(b)) => a.extend(b),
                    (Accepts::Networks(a), Accepts::Networks(b)) => a.extend(b),
                    _ => return None,
                }
            }
            Some(all)
        }
        // Every one: whatever any of them requires is required.
        CompiledMatcher::AllOf(children)
        | CompiledMatcher::CaseInsensitiveGroup {
            children,
            mode: GroupMode::All,
        } => children.iter().find_map(accepts),
        _ => None,
    }
}

/// What a detection requires: all of these (none: nothing known).
fn detection_needs(detection: &CompiledDetection) -> Vec<Need> {
    match detection {
        CompiledDetection::AllOf(items) => items
            .iter()
            .filter(|item| item.exists.is_none())
            .filter_map(
                |item| match (accepts(&item.matcher)?, item.field.as_deref()) {
                    (Accepts::Text(patterns), None) => Some(Need::Keyword(patterns)),
                    (Accepts::Networks(nets), Some("actor.ip")) => Some(Need::Networks(nets)),
                    (Accepts::Text(patterns), Some(name)) => {
                        Some(Need::Text(Field::named(name)?, patterns))
                    }
                    _ => None,
                },
            )
            .collect(),
        CompiledDetection::Keywords(matcher) => match accepts(matcher) {
            Some(Accepts::Text(patterns)) => vec![Need::Keyword(patterns)],
            _ => Vec::new(),
        },
        CompiledDetection::AnyOf(alternatives) => any_of(alternatives.iter().map(detection_needs)),
        CompiledDetection::And(parts) => parts.iter().flat_map(detection_needs).collect(),
        // Array blocks: nothing every event has is required.
        _ => Vec::new(),
    }
}

/// What one of several alternatives requires: a requirement on a field
/// survives only if every alternative has one on it, widened to all of
/// theirs.
fn any_of(alternatives: impl IntoIterator<Item = Vec<Need>>) -> Vec<Need> {
    let mut alternatives = alternatives.into_iter();
    let Some(mut common) = alternatives.next() else {
        // No alternative at all cannot match; requiring nothing is safe.
        return Vec::new();
    };
    for other in alternatives {
        let mut widened = Vec::new();
        for need in &common {
            for theirs in &other {
                match (need, theirs) {
                    (Need::Text(a, mine), Need::Text(b, more)) if a == b => {
                        let mut patterns = mine.clone();
                        patterns.extend(more.iter().cloned());
                        widened.push(Need::Text(*a, patterns));
                    }
                    (Need::Keyword(mine), Need::Keyword(more)) => {
                        let mut patterns = mine.clone();
                        patterns.extend(more.iter().cloned());
                        widened.push(Need::Keyword(patterns));
                    }
                    (Need::Networks(mine), Need::Networks(more)) => {
                        let mut nets = mine.clone();
                        nets.extend(more.iter().copied());
                        widened.push(Need::Networks(nets));
                    }
                    _ => {}
                }
            }
        }
        common = widened;
        if common.is_empty() {
            break;
        }
    }
    common
}

fn condition_needs(rule: &CompiledRule, condition: &ConditionExpr) -> Vec<Need> {
    match condition {
        ConditionExpr::Identifier(name) => rule
            .detections
            .get(name)
            .map(detection_needs)
            .unwrap_or_default(),
        ConditionExpr::And(parts) => parts
            .iter()
            .flat_map(|part| condition_needs(rule, part))
            .collect(),
        ConditionExpr::Or(parts) => any_of(parts.iter().map(|part| condition_needs(rule, part))),
        ConditionExpr::Not(_) => Vec::new(),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let chosen = rule
                .detections
                .iter()
                .filter(|(name, _)| pattern.matches_detection_name(name))
                .map(|(_, detection)| detection_needs(detection));
            match quantifier {
                Quantifier::All => chosen.flatten().collect(),
                // At least one must match (a count of 0 matches anything).
                Quantifier::Any => any_of(chosen),
                Quantifier::Count(n) if *n > 0 => any_of(chosen),
                Quantifier::Count(_) => Vec::new(),
            }
        }
    }
}

/// What a rule requires: a rule matches when any of its conditions does.
fn rule_needs(rule: &CompiledRule) -> Vec<Need> {
    if rule.conditions.is_empty() {
        return Vec::new();
    }
    any_of(rule.conditions.iter().map(|c| condition_needs(rule, c)))
}

/// Whether a lowercased value passes one of `patterns` (lowercase too).
fn passes(lowered: &str, patterns: &[(Op, String)]) -> bool {
    patterns.iter().any(|(op, p)| match op {
        Op::Exact => lowered == p,
        Op::Contains => lowered.contains(p.as_str()),
        Op::StartsWith => lowered.starts_with(p.as_str()),
        Op::EndsWith => lowered.ends_with(p.as_str()),
    })
}

/// Facts about one event that checks share, worked out when first needed:
/// its values lowercased as rsigma lowercases them (once per event, where
/// rsigma lowercases a copy per rule; most are lowercase already and are
/// not copied) and its address parsed.
struct Facts<'e> {
    event: &'e AuditEvent,
    lowered: [OnceCell<Option<Cow<'e, str>>>; FIELD_COUNT],
    /// Every string value lowercased, each followed by a NUL, once built:
    /// in a buffer kept from event to event, so it is not allocated anew.
    strings: &'e RefCell<String>,
    strings_built: Cell<bool>,
    ip: OnceCell<Option<IpAddr>>,
}

impl<'e> Facts<'e> {
    fn new(event: &'e AuditEvent, strings: &'e RefCell<String>) -> Self {
        Self {
            event,
            lowered: std::array::from_fn(|_| OnceCell::new()),
            strings,
            strings_built: Cell::new(false),
            ip: OnceCell::new(),
        }
    }

    fn meets(&self, need: &Need) -> bool {
        match need {
            Need::Text(field, patterns) => {
                let event = self.event;
                self.lowered[*field as usize]
                    .get_or_init(|| field.value(event).map(ascii_lowercase_cow))
                    .as_deref()
                    .is_some_and(|value| passes(value, patterns))
            }
            // The strings keyword matching visits, in the same way. A
            // substring without a NUL is looked for once in all of them,
            // joined by NULs, rather than in each.
            Need::Keyword(patterns) => {
                if patterns
                    .iter()
                    .all(|(op, p)| *op == Op::Contains && !p.contains('\0'))
                {
                    if !self.strings_built.replace(true) {
                        let mut all = self.strings.borrow_mut();
                        all.clear();
                        SigmaEvent(self.event).strings(&mut |s| {
                            if s.is_ascii() {
                                let start = all.len();
                                all.push_str(s);
                                // ASCII lowercased in place: no copy.
                                if let Some(added) = all.get_mut(start..) {
                                    added.make_ascii_lowercase();
                                }
                            } else {
                                all.push_str(&s.to_lowercase());
                            }
                            all.push('\0');
                        });
                    }
                    let all = self.strings.borrow();
                    return patterns.iter().any(|(_, p)| all.contains(p.as_str()));
                }
                let mut found = false;
                SigmaEvent(self.event).strings(&mut |s| {
                    found = found || passes(&ascii_lowercase_cow(s), patterns);
                });
                found
            }
            // Parsed as rsigma's CIDR matcher parses it: no port, no brackets.
            Need::Networks(nets) => self
                .ip
                .get_or_init(|| self.event.actor.ip.as_deref()?.parse().ok())
                .is_some_and(|ip| nets.iter().any(|net| net.contains(&ip))),
        }
    }
}

/// The rules worth evaluating per operation, and what else each requires.
pub(crate) struct Prefilter {
    /// Lowercased operation to its list in `lists`.
    by_operation: HashMap<String, usize>,
    /// Rule indices, ascending. `lists[0]` holds the rules that name no
    /// operation: the list of every operation that no rule names.
    lists: Vec<Vec<usize>>,
    /// Per rule, what an event must also have.
    checks: Vec<Vec<Need>>,
}

/// What one thread asking the prefilter keeps from event to event. The
/// prefilter itself is read-only, so threads can share it.
#[derive(Default)]
pub(crate) struct Scratch {
    /// An operation as events spell it, to its list: no lowercasing or
    /// allocation for an operation seen before.
    memo: HashMap<String, usize>,
    /// Keyword matching's buffer.
    strings: String,
}

impl Prefilter {
    /// Analyses `rules` (in the order rsigma evaluates them).
    pub(crate) fn new(rules: &[CompiledRule]) -> Self {
        let mut operation_of: Vec<Option<Vec<String>>> = Vec::with_capacity(rules.len());
        let mut checks = Vec::with_capacity(rules.len());
        for rule in rules {
            let mut needs = rule_needs(rule);
            // The narrowest operation requirement indexes the rule.
            let narrowest = needs
                .iter()
                .enumerate()
                .filter_map(|(i, need)| match need {
                    Need::Text(Field::Operation, patterns)
                        if patterns.iter().all(|(op, _)| *op == Op::Exact) =>
                    {
                        Some((i, patterns.len()))
                    }
                    _ => None,
                })
                .min_by_key(|&(_, n)| n)
                .map(|(i, _)| i);
            operation_of.push(narrowest.and_then(|i| match needs.remove(i) {
                Need::Text(_, patterns) => Some(patterns.into_iter().map(|(_, p)| p).collect()),
                Need::Keyword(_) | Need::Networks(_) => None,
            }));
            checks.push(needs);
        }
        let unnamed: Vec<usize> = (0..rules.len())
            .filter(|&i| operation_of[i].is_none())
            .collect();
        let mut by_operation: HashMap<String, usize> = HashMap::new();
        let mut lists = vec![unnamed.clone()];
        for (rule, operations) in operation_of.iter().enumerate() {
            for operation in operations.iter().flatten() {
                let list = *by_operation.entry(operation.clone()).or_insert_with(|| {
                    lists.push(unnamed.clone());
                    lists.len() - 1
                });
                lists[list].push(rule);
            }
        }
        for list in &mut lists {
            list.sort_unstable();
            list.dedup();
        }
        Self {
            by_operation,
            lists,
            checks,
        }
    }

    /// How many rules are checked against every event, whatever its
    /// operation (for the log at load).
    pub(crate) fn unindexed(&self) -> usize {
        self.lists[0].len()
    }

    /// Appends to `out` the rules `event` could match, ascending.
    pub(crate) fn candidates(
        &self,
        event: &AuditEvent,
        out: &mut Vec<usize>,
        scratch: &mut Scratch,
    ) {
        let list = match scratch.memo.get(event.operation.as_str()) {
            Some(&list) => list,
            None => {
                let lowered = ascii_lowercase_cow(&event.operation);
                let list = self
                    .by_operation
                    .get(lowered.as_ref())
                    .copied()
                    .unwrap_or(0);
                if scratch.memo.len() < MAX_MEMO {
                    scratch.memo.insert(event.operation.clone(), list);
                }
                list
            }
        };
        let strings = RefCell::new(std::mem::take(&mut scratch.strings));
        let facts = Facts::new(event, &strings);
        for &rule in &self.lists[list] {
            if self.checks[rule].iter().all(|need| facts.meets(need)) {
                out.push(rule);
            }
        }
        scratch.strings = strings.into_inner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(detection: &str) -> CompiledRule {
        let yaml = format!(
            "title: t\nlogsource:\n    product: stormproof\ndetection:\n{detection}\nlevel: low\n"
        );
        let collection = rsigma_parser::parse_sigma_yaml(&yaml).unwrap();
        rsigma_eval::compile_rule(&collection.rules[0]).unwrap()
    }

    fn needs(detection: &str) -> Vec<String> {
        rule_needs(&compiled(detection))
            .iter()
            .map(|need| match need {
                Need::Text(field, patterns) => {
                    let mut patterns: Vec<String> = patterns
                        .iter()
                        .map(|(op, p)| match op {
                            Op::Exact => p.clone(),
                            Op::Contains => format!("*{p}*"),
                            Op::StartsWith => format!("{p}*"),
                            Op::EndsWith => format!("*{p}"),
                        })
                        .collect();
                    patterns.sort();
                    format!("{field:?}={}", patterns.join("|"))
                }
                Need::Keyword(patterns) => {
                    let patterns: Vec<&str> = patterns.iter().map(|(_, p)| p.as_str()).collect();
                    format!("keyword {}", patterns.join("|"))
                }
                Need::Networks(nets) => {
                    let nets: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
                    format!("ip in {}", nets.join("|"))
                }
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    #[test]
    fn what_rules_require() {
        let cases: &[(&str, &[&str])] = &[
            (
                "    sel:\n        operation: Email/get\n    condition: sel",
                &["Operation=email/get"],
            ),
            (
                "    sel:\n        operation|cased: Email/get\n        outcome: success\n    condition: sel",
                &["Operation=email/get", "Outcome=success"],
            ),
            (
                "    sel:\n        operation:\n            - sign_in\n            - smtp.auth\n    condition: sel",
                &["Operation=sign_in|smtp.auth"],
            ),
            // Substrings, case-insensitively (wildcards compile to
            // regular expressions, which require nothing).
            (
                "    sel:\n        operation: 'Email/*'\n    condition: sel",
                &[],
            ),
            (
                "    sel:\n        operation|startswith: Email/\n    condition: sel",
                &["Operation=email/*"],
            ),
            (
                "    sel:\n        operation|contains: get\n    condition: sel",
                &["Operation=*get*"],
            ),
            (
                "    sel:\n        actor.user_agent|contains:\n            - Python\n            - curl/\n            - Go-http\n            - okhttp\n            - wget\n            - libwww\n            - httpie\n            - axios\n            - aiohttp\n            - urllib\n    condition: sel",
                &[
                    "UserAgent=*aiohttp*|*axios*|*curl/*|*go-http*|*httpie*|*libwww*|*okhttp*|*python*|*urllib*|*wget*",
                ],
            ),
            // Case-sensitive substrings, regular expressions and negation
            // require nothing.
            (
                "    sel:\n        actor.user_agent|contains|cased: Go\n    condition: sel",
                &[],
            ),
            (
                "    sel:\n        operation|re: '^sign_in$'\n    condition: sel",
                &[],
            ),
            (
                "    sel:\n        operation: sign_in\n    condition: not sel",
                &[],
            ),
            // Either branch: only what both require, widened.
            (
                "    a:\n        operation: sign_in\n        reason: x\n    b:\n        operation: smtp.auth\n    condition: a or b",
                &["Operation=sign_in|smtp.auth"],
            ),
            (
                "    a:\n        operation: sign_in\n    b:\n        actor.user: x\n    condition: a or b",
                &[],
            ),
            (
                "    sel_a:\n        operation: a\n    sel_b:\n        operation: b\n    condition: 1 of sel_*",
                &["Operation=a|b"],
            ),
            (
                "    sel_a:\n        operation: a\n    sel_b:\n        outcome: failure\n    condition: all of sel_*",
                &["Operation=a", "Outcome=failure"],
            ),
            (
                "    sel:\n        actor.ip|cidr:\n            - 10.0.0.0/8\n            - 2001:db8::/32\n        access: content\n    filter:\n        actor.ip|cidr: 10.1.0.0/16\n    condition: sel and not filter",
                &["Access=content", "ip in 10.0.0.0/8|2001:db8::/32"],
            ),
            // A list of mappings: either one.
            (
                "    sel:\n        - operation: a\n          outcome: success\n        - operation: b\n    condition: sel",
                &["Operation=a|b"],
            ),
            // Lists, numbers, existence tests and keywords require nothing.
            (
                "    sel:\n        actor.user: Alice\n    condition: sel",
                &["User=alice"],
            ),
            (
                "    sel:\n        target.items: m1\n    condition: sel",
                &[],
            ),
            ("    sel:\n        count|gte: 5\n    condition: sel", &[]),
            (
                "    sel:\n        operation|exists: true\n    condition: sel",
                &[],
            ),
            (
                "    keywords:\n        - Evil\n    condition: keywords",
                &["keyword evil"],
            ),
        ];
        for (detection, expected) in cases {
            assert_eq!(needs(detection), *expected, "{detection}");
        }
    }
}
