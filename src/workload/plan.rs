//! The pure half of the workload: a deterministic generator that plans batches of transfers and
//! an exact model of the balances they produce, so that every transfer's result (success, or the
//! precise error of an expected failure) is known before it is sent.
//!
//! Exactness rests on one partition: pending transfers with a timeout only touch `Plain`
//! accounts, and every check that depends on balances (limits, balancing, closing) only
//! constrains accounts of the other roles. Expiries, which happen at a time the model does not
//! know, therefore never change a predicted result.

use std::collections::{HashMap, VecDeque};

use tigerbeetle_unofficial::error::CreateTransferErrorKind as Ek;
use tigerbeetle_unofficial::{account, transfer, Account, Transfer};

use super::{EventCounts, RejectedCounts, TransferCounts, WorkloadConfig};

/// 10^38: amounts above it only go to the extreme ledger.
pub(crate) const E38: u128 = 100_000_000_000_000_000_000_000_000_000_000_000_000;
/// 2^53: the largest integer that JSON numbers carry exactly.
const P53: u128 = 1 << 53;

mod accounts;
mod drafting;
mod model;
mod random;
mod rng;
mod scenarios;

use accounts::{new_acct, user_data_128, user_data_32, user_data_64};
use rng::IdGen;
pub(crate) use rng::Rng;

// ---------------------------------------------------------------------------------------------
// Model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Ordinary accounts; the only ones pending transfers with a timeout touch.
    Plain,
    /// Ordinary accounts never touched by a timeout; the constrained side of balancing.
    Stable,
    /// `debits_must_not_exceed_credits`.
    DebitLimited,
    /// `credits_must_not_exceed_debits`.
    CreditLimited,
    /// Closed and reopened by the close-account recipe (half debit-, half credit-limited).
    Closable,
    /// Never in any transfer.
    Untouched,
    /// The extreme-amount ledger.
    Extreme,
}

/// Balances as the cluster keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bal {
    pub dp: u128,
    pub dpo: u128,
    pub cp: u128,
    pub cpo: u128,
    pub closed: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Acct {
    pub account: Account,
    pub role: Role,
    pub dmnec: bool,
    pub cmned: bool,
    pub bal: Bal,
    /// Pending amounts that will expire (removed from `bal` once expired).
    pub expiring_dp: u128,
    pub expiring_cp: u128,
}

impl Acct {
    /// The balances once every expiring pending transfer has expired.
    pub(crate) fn final_bal(&self) -> Bal {
        Bal {
            dp: self.bal.dp - self.expiring_dp,
            cp: self.bal.cp - self.expiring_cp,
            ..self.bal
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PState {
    Open,
    Resolved,
    Expiring,
}

#[derive(Debug, Clone, Copy)]
struct Pend {
    id: u128,
    dr: u32,
    cr: u32,
    amount: u128,
    state: PState,
}

#[derive(Debug, Default)]
struct Pools {
    plain: Vec<usize>,
    stable: Vec<usize>,
    dlim: Vec<usize>,
    clim: Vec<usize>,
    closable: Vec<usize>,
    /// plain ∪ stable
    ordinary: Vec<usize>,
    /// stable ∪ dlim: may be the constrained side of `balancing_debit`.
    bal_debit: Vec<usize>,
    /// stable ∪ clim: may be the constrained side of `balancing_credit`.
    bal_credit: Vec<usize>,
}

/// What a planned transfer is, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Single,
    Balancing { debit: bool, credit: bool },
    Pending,
    PendingTimeout,
    Closing,
    PostFull,
    PostPartial,
    PostMax,
    Void,
    Reopen,
}

/// One transfer of a batch and what the model says will happen to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Planned {
    pub transfer: Transfer,
    /// `None`: succeeds. `Some(kind)`: fails with exactly that result.
    pub expect: Option<Ek>,
}

/// A transfer being planned.
struct Draft {
    transfer: Transfer,
    tag: Tag,
    /// Debit and credit account (indices into `accts`); for post/void, the pending's.
    dr: usize,
    cr: usize,
    /// A pending with a timeout that is left to expire.
    expiring: bool,
    /// A closing pending: the account it closes.
    closes: Option<usize>,
}

type Step = fn(&mut Planner);

pub(crate) struct Planner {
    rng: Rng,
    tids: IdGen,
    batch_size: usize,
    target: usize,
    timeout: (u32, u32),
    pub accts: Vec<Acct>,
    pools: Vec<Pools>,
    pends: Vec<Pend>,
    pend_by_id: HashMap<u128, usize>,
    /// Open pending transfers without timeout (indices into `pends`), resolvable any time.
    open: Vec<usize>,
    /// Closable accounts closed by a pending transfer: (account, pending).
    closed: Vec<(usize, usize)>,
    extreme: [usize; 3],
    scenario: Vec<Step>,
    ready: VecDeque<Vec<Planned>>,
    planned: usize,
    pub counts: TransferCounts,
    pub rejected: RejectedCounts,
    pub events: EventCounts,
    pub transfer_ids: Vec<u128>,
    pub rejected_ids: Vec<u128>,
    pub expiring_ids: Vec<u128>,
}

impl Planner {
    pub(crate) fn new(cfg: &WorkloadConfig) -> Planner {
        let mut rng = Rng::new(cfg.seed);
        let mut aids = IdGen::new(cfg.seed ^ 0xA5A5_A5A5_0000_0001);
        let tids = IdGen::new(cfg.seed ^ 0x5A5A_5A5A_0000_0002);
        let mut accts: Vec<Acct> = Vec::with_capacity(cfg.account_count);

        // The extreme ledger: an id at the top of the range, a random one, one just above 2^53.
        let xl = cfg.extreme_ledger;
        let xa = new_acct(&mut rng, &mut accts, aids.top(), xl, Role::Extreme);
        let xb = new_acct(&mut rng, &mut accts, aids.random(), xl, Role::Extreme);
        let xc = new_acct(&mut rng, &mut accts, P53 + 1, xl, Role::Extreme);

        // A few accounts that never see a transfer.
        let untouched_ids = [aids.top(), aids.random(), aids.small()];
        for (i, id) in untouched_ids.into_iter().enumerate() {
            let ledger = cfg.ledgers[i % cfg.ledgers.len()];
            new_acct(&mut rng, &mut accts, id, ledger, Role::Untouched);
        }

        let fixed = accts.len();
        let per_ledger = (cfg.account_count.saturating_sub(fixed) / cfg.ledgers.len()).max(16);
        let mut boundary_ids = vec![P53 - 1, P53].into_iter();
        let mut pools = Vec::new();
        for &ledger in &cfg.ledgers {
            let mut p = Pools::default();
            let n_dlim = (per_ledger / 10).max(2);
            let n_clim = (per_ledger / 10).max(2);
            let n_closable = (per_ledger / 20).max(2);
            let n_stable = (per_ledger / 5).max(2);
            for i in 0..per_ledger {
                let (role, pool) = if i < n_dlim {
                    (Role::DebitLimited, &mut p.dlim)
                } else if i < n_dlim + n_clim {
                    (Role::CreditLimited, &mut p.clim)
                } else if i < n_dlim + n_clim + n_closable {
                    (Role::Closable, &mut p.closable)
                } else if i < n_dlim + n_clim + n_closable + n_stable {
                    (Role::Stable, &mut p.stable)
                } else {
                    (Role::Plain, &mut p.plain)
                };
                let id = boundary_ids.next().unwrap_or_else(|| aids.any());
                pool.push(new_acct(&mut rng, &mut accts, id, ledger, role));
            }
            p.ordinary = p.plain.iter().chain(&p.stable).copied().collect();
            p.bal_debit = p.stable.iter().chain(&p.dlim).copied().collect();
            p.bal_credit = p.stable.iter().chain(&p.clim).copied().collect();
            pools.push(p);
        }

        let mut scenario: Vec<Step> = vec![
            Planner::sc_extremes,
            Planner::sc_boundary_ids,
            Planner::sc_two_phase,
            Planner::sc_timeouts,
            Planner::sc_limits_and_balancing,
            Planner::sc_chains,
            Planner::sc_close_reopen,
        ];
        scenario.reverse();
        let (lo, hi) = cfg.pending_timeout_secs;
        Planner {
            rng,
            tids,
            batch_size: cfg.batch_size,
            target: cfg.transfer_count,
            timeout: (lo.min(hi), hi.max(lo)),
            accts,
            pools,
            pends: Vec::new(),
            pend_by_id: HashMap::new(),
            open: Vec::new(),
            closed: Vec::new(),
            extreme: [xa, xb, xc],
            scenario,
            ready: VecDeque::new(),
            planned: 0,
            counts: TransferCounts::default(),
            rejected: RejectedCounts::default(),
            events: EventCounts::default(),
            transfer_ids: Vec::new(),
            rejected_ids: Vec::new(),
            expiring_ids: Vec::new(),
        }
    }

    pub(crate) fn accounts(&self) -> Vec<Account> {
        self.accts.iter().map(|a| a.account).collect()
    }

    pub(crate) fn max_timeout_secs(&self) -> u32 {
        self.timeout.1
    }

    /// The next batch (at most `batch_size` transfers, linked chains never split), or `None`
    /// once the target count (and the fixed scenarios) have been planned.
    pub(crate) fn next_batch(&mut self) -> Option<Vec<Planned>> {
        let mut batch: Vec<Planned> = Vec::with_capacity(self.batch_size);
        loop {
            if let Some(group) = self.ready.front() {
                if !batch.is_empty() && batch.len() + group.len() > self.batch_size {
                    break;
                }
                if let Some(group) = self.ready.pop_front() {
                    batch.extend(group);
                }
                continue;
            }
            if batch.len() >= self.batch_size {
                break;
            }
            if let Some(step) = self.scenario.pop() {
                step(self);
                continue;
            }
            if self.planned >= self.target {
                break;
            }
            self.random_step();
        }
        if batch.is_empty() {
            None
        } else {
            Some(batch)
        }
    }
}
