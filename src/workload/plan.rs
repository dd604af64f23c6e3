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

// ---------------------------------------------------------------------------------------------
// PRNG

/// splitmix64: tiny, fast, good enough for workloads, and stable across platforms and releases.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6A09_E667_F3BC_C908)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u128) -> u128 {
        debug_assert!(n > 0);
        if n <= u128::from(u64::MAX) {
            // Bias is at most n / 2^64: irrelevant here.
            u128::from(self.next_u64()) % n
        } else {
            self.u128() % n
        }
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u128, hi: u128) -> u128 {
        debug_assert!(lo <= hi);
        if lo == 0 && hi == u128::MAX {
            return self.u128();
        }
        lo + self.below(hi - lo + 1)
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u128) as usize
    }

    fn percent(&mut self, p: u32) -> bool {
        self.next_u64() % 100 < u64::from(p)
    }

    fn pick(&mut self, v: &[usize]) -> usize {
        v[self.index(v.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Ids

/// Ids from disjoint ranges so that they never collide: a small counter (JSON numbers),
/// random 2^53 < id < 2^64 (JSON strings that fit u64), random 128-bit ids, and a countdown
/// from u128::MAX - 1 (u128::MAX itself is rejected by TigerBeetle).
struct IdGen {
    rng: Rng,
    next_small: u128,
    next_top: u128,
}

const TOP_RESERVED: u128 = 1 << 32;

impl IdGen {
    fn new(seed: u64) -> IdGen {
        IdGen {
            rng: Rng::new(seed),
            next_small: 1,
            next_top: u128::MAX - 1,
        }
    }

    fn small(&mut self) -> u128 {
        let id = self.next_small;
        self.next_small += 1;
        id
    }

    fn top(&mut self) -> u128 {
        let id = self.next_top;
        self.next_top -= 1;
        id
    }

    fn mid(&mut self) -> u128 {
        // Exclusive of the 2^53 - 1, 2^53, 2^53 + 1 boundary ids handed out by the scenarios.
        self.rng.range(P53 + 2, u128::from(u64::MAX))
    }

    fn random(&mut self) -> u128 {
        loop {
            let id = self.rng.u128();
            if id > u128::from(u64::MAX) && id < u128::MAX - TOP_RESERVED {
                return id;
            }
        }
    }

    /// The usual mix: 55 % small, 35 % random 128-bit, 10 % between 2^53 and 2^64.
    fn any(&mut self) -> u128 {
        match self.rng.next_u64() % 100 {
            0..=54 => self.small(),
            55..=89 => self.random(),
            _ => self.mid(),
        }
    }
}

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

    // -----------------------------------------------------------------------------------------
    // Drafting

    fn normal_amount(&mut self) -> u128 {
        match self.rng.next_u64() % 1000 {
            0..=849 => self.rng.range(1, 10_000),
            850..=969 => self.rng.range(1, 1_000_000_000_000),
            970..=994 => self.rng.range(P53 - 1000, u128::from(u64::MAX) + 1000),
            _ => self.rng.range(1 << 64, 1 << 72),
        }
    }

    fn code(&mut self) -> u16 {
        if self.rng.percent(2) {
            u16::MAX
        } else {
            self.rng.range(1, 1000) as u16
        }
    }

    fn draft(&mut self, id: u128, dr: usize, cr: usize, amount: u128, tag: Tag) -> Draft {
        let ledger = self.accts[dr].account.ledger();
        let code = self.code();
        let transfer = Transfer::new(id)
            .with_debit_account_id(self.accts[dr].account.id())
            .with_credit_account_id(self.accts[cr].account.id())
            .with_amount(amount)
            .with_ledger(ledger)
            .with_code(code)
            .with_user_data_128(user_data_128(&mut self.rng))
            .with_user_data_64(user_data_64(&mut self.rng))
            .with_user_data_32(user_data_32(&mut self.rng));
        Draft {
            transfer,
            tag,
            dr,
            cr,
            expiring: false,
            closes: None,
        }
    }

    fn single(&mut self, dr: usize, cr: usize, amount: u128) -> Draft {
        let id = self.tids.any();
        self.draft(id, dr, cr, amount, Tag::Single)
    }

    fn balancing(
        &mut self,
        dr: usize,
        cr: usize,
        amount: u128,
        debit: bool,
        credit: bool,
    ) -> Draft {
        let id = self.tids.any();
        let mut d = self.draft(id, dr, cr, amount, Tag::Balancing { debit, credit });
        let mut f = transfer::Flags::empty();
        if debit {
            f |= transfer::Flags::BALANCING_DEBIT;
        }
        if credit {
            f |= transfer::Flags::BALANCING_CREDIT;
        }
        d.transfer.set_flags(f);
        d
    }

    fn pending(&mut self, dr: usize, cr: usize, amount: u128, timeout: u32) -> Draft {
        let id = self.tids.any();
        let tag = if timeout > 0 {
            Tag::PendingTimeout
        } else {
            Tag::Pending
        };
        let mut d = self.draft(id, dr, cr, amount, tag);
        d.transfer.set_flags(transfer::Flags::PENDING);
        d.transfer.set_timeout(timeout);
        d
    }

    fn random_timeout(&mut self) -> u32 {
        let (lo, hi) = self.timeout;
        self.rng.range(u128::from(lo), u128::from(hi)) as u32
    }

    /// A closing pending (amount 0) closing `k`, with `other` as the counterparty.
    fn closing(&mut self, k: usize, other: usize) -> Draft {
        let id = self.tids.any();
        let debit_side = self.accts[k].dmnec;
        let (dr, cr) = if debit_side { (k, other) } else { (other, k) };
        let mut d = self.draft(id, dr, cr, 0, Tag::Closing);
        let closing = if debit_side {
            transfer::Flags::CLOSING_DEBIT
        } else {
            transfer::Flags::CLOSING_CREDIT
        };
        d.transfer.set_flags(transfer::Flags::PENDING | closing);
        d.closes = Some(k);
        d
    }

    /// A post or void of pending `p`; `amount` is what the transfer asks (u128::MAX: all).
    fn resolve(&mut self, p: usize, void: bool, amount: u128, tag: Tag) -> Draft {
        let pend = self.pends[p];
        let id = self.tids.any();
        let mut t = Transfer::new(id)
            .with_pending_id(pend.id)
            .with_amount(amount)
            .with_flags(if void {
                transfer::Flags::VOID_PENDING_TRANSFER
            } else {
                transfer::Flags::POST_PENDING_TRANSFER
            });
        // The optional fields: either repeated from the pending transfer or left zero.
        if self.rng.percent(50) {
            let a = &self.accts;
            t = t
                .with_debit_account_id(a[pend.dr as usize].account.id())
                .with_credit_account_id(a[pend.cr as usize].account.id())
                .with_ledger(a[pend.dr as usize].account.ledger());
        }
        if self.rng.percent(50) {
            t = t
                .with_user_data_128(user_data_128(&mut self.rng))
                .with_user_data_64(user_data_64(&mut self.rng))
                .with_user_data_32(user_data_32(&mut self.rng));
        }
        Draft {
            transfer: t,
            tag,
            dr: pend.dr as usize,
            cr: pend.cr as usize,
            expiring: false,
            closes: None,
        }
    }

    /// A post (full, partial or u128::MAX) or a void of pending `p`, chosen at random.
    fn random_resolve(&mut self, p: usize) -> Draft {
        let amount = self.pends[p].amount;
        match self.rng.next_u64() % 100 {
            0..=34 => self.resolve(p, false, amount, Tag::PostFull),
            35..=59 if amount >= 2 => {
                let part = self.rng.range(1, amount - 1);
                self.resolve(p, false, part, Tag::PostPartial)
            }
            35..=74 => self.resolve(p, false, u128::MAX, Tag::PostMax),
            _ => {
                let asked = if self.rng.percent(50) { 0 } else { amount };
                self.resolve(p, true, asked, Tag::Void)
            }
        }
    }

    fn two_distinct(&mut self, pool: &[usize]) -> (usize, usize) {
        let a = self.rng.pick(pool);
        loop {
            let b = self.rng.pick(pool);
            if b != a {
                return (a, b);
            }
        }
    }

    fn ledger_index(&mut self) -> usize {
        self.rng.index(self.pools.len())
    }

    fn avail_debit(&self, a: usize) -> u128 {
        let b = &self.accts[a].bal;
        b.cpo.saturating_sub(b.dpo + b.dp)
    }

    fn avail_credit(&self, a: usize) -> u128 {
        let b = &self.accts[a].bal;
        b.dpo.saturating_sub(b.cpo + b.cp)
    }

    // -----------------------------------------------------------------------------------------
    // Applying drafts to the model

    /// Applies `drafts` (a linked chain if `chain`) to the model and queues the planned
    /// transfers as one group (never split across batches).
    fn emit(&mut self, drafts: Vec<Draft>, chain: bool) {
        let group = if chain && drafts.len() > 1 {
            self.commit_chain(drafts)
        } else {
            let mut out = Vec::with_capacity(drafts.len());
            for d in drafts {
                let result = self.apply(&d);
                out.push(self.count(&d, result));
            }
            out
        };
        self.ready.push_back(group);
    }

    fn emit1(&mut self, d: Draft) {
        self.emit(vec![d], false);
    }

    fn commit_chain(&mut self, mut drafts: Vec<Draft>) -> Vec<Planned> {
        let n = drafts.len();
        for (i, d) in drafts.iter_mut().enumerate() {
            let f = d.transfer.flags();
            if i + 1 < n {
                d.transfer.set_flags(f | transfer::Flags::LINKED);
            } else {
                d.transfer.set_flags(f - transfer::Flags::LINKED);
            }
        }
        let saved: Vec<(usize, Acct)> = drafts
            .iter()
            .flat_map(|d| [d.dr, d.cr])
            .map(|i| (i, self.accts[i].clone()))
            .collect();
        let saved_pends = self.pends.len();
        let saved_states: Vec<(usize, PState)> = drafts
            .iter()
            .filter_map(|d| self.pend_by_id.get(&d.transfer.pending_id()))
            .map(|&p| (p, self.pends[p].state))
            .collect();
        let saved_closed = self.closed.clone();

        let mut results = Vec::with_capacity(n);
        let mut failed_at = None;
        for (i, d) in drafts.iter().enumerate() {
            let r = self.apply(d);
            let failed = r.is_err();
            results.push(r);
            if failed {
                failed_at = Some(i);
                break;
            }
        }
        match failed_at {
            None => {
                self.counts.linked_chains += 1;
                self.counts.linked_transfers += n;
                drafts
                    .iter()
                    .zip(results)
                    .map(|(d, r)| self.count(d, r))
                    .collect()
            }
            Some(f) => {
                for (i, a) in saved.into_iter().rev() {
                    self.accts[i] = a;
                }
                for p in &self.pends[saved_pends..] {
                    self.pend_by_id.remove(&p.id);
                }
                self.pends.truncate(saved_pends);
                for (p, s) in saved_states {
                    self.pends[p].state = s;
                }
                self.closed = saved_closed;
                self.rejected.failed_chains += 1;
                let code = results[f].err().unwrap_or(Ek::LinkedEventFailed);
                drafts
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        self.rejected.failed_chain_transfers += 1;
                        self.rejected_ids.push(d.transfer.id());
                        self.planned += 1;
                        Planned {
                            transfer: d.transfer,
                            expect: Some(if i == f { code } else { Ek::LinkedEventFailed }),
                        }
                    })
                    .collect()
            }
        }
    }

    /// Counts a transfer whose model result is known.
    fn count(&mut self, d: &Draft, result: Result<u128, Ek>) -> Planned {
        self.planned += 1;
        let id = d.transfer.id();
        let actual = match result {
            Ok(actual) => actual,
            Err(kind) => {
                self.rejected_ids.push(id);
                let r = &mut self.rejected;
                match kind {
                    Ek::ExceedsCredits => r.exceeds_credits += 1,
                    Ek::ExceedsDebits => r.exceeds_debits += 1,
                    Ek::DebitAccountAlreadyClosed | Ek::CreditAccountAlreadyClosed => {
                        r.account_closed += 1
                    }
                    _ => r.overflows += 1,
                }
                return Planned {
                    transfer: d.transfer,
                    expect: Some(kind),
                };
            }
        };
        self.transfer_ids.push(id);
        let c = &mut self.counts;
        let e = &mut self.events;
        if actual > E38 {
            c.amounts_above_1e38 += 1;
        }
        match d.tag {
            Tag::Single => {
                c.single_phase += 1;
                e.single_phase += 1;
            }
            Tag::Balancing { debit, credit } => {
                c.balancing_debit += usize::from(debit);
                c.balancing_credit += usize::from(credit);
                c.balancing_moved_zero += usize::from(actual == 0);
                e.single_phase += 1;
            }
            Tag::Pending => {
                c.pending += 1;
                e.two_phase_pending += 1;
            }
            Tag::PendingTimeout => {
                c.pending_with_timeout += 1;
                e.two_phase_pending += 1;
                if d.expiring {
                    c.expired += 1;
                    e.two_phase_expired += 1;
                    self.expiring_ids.push(id);
                }
            }
            Tag::Closing => {
                c.closing += 1;
                e.two_phase_pending += 1;
            }
            Tag::PostFull => {
                c.posted_full += 1;
                e.two_phase_posted += 1;
            }
            Tag::PostPartial => {
                c.posted_partial += 1;
                e.two_phase_posted += 1;
            }
            Tag::PostMax => {
                c.posted_max += 1;
                e.two_phase_posted += 1;
            }
            Tag::Void => {
                c.voided += 1;
                e.two_phase_voided += 1;
            }
            Tag::Reopen => {
                c.reopened += 1;
                e.two_phase_voided += 1;
            }
        }
        Planned {
            transfer: d.transfer,
            expect: None,
        }
    }

    /// Applies one transfer to the model as TigerBeetle's state machine does (the checks a
    /// generated transfer can reach, in the same order). Returns the amount moved.
    fn apply(&mut self, d: &Draft) -> Result<u128, Ek> {
        let t = &d.transfer;
        let flags = t.flags();
        let (dr, cr) = (d.dr, d.cr);
        let void = flags.contains(transfer::Flags::VOID_PENDING_TRANSFER);
        if void || flags.contains(transfer::Flags::POST_PENDING_TRANSFER) {
            let Some(&p) = self.pend_by_id.get(&t.pending_id()) else {
                return Err(Ek::PendingTransferNotFound);
            };
            let pend = self.pends[p];
            match pend.state {
                PState::Open => {}
                PState::Resolved => return Err(Ek::PendingTransferAlreadyPosted),
                PState::Expiring => return Err(Ek::PendingTransferExpired),
            }
            let amount = if (void && t.amount() == 0) || (!void && t.amount() == u128::MAX) {
                pend.amount
            } else {
                t.amount()
            };
            if amount > pend.amount {
                return Err(Ek::ExceedsPendingTransferAmount);
            }
            if void && amount < pend.amount {
                return Err(Ek::PendingTransferHasDifferentAmount);
            }
            if !void && self.accts[dr].bal.closed {
                return Err(Ek::DebitAccountAlreadyClosed);
            }
            if !void && self.accts[cr].bal.closed {
                return Err(Ek::CreditAccountAlreadyClosed);
            }
            self.accts[dr].bal.dp -= pend.amount;
            self.accts[cr].bal.cp -= pend.amount;
            if void {
                // Voiding the pending transfer that closed an account reopens it.
                if let Some(pos) = self.closed.iter().position(|&(_, cp)| cp == p) {
                    let (k, _) = self.closed.swap_remove(pos);
                    self.accts[k].bal.closed = false;
                }
            } else {
                self.accts[dr].bal.dpo += amount;
                self.accts[cr].bal.cpo += amount;
            }
            self.pends[p].state = PState::Resolved;
            self.pend_by_id.remove(&pend.id);
            return Ok(amount);
        }

        let (a, b) = (self.accts[dr].bal, self.accts[cr].bal);
        if a.closed {
            return Err(Ek::DebitAccountAlreadyClosed);
        }
        if b.closed {
            return Err(Ek::CreditAccountAlreadyClosed);
        }
        let mut amount = t.amount();
        if flags.contains(transfer::Flags::BALANCING_DEBIT) {
            amount = amount.min(a.cpo.saturating_sub(a.dpo + a.dp));
        }
        if flags.contains(transfer::Flags::BALANCING_CREDIT) {
            amount = amount.min(b.dpo.saturating_sub(b.cpo + b.cp));
        }
        let pending = flags.contains(transfer::Flags::PENDING);
        if pending {
            if amount.checked_add(a.dp).is_none() {
                return Err(Ek::OverflowsDebitsPending);
            }
            if amount.checked_add(b.cp).is_none() {
                return Err(Ek::OverflowsCreditsPending);
            }
        }
        if amount.checked_add(a.dpo).is_none() {
            return Err(Ek::OverflowsDebitsPosted);
        }
        if amount.checked_add(b.cpo).is_none() {
            return Err(Ek::OverflowsCreditsPosted);
        }
        if amount.checked_add(a.dp + a.dpo).is_none() {
            return Err(Ek::OverflowsDebits);
        }
        if amount.checked_add(b.cp + b.cpo).is_none() {
            return Err(Ek::OverflowsCredits);
        }
        if self.accts[dr].dmnec && a.dp + a.dpo + amount > a.cpo {
            return Err(Ek::ExceedsCredits);
        }
        if self.accts[cr].cmned && b.cp + b.cpo + amount > b.dpo {
            return Err(Ek::ExceedsDebits);
        }
        if pending {
            self.accts[dr].bal.dp += amount;
            self.accts[cr].bal.cp += amount;
            let p = self.pends.len();
            self.pends.push(Pend {
                id: t.id(),
                dr: dr as u32,
                cr: cr as u32,
                amount,
                state: if d.expiring {
                    PState::Expiring
                } else {
                    PState::Open
                },
            });
            if d.expiring {
                self.accts[dr].expiring_dp += amount;
                self.accts[cr].expiring_cp += amount;
            } else {
                self.pend_by_id.insert(t.id(), p);
            }
            if let Some(k) = d.closes {
                self.accts[k].bal.closed = true;
                self.closed.push((k, p));
            }
        } else {
            self.accts[dr].bal.dpo += amount;
            self.accts[cr].bal.cpo += amount;
        }
        Ok(amount)
    }

    /// The pending transfer just created by the last emitted group.
    fn last_pend(&self) -> usize {
        self.pends.len() - 1
    }

    /// Emits a pending transfer (no timeout) and returns its index if it succeeded.
    fn emit_pending(&mut self, dr: usize, cr: usize, amount: u128) -> Option<usize> {
        let before = self.pends.len();
        let d = self.pending(dr, cr, amount, 0);
        self.emit1(d);
        (self.pends.len() > before).then(|| self.last_pend())
    }

    // -----------------------------------------------------------------------------------------
    // Fixed scenarios: every kind of event at least once, whatever the size of the run.

    fn sc_extremes(&mut self) {
        let [xa, xb, xc] = self.extreme;
        // The first transfer: every field at its extreme.
        let big = E38 + self.rng.range(1, 1_000_000_000_000_000_000_000_000_000_000);
        let id = self.tids.top();
        let mut d = self.draft(id, xa, xb, big, Tag::Single);
        d.transfer = d
            .transfer
            .with_user_data_128(u128::MAX)
            .with_user_data_64(u64::MAX)
            .with_user_data_32(u32::MAX)
            .with_code(u16::MAX);
        self.emit1(d);
        // Bring xb's credits (and xa's debits) to u128::MAX - 1000.
        let rest = u128::MAX - 1000 - big;
        let id = self.tids.top();
        let d = self.draft(id, xa, xb, rest, Tag::Single);
        self.emit1(d);
        // Both overflow: xa's debits_posted, then xb's credits_posted.
        let d = self.single(xa, xc, 2000);
        self.emit1(d);
        let d = self.single(xc, xb, 2000);
        self.emit1(d);
        // Three times 10^38 back; a pending of 2 * 10^38 posted with u128::MAX.
        let d = self.single(xb, xc, 3 * E38);
        self.emit1(d);
        if let Some(p) = self.emit_pending(xc, xa, 2 * E38) {
            let d = self.resolve(p, false, u128::MAX, Tag::PostMax);
            self.emit1(d);
        }
        // A pending above 10^38, voided.
        if let Some(p) = self.emit_pending(xc, xa, E38 + 5) {
            let d = self.resolve(p, true, 0, Tag::Void);
            self.emit1(d);
        }
    }

    fn sc_boundary_ids(&mut self) {
        let pool = self.pools[0].ordinary.clone();
        for id in [P53 - 1, P53, P53 + 1] {
            let (a, b) = self.two_distinct(&pool);
            let amount = self.normal_amount();
            let d = self.draft(id, a, b, amount, Tag::Single);
            self.emit1(d);
        }
    }

    fn sc_two_phase(&mut self) {
        let li = self.pools.len() - 1;
        let pool = self.pools[li].ordinary.clone();
        let (a, b) = self.two_distinct(&pool);
        let d = self.single(a, b, 4321);
        self.emit1(d);
        let p1 = self.emit_pending(a, b, 1000);
        let p2 = self.emit_pending(b, a, 1000);
        let p3 = self.emit_pending(a, b, 777);
        let p4 = self.emit_pending(b, a, 500);
        let p5 = self.emit_pending(a, b, 300);
        let p6 = self.emit_pending(b, a, 50);
        if let Some(p) = p1 {
            let d = self.resolve(p, false, 1000, Tag::PostFull);
            self.emit1(d);
        }
        if let Some(p) = p2 {
            let d = self.resolve(p, false, 400, Tag::PostPartial);
            self.emit1(d);
        }
        if let Some(p) = p3 {
            let d = self.resolve(p, false, u128::MAX, Tag::PostMax);
            self.emit1(d);
        }
        if let Some(p) = p4 {
            let d = self.resolve(p, true, 0, Tag::Void);
            self.emit1(d);
        }
        if let Some(p) = p5 {
            let d = self.resolve(p, true, 300, Tag::Void);
            self.emit1(d);
        }
        // Left open for good.
        let _ = p6;
    }

    fn sc_timeouts(&mut self) {
        let pool = self.pools[0].plain.clone();
        let (lo, hi) = self.timeout;
        for (timeout, then) in [(lo, 0), (hi, 0), (lo, 1), (hi, 2)] {
            let (a, b) = self.two_distinct(&pool);
            let amount = self.rng.range(1, 10_000);
            let mut p = self.pending(a, b, amount, timeout);
            match then {
                0 => {
                    p.expiring = true;
                    self.emit1(p);
                }
                _ => {
                    // Resolved in the same group, long before the timeout.
                    let pi = self.pends.len();
                    let id = p.transfer.id();
                    let first = self.apply(&p);
                    let first = self.count(&p, first);
                    let mut group = vec![first];
                    if self.pend_by_id.get(&id) == Some(&pi) {
                        let d = if then == 1 {
                            self.resolve(pi, false, amount, Tag::PostFull)
                        } else {
                            self.resolve(pi, true, 0, Tag::Void)
                        };
                        let r = self.apply(&d);
                        group.push(self.count(&d, r));
                    }
                    self.ready.push_back(group);
                }
            }
        }
    }

    fn sc_limits_and_balancing(&mut self) {
        let p = &self.pools[0];
        let (d, c, s) = (p.dlim[0], p.clim[0], p.stable[0]);
        let plain = p.plain.clone();
        let o = self.rng.pick(&plain);
        // Debit-limited: fund, spend, overspend (rejected), balance out (all, then 0).
        let t = self.single(o, d, 5000);
        self.emit1(t);
        let t = self.single(d, o, 1200);
        self.emit1(t);
        let over = self.avail_debit(d) + 1;
        let t = self.single(d, o, over);
        self.emit1(t);
        let t = self.balancing(d, o, u128::MAX, true, false);
        self.emit1(t);
        let t = self.balancing(d, o, 100, true, false);
        self.emit1(t);
        // Credit-limited: raise debits, receive, over-receive (rejected), balance out.
        let t = self.single(c, o, 2000);
        self.emit1(t);
        let t = self.single(o, c, 500);
        self.emit1(t);
        let over = self.avail_credit(c) + 10;
        let t = self.single(o, c, over);
        self.emit1(t);
        let t = self.balancing(o, c, 1_000_000_000, false, true);
        self.emit1(t);
        // A plain stable account balanced on both sides at once.
        let t = self.single(o, s, 3000);
        self.emit1(t);
        let t = self.balancing(s, c, 10_000, true, true);
        self.emit1(t);
        let t = self.balancing(s, o, 10_000, true, false);
        self.emit1(t);
    }

    fn sc_chains(&mut self) {
        for len in 2..=5 {
            self.random_chain(len, false);
        }
        self.random_chain(3, true);
    }

    fn sc_close_reopen(&mut self) {
        let p = &self.pools[0];
        let (k1, k2, s) = (p.closable[0], p.closable[1], p.stable[0]);
        let o = self.rng.pick(&p.plain.clone());
        for k in [k1, k2] {
            self.fund_closable(k, o, 700);
            self.close(k, s);
            // Rejected: the account is closed.
            let t = self.closable_movement(k, o, 10);
            self.emit1(t);
        }
        // Reopen k1 and use it again; k2 stays closed.
        self.reopen(k1);
        self.fund_closable(k1, o, 10);
    }

    // -----------------------------------------------------------------------------------------
    // Random steps

    fn random_step(&mut self) {
        match self.rng.next_u64() % 100 {
            0..=44 | 95..=99 => {
                let li = self.ledger_index();
                let pool = self.pools[li].ordinary.clone();
                let (a, b) = self.two_distinct(&pool);
                let amount = self.normal_amount();
                let d = self.single(a, b, amount);
                self.emit1(d);
            }
            45..=55 => {
                let li = self.ledger_index();
                let pool = self.pools[li].ordinary.clone();
                let (a, b) = self.two_distinct(&pool);
                let amount = self.normal_amount();
                if let Some(p) = self.emit_pending(a, b, amount) {
                    self.open.push(p);
                }
            }
            56..=67 => {
                if self.open.is_empty() {
                    return self.random_step();
                }
                let i = self.rng.index(self.open.len());
                let p = self.open.swap_remove(i);
                let d = self.random_resolve(p);
                self.emit1(d);
            }
            68..=72 => self.random_timeout_pending(),
            73..=79 => {
                let len = self.rng.range(2, 5) as usize;
                let fail = self.rng.percent(10);
                self.random_chain(len, fail);
            }
            80..=83 => self.random_balancing(),
            84..=92 => self.random_limited(),
            _ => self.random_closing(),
        }
    }

    fn random_timeout_pending(&mut self) {
        let li = self.ledger_index();
        let pool = self.pools[li].plain.clone();
        let (a, b) = self.two_distinct(&pool);
        let amount = self.normal_amount();
        let timeout = self.random_timeout();
        let mut d = self.pending(a, b, amount, timeout);
        let then = self.rng.next_u64() % 100;
        if then >= 40 {
            d.expiring = true;
            self.emit1(d);
            return;
        }
        // Resolved in the same group (same batch), well before the timeout.
        let pi = self.pends.len();
        let id = d.transfer.id();
        let r = self.apply(&d);
        let mut group = vec![self.count(&d, r)];
        if self.pend_by_id.get(&id) == Some(&pi) {
            let d = if then < 25 {
                self.random_resolve_post(pi)
            } else {
                self.resolve(pi, true, 0, Tag::Void)
            };
            let r = self.apply(&d);
            group.push(self.count(&d, r));
        }
        self.ready.push_back(group);
    }

    fn random_resolve_post(&mut self, p: usize) -> Draft {
        loop {
            let d = self.random_resolve(p);
            if d.tag != Tag::Void {
                return d;
            }
        }
    }

    /// A linked chain of `len` transfers (singles and pendings on ordinary accounts); when
    /// `fail`, one member overdraws a debit-limited account and the whole chain fails.
    fn random_chain(&mut self, len: usize, fail: bool) {
        let failing = fail.then(|| self.rng.index(len));
        let mut drafts = Vec::with_capacity(len);
        let mut opened = Vec::new();
        for i in 0..len {
            let li = self.ledger_index();
            if failing == Some(i) {
                let d_acc = self.rng.pick(&self.pools[li].dlim.clone());
                let o = self.rng.pick(&self.pools[li].plain.clone());
                let over = self.avail_debit(d_acc) + self.rng.range(1, 1000);
                drafts.push(self.single(d_acc, o, over));
                continue;
            }
            let pool = self.pools[li].ordinary.clone();
            let (a, b) = self.two_distinct(&pool);
            let amount = self.normal_amount();
            if self.rng.percent(25) {
                opened.push(drafts.len());
                drafts.push(self.pending(a, b, amount, 0));
            } else {
                drafts.push(self.single(a, b, amount));
            }
        }
        let ids: Vec<u128> = opened.iter().map(|&i| drafts[i].transfer.id()).collect();
        self.emit(drafts, true);
        for id in ids {
            if let Some(&p) = self.pend_by_id.get(&id) {
                self.open.push(p);
            }
        }
    }

    fn random_balancing(&mut self) {
        let li = self.ledger_index();
        let amount = if self.rng.percent(30) {
            u128::MAX
        } else {
            self.rng.range(1, 20_000)
        };
        let p = &self.pools[li];
        let (bd, bc, plain) = (p.bal_debit.clone(), p.bal_credit.clone(), p.plain.clone());
        let t = match self.rng.next_u64() % 100 {
            0..=44 => {
                let (a, b) = (self.rng.pick(&bd), self.rng.pick(&plain));
                self.balancing(a, b, amount, true, false)
            }
            45..=89 => {
                let (a, b) = (self.rng.pick(&plain), self.rng.pick(&bc));
                self.balancing(a, b, amount, false, true)
            }
            _ => {
                let a = self.rng.pick(&bd);
                let b = loop {
                    let b = self.rng.pick(&bc);
                    if b != a {
                        break b;
                    }
                };
                self.balancing(a, b, amount, true, true)
            }
        };
        self.emit1(t);
    }

    fn random_limited(&mut self) {
        let li = self.ledger_index();
        let p = &self.pools[li];
        let (dl, cl, ord) = (p.dlim.clone(), p.clim.clone(), p.ordinary.clone());
        let o = self.rng.pick(&ord);
        let r = self.rng.next_u64() % 100;
        if self.rng.percent(50) {
            let d = self.rng.pick(&dl);
            let avail = self.avail_debit(d);
            if r < 40 || avail == 0 {
                let amount = self.rng.range(1, 10_000);
                let t = self.single(o, d, amount);
                self.emit1(t);
            } else if r < 85 {
                let amount = self.rng.range(1, avail);
                if self.rng.percent(20) {
                    if let Some(p) = self.emit_pending(d, o, amount) {
                        self.open.push(p);
                    }
                } else {
                    let t = self.single(d, o, amount);
                    self.emit1(t);
                }
            } else {
                let amount = avail + self.rng.range(1, 1000);
                let t = self.single(d, o, amount);
                self.emit1(t);
            }
        } else {
            let c = self.rng.pick(&cl);
            let avail = self.avail_credit(c);
            if r < 40 || avail == 0 {
                let amount = self.rng.range(1, 10_000);
                let t = self.single(c, o, amount);
                self.emit1(t);
            } else if r < 85 {
                let amount = self.rng.range(1, avail);
                if self.rng.percent(20) {
                    if let Some(p) = self.emit_pending(o, c, amount) {
                        self.open.push(p);
                    }
                } else {
                    let t = self.single(o, c, amount);
                    self.emit1(t);
                }
            } else {
                let amount = avail + self.rng.range(1, 1000);
                let t = self.single(o, c, amount);
                self.emit1(t);
            }
        }
    }

    fn random_closing(&mut self) {
        let li = self.ledger_index();
        let p = &self.pools[li];
        let (ks, st, plain) = (p.closable.clone(), p.stable.clone(), p.plain.clone());
        let k = self.rng.pick(&ks);
        let o = self.rng.pick(&plain);
        if self.accts[k].bal.closed {
            if self.rng.percent(65) {
                self.reopen(k);
            } else {
                let amount = self.rng.range(1, 100);
                let t = self.closable_movement(k, o, amount);
                self.emit1(t);
            }
        } else if self.rng.percent(50) {
            let s = self.rng.pick(&st);
            self.close(k, s);
        } else {
            let amount = self.rng.range(1, 5000);
            self.fund_closable(k, o, amount);
        }
    }

    /// Moves `amount` into the limited side of closable account `k` (credits for a
    /// debit-limited one, debits for a credit-limited one).
    fn fund_closable(&mut self, k: usize, o: usize, amount: u128) {
        let t = self.closable_movement(k, o, amount);
        self.emit1(t);
    }

    fn closable_movement(&mut self, k: usize, o: usize, amount: u128) -> Draft {
        if self.accts[k].dmnec {
            self.single(o, k, amount)
        } else {
            self.single(k, o, amount)
        }
    }

    /// The close-account recipe: a linked balancing transfer (amount u128::MAX) that zeroes the
    /// account against `control`, then a closing pending transfer of 0.
    fn close(&mut self, k: usize, control: usize) {
        let (balance, closing) = if self.accts[k].dmnec {
            (
                self.balancing(k, control, u128::MAX, true, false),
                self.closing(k, control),
            )
        } else {
            (
                self.balancing(control, k, u128::MAX, false, true),
                self.closing(k, control),
            )
        };
        self.emit(vec![balance, closing], true);
    }

    /// Voids the pending transfer that closed `k`.
    fn reopen(&mut self, k: usize) {
        if let Some(&(_, p)) = self.closed.iter().find(|&&(a, _)| a == k) {
            let d = self.resolve(p, true, 0, Tag::Reopen);
            self.emit1(d);
        }
    }
}

fn new_acct(rng: &mut Rng, accts: &mut Vec<Acct>, id: u128, ledger: u32, role: Role) -> usize {
    let dmnec = match role {
        Role::DebitLimited => true,
        Role::Closable => accts.len().is_multiple_of(2),
        _ => false,
    };
    let cmned = match role {
        Role::CreditLimited => true,
        Role::Closable => !dmnec,
        _ => false,
    };
    let mut flags = account::Flags::empty();
    if dmnec {
        flags |= account::Flags::DEBITS_MUST_NOT_EXCEED_CREDITS;
    }
    if cmned {
        flags |= account::Flags::CREDITS_MUST_NOT_EXCEED_DEBITS;
    }
    if role == Role::Extreme || rng.percent(30) {
        flags |= account::Flags::HISTORY;
    }
    let code = if rng.percent(3) {
        u16::MAX
    } else {
        rng.range(1, 100) as u16
    };
    let account = Account::new(id, ledger, code)
        .with_flags(flags)
        .with_user_data_128(user_data_128(rng))
        .with_user_data_64(user_data_64(rng))
        .with_user_data_32(user_data_32(rng));
    accts.push(Acct {
        account,
        role,
        dmnec,
        cmned,
        bal: Bal::default(),
        expiring_dp: 0,
        expiring_cp: 0,
    });
    accts.len() - 1
}

fn user_data_128(rng: &mut Rng) -> u128 {
    match rng.next_u64() % 100 {
        0..=29 => 0,
        30..=34 => u128::MAX,
        35..=59 => rng.range(1, P53),
        _ => rng.u128(),
    }
}

fn user_data_64(rng: &mut Rng) -> u64 {
    match rng.next_u64() % 100 {
        0..=29 => 0,
        30..=34 => u64::MAX,
        35..=59 => rng.range(1, P53) as u64,
        _ => rng.next_u64(),
    }
}

fn user_data_32(rng: &mut Rng) -> u32 {
    match rng.next_u64() % 100 {
        0..=29 => 0,
        30..=34 => u32::MAX,
        _ => rng.next_u64() as u32,
    }
}
