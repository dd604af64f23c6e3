//! The open segment: the events received since the last seal, kept in timestamp order, and the
//! policy that decides when to seal it. Pure and synchronous, so the rules are unit-tested
//! without a broker or a store.

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::cdc::Event;
use crate::lake::{AccountRecord, Segment};

/// A UTC day in TigerBeetle's nanoseconds (Unix time has no leap seconds).
const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// `lake::estimated_row_bytes`, computed once: it builds the Arrow schema, and the loop asks on
/// every delivery.
fn row_bytes() -> usize {
    static ROW_BYTES: OnceLock<usize> = OnceLock::new();
    *ROW_BYTES.get_or_init(crate::lake::estimated_row_bytes)
}

/// Where an event went when it was offered to the open segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Append {
    /// Added to the open segment.
    Appended,
    /// Its timestamp is at or before the last committed (or committing) one: a redelivery or a
    /// replay. Dropped and counted.
    AlreadyCommitted,
    /// The open segment already holds this timestamp: a redelivery. Dropped and counted.
    DuplicateInSegment,
    /// It belongs to another UTC day than the open segment: seal first, then offer it again.
    NeedsSeal,
    /// It is older than the open segment's first event and of an earlier UTC day, after a later
    /// day's events were received. It cannot be placed in time order in any segment still open.
    Late,
}

/// When to seal. Every limit is explicit at the call site (see `ExportOptions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealPolicy {
    pub events_max: usize,
    pub bytes_max: usize,
    pub age_max: Duration,
    /// Seal once no event has been appended for this long: the CDC job publishes in bursts, so a
    /// pause means the burst is over and waiting longer only adds lag.
    pub idle_max: Duration,
}

/// The events received since the last seal. Invariant: `events` strictly increasing by
/// timestamp, all of one UTC day.
#[derive(Debug, Default)]
pub struct OpenSegment {
    events: Vec<Event>,
    /// The first record of each account an event of the segment touches, in order of first
    /// appearance: every segment records every account it uses (readers deduplicate by id), so
    /// no set of the lake's accounts is kept anywhere.
    new_accounts: Vec<AccountRecord>,
    /// The ids in `new_accounts`: at most two per event, so bounded by the seal policy.
    recorded: HashSet<u128>,
    /// First instant an event was appended: the age limit counts from there.
    opened_at: Option<Instant>,
    /// Last instant an event was appended: the idle limit counts from there.
    appended_at: Option<Instant>,
    /// `[day_start, day_end)` in ns of the segment's UTC day, set by its first event.
    day: Option<(u64, u64)>,
}

impl OpenSegment {
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn last_timestamp(&self) -> Option<u64> {
        self.events.last().map(|e| e.timestamp)
    }

    /// Offers an event. `committed_last` is the last timestamp committed or being committed.
    pub fn append(&mut self, event: &Event, committed_last: Option<u64>, now: Instant) -> Append {
        if committed_last.is_some_and(|last| event.timestamp <= last) {
            return Append::AlreadyCommitted;
        }
        let position = match self
            .events
            .binary_search_by_key(&event.timestamp, |e| e.timestamp)
        {
            Ok(_) => return Append::DuplicateInSegment,
            Err(position) => position,
        };
        if let Some((day_start, day_end)) = self.day {
            if event.timestamp >= day_end {
                return Append::NeedsSeal;
            }
            if event.timestamp < day_start {
                return Append::Late;
            }
        } else {
            let day_start = event.timestamp - event.timestamp % DAY_NS;
            self.day = Some((day_start, day_start + DAY_NS));
            self.opened_at = Some(now);
        }
        for account in [&event.debit_account, &event.credit_account] {
            if self.recorded.insert(account.id) {
                self.new_accounts.push(AccountRecord::from_event_account(
                    account,
                    event.ledger,
                    event.timestamp,
                ));
            }
        }
        self.events.insert(position, *event);
        self.appended_at = Some(now);
        debug_assert!(self
            .events
            .windows(2)
            .all(|w| w[0].timestamp < w[1].timestamp));
        Append::Appended
    }

    /// Whether the segment is due: full by count or size (no room for another event), old
    /// enough, or idle long enough.
    pub fn should_seal(&self, policy: &SealPolicy, now: Instant) -> bool {
        self.seal_reason(policy, now).is_some()
    }

    /// Why the segment is due, if it is (for the debug log).
    pub fn seal_reason(&self, policy: &SealPolicy, now: Instant) -> Option<&'static str> {
        if self.events.is_empty() {
            return None;
        }
        if !self.has_room(policy)
            || self.events.len() >= policy.events_max
            || self.events.len() * row_bytes() >= policy.bytes_max
        {
            return Some("full");
        }
        if self
            .opened_at
            .is_some_and(|opened| now.duration_since(opened) >= policy.age_max)
        {
            return Some("age");
        }
        if self
            .appended_at
            .is_some_and(|appended| now.duration_since(appended) >= policy.idle_max)
        {
            return Some("idle");
        }
        None
    }

    /// Whether another event may be appended without breaking the count or size limit.
    pub fn has_room(&self, policy: &SealPolicy) -> bool {
        self.events.len() < policy.events_max
            && (self.events.len() + 1) * row_bytes() <= policy.bytes_max
    }

    /// Takes the contents out, leaving an empty segment.
    pub fn seal(&mut self) -> Segment {
        let sealed = std::mem::take(self);
        Segment {
            events: sealed.events,
            new_accounts: sealed.new_accounts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::{AccountFields, EventType, TransferFields};

    fn event(timestamp: u64, debit: u128, credit: u128) -> Event {
        Event {
            timestamp,
            event_type: EventType::SinglePhase,
            ledger: 1,
            transfer: TransferFields {
                id: u128::from(timestamp),
                timestamp,
                ..TransferFields::default()
            },
            debit_account: AccountFields {
                id: debit,
                timestamp: 1,
                ..AccountFields::default()
            },
            credit_account: AccountFields {
                id: credit,
                timestamp: 2,
                ..AccountFields::default()
            },
        }
    }

    fn policy() -> SealPolicy {
        SealPolicy {
            events_max: 3,
            bytes_max: usize::MAX,
            age_max: Duration::from_secs(1),
            idle_max: Duration::from_millis(100),
        }
    }

    #[test]
    fn redelivered_events_are_dropped_by_timestamp() {
        let mut segment = OpenSegment::default();
        let now = Instant::now();
        let base = 20_000 * DAY_NS;
        assert_eq!(
            segment.append(&event(base + 5, 1, 2), Some(base + 5), now),
            Append::AlreadyCommitted
        );
        assert_eq!(
            segment.append(&event(base + 6, 1, 2), Some(base + 5), now),
            Append::Appended
        );
        assert_eq!(
            segment.append(&event(base + 6, 1, 2), Some(base + 5), now),
            Append::DuplicateInSegment
        );
        assert_eq!(segment.len(), 1);
    }

    #[test]
    fn out_of_order_events_within_the_open_segment_are_placed_in_order() {
        let mut segment = OpenSegment::default();
        let now = Instant::now();
        let base = 20_000 * DAY_NS;
        for ts in [base + 10, base + 30, base + 20] {
            assert_eq!(
                segment.append(&event(ts, 1, 2), None, now),
                Append::Appended
            );
        }
        let sealed = segment.seal();
        let order: Vec<u64> = sealed.events.iter().map(|e| e.timestamp).collect();
        assert_eq!(order, vec![base + 10, base + 20, base + 30]);
        assert!(segment.is_empty());
    }

    #[test]
    fn a_segment_never_straddles_utc_midnight() {
        let mut segment = OpenSegment::default();
        let now = Instant::now();
        let midnight = 20_001 * DAY_NS;
        assert_eq!(
            segment.append(&event(midnight - 1, 1, 2), None, now),
            Append::Appended
        );
        assert_eq!(
            segment.append(&event(midnight, 1, 2), None, now),
            Append::NeedsSeal
        );
        segment.seal();
        assert_eq!(
            segment.append(&event(midnight, 1, 2), Some(midnight - 1), now),
            Append::Appended
        );
        assert_eq!(
            segment.append(&event(midnight - 2, 1, 2), None, now),
            Append::Late
        );
    }

    #[test]
    fn a_segment_records_each_account_it_touches_once_at_its_first_event() {
        let mut segment = OpenSegment::default();
        let now = Instant::now();
        let base = 20_000 * DAY_NS;
        segment.append(&event(base + 1, 7, 8), None, now);
        segment.append(&event(base + 2, 8, 9), None, now);
        let sealed = segment.seal();
        let ids: Vec<u128> = sealed.new_accounts.iter().map(|a| a.id).collect();
        assert_eq!(ids, vec![7, 8, 9]);
        assert_eq!(sealed.new_accounts[1].first_seen_timestamp, base + 1);
        assert_eq!(sealed.new_accounts[2].first_seen_timestamp, base + 2);
        // The next segment records its accounts again, whatever earlier segments recorded:
        // nothing outside the open segment is remembered.
        segment.append(&event(base + 3, 9, 7), Some(base + 2), now);
        let sealed = segment.seal();
        let ids: Vec<u128> = sealed.new_accounts.iter().map(|a| a.id).collect();
        assert_eq!(ids, vec![9, 7]);
        assert!(sealed
            .new_accounts
            .iter()
            .all(|a| a.first_seen_timestamp == base + 3));
    }

    #[test]
    fn seals_after_a_pause_in_deliveries() {
        let mut segment = OpenSegment::default();
        let start = Instant::now();
        let base = 20_000 * DAY_NS;
        segment.append(&event(base + 1, 1, 2), None, start);
        segment.append(
            &event(base + 2, 1, 2),
            None,
            start + Duration::from_millis(90),
        );
        assert!(
            !segment.should_seal(&policy(), start + Duration::from_millis(150)),
            "deliveries keep coming"
        );
        assert!(
            segment.should_seal(&policy(), start + Duration::from_millis(190)),
            "100 ms without one"
        );
    }

    #[test]
    fn seals_on_count_and_on_age() {
        let mut segment = OpenSegment::default();
        let start = Instant::now();
        let base = 20_000 * DAY_NS;
        assert!(!segment.should_seal(&policy(), start));
        segment.append(&event(base + 1, 1, 2), None, start);
        assert!(!segment.should_seal(&policy(), start));
        assert!(segment.should_seal(&policy(), start + Duration::from_secs(1)));
        segment.append(&event(base + 2, 1, 2), None, start);
        assert!(segment.has_room(&policy()));
        segment.append(&event(base + 3, 1, 2), None, start);
        assert!(!segment.has_room(&policy()));
        assert!(segment.should_seal(&policy(), start));
    }

    #[test]
    fn seals_when_the_next_event_would_not_fit_in_the_byte_limit() {
        let mut segment = OpenSegment::default();
        let start = Instant::now();
        let base = 20_000 * DAY_NS;
        let policy = SealPolicy {
            events_max: 1_000,
            bytes_max: 2 * row_bytes() + 1,
            ..policy()
        };
        segment.append(&event(base + 1, 1, 2), None, start);
        segment.append(&event(base + 2, 1, 2), None, start);
        assert!(!segment.has_room(&policy));
        assert!(
            segment.should_seal(&policy, start),
            "a segment with no room must not wait for its age"
        );
    }

    #[test]
    fn the_seal_reason_names_the_limit_that_was_reached() {
        let start = Instant::now();
        let base = 20_000 * DAY_NS;
        let mut segment = OpenSegment::default();
        assert_eq!(segment.seal_reason(&policy(), start), None, "empty");
        segment.append(&event(base + 1, 1, 2), None, start);
        assert_eq!(segment.seal_reason(&policy(), start), None);
        assert_eq!(
            segment.seal_reason(&policy(), start + Duration::from_millis(100)),
            Some("idle")
        );
        segment.append(
            &event(base + 2, 1, 2),
            None,
            start + Duration::from_millis(950),
        );
        assert_eq!(
            segment.seal_reason(&policy(), start + Duration::from_millis(1_000)),
            Some("age"),
            "50 ms after the last event, a second after the first"
        );
        segment.append(&event(base + 3, 1, 2), None, start);
        assert_eq!(segment.seal_reason(&policy(), start), Some("full"));
    }
}
