//! Format 1's object names (schemas/lake-format-1.md, "Layout"): building them (for the test
//! writer) and parsing them back strictly, and recognising the objects of format 2 that share
//! the table directories while a lake is being upgraded.
//!
//! Format 1 names a segment file `<table>/date=YYYY-MM-DD/<first>-<last>.parquet` and a swept
//! file `swept_accounts/<first>-<last>.parquet`, timestamps zero-padded to 20 digits. Format 2
//! keeps the directories but names its data files `<first>-<last>-<digest16>.parquet` and adds
//! `_delta_log/`, so the two never collide and an upgrade can tell them apart by name alone.

use object_store::path::Path;

use crate::timefmt::date_partition;

pub const META_FILE: &str = "_ledgerlake.json";
pub const TRANSFERS_DIR: &str = "transfers";
pub const ACCOUNTS_DIR: &str = "accounts";
pub const SWEPT_ACCOUNTS_DIR: &str = "swept_accounts";

const PARQUET_SUFFIX: &str = ".parquet";
/// The directory of a Delta table's log (format 2).
const DELTA_LOG_DIR: &str = "_delta_log";
/// Hex digits of the SHA-256 prefix in a format-2 data file name.
const DIGEST_PREFIX_DIGITS: usize = 16;

/// The three tables of format 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    pub fn of_dir(dir: &str) -> Option<Table> {
        [Table::Transfers, Table::Accounts, Table::SweptAccounts]
            .into_iter()
            .find(|t| t.dir() == dir)
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

/// `<table>/date=YYYY-MM-DD/<first>-<last>.parquet`. The caller guarantees one UTC date.
#[cfg(any(test, feature = "testbed"))]
pub fn segment_path(table: Table, first_ts: u64, last_ts: u64) -> Path {
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
        format!("{first_ts:020}-{last_ts:020}{PARQUET_SUFFIX}"),
    ])
}

/// `swept_accounts/<first>-<last>.parquet`.
#[cfg(any(test, feature = "testbed"))]
pub fn swept_path(first_ts: u64, last_ts: u64) -> Path {
    assert!(first_ts <= last_ts, "swept range {first_ts}..{last_ts}");
    Path::from_iter([
        SWEPT_ACCOUNTS_DIR.to_string(),
        format!("{first_ts:020}-{last_ts:020}{PARQUET_SUFFIX}"),
    ])
}

/// Exactly `width` ASCII digits, as a u64 (refuses signs, spaces and values above `u64::MAX`).
fn fixed_digits(s: &str, width: usize) -> Option<u64> {
    if s.len() != width || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `<20 digits>-<20 digits>` → (first, last), first ≤ last.
fn parse_range(stem: &str) -> Option<(u64, u64)> {
    let (first, last) = stem.split_once('-')?;
    let (first, last) = (fixed_digits(first, 20)?, fixed_digits(last, 20)?);
    (first <= last).then_some((first, last))
}

/// Parses a swept accounts path into (first, last); `None` if it is not what format 1 writes.
pub fn parse_swept_path(path: &Path) -> Option<(u64, u64)> {
    let parts: Vec<_> = path.parts().collect();
    let [dir, file] = parts.as_slice() else {
        return None;
    };
    if dir.as_ref() != SWEPT_ACCOUNTS_DIR {
        return None;
    }
    parse_range(file.as_ref().strip_suffix(PARQUET_SUFFIX)?)
}

/// Parses a segment path of `table`; `None` if it is not exactly what format 1 writes.
pub fn parse_segment_path(table: Table, path: &Path) -> Option<SegmentName> {
    let parts: Vec<_> = path.parts().collect();
    let [dir, date_part, file] = parts.as_slice() else {
        return None;
    };
    if dir.as_ref() != table.dir() {
        return None;
    }
    let date = date_part.as_ref().strip_prefix("date=")?;
    let (first_timestamp, last_timestamp) =
        parse_range(file.as_ref().strip_suffix(PARQUET_SUFFIX)?)?;
    if date_partition(first_timestamp) != date || date_partition(last_timestamp) != date {
        return None;
    }
    Some(SegmentName {
        date: date.to_string(),
        first_timestamp,
        last_timestamp,
    })
}

/// Whether `path` (inside a table directory) belongs to format 2: the table's Delta log, or a
/// data file named `<first>-<last>-<digest16>.parquet` (partitioned or not). Such objects are
/// not format-1 data; while an upgrade runs they sit beside the format-1 files.
pub fn is_format2_object(path: &Path) -> bool {
    let parts: Vec<_> = path.parts().collect();
    if parts.len() >= 2 && parts[1].as_ref() == DELTA_LOG_DIR {
        return true;
    }
    let file = match parts.as_slice() {
        [_, file] => file,
        [_, date, file] if date.as_ref().starts_with("date=") => file,
        _ => return false,
    };
    let Some(stem) = file.as_ref().strip_suffix(PARQUET_SUFFIX) else {
        return false;
    };
    let Some((range, digest)) = stem.rsplit_once('-') else {
        return false;
    };
    digest.len() == DIGEST_PREFIX_DIGITS
        && digest
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        && parse_range(range).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::{parse_rfc3339, NS_PER_DAY};

    #[test]
    fn segment_names_format_and_parse() {
        let first = parse_rfc3339("2026-11-21T21:02:30.000000001Z").unwrap();
        let last = first + 5_000_000_000;
        let path = segment_path(Table::Transfers, first, last);
        assert_eq!(
            path.as_ref(),
            "transfers/date=2026-11-21/01795294950000000001-01795294955000000001.parquet"
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
        assert_eq!(parse_segment_path(Table::Accounts, &path), None);
        let twin = segment_path(Table::Accounts, first, last);
        assert_eq!(parse_segment_path(Table::Accounts, &twin), Some(name));
        assert!(!is_format2_object(&path));
    }

    #[test]
    fn bad_segment_names_are_rejected() {
        for bad in [
            "transfers/_SUCCESS",
            "transfers/date=1970-01-01/00000000000000000001-00000000000000000002.parquet.tmp",
            "transfers/date=1970-01-01/1-2.parquet",
            "transfers/date=1970-01-01/00000000000000000002-00000000000000000001.parquet",
            "transfers/date=1970-01-02/00000000000000000001-00000000000000000002.parquet",
            "transfers/00000000000000000001-00000000000000000002.parquet",
            "transfers/date=2554-07-21/18446744073709551615-18446744073709551616.parquet",
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
        let p = swept_path(1_795_294_950_000_000_001, 1_795_294_960_000_000_000);
        assert_eq!(
            p.as_ref(),
            "swept_accounts/01795294950000000001-01795294960000000000.parquet"
        );
        assert_eq!(
            parse_swept_path(&p),
            Some((1_795_294_950_000_000_001, 1_795_294_960_000_000_000))
        );
        assert!(parse_swept_path(&swept_path(NS_PER_DAY - 1, NS_PER_DAY)).is_some());
        for bad in [
            "swept_accounts/00000000000000000002-00000000000000000001.parquet",
            "swept_accounts/date=1970-01-01/00000000000000000001-00000000000000000002.parquet",
            "accounts/00000000000000000001-00000000000000000002.parquet",
        ] {
            assert_eq!(parse_swept_path(&Path::from(bad)), None, "{bad}");
        }
    }

    #[test]
    fn format2_objects_are_told_apart_from_format1_files() {
        for v2 in [
            "transfers/_delta_log/00000000000000000000.json",
            "transfers/_delta_log/_last_checkpoint",
            "swept_accounts/_delta_log/00000000000000000003.json",
            "transfers/date=1970-01-01/00000000000000000001-00000000000000000002-0123456789abcdef.parquet",
            "accounts/date=1970-01-01/00000000000000000001-00000000000000000002-0123456789abcdef.parquet",
            "swept_accounts/00000000000000000001-00000000000000000002-0123456789abcdef.parquet",
        ] {
            assert!(is_format2_object(&Path::from(v2)), "{v2}");
        }
        for not_v2 in [
            "transfers/date=1970-01-01/00000000000000000001-00000000000000000002.parquet",
            "swept_accounts/00000000000000000001-00000000000000000002.parquet",
            "transfers/date=1970-01-01/00000000000000000001-00000000000000000002-0123.parquet",
            "transfers/date=1970-01-01/00000000000000000001-00000000000000000002-0123456789abcdeg.parquet",
            "transfers/date=1970-01-01/00000000000000000001-00000000000000000002-0123456789ABCDEF.parquet",
            "transfers/x/y/00000000000000000001-00000000000000000002-0123456789abcdef.parquet",
            "transfers/_SUCCESS",
        ] {
            assert!(!is_format2_object(&Path::from(not_v2)), "{not_v2}");
        }
    }
}
