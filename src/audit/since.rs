//! `verify --since REPORT.json`: an incremental verify for an auditor who keeps the JSON report
//! of an earlier verify of the whole lake outside the lake. The full chain walk reads every
//! commit of every table (O(commits): a trickle day is 86,400 segment commits); this one checks
//! that each table's recorded head commit still hashes to its `head_sha256` and walks only the
//! commits after it, taking the files active at the head from the report
//! (`lake::chain::ChainStart`). The data checks (structure, completeness, double entry) still
//! read the whole snapshot. `SinceSummary::NOT_PROVEN` says what only a full verify proves.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_with::{serde_as, DisplayFromStr};

use crate::lake::chain::{ChainFile, ChainStart};

/// A report larger than this is not read (one entry per active data file: ~200 bytes each).
pub const REPORT_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// Why a report cannot be started from (exit status 2: nothing was verified).
#[derive(Debug, thiserror::Error)]
pub enum SinceError {
    #[error("--since {path}: cannot read it: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("--since {path}: {size_bytes} bytes, over the limit of {REPORT_BYTES_MAX} bytes")]
    TooLarge { path: String, size_bytes: u64 },
    #[error("--since {path}: not a verify JSON report: {reason}")]
    NotAReport { path: String, reason: String },
    #[error("--since {path}: {reason}; start from the report of a full verify that passed")]
    NotAStart { path: String, reason: String },
}

/// The parts of an earlier report this reads.
#[derive(Deserialize)]
struct Previous {
    ok: bool,
    chain_checked: bool,
    since: Option<serde_json::Value>,
    chain: Vec<PreviousHead>,
}

#[serde_as]
#[derive(Deserialize)]
struct PreviousHead {
    table: String,
    #[serde_as(as = "Option<DisplayFromStr>")]
    head_version: Option<u64>,
    head_sha256: Option<String>,
    files: Option<Vec<ChainFile>>,
}

/// The heads to start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    /// The report, for display.
    pub report: String,
    /// By table; a table the report has no head for is walked from version 0.
    pub starts: HashMap<String, ChainStart>,
}

/// What the report says about an incremental verify.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinceSummary {
    pub report: String,
    /// Each table's recorded head version the walk started from.
    pub heads: Vec<SinceHead>,
    /// What this verify proves.
    pub proves: String,
    /// What a full verify proves in addition.
    pub not_proven: String,
}

#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinceHead {
    pub table: String,
    #[serde_as(as = "DisplayFromStr")]
    pub version: u64,
    pub sha256: String,
}

impl SinceSummary {
    pub const PROVES: &'static str = "each table's recorded head commit is unchanged (its \
        SHA-256); every commit after it is ledgerlake's, links to it without a gap and lists \
        its files; every checkpoint at or after the head lists exactly the files active at its \
        version; every active data file (recorded at the head or added since) has its \
        recorded digest; compactions committed since hold their removed files' rows; and the \
        whole snapshot passes structure, completeness and double entry";
    pub const NOT_PROVEN: &'static str = "that the commits before each recorded head are \
        unchanged (only the head itself is hashed), that compactions before it held their \
        removed files' rows, that checkpoints before it list the files the chain had active \
        then, and that no object older than its newest file is unnamed by the \
        log: the earlier full verify proved these as of then; run a full verify to prove them now";
}

impl Since {
    /// Reads an earlier `verify --format json` report; refuses one that found problems, did
    /// not check the chain, was itself incremental, or has no file list (an older ledgerlake).
    pub fn read(path: &Path) -> Result<Since, SinceError> {
        let name = path.display().to_string();
        let read = |source| SinceError::Read {
            path: name.clone(),
            source,
        };
        let size_bytes = std::fs::metadata(path).map_err(read)?.len();
        if size_bytes > REPORT_BYTES_MAX {
            return Err(SinceError::TooLarge {
                path: name,
                size_bytes,
            });
        }
        let bytes = std::fs::read(path).map_err(read)?;
        Since::parse(&name, &bytes)
    }

    /// `read`, from the report's bytes (`name` for messages).
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Since, SinceError> {
        let previous: Previous =
            serde_json::from_slice(bytes).map_err(|e| SinceError::NotAReport {
                path: name.to_string(),
                reason: e.to_string(),
            })?;
        let refuse = |reason: &str| SinceError::NotAStart {
            path: name.to_string(),
            reason: reason.to_string(),
        };
        if !previous.ok {
            return Err(refuse("that verify found problems"));
        }
        if !previous.chain_checked {
            return Err(refuse("that verify did not check a chained log"));
        }
        if previous.since.is_some_and(|s| !s.is_null()) {
            return Err(refuse(
                "that verify was itself incremental (--since), so it did not prove the whole log",
            ));
        }
        let mut starts = HashMap::new();
        for head in previous.chain {
            let (Some(head_version), Some(head_sha256)) = (head.head_version, head.head_sha256)
            else {
                continue;
            };
            let Some(files) = head.files else {
                return Err(refuse(&format!(
                    "its {} head has no file list (written by an older ledgerlake)",
                    head.table
                )));
            };
            let valid = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
            if !valid(&head_sha256) || !files.iter().all(|f| valid(&f.sha256)) {
                return Err(SinceError::NotAReport {
                    path: name.to_string(),
                    reason: format!("a {} digest is not 64 hex digits", head.table),
                });
            }
            starts.insert(
                head.table,
                ChainStart {
                    head_version,
                    head_sha256,
                    files,
                },
            );
        }
        Ok(Since {
            report: name.to_string(),
            starts,
        })
    }

    pub fn summary(&self) -> SinceSummary {
        let mut heads: Vec<SinceHead> = self
            .starts
            .iter()
            .map(|(table, s)| SinceHead {
                table: table.clone(),
                version: s.head_version,
                sha256: s.head_sha256.clone(),
            })
            .collect();
        heads.sort_by(|a, b| a.table.cmp(&b.table));
        SinceSummary {
            report: self.report.clone(),
            heads,
            proves: SinceSummary::PROVES.to_string(),
            not_proven: SinceSummary::NOT_PROVEN.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ok: bool, files: &str) -> String {
        format!(
            r#"{{"ok":{ok},"chain_checked":true,"since":null,"chain":[
              {{"table":"transfers","head_version":"7","head_sha256":"{h}","files":{files}}},
              {{"table":"accounts","head_version":null,"head_sha256":null,"files":[]}}]}}"#,
            h = "ab".repeat(32)
        )
    }

    #[test]
    fn a_passing_report_gives_each_recorded_head() {
        let files = format!(
            r#"[{{"path":"date=2026-03-01/a.parquet","version":"3","sha256":"{}","size":"10"}}]"#,
            "cd".repeat(32)
        );
        let since = Since::parse("r.json", report(true, &files).as_bytes()).unwrap();
        assert_eq!(
            since.starts.len(),
            1,
            "a table without a head is walked in full"
        );
        let start = &since.starts["transfers"];
        assert_eq!(start.head_version, 7);
        assert_eq!(start.files[0].version, 3);
        assert_eq!(start.files[0].size, 10);
        assert_eq!(since.summary().heads[0].version, 7);
    }

    #[test]
    fn reports_that_prove_less_are_refused() {
        let err = Since::parse("r.json", report(false, "[]").as_bytes()).unwrap_err();
        assert!(err.to_string().contains("found problems"), "{err}");
        let old = report(true, "[]").replace(r#","files":[]"#, "");
        let err = Since::parse("r.json", old.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("no file list"), "{err}");
        let incremental = report(true, "[]").replace(r#""since":null"#, r#""since":{}"#);
        let err = Since::parse("r.json", incremental.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("incremental"), "{err}");
        let unchained =
            report(true, "[]").replace(r#""chain_checked":true"#, r#""chain_checked":false"#);
        assert!(Since::parse("r.json", unchained.as_bytes()).is_err());
        let short = report(true, "[]").replace(&"ab".repeat(32), "ab");
        assert!(matches!(
            Since::parse("r.json", short.as_bytes()),
            Err(SinceError::NotAReport { .. })
        ));
        assert!(matches!(
            Since::parse("r.json", b"not json"),
            Err(SinceError::NotAReport { .. })
        ));
    }
}
