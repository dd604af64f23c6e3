//! The value parsers every command shares: moments (`--at`, `--until`), durations and u128 ids.
//! One parser each, so that every command accepts the same spellings.

use std::time::Duration;

use crate::timefmt::{parse_rfc3339, Moment};

/// A moment: `latest` (the lake's last event), a TigerBeetle timestamp (decimal nanoseconds
/// since the epoch), or an RFC 3339 instant with up to 9 fraction digits and any UTC offset.
pub fn parse_moment(s: &str) -> Result<Moment, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("latest") {
        return Ok(Moment::Latest);
    }
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
        return s
            .parse()
            .map(Moment::At)
            .map_err(|_| format!("{s:?} is above the largest TigerBeetle timestamp, 2^64-1 ns"));
    }
    if s.starts_with('-') && s[1..].bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{s:?} is before the epoch: timestamps are never negative"
        ));
    }
    parse_rfc3339(s)
        .map(Moment::At)
        .map_err(|e| format!("{e}; or give nanoseconds since the epoch, or `latest`"))
}

/// A duration such as `500ms`, `5s`, `2m`, `1h` or `1h 30m` (humantime's syntax).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration like 500ms, 5s, 2m or 1h: {e}"))
}

/// A decimal u128 (TigerBeetle ids and cluster ids).
pub fn parse_u128(s: &str) -> Result<u128, String> {
    s.trim()
        .parse::<u128>()
        .map_err(|_| format!("{s:?} is not a decimal integer between 0 and 2^128-1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_nanoseconds_rfc3339_or_latest() {
        assert_eq!(
            parse_moment("1795294950000000001"),
            Ok(Moment::At(1_795_294_950_000_000_001))
        );
        assert_eq!(
            parse_moment("2026-11-21T21:02:30.000000001Z"),
            Ok(Moment::At(1_795_294_950_000_000_001))
        );
        assert_eq!(
            parse_moment("2026-11-21T22:02:30.000000001+01:00"),
            Ok(Moment::At(1_795_294_950_000_000_001))
        );
        assert_eq!(parse_moment("latest"), Ok(Moment::Latest));
        assert_eq!(parse_moment(" LATEST "), Ok(Moment::Latest));
        assert_eq!(parse_moment("0"), Ok(Moment::At(0)));
        assert_eq!(parse_moment("1970-01-01T00:00:00Z"), Ok(Moment::At(0)));
        assert_eq!(
            parse_moment("18446744073709551615"),
            Ok(Moment::At(u64::MAX))
        );
        assert_eq!(
            parse_moment("9223372036854775807"),
            parse_moment("2262-04-11T23:47:16.854775807Z")
        );
    }

    #[test]
    fn bad_moments_are_refused_with_a_reason() {
        let refusal = |s: &str| parse_moment(s).unwrap_err();
        assert!(refusal("18446744073709551616").contains("2^64-1"));
        assert!(refusal("-1").contains("before the epoch"));
        assert!(refusal("yesterday").contains("RFC 3339"));
        assert!(refusal("yesterday").contains("latest"));
        assert!(refusal("").contains("RFC 3339"));
        assert!(refusal("2026-11-21T21:02:30").contains("RFC 3339"));
        assert!(refusal("2026-11-21T23:59:60Z").contains("leap second"));
    }

    #[test]
    fn durations_parse_with_units_and_refuse_without() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5").unwrap_err().contains("500ms"));
    }

    #[test]
    fn ids_cover_the_whole_u128_range() {
        assert_eq!(
            parse_u128("340282366920938463463374607431768211455"),
            Ok(u128::MAX)
        );
        assert!(parse_u128("340282366920938463463374607431768211456").is_err());
        assert!(parse_u128("-1").is_err());
    }
}
