//! What `verify` checks of each compaction commit (a commit of `transfers` or `accounts` that
//! removes files and adds one): the added file holds exactly the removed files' rows — for
//! `transfers` every event, in order; for `accounts` the records deduplicated by id as a merge
//! makes them. The chain proves who committed what; this proves the swap lost and added nothing.
//! A commit whose files were deleted since (`ledgerlake vacuum`) cannot be checked and is only
//! counted. The files of one commit are read and decoded `DECODES_IN_FLIGHT_MAX` at a time, each
//! decode on a blocking thread (decoding is CPU work: this uses every core). Also the leftover
//! check: a file an interrupted export wrote holds only rows the table holds, each exactly.

use futures::StreamExt;
use object_store::path::Path;

use super::dedupe_accounts;
use crate::lake::columns::{ACCOUNT_COLUMNS, TRANSFER_COLUMNS};
use crate::lake::layout::Table;
use crate::lake::{parquet, AccountRecord, EventRow, Lake, LakeError};

/// Files read and decoded at once by the compaction check (each one data file in memory, at
/// most the writer's largest: the memory of one merge).
pub const DECODES_IN_FLIGHT_MAX: usize = 4;

/// A commit that removes files and adds some, as the log walk found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionCommit {
    pub version: u64,
    /// The objects removed and added, relative to the lake root.
    pub removed: Vec<Path>,
    pub added: Vec<Path>,
}

/// A compaction commit whose added file does not hold its removed files' rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionProblem {
    pub version: u64,
    /// The added file, relative to the lake root.
    pub file: String,
    pub detail: String,
}

/// The compaction checks of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionChecks {
    pub problems: Vec<CompactionProblem>,
    /// Compaction commits checked, and those whose files are no longer all in the store.
    pub checked: u64,
    pub unchecked: u64,
}

/// The rows of a table's file, for comparison.
enum Rows {
    Transfers(Vec<EventRow>),
    Accounts(Vec<AccountRecord>),
}

impl Lake {
    /// Checks the compaction commits of `table` (`present`: whether an object is in the store).
    pub(crate) async fn check_compactions(
        &self,
        table: &str,
        commits: &[CompactionCommit],
        present: &(dyn Fn(&Path) -> bool + Sync),
    ) -> Result<CompactionChecks, LakeError> {
        let table = match table {
            "transfers" => Table::Transfers,
            "accounts" => Table::Accounts,
            _ => return Ok(CompactionChecks::default()),
        };
        let mut out = CompactionChecks::default();
        for commit in commits {
            if !commit.removed.iter().chain(&commit.added).all(present) {
                out.unchecked += 1;
                continue;
            }
            out.checked += 1;
            let file = commit
                .added
                .first()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let problem = |detail: String| CompactionProblem {
                version: commit.version,
                file: file.clone(),
                detail,
            };
            if commit.added.len() != 1 {
                let detail = format!(
                    "a compaction adds one file; this commit adds {} while removing {}",
                    commit.added.len(),
                    commit.removed.len()
                );
                out.problems.push(problem(detail));
                continue;
            }
            let mut removed = commit.removed.clone();
            // Data file names are zero-padded ranges: name order is time order within a date.
            removed.sort_by(|a, b| a.filename().cmp(&b.filename()));
            let mut expected = match table {
                Table::Transfers => Rows::Transfers(Vec::new()),
                _ => Rows::Accounts(Vec::new()),
            };
            let mut unreadable = None;
            // The removed files in time order, then the added one; decoded ahead, used in order.
            let mut reads = futures::stream::iter(removed.iter().chain(&commit.added))
                .map(|path| async move { (path, self.rows_of(table, path).await) })
                .buffered(DECODES_IN_FLIGHT_MAX);
            let mut found = None;
            let mut seen = 0;
            while let Some((path, rows)) = reads.next().await {
                seen += 1;
                if seen > removed.len() {
                    found = Some(rows?);
                    break;
                }
                match rows? {
                    Ok(rows) => match (&mut expected, rows) {
                        (Rows::Transfers(all), Rows::Transfers(r)) => all.extend(r),
                        (Rows::Accounts(all), Rows::Accounts(r)) => all.extend(r),
                        _ => unreachable!("one table"),
                    },
                    Err(detail) => unreadable = Some(format!("removed file {path}: {detail}")),
                }
            }
            drop(reads);
            if let Some(detail) = unreadable {
                out.problems.push(problem(detail));
                continue;
            }
            let found = match found {
                Some(Ok(rows)) => rows,
                Some(Err(detail)) => {
                    out.problems.push(problem(detail));
                    continue;
                }
                None => unreachable!("the added file is read last"),
            };
            let mismatch = match (expected, found) {
                (Rows::Transfers(e), Rows::Transfers(f)) => first_difference(&e, &f),
                (Rows::Accounts(e), Rows::Accounts(f)) => first_difference(&dedupe_accounts(e), &f),
                _ => unreachable!("one table"),
            };
            if let Some(detail) = mismatch {
                out.problems.push(problem(format!(
                    "does not hold exactly the rows of the {} files it replaced: {detail}",
                    removed.len()
                )));
            }
        }
        Ok(out)
    }

    /// Whether `leftover`, a data file no commit names whose range overlaps what the log holds,
    /// holds only rows the table already holds, each exactly: a segment an interrupted export
    /// wrote before it was killed, whose events a later session committed in a segment with
    /// other bounds. `overlapping`: the table's active files whose ranges overlap the
    /// leftover's. For `transfers` every row must equal the active row of its timestamp; for
    /// `accounts` every record must equal a record of its id. `false` for another table, a
    /// file that cannot be decoded, or any row the table does not hold as it is.
    pub(crate) async fn holds_only_committed_rows(
        &self,
        table: &str,
        leftover: &Path,
        overlapping: &[Path],
    ) -> Result<bool, LakeError> {
        let table = match table {
            "transfers" => Table::Transfers,
            "accounts" => Table::Accounts,
            _ => return Ok(false),
        };
        let Ok(found) = self.rows_of(table, leftover).await? else {
            return Ok(false);
        };
        let mut committed_events = std::collections::HashMap::new();
        let mut committed_accounts: std::collections::HashMap<u128, Vec<AccountRecord>> =
            std::collections::HashMap::new();
        for path in overlapping {
            match self.rows_of(table, path).await? {
                Ok(Rows::Transfers(rows)) => {
                    committed_events.extend(rows.into_iter().map(|r| (r.timestamp, r)));
                }
                Ok(Rows::Accounts(rows)) => {
                    for r in rows {
                        committed_accounts.entry(r.id).or_default().push(r);
                    }
                }
                Err(_) => return Ok(false),
            }
        }
        Ok(match found {
            Rows::Transfers(rows) => {
                !rows.is_empty()
                    && rows
                        .iter()
                        .all(|r| committed_events.get(&r.timestamp) == Some(r))
            }
            Rows::Accounts(rows) => {
                !rows.is_empty()
                    && rows.iter().all(|r| {
                        committed_accounts
                            .get(&r.id)
                            .is_some_and(|records| records.contains(r))
                    })
            }
        })
    }

    /// The rows of one data file; `Ok(Err(reason))` if it cannot be decoded as the table's.
    async fn rows_of(&self, table: Table, path: &Path) -> Result<Result<Rows, String>, LakeError> {
        let bytes = match self.get(path).await {
            Ok(b) => b,
            Err(LakeError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }) => return Ok(Err("not in the store".to_string())),
            Err(e) => return Err(e),
        };
        let path = path.clone();
        let decode = move || {
            let decoded = match table {
                Table::Transfers => parquet::decode(&TRANSFER_COLUMNS, table, bytes, &path)
                    .map(|(_, rows)| Rows::Transfers(rows)),
                _ => parquet::decode(&ACCOUNT_COLUMNS, table, bytes, &path)
                    .map(|(_, rows)| Rows::Accounts(rows)),
            };
            decoded.map_err(|e| crate::errors::one_line(&e))
        };
        match tokio::task::spawn_blocking(decode).await {
            Ok(decoded) => Ok(decoded),
            // The decode panicked (a bug in the decoder): the file cannot be checked.
            Err(e) => Ok(Err(format!("decoding failed: {e}"))),
        }
    }
}

/// Where `found` first differs from `expected`, if it does.
fn first_difference<R: PartialEq>(expected: &[R], found: &[R]) -> Option<String> {
    if let Some(i) = (0..expected.len().min(found.len())).find(|&i| expected[i] != found[i]) {
        return Some(format!("row {i} differs"));
    }
    (expected.len() != found.len()).then(|| {
        format!(
            "it holds {} rows, the files it replaced {}",
            found.len(),
            expected.len()
        )
    })
}
