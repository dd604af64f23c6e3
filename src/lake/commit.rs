//! The commit path: a sealed segment becomes an accounts data file committed to the `accounts`
//! log (if it has new accounts), then its transfers data file committed to the `transfers` log —
//! the commit point, which also records the consumer position. A retried commit finds the
//! position already covered and writes nothing.

use std::collections::HashSet;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use super::columns::timestamp_to_i64;
use super::layout::{self, Table};
use super::log::{self, AddFile, CommitRequest, Committed, Pins};
use super::parquet::{self, encode_accounts_file, encode_transfers_file, Encoded};
use super::{CommitOutcome, Lake, LakeError, Segment};

/// A data file ready to be written and committed.
pub(crate) struct Prepared {
    /// Relative to the lake root.
    pub path: Path,
    pub bytes: Vec<u8>,
    pub add: AddFile,
}

/// Names a data file by its range and digest and prepares its add action.
pub(crate) fn prepare(table: Table, first: u64, last: u64, encoded: Encoded) -> Prepared {
    let sha256 = log::sha256(&encoded.bytes);
    let (path, date) = match table {
        Table::SweptAccounts => (layout::swept_path(first, last, &sha256), None),
        _ => (
            layout::segment_path(table, first, last, &sha256),
            Some(crate::timefmt::date_partition(first)),
        ),
    };
    let add = AddFile {
        name: layout::file_name(first, last, &sha256),
        date,
        size: encoded.bytes.len() as u64,
        sha256,
        batch: encoded.batch,
    };
    Prepared {
        path,
        bytes: encoded.bytes,
        add,
    }
}

impl Lake {
    /// Commits a sealed segment. Panics (exporter bug) if the events are empty, not strictly
    /// increasing, or span two UTC dates, or if a new account lies outside the segment.
    pub async fn commit(
        &self,
        segment: &Segment,
        cluster_id: u128,
    ) -> Result<CommitOutcome, LakeError> {
        self.commit_segment(segment, cluster_id, true).await
    }

    /// Commits a segment whatever the tables' positions say, as a tampering or buggy writer
    /// could: for tests of what `verify` finds (overlaps, duplicates). Test API.
    #[cfg(any(test, feature = "testbed"))]
    pub async fn commit_ignoring_position(
        &self,
        segment: &Segment,
        cluster_id: u128,
    ) -> Result<CommitOutcome, LakeError> {
        self.commit_segment(segment, cluster_id, false).await
    }

    async fn commit_segment(
        &self,
        segment: &Segment,
        cluster_id: u128,
        check_position: bool,
    ) -> Result<CommitOutcome, LakeError> {
        let events = &segment.events;
        parquet::assert_segment_events(events);
        let first = events[0].timestamp;
        let last = events[events.len() - 1].timestamp;
        let mut ids = HashSet::new();
        for a in &segment.new_accounts {
            assert!(
                (first..=last).contains(&a.first_seen_timestamp),
                "account {} first seen at {} outside its segment {first}..={last}",
                a.id,
                a.first_seen_timestamp
            );
            assert!(ids.insert(a.id), "account {} listed twice as new", a.id);
        }
        let position = timestamp_to_i64(last);
        self.ensure_tables(cluster_id).await?;
        // The two commits of a segment never interleave with a compaction's.
        let _writes = self.log.lock_writes().await;
        // Checked first so that a retried commit writes nothing.
        let committed = self
            .log
            .known_position(Table::Transfers, cluster_id)
            .await?;
        if check_position && committed.is_some_and(|p| p >= position) {
            return Ok(CommitOutcome::AlreadyCommitted);
        }

        let mut bytes = 0;
        if !segment.new_accounts.is_empty() {
            let encoded = encode_accounts_file(&segment.new_accounts, cluster_id, first, last)?;
            let file = prepare(Table::Accounts, first, last, encoded);
            bytes += file.add.size;
            self.commit_file(
                Table::Accounts,
                file,
                position,
                cluster_id,
                check_position,
                None,
            )
            .await?;
        }
        let pins = Pins {
            accounts: self.log.known_version(Table::Accounts, cluster_id).await?,
            swept_accounts: self
                .log
                .known_version(Table::SweptAccounts, cluster_id)
                .await?,
        };
        let file = prepare(
            Table::Transfers,
            first,
            last,
            encode_transfers_file(events, cluster_id)?,
        );
        bytes += file.add.size;
        match self
            .commit_file(
                Table::Transfers,
                file,
                position,
                cluster_id,
                check_position,
                Some(pins),
            )
            .await?
        {
            Committed::Version(_) => Ok(CommitOutcome::Committed { bytes }),
            Committed::AlreadyCovered => Ok(CommitOutcome::AlreadyCommitted),
        }
    }

    /// Commits only the accounts half of a segment, as a crash between its two commits leaves
    /// it, and returns the path of the orphan. Test API.
    #[cfg(any(test, feature = "testbed"))]
    pub async fn commit_accounts_only(
        &self,
        segment: &Segment,
        cluster_id: u128,
    ) -> Result<Path, LakeError> {
        let events = &segment.events;
        parquet::assert_segment_events(events);
        let (first, last) = (events[0].timestamp, events[events.len() - 1].timestamp);
        self.ensure_tables(cluster_id).await?;
        let encoded = encode_accounts_file(&segment.new_accounts, cluster_id, first, last)?;
        let file = prepare(Table::Accounts, first, last, encoded);
        let path = file.path.clone();
        self.commit_file(
            Table::Accounts,
            file,
            timestamp_to_i64(last),
            cluster_id,
            true,
            None,
        )
        .await?;
        Ok(path)
    }

    /// Writes one data file and commits it with the table position `position` (skipped if the
    /// table already records it). The data file is written with a plain put: until the commit
    /// names it, it is not part of the lake, and a file of the same name has the same digest.
    pub(crate) async fn commit_file(
        &self,
        table: Table,
        file: Prepared,
        position: i64,
        cluster_id: u128,
        check_position: bool,
        pins: Option<Pins>,
    ) -> Result<Committed, LakeError> {
        if check_position
            && self
                .log
                .known_position(table, cluster_id)
                .await?
                .is_some_and(|p| p >= position)
        {
            return Ok(Committed::AlreadyCovered);
        }
        self.store
            .put(&file.path, PutPayload::from(file.bytes))
            .await
            .map_err(|e| LakeError::store(&file.path, e))?;
        let request = CommitRequest {
            table,
            adds: vec![file.add],
            removes: Vec::new(),
            position,
            skip_if_covered: check_position,
            pins,
        };
        self.log.commit(request, cluster_id).await
    }

    /// Binds the lake to `cluster_id` and creates the tables that do not exist yet (once per
    /// `Lake`).
    pub(crate) async fn ensure_tables(&self, cluster_id: u128) -> Result<(), LakeError> {
        assert!(
            self.as_of.is_none(),
            "a lake read at an earlier version is read-only"
        );
        if self.tables_ready.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        // One creator at a time: the exporter's commits and its background compactor share this
        // lake, and two tasks creating the same table would make the second fail.
        let _writes = self.log.lock_writes().await;
        if self.tables_ready.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        self.bind_cluster(cluster_id).await?;
        for table in [Table::Accounts, Table::Transfers, Table::SweptAccounts] {
            if !self.table_exists(table).await? {
                self.log.create(table, cluster_id).await?;
            }
        }
        self.tables_ready
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Whether the table has a log: its first commit exists, or, failing that, its
    /// `_last_checkpoint` does. A Delta writer with log retention (another engine's,
    /// `delta.logRetentionDuration`) deletes the commits before a checkpoint; the table is still
    /// there, read from that checkpoint, and must never be created again over it. (`verify`
    /// names the missing commits: the chain needs them all.)
    pub(crate) async fn table_exists(&self, table: Table) -> Result<bool, LakeError> {
        let first = layout::log_commit_path(table, 0);
        if self.exists(&first).await? {
            return Ok(true);
        }
        self.exists(&layout::last_checkpoint_path(table)).await
    }
}
