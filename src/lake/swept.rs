//! The `swept_accounts` table: accounts recorded by the exporter's account sweep of the source
//! cluster rather than from a CDC event — those no transfer had touched when the sweep read them
//! (no transfer yet, or only rejected ones).
//!
//! One file per sweep page that found such accounts, named by the creation timestamps of its
//! first and last account and committed to the `swept_accounts` log in one commit that also
//! records where the sweep resumes (the creation timestamp of the page's last account, recorded
//! or not; a page with nothing to record commits that position alone): a swept file is
//! committed or absent, so it needs no twin and leaves no orphan, and the exporter finds where
//! to resume in the log without reading a data file. An account may also be recorded by the
//! segments whose events use it later: readers keep its first record (see
//! `lake::dedupe` and docs/DESIGN.md).

use object_store::path::Path;

use super::columns::{timestamp_to_i64, ACCOUNT_COLUMNS};
use super::commit::prepare;
use super::layout::Table;
use super::log::{CommitRequest, Committed};
use super::parquet::{self, FileMeta};
use super::read::check_cluster;
use super::{AccountRecord, CommitOutcome, Lake, LakeError};

/// A committed swept file. The path is relative to the lake root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweptInfo {
    /// Creation timestamp of its first account.
    pub first_timestamp: u64,
    /// Creation timestamp of its last account.
    pub last_timestamp: u64,
    pub path: Path,
    pub bytes: u64,
}

/// Asserts what a swept page must satisfy; these are exporter bugs, not data errors.
fn assert_swept(accounts: &[AccountRecord], through: u64) {
    for w in accounts.windows(2) {
        assert!(
            w[0].timestamp < w[1].timestamp,
            "swept accounts must be in creation order: {} then {}",
            w[0].timestamp,
            w[1].timestamp
        );
    }
    for a in accounts {
        assert_eq!(
            a.first_seen_timestamp, a.timestamp,
            "a swept account is recorded as of its creation"
        );
    }
    if let Some(last) = accounts.last() {
        assert!(
            last.timestamp <= through,
            "the sweep resumes after every account it records"
        );
    }
}

impl Lake {
    /// Commits one sweep page: its accounts (creation order, `first_seen_timestamp` = creation
    /// timestamp), if any, in one swept file, and the sweep's position `through` (the creation
    /// timestamp of the page's last account). A retry of a commit that succeeded finds the
    /// position covered and reports `AlreadyCommitted`. Panics (exporter bug) on an unordered
    /// page or one that ends after `through`.
    pub async fn commit_swept(
        &self,
        accounts: &[AccountRecord],
        through: u64,
        cluster_id: u128,
    ) -> Result<CommitOutcome, LakeError> {
        assert_swept(accounts, through);
        self.ensure_tables(cluster_id).await?;
        let position = timestamp_to_i64(through);
        let (committed, size) = match (accounts.first(), accounts.last()) {
            (Some(first), Some(last)) => {
                let encoded = parquet::encode_swept_accounts(accounts, cluster_id)?;
                let file = prepare(
                    Table::SweptAccounts,
                    first.timestamp,
                    last.timestamp,
                    encoded,
                );
                let size = file.add.size;
                let committed = self
                    .commit_file(Table::SweptAccounts, file, position, cluster_id, true, None)
                    .await?;
                (committed, size)
            }
            _ => {
                let request = CommitRequest {
                    table: Table::SweptAccounts,
                    adds: Vec::new(),
                    removes: Vec::new(),
                    position,
                    skip_if_covered: true,
                    pins: None,
                };
                (self.log.commit(request, cluster_id).await?, 0)
            }
        };
        match committed {
            Committed::Version(_) => Ok(CommitOutcome::Committed { bytes: size }),
            Committed::AlreadyCovered => Ok(CommitOutcome::AlreadyCommitted),
        }
    }

    /// A swept file's rows, checked against its name: schema, metadata, creation order within
    /// the named range, `first_seen_timestamp` equal to the creation timestamp.
    pub(crate) async fn read_swept_checked(
        &self,
        file: &SweptInfo,
    ) -> Result<(FileMeta, Vec<AccountRecord>), LakeError> {
        let path = &file.path;
        let bytes = self.get(path).await?;
        let (meta, rows) = parquet::decode(&ACCOUNT_COLUMNS, Table::SweptAccounts, bytes, path)?;
        if (meta.first_timestamp, meta.last_timestamp)
            != (file.first_timestamp, file.last_timestamp)
        {
            return Err(LakeError::corrupt(
                path,
                format!(
                    "its metadata says {}..={}, its name {}..={}",
                    meta.first_timestamp,
                    meta.last_timestamp,
                    file.first_timestamp,
                    file.last_timestamp
                ),
            ));
        }
        let first_last = rows
            .first()
            .zip(rows.last())
            .map(|(f, l)| (f.timestamp, l.timestamp));
        if first_last != Some((file.first_timestamp, file.last_timestamp)) {
            return Err(LakeError::corrupt(
                path,
                format!("its accounts span {first_last:?}, not what its name says"),
            ));
        }
        if let Some(w) = rows.windows(2).find(|w| w[0].timestamp >= w[1].timestamp) {
            return Err(LakeError::corrupt(
                path,
                format!(
                    "account timestamp {} follows {}",
                    w[1].timestamp, w[0].timestamp
                ),
            ));
        }
        if let Some(a) = rows.iter().find(|a| a.first_seen_timestamp != a.timestamp) {
            return Err(LakeError::corrupt(
                path,
                format!(
                    "account {} has first_seen_timestamp {}, not its creation timestamp {}",
                    a.id, a.first_seen_timestamp, a.timestamp
                ),
            ));
        }
        Ok((meta, rows))
    }

    /// The accounts of one swept file; the file must belong to `cluster_id` if one is given.
    pub async fn read_swept(
        &self,
        file: &SweptInfo,
        cluster_id: Option<u128>,
    ) -> Result<Vec<AccountRecord>, LakeError> {
        let (meta, rows) = self.read_swept_checked(file).await?;
        check_cluster(&meta, cluster_id, &file.path)?;
        Ok(rows)
    }

    /// Every swept account, in creation order. Swept files never overlap: each sweep resumes
    /// after the newest swept account.
    pub async fn read_all_swept(
        &self,
        cluster_id: Option<u128>,
    ) -> Result<Vec<AccountRecord>, LakeError> {
        let files = self.list_swept().await?;
        check_swept_overlaps(&files)?;
        let mut all = Vec::new();
        for file in &files {
            all.extend(self.read_swept(file, cluster_id).await?);
        }
        Ok(all)
    }
}

/// Sorted swept files must each start after the previous one ends.
pub(crate) fn check_swept_overlaps(files: &[SweptInfo]) -> Result<(), LakeError> {
    match files
        .windows(2)
        .find(|w| w[0].last_timestamp >= w[1].first_timestamp)
    {
        Some(w) => Err(LakeError::corrupt(
            &w[1].path,
            format!("overlaps {}", w[0].path),
        )),
        None => Ok(()),
    }
}
