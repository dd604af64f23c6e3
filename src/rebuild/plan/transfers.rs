//! The transfers a rebuild creates: one per event row (an expiry becomes a void), grouped into
//! units that are never split (a single transfer, or a whole linked chain), and tallied with
//! every way they differ from the source.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{expiry_void_id, PlanError};
use crate::cdc::{EventCounts, EventType};
use crate::lake::EventRow;
use crate::tb::flags::transfer as transfer_flags;
use crate::tb::limits::{self, BATCH_EVENTS_MAX};
use crate::tb::Transfer;

/// A transfer as it will be created, and the lake event it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedTransfer {
    /// Its `timeout` is always 0: imported transfers cannot have one.
    pub transfer: Transfer,
    /// `TwoPhaseExpired` for the void standing for an expiry.
    pub event_type: EventType,
}

impl PlannedTransfer {
    /// The transfer an event row becomes (for an expiry: the void that reproduces it).
    pub fn from_row(row: &EventRow) -> Result<PlannedTransfer, PlanError> {
        let t = &row.transfer;
        let expiry = row.event_type == EventType::TwoPhaseExpired;
        if !expiry && t.timestamp != row.timestamp {
            return Err(PlanError::TransferTimestampMismatch {
                timestamp: row.timestamp,
                event_type: row.event_type,
                transfer_timestamp: t.timestamp,
            });
        }
        let base = Transfer {
            id: t.id,
            debit_account_id: row.debit_account.id,
            credit_account_id: row.credit_account.id,
            amount: t.amount,
            pending_id: t.pending_id,
            user_data_128: t.user_data_128,
            user_data_64: t.user_data_64,
            user_data_32: t.user_data_32,
            timeout: 0,
            ledger: row.ledger,
            code: t.code,
            flags: t.flags | transfer_flags::IMPORTED,
            timestamp: row.timestamp,
        };
        let transfer = if expiry {
            // Accounts, amount, ledger, code and user data are the pending transfer's: what
            // TigerBeetle would store for a void that left them 0.
            Transfer {
                id: expiry_void_id(t.id),
                pending_id: t.id,
                flags: transfer_flags::VOID_PENDING_TRANSFER | transfer_flags::IMPORTED,
                ..base
            }
        } else {
            base
        };
        Ok(PlannedTransfer {
            transfer,
            event_type: row.event_type,
        })
    }

    pub fn is_linked(&self) -> bool {
        self.transfer.flags & transfer_flags::LINKED != 0
    }
}

/// A pending transfer whose timeout was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZeroedTimeout {
    pub transfer_id: u128,
    pub timestamp: u64,
    pub timeout_s: u32,
    /// When the source would expire it: timestamp + timeout.
    pub expires_at: u64,
}

/// A void added to reproduce an expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryVoid {
    pub void_id: u128,
    pub pending_id: u128,
    pub timestamp: u64,
}

/// Why a transfer lost its `linked` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainCutReason {
    /// The chain continues after `--until`.
    Until,
    /// The chain continues with a transfer of a ledger not rebuilt.
    LedgerFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainCut {
    pub transfer_id: u128,
    pub timestamp: u64,
    pub reason: ChainCutReason,
}

/// A pending transfer neither posted, voided nor expired at `--until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenPending {
    pub transfer_id: u128,
    pub timestamp: u64,
    pub amount: u128,
    pub ledger: u32,
    /// The source's timeout (seconds), dropped in the target; 0 if it had none.
    pub timeout_s: u32,
    /// When the source expires it, if it had a timeout (possibly after `--until`).
    pub expires_at: Option<u64>,
}

/// What the transfers of a replay amount to, and every way they differ from the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferTally {
    pub events: EventCounts,
    pub first_timestamp: Option<u64>,
    pub last_timestamp: Option<u64>,
    pub timeouts_zeroed: Vec<ZeroedTimeout>,
    pub expiry_voids: Vec<ExpiryVoid>,
    pub chain_cuts: Vec<ChainCut>,
    /// Keyed by transfer id.
    pub open_pending: BTreeMap<u128, OpenPending>,
}

impl TransferTally {
    fn record(&mut self, row: &EventRow) {
        let t = &row.transfer;
        self.events.add(row.event_type);
        self.first_timestamp.get_or_insert(row.timestamp);
        self.last_timestamp = Some(row.timestamp);
        match row.event_type {
            EventType::SinglePhase => {}
            EventType::TwoPhasePending => {
                let expires_at = limits::expires_at(t.timestamp, t.timeout);
                if let Some(expires_at) = expires_at {
                    self.timeouts_zeroed.push(ZeroedTimeout {
                        transfer_id: t.id,
                        timestamp: t.timestamp,
                        timeout_s: t.timeout,
                        expires_at,
                    });
                }
                self.open_pending.insert(
                    t.id,
                    OpenPending {
                        transfer_id: t.id,
                        timestamp: t.timestamp,
                        amount: t.amount,
                        ledger: row.ledger,
                        timeout_s: t.timeout,
                        expires_at,
                    },
                );
            }
            EventType::TwoPhasePosted | EventType::TwoPhaseVoided => {
                self.open_pending.remove(&t.pending_id);
            }
            EventType::TwoPhaseExpired => {
                self.open_pending.remove(&t.id);
                self.expiry_voids.push(ExpiryVoid {
                    void_id: expiry_void_id(t.id),
                    pending_id: t.id,
                    timestamp: row.timestamp,
                });
            }
        }
    }
}

/// Turns event rows (in timestamp order, all ≤ `--until`) into units of transfers: a single
/// transfer, or a whole linked chain. Rows of ledgers not rebuilt are dropped, and a chain that
/// loses its end (to `--until` or to the ledger filter) is closed on its last kept transfer.
pub struct Sequencer {
    ledgers: Option<BTreeSet<u32>>,
    previous: Option<u64>,
    in_chain: bool,
    chain: Vec<PlannedTransfer>,
    ready: VecDeque<Vec<PlannedTransfer>>,
    pub tally: TransferTally,
}

impl Sequencer {
    pub fn new(ledgers: Option<BTreeSet<u32>>) -> Sequencer {
        Sequencer {
            ledgers,
            previous: None,
            in_chain: false,
            chain: Vec::new(),
            ready: VecDeque::new(),
            tally: TransferTally::default(),
        }
    }

    pub fn keeps_ledger(&self, ledger: u32) -> bool {
        self.ledgers.as_ref().is_none_or(|l| l.contains(&ledger))
    }

    pub fn push(&mut self, row: &EventRow) -> Result<(), PlanError> {
        if let Some(previous) = self.previous.filter(|&p| p >= row.timestamp) {
            return Err(PlanError::EventsOutOfOrder {
                previous,
                timestamp: row.timestamp,
            });
        }
        self.previous = Some(row.timestamp);
        let kept = self.keeps_ledger(row.ledger);
        let transfer = PlannedTransfer::from_row(row)?;
        if kept {
            self.tally.record(row);
        }
        let linked = transfer.is_linked();
        if self.in_chain && row.event_type == EventType::TwoPhaseExpired {
            return Err(PlanError::ChainInterrupted {
                timestamp: row.timestamp,
            });
        }
        if self.in_chain || linked {
            self.in_chain = true;
            if kept {
                if self.chain.len() == BATCH_EVENTS_MAX {
                    return Err(PlanError::ChainTooLong {
                        timestamp: row.timestamp,
                    });
                }
                self.chain.push(transfer);
            }
            if !linked {
                self.close_chain(if kept {
                    None
                } else {
                    Some(ChainCutReason::LedgerFilter)
                });
            }
        } else if kept {
            self.ready.push_back(vec![transfer]);
        }
        Ok(())
    }

    /// No more rows: a chain still open continues after `--until`.
    pub fn finish(&mut self) {
        if self.in_chain {
            self.close_chain(Some(ChainCutReason::Until));
        }
    }

    /// Ends the open chain; `cut` says why its last kept transfer must lose `linked`, if its
    /// real end is not replayed.
    fn close_chain(&mut self, cut: Option<ChainCutReason>) {
        self.in_chain = false;
        let mut chain = std::mem::take(&mut self.chain);
        if let (Some(reason), Some(last)) = (cut, chain.last_mut()) {
            assert!(last.is_linked());
            last.transfer.flags &= !transfer_flags::LINKED;
            self.tally.chain_cuts.push(ChainCut {
                transfer_id: last.transfer.id,
                timestamp: last.transfer.timestamp,
                reason,
            });
        }
        if !chain.is_empty() {
            self.ready.push_back(chain);
        }
    }

    pub fn pop_unit(&mut self) -> Option<Vec<PlannedTransfer>> {
        self.ready.pop_front()
    }
}
