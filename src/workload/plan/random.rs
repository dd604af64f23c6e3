//! The random steps that fill a run up to its transfer count, in realistic proportions
//! (including pending transfers left to expire and linked chains that fail as a whole).

use super::*;

impl Planner {
    pub(super) fn random_step(&mut self) {
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

    pub(super) fn random_timeout_pending(&mut self) {
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

    pub(super) fn random_resolve_post(&mut self, p: usize) -> Draft {
        loop {
            let d = self.random_resolve(p);
            if d.tag != Tag::Void {
                return d;
            }
        }
    }

    /// A linked chain of `len` transfers (singles and pendings on ordinary accounts); when
    /// `fail`, one member overdraws a debit-limited account and the whole chain fails.
    pub(super) fn random_chain(&mut self, len: usize, fail: bool) {
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

    pub(super) fn random_balancing(&mut self) {
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

    pub(super) fn random_limited(&mut self) {
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

    pub(super) fn random_closing(&mut self) {
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
    pub(super) fn fund_closable(&mut self, k: usize, o: usize, amount: u128) {
        let t = self.closable_movement(k, o, amount);
        self.emit1(t);
    }

    pub(super) fn closable_movement(&mut self, k: usize, o: usize, amount: u128) -> Draft {
        if self.accts[k].dmnec {
            self.single(o, k, amount)
        } else {
            self.single(k, o, amount)
        }
    }

    /// The close-account recipe: a linked balancing transfer (amount u128::MAX) that zeroes the
    /// account against `control`, then a closing pending transfer of 0.
    pub(super) fn close(&mut self, k: usize, control: usize) {
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
    pub(super) fn reopen(&mut self, k: usize) {
        if let Some(&(_, p)) = self.closed.iter().find(|&&(a, _)| a == k) {
            let d = self.resolve(p, true, 0, Tag::Reopen);
            self.emit1(d);
        }
    }
}
