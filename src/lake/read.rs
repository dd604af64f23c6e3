//! Reading committed segments back: whole files decoded and checked against their names (schema,
//! `ledgerlake.*` metadata, row order), and row counts from the Parquet footers alone.

use object_store::path::Path;

use super::columns::{ACCOUNT_COLUMNS, TRANSFER_COLUMNS};
#[cfg(any(test, feature = "testbed"))]
use super::layout;
use super::layout::Table;
#[cfg(any(test, feature = "testbed"))]
use super::AccountBook;
use super::{
    parquet, reader, AccountRecord, EventRow, Lake, LakeError, SegmentCounts, SegmentInfo,
};
#[cfg(any(test, feature = "testbed"))]
use crate::cdc::Event;

impl Lake {
    /// Rows in a segment's transfers file and its accounts file, from the Parquet footers alone.
    pub async fn segment_counts(&self, seg: &SegmentInfo) -> Result<SegmentCounts, LakeError> {
        let events = self
            .footer_row_count(&seg.transfers_path, seg.transfers_bytes)
            .await?;
        let accounts = match &seg.accounts_path {
            Some(path) => self.footer_row_count(path, seg.accounts_bytes).await?,
            None => 0,
        };
        Ok(SegmentCounts { events, accounts })
    }

    /// Rows in any lake file, from its Parquet footer alone.
    pub async fn footer_rows(&self, path: &Path, size: u64) -> Result<u64, LakeError> {
        self.footer_row_count(path, size).await
    }

    async fn footer_row_count(&self, path: &Path, size: u64) -> Result<u64, LakeError> {
        use ::parquet::arrow::async_reader::AsyncFileReader;
        let mut reader = reader::StoreReader::new(self.store.clone(), path.clone(), size);
        let metadata = reader
            .get_metadata(None)
            .await
            .map_err(|e| LakeError::parquet(path, e))?;
        u64::try_from(metadata.file_metadata().num_rows())
            .map_err(|_| LakeError::corrupt(path, "negative row count in the footer".to_string()))
    }

    pub(crate) async fn read_events_checked(
        &self,
        seg: &SegmentInfo,
    ) -> Result<(parquet::FileMeta, Vec<EventRow>), LakeError> {
        self.read_events_projected(seg, None).await
    }

    /// [`Lake::read_events_checked`], decoding only the columns named in `keep`.
    pub(crate) async fn read_events_projected(
        &self,
        seg: &SegmentInfo,
        keep: Option<&[&str]>,
    ) -> Result<(parquet::FileMeta, Vec<EventRow>), LakeError> {
        let path = &seg.transfers_path;
        let bytes = self.get(path).await?;
        let (meta, rows) =
            parquet::decode_projected(&TRANSFER_COLUMNS, keep, Table::Transfers, bytes, path)?;
        check_range(&meta, seg, path)?;
        let first_last = rows
            .first()
            .zip(rows.last())
            .map(|(f, l)| (f.timestamp, l.timestamp));
        if first_last != Some((seg.first_timestamp, seg.last_timestamp)) {
            return Err(LakeError::corrupt(
                path,
                format!("its rows span {first_last:?}, not what its name says"),
            ));
        }
        if let Some(w) = rows.windows(2).find(|w| w[0].timestamp >= w[1].timestamp) {
            return Err(LakeError::corrupt(
                path,
                format!("timestamp {} follows {}", w[1].timestamp, w[0].timestamp),
            ));
        }
        Ok((meta, rows))
    }

    pub(crate) async fn read_accounts_checked(
        &self,
        seg: &SegmentInfo,
    ) -> Result<Option<(parquet::FileMeta, Vec<AccountRecord>)>, LakeError> {
        let Some(path) = &seg.accounts_path else {
            return Ok(None);
        };
        let bytes = self.get(path).await?;
        let (meta, rows) = parquet::decode(&ACCOUNT_COLUMNS, Table::Accounts, bytes, path)?;
        check_range(&meta, seg, path)?;
        if let Some(a) = rows
            .iter()
            .find(|a| !(seg.first_timestamp..=seg.last_timestamp).contains(&a.first_seen_timestamp))
        {
            return Err(LakeError::corrupt(
                path,
                format!(
                    "account {} first seen at {}, outside the segment",
                    a.id, a.first_seen_timestamp
                ),
            ));
        }
        Ok(Some((meta, rows)))
    }

    /// Every row of a segment's transfers file, checked against the file's name.
    #[cfg(any(test, feature = "testbed"))]
    pub async fn read_events(&self, seg: &SegmentInfo) -> Result<Vec<EventRow>, LakeError> {
        Ok(self.read_events_checked(seg).await?.1)
    }

    /// The accounts first seen in a segment (empty if it has no accounts file).
    #[cfg(any(test, feature = "testbed"))]
    pub async fn read_accounts(&self, seg: &SegmentInfo) -> Result<Vec<AccountRecord>, LakeError> {
        Ok(self
            .read_accounts_checked(seg)
            .await?
            .map(|(_, r)| r)
            .unwrap_or_default())
    }

    /// Every account of the lake, one record per id merged by `lake::dedupe`'s rule (first
    /// seen wins; records that disagree are an error naming the later file), swept files
    /// first, then the segments in time order. Reads every accounts file: for tests and demos.
    #[cfg(any(test, feature = "testbed"))]
    pub async fn read_all_accounts(&self) -> Result<Vec<AccountRecord>, LakeError> {
        let lake_cluster = self.read_meta().await?.map(|m| m.cluster_id);
        let mut book = AccountBook::default();
        for file in self.list_swept().await? {
            for a in self.read_swept(&file, lake_cluster).await? {
                merge(&mut book, a, &file.path)?;
            }
        }
        for seg in self.list_segments().await? {
            if let Some((meta, accounts)) = self.read_accounts_checked(&seg).await? {
                let path = seg.accounts_path.as_ref().expect("read only if present");
                check_cluster(&meta, lake_cluster, path)?;
                for a in accounts {
                    merge(&mut book, a, path)?;
                }
            }
        }
        Ok(book.into_records())
    }

    /// Rebuilds every event of the lake exactly, in timestamp order, with every account record
    /// (one per id, merged by `lake::dedupe`'s rule): the swept ones first (in creation order),
    /// then the others in order of first appearance. Checks that segments do not overlap, that
    /// every file belongs to the lake's cluster, that the records of an account agree (in
    /// either table), and that every event's accounts were recorded no later than the event.
    /// Holds the whole lake in memory: for tests and demos.
    #[cfg(any(test, feature = "testbed"))]
    pub async fn read_all(&self) -> Result<(Vec<Event>, Vec<AccountRecord>), LakeError> {
        let lake_cluster = self.read_meta().await?.map(|m| m.cluster_id);
        let segments = self.list_segments().await?;
        let mut events = Vec::new();
        let mut book = AccountBook::default();
        for a in self.read_all_swept(lake_cluster).await? {
            merge(&mut book, a, &layout::table_dir(Table::SweptAccounts))?;
        }
        let mut previous: Option<&SegmentInfo> = None;
        for seg in &segments {
            if let Some(p) = previous.filter(|p| p.last_timestamp >= seg.first_timestamp) {
                return Err(LakeError::corrupt(
                    &seg.transfers_path,
                    format!("overlaps {}", p.transfers_path),
                ));
            }
            previous = Some(seg);

            let (meta, rows) = self.read_events_checked(seg).await?;
            check_cluster(&meta, lake_cluster, &seg.transfers_path)?;
            if let Some((meta, accounts)) = self.read_accounts_checked(seg).await? {
                let path = seg.accounts_path.as_ref().expect("read only if present");
                check_cluster(&meta, lake_cluster, path)?;
                for a in accounts {
                    merge(&mut book, a, path)?;
                }
            }
            for row in rows {
                let lookup = |id: u128| -> Result<&AccountRecord, LakeError> {
                    let record = book.get(id).ok_or(LakeError::MissingAccount {
                        account_id: id,
                        event_timestamp: row.timestamp,
                    })?;
                    if record.first_seen_timestamp > row.timestamp {
                        return Err(LakeError::corrupt(
                            &seg.transfers_path,
                            format!(
                                "the event at {} uses account {id}, first seen later at {}",
                                row.timestamp, record.first_seen_timestamp
                            ),
                        ));
                    }
                    Ok(record)
                };
                let debit = lookup(row.debit_account.id)?;
                let credit = lookup(row.credit_account.id)?;
                events.push(row.to_event(debit, credit));
            }
        }
        Ok((events, book.into_records()))
    }
}

/// Merges one record read from `path`; a disagreement names that file.
#[cfg(any(test, feature = "testbed"))]
fn merge(book: &mut AccountBook, record: AccountRecord, path: &Path) -> Result<(), LakeError> {
    book.insert(record)
        .map(|_| ())
        .map_err(|e| LakeError::corrupt(path, e.to_string()))
}

/// A file's `ledgerlake.*` range must match the range in its name.
fn check_range(meta: &parquet::FileMeta, seg: &SegmentInfo, path: &Path) -> Result<(), LakeError> {
    if (meta.first_timestamp, meta.last_timestamp) != (seg.first_timestamp, seg.last_timestamp) {
        return Err(LakeError::corrupt(
            path,
            format!(
                "its metadata says {}..={}, its name {}..={}",
                meta.first_timestamp, meta.last_timestamp, seg.first_timestamp, seg.last_timestamp
            ),
        ));
    }
    Ok(())
}

/// A file must belong to the lake's cluster, if the lake has one.
pub(crate) fn check_cluster(
    meta: &parquet::FileMeta,
    lake: Option<u128>,
    path: &Path,
) -> Result<(), LakeError> {
    match lake {
        Some(lake) if lake != meta.cluster_id => Err(LakeError::corrupt(
            path,
            format!(
                "written for cluster {}, the lake is cluster {lake}",
                meta.cluster_id
            ),
        )),
        _ => Ok(()),
    }
}
