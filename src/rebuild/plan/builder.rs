//! The plan's numbers: the sequencer and batcher, fed every row once, plus the checks on what
//! the lake holds (unknown accounts, clashing void ids). A dry run only counts; a replay builds
//! the plan while it reads the lake, the one time it reads it, and takes the batches from here.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use super::{
    expiry_void_id, AccountDeviations, Batch, Batcher, ExpiryVoid, PlanError, PlannedAccount,
    PlannedTransfer, ResumePoint, Sequencer, Skipped, TransferTally,
};
use crate::cdc::EventType;
use crate::lake::EventRow;

/// The whole plan's numbers, computed by feeding every row once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSummary {
    pub until: u64,
    pub accounts: u64,
    pub account_deviations: AccountDeviations,
    pub transfers: TransferTally,
    /// Transfers created: one per event, the void of an expiry included.
    pub transfers_created: u64,
    pub account_batches: u64,
    pub transfer_batches: u64,
    pub first_timestamp: Option<u64>,
    pub last_timestamp: Option<u64>,
}

/// Builds a [`PlanSummary`] from the planned accounts and the event rows: runs the same sequencer
/// and batcher as the replay, and checks what the replay would otherwise discover half-way
/// (unknown accounts, clashing void ids).
pub struct PlanBuilder {
    until: u64,
    accounts: Vec<PlannedAccount>,
    account_deviations: AccountDeviations,
    account_timestamps: HashMap<u128, u64>,
    sequencer: Sequencer,
    batcher: Batcher,
    /// Every transfer id of the lake up to `until`, in every ledger: what a void id must avoid.
    transfer_ids: HashSet<u128>,
    /// The voids so far, by id: what a later transfer id must avoid.
    void_ids: HashMap<u128, ExpiryVoid>,
    transfers_created: u64,
    account_batches: u64,
    transfer_batches: u64,
    /// Batches kept for a replay (`None`: counted only).
    ready: Option<VecDeque<Batch>>,
    rows_finished: bool,
}

impl PlanBuilder {
    pub fn new(
        until: u64,
        ledgers: Option<BTreeSet<u32>>,
        accounts: Vec<PlannedAccount>,
        account_deviations: AccountDeviations,
        batch_max: usize,
    ) -> PlanBuilder {
        PlanBuilder {
            until,
            account_timestamps: accounts.iter().map(|a| (a.id, a.timestamp)).collect(),
            batcher: Batcher::new(accounts.clone(), ResumePoint::default(), batch_max),
            accounts,
            account_deviations,
            sequencer: Sequencer::new(ledgers),
            transfer_ids: HashSet::new(),
            void_ids: HashMap::new(),
            transfers_created: 0,
            account_batches: 0,
            transfer_batches: 0,
            ready: None,
            rows_finished: false,
        }
    }

    /// A builder that keeps its batches for [`PlanBuilder::pop_batch`], skipping what a resumed
    /// target holds (`resume`).
    pub fn for_replay(
        until: u64,
        ledgers: Option<BTreeSet<u32>>,
        accounts: Vec<PlannedAccount>,
        account_deviations: AccountDeviations,
        batch_max: usize,
        resume: ResumePoint,
    ) -> PlanBuilder {
        let mut builder = PlanBuilder::new(until, ledgers, accounts, account_deviations, batch_max);
        builder.batcher = Batcher::new(builder.accounts.clone(), resume, batch_max);
        builder.ready = Some(VecDeque::new());
        builder
    }

    /// Feeds rows in timestamp order; rows after `until` are ignored. A void id that clashes
    /// with a transfer id is refused as soon as both have been seen, before either is batched.
    pub fn push_rows(&mut self, rows: &[EventRow]) -> Result<(), PlanError> {
        assert!(!self.rows_finished, "rows pushed after finish_rows");
        for row in rows.iter().take_while(|r| r.timestamp <= self.until) {
            if row.event_type != EventType::TwoPhaseExpired {
                if let Some(v) = self.void_ids.get(&row.transfer.id) {
                    return Err(void_unusable(
                        v,
                        "is already the id of a transfer in the lake",
                    ));
                }
                self.transfer_ids.insert(row.transfer.id);
            } else if self.sequencer.keeps_ledger(row.ledger) {
                let void = ExpiryVoid {
                    void_id: expiry_void_id(row.transfer.id),
                    pending_id: row.transfer.id,
                    timestamp: row.timestamp,
                };
                if let Some(why) = self.void_id_problem(void.void_id) {
                    return Err(void_unusable(&void, why));
                }
                self.void_ids.insert(void.void_id, void);
            }
            self.sequencer.push(row)?;
        }
        self.drain()
    }

    fn void_id_problem(&self, void_id: u128) -> Option<&'static str> {
        if void_id == 0 {
            Some("is 0")
        } else if void_id == u128::MAX {
            Some("is 2^128-1")
        } else if self.transfer_ids.contains(&void_id) {
            Some("is already the id of a transfer in the lake")
        } else {
            None
        }
    }

    /// The next batch of a replay builder, in replay order.
    pub fn pop_batch(&mut self) -> Option<Batch> {
        self.ready.as_mut().and_then(VecDeque::pop_front)
    }

    /// What the batcher skipped because a resumed target holds it.
    pub fn skipped(&self) -> &Skipped {
        &self.batcher.skipped
    }

    /// Batches built from now on hold at most `batch_max` events.
    pub fn set_batch_max(&mut self, batch_max: usize) {
        self.batcher.set_batch_max(batch_max);
    }

    /// No more rows: closes the last chain and builds the last batches.
    pub fn finish_rows(&mut self) -> Result<(), PlanError> {
        if self.rows_finished {
            return Ok(());
        }
        self.rows_finished = true;
        self.sequencer.finish();
        self.drain()?;
        self.batcher.finish();
        self.drain()
    }

    fn drain(&mut self) -> Result<(), PlanError> {
        while let Some(unit) = self.sequencer.pop_unit() {
            for t in &unit {
                self.check_accounts(t)?;
            }
            self.transfers_created += unit.len() as u64;
            self.batcher.push_unit(unit)?;
        }
        while let Some(batch) = self.batcher.pop_batch() {
            match batch {
                Batch::Accounts(_) => self.account_batches += 1,
                Batch::Transfers(_) => self.transfer_batches += 1,
            }
            if let Some(ready) = &mut self.ready {
                ready.push_back(batch);
            }
        }
        Ok(())
    }

    fn check_accounts(&self, planned: &PlannedTransfer) -> Result<(), PlanError> {
        let t = &planned.transfer;
        for account_id in [t.debit_account_id, t.credit_account_id] {
            match self.account_timestamps.get(&account_id) {
                Some(&created) if created < t.timestamp => {}
                _ => {
                    return Err(PlanError::MissingAccount {
                        transfer_id: t.id,
                        timestamp: t.timestamp,
                        account_id,
                    })
                }
            }
        }
        Ok(())
    }

    /// The summary (after [`PlanBuilder::finish_rows`], called here if it was not).
    pub fn finish(mut self) -> Result<PlanSummary, PlanError> {
        self.finish_rows()?;
        for v in &self.sequencer.tally.expiry_voids {
            if let Some(why) = self.void_id_problem(v.void_id) {
                return Err(void_unusable(v, why));
            }
        }
        let tally = self.sequencer.tally;
        let account_ts = |f: fn(&[PlannedAccount]) -> Option<&PlannedAccount>| {
            f(&self.accounts).map(|a| a.timestamp)
        };
        let first = [account_ts(<[_]>::first), tally.first_timestamp];
        let last = [account_ts(<[_]>::last), tally.last_timestamp];
        Ok(PlanSummary {
            until: self.until,
            accounts: self.accounts.len() as u64,
            account_deviations: self.account_deviations,
            transfers_created: self.transfers_created,
            account_batches: self.account_batches,
            transfer_batches: self.transfer_batches,
            first_timestamp: first.into_iter().flatten().min(),
            last_timestamp: last.into_iter().flatten().max(),
            transfers: tally,
        })
    }
}

fn void_unusable(v: &ExpiryVoid, why: &'static str) -> PlanError {
    PlanError::ExpiryVoidIdUnusable {
        pending_id: v.pending_id,
        void_id: v.void_id,
        timestamp: v.timestamp,
        why,
    }
}
