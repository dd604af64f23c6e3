//! Drafting transfers: amounts, codes, and the draft of each kind of transfer (single-phase,
//! balancing, pending, closing, post and void), before the model decides how each ends.

use super::*;

impl Planner {
    pub(super) fn normal_amount(&mut self) -> u128 {
        match self.rng.next_u64() % 1000 {
            0..=849 => self.rng.range(1, 10_000),
            850..=969 => self.rng.range(1, 1_000_000_000_000),
            970..=994 => self.rng.range(P53 - 1000, u128::from(u64::MAX) + 1000),
            _ => self.rng.range(1 << 64, 1 << 72),
        }
    }

    pub(super) fn code(&mut self) -> u16 {
        if self.rng.percent(2) {
            u16::MAX
        } else {
            self.rng.range(1, 1000) as u16
        }
    }

    pub(super) fn draft(
        &mut self,
        id: u128,
        dr: usize,
        cr: usize,
        amount: u128,
        tag: Tag,
    ) -> Draft {
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

    pub(super) fn single(&mut self, dr: usize, cr: usize, amount: u128) -> Draft {
        let id = self.tids.any();
        self.draft(id, dr, cr, amount, Tag::Single)
    }

    pub(super) fn balancing(
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

    pub(super) fn pending(&mut self, dr: usize, cr: usize, amount: u128, timeout: u32) -> Draft {
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

    pub(super) fn random_timeout(&mut self) -> u32 {
        let (lo, hi) = self.timeout;
        self.rng.range(u128::from(lo), u128::from(hi)) as u32
    }

    /// A closing pending (amount 0) closing `k`, with `other` as the counterparty.
    pub(super) fn closing(&mut self, k: usize, other: usize) -> Draft {
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
    pub(super) fn resolve(&mut self, p: usize, void: bool, amount: u128, tag: Tag) -> Draft {
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
    pub(super) fn random_resolve(&mut self, p: usize) -> Draft {
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

    pub(super) fn two_distinct(&mut self, pool: &[usize]) -> (usize, usize) {
        let a = self.rng.pick(pool);
        loop {
            let b = self.rng.pick(pool);
            if b != a {
                return (a, b);
            }
        }
    }

    pub(super) fn ledger_index(&mut self) -> usize {
        self.rng.index(self.pools.len())
    }

    pub(super) fn avail_debit(&self, a: usize) -> u128 {
        let b = &self.accts[a].bal;
        b.cpo.saturating_sub(b.dpo + b.dp)
    }

    pub(super) fn avail_credit(&self, a: usize) -> u128 {
        let b = &self.accts[a].bal;
        b.dpo.saturating_sub(b.cpo + b.cp)
    }
}
