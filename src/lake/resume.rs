//! What an exporter session starts from, read from the lake itself (the `transfers` log records
//! the consumer position): the last committed event, every recorded account id, where the
//! account sweep resumes, and the orphans a crashed commit left, all from one snapshot of each
//! table.
//!
//! The accounts and swept files are read concurrently, at most
//! `ACCOUNT_FILE_READS_IN_FLIGHT_MAX` at a time, and only their two id columns: on an object
//! store each read is a few round trips, and a lake holds thousands of these files.

use std::collections::HashSet;

use ::parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;

use super::columns::{self, ACCOUNT_COLUMNS};
use super::layout::{self, Table};
use super::listing::Listing;
use super::{parquet, reader, AccountRecord, Lake, LakeError, LakeMeta};

/// Accounts or swept files read at the same time while loading account ids.
pub const ACCOUNT_FILE_READS_IN_FLIGHT_MAX: usize = 8;

/// Where an exporter session starts (see `Lake::resume_state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeState {
    /// The lake's metadata; its cluster is the one the session exports.
    pub meta: LakeMeta,
    /// The last committed event timestamp: the session resumes after it (`None`: from the start).
    pub committed_last: Option<u64>,
    /// Every account recorded in an accounts file or a swept file.
    pub account_ids: HashSet<u128>,
    /// The creation timestamp of the newest swept account: the next sweep pass starts after it
    /// (`None`: from the start).
    pub swept_through: Option<u64>,
    /// Accounts files without their transfers twin (left by a crash between the two commits of
    /// a segment), removed from the log before anything else.
    pub orphans_removed: Vec<Path>,
    /// Committed segments in the lake.
    pub segment_count: usize,
    /// Swept files in the lake.
    pub swept_file_count: usize,
}

impl Lake {
    /// Everything an exporter session starts from, with one read of the metadata file and one
    /// snapshot of each table: binds the lake to `cluster_id` (refusing another cluster's lake
    /// and a format-1 lake), creates missing tables, removes orphan accounts files from the log,
    /// and loads every recorded account id. An id recorded twice is an error, and so is a
    /// position that disagrees with the last committed file.
    pub async fn resume_state(&self, cluster_id: u128) -> Result<ResumeState, LakeError> {
        self.log.forget();
        self.tables_ready
            .store(false, std::sync::atomic::Ordering::Release);
        self.ensure_tables(cluster_id).await?;
        // Never between the two commits of a background compaction.
        let _writes = self.log.lock_writes().await;
        let meta = self.bind_cluster(cluster_id).await?;
        let listing = self.listing_all().await?;
        let orphans_removed = self.remove_orphans(&listing, cluster_id).await?;
        let account_ids = self.account_ids_of(&listing).await?;
        let segments = listing.segments();
        let swept = listing.swept();
        let committed_last = segments.iter().map(|s| s.last_timestamp).max();
        let position = self
            .log
            .known_position(Table::Transfers, cluster_id)
            .await?
            .map(|p| u64::try_from(p).unwrap_or(0));
        if position.unwrap_or(0) != committed_last.unwrap_or(0) {
            return Err(LakeError::corrupt(
                &layout::table_dir(Table::Transfers),
                format!(
                    "the log's position is {position:?} but its last data file ends at \
                     {committed_last:?}"
                ),
            ));
        }
        Ok(ResumeState {
            meta,
            committed_last,
            account_ids,
            swept_through: swept.iter().map(|f| f.last_timestamp).max(),
            orphans_removed,
            segment_count: segments.len(),
            swept_file_count: swept.len(),
        })
    }

    /// The ids of every account recorded in a committed accounts file or a swept file, reading
    /// only the two id columns of each file. An id recorded twice is an error.
    /// Test and benchmark API: the exporter reads all of this at once with `resume_state`.
    #[cfg(any(test, feature = "testbed"))]
    pub async fn load_account_ids(&self) -> Result<HashSet<u128>, LakeError> {
        let listing = self.listing_all().await?;
        self.account_ids_of(&listing).await
    }

    /// The account ids of the committed accounts files and swept files of `listing` (orphans
    /// are not committed and are skipped). Files are read concurrently but merged in a fixed
    /// order (swept files, then segments by time), so a duplicate is always reported against
    /// the same file.
    async fn account_ids_of(&self, listing: &Listing) -> Result<HashSet<u128>, LakeError> {
        let mut files: Vec<(Path, u64)> = listing
            .swept()
            .iter()
            .map(|f| (f.path.clone(), f.bytes))
            .collect();
        files.extend(
            listing
                .segments()
                .into_iter()
                .filter_map(|s| s.accounts_path.map(|p| (p, s.accounts_bytes))),
        );
        let mut reads = futures::stream::iter(files)
            .map(|(path, bytes)| async move {
                let ids = self.read_account_ids(&path, bytes).await?;
                Ok::<_, LakeError>((path, ids))
            })
            .buffered(ACCOUNT_FILE_READS_IN_FLIGHT_MAX);
        let mut all = HashSet::new();
        while let Some((path, ids)) = reads.try_next().await? {
            for id in ids {
                if !all.insert(id) {
                    return Err(LakeError::corrupt(
                        &path,
                        format!("account {id} was already recorded by another file"),
                    ));
                }
            }
        }
        Ok(all)
    }

    /// The ids of one accounts or swept file (both have the accounts columns).
    async fn read_account_ids(&self, path: &Path, size: u64) -> Result<Vec<u128>, LakeError> {
        let reader = reader::StoreReader::new(self.store.clone(), path.clone(), size);
        let builder = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .map_err(|e| LakeError::parquet(path, e))?;
        parquet::check_schema(&ACCOUNT_COLUMNS, builder.schema(), path)?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), ["id", "id_e38"]);
        let mut stream = builder
            .with_projection(mask)
            .build()
            .map_err(|e| LakeError::parquet(path, e))?;
        let mut ids = Vec::new();
        while let Some(batch) = stream
            .try_next()
            .await
            .map_err(|e| LakeError::parquet(path, e))?
        {
            let mut records: Vec<AccountRecord> = Vec::new();
            columns::from_batch(&ACCOUNT_COLUMNS[..1], &batch, &mut records)
                .map_err(|r| LakeError::corrupt(path, r))?;
            ids.extend(records.iter().map(|r| r.id));
        }
        Ok(ids)
    }
}
