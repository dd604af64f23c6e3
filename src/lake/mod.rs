//! The lake: an immutable, create-only set of Parquet segment files on an object store, from
//! which every CDC event can be rebuilt exactly. The format is specified in schemas/lake.md.
//!
//! Commit protocol: a segment's accounts file is written first, then its transfers file; the
//! transfers file is the commit point. Both writes are create-only, so a retried commit can
//! never alter a committed segment, and an accounts file without its transfers twin (a crash
//! between the two writes) is not part of the lake until `remove_orphan_accounts` deletes it.
//! Accounts recorded by the exporter's account sweep are in their own table (`swept`).

mod audit_scan;
mod columns;
mod error;
mod layout;
mod meta;
mod parquet;
mod quarantine;
mod reader;
mod rows;
mod scan;
mod store;
mod swept;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ::parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::cdc::Event;
use columns::{ACCOUNT_COLUMNS, TRANSFER_COLUMNS};
use layout::{SegmentName, Table};

pub use audit_scan::{AuditedFileMeta, AuditedSegment};
pub use error::LakeError;
pub use meta::LakeMeta;
pub use parquet::{encode_accounts, encode_swept_accounts, encode_transfers, estimated_row_bytes};
pub use quarantine::{QuarantineInfo, Quarantined};
pub use rows::{AccountRecord, AccountState, EventRow};
pub use swept::SweptInfo;

/// The lake format this code writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The sealed contents of one segment, as the exporter hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub events: Vec<Event>,
    pub new_accounts: Vec<AccountRecord>,
}

/// Rows in one segment (see `Lake::segment_counts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentCounts {
    pub events: u64,
    pub accounts: u64,
}

/// A committed segment. Paths are relative to the lake root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub date: String,
    pub first_timestamp: u64,
    pub last_timestamp: u64,
    pub transfers_path: Path,
    pub accounts_path: Option<Path>,
    pub transfers_bytes: u64,
    pub accounts_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Written now; `bytes` is the size of the transfers and accounts files together.
    Committed { bytes: u64 },
    /// The transfers file of this segment already existed: it was committed before.
    AlreadyCommitted,
}

/// An open lake. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Lake {
    /// Rooted at the lake: every path below is relative to the lake root.
    store: Arc<dyn ObjectStore>,
    location: String,
}

impl Lake {
    /// Opens the lake at `location`: a directory (plain path or `file:///dir`, created if
    /// missing), `s3://bucket/prefix` (configured from the `AWS_*` environment, including
    /// `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` for S3-compatible servers), `memory://` (a
    /// fresh in-memory lake), or any other URL `object_store` understands.
    pub async fn open(location: &str) -> Result<Lake, LakeError> {
        let opened = store::open_store(location)?;
        Ok(Lake::from_store(opened.store, opened.display))
    }

    /// A lake over an already-built store, rooted at the lake (`location` is for display and
    /// must not contain secrets).
    pub fn from_store(store: Arc<dyn ObjectStore>, location: impl Into<String>) -> Lake {
        Lake {
            store,
            location: location.into(),
        }
    }

    /// Where the lake is, for display: never contains credentials or a query string.
    pub fn location(&self) -> &str {
        &self.location
    }

    async fn list(&self, dir: &Path) -> Result<Vec<ObjectMeta>, LakeError> {
        self.store
            .list(Some(dir))
            .try_collect()
            .await
            .map_err(|e| LakeError::store(dir, e))
    }

    async fn get(&self, path: &Path) -> Result<Bytes, LakeError> {
        let result = self
            .store
            .get(path)
            .await
            .map_err(|e| LakeError::store(path, e))?;
        result.bytes().await.map_err(|e| LakeError::store(path, e))
    }

    /// Create-only put: `Ok(false)` if the object already exists.
    async fn put_create(&self, path: &Path, bytes: Vec<u8>) -> Result<bool, LakeError> {
        let opts = PutOptions::from(PutMode::Create);
        match self
            .store
            .put_opts(path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(LakeError::store(path, e)),
        }
    }

    async fn exists(&self, path: &Path) -> Result<bool, LakeError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(LakeError::store(path, e)),
        }
    }

    /// The lake metadata, or `None` for a lake never bound to a cluster.
    pub async fn read_meta(&self) -> Result<Option<LakeMeta>, LakeError> {
        let path = layout::meta_path();
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| LakeError::store(&path, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(LakeError::store(&path, e)),
        };
        let meta = meta::from_json(&bytes).map_err(|r| LakeError::corrupt(&path, r))?;
        if meta.format_version > FORMAT_VERSION {
            return Err(LakeError::UnsupportedFormat {
                found: meta.format_version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(Some(meta))
    }

    /// Binds the lake to `cluster_id`, creating the metadata file if absent; refuses a lake
    /// that belongs to another cluster.
    pub async fn bind_cluster(&self, cluster_id: u128) -> Result<LakeMeta, LakeError> {
        let meta = match self.read_meta().await? {
            Some(meta) => meta,
            None => {
                let new = meta::new_meta(cluster_id);
                if self
                    .put_create(&layout::meta_path(), meta::to_json(&new))
                    .await?
                {
                    new
                } else {
                    // Another process bound it between our read and our write.
                    self.read_meta().await?.ok_or_else(|| {
                        LakeError::corrupt(&layout::meta_path(), "exists but cannot be read")
                    })?
                }
            }
        };
        if meta.cluster_id != cluster_id {
            return Err(LakeError::ClusterMismatch {
                lake: meta.cluster_id,
                requested: cluster_id,
            });
        }
        Ok(meta)
    }

    /// Every segment file of `table`, parsed; a name outside the layout is an error.
    async fn list_table(&self, table: Table) -> Result<Vec<(SegmentName, ObjectMeta)>, LakeError> {
        let objects = self.list(&layout::table_dir(table)).await?;
        objects
            .into_iter()
            .map(|o| match layout::parse_segment_path(table, &o.location) {
                Some(name) => Ok((name, o)),
                None => Err(LakeError::BadObjectName {
                    path: o.location.to_string(),
                }),
            })
            .collect()
    }

    /// The committed segments (one per transfers file), sorted by first timestamp.
    pub async fn list_segments(&self) -> Result<Vec<SegmentInfo>, LakeError> {
        let accounts: HashMap<Path, u64> = self
            .list_table(Table::Accounts)
            .await?
            .into_iter()
            .map(|(_, o)| (o.location, o.size))
            .collect();
        let mut segments: Vec<SegmentInfo> = self
            .list_table(Table::Transfers)
            .await?
            .into_iter()
            .map(|(name, o)| {
                let twin = layout::accounts_twin(&name);
                let accounts_bytes = accounts.get(&twin).copied();
                SegmentInfo {
                    date: name.date,
                    first_timestamp: name.first_timestamp,
                    last_timestamp: name.last_timestamp,
                    transfers_path: o.location,
                    accounts_path: accounts_bytes.map(|_| twin),
                    transfers_bytes: o.size,
                    accounts_bytes: accounts_bytes.unwrap_or(0),
                }
            })
            .collect();
        segments.sort_by_key(|s| (s.first_timestamp, s.last_timestamp));
        Ok(segments)
    }

    /// The last event timestamp of the lake: the exporter resumes after it.
    pub async fn last_committed_timestamp(&self) -> Result<Option<u64>, LakeError> {
        let segments = self.list_segments().await?;
        Ok(segments.iter().map(|s| s.last_timestamp).max())
    }

    /// Deletes accounts files whose transfers twin does not exist (left by a crash between
    /// the two writes of a commit). Run by the exporter on start, before it commits anything.
    pub async fn remove_orphan_accounts(&self) -> Result<Vec<Path>, LakeError> {
        let transfers: HashSet<Path> = self
            .list_table(Table::Transfers)
            .await?
            .into_iter()
            .map(|(_, o)| o.location)
            .collect();
        let mut removed = Vec::new();
        for (name, o) in self.list_table(Table::Accounts).await? {
            let twin =
                layout::segment_path(Table::Transfers, name.first_timestamp, name.last_timestamp);
            if !transfers.contains(&twin) {
                self.store
                    .delete(&o.location)
                    .await
                    .map_err(|e| LakeError::store(&o.location, e))?;
                removed.push(o.location);
            }
        }
        Ok(removed)
    }

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

    /// The ids of every account recorded in a committed accounts file or a swept file, reading
    /// only the two id columns of each file. An id recorded twice is an error.
    pub async fn load_account_ids(&self) -> Result<HashSet<u128>, LakeError> {
        let mut files: Vec<(Path, u64)> = self
            .list_swept()
            .await?
            .into_iter()
            .map(|f| (f.path, f.bytes))
            .collect();
        for seg in self.list_segments().await? {
            if let Some(path) = seg.accounts_path {
                files.push((path, seg.accounts_bytes));
            }
        }
        let mut ids = HashSet::new();
        for (path, bytes) in &files {
            for id in self.read_account_ids(path, *bytes).await? {
                if !ids.insert(id) {
                    return Err(LakeError::corrupt(
                        path,
                        format!("account {id} was already recorded by another file"),
                    ));
                }
            }
        }
        Ok(ids)
    }

    /// The ids of one accounts or swept file (both have the accounts columns).
    async fn read_account_ids(&self, path: &Path, size: u64) -> Result<Vec<u128>, LakeError> {
        let reader = reader::StoreReader::new(self.store.clone(), path.clone(), size);
        let builder = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .map_err(|e| LakeError::parquet(path, e))?;
        parquet::check_schema(&ACCOUNT_COLUMNS, builder.schema(), path)?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), ["id_hi", "id_lo"]);
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

    /// Commits a sealed segment. Panics (exporter bug) if the events are empty, not strictly
    /// increasing, or span two UTC dates, or if a new account lies outside the segment.
    pub async fn commit(
        &self,
        segment: &Segment,
        cluster_id: u128,
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

        let transfers_path = layout::segment_path(Table::Transfers, first, last);
        // Checked first so that a retried commit never touches a committed segment's files.
        if self.exists(&transfers_path).await? {
            return Ok(CommitOutcome::AlreadyCommitted);
        }
        let transfers = encode_transfers(events, cluster_id)?;
        let mut bytes = transfers.len() as u64;
        if !segment.new_accounts.is_empty() {
            let accounts_path = layout::segment_path(Table::Accounts, first, last);
            let accounts = encode_accounts(&segment.new_accounts, cluster_id, first, last)?;
            bytes += accounts.len() as u64;
            if !self.put_create(&accounts_path, accounts.clone()).await? {
                // An orphan from a crashed commit of this same segment: it is not part of the
                // lake (no transfers twin), so it is replaced.
                self.store
                    .delete(&accounts_path)
                    .await
                    .map_err(|e| LakeError::store(&accounts_path, e))?;
                if !self.put_create(&accounts_path, accounts).await? {
                    return Err(LakeError::corrupt(
                        &accounts_path,
                        "re-created while being replaced: is a second exporter writing this lake?",
                    ));
                }
            }
        }
        if self.put_create(&transfers_path, transfers).await? {
            Ok(CommitOutcome::Committed { bytes })
        } else {
            Ok(CommitOutcome::AlreadyCommitted)
        }
    }

    /// Stores an undecodable message under `quarantine/`; returns its path.
    pub async fn quarantine(&self, q: &Quarantined) -> Result<Path, LakeError> {
        let json = quarantine::to_json(q);
        for seq in 0..layout::QUARANTINE_SEQ_LIMIT {
            let path = layout::quarantine_path(q.received_ns, seq);
            if self.put_create(&path, json.clone()).await? {
                return Ok(path);
            }
        }
        Err(LakeError::corrupt(
            &layout::quarantine_path(q.received_ns, 0),
            "a million messages quarantined with the same receive time",
        ))
    }

    /// Every quarantined message, oldest first.
    pub async fn list_quarantine(&self) -> Result<Vec<QuarantineInfo>, LakeError> {
        let mut objects = self.list(&layout::quarantine_dir()).await?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        let mut out = Vec::with_capacity(objects.len());
        for o in objects {
            let Some((received_ns, _seq)) = layout::parse_quarantine_path(&o.location) else {
                return Err(LakeError::BadObjectName {
                    path: o.location.to_string(),
                });
            };
            let q = self.read_quarantined(&o.location).await?;
            out.push(QuarantineInfo {
                path: o.location,
                received_ns,
                bytes: o.size,
                reason: q.reason,
            });
        }
        Ok(out)
    }

    /// One quarantined message, as it was stored.
    pub async fn read_quarantined(&self, path: &Path) -> Result<Quarantined, LakeError> {
        let bytes = self.get(path).await?;
        quarantine::from_json(&bytes).map_err(|r| LakeError::corrupt(path, r))
    }

    async fn read_events_checked(
        &self,
        seg: &SegmentInfo,
    ) -> Result<(parquet::FileMeta, Vec<EventRow>), LakeError> {
        let path = &seg.transfers_path;
        let bytes = self.get(path).await?;
        let (meta, rows) = parquet::decode(&TRANSFER_COLUMNS, Table::Transfers, bytes, path)?;
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

    async fn read_accounts_checked(
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
    pub async fn read_events(&self, seg: &SegmentInfo) -> Result<Vec<EventRow>, LakeError> {
        Ok(self.read_events_checked(seg).await?.1)
    }

    /// The accounts first seen in a segment (empty if it has no accounts file).
    pub async fn read_accounts(&self, seg: &SegmentInfo) -> Result<Vec<AccountRecord>, LakeError> {
        Ok(self
            .read_accounts_checked(seg)
            .await?
            .map(|(_, r)| r)
            .unwrap_or_default())
    }

    /// Rebuilds every event of the lake exactly, in timestamp order, with every account record:
    /// the swept ones first (in creation order), then the others in order of first appearance.
    /// Checks that segments do not overlap, that every file belongs to the lake's cluster, that
    /// no account is recorded twice (in either table), and that every event's accounts were
    /// recorded no later than the event.
    pub async fn read_all(&self) -> Result<(Vec<Event>, Vec<AccountRecord>), LakeError> {
        let lake_cluster = self.read_meta().await?.map(|m| m.cluster_id);
        let segments = self.list_segments().await?;
        let mut events = Vec::new();
        let mut records: Vec<AccountRecord> = self.read_all_swept(lake_cluster).await?;
        let mut by_id: HashMap<u128, usize> = HashMap::new();
        for (i, a) in records.iter().enumerate() {
            if by_id.insert(a.id, i).is_some() {
                return Err(LakeError::corrupt(
                    &layout::swept_dir(),
                    format!("account {} is swept twice", a.id),
                ));
            }
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
                    if by_id.insert(a.id, records.len()).is_some() {
                        return Err(LakeError::corrupt(
                            path,
                            format!(
                                "account {} was already recorded by an earlier segment or a sweep",
                                a.id
                            ),
                        ));
                    }
                    records.push(a);
                }
            }
            for row in rows {
                let lookup =
                    |id: u128| -> Result<&AccountRecord, LakeError> {
                        let record = by_id.get(&id).map(|&i| &records[i]).ok_or(
                            LakeError::MissingAccount {
                                account_id: id,
                                event_timestamp: row.timestamp,
                            },
                        )?;
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
        Ok((events, records))
    }
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

fn check_cluster(
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
