//! The target cluster before any write: fresh, or a part-way rebuild of the same plan (then the
//! replay resumes after what it holds), or anything else (refused).
//!
//! A replay sends one request at a time, each in timestamp order per kind, and TigerBeetle applies
//! a request as a whole, so a target that a rebuild left part-way holds a prefix of the plan: the
//! plan's accounts up to its last account's timestamp and its transfers up to its last transfer's
//! timestamp, nothing else. [`check_resume`] verifies exactly that — the counts and the last object
//! of each kind — before the first write.

use std::time::Duration;

use tigerbeetle_unofficial::core::query_filter::Flags as QueryFlags;
use tigerbeetle_unofficial::{Account, Client, QueryFilter, Transfer};

use super::plan::{
    account_flags, transfer_flags, PlannedAccount, PlannedTransfer, ResumePoint, Skipped,
};

/// Objects per query reply: 8,189 × 128 bytes fills TigerBeetle's 1 MiB message.
const QUERY_LIMIT: u32 = 8189;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "no reply from the target cluster within {waited_s} s: is a cluster with id {cluster_id} \
         running at {addresses}? (a wrong cluster id goes unanswered)"
    )]
    Unreachable {
        addresses: String,
        cluster_id: u128,
        waited_s: u64,
    },
    #[error("cannot connect a client to {addresses}: {reason}")]
    Client { addresses: String, reason: String },
    #[error("the request to the target failed: {0}")]
    Send(String),
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

/// A transfer's stored fields, for comparing the target's with the plan's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredTransfer {
    pub id: u128,
    pub debit_account_id: u128,
    pub credit_account_id: u128,
    pub amount: u128,
    pub pending_id: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub timeout: u32,
    pub ledger: u32,
    pub code: u16,
    pub flags: u16,
    pub timestamp: u64,
}

impl From<&PlannedTransfer> for StoredTransfer {
    fn from(t: &PlannedTransfer) -> Self {
        StoredTransfer {
            id: t.id,
            debit_account_id: t.debit_account_id,
            credit_account_id: t.credit_account_id,
            amount: t.amount,
            pending_id: t.pending_id,
            user_data_128: t.user_data_128,
            user_data_64: t.user_data_64,
            user_data_32: t.user_data_32,
            timeout: t.timeout,
            ledger: t.ledger,
            code: t.code,
            flags: t.flags,
            timestamp: t.timestamp,
        }
    }
}

impl From<&Transfer> for StoredTransfer {
    fn from(t: &Transfer) -> Self {
        let r = t.as_raw();
        StoredTransfer {
            id: r.id,
            debit_account_id: r.debit_account_id,
            credit_account_id: r.credit_account_id,
            amount: r.amount,
            pending_id: r.pending_id,
            user_data_128: r.user_data_128,
            user_data_64: r.user_data_64,
            user_data_32: r.user_data_32,
            timeout: r.timeout,
            ledger: r.ledger,
            code: r.code,
            flags: r.flags,
            timestamp: r.timestamp,
        }
    }
}

/// An account as the target stores it (balances aside: they follow from the transfers).
pub fn stored_account(a: &Account) -> PlannedAccount {
    let r = a.as_raw();
    PlannedAccount {
        id: r.id,
        ledger: r.ledger,
        code: r.code,
        flags: r.flags,
        user_data_128: r.user_data_128,
        user_data_64: r.user_data_64,
        user_data_32: r.user_data_32,
        timestamp: r.timestamp,
    }
}

/// What the target holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetState {
    pub accounts: u64,
    pub transfers: u64,
    pub last_account: Option<PlannedAccount>,
    pub last_transfer: Option<StoredTransfer>,
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
    let account = |a: &PlannedAccount| PlannedAccount {
        flags: a.flags & !account_flags::CLOSED,
        ..*a
    };
    if target.last_account.map(|a| account(&a)) != skipped.last_account.map(|a| account(&a)) {
        return mismatch(format!(
            "its last account is {:?}, the plan's at that point is {:?}",
            target.last_account, skipped.last_account
        ));
    }
    let transfer = |t: StoredTransfer| StoredTransfer {
        flags: t.flags & !transfer_flags::LINKED,
        ..t
    };
    let planned = skipped.last_transfer.as_ref().map(StoredTransfer::from);
    if target.last_transfer.map(transfer) != planned.map(transfer) {
        return mismatch(format!(
            "its last transfer is {:?}, the plan's at that point is {:?}",
            target.last_transfer, planned
        ));
    }
    Ok(())
}

/// Connects a client (the TigerBeetle client connects lazily; the first reply proves it).
pub fn connect(cluster_id: u128, addresses: &str) -> Result<Client, TargetError> {
    Client::new(cluster_id, addresses).map_err(|e| TargetError::Client {
        addresses: addresses.to_string(),
        reason: e.to_string(),
    })
}

/// Where to send requests, and how long to wait for a reply.
#[derive(Debug, Clone)]
pub struct TargetAddress {
    pub addresses: String,
    pub cluster_id: u128,
    pub reply_timeout: Duration,
}

impl TargetAddress {
    pub fn unreachable(&self) -> TargetError {
        TargetError::Unreachable {
            addresses: self.addresses.clone(),
            cluster_id: self.cluster_id,
            waited_s: self.reply_timeout.as_secs(),
        }
    }
}

fn filter(timestamp_min: u64, limit: u32, reversed: bool) -> QueryFilter {
    let mut f = QueryFilter::new(limit);
    f.as_raw_mut().timestamp_min = timestamp_min;
    if reversed {
        f.set_flags(QueryFlags::REVERSED);
    }
    f
}

/// Reads what the target holds: its last account and transfer (reversed queries), and, if it is
/// not empty, every object's count and `imported` flag (queries paged by timestamp).
pub async fn inspect(client: &Client, at: &TargetAddress) -> Result<TargetState, TargetError> {
    let last_account = query_accounts(client, at, filter(0, 1, true)).await?.pop();
    let last_transfer = query_transfers(client, at, filter(0, 1, true)).await?.pop();
    let mut state = TargetState {
        last_account: last_account.as_ref().map(stored_account),
        last_transfer: last_transfer.as_ref().map(StoredTransfer::from),
        ..TargetState::default()
    };
    if state.is_fresh() {
        return Ok(state);
    }
    let mut from = 0;
    loop {
        let page = query_accounts(client, at, filter(from, QUERY_LIMIT, false)).await?;
        for a in page.iter().map(stored_account) {
            if a.flags & account_flags::IMPORTED == 0 {
                return Err(TargetError::NotImported {
                    object: "account",
                    id: a.id,
                    timestamp: a.timestamp,
                });
            }
        }
        state.accounts += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == QUERY_LIMIT as usize => from = last.as_raw().timestamp + 1,
            _ => break,
        }
    }
    from = 0;
    loop {
        let page = query_transfers(client, at, filter(from, QUERY_LIMIT, false)).await?;
        for t in page.iter().map(StoredTransfer::from) {
            if t.flags & transfer_flags::IMPORTED == 0 {
                return Err(TargetError::NotImported {
                    object: "transfer",
                    id: t.id,
                    timestamp: t.timestamp,
                });
            }
        }
        state.transfers += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == QUERY_LIMIT as usize => from = last.as_raw().timestamp + 1,
            _ => break,
        }
    }
    Ok(state)
}

async fn query_accounts(
    client: &Client,
    at: &TargetAddress,
    f: QueryFilter,
) -> Result<Vec<Account>, TargetError> {
    match tokio::time::timeout(at.reply_timeout, client.query_accounts(Box::new(f))).await {
        Err(_) => Err(at.unreachable()),
        Ok(reply) => reply.map_err(|e| TargetError::Send(e.to_string())),
    }
}

async fn query_transfers(
    client: &Client,
    at: &TargetAddress,
    f: QueryFilter,
) -> Result<Vec<Transfer>, TargetError> {
    match tokio::time::timeout(at.reply_timeout, client.query_transfers(Box::new(f))).await {
        Err(_) => Err(at.unreachable()),
        Ok(reply) => reply.map_err(|e| TargetError::Send(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::EventType;

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
        PlannedTransfer {
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
            last_transfer: Some(StoredTransfer::from(&transfer(9, 30, imported_t))),
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
            last_transfer: Some(StoredTransfer::from(&t)),
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
            PlannedTransfer { amount: 6, ..t }
        )));
        assert!(
            refused(Skipped::default()),
            "a non-empty target is not fresh"
        );
    }
}
