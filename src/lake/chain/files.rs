//! The chain check's data-file side, for one table once its log is walked: every active data
//! file hashed against the digest the log records (`HASHES_IN_FLIGHT_MAX` at a time), every
//! object under the table that no `add` names told apart (an interrupted writer's leftover is a
//! note, anything else a problem), and the compaction commits' content check.

use std::collections::{BTreeMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use super::log::{data_object, Active, Walk};
use super::{hex, ChainCheck, ChainFile, ChainProblem, ChainStart, HASHES_IN_FLIGHT_MAX};
use crate::lake::{Lake, LakeError};

/// What the data-file checks of one table found.
pub(super) struct DataFiles {
    pub(super) files: Vec<ChainFile>,
    pub(super) active_files: u64,
    /// Sorted by file, then check.
    pub(super) problems: Vec<ChainProblem>,
    pub(super) notes: Vec<ChainProblem>,
    pub(super) objects_not_checked: u64,
}

/// The time range a data file's name gives (`None`: not a data file name).
fn named_range(object: &Path) -> Option<(u64, u64)> {
    crate::lake::layout::parse_file_name(object.filename()?)
}

/// Whether an unreferenced object is an uncommitted data file: its name is a data file name
/// whose range starts after everything the log ever named (`log_end`: where an interrupted
/// commit would have continued it) and whose digest prefix is the start of `sha256` (hex).
/// A file of a removed commit in the middle of the log is not: it is a problem.
fn is_uncommitted_data_file(object: &Path, sha256: &str, log_end: Option<u64>) -> bool {
    let Some(name) = object.filename() else {
        return false;
    };
    let Some((first, _)) = crate::lake::layout::parse_file_name(name) else {
        return false;
    };
    if log_end.is_some_and(|end| first <= end) {
        return false;
    }
    let digest = name
        .trim_end_matches(".parquet")
        .rsplit('-')
        .next()
        .unwrap_or_default();
    sha256.starts_with(digest)
}

/// Whether an unreferenced object is a merged file of a compaction that never committed: a
/// data file name holding its digest's bytes, whose range starts where a file the log named
/// starts and ends where one ends (the range of the files it would have replaced).
fn is_unfinished_compaction_file(object: &Path, sha256: &str, named: &HashSet<(u64, u64)>) -> bool {
    let Some((first, last)) = named_range(object) else {
        return false;
    };
    let starts = named.iter().any(|&(f, _)| f == first);
    let ends = named.iter().any(|&(_, l)| l == last);
    // A merge replaces two files or more, so its range is never one named file's own range: an
    // object with such a range is a copy of that file (a duplicate), not a merge.
    let a_copy = named.contains(&(first, last));
    is_uncommitted_data_file(object, sha256, None) && starts && ends && !a_copy
}

impl Lake {
    /// The data-file checks of `table` (`data`: its objects outside the log), after `walk`
    /// went through its commits (from `start`, if given).
    pub(super) async fn check_data_files(
        &self,
        table: &str,
        data: &BTreeMap<Path, ObjectMeta>,
        walk: &mut Walk<'_>,
        start: Option<&ChainStart>,
    ) -> Result<DataFiles, LakeError> {
        let mut files: Vec<ChainFile> = walk
            .active
            .iter()
            .filter_map(|(path, a)| {
                a.recorded.as_ref().map(|(sha256, size)| ChainFile {
                    path: path.clone(),
                    version: a.version,
                    sha256: sha256.clone(),
                    size: *size,
                    date: a.date.clone(),
                })
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let active: Vec<Active> = walk.active.drain().map(|(_, a)| a).collect();
        let active_ranges: Vec<(Path, (u64, u64))> = active
            .iter()
            .filter_map(|a| named_range(&a.object).map(|r| (a.object.clone(), r)))
            .collect();
        let active_files = active.len() as u64;
        let mut file_problems = Vec::new();
        let mut to_hash = Vec::new();
        for a in active {
            match data.get(&a.object) {
                None => file_problems.push(ChainProblem {
                    table: table.to_string(),
                    version: Some(a.version),
                    file: a.object.to_string(),
                    check: ChainCheck::FileMissing,
                    detail: "an active data file (added, never removed) is not in the store"
                        .to_string(),
                }),
                Some(_) => {
                    if let Some(recorded) = a.recorded {
                        to_hash.push((a.version, a.object, recorded));
                    }
                }
            }
        }
        let store = &self.store;
        let mut hashed = futures::stream::iter(to_hash)
            .map(|(version, object, recorded)| async move {
                let found = hash_object(store.as_ref(), &object).await;
                (version, object, recorded, found)
            })
            .buffer_unordered(HASHES_IN_FLIGHT_MAX);
        while let Some((version, object, (sha256, size), found)) = hashed.next().await {
            let (check, detail) = match found {
                Ok((s, n)) if s == sha256 && n == size => continue,
                Ok((s, n)) => (
                    ChainCheck::FileAltered,
                    format!("the log records {size} bytes with SHA-256 {sha256}; the file has {n} bytes with SHA-256 {s}"),
                ),
                Err(object_store::Error::NotFound { .. }) => (
                    ChainCheck::FileMissing,
                    "an active data file (added, never removed) is not in the store".to_string(),
                ),
                Err(e) => return Err(LakeError::store(&object, e)),
            };
            file_problems.push(ChainProblem {
                table: table.to_string(),
                version: Some(version),
                file: object.to_string(),
                check,
                detail,
            });
        }
        drop(hashed);
        let mut notes = Vec::new();
        let log_end = walk
            .named
            .iter()
            .filter_map(named_range)
            .map(|(_, last)| last)
            .max();
        let named_ranges: HashSet<(u64, u64)> = walk.named.iter().filter_map(named_range).collect();
        // Started from a head, the files the commits before it named and removed are not known:
        // an object whose range ends by the head's newest file is not checked.
        let head_end = start.and_then(|s| {
            s.files
                .iter()
                .filter_map(|f| data_object(table, &f.path))
                .filter_map(|p| named_range(&p))
                .map(|(_, last)| last)
                .max()
        });
        let mut objects_not_checked = 0;
        let unnamed: Vec<&Path> = data
            .keys()
            .filter(|p| !walk.named.contains(*p))
            .filter(|p| {
                let before_head = start.is_some()
                    && named_range(p)
                        .is_some_and(|(first, _)| head_end.is_some_and(|e| first <= e));
                objects_not_checked += u64::from(before_head);
                !before_head
            })
            .collect();
        let mut hashed = futures::stream::iter(unnamed)
            .map(|object| async move { (object, hash_object(store.as_ref(), object).await) })
            .buffered(HASHES_IN_FLIGHT_MAX);
        while let Some((object, found)) = hashed.next().await {
            let digest = match found {
                Ok((sha256, _)) => sha256,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(LakeError::store(object, e)),
            };
            if is_unfinished_compaction_file(object, &digest, &named_ranges) {
                notes.push(ChainProblem {
                    table: table.to_string(),
                    version: None,
                    file: object.to_string(),
                    check: ChainCheck::FileUncommitted,
                    detail: "written by a compaction that never committed (interrupted): not \
                             part of the table; safe to delete"
                        .to_string(),
                });
                continue;
            }
            if is_uncommitted_data_file(object, &digest, log_end) {
                notes.push(ChainProblem {
                    table: table.to_string(),
                    version: None,
                    file: object.to_string(),
                    check: ChainCheck::FileUncommitted,
                    detail: "written before a commit that never happened (an interrupted \
                             export): not part of the table; safe to delete"
                        .to_string(),
                });
                continue;
            }
            if self
                .is_leftover_of_committed_rows(
                    table,
                    object,
                    &digest,
                    &active_ranges,
                    &named_ranges,
                )
                .await?
            {
                notes.push(ChainProblem {
                    table: table.to_string(),
                    version: None,
                    file: object.to_string(),
                    check: ChainCheck::FileUncommitted,
                    detail: "written by an interrupted export whose events a later commit holds \
                             (every row equal to the table's): not part of the table; safe to \
                             delete"
                        .to_string(),
                });
                continue;
            }
            file_problems.push(ChainProblem {
                table: table.to_string(),
                version: None,
                file: object.to_string(),
                check: ChainCheck::FileUnreferenced,
                detail: "no add action of the log names this object: it is not part of the table"
                    .to_string(),
            });
        }
        drop(hashed);
        let present = |p: &Path| data.contains_key(p);
        let compactions = self
            .check_compactions(table, &walk.compactions, &present)
            .await?;
        for p in compactions.problems {
            file_problems.push(ChainProblem {
                table: table.to_string(),
                version: Some(p.version),
                file: p.file,
                check: ChainCheck::CompactionMismatch,
                detail: p.detail,
            });
        }
        file_problems.sort_by(|a, b| (&a.file, a.check).cmp(&(&b.file, b.check)));
        Ok(DataFiles {
            files,
            active_files,
            problems: file_problems,
            notes,
            objects_not_checked,
        })
    }
}

impl Lake {
    /// Whether an unreferenced object is a data file (its name's digest is its bytes') that an
    /// interrupted export left behind, its rows all held, exactly, by the table's active files
    /// over its range (`active_ranges`: each active file and its range). Never one whose range
    /// is that of a file the log ever named (`named`): that is a copy of a committed file (a
    /// duplicate, wherever it lies), since a session that seals the same range writes the same
    /// bytes under the same name.
    async fn is_leftover_of_committed_rows(
        &self,
        table: &str,
        object: &Path,
        sha256: &str,
        active_ranges: &[(Path, (u64, u64))],
        named: &HashSet<(u64, u64)>,
    ) -> Result<bool, LakeError> {
        let Some((first, last)) = named_range(object) else {
            return Ok(false);
        };
        if named.contains(&(first, last)) {
            return Ok(false);
        }
        if !is_uncommitted_data_file(object, sha256, None) {
            return Ok(false);
        }
        let overlapping: Vec<Path> = active_ranges
            .iter()
            .filter(|(_, (f, l))| *f <= last && first <= *l)
            .map(|(p, _)| p.clone())
            .collect();
        if overlapping.is_empty() || overlapping.len() > LEFTOVER_OVERLAPS_MAX {
            return Ok(false);
        }
        self.holds_only_committed_rows(table, object, &overlapping)
            .await
    }
}

/// The active files a leftover's rows are looked up in, at most (a leftover is one segment's
/// range; more overlapping files than this are not a leftover's).
const LEFTOVER_OVERLAPS_MAX: usize = 64;

/// The hex SHA-256 and size of an object, read as a stream (never whole in memory).
async fn hash_object(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<(String, u64), object_store::Error> {
    let mut stream = store.get(path).await?.into_stream();
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = stream.try_next().await? {
        hasher.update(&chunk);
        size += chunk.len() as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}
