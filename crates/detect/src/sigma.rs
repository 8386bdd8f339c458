//! Custom rules in Sigma, evaluated by the `rsigma` crates (MIT), with
//! correlation rules (`event_count`, `value_count`, `temporal`, ...).
//!
//! Rules are read from every `*.yml` and `*.yaml` file in `rules_dir`, as
//! one collection, so a correlation may name rules from other files. The
//! directory is polled every `reload_interval` of event time (file names,
//! sizes and modification times), and [`crate::Engine::reload_rules`]
//! re-reads it on demand. A reload that fails leaves the rules in force
//! running: a typo in one file must not switch detection off. Correlation
//! windows carry over a reload, and are saved to the store on
//! [`crate::Engine::flush`].
//!
//! # Field schema
//!
//! Rules see the audit event as flat, dotted field names ([`FIELDS`]):
//!
//! | field | type | example |
//! |---|---|---|
//! | `seq` (also `event_id`) | integer | `1042` |
//! | `time` | string | `2024-05-15T09:12:44.120Z` |
//! | `tenant` | string or null | `acme` |
//! | `operation` | string | `Email/get`, `sign_in_failed`, `token_rejected` |
//! | `outcome` | string | `success`, `failure` |
//! | `reason` | string or null | `never_issued`, `grant` |
//! | `access` | string | `content`, `metadata`, `none` |
//! | `count` | integer | `50` |
//! | `actor.user` | string or null | `alice@acme.test` |
//! | `actor.user_id`, `actor.client_id`, `actor.session`, `actor.token` | string or null | |
//! | `actor.ip` | string or null | `203.0.113.9` (use `\|cidr`) |
//! | `actor.user_agent` | string or null | `Client=REST;Client=RESTSystem;;` |
//! | `actor.protocol` | string | `jmap`, `smtp`, `oidc`, `http`, `cli`, `system` |
//! | `target.account`, `target.owner`, `target.mailbox` | string or null | |
//! | `target.mailboxes`, `target.items`, `target.message_ids` | list of strings | |
//! | `detail.<path>` | any | `detail.kid`, `detail.forgery`, `detail.amr` |
//!
//! `logsource` is not used to select rules: every rule sees every audit
//! event. Write `logsource: {product: stormproof, service: audit}`.
//!
//! # Speed
//!
//! A rule is evaluated only on events it could match: at load, each rule is
//! read for the operations (and outcomes, access kinds, reasons, tenants,
//! protocols, clients and address blocks) it requires, and an event checks
//! only the rules that fit it (see the prefilter module). Results are
//! those of evaluating every rule; `prefilter = false` does exactly that.
//!
//! # Alerts
//!
//! A matching rule raises an alert from detector `sigma` with the rule's
//! `level` as severity (`informational` becomes `info`; no level is
//! `medium`), deduplicated per rule and actor (user, else address). A
//! correlation's alert is deduplicated per rule and group, lists the
//! events that made it (up to 32), and resets the group's window, so a
//! continuing attack fires again only after the threshold is met again.
//! Rules and correlations that a correlation uses with `generate: false`
//! (the Sigma default) raise no alerts of their own.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rsigma_eval::{
    CorrelationAction, CorrelationConfig, CorrelationEngine, CorrelationEventMode,
    CorrelationSnapshot, EvaluationResult, Event, EventValue, ResultBody, TimestampFallback,
    evaluate_rule,
};
use rsigma_parser::{Level, SigmaCollection, parse_sigma_yaml};
use serde::Deserialize;
use serde_json::Value;
use stormproof_audit::{AccessKind, AuditEvent, Outcome};
use stormproof_store::DetectorStateRecord;

use crate::alert::{Alert, Severity};
use crate::config::{duration, millis};
use crate::detectors::{BuildContext, Component, Detector, Output, Switches, switches};
use crate::prefilter::{Prefilter, Scratch};
use crate::view::View;
use crate::{ErrorKind, Result};

pub(crate) const NAME: &str = "sigma";

/// The state key under which correlation windows are saved.
const SNAPSHOT_KEY: &str = "correlations";

/// The most events a correlation alert lists.
const MAX_CORRELATION_EVIDENCE: usize = 32;

/// How often, in event time, correlation windows that ran out are dropped
/// (rsigma would reset each on its group's next event anyway): a map of
/// every address that ever signed in is slow to grow and to search.
const EVICT_EVERY_MS: i64 = 60_000;

/// The fields rules can name, besides `detail.<path>`.
pub const FIELDS: &[&str] = &[
    "seq",
    "event_id",
    "time",
    "tenant",
    "operation",
    "outcome",
    "reason",
    "access",
    "count",
    "actor.user",
    "actor.user_id",
    "actor.client_id",
    "actor.session",
    "actor.token",
    "actor.ip",
    "actor.user_agent",
    "actor.protocol",
    "target.account",
    "target.owner",
    "target.mailbox",
    "target.mailboxes",
    "target.items",
    "target.message_ids",
];

switches! {
    /// `[detect.sigma]`.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct SigmaConfig {
        /// The rules directory. Default none: no custom rules.
        pub rules_dir: Option<PathBuf>,
        /// How often, in event time, the directory is checked for changes.
        /// `"0s"` checks only on [`crate::Engine::reload_rules`]. Default `"10s"`.
        #[serde(with = "duration")]
        pub reload_interval: Duration,
        /// Evaluate a rule only on events it could match (same results,
        /// much faster). `false` evaluates every rule on every event: for
        /// measuring, and for checking the prefilter. Default `true`.
        pub prefilter: bool,
    }
}

impl Default for SigmaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: None,
            auto_response: false,
            rules_dir: None,
            reload_interval: Duration::from_secs(10),
            prefilter: true,
        }
    }
}

impl Component for SigmaConfig {
    const NAME: &'static str = NAME;

    fn switches(&self) -> Switches {
        self.common()
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Detector>> {
        let rules = match &self.rules_dir {
            Some(dir) => Some(Rules::load(dir, self.prefilter)?),
            None => None,
        };
        if let Some(rules) = &rules {
            tracing::info!(
                message = "sigma rules loaded",
                dir = %rules.dir.display(),
                rules = rules.count,
                checked_on_every_event = rules.prefilter.as_ref().map(Prefilter::unindexed),
            );
        }
        Ok(Box::new(Sigma {
            rules,
            candidates: Vec::new(),
            scratch: Scratch::default(),
            next_evict_ms: i64::MIN,
            reload_ms: millis(self.reload_interval),
            next_poll_ms: i64::MIN,
            dirty: false,
        }))
    }
}

/// A file's identity for change polling.
type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

struct Rules {
    dir: PathBuf,
    fingerprint: Fingerprint,
    engine: CorrelationEngine,
    count: usize,
    /// Ids and names of rules (and correlations) used only by correlations.
    quiet: HashSet<String>,
    /// Rule titles to names, to match `quiet` names against results.
    names: Vec<(String, String)>,
    /// Which rules each event could match; `None` evaluates them all.
    prefilter: Option<Prefilter>,
}

fn rules_error(path: &Path, message: impl std::fmt::Display) -> crate::Error {
    ErrorKind::Rules {
        path: path.display().to_string(),
        message: message.to_string(),
    }
    .into()
}

fn rule_files(dir: &Path) -> Result<Fingerprint> {
    let entries = std::fs::read_dir(dir).map_err(|e| rules_error(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| rules_error(dir, e))?;
        let path = entry.path();
        let is_rule = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yml" || e == "yaml");
        if !is_rule {
            continue;
        }
        let meta = entry.metadata().map_err(|e| rules_error(&path, e))?;
        if meta.is_file() {
            files.push((path, meta.modified().ok(), meta.len()));
        }
    }
    files.sort();
    Ok(files)
}

impl Rules {
    fn load(dir: &Path, prefilter: bool) -> Result<Self> {
        let fingerprint = rule_files(dir)?;
        let mut all = SigmaCollection::new();
        for (path, _, _) in &fingerprint {
            let text = std::fs::read_to_string(path).map_err(|e| rules_error(path, e))?;
            let collection = parse_sigma_yaml(&text).map_err(|e| rules_error(path, e))?;
            if let Some(error) = collection.errors.first() {
                return Err(rules_error(path, error));
            }
            all.rules.extend(collection.rules);
            all.correlations.extend(collection.correlations);
            all.filters.extend(collection.filters);
        }
        let config = CorrelationConfig {
            // Time is the event's, given explicitly: never the wall clock.
            timestamp_fallback: TimestampFallback::Skip,
            action_on_match: CorrelationAction::Reset,
            correlation_event_mode: CorrelationEventMode::Refs,
            max_correlation_events: MAX_CORRELATION_EVIDENCE,
            ..CorrelationConfig::default()
        };
        let mut engine = CorrelationEngine::new(config);
        engine
            .add_collection(&all)
            .map_err(|e| rules_error(dir, e))?;
        let quiet = all
            .correlations
            .iter()
            .filter(|c| !c.generate)
            .flat_map(|c| c.rules.iter().cloned())
            .collect();
        let names = all
            .rules
            .iter()
            .map(|r| (&r.title, &r.name))
            .chain(all.correlations.iter().map(|c| (&c.title, &c.name)))
            .filter_map(|(title, name)| Some((title.clone(), name.clone()?)))
            .collect();
        let prefilter = prefilter.then(|| Prefilter::new(engine.engine().rules()));
        Ok(Self {
            dir: dir.to_owned(),
            fingerprint,
            engine,
            count: all.rules.len() + all.correlations.len(),
            quiet,
            names,
            prefilter,
        })
    }

    fn is_quiet(&self, result: &EvaluationResult) -> bool {
        if self.quiet.is_empty() {
            return false;
        }
        let header = &result.header;
        header
            .rule_id
            .as_ref()
            .is_some_and(|id| self.quiet.contains(id))
            || self
                .names
                .iter()
                .any(|(title, name)| *title == header.rule_title && self.quiet.contains(name))
    }
}

pub(crate) struct Sigma {
    rules: Option<Rules>,
    /// Scratch space for the prefilter's answer, kept between events.
    candidates: Vec<usize>,
    scratch: Scratch,
    next_evict_ms: i64,
    reload_ms: i64,
    next_poll_ms: i64,
    /// Whether correlation state changed since it was last saved.
    dirty: bool,
}

/// What the first stage of observing found in one event: the rules it
/// matches alone, or `None` to let rsigma evaluate every rule itself.
pub(crate) type Detections = Option<Vec<EvaluationResult>>;

impl Sigma {
    /// Re-reads the rules if the poll interval has passed by `time_ms`.
    pub(crate) fn poll(&mut self, time_ms: i64) {
        if self.reload_ms > 0 && time_ms >= self.next_poll_ms {
            self.next_poll_ms = time_ms.saturating_add(self.reload_ms);
            if let Err(error) = self.refresh(false) {
                tracing::warn!(message = "sigma rules not reloaded; the previous rules stay in force", %error);
            }
        }
    }

    /// The first stage of observing: the rules `event` matches on its own,
    /// in load order. It reads no state that events change, so it may run
    /// on any thread, for events ahead of those [`Sigma::correlate`] has
    /// seen, as long as the rules are not reloaded in between.
    pub(crate) fn detect(
        &self,
        event: &AuditEvent,
        candidates: &mut Vec<usize>,
        scratch: &mut Scratch,
    ) -> Detections {
        let rules = self.rules.as_ref()?;
        let prefilter = rules.prefilter.as_ref()?;
        if rules.count == 0 {
            return None;
        }
        // The rules that could match, evaluated in load order as rsigma's
        // own loop would.
        candidates.clear();
        prefilter.candidates(event, candidates, scratch);
        let compiled = rules.engine.engine().rules();
        let sigma_event = SigmaEvent(event);
        Some(
            candidates
                .iter()
                .filter_map(|&i| evaluate_rule(compiled.get(i)?, &sigma_event))
                .collect(),
        )
    }

    /// The second stage, in event order: correlations and alerts.
    pub(crate) fn correlate(&mut self, view: &View<'_>, detections: Detections, out: &mut Output) {
        let Some(rules) = &mut self.rules else {
            return;
        };
        if rules.count == 0 {
            return;
        }
        let event = SigmaEvent(view.event);
        let seconds = view.time_ms.div_euclid(1000);
        if view.time_ms >= self.next_evict_ms {
            rules.engine.evict_expired(seconds);
            self.next_evict_ms = view.time_ms.saturating_add(EVICT_EVERY_MS);
        }
        let results = match detections {
            Some(detections) => {
                rules
                    .engine
                    .process_with_detections(&Correlated(event), detections, seconds)
            }
            None => rules.engine.process_event_at(&event, seconds),
        };
        if results.is_empty() {
            return;
        }
        self.dirty = true;
        for result in &results {
            if self.rules.as_ref().is_some_and(|r| r.is_quiet(result)) {
                continue;
            }
            out.alerts.push(self.alert(view, result));
        }
    }

    /// Reloads if the directory changed (or always, when `force`).
    fn refresh(&mut self, force: bool) -> Result<Option<usize>> {
        let Some(rules) = &mut self.rules else {
            return Ok(None);
        };
        if !force && rule_files(&rules.dir)? == rules.fingerprint {
            return Ok(Some(rules.count));
        }
        let mut fresh = Rules::load(&rules.dir, rules.prefilter.is_some())?;
        fresh.engine.import_state(rules.engine.export_state());
        tracing::info!(message = "sigma rules reloaded", dir = %fresh.dir.display(), rules = fresh.count);
        let count = fresh.count;
        *rules = fresh;
        Ok(Some(count))
    }

    fn alert(&self, view: &View<'_>, result: &EvaluationResult) -> Alert {
        let header = &result.header;
        let rule = header
            .rule_id
            .clone()
            .unwrap_or_else(|| header.rule_title.clone());
        let severity = match header.level {
            Some(Level::Informational) => Severity::Info,
            Some(Level::Low) => Severity::Low,
            Some(Level::High) => Severity::High,
            Some(Level::Critical) => Severity::Critical,
            Some(Level::Medium) | None => Severity::Medium,
        };
        let event = view.event;
        let mut alert = match &result.body {
            ResultBody::Correlation(body) => {
                let group: Vec<String> = body
                    .group_key
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let group = group.join(", ");
                let summary = format!(
                    "Sigma correlation \"{}\": {} reached {} for {} within {}",
                    header.rule_title,
                    body.correlation_type.as_str(),
                    body.aggregated_value,
                    if group.is_empty() {
                        "all events"
                    } else {
                        &group
                    },
                    humantime::format_duration(Duration::from_secs(body.timespan_secs)),
                );
                let mut evidence: Vec<u64> = body
                    .event_refs
                    .iter()
                    .flatten()
                    .filter_map(|r| r.id.as_deref()?.parse().ok())
                    .collect();
                evidence.push(event.seq);
                evidence.sort_unstable();
                evidence.dedup();
                Alert::about(
                    view,
                    NAME,
                    severity,
                    summary,
                    format!("{NAME}:{rule}:{group}"),
                )
                .with_evidence(evidence)
            }
            _ => {
                let who = view.user().or(event.actor.ip.as_deref()).unwrap_or("");
                let summary = format!(
                    "Sigma rule \"{}\" matched {} by {} from {}",
                    header.rule_title,
                    event.operation,
                    view.user().unwrap_or("an unknown actor"),
                    event.actor.ip.as_deref().unwrap_or("an unknown address"),
                );
                Alert::about(
                    view,
                    NAME,
                    severity,
                    summary,
                    format!("{NAME}:{rule}:{who}"),
                )
            }
        };
        alert.rule = Some(rule);
        alert
    }
}

impl Detector for Sigma {
    fn restore(&mut self, records: Vec<DetectorStateRecord>) -> Result<()> {
        let Some(rules) = &mut self.rules else {
            return Ok(());
        };
        for record in records {
            if record.key != SNAPSHOT_KEY || record.tenant.is_some() {
                continue;
            }
            let Some(text) = record.value else { continue };
            match serde_json::from_str::<CorrelationSnapshot>(&text) {
                Ok(snapshot) => {
                    if !rules.engine.import_state(snapshot) {
                        tracing::warn!(
                            message = "sigma correlation state from another version ignored"
                        );
                    }
                }
                Err(error) => {
                    tracing::warn!(message = "sigma correlation state unreadable; starting afresh", %error);
                }
            }
        }
        Ok(())
    }

    fn observe(&mut self, view: &View<'_>, out: &mut Output) {
        self.poll(view.time_ms);
        let (mut candidates, mut scratch) = (
            std::mem::take(&mut self.candidates),
            std::mem::take(&mut self.scratch),
        );
        let detections = self.detect(view.event, &mut candidates, &mut scratch);
        (self.candidates, self.scratch) = (candidates, scratch);
        self.correlate(view, detections, out);
    }

    fn as_sigma(&mut self) -> Option<&mut Sigma> {
        Some(self)
    }

    fn checkpoint(&mut self, now_ms: i64, full: bool, out: &mut Output) {
        let (true, true, Some(rules)) = (full, self.dirty, &mut self.rules) else {
            return;
        };
        rules.engine.evict_expired(now_ms.div_euclid(1000));
        match serde_json::to_string(&rules.engine.export_state()) {
            Ok(json) => {
                let time = stormproof_audit::format_time_ms(now_ms);
                out.keep(NAME, "", SNAPSHOT_KEY.into(), Some(json), &time);
                self.dirty = false;
            }
            Err(error) => tracing::warn!(message = "sigma correlation state not saved", %error),
        }
    }

    fn reload(&mut self, _now_ms: i64, _out: &mut Output) -> Result<Option<usize>> {
        self.refresh(true)
    }
}

/// An audit event as Sigma sees it: the flat schema of [`FIELDS`], borrowed
/// from the event without copying.
pub struct SigmaEvent<'a>(pub &'a AuditEvent);

/// An event as the correlation stage sees it: the same fields, but as JSON
/// only its id. Correlations keep references to the events that fed them
/// (`Refs`), which read nothing else from the JSON, and building the whole
/// object for every counted event was most of their cost.
struct Correlated<'a>(SigmaEvent<'a>);

impl Event for Correlated<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        self.0.get_field(path)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.0.any_string_value(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.0.all_string_values()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.0.visit_string_values(visit);
    }

    fn to_json(&self) -> Value {
        serde_json::json!({ "event_id": self.0.0.seq })
    }
}

fn text(value: &str) -> EventValue<'_> {
    EventValue::Str(Cow::Borrowed(value))
}

fn optional(value: &Option<String>) -> EventValue<'_> {
    value.as_deref().map_or(EventValue::Null, text)
}

fn list(values: &[String]) -> EventValue<'_> {
    EventValue::Array(values.iter().map(|v| text(v)).collect())
}

pub(crate) fn outcome_str(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
    }
}

pub(crate) fn access_str(access: AccessKind) -> &'static str {
    match access {
        AccessKind::Content => "content",
        AccessKind::Metadata => "metadata",
        AccessKind::None => "none",
    }
}

fn detail_at<'v>(detail: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(detail, |value, part| match value {
        Value::Object(map) => map.get(part),
        Value::Array(items) => items.get(part.parse::<usize>().ok()?),
        _ => None,
    })
}

fn visit_json(value: &Value, visit: &mut dyn FnMut(&str)) {
    match value {
        Value::String(s) => visit(s),
        Value::Array(items) => items.iter().for_each(|v| visit_json(v, visit)),
        Value::Object(map) => map.values().for_each(|v| visit_json(v, visit)),
        _ => {}
    }
}

impl SigmaEvent<'_> {
    /// Every string value of the event, as keyword matching sees them.
    pub(crate) fn strings(&self, visit: &mut dyn FnMut(&str)) {
        let e = self.0;
        let (a, t) = (&e.actor, &e.target);
        for s in [&e.time, &e.operation, &a.protocol] {
            visit(s);
        }
        visit(outcome_str(e.outcome));
        visit(access_str(e.access));
        let optionals = [
            &e.tenant,
            &e.reason,
            &a.user,
            &a.user_id,
            &a.client_id,
            &a.session,
            &a.token,
            &a.ip,
            &a.user_agent,
            &t.account,
            &t.owner,
            &t.mailbox,
        ];
        for s in optionals.into_iter().flatten() {
            visit(s);
        }
        for s in t.mailboxes.iter().chain(&t.items).chain(&t.message_ids) {
            visit(s);
        }
        visit_json(&e.detail, visit);
    }
}

impl Event for SigmaEvent<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        let e = self.0;
        let (a, t) = (&e.actor, &e.target);
        // Rules ask for fields many times per event: split on the group
        // first, so each lookup compares against a handful of names.
        if let Some(name) = path.strip_prefix("actor.") {
            return Some(match name {
                "user" => optional(&a.user),
                "ip" => optional(&a.ip),
                "client_id" => optional(&a.client_id),
                "user_agent" => optional(&a.user_agent),
                "protocol" => text(&a.protocol),
                "session" => optional(&a.session),
                "token" => optional(&a.token),
                "user_id" => optional(&a.user_id),
                _ => return None,
            });
        }
        if let Some(name) = path.strip_prefix("target.") {
            return Some(match name {
                "owner" => optional(&t.owner),
                "account" => optional(&t.account),
                "mailbox" => optional(&t.mailbox),
                "mailboxes" => list(&t.mailboxes),
                "items" => list(&t.items),
                "message_ids" => list(&t.message_ids),
                _ => return None,
            });
        }
        if let Some(name) = path.strip_prefix("detail.") {
            return detail_at(&e.detail, name).map(EventValue::from);
        }
        Some(match path {
            "operation" => text(&e.operation),
            "access" => text(access_str(e.access)),
            "outcome" => text(outcome_str(e.outcome)),
            "reason" => optional(&e.reason),
            "count" => EventValue::Int(i64::try_from(e.count).unwrap_or(i64::MAX)),
            "tenant" => optional(&e.tenant),
            "time" => text(&e.time),
            "seq" | "event_id" => EventValue::Int(i64::try_from(e.seq).unwrap_or(i64::MAX)),
            "detail" => EventValue::from(&e.detail),
            _ => return None,
        })
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        let mut found = false;
        self.strings(&mut |s| found = found || pred(s));
        found
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        let mut all = Vec::new();
        self.strings(&mut |s| all.push(Cow::Owned(s.to_owned())));
        all
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.strings(visit);
    }

    fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        for field in FIELDS {
            if let Some(value) = self.get_field(field) {
                map.insert((*field).to_owned(), value.to_json());
            }
        }
        map.insert("detail".into(), self.0.detail.clone());
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stormproof_audit::Actor;

    #[test]
    fn the_schema_reads_every_documented_field() {
        let actor = Actor {
            user: Some("alice@acme.test".into()),
            ip: Some("203.0.113.9".into()),
            protocol: "jmap".into(),
            ..Actor::default()
        };
        let mut event = AuditEvent::new(1_700_000_000_000, "Email/get", Outcome::Success, actor);
        event.seq = 7;
        event.access = AccessKind::Content;
        event.count = 3;
        event.target.items = vec!["m1".into(), "m2".into()];
        event.detail = serde_json::json!({"kid": "k1", "nested": {"deep": true}});
        let view = SigmaEvent(&event);
        let cases: &[(&str, Option<Value>)] = &[
            ("seq", Some(7.into())),
            ("event_id", Some(7.into())),
            ("operation", Some("Email/get".into())),
            ("outcome", Some("success".into())),
            ("access", Some("content".into())),
            ("count", Some(3.into())),
            ("tenant", Some(Value::Null)),
            ("actor.user", Some("alice@acme.test".into())),
            ("actor.protocol", Some("jmap".into())),
            ("target.items", Some(serde_json::json!(["m1", "m2"]))),
            ("detail.kid", Some("k1".into())),
            ("detail.nested.deep", Some(true.into())),
            ("detail.missing", None),
            ("nonsense", None),
        ];
        for (field, expected) in cases {
            assert_eq!(
                view.get_field(field).map(|v| v.to_json()),
                *expected,
                "{field}"
            );
        }
        for field in FIELDS {
            assert!(view.get_field(field).is_some(), "{field}");
        }
        assert!(view.any_string_value(&|s| s == "k1"));
        assert_eq!(view.to_json()["event_id"], 7);
    }
}
