//! The live cluster, as `reconcile` reads it: every account (paged), balances as of a
//! timestamp for `history` accounts, and whether an account moved before or after a
//! timestamp. Every request is bounded by a timeout, so an unreachable cluster is an error,
//! not a hang.

use std::future::Future;
use std::time::Duration;

use tb::account::{Filter, FilterFlags};
use tigerbeetle_unofficial as tb;

use super::effect::Balances;

/// Accounts per `query_accounts` / `lookup_accounts` request: TigerBeetle's batch limit
/// (1 MiB messages of 128-byte accounts).
pub const ACCOUNTS_PER_REQUEST: usize = 8_189;
/// Account flag `history` (TigerBeetle `AccountFlags`).
pub const FLAG_HISTORY: u16 = 1 << 3;
/// Account flag `closed`: the only flag that changes after creation.
pub const FLAG_CLOSED: u16 = 1 << 5;
/// Stops paging a cluster with more accounts than this (memory bound: ~200 bytes each).
pub const CLUSTER_ACCOUNTS_MAX: usize = 50_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot create a client for cluster {cluster_id} at {addresses}: {reason}")]
    Connect {
        cluster_id: u128,
        addresses: String,
        reason: String,
    },
    #[error("{what} failed: {reason}")]
    Request { what: String, reason: String },
    #[error("{what} got no reply within {timeout_s} s: is the cluster reachable, and is --cluster-id right?")]
    Timeout { what: String, timeout_s: u64 },
    #[error("the cluster has more than {CLUSTER_ACCOUNTS_MAX} accounts")]
    TooManyAccounts,
}

/// An account as the cluster has it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterAccount {
    pub id: u128,
    pub ledger: u32,
    pub code: u16,
    pub flags: u16,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub timestamp: u64,
    pub balances: Balances,
}

impl From<&tb::Account> for ClusterAccount {
    fn from(a: &tb::Account) -> Self {
        ClusterAccount {
            id: a.id(),
            ledger: a.ledger(),
            code: a.code(),
            flags: a.flags().bits(),
            user_data_128: a.user_data_128(),
            user_data_64: a.user_data_64(),
            user_data_32: a.user_data_32(),
            timestamp: a.as_raw().timestamp,
            balances: Balances {
                debits_pending: a.debits_pending(),
                debits_posted: a.debits_posted(),
                credits_pending: a.credits_pending(),
                credits_posted: a.credits_posted(),
            },
        }
    }
}

pub struct Cluster {
    client: tb::Client,
    timeout: Duration,
}

impl Cluster {
    pub fn connect(
        cluster_id: u128,
        addresses: &str,
        timeout: Duration,
    ) -> Result<Cluster, ClusterError> {
        let client = tb::Client::new(cluster_id, addresses).map_err(|e| ClusterError::Connect {
            cluster_id,
            addresses: addresses.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Cluster { client, timeout })
    }

    async fn bounded<T, E: std::fmt::Display>(
        &self,
        what: impl Fn() -> String,
        request: impl Future<Output = Result<T, E>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ClusterError::Request {
                what: what(),
                reason: e.to_string(),
            }),
            Err(_) => Err(ClusterError::Timeout {
                what: what(),
                timeout_s: self.timeout.as_secs(),
            }),
        }
    }

    /// Every account of the cluster, in creation order.
    pub async fn all_accounts(&self) -> Result<Vec<ClusterAccount>, ClusterError> {
        let mut out: Vec<ClusterAccount> = Vec::new();
        let mut after: u64 = 0;
        loop {
            let page = self.accounts_after(after).await?;
            out.extend(page.iter().copied());
            match page.last() {
                Some(last) if page.len() == ACCOUNTS_PER_REQUEST => after = last.timestamp,
                _ => return Ok(out),
            }
            if out.len() > CLUSTER_ACCOUNTS_MAX {
                return Err(ClusterError::TooManyAccounts);
            }
        }
    }

    /// One page: up to [`ACCOUNTS_PER_REQUEST`] accounts created after timestamp `after`, in
    /// creation order (the filter's other fields are zero, which matches every account).
    pub async fn accounts_after(&self, after: u64) -> Result<Vec<ClusterAccount>, ClusterError> {
        let mut filter = tb::QueryFilter::new(ACCOUNTS_PER_REQUEST as u32);
        filter.as_raw_mut().timestamp_min = after + 1;
        let page = self
            .bounded(
                || format!("query_accounts after timestamp {after}"),
                self.client.query_accounts(Box::new(filter)),
            )
            .await?;
        Ok(page.iter().map(ClusterAccount::from).collect())
    }

    /// The accounts among `ids` that exist.
    pub async fn lookup(&self, ids: &[u128]) -> Result<Vec<ClusterAccount>, ClusterError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ACCOUNTS_PER_REQUEST) {
            let found = self
                .bounded(
                    || format!("lookup_accounts of {} ids", chunk.len()),
                    self.client.lookup_accounts(chunk.to_vec()),
                )
                .await?;
            out.extend(found.iter().map(ClusterAccount::from));
        }
        Ok(out)
    }

    /// A `history` account's balances after its last transfer at or before `at`, with that
    /// transfer's timestamp (`None`: no transfer by then). Expiries are not listed by
    /// TigerBeetle's `get_account_balances`: the balances are those of the last transfer.
    pub async fn balances_at(
        &self,
        id: u128,
        at: u64,
    ) -> Result<Option<(u64, Balances)>, ClusterError> {
        let mut filter = Filter::new(id, 1)
            .with_flags(FilterFlags::DEBITS | FilterFlags::CREDITS | FilterFlags::REVERSED);
        filter.as_raw_mut().timestamp_max = at;
        let found = self
            .bounded(
                || format!("get_account_balances of account {id} up to {at}"),
                self.client.get_account_balances(Box::new(filter)),
            )
            .await?;
        Ok(found.first().map(|b| {
            let balances = Balances {
                debits_pending: b.debits_pending(),
                debits_posted: b.debits_posted(),
                credits_pending: b.credits_pending(),
                credits_posted: b.credits_posted(),
            };
            (b.as_raw().timestamp, balances)
        }))
    }

    /// Whether `id` is the debit or credit account of a transfer in `min..=max`.
    pub async fn has_transfer_in(
        &self,
        id: u128,
        min: u64,
        max: u64,
    ) -> Result<bool, ClusterError> {
        let mut filter = Filter::new(id, 1).with_flags(FilterFlags::DEBITS | FilterFlags::CREDITS);
        filter.as_raw_mut().timestamp_min = min;
        filter.as_raw_mut().timestamp_max = max;
        let found = self
            .bounded(
                || format!("get_account_transfers of account {id} in {min}..={max}"),
                self.client.get_account_transfers(Box::new(filter)),
            )
            .await?;
        Ok(!found.is_empty())
    }
}
