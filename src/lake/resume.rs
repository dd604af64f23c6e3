//! What an exporter session starts from, read from the lake's Delta logs alone (the `transfers`
//! log records the consumer position, the `swept_accounts` log where the account sweep
//! resumes): the last committed event, the sweep's position, and the orphans a crashed commit
//! left, from one snapshot of each table. No data file is read and no table's file list is
//! built (but after a crash between a segment's two commits), so a start reads the same number
//! of objects whatever the lake holds: the metadata file and, per table, `_last_checkpoint`,
//! one checkpoint and fewer than `CHECKPOINT_INTERVAL_COMMITS` commits.
//! Nothing about the lake's accounts is loaded: every segment records every account it
//! touches and readers deduplicate (see `lake::dedupe`).

use object_store::path::Path;

use super::layout::{self, Table};
use super::{Lake, LakeError, LakeMeta};

/// Where an exporter session starts (see `Lake::resume_state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeState {
    /// The lake's metadata; its cluster is the one the session exports.
    pub meta: LakeMeta,
    /// The last committed event timestamp (the `transfers` position): the session resumes
    /// after it (`None`: from the start).
    pub committed_last: Option<u64>,
    /// The creation timestamp of the newest account the sweep has read (the `swept_accounts`
    /// position): the next sweep pass starts after it (`None`: from the start).
    pub swept_through: Option<u64>,
    /// Accounts files without their transfers twin (left by a crash between the two commits of
    /// a segment), removed from the log before anything else.
    pub orphans_removed: Vec<Path>,
    /// The `transfers` table version the session starts from (0: only created; one more per
    /// commit).
    pub transfers_version: u64,
    /// Tables whose tombstone retention is unset (`None`: Delta's 7 days) or longer than
    /// `TOMBSTONE_RETENTION_WARN`: their checkpoints carry that much compaction history.
    pub long_tombstone_retention: Vec<(&'static str, Option<std::time::Duration>)>,
}

/// A position from the log as a timestamp (positions are written from timestamps below 2^63).
fn timestamp_of(position: Option<i64>) -> Option<u64> {
    position.map(|p| u64::try_from(p).unwrap_or(0))
}

impl Lake {
    /// Everything an exporter session starts from, with one read of the metadata file and one
    /// snapshot of each table, reading no data file and listing no table's files: binds the
    /// lake to `cluster_id` (refusing another cluster's lake and a format-1 lake), creates
    /// missing tables, and removes orphan accounts files from the log. An orphan exists only
    /// if the `accounts` position is past the `transfers` one (an accounts commit whose
    /// transfers commit never came); only then are the two tables' active files listed.
    pub async fn resume_state(&self, cluster_id: u128) -> Result<ResumeState, LakeError> {
        self.log.forget();
        self.tables_ready
            .store(false, std::sync::atomic::Ordering::Release);
        self.ensure_tables(cluster_id).await?;
        // Never between the two commits of a background compaction.
        let _writes = self.log.lock_writes().await;
        let meta = self.bind_cluster(cluster_id).await?;
        let position = |table| async move {
            Ok::<_, LakeError>(timestamp_of(
                self.log.known_position(table, cluster_id).await?,
            ))
        };
        let committed_last = position(Table::Transfers).await?;
        let accounts_last = position(Table::Accounts).await?;
        let swept_through = position(Table::SweptAccounts).await?;
        let orphans_removed = if accounts_last.unwrap_or(0) > committed_last.unwrap_or(0) {
            let listing = self.listing(&[Table::Transfers, Table::Accounts]).await?;
            let last_file = listing.segments().iter().map(|s| s.last_timestamp).max();
            if last_file != committed_last {
                return Err(LakeError::corrupt(
                    &layout::table_dir(Table::Transfers),
                    format!(
                        "the log's position is {committed_last:?} but its last data file ends \
                         at {last_file:?}"
                    ),
                ));
            }
            self.remove_orphans(&listing, cluster_id).await?
        } else {
            Vec::new()
        };
        let transfers_version = self.log.known_version(Table::Transfers, cluster_id).await?;
        let mut long_tombstone_retention = Vec::new();
        for table in [Table::Transfers, Table::Accounts, Table::SweptAccounts] {
            let retention = self.log.tombstone_retention(table).await?;
            if retention.is_none_or(|r| r > super::log::TOMBSTONE_RETENTION_WARN) {
                long_tombstone_retention.push((table.dir(), retention));
            }
        }
        Ok(ResumeState {
            long_tombstone_retention,
            meta,
            committed_last,
            swept_through,
            orphans_removed,
            transfers_version,
        })
    }

    /// The ids of every account recorded in a committed accounts file or a swept file, with
    /// their records merged (`lake::dedupe`): records of one id that disagree are an error.
    /// Test and benchmark API (it reads every accounts file): the exporter loads none.
    #[cfg(any(test, feature = "testbed"))]
    pub async fn load_account_ids(&self) -> Result<std::collections::HashSet<u128>, LakeError> {
        Ok(self
            .read_all_accounts()
            .await?
            .iter()
            .map(|a| a.id)
            .collect())
    }
}
