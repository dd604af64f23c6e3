//! The commit path: a sealed segment becomes an accounts file (if it has new accounts) and then
//! its transfers file, the commit point. Both writes are create-only, so a retried commit never
//! alters a committed segment.

use std::collections::HashSet;

use super::layout::{self, Table};
use super::parquet::{self, encode_accounts, encode_transfers};
use super::{CommitOutcome, Lake, LakeError, Segment};

impl Lake {
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
                self.delete(&accounts_path).await?;
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
}
