//! The target cluster before any write: fresh, or a part-way rebuild of the same plan (then the
//! replay resumes after what it holds), or anything else (refused).
//!
//! A replay sends one request at a time, each in timestamp order per kind, and TigerBeetle applies
//! a request as a whole, so a target that a rebuild left part-way holds a prefix of the plan: the
//! plan's accounts up to its last account's timestamp and its transfers up to its last transfer's
//! timestamp, nothing else. [`check_resume`] verifies exactly that — the counts and the last object
//! of each kind — before the first write.

use std::time::Duration;

use super::plan::{ResumePoint, Skipped};
use crate::tb::flags::{account as account_flags, transfer as transfer_flags};
use crate::tb::{Account, Cluster, ClusterError, Transfer};

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(
        "the target is not empty and was not written by a rebuild: {object} {id} at timestamp \
         {timestamp} is not imported; rebuild into a fresh cluster"
    )]
    NotImported {
        object: &'static str,
        id: u128,
        timestamp: u64,
    },
    #[error(
        "the target already holds objects up to timestamp {timestamp}, after --until {until}; \
         rebuild into a fresh cluster, or choose a later --until"
    )]
    AheadOfUntil { timestamp: u64, until: u64 },
    #[error(
        "the target is not empty and is not a part-way rebuild of this lake with these options \
         ({detail}); rebuild into a fresh cluster"
    )]
    NotThisRebuild { detail: String },
}

/// What the target holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetState {
    pub accounts: u64,
    pub transfers: u64,
    pub last_account: Option<Account>,
    pub last_transfer: Option<Transfer>,
}

impl TargetState {
    pub fn is_fresh(&self) -> bool {
        self.last_account.is_none() && self.last_transfer.is_none()
    }

    pub fn resume_point(&self) -> ResumePoint {
        ResumePoint {
            accounts_through: self.last_account.map(|a| a.timestamp),
            transfers_through: self.last_transfer.map(|t| t.timestamp),
        }
    }

    /// Refuses a target that holds anything after `until`.
    pub fn check_until(&self, until: u64) -> Result<(), TargetError> {
        let last = [
            self.last_account.map(|a| a.timestamp),
            self.last_transfer.map(|t| t.timestamp),
        ];
        match last.into_iter().flatten().max() {
            Some(timestamp) if timestamp > until => {
                Err(TargetError::AheadOfUntil { timestamp, until })
            }
            _ => Ok(()),
        }
    }
}

/// Passes if what the replay skipped is exactly what the target holds: same counts, and the same
/// last account and last transfer. `closed` (set by replayed closing transfers) and `linked` (a
/// chain cut at an earlier run's `--until`) may differ.
pub fn check_resume(target: &TargetState, skipped: &Skipped) -> Result<(), TargetError> {
    let mismatch = |detail: String| Err(TargetError::NotThisRebuild { detail });
    if (target.accounts, target.transfers) != (skipped.accounts, skipped.transfers) {
        return mismatch(format!(
            "it holds {} accounts and {} transfers, the plan has {} and {} up to the same points",
            target.accounts, target.transfers, skipped.accounts, skipped.transfers
        ));
    }
    let account = |a: &Account| Account {
        flags: a.flags & !account_flags::CLOSED,
        ..*a
    };
    if target.last_account.map(|a| account(&a)) != skipped.last_account.map(|a| account(&a)) {
        return mismatch(format!(
            "its last account is {:?}, the plan's at that point is {:?}",
            target.last_account, skipped.last_account
        ));
    }
    let transfer = |t: Transfer| Transfer {
        flags: t.flags & !transfer_flags::LINKED,
        ..t
    };
    let planned = skipped.last_transfer.map(|t| t.transfer);
    if target.last_transfer.map(transfer) != planned.map(transfer) {
        return mismatch(format!(
            "its last transfer is {:?}, the plan's at that point is {:?}",
            target.last_transfer, planned
        ));
    }
    Ok(())
}

/// Where to send requests, and how long to wait for a reply.
#[derive(Debug, Clone)]
pub struct TargetAddress {
    pub addresses: String,
    pub cluster_id: u128,
    pub reply_timeout: Duration,
}

/// Connects a client (the TigerBeetle client connects lazily; the first reply proves it).
pub fn connect(at: &TargetAddress) -> Result<Cluster, TargetError> {
    Ok(Cluster::connect(
        at.cluster_id,
        &at.addresses,
        at.reply_timeout,
    )?)
}

/// Reads what the target holds: its last account and transfer (reversed queries), and, if it is
/// not empty, every object's count and `imported` flag (queries paged by timestamp; counting
/// needs no memory, so no bound on the objects).
pub async fn inspect(cluster: &Cluster) -> Result<TargetState, TargetError> {
    let mut state = TargetState {
        last_account: cluster.last_account().await?.map(|a| a.account),
        last_transfer: cluster.last_transfer().await?,
        ..TargetState::default()
    };
    if state.is_fresh() {
        return Ok(state);
    }
    let mut accounts = 0;
    cluster
        .for_each_accounts_page(usize::MAX, |page| {
            accounts += page.len() as u64;
            match page
                .iter()
                .map(|a| &a.account)
                .find(|a| a.flags & account_flags::IMPORTED == 0)
            {
                Some(a) => Err(TargetError::NotImported {
                    object: "account",
                    id: a.id,
                    timestamp: a.timestamp,
                }),
                None => Ok(()),
            }
        })
        .await?;
    let mut transfers = 0;
    cluster
        .for_each_transfers_page(usize::MAX, |page| {
            transfers += page.len() as u64;
            match page
                .iter()
                .find(|t| t.flags & transfer_flags::IMPORTED == 0)
            {
                Some(t) => Err(TargetError::NotImported {
                    object: "transfer",
                    id: t.id,
                    timestamp: t.timestamp,
                }),
                None => Ok(()),
            }
        })
        .await?;
    (state.accounts, state.transfers) = (accounts, transfers);
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::EventType;
    use crate::rebuild::plan::{PlannedAccount, PlannedTransfer};

    fn account(id: u128, timestamp: u64, flags: u16) -> PlannedAccount {
        PlannedAccount {
            id,
            ledger: 1,
            code: 1,
            flags,
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
            timestamp,
        }
    }

    fn transfer(id: u128, timestamp: u64, flags: u16) -> PlannedTransfer {
        let transfer = Transfer {
            id,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 5,
            pending_id: 0,
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
            timeout: 0,
            ledger: 1,
            code: 1,
            flags,
            timestamp,
        };
        PlannedTransfer {
            transfer,
            event_type: EventType::SinglePhase,
        }
    }

    fn skipped(accounts: u64, transfers: u64, a: PlannedAccount, t: PlannedTransfer) -> Skipped {
        Skipped {
            accounts,
            transfers,
            last_account: Some(a),
            last_transfer: Some(t),
        }
    }

    #[test]
    fn a_fresh_target_resumes_nowhere_and_matches_an_empty_skip() {
        let fresh = TargetState::default();
        assert!(fresh.is_fresh());
        assert_eq!(fresh.resume_point(), ResumePoint::default());
        assert!(check_resume(&fresh, &Skipped::default()).is_ok());
    }

    #[test]
    fn a_prefix_of_the_plan_is_accepted_closed_and_linked_aside() {
        let imported_a = account_flags::IMPORTED;
        let imported_t = transfer_flags::IMPORTED;
        let a = account(2, 20, imported_a);
        let t = transfer(9, 30, imported_t | transfer_flags::LINKED);
        let target = TargetState {
            accounts: 2,
            transfers: 4,
            last_account: Some(account(2, 20, imported_a | account_flags::CLOSED)),
            last_transfer: Some(transfer(9, 30, imported_t).transfer),
        };
        assert_eq!(
            target.resume_point(),
            ResumePoint {
                accounts_through: Some(20),
                transfers_through: Some(30)
            }
        );
        assert!(check_resume(&target, &skipped(2, 4, a, t)).is_ok());
        assert!(target.check_until(30).is_ok());
        assert!(matches!(
            target.check_until(29),
            Err(TargetError::AheadOfUntil { timestamp: 30, .. })
        ));
    }

    #[test]
    fn anything_else_is_refused() {
        let a = account(2, 20, account_flags::IMPORTED);
        let t = transfer(9, 30, transfer_flags::IMPORTED);
        let target = TargetState {
            accounts: 2,
            transfers: 4,
            last_account: Some(a),
            last_transfer: Some(t.transfer),
        };
        let refused = |s: Skipped| {
            matches!(
                check_resume(&target, &s),
                Err(TargetError::NotThisRebuild { .. })
            )
        };
        assert!(refused(skipped(2, 3, a, t)), "a missing transfer");
        assert!(refused(skipped(3, 4, a, t)), "a missing account");
        assert!(refused(skipped(
            2,
            4,
            account(2, 20, account_flags::IMPORTED | account_flags::HISTORY),
            t
        )));
        assert!(refused(skipped(
            2,
            4,
            a,
            PlannedTransfer {
                transfer: Transfer {
                    amount: 6,
                    ..t.transfer
                },
                ..t
            }
        )));
        assert!(
            refused(Skipped::default()),
            "a non-empty target is not fresh"
        );
    }
}
