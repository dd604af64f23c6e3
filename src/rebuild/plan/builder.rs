//! The plan's numbers: the same sequencer and batcher as the replay, fed every row once, plus
//! the checks the replay would otherwise only meet half-way (unknown accounts, clashing void
//! ids).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{
    AccountDeviations, Batch, Batcher, PlanError, PlannedAccount, PlannedTransfer, ResumePoint,
    Sequencer, TransferTally,
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
    transfers_created: u64,
    account_batches: u64,
    transfer_batches: u64,
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
            transfers_created: 0,
            account_batches: 0,
            transfer_batches: 0,
        }
    }

    /// Feeds rows in timestamp order; rows after `until` are ignored.
    pub fn push_rows(&mut self, rows: &[EventRow]) -> Result<(), PlanError> {
        for row in rows.iter().take_while(|r| r.timestamp <= self.until) {
            if row.event_type != EventType::TwoPhaseExpired {
                self.transfer_ids.insert(row.transfer.id);
            }
            self.sequencer.push(row)?;
        }
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

    pub fn finish(mut self) -> Result<PlanSummary, PlanError> {
        self.sequencer.finish();
        self.drain()?;
        self.batcher.finish();
        self.drain()?;
        for v in &self.sequencer.tally.expiry_voids {
            let why = if v.void_id == 0 {
                Some("is 0")
            } else if v.void_id == u128::MAX {
                Some("is 2^128-1")
            } else if self.transfer_ids.contains(&v.void_id) {
                Some("is already the id of a transfer in the lake")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(PlanError::ExpiryVoidIdUnusable {
                    pending_id: v.pending_id,
                    void_id: v.void_id,
                    timestamp: v.timestamp,
                    why,
                });
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
