//! The audit record: who did what to which mail, and how it ended.

use serde::{Deserialize, Serialize};
use stormproof_types::UnixTime;

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It did what was asked.
    Success,
    /// It was refused or failed: a rejected token, a wrong password.
    Failure,
}

/// What an access revealed, so a security team can tell a read of mail
/// from a client syncing ids and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AccessKind {
    /// Headers, bodies, subjects, previews or snippets left the server.
    Content,
    /// Only ids, flags, mailboxes, sizes or dates left the server.
    Metadata,
    /// Not a read of mail: sign-ins, tokens, key and account changes.
    #[default]
    None,
}

/// Who acted. Every field but `protocol` is absent when unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Actor {
    /// The user's email address.
    pub user: Option<String>,
    /// The user's stable id (the token's `sub`).
    pub user_id: Option<String>,
    /// The OAuth client.
    pub client_id: Option<String>,
    /// The sign-in session (`sid`).
    pub session: Option<String>,
    /// The access token's `jti`.
    pub token: Option<String>,
    /// Source address.
    pub ip: Option<String>,
    /// The client's `User-Agent`, or SMTP's `EHLO` name.
    pub user_agent: Option<String>,
    /// `jmap`, `smtp`, `oidc`, `http`, `cli`, `system`.
    pub protocol: String,
}

/// What was acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Target {
    /// The mail account read or written.
    pub account: Option<String>,
    /// The email address owning `account`, so its owner can find the record.
    pub owner: Option<String>,
    /// The one mailbox the operation named, if it named one.
    pub mailbox: Option<String>,
    /// Every mailbox holding an item touched.
    pub mailboxes: Vec<String>,
    /// Item ids: emails, blobs, submissions, keys, clients.
    pub items: Vec<String>,
    /// The `Message-ID`s of the emails touched.
    pub message_ids: Vec<String>,
}

/// One audit record. Its serialized JSON, exactly as stored, is the Merkle
/// leaf, so field order here is part of the log format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The record's index in the log, from 0, assigned on append.
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds. The fixed width makes string order
    /// time order.
    pub time: String,
    /// The tenant, absent only for events before a tenant is known.
    pub tenant: Option<String>,
    /// What was done: `Email/get`, `download`, `smtp.submission`,
    /// `sign_in`, `token_rejected`, `key_rotated`, ...
    pub operation: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, for failures and some changes: `never_issued`, `bad_credentials`.
    pub reason: Option<String>,
    /// Content versus metadata.
    pub access: AccessKind,
    /// How many items the operation touched.
    pub count: u64,
    /// Who.
    pub actor: Actor,
    /// On what.
    pub target: Target,
    /// Anything else worth keeping (kid, scopes, ...), as JSON.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// A new event at `time_ms` (Unix milliseconds), `seq` still unassigned.
    pub fn new(time_ms: i64, operation: &str, outcome: Outcome, actor: Actor) -> Self {
        Self {
            seq: 0,
            time: format_time_ms(time_ms),
            tenant: None,
            operation: operation.to_owned(),
            outcome,
            reason: None,
            access: AccessKind::None,
            count: 0,
            actor,
            target: Target::default(),
            detail: serde_json::Value::Null,
        }
    }
}

/// Now, in Unix milliseconds: audit time is wall-clock time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_time_ms(time_ms: i64) -> String {
    let ms = u64::try_from(time_ms).unwrap_or(0);
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(at).to_string()
}

/// Formats Unix seconds the same way.
pub fn format_time(time: UnixTime) -> String {
    format_time_ms(time.saturating_mul(1000))
}

/// Reads a time given on the command line or in a query: RFC 3339, or Unix
/// seconds. Returns it in the log's own format, for string comparison.
pub fn parse_time(text: &str) -> Option<String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(format_time(seconds));
    }
    let at = humantime::parse_rfc3339_weak(text).ok()?;
    let ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    Some(format_time_ms(i64::try_from(ms).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_sort_as_strings() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_time_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert!(format_time_ms(999) < format_time_ms(1_000));
        assert_eq!(
            parse_time("1700000000").as_deref(),
            Some("2023-11-14T22:13:20.000Z")
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").as_deref(),
            Some("2023-11-14T22:13:20.000Z")
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn the_contract_fields_are_always_present() {
        let event = AuditEvent::new(0, "Email/get", Outcome::Success, Actor::default());
        let json: serde_json::Value = serde_json::to_value(&event).unwrap_or_default();
        for field in ["time", "tenant", "operation", "outcome"] {
            assert!(json.get(field).is_some(), "{field}");
        }
        for field in [
            "user",
            "client_id",
            "session",
            "token",
            "ip",
            "user_agent",
            "protocol",
        ] {
            assert!(json["actor"].get(field).is_some(), "actor.{field}");
        }
        for field in ["account", "mailbox", "items", "message_ids"] {
            assert!(json["target"].get(field).is_some(), "target.{field}");
        }
    }
}
