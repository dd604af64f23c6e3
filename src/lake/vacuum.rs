//! Retention: `ledgerlake vacuum --retain DURATION` deletes the data files that were removed
//! from a table (by a compaction or an orphan removal) longer than DURATION ago, as the remove
//! actions' `deletionTimestamp` says. Never an active file, never a file removed more recently,
//! and never unless asked: nothing else in ledgerlake deletes a data file of a table.
//!
//! It also deletes the checkpoints a newer checkpoint of the same table superseded, once written
//! longer than DURATION ago: they are derived from the commits (not part of the chain), a
//! reader at an older version replays that version's commits instead, and without this the
//! log would keep one every `CHECKPOINT_INTERVAL_COMMITS` commits forever. Commits are never
//! deleted: they are the record and the chain.
//!
//! The log is read commit by commit, straight from the store (like the chain check), so what
//! is deleted is decided by the log's own record; before deleting, every candidate is checked
//! against the table's current snapshot once more. Reading the lake at a version whose files
//! were vacuumed fails naming the missing file (`LakeError::Vacuumed`).
//!
//! So that a run does not read the whole history again, a vacuum that deleted what it found
//! records in `_ledgerlake_vacuum.json`, per table, the first version the next run must read:
//! the oldest commit whose removed files it kept (removed within the retention), or the one
//! after the newest commit if it kept none. Every file an earlier commit removed is deleted.
//! The record is a hint that can only save reads: a record beyond a table's log (a lake put
//! back from an older copy) is ignored, and `--rescan` reads every commit. A wrong record can
//! leave removed files in the store, never delete an active one: every candidate is still
//! checked against the current snapshot.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::chain::{data_object, CHAIN_TABLES, LOG_DIR};
use super::layout::Table;
use super::{Lake, LakeError};

/// Data files deleted at once.
pub const DELETES_IN_FLIGHT_MAX: usize = 8;

/// Where a vacuum records the first version of each table's log the next run reads.
pub const VACUUM_RECORD_FILE: &str = "_ledgerlake_vacuum.json";
/// The record's own format version; a newer one is ignored (the run reads every commit).
const VACUUM_RECORD_VERSION: u32 = 1;
/// A record larger than this is not one ledgerlake wrote: ignored.
const VACUUM_RECORD_BYTES_MAX: usize = 64 * 1024;

/// What `vacuum` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VacuumOptions {
    /// Delete what was removed (or superseded) longer ago than this.
    pub retain: Duration,
    /// List, delete nothing, record nothing.
    pub dry_run: bool,
    /// Read every commit, whatever `_ledgerlake_vacuum.json` says.
    pub rescan: bool,
}

/// `_ledgerlake_vacuum.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct VacuumRecord {
    format_version: u32,
    /// Table name -> the first version of its log the next vacuum reads (a decimal string, as
    /// every u64 ledgerlake writes in JSON).
    read_from: BTreeMap<String, String>,
}

impl VacuumRecord {
    /// Where to read `table` from: `Err` if the record names it but not as a version.
    fn read_from(&self, table: &str) -> Result<Option<u64>, String> {
        match self.read_from.get(table) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                format!("{VACUUM_RECORD_FILE} names {v:?} for {table}, not a version")
            }),
        }
    }
}

/// How much of one table's log a vacuum read.
#[serde_with::serde_as]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VacuumedTable {
    pub table: &'static str,
    /// The first version read (0: the whole log; more: from the record of an earlier run).
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub read_from_version: u64,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub commits_read: u64,
    /// Why the record of an earlier run was not used, if there was one.
    pub record_ignored: Option<String>,
}

/// A file vacuum deletes (or, with `--dry-run`, would delete).
#[serde_with::serde_as]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VacuumedFile {
    pub table: &'static str,
    /// Relative to the lake root.
    pub path: String,
    /// When it was removed from the table (`deletionTimestamp`, milliseconds since the epoch).
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub removed_at_ms: i64,
    /// The version of the commit that removed it.
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub removed_in_version: u64,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub bytes: u64,
}

/// What a vacuum did.
#[serde_with::serde_as]
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VacuumReport {
    pub dry_run: bool,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub retain_ms: u64,
    /// Deleted (or to delete): removed longer than `retain` ago and still in the store.
    pub deleted: Vec<VacuumedFile>,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub bytes_deleted: u64,
    /// Removed files kept: removed within the retention.
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub kept_recent: u64,
    /// Removed files already gone from the store (an earlier vacuum).
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub already_deleted: u64,
    /// Active files of the three tables (never deleted).
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub active: u64,
    /// Checkpoints deleted (or to delete): superseded by a newer checkpoint of their table and
    /// written longer than `retain` ago. The newest checkpoint of each table is kept.
    pub checkpoints_deleted: Vec<VacuumedCheckpoint>,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub checkpoint_bytes_deleted: u64,
    /// How much of each table's log was read.
    pub tables: Vec<VacuumedTable>,
    /// Whether `_ledgerlake_vacuum.json` was written (never on a dry run).
    pub recorded: bool,
}

/// A superseded checkpoint vacuum deletes (or, with `--dry-run`, would delete).
#[serde_with::serde_as]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VacuumedCheckpoint {
    pub table: &'static str,
    /// Relative to the lake root.
    pub path: String,
    /// The table version it is a checkpoint of.
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub version: u64,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub bytes: u64,
}

#[derive(Deserialize)]
struct Action {
    add: Option<Named>,
    remove: Option<Removed>,
}

#[derive(Deserialize)]
struct Named {
    path: String,
}

#[derive(Deserialize)]
struct Removed {
    path: String,
    #[serde(rename = "deletionTimestamp")]
    deletion_timestamp: Option<i64>,
}

/// `<20 digits>.json` → the version.
fn commit_version(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// `<20 digits>.checkpoint.parquet` (or a part of a multi-part or V2 checkpoint) → the version.
fn checkpoint_version(name: &str) -> Option<u64> {
    let (digits, rest) = name.split_once('.')?;
    let is_checkpoint =
        rest.starts_with("checkpoint.") && (rest.ends_with(".parquet") || rest.ends_with(".json"));
    (is_checkpoint && digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The checkpoints in `log` (a listing of `table`'s log) older than its newest checkpoint and
/// last modified before `cutoff_ms`.
fn superseded_checkpoints(
    table: &'static str,
    log: &[object_store::ObjectMeta],
    cutoff_ms: i64,
) -> Vec<VacuumedCheckpoint> {
    let checkpoints: Vec<(u64, &object_store::ObjectMeta)> = log
        .iter()
        .filter_map(|o| Some((checkpoint_version(o.location.filename()?)?, o)))
        .collect();
    let Some(newest) = checkpoints.iter().map(|(v, _)| *v).max() else {
        return Vec::new();
    };
    let mut superseded: Vec<VacuumedCheckpoint> = checkpoints
        .into_iter()
        .filter(|(v, o)| *v < newest && o.last_modified.timestamp_millis() < cutoff_ms)
        .map(|(version, o)| VacuumedCheckpoint {
            table,
            path: o.location.to_string(),
            version,
            bytes: o.size,
        })
        .collect();
    superseded.sort_by(|a, b| a.path.cmp(&b.path));
    superseded
}

fn table_of(name: &str) -> Table {
    match name {
        "transfers" => Table::Transfers,
        "accounts" => Table::Accounts,
        _ => Table::SweptAccounts,
    }
}

/// The record an earlier vacuum left, or why there is none to use (`Err`, for the report;
/// `Ok(None)`: no record).
async fn read_record(lake: &Lake) -> Result<Result<Option<VacuumRecord>, String>, LakeError> {
    let path = Path::from(VACUUM_RECORD_FILE);
    let bytes = match lake.store.get(&path).await {
        Ok(result) => result
            .bytes()
            .await
            .map_err(|e| LakeError::store(&path, e))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(Ok(None)),
        Err(e) => return Err(LakeError::store(&path, e)),
    };
    if bytes.len() > VACUUM_RECORD_BYTES_MAX {
        return Ok(Err(format!(
            "{VACUUM_RECORD_FILE} is {} bytes, more than {VACUUM_RECORD_BYTES_MAX}",
            bytes.len()
        )));
    }
    Ok(match serde_json::from_slice::<VacuumRecord>(&bytes) {
        Ok(record) if record.format_version == VACUUM_RECORD_VERSION => Ok(Some(record)),
        Ok(record) => Err(format!(
            "{VACUUM_RECORD_FILE} has format version {}, this build reads {VACUUM_RECORD_VERSION}",
            record.format_version
        )),
        Err(e) => Err(format!("{VACUUM_RECORD_FILE} is not readable: {e}")),
    })
}

impl Lake {
    /// Deletes (with `dry_run`, only lists) every data file removed from its table more than
    /// `retain` before `now_ms`, reading each log from the record of an earlier run. A lake read
    /// at an earlier version cannot be vacuumed.
    pub async fn vacuum(
        &self,
        retain: Duration,
        dry_run: bool,
        now_ms: i64,
    ) -> Result<VacuumReport, LakeError> {
        let options = VacuumOptions {
            retain,
            dry_run,
            rescan: false,
        };
        self.vacuum_with(&options, now_ms).await
    }

    /// [`Lake::vacuum`], with every option.
    pub async fn vacuum_with(
        &self,
        options: &VacuumOptions,
        now_ms: i64,
    ) -> Result<VacuumReport, LakeError> {
        assert!(self.as_of.is_none(), "vacuum the latest lake");
        let dry_run = options.dry_run;
        let retain_ms = u64::try_from(options.retain.as_millis()).unwrap_or(u64::MAX);
        let cutoff_ms = now_ms.saturating_sub(i64::try_from(retain_ms).unwrap_or(i64::MAX));
        let mut report = VacuumReport {
            dry_run,
            retain_ms,
            ..VacuumReport::default()
        };
        let record = if options.rescan {
            Ok(None)
        } else {
            read_record(self).await?
        };
        let mut next = VacuumRecord {
            format_version: VACUUM_RECORD_VERSION,
            read_from: BTreeMap::new(),
        };
        for name in CHAIN_TABLES {
            let table = table_of(name);
            if !self.table_exists(table).await? {
                continue;
            }
            // One listing of the table's log serves both: its commits and its checkpoints.
            let log = self.list(Some(&Path::from_iter([name, LOG_DIR]))).await?;
            report
                .checkpoints_deleted
                .extend(superseded_checkpoints(name, &log, cutoff_ms));
            let newest = log
                .iter()
                .filter_map(|o| o.location.filename().and_then(commit_version))
                .max();
            let (from, record_ignored) = match (&record, newest) {
                (Err(why), _) => (0, Some(why.clone())),
                (Ok(None), _) => (0, None),
                (Ok(Some(r)), newest) => match r.read_from(name) {
                    Err(why) => (0, Some(why)),
                    Ok(None) => (0, None),
                    Ok(Some(v)) if newest.is_some_and(|n| v <= n + 1) => (v, None),
                    Ok(Some(v)) => (
                        0,
                        Some(format!(
                            "it says to read {name} from version {v}, beyond its log ({})",
                            newest.map_or("no commit".to_string(), |n| format!("newest {n}"))
                        )),
                    ),
                },
            };
            // path -> (removed at, in version), for files removed and not added again since.
            let (removed, commits_read) = self.removed_files(name, &log, from).await?;
            report.tables.push(VacuumedTable {
                table: name,
                read_from_version: from,
                commits_read,
                record_ignored,
            });
            // The next run reads from the oldest commit whose removed files stay.
            let mut kept_from: Option<u64> = None;
            let snapshot = self.log.snapshot(table, None).await?;
            let active: HashSet<Path> = self
                .log
                .active_files(table, snapshot)
                .await?
                .into_iter()
                .filter_map(|f| data_object(name, &f.path))
                .collect();
            report.active += active.len() as u64;
            for (path, (removed_at_ms, version)) in removed {
                if active.contains(&path) {
                    // Removed, then added again: active. A later remove is in a later commit.
                    continue;
                }
                if removed_at_ms >= cutoff_ms {
                    report.kept_recent += 1;
                    kept_from = Some(kept_from.map_or(version, |k| k.min(version)));
                    continue;
                }
                let bytes = match self.store.head(&path).await {
                    Ok(meta) => meta.size,
                    Err(object_store::Error::NotFound { .. }) => {
                        report.already_deleted += 1;
                        continue;
                    }
                    Err(e) => return Err(LakeError::store(&path, e)),
                };
                report.deleted.push(VacuumedFile {
                    table: name,
                    path: path.to_string(),
                    removed_at_ms,
                    removed_in_version: version,
                    bytes,
                });
            }
            let read_from = kept_from.unwrap_or_else(|| newest.map_or(0, |n| n + 1));
            assert!(read_from >= from, "the record never moves back");
            next.read_from
                .insert(name.to_string(), read_from.to_string());
        }
        report.bytes_deleted = report.deleted.iter().map(|f| f.bytes).sum();
        report.checkpoint_bytes_deleted = report.checkpoints_deleted.iter().map(|c| c.bytes).sum();
        if !dry_run {
            use futures::{StreamExt, TryStreamExt};
            let store = &self.store;
            let data = report.deleted.iter().map(|f| f.path.as_str());
            let checkpoints = report.checkpoints_deleted.iter().map(|c| c.path.as_str());
            futures::stream::iter(data.chain(checkpoints).map(Path::from))
                .map(|path| async move {
                    match store.delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(e) => Err(LakeError::store(&path, e)),
                    }
                })
                .buffer_unordered(DELETES_IN_FLIGHT_MAX)
                .try_collect::<Vec<()>>()
                .await?;
            // Only once every delete succeeded: the record says everything before it is gone.
            let path = Path::from(VACUUM_RECORD_FILE);
            let bytes = serde_json::to_vec_pretty(&next).expect("the record serializes");
            self.store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| LakeError::store(&path, e))?;
            report.recorded = true;
        }
        Ok(report)
    }

    /// The files of `table` its log removed from version `from` on and did not add again, with
    /// the removal time (`deletionTimestamp`; a remove without one is never old enough) and
    /// version; and how many commits were read.
    async fn removed_files(
        &self,
        table: &str,
        log: &[object_store::ObjectMeta],
        from: u64,
    ) -> Result<(BTreeMap<Path, (i64, u64)>, u64), LakeError> {
        let mut versions: Vec<u64> = log
            .iter()
            .filter_map(|o| o.location.filename().and_then(commit_version))
            .filter(|&v| v >= from)
            .collect();
        versions.sort_unstable();
        let commits_read = versions.len() as u64;
        let mut removed = BTreeMap::new();
        for version in versions {
            let path = Path::from(format!("{table}/{LOG_DIR}/{version:020}.json"));
            let bytes = self.get(&path).await?;
            for line in bytes.split(|&b| b == b'\n') {
                let Ok(action) = serde_json::from_slice::<Action>(line) else {
                    continue;
                };
                if let Some(add) = action.add.and_then(|a| data_object(table, &a.path)) {
                    removed.remove(&add);
                }
                if let Some(r) = action.remove {
                    if let Some(object) = data_object(table, &r.path) {
                        // No deletion time: never old enough.
                        let at = r.deletion_timestamp.unwrap_or(i64::MAX);
                        removed.insert(object, (at, version));
                    }
                }
            }
        }
        Ok((removed, commits_read))
    }
}
