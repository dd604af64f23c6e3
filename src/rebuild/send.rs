//! Sending batches at the target's request limit, learned as the replay goes.
//!
//! The TigerBeetle client knows the cluster's limit (from its registration) but does not expose
//! it: it refuses a larger request before sending it ("Too much data provided on this batch"), so
//! nothing is applied. [`Sizer`] starts at `--batch-events-max` (8,189: a 1 MiB request) and, on
//! each refusal, searches between the largest request accepted and the smallest refused; every
//! accepted request is real progress, so the search costs only the refusals, which never reach
//! the network (about 13 for a `--development` replica's 32 KiB limit). A batch is split only at
//! a unit boundary: a linked chain is never cut.

use super::plan::{Batch, PlannedTransfer};
use crate::tb::limits::BATCH_EVENTS_MAX;

/// The request size in use, and what the target told about its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizer {
    cap: usize,
    accepted_max: usize,
    refused_min: Option<usize>,
    /// Requests the client refused as too large.
    pub refusals: u64,
}

impl Sizer {
    /// Requests of at most `cap` (1..=[`BATCH_EVENTS_MAX`]) events.
    pub fn new(cap: usize) -> Sizer {
        assert!((1..=BATCH_EVENTS_MAX).contains(&cap));
        Sizer {
            cap,
            accepted_max: 0,
            refused_min: None,
            refusals: 0,
        }
    }

    /// The size of the next request; 0 once a request of one event was refused.
    pub fn size(&self) -> usize {
        match self.refused_min {
            None => self.cap,
            Some(refused) if self.accepted_max + 1 >= refused => self.accepted_max,
            Some(refused) => (self.accepted_max + refused) / 2,
        }
    }

    pub fn accepted(&mut self, events: usize) {
        self.accepted_max = self.accepted_max.max(events);
    }

    pub fn refused(&mut self, events: usize) {
        // A size accepted before and refused now: the target's limit went down (a restarted
        // replica with another --limit-request); search again below it.
        if events <= self.accepted_max {
            self.accepted_max = 0;
            self.refused_min = None;
        }
        self.refusals += 1;
        self.refused_min = Some(self.refused_min.map_or(events, |r| r.min(events)));
    }

    /// The size batches are built at: the largest not refused (requests of the size being tried
    /// are cut from them, so the search is never held back by small batches).
    pub fn batch_bound(&self) -> usize {
        self.refused_min
            .map_or(self.cap, |r| r.saturating_sub(1))
            .max(1)
    }

    /// Whether a request of `events` may be accepted: nothing as large was refused.
    pub fn may_accept(&self, events: usize) -> bool {
        events <= self.cap && self.refused_min.is_none_or(|r| events < r)
    }

    /// Whether the target ever refused a request as too large.
    pub fn was_refused(&self) -> bool {
        self.refused_min.is_some()
    }

    /// The target's limit in events, once the search has found it exactly.
    pub fn learned(&self) -> Option<usize> {
        self.refused_min
            .filter(|&r| self.accepted_max + 1 >= r)
            .map(|_| self.accepted_max)
    }
}

/// The length of the unit (a transfer, or a whole linked chain) at `start`.
pub fn unit_len(batch: &Batch, start: usize) -> usize {
    match batch {
        Batch::Accounts(_) => 1,
        Batch::Transfers(t) => {
            let linked = t[start..].iter().take_while(|t| t.is_linked()).count();
            (linked + 1).min(t.len() - start)
        }
    }
}

/// The end of the next request of `batch` from `start`: at most `size` events, ending on a unit
/// boundary (after a transfer without `linked`). `None` if the unit at `start` is longer.
pub fn chunk_end(batch: &Batch, start: usize, size: usize) -> Option<usize> {
    assert!(start < batch.len());
    let limit = (start + size).min(batch.len());
    match batch {
        Batch::Accounts(_) => (limit > start).then_some(limit),
        Batch::Transfers(t) => transfers_chunk_end(t, start, limit),
    }
}

fn transfers_chunk_end(t: &[PlannedTransfer], start: usize, limit: usize) -> Option<usize> {
    if limit == t.len() {
        // A batch ends with a whole unit.
        return (limit > start).then_some(limit);
    }
    (start + 1..=limit)
        .rev()
        .find(|&end| !t[end - 1].is_linked())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::EventType;
    use crate::tb::flags::transfer::LINKED;
    use crate::tb::Transfer;

    /// Sends `n` events through a sizer against a target that takes at most `limit`: the sizes
    /// of the requests accepted.
    fn simulate(cap: usize, limit: usize, n: usize) -> (Vec<usize>, Sizer) {
        let mut sizer = Sizer::new(cap);
        let mut sent = Vec::new();
        let mut left = n;
        while left > 0 {
            let size = sizer.size().min(left);
            assert!(size > 0);
            if size > limit {
                sizer.refused(size);
            } else {
                sizer.accepted(size);
                sent.push(size);
                left -= size;
            }
        }
        (sent, sizer)
    }

    #[test]
    fn a_development_limit_is_found_and_then_used() {
        let (sent, sizer) = simulate(BATCH_EVENTS_MAX, 253, 100_000);
        assert_eq!(sent.iter().sum::<usize>(), 100_000);
        assert_eq!(sizer.learned(), Some(253));
        assert_eq!(sizer.size(), 253);
        assert!(sizer.refusals <= 14, "{} refusals", sizer.refusals);
        let full = sent.iter().filter(|&&s| s == 253).count();
        assert!(full >= sent.len() - 15, "{sent:?}");
    }

    #[test]
    fn a_target_that_takes_everything_is_never_probed() {
        let (sent, sizer) = simulate(BATCH_EVENTS_MAX, BATCH_EVENTS_MAX, 3 * BATCH_EVENTS_MAX);
        assert_eq!(sent, vec![BATCH_EVENTS_MAX; 3]);
        assert!(!sizer.was_refused());
        assert_eq!(sizer.learned(), None);
    }

    #[test]
    fn a_size_is_tried_only_below_every_refusal() {
        let mut sizer = Sizer::new(100);
        assert!(sizer.may_accept(100) && !sizer.may_accept(101));
        sizer.refused(100);
        sizer.refused(50);
        assert_eq!(sizer.size(), 25);
        // A chain of 40 does not fit the size being tried, but no request of 40 was refused.
        assert!(sizer.may_accept(40) && !sizer.may_accept(50));
    }

    #[test]
    fn a_limit_that_goes_down_is_searched_again() {
        let mut sizer = Sizer::new(100);
        sizer.accepted(100);
        sizer.refused(100);
        assert_eq!(sizer.size(), 50);
        assert_eq!(sizer.learned(), None);
    }

    #[test]
    fn a_target_that_refuses_one_event_leaves_no_size() {
        let mut sizer = Sizer::new(4);
        sizer.refused(4);
        sizer.refused(2);
        sizer.refused(1);
        assert_eq!(sizer.size(), 0);
    }

    fn transfers(linked: &[bool]) -> Batch {
        Batch::Transfers(
            linked
                .iter()
                .enumerate()
                .map(|(i, &l)| PlannedTransfer {
                    transfer: Transfer {
                        id: i as u128 + 1,
                        flags: if l { LINKED } else { 0 },
                        timestamp: i as u64 + 1,
                        ..Transfer::default()
                    },
                    event_type: EventType::SinglePhase,
                })
                .collect(),
        )
    }

    #[test]
    fn a_request_is_cut_between_units_only() {
        // Units: [0], [1 2 3], [4], [5 6].
        let b = transfers(&[false, true, true, false, false, true, false]);
        assert_eq!(chunk_end(&b, 0, 3), Some(1));
        assert_eq!(chunk_end(&b, 0, 4), Some(4));
        assert_eq!(chunk_end(&b, 1, 2), None, "a chain longer than the request");
        assert_eq!(chunk_end(&b, 4, 2), Some(5));
        assert_eq!(chunk_end(&b, 5, 9), Some(7));
        assert_eq!(
            (unit_len(&b, 0), unit_len(&b, 1), unit_len(&b, 5)),
            (1, 3, 2)
        );
        let accounts = Batch::Accounts(vec![Default::default(); 5]);
        assert_eq!(chunk_end(&accounts, 2, 2), Some(4));
        assert_eq!(chunk_end(&accounts, 4, 2), Some(5));
    }
}
