//! The names of the objects in a lake: building them, and parsing them back strictly.
//!
//! Data file names carry the file's time range and the start of its SHA-256, so the log's file
//! list says what each file holds without opening it; timestamps are zero-padded to 20 digits
//! (the width of `u64::MAX`) so that lexical order is time order.

use object_store::path::Path;

use crate::timefmt::date_partition;

pub const META_FILE: &str = "_ledgerlake.json";
pub const TRANSFERS_DIR: &str = "transfers";
pub const ACCOUNTS_DIR: &str = "accounts";
pub const QUARANTINE_DIR: &str = "quarantine";
pub const SWEPT_ACCOUNTS_DIR: &str = "swept_accounts";

const PARQUET_SUFFIX: &str = ".parquet";
/// Hex digits of the file's SHA-256 in its name.
pub const NAME_DIGEST_HEX_DIGITS: usize = 16;
const JSON_SUFFIX: &str = ".json";
/// Quarantine names carry a 6-digit sequence number after the receive time.
pub const QUARANTINE_SEQ_LIMIT: u32 = 1_000_000;

/// The tables. Transfers and accounts share the segment naming scheme; swept accounts are named
/// by the creation timestamps of the accounts they hold (see `swept_path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Transfers,
    Accounts,
    SweptAccounts,
}

impl Table {
    pub fn dir(self) -> &'static str {
        match self {
            Table::Transfers => TRANSFERS_DIR,
            Table::Accounts => ACCOUNTS_DIR,
            Table::SweptAccounts => SWEPT_ACCOUNTS_DIR,
        }
    }
}

/// What a segment file's name says: its UTC date and the first and last event timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentName {
    pub date: String,
    pub first_timestamp: u64,
    pub last_timestamp: u64,
}

pub fn meta_path() -> Path {
    Path::from(META_FILE)
}

pub fn table_dir(table: Table) -> Path {
    Path::from(table.dir())
}

/// `<table>/_delta_log/_last_checkpoint`: where a table's newest checkpoint is.
pub fn last_checkpoint_path(table: Table) -> Path {
    Path::from_iter([table.dir(), "_delta_log", "_last_checkpoint"])
}

/// `<table>/_delta_log/<20-digit version>.json`: one commit of a table's log.
pub fn log_commit_path(table: Table, version: u64) -> Path {
    Path::from_iter([
        table.dir().to_string(),
        "_delta_log".to_string(),
        format!("{version:020}.json"),
    ])
}

pub fn quarantine_dir() -> Path {
    Path::from(QUARANTINE_DIR)
}

/// `<first>-<last>-<digest16>.parquet`: a data file's name.
pub fn file_name(first_ts: u64, last_ts: u64, sha256: &[u8; 32]) -> String {
    let digest: String = sha256[..NAME_DIGEST_HEX_DIGITS / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{first_ts:020}-{last_ts:020}-{digest}{PARQUET_SUFFIX}")
}

/// Parses a data file name into (first, last); `None` if it is not what `file_name` writes.
pub fn parse_file_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(PARQUET_SUFFIX)?;
    let mut parts = stem.split('-');
    let (first, last, digest) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || digest.len() != NAME_DIGEST_HEX_DIGITS
        || !digest
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let (first, last) = (fixed_digits(first, 20)?, fixed_digits(last, 20)?);
    (first <= last).then_some((first, last))
}

/// `<table>/date=YYYY-MM-DD/<first>-<last>-<digest16>.parquet`. The caller guarantees one UTC
/// date.
pub fn segment_path(table: Table, first_ts: u64, last_ts: u64, sha256: &[u8; 32]) -> Path {
    assert!(
        table != Table::SweptAccounts,
        "swept files are named by swept_path"
    );
    assert!(first_ts <= last_ts, "segment range {first_ts}..{last_ts}");
    let date = date_partition(first_ts);
    assert_eq!(
        date,
        date_partition(last_ts),
        "segment straddles UTC midnight"
    );
    Path::from_iter([
        table.dir().to_string(),
        format!("date={date}"),
        file_name(first_ts, last_ts, sha256),
    ])
}

/// `swept_accounts/<first>-<last>-<digest16>.parquet`: the creation timestamps of the first and
/// last account of one sweep page. Not partitioned by date: a page spans whatever time its
/// accounts were created in.
pub fn swept_path(first_ts: u64, last_ts: u64, sha256: &[u8; 32]) -> Path {
    assert!(first_ts <= last_ts, "swept range {first_ts}..{last_ts}");
    Path::from_iter([
        SWEPT_ACCOUNTS_DIR.to_string(),
        file_name(first_ts, last_ts, sha256),
    ])
}

/// Parses a swept accounts path into (first, last); `None` if it is not what `swept_path` writes.
pub fn parse_swept_path(path: &Path) -> Option<(u64, u64)> {
    let parts: Vec<_> = path.parts().collect();
    let [dir, file] = parts.as_slice() else {
        return None;
    };
    if dir.as_ref() != SWEPT_ACCOUNTS_DIR {
        return None;
    }
    parse_file_name(file.as_ref())
}

pub fn quarantine_path(received_ns: u64, seq: u32) -> Path {
    assert!(seq < QUARANTINE_SEQ_LIMIT);
    Path::from_iter([
        QUARANTINE_DIR.to_string(),
        format!("{received_ns:020}-{seq:06}{JSON_SUFFIX}"),
    ])
}

/// Exactly `width` ASCII digits, as a u64 (refuses signs, spaces and values above `u64::MAX`).
fn fixed_digits(s: &str, width: usize) -> Option<u64> {
    if s.len() != width || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a segment path of `table`; `None` if it is not exactly what `segment_path` writes.
pub fn parse_segment_path(table: Table, path: &Path) -> Option<SegmentName> {
    let parts: Vec<_> = path.parts().collect();
    let [dir, date_part, file] = parts.as_slice() else {
        return None;
    };
    if dir.as_ref() != table.dir() {
        return None;
    }
    let date = date_part.as_ref().strip_prefix("date=")?;
    let (first_timestamp, last_timestamp) = parse_file_name(file.as_ref())?;
    if date_partition(first_timestamp) != date || date_partition(last_timestamp) != date {
        return None;
    }
    Some(SegmentName {
        date: date.to_string(),
        first_timestamp,
        last_timestamp,
    })
}

/// Parses a quarantine path into (received_ns, seq).
pub fn parse_quarantine_path(path: &Path) -> Option<(u64, u32)> {
    let parts: Vec<_> = path.parts().collect();
    let [dir, file] = parts.as_slice() else {
        return None;
    };
    if dir.as_ref() != QUARANTINE_DIR {
        return None;
    }
    let stem = file.as_ref().strip_suffix(JSON_SUFFIX)?;
    let (received, seq) = stem.split_once('-')?;
    Some((fixed_digits(received, 20)?, fixed_digits(seq, 6)? as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::{parse_rfc3339, NS_PER_DAY};

    /// A digest whose first 8 bytes print as `ab01ab01ab01ab01`.
    const D: [u8; 32] = {
        let mut d = [0u8; 32];
        let mut i = 0;
        while i < 32 {
            d[i] = if i % 2 == 0 { 0xab } else { 0x01 };
            i += 1;
        }
        d
    };

    #[test]
    fn segment_names_format_and_parse() {
        let first = parse_rfc3339("2026-11-21T21:02:30.000000001Z").unwrap();
        let last = first + 5_000_000_000;
        let path = segment_path(Table::Transfers, first, last, &D);
        assert_eq!(
            path.as_ref(),
            "transfers/date=2026-11-21/01795294950000000001-01795294955000000001-ab01ab01ab01ab01.parquet"
        );
        let name = parse_segment_path(Table::Transfers, &path).unwrap();
        assert_eq!(
            name,
            SegmentName {
                date: "2026-11-21".into(),
                first_timestamp: first,
                last_timestamp: last
            }
        );
        let twin = segment_path(Table::Accounts, first, last, &D);
        assert_eq!(
            twin.as_ref(),
            "accounts/date=2026-11-21/01795294950000000001-01795294955000000001-ab01ab01ab01ab01.parquet"
        );
        assert_eq!(parse_segment_path(Table::Accounts, &path), None);
        assert_eq!(parse_segment_path(Table::Accounts, &twin), Some(name));
    }

    #[test]
    fn extreme_timestamps_have_names() {
        for (first, last) in [(0, 0), (u64::MAX - 1, u64::MAX), (u64::MAX, u64::MAX)] {
            let path = segment_path(Table::Transfers, first, last, &D);
            let name = parse_segment_path(Table::Transfers, &path).unwrap();
            assert_eq!((name.first_timestamp, name.last_timestamp), (first, last));
        }
        assert_eq!(
            segment_path(Table::Transfers, u64::MAX, u64::MAX, &D).as_ref(),
            "transfers/date=2554-07-21/18446744073709551615-18446744073709551615-ab01ab01ab01ab01.parquet"
        );
    }

    #[test]
    fn lexical_order_is_time_order() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut segments = vec![(0, 0), (9, 10), (10, 10), (99, 100), (u64::MAX, u64::MAX)];
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let first = x >> (x % 64); // spread over magnitudes, so digit counts differ
            let day_end = (first / NS_PER_DAY * NS_PER_DAY).saturating_add(NS_PER_DAY - 1);
            let last = first.saturating_add(x % 1000).min(day_end);
            segments.push((first, last));
        }
        let mut by_name: Vec<_> = segments
            .iter()
            .map(|&(f, l)| (segment_path(Table::Transfers, f, l, &D).to_string(), (f, l)))
            .collect();
        by_name.sort();
        let mut by_time = segments.clone();
        by_time.sort();
        let names_order: Vec<_> = by_name.into_iter().map(|(_, r)| r).collect();
        assert_eq!(names_order, by_time);

        let mut q: Vec<_> = [(5u64, 2u32), (5, 10), (40, 0), (u64::MAX, 999_999), (0, 7)]
            .iter()
            .map(|&(r, s)| (quarantine_path(r, s).to_string(), (r, s)))
            .collect();
        q.sort();
        let order: Vec<_> = q.into_iter().map(|(_, r)| r).collect();
        assert_eq!(
            order,
            vec![(0, 7), (5, 2), (5, 10), (40, 0), (u64::MAX, 999_999)]
        );
    }

    #[test]
    fn bad_segment_names_are_rejected() {
        let good = "transfers/date=1970-01-01/00000000000000000001-00000000000000000002-0123456789abcdef.parquet";
        assert!(parse_segment_path(Table::Transfers, &Path::from(good)).is_some());
        for bad in [
            "transfers/_SUCCESS",
            "transfers/date=1970-01-01/_SUCCESS",
            // Format 1 names (no digest), a short or upper-case digest:
            "transfers/date=1970-01-01/00000000000000000001-00000000000000000002.parquet",
            "transfers/date=1970-01-01/00000000000000000001-00000000000000000002-0123.parquet",
            "transfers/date=1970-01-01/00000000000000000001-00000000000000000002-0123456789ABCDEF.parquet",
            "transfers/date=1970-01-01/00000000000000000001-00000000000000000002.parquet.tmp",
            "transfers/date=1970-01-01/00000000000000000001-00000000000000000002.json",
            "transfers/date=1970-01-01/1-2.parquet",
            "transfers/date=1970-01-01/0000000000000000001-00000000000000000002.parquet",
            "transfers/date=1970-01-01/+0000000000000000001-00000000000000000002.parquet",
            "transfers/date=1970-01-01/00000000000000000002-00000000000000000001.parquet",
            "transfers/date=1970-01-02/00000000000000000001-00000000000000000002.parquet",
            "transfers/1970-01-01/00000000000000000001-00000000000000000002.parquet",
            "transfers/00000000000000000001-00000000000000000002.parquet",
            "transfers/date=1970-01-01/x/00000000000000000001-00000000000000000002.parquet",
            "accounts/date=1970-01-01/00000000000000000001-00000000000000000002.parquet",
            // Above u64::MAX:
            "transfers/date=2554-07-21/18446744073709551615-18446744073709551616.parquet",
            // Straddles midnight:
            "transfers/date=1970-01-01/00000000000000000001-00000086400000000000.parquet",
        ] {
            assert_eq!(
                parse_segment_path(Table::Transfers, &Path::from(bad)),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn swept_names() {
        let p = swept_path(1_795_294_950_000_000_001, 1_795_294_960_000_000_000, &D);
        assert_eq!(
            p.as_ref(),
            "swept_accounts/01795294950000000001-01795294960000000000-ab01ab01ab01ab01.parquet"
        );
        assert_eq!(
            parse_swept_path(&p),
            Some((1_795_294_950_000_000_001, 1_795_294_960_000_000_000))
        );
        // Unlike segments, a swept file may span UTC midnight: it is not date-partitioned.
        assert!(parse_swept_path(&swept_path(NS_PER_DAY - 1, NS_PER_DAY, &D)).is_some());
        for bad in [
            "swept_accounts/00000000000000000002-00000000000000000001.parquet",
            "swept_accounts/1-2.parquet",
            "swept_accounts/date=1970-01-01/00000000000000000001-00000000000000000002.parquet",
            "swept_accounts/00000000000000000001-00000000000000000002.parquet.tmp",
            "accounts/00000000000000000001-00000000000000000002.parquet",
        ] {
            assert_eq!(parse_swept_path(&Path::from(bad)), None, "{bad}");
        }
    }

    #[test]
    fn quarantine_names() {
        let p = quarantine_path(1_795_294_950_000_000_001, 42);
        assert_eq!(p.as_ref(), "quarantine/01795294950000000001-000042.json");
        assert_eq!(
            parse_quarantine_path(&p),
            Some((1_795_294_950_000_000_001, 42))
        );
        for bad in [
            "quarantine/01795294950000000001-42.json",
            "quarantine/1795294950000000001-000042.json",
            "quarantine/01795294950000000001-000042.json.bak",
            "quarantine/x/01795294950000000001-000042.json",
            "transfers/01795294950000000001-000042.json",
        ] {
            assert_eq!(parse_quarantine_path(&Path::from(bad)), None, "{bad}");
        }
    }

    #[test]
    #[should_panic(expected = "straddles UTC midnight")]
    fn segment_across_midnight_is_a_programmer_error() {
        segment_path(Table::Transfers, NS_PER_DAY - 1, NS_PER_DAY, &D);
    }
}
