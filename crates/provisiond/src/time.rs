//! Wall-clock time in the forms the wire needs: epoch milliseconds, ISO 8601, HTTP dates, and
//! the durations an operator types (`90s`, `30m`, `2h`, `7d`), and
//! SigV4's `YYYYMMDDTHHMMSSZ` (from `provisiond_sigv4::date`, with the calendar arithmetic).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

use provisiond_sigv4::date::civil_from_days;
pub use provisiond_sigv4::date::{format_amz_date, parse_amz_date};

/// Formats epoch milliseconds as ISO 8601 with milliseconds: `2026-11-22T21:16:54.000Z`.
pub fn format_iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Formats epoch milliseconds as an HTTP date: `Sun, 22 Nov 2026 21:16:54 GMT`.
pub fn format_http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let rem = secs.rem_euclid(86_400);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses an RFC 3339 date and time in UTC, `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (the form
/// Proton's date filters take, "with no UTC offset"), into epoch milliseconds; digits of the
/// fraction past milliseconds are dropped. `None` for anything else, an impossible date included.
pub fn parse_rfc3339_utc(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || !b.is_ascii() {
        return None;
    }
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| b[i] != c)
        || !matches!(b[10], b'T' | b't')
        || !matches!(b[b.len() - 1], b'Z' | b'z')
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &text[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let fraction = &text[19..text.len() - 1];
    let millis = match fraction.strip_prefix('.') {
        None if fraction.is_empty() => 0,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) => {
            let first3: String = digits.chars().chain("00".chars()).take(3).collect();
            first3.parse().ok()?
        }
        _ => return None,
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > month_days[(mo - 1) as usize] {
        return None;
    }
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let secs = provisiond_sigv4::date::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se;
    Some(secs * 1000 + millis)
}

/// Parses a duration an operator types: a whole number followed by `ms`, `s`, `m`, `h` or `d`
/// (`0` alone is allowed); in milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let bad = || {
        format!(
            "{text:?} is not a duration: write a whole number and a unit, as 90s, 30m, 2h or 7d"
        )
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" if n == 0 => 1,
        _ => return Err(bad()),
    };
    n.checked_mul(scale).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_take_the_wire_forms() {
        assert_eq!(
            format_iso8601(1_440_938_160_123),
            "2015-08-30T12:36:00.123Z"
        );
        assert_eq!(
            format_http_date(1_440_938_160_000),
            "Sun, 30 Aug 2015 12:36:00 GMT"
        );
    }

    #[test]
    fn rfc3339_dates_in_utc_parse_to_milliseconds() {
        assert_eq!(
            parse_rfc3339_utc("2015-08-30T12:36:00.123Z"),
            Some(1_440_938_160_123)
        );
        assert_eq!(
            parse_rfc3339_utc("2015-08-30T12:36:00Z"),
            Some(1_440_938_160_000)
        );
        // The example of Proton's documentation: a fraction of two digits is 520 ms.
        assert_eq!(
            parse_rfc3339_utc("1985-04-12T23:20:50.52Z").map(|ms| ms % 1000),
            Some(520)
        );
        assert_eq!(
            parse_rfc3339_utc("2024-02-29t00:00:00.123456789z"),
            parse_rfc3339_utc("2024-02-29T00:00:00.123Z")
        );
        for bad in [
            "",
            "2015-08-30",
            "2015-08-30T12:36:00",
            "2015-08-30T12:36:00+01:00",
            "2015-08-30 12:36:00Z",
            "2015-08-30T12:36:00.Z",
            "2015-08-30T12:36:00.1aZ",
            "2023-02-29T00:00:00Z",
            "2015-13-01T00:00:00Z",
            "2015-08-30T24:00:00Z",
            "+015-08-30T12:36:00Z",
            "2015-08-30T12:36:00\u{e9}Z",
        ] {
            assert_eq!(parse_rfc3339_utc(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("30m"), Ok(1_800_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000));
        assert_eq!(parse_duration("7d"), Ok(604_800_000));
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("0"), Ok(0));
        for bad in [
            "",
            "5",
            "s",
            "1.5h",
            "-3m",
            "3 weeks",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
