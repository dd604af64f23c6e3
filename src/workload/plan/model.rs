//! Applying drafts to the model: the exact balances TigerBeetle will hold, how each transfer
//! ends (success, or the precise result of an expected failure) and what it counts as.

use super::*;

impl Planner {
    /// Applies `drafts` (a linked chain if `chain`) to the model and queues the planned
    /// transfers as one group (never split across batches).
    pub(super) fn emit(&mut self, drafts: Vec<Draft>, chain: bool) {
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

    pub(super) fn emit1(&mut self, d: Draft) {
        self.emit(vec![d], false);
    }

    pub(super) fn commit_chain(&mut self, mut drafts: Vec<Draft>) -> Vec<Planned> {
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
    pub(super) fn count(&mut self, d: &Draft, result: Result<u128, Ek>) -> Planned {
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
    pub(super) fn apply(&mut self, d: &Draft) -> Result<u128, Ek> {
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
    pub(super) fn last_pend(&self) -> usize {
        self.pends.len() - 1
    }

    /// Emits a pending transfer (no timeout) and returns its index if it succeeded.
    pub(super) fn emit_pending(&mut self, dr: usize, cr: usize, amount: u128) -> Option<usize> {
        let before = self.pends.len();
        let d = self.pending(dr, cr, amount, 0);
        self.emit1(d);
        (self.pends.len() > before).then(|| self.last_pend())
    }
}
