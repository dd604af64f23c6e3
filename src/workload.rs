//! The reusable ledger workload: drives a cluster through the real client with every kind of
//! transfer event, deterministically from a seed, sized by a target transfer count. Used by tests,
//! the demo and benchmarks.
//!
//! What a run produces (each at least once in every run, in realistic proportions beyond a fixed
//! opening scenario): single-phase transfers; pending transfers without and with a timeout (1–2 s
//! by default, most of the latter left to expire, and the run waits for the expiries); posts of
//! the full amount, of part of it and of `u128::MAX` ("the pending amount"); voids; linked chains
//! of 2–5 transfers, about one in ten failing as a whole; balancing debits and credits (moving
//! less than asked, sometimes 0); accounts closed by the close-account recipe (a linked balancing
//! transfer and a closing pending transfer) and reopened by voiding it; debit- and
//! credit-limited accounts and transfers they reject; accounts with the `history` flag; ids at
//! u128::MAX − 1, random 128-bit ids, small ids, ids around 2^53; `user_data_*` and `code` at
//! their maxima; amounts above 10^38 on a dedicated ledger whose balances reach u128::MAX − 1000
//! (and transfers rejected for overflow); a few accounts that never see a transfer.
//!
//! An exact model of the balances decides beforehand how every transfer ends; the run checks
//! each result against it (an expected rejection is counted, anything else is an error) and, at
//! the end, checks every account's balances and `closed` flag against it. So the summary counts
//! exactly what the cluster did, and the CDC events it must have produced.

mod plan;

use crate::cdc::EventCounts;
use std::time::{Duration, Instant};

use tigerbeetle_unofficial::error::{CreateAccountsError, CreateTransfersError, SendError};
use tigerbeetle_unofficial::{account, Account, Client};

use crate::tb::limits::BATCH_EVENTS_MAX;
use plan::{Bal, Planner, Role};

/// What to generate.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Everything (ids, amounts, choices) follows from the seed.
    pub seed: u64,
    /// Transfers to submit, counting expected rejections; a short fixed scenario (about 70
    /// transfers) is always included, so small targets are exceeded.
    pub transfer_count: usize,
    /// Accounts to create (at least 16 per ledger plus 6 are created).
    pub account_count: usize,
    /// The ordinary ledgers.
    pub ledgers: Vec<u32>,
    /// The ledger of the amounts above 10^38 (must not be in `ledgers`).
    pub extreme_ledger: u32,
    /// Transfers per request, 8..=[`BATCH_EVENTS_MAX`].
    pub batch_size: usize,
    /// Timeouts of the pending transfers that expire, in seconds (inclusive range).
    pub pending_timeout_secs: (u32, u32),
    /// How long, beyond the longest timeout, the run waits for the last expiries.
    pub expiry_grace: Duration,
    /// Compare every account with the model at the end.
    pub verify_accounts: bool,
    /// How long one request may go unanswered (the client retries forever, and a cluster with
    /// another id never answers).
    pub request_timeout: Duration,
}

impl WorkloadConfig {
    /// Defaults for `transfer_count` transfers: three ledgers, about one account per eight
    /// transfers (at least 64), batches of 4,000, timeouts of 1–2 s.
    pub fn new(seed: u64, transfer_count: usize) -> WorkloadConfig {
        WorkloadConfig {
            seed,
            transfer_count,
            account_count: (transfer_count / 8).clamp(64, 1_000_000),
            ledgers: vec![1, 2, 700],
            extreme_ledger: u32::MAX,
            batch_size: 4000,
            pending_timeout_secs: (1, 2),
            expiry_grace: Duration::from_secs(30),
            verify_accounts: true,
            request_timeout: Duration::from_secs(60),
        }
    }

    fn validate(&self) -> Result<(), WorkloadError> {
        let bad = |m: &str| Err(WorkloadError::Config(m.to_string()));
        if self.ledgers.is_empty() {
            return bad("at least one ledger is needed");
        }
        if self.ledgers.contains(&0) || self.extreme_ledger == 0 {
            return bad("ledger 0 is rejected by TigerBeetle");
        }
        if self.ledgers.contains(&self.extreme_ledger) {
            return bad("extreme_ledger must differ from the ordinary ledgers");
        }
        let mut l = self.ledgers.clone();
        l.sort_unstable();
        l.dedup();
        if l.len() != self.ledgers.len() {
            return bad("ledgers must be distinct");
        }
        if !(8..=BATCH_EVENTS_MAX).contains(&self.batch_size) {
            return bad("batch_size must be within 8..=8189");
        }
        let (lo, hi) = self.pending_timeout_secs;
        if lo == 0 || hi == 0 {
            return bad("pending timeouts must be at least 1 s (0 means no timeout)");
        }
        if self.request_timeout.is_zero() {
            return bad("request_timeout must be greater than zero");
        }
        Ok(())
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadPhase {
    Accounts,
    Transfers,
    WaitingForExpiry,
    Verifying,
    Done,
}

/// Reported after each request and at each phase change.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadProgress {
    pub phase: WorkloadPhase,
    pub accounts_created: usize,
    pub transfers_sent: usize,
    pub transfers_target: usize,
    pub elapsed: Duration,
}

/// Successful transfers by kind (each successful transfer is counted once in its kind, plus in
/// `linked_*` when in a chain; `expired` counts pending transfers with a timeout that expired).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferCounts {
    /// Single-phase, not balancing.
    pub single_phase: usize,
    pub balancing_debit: usize,
    pub balancing_credit: usize,
    /// Balancing transfers that moved 0.
    pub balancing_moved_zero: usize,
    /// Pending without timeout, not closing.
    pub pending: usize,
    pub pending_with_timeout: usize,
    /// Pending with `closing_debit` or `closing_credit`.
    pub closing: usize,
    pub posted_full: usize,
    pub posted_partial: usize,
    /// Posted with amount = u128::MAX.
    pub posted_max: usize,
    pub voided: usize,
    /// Voids of closing pending transfers (they reopen the account).
    pub reopened: usize,
    pub expired: usize,
    pub linked_chains: usize,
    pub linked_transfers: usize,
    /// Transfers whose (actual) amount is above 10^38.
    pub amounts_above_1e38: usize,
}

/// Transfers rejected on purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectedCounts {
    pub failed_chains: usize,
    /// Every transfer of a failed chain (the failing one included).
    pub failed_chain_transfers: usize,
    /// `exceeds_credits` (debits_must_not_exceed_credits), outside chains.
    pub exceeds_credits: usize,
    /// `exceeds_debits` (credits_must_not_exceed_debits).
    pub exceeds_debits: usize,
    /// `debit_account_already_closed` / `credit_account_already_closed`.
    pub account_closed: usize,
    /// `overflows_*` on the extreme ledger.
    pub overflows: usize,
}

impl RejectedCounts {
    pub fn total(&self) -> usize {
        self.failed_chain_transfers
            + self.exceeds_credits
            + self.exceeds_debits
            + self.account_closed
            + self.overflows
    }
}

/// Accounts created, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountCounts {
    pub created: usize,
    pub history: usize,
    pub debits_must_not_exceed_credits: usize,
    pub credits_must_not_exceed_debits: usize,
    pub untouched: usize,
    pub closed_at_end: usize,
}

/// What a run did. Counts are of what the cluster confirmed.
#[derive(Debug, Clone)]
pub struct WorkloadSummary {
    pub accounts: AccountCounts,
    pub transfers: TransferCounts,
    pub rejected: RejectedCounts,
    /// The CDC events the run produced (one per successful transfer, plus one per expiry).
    pub events: EventCounts,
    /// Every account created, in creation order.
    pub account_ids: Vec<u128>,
    /// Accounts that never appear in a transfer (so never in CDC).
    pub untouched_account_ids: Vec<u128>,
    /// Every successful transfer, in submission order (= timestamp order).
    pub transfer_ids: Vec<u128>,
    /// Transfers rejected on purpose (they produce no event).
    pub rejected_transfer_ids: Vec<u128>,
    /// Pending transfers that expired (each produced a `two_phase_expired` event).
    pub expired_transfer_ids: Vec<u128>,
    /// Requests sent for transfers.
    pub requests: usize,
    pub elapsed: Duration,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("invalid workload config: {0}")]
    Config(String),
    #[error("{what} was refused: {message}")]
    Refused { what: String, message: String },
    #[error("{what} failed")]
    Request {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "{what} got no reply within {timeout_s} s: is the cluster reachable, and is its cluster \
         id right? (a cluster with another id never answers)"
    )]
    Unanswered { what: String, timeout_s: u64 },
    #[error(
        "transfer {id} (request {request}, index {index}) was expected to {expected} but \
         {actual}: {transfer}"
    )]
    UnexpectedResult {
        id: u128,
        request: usize,
        index: usize,
        expected: String,
        actual: String,
        transfer: String,
    },
    #[error(
        "{left} of {total} accounts still held expiring pending amounts {waited:?} after the \
         last request (longest timeout {timeout_secs} s); first: {first}"
    )]
    ExpiryTimeout {
        left: usize,
        total: usize,
        waited: Duration,
        timeout_secs: u32,
        first: String,
    },
    #[error("account {id}: the cluster has {actual}, the workload expected {expected}")]
    ModelMismatch {
        id: u128,
        expected: String,
        actual: String,
    },
}

/// Runs the workload against `client`'s cluster (which must not hold these ids yet: use a fresh
/// cluster). `progress` is called after every request and at each phase.
pub async fn run(
    client: &Client,
    cfg: &WorkloadConfig,
    mut progress: impl FnMut(WorkloadProgress),
) -> Result<WorkloadSummary, WorkloadError> {
    cfg.validate()?;
    let start = Instant::now();
    let mut planner = Planner::new(cfg);
    let target = cfg.transfer_count;
    let report = |phase, accounts_created, transfers_sent| WorkloadProgress {
        phase,
        accounts_created,
        transfers_sent,
        transfers_target: target,
        elapsed: start.elapsed(),
    };

    // Accounts.
    let accounts = planner.accounts();
    progress(report(WorkloadPhase::Accounts, 0, 0));
    let mut created = 0;
    for chunk in accounts.chunks(cfg.batch_size) {
        let what = || "create_accounts".to_string();
        match bounded(cfg, what, client.create_accounts(chunk.to_vec())).await? {
            Ok(()) => {}
            Err(CreateAccountsError::Api(e)) => {
                let first = e.as_slice().first();
                return Err(WorkloadError::Refused {
                    what: "create_accounts".into(),
                    message: match first {
                        Some(f) => format!(
                            "{} of {} accounts rejected; first: account {} {:?}",
                            e.as_slice().len(),
                            chunk.len(),
                            chunk.get(f.index() as usize).map_or(0, |a| a.id()),
                            f.kind()
                        ),
                        None => "rejected".into(),
                    },
                });
            }
            Err(e) => return Err(request_failed(what(), e)),
        }
        created += chunk.len();
        progress(report(WorkloadPhase::Accounts, created, 0));
    }

    // Transfers.
    let mut sent = 0;
    let mut requests = 0;
    let mut results: Vec<Option<u32>> = Vec::new();
    while let Some(batch) = planner.next_batch() {
        let transfers: Vec<_> = batch.iter().map(|p| p.transfer).collect();
        results.clear();
        results.resize(batch.len(), None);
        let what = || format!("create_transfers (request {requests})");
        match bounded(cfg, what, client.create_transfers(transfers)).await? {
            Ok(()) => {}
            Err(CreateTransfersError::Api(e)) => {
                for f in e.as_slice() {
                    if let Some(slot) = results.get_mut(f.index() as usize) {
                        *slot = Some(f.inner().code().get());
                    }
                }
            }
            Err(e) => return Err(request_failed(what(), e)),
        }
        for (index, (planned, actual)) in batch.iter().zip(&results).enumerate() {
            let expected = planned.expect.map(|k| k as u32);
            if expected != *actual {
                return Err(WorkloadError::UnexpectedResult {
                    id: planned.transfer.id(),
                    request: requests,
                    index,
                    expected: match planned.expect {
                        Some(k) => format!("fail with {k:?}"),
                        None => "succeed".into(),
                    },
                    actual: match *actual {
                        Some(code) => format!("failed with result code {code}"),
                        None => "succeeded".into(),
                    },
                    transfer: format!("{:?}", planned.transfer),
                });
            }
        }
        requests += 1;
        sent += batch.len();
        progress(report(WorkloadPhase::Transfers, created, sent));
    }
    let last_request = Instant::now();

    // Expiries: wait until every account's pending balances no longer hold expiring amounts.
    let expiring: Vec<usize> = planner
        .accts
        .iter()
        .enumerate()
        .filter(|(_, a)| a.expiring_dp > 0 || a.expiring_cp > 0)
        .map(|(i, _)| i)
        .collect();
    if !planner.expiring_ids.is_empty() {
        progress(report(WorkloadPhase::WaitingForExpiry, created, sent));
        let timeout_secs = planner.max_timeout_secs();
        let limit = Duration::from_secs(u64::from(timeout_secs)) + cfg.expiry_grace;
        loop {
            let ids: Vec<u128> = expiring
                .iter()
                .map(|&i| planner.accts[i].account.id())
                .collect();
            let found = lookup(client, cfg, &ids).await?;
            let left: Vec<String> = expiring
                .iter()
                .zip(&found)
                .filter_map(|(&i, got)| {
                    let want = planner.accts[i].final_bal();
                    let ok = got.is_some_and(|g| {
                        g.debits_pending() == want.dp && g.credits_pending() == want.cp
                    });
                    (!ok).then(|| {
                        format!(
                            "account {} pending debits/credits {:?} (want {}/{})",
                            planner.accts[i].account.id(),
                            got.map(|g| (g.debits_pending(), g.credits_pending())),
                            want.dp,
                            want.cp
                        )
                    })
                })
                .collect();
            if left.is_empty() {
                break;
            }
            let waited = last_request.elapsed();
            if waited >= limit {
                return Err(WorkloadError::ExpiryTimeout {
                    left: left.len(),
                    total: expiring.len(),
                    waited,
                    timeout_secs,
                    first: left.into_iter().next().unwrap_or_default(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Every account against the model.
    if cfg.verify_accounts {
        progress(report(WorkloadPhase::Verifying, created, sent));
        let ids: Vec<u128> = planner.accts.iter().map(|a| a.account.id()).collect();
        let found = lookup(client, cfg, &ids).await?;
        for (a, got) in planner.accts.iter().zip(&found) {
            let want = a.final_bal();
            let got_bal = got.map(|g| Bal {
                dp: g.debits_pending(),
                dpo: g.debits_posted(),
                cp: g.credits_pending(),
                cpo: g.credits_posted(),
                closed: g.flags().contains(account::Flags::CLOSED),
            });
            if got_bal != Some(want) {
                return Err(WorkloadError::ModelMismatch {
                    id: a.account.id(),
                    expected: format!("{want:?}"),
                    actual: format!("{got_bal:?}"),
                });
            }
        }
    }

    let accts = &planner.accts;
    let flag_count = |f: account::Flags| {
        accts
            .iter()
            .filter(|a| a.account.flags().contains(f))
            .count()
    };
    let accounts = AccountCounts {
        created,
        history: flag_count(account::Flags::HISTORY),
        debits_must_not_exceed_credits: flag_count(account::Flags::DEBITS_MUST_NOT_EXCEED_CREDITS),
        credits_must_not_exceed_debits: flag_count(account::Flags::CREDITS_MUST_NOT_EXCEED_DEBITS),
        untouched: accts.iter().filter(|a| a.role == Role::Untouched).count(),
        closed_at_end: accts.iter().filter(|a| a.bal.closed).count(),
    };
    let untouched_account_ids = accts
        .iter()
        .filter(|a| a.role == Role::Untouched)
        .map(|a| a.account.id())
        .collect();
    let account_ids = accts.iter().map(|a| a.account.id()).collect();
    progress(report(WorkloadPhase::Done, created, sent));
    Ok(WorkloadSummary {
        accounts,
        transfers: planner.counts,
        rejected: planner.rejected,
        events: planner.events,
        account_ids,
        untouched_account_ids,
        transfer_ids: std::mem::take(&mut planner.transfer_ids),
        rejected_transfer_ids: std::mem::take(&mut planner.rejected_ids),
        expired_transfer_ids: std::mem::take(&mut planner.expiring_ids),
        requests,
        elapsed: start.elapsed(),
    })
}

/// Looks `ids` up, in order; `None` where an account does not exist.
async fn lookup(
    client: &Client,
    cfg: &WorkloadConfig,
    ids: &[u128],
) -> Result<Vec<Option<Account>>, WorkloadError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(cfg.batch_size) {
        let what = || "lookup_accounts".to_string();
        let found = bounded(cfg, what, client.lookup_accounts(chunk.to_vec()))
            .await?
            .map_err(|e: SendError| request_failed(what(), e))?;
        // Results come back in request order, missing ids left out.
        let mut it = found.into_iter().peekable();
        for &id in chunk {
            if it.peek().is_some_and(|a| a.id() == id) {
                out.push(it.next());
            } else {
                out.push(None);
            }
        }
    }
    Ok(out)
}

/// `request`'s result, or [`WorkloadError::Unanswered`] after `cfg.request_timeout`.
async fn bounded<T>(
    cfg: &WorkloadConfig,
    what: impl Fn() -> String,
    request: impl std::future::Future<Output = T>,
) -> Result<T, WorkloadError> {
    tokio::time::timeout(cfg.request_timeout, request)
        .await
        .map_err(|_| WorkloadError::Unanswered {
            what: what(),
            timeout_s: cfg.request_timeout.as_secs(),
        })
}

fn request_failed(
    what: String,
    e: impl std::error::Error + Send + Sync + 'static,
) -> WorkloadError {
    WorkloadError::Request {
        what,
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_all(cfg: &WorkloadConfig) -> (Vec<u128>, Planner) {
        let mut p = Planner::new(cfg);
        let mut ids = Vec::new();
        while let Some(b) = p.next_batch() {
            assert!(b.len() <= cfg.batch_size);
            let last = b.last().map(|t| t.transfer.flags());
            assert!(
                !last.is_some_and(|f| f.contains(tigerbeetle_unofficial::transfer::Flags::LINKED))
            );
            ids.extend(b.iter().map(|t| t.transfer.id()));
        }
        (ids, p)
    }

    #[test]
    fn deterministic_and_complete() {
        let cfg = WorkloadConfig::new(7, 1000);
        let (a, p) = plan_all(&cfg);
        let (b, _) = plan_all(&cfg);
        assert_eq!(a, b);
        assert!(a.len() >= 1000);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), a.len(), "transfer ids are unique");
        let c = p.counts;
        for (name, n) in [
            ("single", c.single_phase),
            ("balancing_debit", c.balancing_debit),
            ("balancing_credit", c.balancing_credit),
            ("balancing_zero", c.balancing_moved_zero),
            ("pending", c.pending),
            ("pending_timeout", c.pending_with_timeout),
            ("closing", c.closing),
            ("post_full", c.posted_full),
            ("post_partial", c.posted_partial),
            ("post_max", c.posted_max),
            ("void", c.voided),
            ("reopen", c.reopened),
            ("expired", c.expired),
            ("chains", c.linked_chains),
            ("above_1e38", c.amounts_above_1e38),
            ("failed_chains", p.rejected.failed_chains),
            ("exceeds_credits", p.rejected.exceeds_credits),
            ("exceeds_debits", p.rejected.exceeds_debits),
            ("closed", p.rejected.account_closed),
            ("overflows", p.rejected.overflows),
        ] {
            assert!(n > 0, "{name} never planned: {c:?} {:?}", p.rejected);
        }
        assert_eq!(
            (p.events.total() - p.events.two_phase_expired) as usize + p.rejected.total(),
            a.len()
        );
        assert!(a.contains(&(u128::MAX - 1)));
        assert!(a.contains(&(1u128 << 53)));
        assert_ne!(plan_all(&WorkloadConfig::new(8, 1000)).0, a);
    }

    #[test]
    fn small_batches_keep_chains_whole() {
        let mut cfg = WorkloadConfig::new(3, 3000);
        cfg.batch_size = 8;
        let (ids, _) = plan_all(&cfg);
        assert!(ids.len() >= 3000);
    }
}
