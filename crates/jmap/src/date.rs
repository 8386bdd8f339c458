//! RFC 3339 `UTCDate` values (RFC 8620 section 1.4) without a date library:
//! the store keeps Unix seconds, JMAP speaks `2026-12-01T10:00:00Z`.

use stormproof_types::UnixTime;

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A proleptic Gregorian date to days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let yoe = year - era * 400;
    let mp = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Formats Unix seconds as a `UTCDate`, e.g. `2026-12-01T10:00:00Z`.
pub(crate) fn format_utc(time: UnixTime) -> String {
    let (days, secs) = (time.div_euclid(86_400), time.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Formats Unix seconds as an RFC 5322 date-time in UTC, e.g.
/// `Tue, 1 Dec 2026 10:00:00 +0000`, for trace fields.
pub(crate) fn format_rfc5322(time: UnixTime) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, secs) = (time.div_euclid(86_400), time.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day} {} {year} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month as usize).clamp(1, 12) - 1],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses a `UTCDate`: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, nothing else.
pub(crate) fn parse_utc(text: &str) -> Option<UnixTime> {
    let b = text.as_bytes();
    if b.len() < 20 || !b.is_ascii() {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let shape = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't')
        && b[13] == b':'
        && b[16] == b':';
    if !shape {
        return None;
    }
    let rest = &text[19..];
    let zone = match rest.strip_prefix('.') {
        Some(fraction) => {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            &fraction[digits..]
        }
        None => rest,
    };
    if !matches!(zone, "Z" | "z") {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_round_trip() {
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00Z"),
            (1_796_119_200, "2026-12-01T10:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (4_102_444_799, "2099-12-31T23:59:59Z"),
        ];
        for (time, text) in cases {
            assert_eq!(format_utc(*time), *text);
            assert_eq!(parse_utc(text), Some(*time), "{text}");
        }
    }

    #[test]
    fn rfc5322_dates() {
        let cases: &[(i64, &str)] = &[
            (0, "Thu, 1 Jan 1970 00:00:00 +0000"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"),
            (1_796_119_200, "Tue, 1 Dec 2026 10:00:00 +0000"),
            (-1, "Wed, 31 Dec 1969 23:59:59 +0000"),
        ];
        for (time, text) in cases {
            assert_eq!(format_rfc5322(*time), *text, "{time}");
        }
    }

    #[test]
    fn only_utc_dates_parse() {
        let cases: &[(&str, Option<i64>)] = &[
            ("2026-12-01T10:00:00.250Z", Some(1_796_119_200)),
            ("2026-12-01t10:00:00z", Some(1_796_119_200)),
            ("2026-12-01T10:00:00+01:00", None),
            ("2026-12-01 10:00:00Z", None),
            ("2026-02-29T00:00:00Z", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-12-01T24:00:00Z", None),
            ("2026-12-01T10:00:00.Z", None),
            ("+026-12-01T10:00:00Z", None),
            ("", None),
            ("2026-12-01T10:00:00ZZ", None),
        ];
        for (text, expect) in cases {
            assert_eq!(parse_utc(text), *expect, "{text}");
        }
    }
}
