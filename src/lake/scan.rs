//! Segment reads for consumers that trust a lake only for one cluster (rebuild): each file's own
//! `ledgerlake.cluster_id` is checked, not only the lake's metadata file, so a segment copied in
//! from another cluster's lake is refused rather than replayed.

use super::columns::TRANSFER_COLUMNS_WITHOUT_ACCOUNT_STATES;
use super::read::check_cluster;
use super::{AccountRecord, EventRow, Lake, LakeError, SegmentInfo};

impl Lake {
    /// Every row of a segment's transfers file, which must belong to `cluster_id`.
    pub async fn read_events_of_cluster(
        &self,
        seg: &SegmentInfo,
        cluster_id: u128,
    ) -> Result<Vec<EventRow>, LakeError> {
        let (meta, rows) = self.read_events_checked(seg).await?;
        check_cluster(&meta, Some(cluster_id), &seg.transfers_path)?;
        Ok(rows)
    }

    /// A segment's transfers file, which must belong to `cluster_id`, decoded without the
    /// accounts' balances and flags: each row's transfer fields, timestamp, event type and ledger,
    /// and its two account ids; `debit_account` and `credit_account` hold only `id` (the other
    /// fields are zero). What a replay needs, at about half the decoding of
    /// [`Lake::read_events_of_cluster`].
    pub async fn read_transfers_of_cluster(
        &self,
        seg: &SegmentInfo,
        cluster_id: u128,
    ) -> Result<Vec<EventRow>, LakeError> {
        let (meta, rows) = self
            .read_events_projected(seg, Some(&TRANSFER_COLUMNS_WITHOUT_ACCOUNT_STATES))
            .await?;
        check_cluster(&meta, Some(cluster_id), &seg.transfers_path)?;
        Ok(rows)
    }

    /// The accounts first seen in a segment (empty without an accounts file); the file must
    /// belong to `cluster_id`.
    pub async fn read_accounts_of_cluster(
        &self,
        seg: &SegmentInfo,
        cluster_id: u128,
    ) -> Result<Vec<AccountRecord>, LakeError> {
        match (self.read_accounts_checked(seg).await?, &seg.accounts_path) {
            (Some((meta, rows)), Some(path)) => {
                check_cluster(&meta, Some(cluster_id), path)?;
                Ok(rows)
            }
            _ => Ok(Vec::new()),
        }
    }
}
