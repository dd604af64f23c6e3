//! Reading format-1 files back with every check the format-1 readers made: schema and
//! `ledgerlake.*` metadata against the file's name, row order, the cluster, first-seen
//! timestamps inside their segment, swept accounts recorded as of their creation.

#[cfg(any(test, feature = "testbed"))]
use std::collections::HashMap;

use object_store::path::Path;

use super::columns::{ACCOUNT_COLUMNS, TRANSFER_COLUMNS};
use super::layout::Table;
use super::parquet::{self, FileMeta};
use super::{Format1Error, Format1Lake, Format1Segment, Format1Swept};
#[cfg(any(test, feature = "testbed"))]
use crate::cdc::Event;
use crate::lake::{AccountRecord, EventRow};

impl Format1Lake {
    /// Every row of a segment's transfers file, checked against its name; the file must belong
    /// to `cluster_id`.
    pub async fn read_events(
        &self,
        seg: &Format1Segment,
        cluster_id: u128,
    ) -> Result<Vec<EventRow>, Format1Error> {
        let path = &seg.transfers_path;
        let bytes = self.get(path).await?;
        let (meta, rows) = parquet::decode(&TRANSFER_COLUMNS, Table::Transfers, bytes, path)?;
        check_meta(
            &meta,
            cluster_id,
            (seg.first_timestamp, seg.last_timestamp),
            path,
        )?;
        let first_last = rows
            .first()
            .zip(rows.last())
            .map(|(f, l)| (f.timestamp, l.timestamp));
        if first_last != Some((seg.first_timestamp, seg.last_timestamp)) {
            return Err(Format1Error::corrupt(
                path,
                format!("its rows span {first_last:?}, not what its name says"),
            ));
        }
        if let Some(w) = rows.windows(2).find(|w| w[0].timestamp >= w[1].timestamp) {
            return Err(Format1Error::corrupt(
                path,
                format!("timestamp {} follows {}", w[1].timestamp, w[0].timestamp),
            ));
        }
        Ok(rows)
    }

    /// The accounts first seen in a segment (empty without an accounts file), checked against
    /// the segment; the file must belong to `cluster_id`.
    pub async fn read_accounts(
        &self,
        seg: &Format1Segment,
        cluster_id: u128,
    ) -> Result<Vec<AccountRecord>, Format1Error> {
        let Some(path) = &seg.accounts_path else {
            return Ok(Vec::new());
        };
        let bytes = self.get(path).await?;
        let (meta, rows) = parquet::decode(&ACCOUNT_COLUMNS, Table::Accounts, bytes, path)?;
        check_meta(
            &meta,
            cluster_id,
            (seg.first_timestamp, seg.last_timestamp),
            path,
        )?;
        if let Some(a) = rows
            .iter()
            .find(|a| !(seg.first_timestamp..=seg.last_timestamp).contains(&a.first_seen_timestamp))
        {
            return Err(Format1Error::corrupt(
                path,
                format!(
                    "account {} first seen at {}, outside the segment",
                    a.id, a.first_seen_timestamp
                ),
            ));
        }
        Ok(rows)
    }

    /// A swept file's accounts, checked against its name: creation order within the named
    /// range, `first_seen_timestamp` equal to the creation timestamp, the lake's cluster.
    pub async fn read_swept(
        &self,
        file: &Format1Swept,
        cluster_id: u128,
    ) -> Result<Vec<AccountRecord>, Format1Error> {
        let path = &file.path;
        let bytes = self.get(path).await?;
        let (meta, rows) = parquet::decode(&ACCOUNT_COLUMNS, Table::SweptAccounts, bytes, path)?;
        check_meta(
            &meta,
            cluster_id,
            (file.first_timestamp, file.last_timestamp),
            path,
        )?;
        let first_last = rows
            .first()
            .zip(rows.last())
            .map(|(f, l)| (f.timestamp, l.timestamp));
        if first_last != Some((file.first_timestamp, file.last_timestamp)) {
            return Err(Format1Error::corrupt(
                path,
                format!("its accounts span {first_last:?}, not what its name says"),
            ));
        }
        if let Some(w) = rows.windows(2).find(|w| w[0].timestamp >= w[1].timestamp) {
            return Err(Format1Error::corrupt(
                path,
                format!(
                    "account timestamp {} follows {}",
                    w[1].timestamp, w[0].timestamp
                ),
            ));
        }
        if let Some(a) = rows.iter().find(|a| a.first_seen_timestamp != a.timestamp) {
            return Err(Format1Error::corrupt(
                path,
                format!(
                    "account {} has first_seen_timestamp {}, not its creation timestamp {}",
                    a.id, a.first_seen_timestamp, a.timestamp
                ),
            ));
        }
        Ok(rows)
    }

    /// Every event of the format-1 lake, rebuilt exactly in timestamp order, and every account
    /// record (the swept ones first, in creation order, then the others in order of first
    /// appearance), with format 1's checks: no overlap, no account twice, every event's
    /// accounts recorded no later than the event. Holds the whole lake in memory: for tests.
    #[cfg(any(test, feature = "testbed"))]
    pub async fn read_all(&self) -> Result<(Vec<Event>, Vec<AccountRecord>), Format1Error> {
        let meta_path = super::layout::meta_path();
        let cluster_id = self
            .read_meta()
            .await?
            .ok_or_else(|| Format1Error::corrupt(&meta_path, "is missing"))?
            .cluster_id;
        let listing = self.listing().await?;
        listing.check_overlaps()?;
        let mut records: Vec<AccountRecord> = Vec::new();
        let mut by_id: HashMap<u128, usize> = HashMap::new();
        let mut record = |a: AccountRecord, path: &Path| {
            if by_id.insert(a.id, records.len()).is_some() {
                return Err(Format1Error::corrupt(
                    path,
                    format!("account {} was already recorded", a.id),
                ));
            }
            records.push(a);
            Ok(())
        };
        for file in &listing.swept {
            for a in self.read_swept(file, cluster_id).await? {
                record(a, &file.path)?;
            }
        }
        let mut rows_of = Vec::new();
        for seg in &listing.segments {
            for a in self.read_accounts(seg, cluster_id).await? {
                record(a, &seg.transfers_path)?;
            }
            rows_of.push(self.read_events(seg, cluster_id).await?);
        }
        let mut events = Vec::new();
        for (seg, rows) in listing.segments.iter().zip(rows_of) {
            for row in rows {
                let lookup = |id: u128| {
                    let r = by_id.get(&id).map(|&i| &records[i]).ok_or(
                        Format1Error::MissingAccount {
                            account_id: id,
                            event_timestamp: row.timestamp,
                        },
                    )?;
                    check_first_seen(r, row.timestamp, &seg.transfers_path)?;
                    Ok::<_, Format1Error>(r)
                };
                events.push(row.to_event(
                    lookup(row.debit_account.id)?,
                    lookup(row.credit_account.id)?,
                ));
            }
        }
        Ok((events, records))
    }
}

/// An event may only use an account recorded no later than the event.
pub fn check_first_seen(
    record: &AccountRecord,
    event_timestamp: u64,
    path: &Path,
) -> Result<(), Format1Error> {
    if record.first_seen_timestamp > event_timestamp {
        return Err(Format1Error::corrupt(
            path,
            format!(
                "the event at {event_timestamp} uses account {}, first seen later at {}",
                record.id, record.first_seen_timestamp
            ),
        ));
    }
    Ok(())
}

/// A file's `ledgerlake.*` metadata must name the lake's cluster and the range of its name.
fn check_meta(
    meta: &FileMeta,
    cluster_id: u128,
    range: (u64, u64),
    path: &Path,
) -> Result<(), Format1Error> {
    if meta.cluster_id != cluster_id {
        return Err(Format1Error::corrupt(
            path,
            format!(
                "written for cluster {}, the lake is cluster {cluster_id}",
                meta.cluster_id
            ),
        ));
    }
    if (meta.first_timestamp, meta.last_timestamp) != range {
        return Err(Format1Error::corrupt(
            path,
            format!(
                "its metadata says {}..={}, its name {}..={}",
                meta.first_timestamp, meta.last_timestamp, range.0, range.1
            ),
        ));
    }
    Ok(())
}
