//! Finding records: a filter over the fields security teams ask about, and
//! a paged scan of the log in sequence order.

use crate::event::AuditEvent;
use crate::reader::LogReader;
use crate::{Error, event::parse_time};

/// What to look for. Every field set must match; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The tenant.
    pub tenant: Option<String>,
    /// The acting user, by email address or user id.
    pub user: Option<String>,
    /// The owner of the mail read, by email address or account id: "who
    /// read Alice's mail" rather than "what did Alice do".
    pub owner: Option<String>,
    /// The session id.
    pub session: Option<String>,
    /// The OAuth client id.
    pub client: Option<String>,
    /// The source address.
    pub ip: Option<String>,
    /// The operation, exactly.
    pub operation: Option<String>,
    /// At or after, in the log's time format.
    pub since: Option<String>,
    /// Before, in the log's time format.
    pub until: Option<String>,
    /// Only reads of mail content or metadata.
    pub mail_access_only: bool,
}

fn eq(want: &Option<String>, have: &Option<String>) -> bool {
    match want {
        None => true,
        Some(want) => have.as_deref() == Some(want.as_str()),
    }
}

impl Filter {
    /// Sets `since` from user input (RFC 3339 or Unix seconds).
    pub fn since(mut self, text: &str) -> Option<Self> {
        self.since = Some(parse_time(text)?);
        Some(self)
    }

    /// Sets `until` from user input (RFC 3339 or Unix seconds).
    pub fn until(mut self, text: &str) -> Option<Self> {
        self.until = Some(parse_time(text)?);
        Some(self)
    }

    /// True when `event` is one of those sought.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        let actor = &event.actor;
        eq(&self.tenant, &event.tenant)
            && (self.user.is_none()
                || eq(&self.user, &actor.user)
                || eq(&self.user, &actor.user_id))
            && (self.owner.is_none()
                || eq(&self.owner, &event.target.owner)
                || eq(&self.owner, &event.target.account))
            && eq(&self.session, &actor.session)
            && eq(&self.client, &actor.client_id)
            && eq(&self.ip, &actor.ip)
            && self
                .operation
                .as_ref()
                .is_none_or(|op| *op == event.operation)
            && self.since.as_ref().is_none_or(|since| event.time >= *since)
            && self.until.as_ref().is_none_or(|until| event.time < *until)
            && (!self.mail_access_only || event.access != crate::AccessKind::None)
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Matching events in log order.
    pub events: Vec<AuditEvent>,
    /// Where the next page starts, if the scan stopped at `limit`.
    pub next: Option<u64>,
}

/// What every record matching a filter contains, byte for byte: the JSON
/// form of each value the filter names. Records are `serde_json` output,
/// so a value a record holds appears in it exactly as `serde_json` writes
/// it alone. A record lacking one cannot match and is passed over without
/// being parsed, which is most of a selective scan's work.
#[derive(Debug, Clone)]
pub struct Prefilter(Vec<memchr::memmem::Finder<'static>>);

impl Prefilter {
    /// The byte strings `filter` requires.
    pub fn new(filter: &Filter) -> Self {
        let values = [
            &filter.tenant,
            &filter.user,
            &filter.owner,
            &filter.session,
            &filter.client,
            &filter.ip,
            &filter.operation,
        ];
        Self(
            values
                .into_iter()
                .flatten()
                .filter_map(|value| serde_json::to_vec(value).ok())
                .map(|json| memchr::memmem::Finder::new(&json).into_owned())
                .collect(),
        )
    }

    /// Also requires `value`, for a field [`Filter`] does not name.
    pub fn require(mut self, value: &str) -> Self {
        if let Ok(json) = serde_json::to_vec(value) {
            self.0.push(memchr::memmem::Finder::new(&json).into_owned());
        }
        self
    }

    /// False when the stored record `record` cannot match the filter; true
    /// when it may, which [`Filter::matches`] then decides.
    pub fn may_match(&self, record: &[u8]) -> bool {
        self.0.iter().all(|needle| needle.find(record).is_some())
    }
}

/// Scans from record `from` and returns up to `limit` matches.
pub fn search(reader: &LogReader, filter: &Filter, from: u64, limit: usize) -> Result<Page, Error> {
    let prefilter = Prefilter::new(filter);
    let mut events = Vec::new();
    for record in reader.records(from) {
        let record = record?;
        if !prefilter.may_match(&record.bytes) {
            continue;
        }
        let event = record.event()?;
        if filter.matches(&event) {
            if events.len() == limit {
                return Ok(Page {
                    events,
                    next: Some(record.seq),
                });
            }
            events.push(event);
        }
    }
    Ok(Page { events, next: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, Outcome};

    fn event(user: &str, ip: &str, time_ms: i64) -> AuditEvent {
        let mut event = AuditEvent::new(
            time_ms,
            "Email/get",
            Outcome::Success,
            Actor {
                user: Some(user.into()),
                ip: Some(ip.into()),
                protocol: "jmap".into(),
                ..Actor::default()
            },
        );
        event.tenant = Some("acme".into());
        event
    }

    #[test]
    fn filters_match_only_what_they_name() {
        let e = event("alice@acme.test", "127.0.0.2", 1_700_000_000_000);
        let cases: [(Filter, bool); 8] = [
            (Filter::default(), true),
            (
                Filter {
                    tenant: Some("acme".into()),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    tenant: Some("other".into()),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    user: Some("alice@acme.test".into()),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    user: Some("bob@acme.test".into()),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    ip: Some("127.0.0.2".into()),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter::default().since("1700000001").unwrap_or_default(),
                false,
            ),
            (
                Filter::default().until("1700000001").unwrap_or_default(),
                true,
            ),
        ];
        for (filter, expected) in cases {
            assert_eq!(filter.matches(&e), expected, "{filter:?}");
        }
    }

    #[test]
    fn the_byte_prefilter_keeps_every_record_that_matches() {
        // Values JSON escapes or writes as multi-byte UTF-8.
        let mut e = event(
            "zoë \"quoted\" \\ user\u{1}@acme.test",
            "2001:db8::1",
            1_700_000_000_000,
        );
        e.actor.session = Some("s/1\t2".into());
        e.actor.client_id = Some("c-é".into());
        let json = serde_json::to_vec(&e).expect("json");
        let filter = Filter {
            tenant: e.tenant.clone(),
            user: e.actor.user.clone(),
            session: e.actor.session.clone(),
            client: e.actor.client_id.clone(),
            ip: e.actor.ip.clone(),
            operation: Some(e.operation.clone()),
            ..Filter::default()
        };
        assert!(filter.matches(&e));
        assert!(Prefilter::new(&filter).may_match(&json));
        let other = Filter {
            user: Some("zoë".into()),
            ..Filter::default()
        };
        assert!(
            !Prefilter::new(&other).may_match(&json),
            "a part of a value is not the value"
        );
    }
}
