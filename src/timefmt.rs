//! TigerBeetle timestamps (ns since the Unix epoch) as UTC dates and RFC 3339 instants, on chrono.
//!
//! The lake partitions by UTC date and the CLI prints and parses RFC 3339 instants; both need
//! exact conversions over the whole `u64` range (up to 2554-07-21), which chrono's `DateTime<Utc>`
//! covers. What chrono accepts and TigerBeetle cannot hold is refused here: leap seconds (its
//! clock has none), more than 9 fraction digits (finer than a nanosecond), instants before the
//! epoch or after `u64::MAX` ns.

use std::fmt;

use chrono::format::ParseErrorKind;
use chrono::{DateTime, Datelike, Utc};

pub const NS_PER_SECOND: u64 = 1_000_000_000;
pub const NS_PER_DAY: u64 = 86_400 * NS_PER_SECOND;

/// A moment named on the command line: an instant, or the newest one the lake holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// The lake's last event (resolved against the lake when the command runs).
    Latest,
    /// A TigerBeetle timestamp.
    At(u64),
}

/// Why a string is not an RFC 3339 instant that fits a TigerBeetle timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError {
    pub input: String,
    pub reason: String,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid RFC 3339 timestamp {:?}: {} (expected e.g. 2026-11-21T21:02:30.123456789Z)",
            self.input, self.reason
        )
    }
}

impl std::error::Error for TimeError {}

/// The instant of a timestamp. Every `u64` of nanoseconds is inside chrono's range.
fn utc(ts_ns: u64) -> DateTime<Utc> {
    let secs = (ts_ns / NS_PER_SECOND) as i64; // < 2^35: no truncation
    let nanos = (ts_ns % NS_PER_SECOND) as u32;
    DateTime::from_timestamp(secs, nanos).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The wall clock, nanoseconds since the epoch (for writer ids and log timestamps, never for
/// event order).
pub fn now_ns() -> u64 {
    let now = chrono::Utc::now();
    now.timestamp_nanos_opt()
        .and_then(|ns| u64::try_from(ns).ok())
        .unwrap_or(0)
}

/// The wall clock, milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The UTC calendar date of a timestamp: (year, month 1..=12, day 1..=31).
pub fn utc_date(ts_ns: u64) -> (i32, u32, u32) {
    let t = utc(ts_ns);
    (t.year(), t.month(), t.day())
}

/// The lake's `date=` partition value: `YYYY-MM-DD` (UTC).
pub fn date_partition(ts_ns: u64) -> String {
    utc(ts_ns).format("%Y-%m-%d").to_string()
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, always nine fraction digits so that every timestamp prints
/// at full precision and the strings sort like the numbers.
pub fn rfc3339(ts_ns: u64) -> String {
    utc(ts_ns).format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// The first timestamp of the next UTC day. Saturates at `u64::MAX` on the last representable
/// day (2554-07-21), whose next midnight does not fit in a `u64`.
pub fn next_utc_midnight(ts_ns: u64) -> u64 {
    (ts_ns / NS_PER_DAY + 1).saturating_mul(NS_PER_DAY)
}

/// Parses `YYYY-MM-DD(T|t| )HH:MM:SS[.f{1,9}](Z|z|±HH:MM)`. Leap seconds (`:60`) are refused:
/// TigerBeetle's clock has none. Instants before the epoch or past `u64::MAX` ns are refused.
pub fn parse_rfc3339(s: &str) -> Result<u64, TimeError> {
    let err = |reason: &str| TimeError {
        input: s.to_string(),
        reason: reason.to_string(),
    };
    if let Some(fraction) = s.get(19..).and_then(|rest| rest.strip_prefix('.')) {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(err("the fraction of a second must have 1 to 9 digits"));
        }
    }
    let parsed = DateTime::parse_from_rfc3339(s).map_err(|e| {
        err(match e.kind() {
            ParseErrorKind::OutOfRange => "no such date, time of day or UTC offset",
            ParseErrorKind::TooShort => "too short",
            ParseErrorKind::TooLong => "unexpected text after the UTC offset",
            _ => "not of the form YYYY-MM-DDTHH:MM:SS[.fffffffff] then Z or ±HH:MM",
        })
    })?;
    if parsed.timestamp_subsec_nanos() >= 1_000_000_000 {
        return Err(err("a leap second, which TigerBeetle's clock never shows"));
    }
    let ns = i128::from(parsed.timestamp()) * i128::from(NS_PER_SECOND)
        + i128::from(parsed.timestamp_subsec_nanos());
    u64::try_from(ns).map_err(|_| {
        err("outside the range of a TigerBeetle timestamp (1970-01-01T00:00:00Z to 2554-07-21T23:34:33.709551615Z)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch() {
        assert_eq!(utc_date(0), (1970, 1, 1));
        assert_eq!(date_partition(0), "1970-01-01");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000000000Z"), Ok(0));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Ok(0));
        assert_eq!(next_utc_midnight(0), NS_PER_DAY);
        assert_eq!(next_utc_midnight(NS_PER_DAY - 1), NS_PER_DAY);
        assert_eq!(next_utc_midnight(NS_PER_DAY), 2 * NS_PER_DAY);
    }

    #[test]
    fn known_instants() {
        // 2026-11-21T21:02:30Z = 1795294950 s (date -u -d 2026-11-21T21:02:30Z +%s).
        let ts = 1_795_294_950 * NS_PER_SECOND + 123_456_789;
        assert_eq!(rfc3339(ts), "2026-11-21T21:02:30.123456789Z");
        assert_eq!(date_partition(ts), "2026-11-21");
        assert_eq!(parse_rfc3339("2026-11-21T21:02:30.123456789Z"), Ok(ts));
        assert_eq!(parse_rfc3339("2026-11-21T22:02:30.123456789+01:00"), Ok(ts));
        assert_eq!(parse_rfc3339("2026-11-21T16:32:30.123456789-04:30"), Ok(ts));
        assert_eq!(parse_rfc3339("2026-11-22T10:47:30.123456789+13:45"), Ok(ts));
        assert_eq!(parse_rfc3339("2026-11-21t21:02:30.123456789z"), Ok(ts));
        assert_eq!(parse_rfc3339("2026-11-21 21:02:30.123456789Z"), Ok(ts));
        assert_eq!(
            parse_rfc3339("2026-11-21T21:02:30.1Z"),
            Ok(1_795_294_950 * NS_PER_SECOND + 100_000_000)
        );
        assert_eq!(
            next_utc_midnight(ts),
            parse_rfc3339("2026-11-22T00:00:00Z").unwrap()
        );
    }

    #[test]
    fn leap_days() {
        let feb29 = parse_rfc3339("2024-02-29T23:59:59.999999999Z").unwrap();
        assert_eq!(utc_date(feb29), (2024, 2, 29));
        assert_eq!(utc_date(feb29 + 1), (2024, 3, 1));
        assert_eq!(
            utc_date(parse_rfc3339("2000-02-29T00:00:00Z").unwrap()),
            (2000, 2, 29)
        );
        assert!(parse_rfc3339("2023-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2100-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2000-02-30T00:00:00Z").is_err());
    }

    #[test]
    fn limits() {
        // i64 nanoseconds (2^63-1) end here (the limit of DuckDB's TIMESTAMP_NS and most tools).
        let i64_max = i64::MAX as u64;
        assert_eq!(rfc3339(i64_max), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(parse_rfc3339("2262-04-11T23:47:16.854775807Z"), Ok(i64_max));
        assert_eq!(
            parse_rfc3339("2262-04-12T01:47:16.854775807+02:00"),
            Ok(i64_max)
        );
        // u64 nanoseconds end here.
        assert_eq!(rfc3339(u64::MAX), "2554-07-21T23:34:33.709551615Z");
        assert_eq!(
            parse_rfc3339("2554-07-21T23:34:33.709551615Z"),
            Ok(u64::MAX)
        );
        assert!(parse_rfc3339("2554-07-21T23:34:33.709551616Z").is_err());
        assert!(parse_rfc3339("1969-12-31T23:59:59.999999999Z").is_err());
        assert!(parse_rfc3339("1970-01-01T00:30:00+01:00").is_err());
        assert_eq!(next_utc_midnight(u64::MAX), u64::MAX);
    }

    #[test]
    fn refusals_say_why() {
        let reason = |s: &str| parse_rfc3339(s).unwrap_err().to_string();
        assert!(
            reason("2026-11-21T23:59:60Z").contains("leap second"),
            "{}",
            reason("2026-11-21T23:59:60Z")
        );
        assert!(reason("2026-11-21T21:02:30.1234567890Z").contains("1 to 9 digits"));
        assert!(reason("1969-12-31T23:59:59Z").contains("outside the range"));
        assert!(reason("2026-11-21").contains("2026-11-21T21:02:30.123456789Z"));
        assert!(reason("2026-13-21T21:02:30Z").contains("no such date"));
        assert!(reason("2026-11-21T21:02:30Z ").contains("unexpected text"));
        assert!(reason("2026-11-21T21:02:30+0100").contains("±HH:MM"));
    }

    #[test]
    fn malformed_inputs_are_refused() {
        for bad in [
            "",
            "2026-11-21",
            "2026-11-21T21:02:30",
            "2026-11-21T21:02:30.Z",
            "2026-11-21T21:02:30.1234567890Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T21:60:00Z",
            "2026-11-21T21:02:60Z",
            "2026-13-21T21:02:30Z",
            "2026-00-21T21:02:30Z",
            "2026-11-00T21:02:30Z",
            "2026-11-21X21:02:30Z",
            "2026/11/21T21:02:30Z",
            "2026-11-21T21:02:30+0100",
            "2026-11-21T21:02:30+24:00",
            "2026-11-21T21:02:30Z ",
            "+026-11-21T21:02:30Z",
            "2026-11-21T21:02:30.12a4Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn round_trips_across_the_range() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut samples = vec![0, 1, NS_PER_DAY - 1, NS_PER_DAY, i64::MAX as u64, u64::MAX];
        for _ in 0..10_000 {
            // xorshift: deterministic, spread over all of u64.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push(x);
        }
        for ts in samples {
            let s = rfc3339(ts);
            assert_eq!(parse_rfc3339(&s), Ok(ts), "{s}");
            let (y, m, d) = utc_date(ts);
            assert_eq!(date_partition(ts), format!("{y:04}-{m:02}-{d:02}"));
            if ts / NS_PER_DAY < u64::MAX / NS_PER_DAY {
                assert!(next_utc_midnight(ts) > ts);
                assert_ne!(date_partition(next_utc_midnight(ts)), date_partition(ts));
            }
        }
    }

    #[test]
    fn every_day_for_six_centuries_is_consecutive() {
        let mut prev = utc_date(0);
        for days in 1..u64::MAX / NS_PER_DAY {
            let midnight = days * NS_PER_DAY;
            let (y, m, d) = utc_date(midnight);
            assert_eq!(
                parse_rfc3339(&format!("{}T00:00:00Z", date_partition(midnight))),
                Ok(midnight)
            );
            let next_month = (prev.0, prev.1 + 1, 1);
            let next_year = (prev.0 + 1, 1, 1);
            assert!(
                (y, m, d) == (prev.0, prev.1, prev.2 + 1)
                    || (d == 1
                        && ((y, m, d) == next_month || (prev.1 == 12 && (y, m, d) == next_year))),
                "{prev:?} -> {:?}",
                (y, m, d)
            );
            prev = (y, m, d);
        }
    }
}
