//! The account sweep: a background task that pages through the source cluster's accounts
//! (`query_accounts` by creation timestamp) and hands each page to the export loop, so that the
//! lake also records accounts the CDC stream never shows (no transfer, or only rejected ones).
//!
//! No set of the lake's accounts is kept: the sweep records the accounts of a page that no
//! transfer has touched when it reads them (an account that took a transfer is recorded by the
//! segment of that transfer's event, as every segment records every account it touches), and it
//! resumes after the newest account it has read, a position the `swept_accounts` log records.
//! An account the sweep records and a later event then uses is recorded twice: readers keep the
//! record first seen (see docs/DESIGN.md, "Accounts without a global set").
//!
//! The task only reads the cluster. The state machine (`export::machine`) commits each page in
//! the single commit slot it also uses for segments and quarantine records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::lake::AccountRecord;
use crate::tb::limits::BATCH_EVENTS_MAX as ACCOUNTS_PER_REQUEST;
use crate::tb::{Balances, Cluster, ClusterAccount, ClusterError};

/// Pages waiting for the loop. With one more being read and one being committed, memory holds
/// at most three pages (3 × 8,189 accounts).
const PAGES_QUEUED_MAX: usize = 1;

/// Where and how often to sweep. Every default lives in the CLI.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// The source cluster's replica addresses (its id is `ExportOptions::cluster_id`).
    pub addresses: String,
    /// Time from the start of one pass to the start of the next.
    pub interval: Duration,
    /// How long one request may go unanswered before the pass is abandoned (and retried at
    /// the next interval).
    pub request_timeout: Duration,
}

/// One page of the sweep as the lake records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweptPage {
    /// The page's accounts no transfer had touched, in creation order (see [`record_of`]);
    /// possibly none.
    pub accounts: Vec<AccountRecord>,
    /// The creation timestamp of the page's last account, recorded or not: the sweep resumes
    /// after it (the `swept_accounts` position).
    pub through: u64,
}

/// What the sweep task tells the loop.
#[derive(Debug)]
pub enum SweepMessage {
    /// Accounts created after the previous page.
    Page(SweptPage),
    /// A pass, started at `started`, reached the newest account.
    PassDone { started: Instant },
}

/// Whether an account's balances prove that a transfer touched it. All zero proves nothing (a
/// zero amount, or a pending transfer voided or expired, leaves none), so the sweep then asks
/// the cluster for the account's transfers.
pub fn balances_show_a_transfer(b: &Balances) -> bool {
    b.debits_pending != 0 || b.debits_posted != 0 || b.credits_pending != 0 || b.credits_posted != 0
}

/// The lake's record of a swept account, which no transfer has touched: its fields as created
/// (so `closed` is set only for an account created closed), `first_seen_timestamp` its creation
/// timestamp (no later than any event that can use it).
pub fn record_of(a: &ClusterAccount) -> AccountRecord {
    AccountRecord {
        id: a.account.id,
        ledger: a.account.ledger,
        code: a.account.code,
        flags: a.account.flags,
        user_data_128: a.account.user_data_128,
        user_data_64: a.account.user_data_64,
        user_data_32: a.account.user_data_32,
        timestamp: a.account.timestamp,
        first_seen_timestamp: a.account.timestamp,
    }
}

/// The running sweep task of one exporter session, and its pages. Dropping it stops the task.
pub struct Sweeper {
    pages: mpsc::Receiver<SweepMessage>,
    task: JoinHandle<()>,
}

impl Sweeper {
    /// Starts sweeping accounts created after `after` (from the first account for `None`),
    /// a pass now and then one every `interval`.
    pub fn start(cluster: Arc<Cluster>, after: Option<u64>, interval: Duration) -> Sweeper {
        let (tx, pages) = mpsc::channel(PAGES_QUEUED_MAX);
        let task = tokio::spawn(sweep(cluster, after.unwrap_or(0), interval, tx));
        Sweeper { pages, task }
    }

    /// The next message; `None` only if the task ended (it never does while this exists).
    pub async fn recv(&mut self) -> Option<SweepMessage> {
        self.pages.recv().await
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn sweep(
    cluster: Arc<Cluster>,
    mut after: u64,
    interval: Duration,
    tx: mpsc::Sender<SweepMessage>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let started = Instant::now();
        match pass(&cluster, &mut after, &tx).await {
            Ok(true) => {
                if tx.send(SweepMessage::PassDone { started }).await.is_err() {
                    return;
                }
            }
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(error = %crate::errors::one_line(&error), after, "account sweep failed; retrying at the next interval")
            }
        }
    }
}

/// One pass from `after` to the newest account. `Ok(false)`: the loop is gone. `after` advances
/// only past pages handed over whole.
async fn pass(
    cluster: &Cluster,
    after: &mut u64,
    tx: &mpsc::Sender<SweepMessage>,
) -> Result<bool, ClusterError> {
    loop {
        let page = cluster.accounts_after(*after).await?;
        let full = page.len() == ACCOUNTS_PER_REQUEST;
        let Some(last) = page.last() else {
            return Ok(true);
        };
        let mut accounts = Vec::new();
        for a in &page {
            let touched = balances_show_a_transfer(&a.balances)
                || cluster.has_transfer_in(a.account.id, 0, 0).await?;
            if !touched {
                accounts.push(record_of(a));
            }
        }
        let through = last.account.timestamp;
        *after = through;
        let page = SweptPage { accounts, through };
        if tx.send(SweepMessage::Page(page)).await.is_err() {
            return Ok(false);
        }
        if !full {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tb::flags::account::CLOSED as FLAG_CLOSED;
    use crate::tb::Account;

    fn account(id: u128, timestamp: u64, flags: u16) -> ClusterAccount {
        ClusterAccount {
            account: Account {
                id,
                ledger: 7,
                code: 9,
                flags,
                user_data_128: u128::MAX,
                user_data_64: 64,
                user_data_32: 32,
                timestamp,
            },
            balances: Balances::default(),
        }
    }

    #[test]
    fn any_nonzero_balance_proves_a_transfer_and_zero_balances_prove_nothing() {
        assert!(!balances_show_a_transfer(&Balances::default()));
        for b in [
            Balances {
                debits_pending: 1,
                ..Balances::default()
            },
            Balances {
                debits_posted: 1,
                ..Balances::default()
            },
            Balances {
                credits_pending: 1,
                ..Balances::default()
            },
            Balances {
                credits_posted: u128::MAX,
                ..Balances::default()
            },
        ] {
            assert!(balances_show_a_transfer(&b), "{b:?}");
        }
    }

    #[test]
    fn a_swept_account_is_recorded_as_created() {
        let r = record_of(&account(1, 500, FLAG_CLOSED | 1 << 3));
        assert_eq!(
            r,
            AccountRecord {
                id: 1,
                ledger: 7,
                code: 9,
                flags: FLAG_CLOSED | 1 << 3,
                user_data_128: u128::MAX,
                user_data_64: 64,
                user_data_32: 32,
                timestamp: 500,
                first_seen_timestamp: 500,
            }
        );
    }
}
