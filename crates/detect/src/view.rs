//! One audit event as the detectors see it: the facts several of them need
//! (time in milliseconds, source address, whether mail was read), worked out
//! once per event instead of once per detector.

use std::net::IpAddr;

use stormproof_audit::{AccessKind, AuditEvent, Outcome};

/// An event and what is derived from it.
pub(crate) struct View<'a> {
    /// The event.
    pub event: &'a AuditEvent,
    /// Its time, Unix milliseconds.
    pub time_ms: i64,
    /// Its tenant, or `""` when it has none.
    pub tenant: &'a str,
    /// The source address, when present and well-formed.
    pub ip: Option<IpAddr>,
    /// A successful read of mail content or metadata.
    pub mail_read: bool,
}

impl<'a> View<'a> {
    pub(crate) fn new(event: &'a AuditEvent, time_ms: i64) -> Self {
        let ip = event.actor.ip.as_deref().and_then(parse_ip);
        Self {
            event,
            time_ms,
            tenant: event.tenant.as_deref().unwrap_or(""),
            ip,
            mail_read: event.outcome == Outcome::Success && event.access != AccessKind::None,
        }
    }

    /// A string member of the event's `detail`.
    pub(crate) fn detail_str(&self, name: &str) -> Option<&'a str> {
        self.event.detail.get(name)?.as_str()
    }

    /// The event's operation.
    pub(crate) fn operation(&self) -> &'a str {
        &self.event.operation
    }

    /// Whether the event succeeded.
    pub(crate) fn success(&self) -> bool {
        self.event.outcome == Outcome::Success
    }

    /// The session the event belongs to: the actor's, or for a sign-in the
    /// one it created.
    pub(crate) fn session(&self) -> Option<&'a str> {
        self.event
            .actor
            .session
            .as_deref()
            .or_else(|| self.detail_str("sid"))
            .filter(|s| !s.is_empty())
    }

    /// Who acted: the user's email, else their id.
    pub(crate) fn user(&self) -> Option<&'a str> {
        let actor = &self.event.actor;
        actor
            .user
            .as_deref()
            .or(actor.user_id.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// The client, when named.
    pub(crate) fn client(&self) -> Option<&'a str> {
        self.event
            .actor
            .client_id
            .as_deref()
            .filter(|s| !s.is_empty())
    }
}

/// Reads a source address, with or without a port (`1.2.3.4:5`, `[::1]:5`).
pub(crate) fn parse_ip(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

/// Reads an audit time (`YYYY-MM-DDTHH:MM:SS.mmmZ`) as Unix milliseconds.
/// That fixed form is read directly, because it is every event's; anything
/// else RFC 3339 allows goes through humantime.
pub(crate) fn parse_time_ms(text: &str) -> Option<i64> {
    fast_time_ms(text.as_bytes()).or_else(|| {
        let at = humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).ok()?;
        let ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
        i64::try_from(ms).ok()
    })
}

fn fast_time_ms(b: &[u8]) -> Option<i64> {
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second, milli) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + milli)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let cases: &[(&str, Option<i64>)] = &[
            ("1970-01-01T00:00:00.000Z", Some(0)),
            ("2023-11-14T22:13:20.123Z", Some(1_700_000_000_123)),
            ("2024-02-29T00:00:00.000Z", Some(1_709_164_800_000)),
            // Other RFC 3339 forms take the slow path.
            ("2023-11-14T22:13:20Z", Some(1_700_000_000_000)),
            ("2023-11-14T22:13:20", Some(1_700_000_000_000)),
            ("2023-13-14T22:13:20.123Z", None),
            ("yesterday", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_time_ms(text), *expected, "{text}");
        }
        for ms in [0, 1_700_000_000_123, 951_782_400_000, 4_102_444_800_999] {
            assert_eq!(
                parse_time_ms(&stormproof_audit::format_time_ms(ms)),
                Some(ms)
            );
        }
    }

    #[test]
    fn addresses() {
        let cases: &[(&str, Option<&str>)] = &[
            ("203.0.113.9", Some("203.0.113.9")),
            ("203.0.113.9:443", Some("203.0.113.9")),
            ("[2001:db8::1]:443", Some("2001:db8::1")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("unknown", None),
        ];
        for (text, expected) in cases {
            let got = parse_ip(text).map(|ip| ip.to_string());
            assert_eq!(got.as_deref(), *expected, "{text}");
        }
    }
}
