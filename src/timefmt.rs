//! UTC calendar arithmetic on TigerBeetle timestamps (ns since the Unix epoch), without chrono.
//!
//! The lake partitions by UTC date and the CLI prints and parses RFC 3339 instants; both need
//! exact conversions over the whole `u64` range, which the civil-from-days algorithm
//! (Howard Hinnant, <https://howardhinnant.github.io/date_algorithms.html>) gives in a few lines.

use std::fmt;

pub const NS_PER_SECOND: u64 = 1_000_000_000;
pub const NS_PER_DAY: u64 = 86_400 * NS_PER_SECOND;

/// Why a string is not an RFC 3339 instant that fits a TigerBeetle timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError {
    pub input: String,
    pub reason: &'static str,
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

/// Days since 1970-01-01 → proleptic Gregorian (year, month 1..=12, day 1..=31).
fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

/// Proleptic Gregorian (year, month, day) → days since 1970-01-01. Inputs must be valid.
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The UTC calendar date of a timestamp.
pub fn utc_date(ts_ns: u64) -> (i32, u32, u32) {
    // u64 ns / NS_PER_DAY < 2^17, so the cast cannot truncate.
    civil_from_days((ts_ns / NS_PER_DAY) as i64)
}

/// The lake's `date=` partition value: `YYYY-MM-DD` (UTC).
pub fn date_partition(ts_ns: u64) -> String {
    let (y, m, d) = utc_date(ts_ns);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, always nine fraction digits so that every timestamp prints
/// at full precision and the strings sort like the numbers.
pub fn rfc3339(ts_ns: u64) -> String {
    let (y, mo, d) = utc_date(ts_ns);
    let ns_of_day = ts_ns % NS_PER_DAY;
    let secs = ns_of_day / NS_PER_SECOND;
    let frac = ns_of_day % NS_PER_SECOND;
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:09}Z")
}

/// The first timestamp of the next UTC day. Saturates at `u64::MAX` on the last representable
/// day (2554-07-21), whose next midnight does not fit in a `u64`.
pub fn next_utc_midnight(ts_ns: u64) -> u64 {
    (ts_ns / NS_PER_DAY + 1).saturating_mul(NS_PER_DAY)
}

/// Parses `YYYY-MM-DD(T|t| )HH:MM:SS[.f{1,9}](Z|z|±HH:MM)`. Leap seconds (`:60`) are refused:
/// TigerBeetle's clock has none. Instants before the epoch or past `u64::MAX` ns are refused.
pub fn parse_rfc3339(s: &str) -> Result<u64, TimeError> {
    let err = |reason| TimeError {
        input: s.to_string(),
        reason,
    };
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() < 20 {
        return Err(err("too short"));
    }
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err(err("bad separators"));
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(err("date and time must be separated by 'T'"));
    }
    let fields = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    );
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = fields
    else {
        return Err(err("non-digit in date or time"));
    };
    let year = year as i32;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(err("no such date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(err("no such time of day"));
    }

    let mut i = 19;
    let mut frac_ns: u64 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return Err(err("fraction must have 1 to 9 digits"));
        }
        let digits = num(start..i).ok_or_else(|| err("bad fraction"))?;
        frac_ns = u64::from(digits) * 10u64.pow(9 - n as u32);
    }

    let offset_secs: i64 = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (Some(oh), Some(om)) = (num(i + 1..i + 3), num(i + 4..i + 6)) else {
                return Err(err("bad UTC offset"));
            };
            if oh > 23 || om > 59 {
                return Err(err("bad UTC offset"));
            }
            let magnitude = i64::from(oh * 3600 + om * 60);
            if *sign == b'+' {
                magnitude
            } else {
                -magnitude
            }
        }
        _ => return Err(err("expected 'Z' or a ±HH:MM offset at the end")),
    };

    let days = days_from_civil(year, month, day);
    let local_secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let utc_ns =
        i128::from(local_secs - offset_secs) * i128::from(NS_PER_SECOND) + i128::from(frac_ns);
    u64::try_from(utc_ns).map_err(|_| err("outside the range of a TigerBeetle timestamp"))
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
        // i64 nanoseconds end here (the limit of DuckDB's TIMESTAMP_NS and most tools).
        let i64_max = i64::MAX as u64;
        assert_eq!(rfc3339(i64_max), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(parse_rfc3339("2262-04-11T23:47:16.854775807Z"), Ok(i64_max));
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
            assert_eq!(days_from_civil(y, m, d), (ts / NS_PER_DAY) as i64);
            if ts / NS_PER_DAY < u64::MAX / NS_PER_DAY {
                assert!(next_utc_midnight(ts) > ts);
                assert_ne!(date_partition(next_utc_midnight(ts)), date_partition(ts));
            }
        }
    }

    #[test]
    fn every_day_for_six_centuries_is_consecutive() {
        let mut prev = civil_from_days(0);
        for days in 1..(u64::MAX / NS_PER_DAY) as i64 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            let expected = if prev.2 < days_in_month(prev.0, prev.1) {
                (prev.0, prev.1, prev.2 + 1)
            } else if prev.1 < 12 {
                (prev.0, prev.1 + 1, 1)
            } else {
                (prev.0 + 1, 1, 1)
            };
            assert_eq!((y, m, d), expected);
            prev = (y, m, d);
        }
    }
}
