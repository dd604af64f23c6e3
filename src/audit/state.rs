//! The lake's view of every account as of a moment: each account's balances and flags from
//! its last event at or before that moment. Shared by `balances` (any moment) and `reconcile`
//! (the lake's last timestamp, then onward as the lake grows).

use std::collections::{BTreeSet, HashMap};

use futures::StreamExt;

use super::effect::Balances;
use super::progress::Progress;
use super::segments::read_in_order;
use crate::cdc::EventType;
use crate::lake::{AccountRecord, AccountState, Lake, LakeError, SegmentInfo};

/// An account as of the state's moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountAsOf {
    pub id: u128,
    pub ledger: u32,
    pub flags: u16,
    pub balances: Balances,
    /// The event that set these balances.
    pub last_event_timestamp: u64,
    /// The balances after the account's last event that is not an expiry, and its timestamp.
    /// TigerBeetle's `get_account_balances` lists balances at transfers only (it scans the
    /// transfers by account), so an expiry never appears in it: this is what it can confirm.
    pub last_transfer_timestamp: u64,
    pub last_transfer_balances: Balances,
}

/// Which accounts to keep; empty sets keep all.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub accounts: BTreeSet<u128>,
    pub ledgers: BTreeSet<u32>,
}

impl Selection {
    fn keeps(&self, id: u128, ledger: u32) -> bool {
        (self.accounts.is_empty() || self.accounts.contains(&id))
            && (self.ledgers.is_empty() || self.ledgers.contains(&ledger))
    }
}

/// A pending transfer still open as of the state's moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenPending {
    pub debit_account: u128,
    pub credit_account: u128,
    /// Seconds; a pending transfer with a timeout can expire later without any new transfer.
    pub timeout: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(
        "{segment}: event at {timestamp} is not after the lake's previous event at {previous}; \
         the lake is out of order (run `ledgerlake verify`)"
    )]
    OutOfOrder {
        segment: String,
        timestamp: u64,
        previous: u64,
    },
}

#[derive(Debug, Default)]
pub struct LakeState {
    pub accounts: HashMap<u128, AccountAsOf>,
    /// Immutable fields of every account recorded so far (whatever the selection).
    pub records: HashMap<u128, AccountRecord>,
    pub open_pending: HashMap<u128, OpenPending>,
    /// The last event applied.
    pub through: Option<u64>,
    pub segments_read: usize,
    pub events_read: u64,
}

/// The segments that can hold events at or before `at`: the segments' names say so, and those
/// after it are never opened.
pub fn segments_through(segments: &[SegmentInfo], at: u64) -> &[SegmentInfo] {
    let end = segments.partition_point(|s| s.first_timestamp <= at);
    &segments[..end]
}

impl LakeState {
    /// Applies every event at or before `at` of `segments`, which follow (in time) those
    /// already applied.
    pub async fn advance(
        &mut self,
        lake: &Lake,
        segments: &[SegmentInfo],
        at: u64,
        selection: &Selection,
        progress: &mut Progress<'_>,
    ) -> Result<(), StateError> {
        let segments = segments_through(segments, at);
        let mut reads = read_in_order(lake, segments);
        while let Some((seg, read)) = reads.next().await {
            let read = read?;
            for record in read.accounts {
                // An account may be recorded by many segments: keep the record first seen.
                let kept = self.records.entry(record.id).or_insert(record);
                if record.first_seen_timestamp < kept.first_seen_timestamp {
                    *kept = record;
                }
            }
            for row in read.events.iter().take_while(|r| r.timestamp <= at) {
                if let Some(previous) = self.through.filter(|&p| p >= row.timestamp) {
                    return Err(StateError::OutOfOrder {
                        segment: seg.transfers_path.to_string(),
                        timestamp: row.timestamp,
                        previous,
                    });
                }
                self.through = Some(row.timestamp);
                self.events_read += 1;
                self.track_pending(row);
                for state in [&row.debit_account, &row.credit_account] {
                    if selection.keeps(state.id, row.ledger) {
                        self.set(state, row);
                    }
                }
            }
            self.segments_read += 1;
            progress.tick(self.segments_read, self.events_read);
        }
        Ok(())
    }

    fn set(&mut self, state: &AccountState, row: &crate::lake::EventRow) {
        let balances = Balances::of(state);
        let (last_transfer_timestamp, last_transfer_balances) =
            match (row.event_type, self.accounts.get(&state.id)) {
                (EventType::TwoPhaseExpired, Some(before)) => (
                    before.last_transfer_timestamp,
                    before.last_transfer_balances,
                ),
                // An expiry always follows its pending transfer; without one, it stands in.
                _ => (row.timestamp, balances),
            };
        self.accounts.insert(
            state.id,
            AccountAsOf {
                id: state.id,
                ledger: row.ledger,
                flags: state.flags,
                balances,
                last_event_timestamp: row.timestamp,
                last_transfer_timestamp,
                last_transfer_balances,
            },
        );
    }

    fn track_pending(&mut self, row: &crate::lake::EventRow) {
        let t = &row.transfer;
        match row.event_type {
            EventType::SinglePhase => {}
            EventType::TwoPhasePending => {
                self.open_pending.insert(
                    t.id,
                    OpenPending {
                        debit_account: row.debit_account.id,
                        credit_account: row.credit_account.id,
                        timeout: t.timeout,
                    },
                );
            }
            EventType::TwoPhasePosted | EventType::TwoPhaseVoided => {
                self.open_pending.remove(&t.pending_id);
            }
            EventType::TwoPhaseExpired => {
                self.open_pending.remove(&t.id);
            }
        }
    }

    /// Whether a pending transfer of `account`, open as of the state's moment, can still expire.
    pub fn may_expire(&self, account: u128) -> bool {
        self.open_pending
            .values()
            .any(|p| p.timeout > 0 && (p.debit_account == account || p.credit_account == account))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::path::Path;

    fn seg(first: u64, last: u64) -> SegmentInfo {
        SegmentInfo {
            date: "1970-01-01".into(),
            first_timestamp: first,
            last_timestamp: last,
            transfers_path: Path::from(format!("t/{first}")),
            accounts_path: None,
            transfers_bytes: 0,
            accounts_bytes: 0,
        }
    }

    #[test]
    fn segments_after_the_moment_are_not_read() {
        let segments = vec![seg(10, 19), seg(20, 29), seg(30, 39)];
        assert_eq!(segments_through(&segments, 9).len(), 0);
        assert_eq!(segments_through(&segments, 10).len(), 1);
        assert_eq!(segments_through(&segments, 25).len(), 2);
        assert_eq!(segments_through(&segments, 29).len(), 2);
        assert_eq!(segments_through(&segments, 30).len(), 3);
        assert_eq!(segments_through(&segments, u64::MAX).len(), 3);
    }

    #[test]
    fn selection_by_account_and_ledger() {
        let all = Selection::default();
        assert!(all.keeps(1, 1));
        let some = Selection {
            accounts: [1, 2].into(),
            ledgers: [7].into(),
        };
        assert!(some.keeps(1, 7));
        assert!(!some.keeps(3, 7));
        assert!(!some.keeps(1, 8));
    }
}
