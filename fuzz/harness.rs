//! What each lake fuzz target does with one input. Shared, through `#[path]`, by the fuzz
//! targets (`fuzz/fuzz_targets/*.rs`) and by the corpus replay test (`tests/fuzz_corpus.rs`), so
//! that every corpus file is replayed on each `cargo test` through exactly the code the fuzzer
//! ran. Each function panics only when a property fails (a panic in the code under test is a
//! finding as well).

#![allow(dead_code)]

use ledgerlake::lake::untrusted;
use ledgerlake::lake::Table;

const TABLES: [Table; 3] = [Table::Transfers, Table::Accounts, Table::SweptAccounts];

/// The first byte of an input, when present, steers the target; the rest is the object.
fn split(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&selector, rest)) => (selector, rest),
        None => (0, data),
    }
}

/// `data_file`: a data file of the table the selector picks (`selector % 3`), decoded whole
/// and by its footer alone, at its true size and (when `selector >> 3` is not 0) at a size the
/// log could get wrong by that many bytes (shorter if bit 2 is clear, longer if set).
pub fn data_file(data: &[u8]) {
    let (selector, file) = split(data);
    let table = TABLES[usize::from(selector % 3)];
    let size = file.len() as u64;
    let decoded = untrusted::decode_data_file(table, file);
    let footer = untrusted::footer_rows(file, size);
    match &decoded {
        Ok(d) => assert_eq!(
            footer.as_ref().ok(),
            Some(&d.rows),
            "a file that decodes has the same row count in its footer"
        ),
        Err(e) => assert!(!e.to_string().is_empty(), "every error says something"),
    }
    if let Err(e) = &footer {
        assert!(!e.to_string().is_empty(), "every error says something");
    }
    // The log's size off by a few bytes, one way or the other.
    let off = u64::from(selector >> 3);
    if off > 0 {
        let wrong = if selector & 4 == 0 {
            size.saturating_sub(off)
        } else {
            size + off
        };
        let _ = untrusted::footer_rows(file, wrong);
    }
}

/// `log_commit`: a Delta commit of the table the selector picks, at version `(selector >> 2) % 4`,
/// checked as `verify` checks it (with or without a previous commit's digest), and read by the
/// log reader for its `commitInfo` fields.
pub fn log_commit(data: &[u8]) {
    let (selector, commit) = split(data);
    let table = TABLES[usize::from(selector % 3)];
    let version = u64::from((selector >> 2) % 4);
    let previous = (selector & 0x10 != 0).then_some(PREVIOUS_SHA256);
    let problems = untrusted::check_commit(table, version, commit, previous);
    for problem in &problems {
        assert!(
            problem.file.starts_with(table.dir()),
            "a problem names an object of its table: {problem}"
        );
        assert!(!problem.detail.is_empty(), "a problem says what is wrong");
    }
    let _ = untrusted::commit_info_fields(commit);
}

/// A digest the fuzzer's commits may or may not name as their previous commit's.
const PREVIOUS_SHA256: &str = "3f0a2c7e5b1d49e88f6a0b2c4d6e8f00112233445566778899aabbccddeeff00";

/// `metadata`: the lake metadata file and a quarantine record.
pub fn metadata(data: &[u8]) {
    if let Err(reason) = untrusted::decode_lake_meta(data) {
        assert!(!reason.is_empty(), "a corrupt metadata file says why");
    }
    if let Err(reason) = untrusted::decode_quarantined(data) {
        assert!(!reason.is_empty(), "a corrupt quarantine record says why");
    }
}
