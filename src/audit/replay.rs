//! The ledger replayed from the lake, event by event, checking that every account's balances
//! move by exactly each event's effect (from zero, where TigerBeetle creates every account)
//! and that every ledger stays balanced. Holds per account only its last balances, plus the
//! open pending transfers: never the events themselves.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::effect::{apply, movement, Balances, Movement, Side};
use super::problem::{FieldBreak, Problem};
use super::wide::WideSum;
use crate::cdc::EventType;
use crate::lake::{AccountBook, AccountRecord, AccountState, EventRow};

/// Problems kept in a report; beyond this only the count grows (a lake missing a whole segment
/// breaks thousands of chains, and the first ones locate it).
pub const PROBLEMS_REPORTED_MAX: usize = 1_000;

/// Problems found so far, bounded.
#[derive(Debug, Default)]
pub struct Findings {
    pub problems: Vec<Problem>,
    pub total: u64,
}

impl Findings {
    pub fn push(&mut self, p: Problem) {
        self.total += 1;
        if self.problems.len() < PROBLEMS_REPORTED_MAX {
            self.problems.push(p);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    ledger: u32,
    balances: Balances,
    last_timestamp: u64,
    /// False after a gap (an unreadable segment): the next event re-seeds the chain.
    known: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct LedgerSums {
    debits_pending: WideSum,
    debits_posted: WideSum,
    credits_pending: WideSum,
    credits_posted: WideSum,
}

impl LedgerSums {
    fn add(&mut self, b: &Balances) {
        self.debits_pending.add(b.debits_pending);
        self.debits_posted.add(b.debits_posted);
        self.credits_pending.add(b.credits_pending);
        self.credits_posted.add(b.credits_posted);
    }

    fn sub(&mut self, b: &Balances) {
        self.debits_pending.sub(b.debits_pending);
        self.debits_posted.sub(b.debits_posted);
        self.credits_pending.sub(b.credits_pending);
        self.credits_posted.sub(b.credits_posted);
    }
}

#[derive(Debug, Default)]
pub struct Replay {
    accounts: HashMap<u128, Tracked>,
    /// Open pending transfers: id → amount.
    open_pending: HashMap<u128, u128>,
    ledgers: BTreeMap<u32, LedgerSums>,
    /// Ledger and balance kind already reported unbalanced (reported again only after it
    /// balances again).
    unbalanced: BTreeSet<(u32, &'static str)>,
    /// One record per recorded account (merged by `lake::dedupe`'s rule).
    recorded: AccountBook,
    /// Accounts used by an event before any record, already reported.
    unrecorded_reported: HashSet<u128>,
    /// A segment could not be read: pending transfers and accounts it held are unknown, so
    /// checks that need them are suspended.
    after_gap: bool,
    /// The segment being replayed, for reports.
    segment: String,
    pub events: u64,
}

impl Replay {
    pub fn accounts(&self) -> usize {
        self.accounts.len()
    }

    pub fn ledgers(&self) -> usize {
        self.ledgers.len()
    }

    pub fn open_pending(&self) -> usize {
        self.open_pending.len()
    }

    /// Whether a gap has suspended the double-entry check.
    pub fn double_entry_suspended(&self) -> bool {
        self.after_gap
    }

    /// An account recorded by an accounts or swept file (call before the segment's events).
    /// An account may be recorded many times; records that disagree are a problem.
    pub fn record_account(
        &mut self,
        record: &AccountRecord,
        segment: &str,
        findings: &mut Findings,
    ) {
        if let Err(e) = self.recorded.insert(*record) {
            findings.push(Problem::AccountRecordsDisagree {
                account: record.id,
                segment: segment.to_string(),
                kept_first_seen: e.kept.first_seen_timestamp,
            });
        }
    }

    /// Names the segment whose events follow (for reports).
    pub fn begin_segment(&mut self, segment: &str) {
        self.segment.clear();
        self.segment.push_str(segment);
    }

    /// A segment could not be read: every account's next event re-seeds its chain.
    pub fn mark_gap(&mut self) {
        self.after_gap = true;
        for t in self.accounts.values_mut() {
            t.known = false;
        }
    }

    pub fn apply(&mut self, row: &EventRow, findings: &mut Findings) {
        self.events += 1;
        let (debit, credit) = (&row.debit_account, &row.credit_account);
        if debit.id == credit.id {
            findings.push(Problem::SameAccount {
                timestamp: row.timestamp,
                account: debit.id,
            });
        }
        let pending_amount = self.resolve_pending(row, findings);
        let m = pending_amount.map(|p| movement(row.event_type, row.transfer.amount, p));
        for (state, side) in [(debit, Side::Debit), (credit, Side::Credit)] {
            self.apply_side(row, state, side, m.as_ref(), findings);
        }
        // Every event keeps its ledger balanced, so the check holds after each one, which
        // finds an altered balance even when the account's next event hides it again.
        self.check_ledger(row.ledger, Some(row.timestamp), findings);
    }

    /// The amount of the pending transfer the event resolves (0 if it resolves none); `None`
    /// if it resolves one the lake does not hold as open, so its movement is unknown.
    fn resolve_pending(&mut self, row: &EventRow, findings: &mut Findings) -> Option<u128> {
        let t = &row.transfer;
        let resolved = match row.event_type {
            EventType::SinglePhase => return Some(0),
            EventType::TwoPhasePending => {
                if self.open_pending.insert(t.id, t.amount).is_some() {
                    findings.push(Problem::PendingTwice {
                        timestamp: row.timestamp,
                        transfer_id: t.id,
                    });
                }
                return Some(0);
            }
            EventType::TwoPhasePosted | EventType::TwoPhaseVoided => t.pending_id,
            // An expiry's transfer is the pending transfer itself.
            EventType::TwoPhaseExpired => t.id,
        };
        let amount = self.open_pending.remove(&resolved);
        if amount.is_none() && !self.after_gap {
            findings.push(Problem::UnknownPending {
                timestamp: row.timestamp,
                event_type: row.event_type.as_str(),
                transfer_id: t.id,
                pending_id: resolved,
            });
        }
        amount
    }

    fn apply_side(
        &mut self,
        row: &EventRow,
        state: &AccountState,
        side: Side,
        m: Option<&Movement>,
        findings: &mut Findings,
    ) {
        let id = state.id;
        if !self.after_gap && self.recorded.get(id).is_none() && self.unrecorded_reported.insert(id)
        {
            // Reported once: later events of this account are not reported again.
            findings.push(Problem::AccountNotRecorded {
                account: id,
                timestamp: row.timestamp,
            });
        }
        let found = Balances::of(state);
        let previous = self.accounts.get(&id).copied();
        let before = match previous {
            Some(t) if t.known => Some(t.balances),
            Some(_) => None,
            None if self.after_gap => None,
            None => Some(Balances::default()),
        };
        if let Some(t) = previous.filter(|t| t.ledger != row.ledger) {
            findings.push(Problem::LedgerChanged {
                account: id,
                timestamp: row.timestamp,
                previous_ledger: t.ledger,
                ledger: row.ledger,
            });
        }
        if let (Some(before), Some(m)) = (before, m) {
            let previous_timestamp = previous.map(|t| t.last_timestamp);
            match apply(&before, side, m) {
                Some(expected) if expected == found => {}
                Some(expected) => findings.push(Problem::ChainBreak {
                    account: id,
                    ledger: row.ledger,
                    previous_timestamp,
                    timestamp: row.timestamp,
                    event_type: row.event_type.as_str(),
                    transfer_id: row.transfer.id,
                    fields: expected
                        .diff(&found)
                        .into_iter()
                        .map(|(field, expected, found)| FieldBreak {
                            field,
                            expected,
                            found,
                        })
                        .collect(),
                }),
                None => findings.push(Problem::ImpossibleMovement {
                    account: id,
                    previous_timestamp,
                    timestamp: row.timestamp,
                    event_type: row.event_type.as_str(),
                    transfer_id: row.transfer.id,
                }),
            }
        }
        // Added before subtracting, so that sums never go below zero.
        self.ledgers.entry(row.ledger).or_default().add(&found);
        if let Some(t) = previous {
            self.ledgers
                .get_mut(&t.ledger)
                .expect("an account's ledger has sums")
                .sub(&t.balances);
        }
        // The lake's values win after a break, so one altered event is one report, not a
        // cascade through every later event of the account.
        self.accounts.insert(
            id,
            Tracked {
                ledger: row.ledger,
                balances: found,
                last_timestamp: row.timestamp,
                known: true,
            },
        );
    }

    /// Σ debits = Σ credits (posted, and pending) on every ledger; call at segment ends.
    pub fn check_double_entry(&mut self, findings: &mut Findings) {
        let ledgers: Vec<u32> = self.ledgers.keys().copied().collect();
        for ledger in ledgers {
            self.check_ledger(ledger, None, findings);
        }
    }

    /// Reports a ledger when it becomes unbalanced (once, until it balances again).
    fn check_ledger(&mut self, ledger: u32, after_event: Option<u64>, findings: &mut Findings) {
        if self.after_gap {
            return;
        }
        let Some(sums) = self.ledgers.get(&ledger) else {
            return;
        };
        for (balance, debits, credits) in [
            ("posted", sums.debits_posted, sums.credits_posted),
            ("pending", sums.debits_pending, sums.credits_pending),
        ] {
            if debits == credits {
                self.unbalanced.remove(&(ledger, balance));
            } else if self.unbalanced.insert((ledger, balance)) {
                findings.push(Problem::Unbalanced {
                    ledger,
                    segment: self.segment.clone(),
                    after_event,
                    balance,
                    debits: debits.to_string(),
                    credits: credits.to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cdc::TransferFields;

    /// A tiny honest ledger producing CDC-shaped rows: every event carries both accounts'
    /// balances after it, computed independently of `effect` (field by field).
    pub struct MiniLedger {
        balances: HashMap<u128, [u128; 4]>,
        pending: HashMap<u128, (u128, u128, u128)>,
        pub rows: Vec<EventRow>,
        next_ts: u64,
        next_id: u128,
    }

    impl MiniLedger {
        pub fn new() -> Self {
            MiniLedger {
                balances: HashMap::new(),
                pending: HashMap::new(),
                rows: Vec::new(),
                next_ts: 1_000,
                next_id: 1,
            }
        }

        fn push(&mut self, event_type: EventType, transfer: TransferFields, dr: u128, cr: u128) {
            let state = |id: u128, b: &HashMap<u128, [u128; 4]>| {
                let v = b.get(&id).copied().unwrap_or_default();
                AccountState {
                    id,
                    debits_pending: v[0],
                    debits_posted: v[1],
                    credits_pending: v[2],
                    credits_posted: v[3],
                    flags: 0,
                }
            };
            self.next_ts += 10;
            self.rows.push(EventRow {
                timestamp: self.next_ts,
                event_type,
                ledger: 1,
                transfer,
                debit_account: state(dr, &self.balances),
                credit_account: state(cr, &self.balances),
            });
        }

        fn id(&mut self) -> u128 {
            self.next_id += 1;
            self.next_id
        }

        pub fn single(&mut self, dr: u128, cr: u128, amount: u128) {
            self.balances.entry(dr).or_default()[1] += amount;
            self.balances.entry(cr).or_default()[3] += amount;
            let t = TransferFields {
                id: self.id(),
                amount,
                ..Default::default()
            };
            self.push(EventType::SinglePhase, t, dr, cr);
        }

        pub fn pending(&mut self, dr: u128, cr: u128, amount: u128) -> u128 {
            self.balances.entry(dr).or_default()[0] += amount;
            self.balances.entry(cr).or_default()[2] += amount;
            let id = self.id();
            self.pending.insert(id, (dr, cr, amount));
            let t = TransferFields {
                id,
                amount,
                ..Default::default()
            };
            self.push(EventType::TwoPhasePending, t, dr, cr);
            id
        }

        /// Posts `amount` of it (`None`: voids it; `Some` with `expire`: lets it expire).
        pub fn resolve(&mut self, pending_id: u128, post: Option<u128>, expire: bool) {
            let (dr, cr, p) = self.pending.remove(&pending_id).expect("open");
            self.balances.get_mut(&dr).unwrap()[0] -= p;
            self.balances.get_mut(&cr).unwrap()[2] -= p;
            let (event_type, t) = match (post, expire) {
                (Some(amount), _) => {
                    self.balances.get_mut(&dr).unwrap()[1] += amount;
                    self.balances.get_mut(&cr).unwrap()[3] += amount;
                    let t = TransferFields {
                        id: self.id(),
                        amount,
                        pending_id,
                        ..Default::default()
                    };
                    (EventType::TwoPhasePosted, t)
                }
                (None, false) => {
                    let t = TransferFields {
                        id: self.id(),
                        amount: p,
                        pending_id,
                        ..Default::default()
                    };
                    (EventType::TwoPhaseVoided, t)
                }
                (None, true) => {
                    let t = TransferFields {
                        id: pending_id,
                        amount: p,
                        ..Default::default()
                    };
                    (EventType::TwoPhaseExpired, t)
                }
            };
            self.push(event_type, t, dr, cr);
        }

        /// Every event type, on a few accounts, including a partial post.
        pub fn sample() -> Self {
            let mut l = MiniLedger::new();
            l.single(10, 20, 100);
            let a = l.pending(20, 30, 50);
            l.single(30, 10, 7);
            l.resolve(a, Some(20), false);
            let b = l.pending(10, 30, 5);
            let c = l.pending(30, 20, 9);
            l.resolve(b, None, false);
            l.resolve(c, None, true);
            l.single(20, 10, u128::from(u64::MAX) + 3);
            let d = l.pending(10, 20, 11);
            l.resolve(d, Some(11), false);
            l
        }
    }

    fn record(id: u128) -> AccountRecord {
        AccountRecord {
            id,
            ledger: 1,
            first_seen_timestamp: 1,
            ..AccountRecord::default()
        }
    }

    #[test]
    fn an_account_recorded_again_is_fine_unless_its_records_disagree() {
        let mut r = Replay::default();
        let mut f = Findings::default();
        r.record_account(&record(10), "a", &mut f);
        // Every segment records the accounts it touches: the same fields again, later flags.
        let again = AccountRecord {
            flags: 1 << 5,
            first_seen_timestamp: 7,
            ..record(10)
        };
        r.record_account(&again, "b", &mut f);
        assert_eq!(f.total, 0, "{:#?}", f.problems);
        let other = AccountRecord {
            code: 3,
            first_seen_timestamp: 9,
            ..record(10)
        };
        r.record_account(&other, "c", &mut f);
        assert_eq!(
            f.problems,
            vec![Problem::AccountRecordsDisagree {
                account: 10,
                segment: "c".into(),
                kept_first_seen: 1,
            }]
        );
    }

    fn replay(rows: &[EventRow]) -> (Replay, Findings) {
        let mut r = Replay::default();
        let mut f = Findings::default();
        let mut ids: Vec<u128> = rows
            .iter()
            .flat_map(|e| [e.debit_account.id, e.credit_account.id])
            .collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            r.record_account(&record(id), "s", &mut f);
        }
        for row in rows {
            r.apply(row, &mut f);
        }
        r.check_double_entry(&mut f);
        (r, f)
    }

    #[test]
    fn an_honest_ledger_has_no_problems() {
        let l = MiniLedger::sample();
        let (r, f) = replay(&l.rows);
        assert_eq!(f.total, 0, "{:#?}", f.problems);
        assert_eq!((r.accounts(), r.open_pending(), r.events), (3, 0, 11));
    }

    #[test]
    fn a_deleted_event_breaks_both_accounts_chains_at_their_next_event() {
        let mut rows = MiniLedger::sample().rows;
        let deleted = rows.remove(2); // single 30 → 10
        let (_, f) = replay(&rows);
        let breaks: Vec<(u128, Option<u64>, u64)> = f
            .problems
            .iter()
            .filter_map(|p| match p {
                Problem::ChainBreak {
                    account,
                    previous_timestamp,
                    timestamp,
                    ..
                } => Some((*account, *previous_timestamp, *timestamp)),
                _ => None,
            })
            .collect();
        // Account 30's previous event is before the deleted one, its next after it.
        assert!(breaks
            .iter()
            .any(|&(a, p, t)| a == 30 && p < Some(deleted.timestamp) && t > deleted.timestamp));
        assert!(breaks
            .iter()
            .any(|&(a, p, t)| a == 10 && p < Some(deleted.timestamp) && t > deleted.timestamp));
    }

    #[test]
    fn a_changed_amount_is_reported_at_that_event() {
        let mut rows = MiniLedger::sample().rows;
        rows[0].transfer.amount += 1;
        let (_, f) = replay(&rows);
        let at_first: Vec<_> = f
            .problems
            .iter()
            .filter(|p| matches!(p, Problem::ChainBreak { timestamp, .. } if *timestamp == rows[0].timestamp))
            .collect();
        assert_eq!(at_first.len(), 2, "{:#?}", f.problems);
        // Changing only the amount leaves the balances consistent with each other.
        assert!(!f
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Unbalanced { .. })));
    }

    #[test]
    fn a_changed_balance_breaks_the_chain_and_the_double_entry() {
        let mut rows = MiniLedger::sample().rows;
        let last = rows.len() - 1;
        rows[last].credit_account.credits_posted += 1;
        let (_, f) = replay(&rows);
        assert!(f.problems.iter().any(|p| matches!(
            p,
            Problem::ChainBreak { account: 20, fields, .. } if fields[0].field == "credits_posted"
        )));
        assert!(f.problems.iter().any(|p| matches!(
            p,
            Problem::Unbalanced {
                ledger: 1,
                balance: "posted",
                ..
            }
        )));
    }

    #[test]
    fn a_replayed_event_breaks_the_chain() {
        let mut rows = MiniLedger::sample().rows;
        let mut dup = rows[0];
        dup.timestamp += 1;
        rows.insert(1, dup);
        let (_, f) = replay(&rows);
        assert!(f.problems.iter().any(
            |p| matches!(p, Problem::ChainBreak { timestamp, .. } if *timestamp == dup.timestamp)
        ));
    }

    #[test]
    fn resolving_an_unknown_pending_transfer_is_reported() {
        let mut rows = MiniLedger::sample().rows;
        rows.remove(1); // the pending that is posted at index 3
        let (_, f) = replay(&rows);
        assert!(f
            .problems
            .iter()
            .any(|p| matches!(p, Problem::UnknownPending { .. })));
    }

    #[test]
    fn after_a_gap_chains_reseed_without_cascading() {
        let rows = MiniLedger::sample().rows;
        let mut r = Replay::default();
        let mut f = Findings::default();
        for id in [10, 20, 30] {
            r.record_account(&record(id), "s", &mut f);
        }
        for row in &rows[..3] {
            r.apply(row, &mut f);
        }
        r.mark_gap();
        for row in &rows[6..] {
            r.apply(row, &mut f);
        }
        r.check_double_entry(&mut f);
        assert_eq!(f.total, 0, "{:#?}", f.problems);
        assert!(r.double_entry_suspended());
    }

    #[test]
    fn findings_are_bounded_but_counted() {
        let mut f = Findings::default();
        for i in 0..(PROBLEMS_REPORTED_MAX as u64 + 5) {
            f.push(Problem::PendingTwice {
                timestamp: i,
                transfer_id: 1,
            });
        }
        assert_eq!(f.problems.len(), PROBLEMS_REPORTED_MAX);
        assert_eq!(f.total, PROBLEMS_REPORTED_MAX as u64 + 5);
    }
}
