//! The fixed opening scenarios: every kind of event at least once, whatever the size of the
//! run.

use super::*;

impl Planner {
    pub(super) fn sc_extremes(&mut self) {
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

    pub(super) fn sc_boundary_ids(&mut self) {
        let pool = self.pools[0].ordinary.clone();
        for id in [P53 - 1, P53, P53 + 1] {
            let (a, b) = self.two_distinct(&pool);
            let amount = self.normal_amount();
            let d = self.draft(id, a, b, amount, Tag::Single);
            self.emit1(d);
        }
    }

    pub(super) fn sc_two_phase(&mut self) {
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

    pub(super) fn sc_timeouts(&mut self) {
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

    pub(super) fn sc_limits_and_balancing(&mut self) {
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

    pub(super) fn sc_chains(&mut self) {
        for len in 2..=5 {
            self.random_chain(len, false);
        }
        self.random_chain(3, true);
    }

    pub(super) fn sc_close_reopen(&mut self) {
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
}
