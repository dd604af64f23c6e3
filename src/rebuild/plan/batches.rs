//! Requests: accounts and transfer units merged in one timestamp order into batches of one
//! kind, skipping what a resumed target already holds.

use std::collections::VecDeque;

use super::{PlanError, PlannedAccount, PlannedTransfer};
use crate::tb::limits::BATCH_EVENTS_MAX;

/// Requests, in replay order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    Accounts(Vec<PlannedAccount>),
    Transfers(Vec<PlannedTransfer>),
}

impl Batch {
    pub fn len(&self) -> usize {
        match self {
            Batch::Accounts(a) => a.len(),
            Batch::Transfers(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a resumed target stands: everything up to these timestamps is already there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResumePoint {
    pub accounts_through: Option<u64>,
    pub transfers_through: Option<u64>,
}

/// What was skipped because the target already holds it: the resume check compares this with
/// the target before anything is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    pub accounts: u64,
    pub transfers: u64,
    pub last_account: Option<PlannedAccount>,
    pub last_transfer: Option<PlannedTransfer>,
}

/// Merges accounts (sorted by timestamp) with transfer units into batches of one kind, at most
/// `batch_max` (≤ [`BATCH_EVENTS_MAX`]) events each, never splitting a unit; skips what a resumed
/// target holds.
pub struct Batcher {
    batch_max: usize,
    accounts: Vec<PlannedAccount>,
    next_account: usize,
    current: Option<Batch>,
    done: VecDeque<Batch>,
    resume: ResumePoint,
    pub skipped: Skipped,
}

impl Batcher {
    /// `accounts` must be sorted by timestamp (the plan sorts them).
    pub fn new(accounts: Vec<PlannedAccount>, resume: ResumePoint, batch_max: usize) -> Batcher {
        assert!(accounts.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        assert!((1..=BATCH_EVENTS_MAX).contains(&batch_max));
        Batcher {
            batch_max,
            accounts,
            next_account: 0,
            current: None,
            done: VecDeque::new(),
            resume,
            skipped: Skipped::default(),
        }
    }

    /// Batches opened from now on hold at most `batch_max` (≤ [`BATCH_EVENTS_MAX`]) events.
    pub fn set_batch_max(&mut self, batch_max: usize) {
        assert!((1..=BATCH_EVENTS_MAX).contains(&batch_max));
        self.batch_max = batch_max;
    }

    pub fn push_unit(&mut self, unit: Vec<PlannedTransfer>) -> Result<(), PlanError> {
        assert!(!unit.is_empty());
        let last = unit[unit.len() - 1].transfer.timestamp;
        if unit.len() > self.batch_max {
            return Err(PlanError::ChainLongerThanBatch {
                timestamp: last,
                len: unit.len(),
                batch_max: self.batch_max,
            });
        }
        self.accounts_before(Some(last));
        let through = self.resume.transfers_through.unwrap_or(0);
        let held = unit
            .iter()
            .filter(|t| t.transfer.timestamp <= through)
            .count();
        if held == unit.len() {
            self.skipped.transfers += held as u64;
            self.skipped.last_transfer = Some(unit[held - 1]);
            return Ok(());
        }
        if held > 0 {
            return Err(PlanError::ResumeInsideChain { timestamp: through });
        }
        if !matches!(&self.current, Some(Batch::Transfers(t)) if t.len() + unit.len() <= self.batch_max)
        {
            self.flush();
            self.current = Some(Batch::Transfers(Vec::with_capacity(self.batch_max)));
        }
        match &mut self.current {
            Some(Batch::Transfers(t)) => t.extend(unit),
            _ => unreachable!("a transfers batch was just opened"),
        }
        Ok(())
    }

    /// Adds every account created before `timestamp` (all of them for `None`).
    fn accounts_before(&mut self, timestamp: Option<u64>) {
        while let Some(account) = self.accounts.get(self.next_account).copied() {
            if timestamp.is_some_and(|t| account.timestamp >= t) {
                break;
            }
            self.next_account += 1;
            if account.timestamp <= self.resume.accounts_through.unwrap_or(0) {
                self.skipped.accounts += 1;
                self.skipped.last_account = Some(account);
                continue;
            }
            if !matches!(&self.current, Some(Batch::Accounts(a)) if a.len() < self.batch_max) {
                self.flush();
                self.current = Some(Batch::Accounts(Vec::with_capacity(self.batch_max)));
            }
            match &mut self.current {
                Some(Batch::Accounts(a)) => a.push(account),
                _ => unreachable!("an accounts batch was just opened"),
            }
        }
    }

    fn flush(&mut self) {
        if let Some(batch) = self.current.take() {
            // A batch opened before `set_batch_max` lowered the bound may hold more.
            assert!(!batch.is_empty() && batch.len() <= BATCH_EVENTS_MAX);
            self.done.push_back(batch);
        }
    }

    /// No more units: the remaining accounts, then the last batch.
    pub fn finish(&mut self) {
        self.accounts_before(None);
        self.flush();
    }

    pub fn pop_batch(&mut self) -> Option<Batch> {
        self.done.pop_front()
    }
}
