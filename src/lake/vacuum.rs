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

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use object_store::path::Path;
use object_store::ObjectStoreExt;
use serde::Deserialize;

use super::chain::{data_object, CHAIN_TABLES, LOG_DIR};
use super::layout::Table;
use super::{Lake, LakeError};

/// Data files deleted at once.
pub const DELETES_IN_FLIGHT_MAX: usize = 8;

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

impl Lake {
    /// Deletes (with `dry_run`, only lists) every data file removed from its table more than
    /// `retain` before `now_ms`. A lake read at an earlier version cannot be vacuumed.
    pub async fn vacuum(
        &self,
        retain: Duration,
        dry_run: bool,
        now_ms: i64,
    ) -> Result<VacuumReport, LakeError> {
        assert!(self.as_of.is_none(), "vacuum the latest lake");
        let retain_ms = u64::try_from(retain.as_millis()).unwrap_or(u64::MAX);
        let cutoff_ms = now_ms.saturating_sub(i64::try_from(retain_ms).unwrap_or(i64::MAX));
        let mut report = VacuumReport {
            dry_run,
            retain_ms,
            ..VacuumReport::default()
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
            // path -> (removed at, in version), for files removed and not added again since.
            let removed = self.removed_files(name, &log).await?;
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
                    continue; // removed, then added again: active
                }
                if removed_at_ms >= cutoff_ms {
                    report.kept_recent += 1;
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
        }
        Ok(report)
    }

    /// The files of `table` its log removed and did not add again, with the removal time
    /// (`deletionTimestamp`; a remove without one is never old enough) and version.
    async fn removed_files(
        &self,
        table: &str,
        log: &[object_store::ObjectMeta],
    ) -> Result<BTreeMap<Path, (i64, u64)>, LakeError> {
        let mut versions: Vec<u64> = log
            .iter()
            .filter_map(|o| o.location.filename().and_then(commit_version))
            .collect();
        versions.sort_unstable();
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
        Ok(removed)
    }
}
