//! The account sweep: a background task that pages through the source cluster's accounts
//! (`query_accounts` by creation timestamp) and hands each page to the export loop, so that the
//! lake also records accounts the CDC stream never shows (no transfer, or only rejected ones).
//!
//! The task only reads the cluster. Deciding which accounts are new, and when to write them, is
//! the state machine's (`export::machine`): it owns the set of recorded account ids (`take_new`),
//! and commits a page's new accounts in the single commit slot it also uses for segments and
//! quarantine records. See docs/DESIGN.md.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::lake::AccountRecord;
use crate::tb::flags::account::CLOSED as FLAG_CLOSED;
use crate::tb::limits::BATCH_EVENTS_MAX as ACCOUNTS_PER_REQUEST;
use crate::tb::{Cluster, ClusterAccount, ClusterError};

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

/// What the sweep task tells the loop.
#[derive(Debug)]
pub enum SweepMessage {
    /// Accounts created after the previous page, in creation order, as the lake records them
    /// (see [`record_of`]); some may be recorded already.
    Page(Vec<AccountRecord>),
    /// A pass, started at `started`, reached the newest account.
    PassDone { started: Instant },
}

/// The accounts of `page` that `seen` does not hold, which are added to it: the loop's filter.
/// `seen` holds every account recorded in the lake or in a segment or page not yet committed.
pub fn take_new(page: Vec<AccountRecord>, seen: &mut HashSet<u128>) -> Vec<AccountRecord> {
    page.into_iter().filter(|a| seen.insert(a.id)).collect()
}

/// The lake's record of a swept account: its fields as created. `first_seen_timestamp` is its
/// creation timestamp (no later than any event that can use it), and `flags` are those it was
/// created with: `closed` is kept only if no transfer ever touched the account
/// (`closed_by_transfer` false), because an account created closed can take no transfer, and a
/// transfer-closed account reaches the lake through that transfer's event.
pub fn record_of(a: &ClusterAccount, closed_by_transfer: bool) -> AccountRecord {
    let flags = if closed_by_transfer {
        a.account.flags & !FLAG_CLOSED
    } else {
        a.account.flags
    };
    AccountRecord {
        id: a.account.id,
        ledger: a.account.ledger,
        code: a.account.code,
        flags,
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
        let mut records = Vec::with_capacity(page.len());
        for a in &page {
            let closed_by_transfer = a.account.flags & FLAG_CLOSED != 0
                && cluster.has_transfer_in(a.account.id, 0, 0).await?;
            records.push(record_of(a, closed_by_transfer));
        }
        if let Some(last) = page.last() {
            *after = last.account.timestamp;
        }
        if !records.is_empty() && tx.send(SweepMessage::Page(records)).await.is_err() {
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
    use crate::tb::{Account, Balances};

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
    fn the_loop_records_only_accounts_it_has_not_seen_and_remembers_them() {
        // 2 was recorded from a CDC event, 4 is in a segment not yet committed.
        let mut seen = HashSet::from([2u128, 4]);
        let page: Vec<AccountRecord> = (1..=5u128)
            .map(|id| record_of(&account(id, 100 + id as u64, 0), false))
            .collect();
        let new = take_new(page.clone(), &mut seen);
        let ids: Vec<u128> = new.iter().map(|a| a.id).collect();
        assert_eq!(ids, vec![1, 3, 5]);
        assert_eq!(seen, HashSet::from([1, 2, 3, 4, 5]));
        // The same page again (a pass re-reading after a restart, or a later pass): nothing new.
        assert!(take_new(page, &mut seen).is_empty());
        // Creation order is kept, so the page's first and last name its file.
        assert!(new.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
    }

    #[test]
    fn a_swept_account_is_recorded_as_created() {
        let r = record_of(&account(1, 500, FLAG_CLOSED | 1 << 3), false);
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
        // Closed by a closing transfer: that transfer's event closes it in a rebuild.
        let r = record_of(&account(1, 500, FLAG_CLOSED | 1 << 3), true);
        assert_eq!(r.flags, 1 << 3);
    }
}
