//! One test per rule of the export state machine; `export::sim` drives it at random.

use super::*;
use crate::cdc::{AccountFields, EventType, TransferFields};
use crate::export::sweep::SweptPage;
use crate::lake::AccountRecord;

const DAY_NS: u64 = 86_400 * 1_000_000_000;
const BASE: u64 = 20_000 * DAY_NS;
const MS: Duration = Duration::from_millis(1);

fn event(timestamp: u64) -> Event {
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
            id: 1,
            timestamp: 1,
            ..AccountFields::default()
        },
        credit_account: AccountFields {
            id: 2,
            timestamp: 2,
            ..AccountFields::default()
        },
    }
}

fn delivery(tag: u64, timestamp: u64) -> Input {
    Input::Delivery(Delivery {
        tag,
        received_ns: 7,
        payload: Payload::Event(event(timestamp)),
    })
}

fn garbage(tag: u64) -> Input {
    Input::Delivery(Delivery {
        tag,
        received_ns: 7,
        payload: Payload::Undecodable(Undecodable {
            reason: "not JSON".into(),
            exchange: "cdc".into(),
            routing_key: String::new(),
            headers: vec![("h".into(), "v".into())],
            body: b"garbage".to_vec(),
        }),
    })
}

fn policy() -> SealPolicy {
    SealPolicy {
        events_max: 3,
        bytes_max: usize::MAX,
        age_max: Duration::from_secs(1),
        idle_max: Duration::from_millis(100),
    }
}

fn options() -> MachineOptions {
    MachineOptions {
        seal: policy(),
        until_idle: None,
        sweep: false,
    }
}

fn machine_with(options: MachineOptions, committed_last: Option<u64>) -> (Machine, Instant) {
    let start = SessionStart { committed_last };
    let now = Instant::now();
    (
        Machine::new(options, start, ExportReport::default(), now),
        now,
    )
}

fn machine() -> (Machine, Instant) {
    machine_with(options(), None)
}

fn committed(bytes: u64) -> Input {
    Input::CommitDone(CommitOutcome::Committed { bytes })
}

/// The timestamps of the one segment commit among `actions`.
fn segment_timestamps(actions: &[Action]) -> Vec<u64> {
    let segments: Vec<&Segment> = actions
        .iter()
        .filter_map(|a| match a {
            Action::StartCommit(Work::Segment(s)) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(segments.len(), 1, "one segment commit in {actions:?}");
    segments[0].events.iter().map(|e| e.timestamp).collect()
}

#[test]
fn places_events_in_timestamp_order_and_seals_by_count() {
    let (mut m, now) = machine();
    assert!(m.step(delivery(1, BASE + 3), now).is_empty());
    assert!(m.step(delivery(2, BASE + 1), now).is_empty());
    let actions = m.step(delivery(3, BASE + 2), now);
    assert_eq!(
        segment_timestamps(&actions),
        vec![BASE + 1, BASE + 2, BASE + 3]
    );
    assert_eq!(m.step(committed(100), now), vec![Action::AckThrough(3)]);
    let report = m.report();
    assert_eq!(
        (
            report.events_committed,
            report.segments_committed,
            report.bytes_committed
        ),
        (3, 1, 100)
    );
    assert_eq!(report.last_committed_timestamp, Some(BASE + 3));
}

#[test]
fn seals_by_bytes_and_stops_taking_deliveries_when_full() {
    let mut options = options();
    options.seal.events_max = 1_000;
    options.seal.bytes_max = 2 * crate::lake::estimated_row_bytes();
    let (mut m, now) = machine_with(options, None);
    assert!(m.step(delivery(1, BASE + 1), now).is_empty());
    assert!(m.can_take());
    let actions = m.step(delivery(2, BASE + 2), now);
    assert_eq!(segment_timestamps(&actions), vec![BASE + 1, BASE + 2]);
    assert!(m.can_take(), "the sealed segment left the open one empty");
}

#[test]
fn seals_on_idle_and_on_age() {
    let (mut m, start) = machine();
    m.step(delivery(1, BASE + 1), start);
    assert!(m.step(Input::Tick, start + 99 * MS).is_empty());
    let actions = m.step(Input::Tick, start + 100 * MS);
    assert_eq!(segment_timestamps(&actions), vec![BASE + 1]);
    m.step(committed(1), start + 100 * MS);

    // Deliveries every 60 ms never leave it idle; the age limit seals it at 1 s.
    let (mut m, start) = machine_with(
        MachineOptions {
            seal: SealPolicy {
                events_max: 1_000,
                ..policy()
            },
            ..options()
        },
        None,
    );
    for i in 0..17u64 {
        let t = start + 60 * MS * i as u32;
        assert!(m.step(delivery(i + 1, BASE + i), t).is_empty(), "at {i}");
    }
    let actions = m.step(delivery(18, BASE + 17), start + 1_020 * MS);
    assert_eq!(segment_timestamps(&actions).len(), 18);
}

#[test]
fn acknowledges_only_after_the_commit_and_in_delivery_order() {
    let (mut m, now) = machine();
    m.step(delivery(1, BASE + 1), now);
    let actions = m.step(Input::Tick, now + 200 * MS);
    assert_eq!(segment_timestamps(&actions), vec![BASE + 1]);
    // The next segment fills while the first is in flight; nothing is acknowledged yet.
    for tag in 2..=3 {
        assert!(m.step(delivery(tag, BASE + tag), now + 200 * MS).is_empty());
    }
    assert!(
        m.step(Input::Tick, now + 400 * MS).is_empty(),
        "one commit at a time"
    );
    let actions = m.step(committed(1), now + 400 * MS);
    assert_eq!(actions[0], Action::AckThrough(1));
    assert_eq!(segment_timestamps(&actions[1..]), vec![BASE + 2, BASE + 3]);
    assert_eq!(
        m.step(committed(1), now + 400 * MS),
        vec![Action::AckThrough(3)]
    );
}

#[test]
fn duplicates_are_dropped_counted_and_acknowledged_without_a_write() {
    let (mut m, now) = machine_with(options(), Some(BASE + 5));
    // At or before the lake's last timestamp: nothing to write, acknowledged at once.
    assert_eq!(
        m.step(delivery(1, BASE + 5), now),
        vec![Action::AckThrough(1)]
    );
    // A redelivery of an event in the open segment: acknowledged with that segment.
    assert!(m.step(delivery(2, BASE + 6), now).is_empty());
    assert!(m.step(delivery(3, BASE + 6), now).is_empty());
    let actions = m.step(Input::Tick, now + 100 * MS);
    assert_eq!(segment_timestamps(&actions), vec![BASE + 6]);
    assert_eq!(m.step(committed(1), now), vec![Action::AckThrough(3)]);
    assert_eq!(m.report().duplicates_dropped, 2);
    assert_eq!(m.report().events_committed, 1);
}

#[test]
fn a_duplicate_of_the_segment_in_flight_waits_for_its_commit() {
    let (mut m, now) = machine();
    m.step(delivery(1, BASE + 1), now);
    m.step(Input::Tick, now + 100 * MS);
    assert!(
        m.step(delivery(2, BASE + 1), now).is_empty(),
        "not before the commit"
    );
    assert_eq!(
        m.step(committed(1), now),
        vec![Action::AckThrough(1), Action::AckThrough(2)]
    );
}

#[test]
fn holds_a_next_day_event_until_the_open_segment_is_sealed() {
    let (mut m, now) = machine();
    m.step(delivery(1, BASE + 1), now);
    m.step(Input::Tick, now + 100 * MS);
    // Segment 1 is in flight; 2 opens a segment, 3 is of the next day: held.
    assert!(m.step(delivery(2, BASE + 2), now).is_empty());
    assert!(m.step(delivery(3, BASE + DAY_NS), now).is_empty());
    assert!(!m.can_take(), "no deliveries while an event is held");
    let actions = m.step(committed(1), now);
    assert_eq!(actions[0], Action::AckThrough(1));
    assert_eq!(segment_timestamps(&actions[1..]), vec![BASE + 2]);
    assert!(m.can_take(), "the held event opened the next segment");
    assert_eq!(m.step(committed(1), now), vec![Action::AckThrough(2)]);
    let actions = m.step(Input::Tick, now + 200 * MS);
    assert_eq!(segment_timestamps(&actions), vec![BASE + DAY_NS]);
    assert_eq!(m.step(committed(1), now), vec![Action::AckThrough(3)]);
}

#[test]
fn a_late_event_goes_to_quarantine_through_the_commit_slot() {
    let (mut m, now) = machine();
    m.step(delivery(1, BASE + DAY_NS + 5), now);
    let actions = m.step(delivery(2, BASE + 3), now);
    let [Action::StartCommit(Work::Quarantine(records))] = actions.as_slice() else {
        panic!("expected one quarantine write, got {actions:?}");
    };
    assert_eq!(records.len(), 1);
    assert!(
        records[0].reason.starts_with("late event"),
        "{}",
        records[0].reason
    );
    assert_eq!(records[0].body, cdc::encode(&event(BASE + 3)).into_bytes());
    assert_eq!(m.step(committed(0), now), vec![Action::AckOne(2)]);
    assert_eq!(m.report().quarantined, 1);
}

#[test]
fn quarantine_writes_wait_for_the_slot_without_blocking_deliveries() {
    let (mut m, now) = machine();
    m.step(delivery(1, BASE + 1), now);
    m.step(Input::Tick, now + 100 * MS); // segment [1] in flight
    assert!(m.step(garbage(2), now).is_empty());
    assert!(
        m.can_take(),
        "a pending quarantine record does not stop deliveries"
    );
    assert!(m.step(delivery(3, BASE + 3), now).is_empty());
    assert!(m.step(garbage(4), now).is_empty());
    let actions = m.step(committed(1), now + 200 * MS);
    assert_eq!(actions[0], Action::AckThrough(1));
    let Action::StartCommit(Work::Quarantine(records)) = &actions[1] else {
        panic!("quarantine first, got {actions:?}");
    };
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].exchange, "cdc");
    assert_eq!(records[0].headers, vec![("h".to_string(), "v".to_string())]);
    // The segment holding tag 3 is sealed only once tags 2 and 4 are durable, so its
    // acknowledgement through 3 never covers a message not yet in quarantine.
    let actions = m.step(committed(0), now + 200 * MS);
    assert_eq!(actions[..2], [Action::AckOne(2), Action::AckOne(4)]);
    assert_eq!(segment_timestamps(&actions[2..]), vec![BASE + 3]);
    assert_eq!(m.step(committed(1), now), vec![Action::AckThrough(3)]);
    assert_eq!(m.report().quarantined, 2);
}

#[test]
fn deliveries_stop_while_the_quarantine_queue_is_full() {
    let (mut m, now) = machine();
    m.step(delivery(1, BASE + 1), now);
    m.step(Input::Tick, now + 100 * MS);
    for tag in 0..QUARANTINE_PENDING_MAX as u64 {
        assert!(m.can_take());
        m.step(garbage(tag + 2), now);
    }
    assert!(!m.can_take());
}

#[test]
fn a_sweep_page_is_committed_before_the_next_segment_even_with_nothing_to_record() {
    let (mut m, now) = machine_with(
        MachineOptions {
            sweep: true,
            ..options()
        },
        None,
    );
    m.step(delivery(1, BASE + 1), now); // records accounts 1 and 2 in its segment
    let account = |id: u128| AccountRecord {
        id,
        ledger: 1,
        code: 1,
        flags: 0,
        user_data_128: 0,
        user_data_64: 0,
        user_data_32: 0,
        timestamp: id as u64,
        first_seen_timestamp: id as u64,
    };
    // The machine keeps no set of accounts: the page goes to the lake as the sweep made it.
    let page = SweptPage {
        accounts: vec![account(2), account(3)],
        through: 4,
    };
    let actions = m.step(Input::SweepPage(page.clone()), now);
    assert_eq!(actions, vec![Action::StartCommit(Work::Swept(page))]);
    let actions = m.step(committed(10), now + 100 * MS);
    assert_eq!(segment_timestamps(&actions), vec![BASE + 1]);
    assert_eq!(
        (m.report().accounts_swept, m.report().swept_files_committed),
        (2, 1)
    );
    // The segment records both of its accounts, though the sweep recorded one of them.
    let Some(Action::StartCommit(Work::Segment(segment))) = actions.first() else {
        panic!("a segment commit: {actions:?}");
    };
    let ids: Vec<u128> = segment.new_accounts.iter().map(|a| a.id).collect();
    assert_eq!(ids, vec![1, 2]);
    m.step(committed(10), now + 100 * MS);
    // A page whose accounts all took transfers: only the sweep's position is committed, and
    // no file is counted.
    let position_only = SweptPage {
        accounts: Vec::new(),
        through: 9,
    };
    let actions = m.step(Input::SweepPage(position_only.clone()), now);
    assert_eq!(
        actions,
        vec![Action::StartCommit(Work::Swept(position_only))]
    );
    m.step(committed(0), now);
    assert_eq!(
        (m.report().accounts_swept, m.report().swept_files_committed),
        (2, 1)
    );
}

#[test]
fn until_idle_exits_only_drained_and_after_a_sweep_pass_that_followed_the_last_delivery() {
    let (mut m, start) = machine_with(
        MachineOptions {
            until_idle: Some(Duration::from_secs(1)),
            sweep: true,
            ..options()
        },
        None,
    );
    m.step(delivery(1, BASE + 1), start);
    m.step(Input::Tick, start + 100 * MS);
    assert!(
        m.step(Input::Tick, start + 2_000 * MS).is_empty(),
        "not drained"
    );
    assert_eq!(
        m.step(committed(1), start + 2_000 * MS),
        vec![Action::AckThrough(1)]
    );
    assert!(
        m.step(Input::Tick, start + 2_000 * MS).is_empty(),
        "no sweep pass yet"
    );
    let before = Input::SweepPassDone {
        started: start - MS,
    };
    assert!(
        m.step(before, start + 2_000 * MS).is_empty(),
        "that pass began too early"
    );
    let after = Input::SweepPassDone {
        started: start + 500 * MS,
    };
    assert_eq!(
        m.step(after, start + 2_000 * MS),
        vec![Action::Finish(End::Idle)]
    );
    assert!(m.is_done());
}

#[test]
fn until_idle_without_a_sweep_waits_for_the_idle_time() {
    let (mut m, start) = machine_with(
        MachineOptions {
            until_idle: Some(Duration::from_secs(1)),
            ..options()
        },
        None,
    );
    assert!(m.step(Input::Tick, start + 999 * MS).is_empty());
    assert_eq!(
        m.step(Input::Tick, start + 1_000 * MS),
        vec![Action::Finish(End::Idle)]
    );
}

#[test]
fn shutdown_commits_everything_then_acknowledges_and_leaves_a_held_event() {
    let (mut m, now) = machine();
    m.step(delivery(1, BASE + 1), now);
    m.step(Input::Tick, now + 100 * MS); // [1] in flight
    m.step(delivery(2, BASE + 2), now);
    m.step(garbage(3), now);
    m.step(delivery(4, BASE + 2), now); // a duplicate
    m.step(delivery(5, BASE + DAY_NS), now); // held
    assert!(m.step(Input::Shutdown, now).is_empty());
    assert!(!m.can_take());
    let actions = m.step(committed(1), now);
    assert!(matches!(
        actions.as_slice(),
        [
            Action::AckThrough(1),
            Action::StartCommit(Work::Quarantine(_))
        ]
    ));
    let actions = m.step(committed(0), now);
    assert_eq!(actions[0], Action::AckOne(3));
    assert_eq!(segment_timestamps(&actions[1..]), vec![BASE + 2]);
    assert_eq!(
        m.step(committed(1), now),
        vec![Action::AckThrough(4), Action::Finish(End::Shutdown)]
    );
    assert_eq!(m.report().events_committed, 2);
}

#[test]
fn shutdown_acknowledges_duplicates_received_during_the_last_commit() {
    let (mut m, now) = machine_with(options(), Some(BASE + 9));
    m.step(delivery(1, BASE + 10), now);
    m.step(Input::Tick, now + 100 * MS); // [10] in flight
    assert!(m.step(delivery(2, BASE + 10), now).is_empty());
    assert!(m.step(Input::Shutdown, now).is_empty());
    assert_eq!(
        m.step(committed(1), now),
        vec![
            Action::AckThrough(1),
            Action::AckThrough(2),
            Action::Finish(End::Shutdown)
        ]
    );
}

#[test]
fn a_lost_session_waits_for_the_commit_in_flight_and_counts_it_like_any_other() {
    let (mut m, now) = machine();
    m.step(delivery(1, BASE + 1), now);
    m.step(delivery(2, BASE + 2), now);
    m.step(Input::Tick, now + 100 * MS); // [1, 2] in flight
    m.step(delivery(3, BASE + 3), now);
    m.step(garbage(4), now);
    assert!(m.step(Input::BrokerLost, now).is_empty());
    assert!(!m.can_take() && !m.wants_sweep());
    // No acknowledgement on a dead session; the open segment and the quarantine record are
    // dropped (the broker redelivers them).
    assert_eq!(
        m.step(committed(77), now),
        vec![Action::Finish(End::BrokerLost)]
    );
    let report = m.into_report();
    assert_eq!(
        (
            report.events_committed,
            report.segments_committed,
            report.bytes_committed,
            report.quarantined,
            report.reconnects
        ),
        (2, 1, 77, 0, 1)
    );
    assert_eq!(report.last_committed_timestamp, Some(BASE + 2));

    // An already-committed segment adds no events, segments or bytes, lost session or not.
    let (mut m, now) = machine();
    m.step(delivery(1, BASE + 1), now);
    m.step(Input::Tick, now + 100 * MS);
    m.step(Input::BrokerLost, now);
    m.step(Input::CommitDone(CommitOutcome::AlreadyCommitted), now);
    let report = m.into_report();
    assert_eq!((report.events_committed, report.segments_committed), (0, 0));
    assert_eq!(report.last_committed_timestamp, Some(BASE + 1));
}

#[test]
fn a_lost_session_with_nothing_in_flight_ends_at_once() {
    let (mut m, now) = machine();
    m.step(delivery(1, BASE + 1), now);
    assert_eq!(
        m.step(Input::BrokerLost, now),
        vec![Action::Finish(End::BrokerLost)]
    );
}

#[test]
fn a_failed_commit_ends_the_run_without_acknowledging() {
    let (mut m, now) = machine();
    m.step(delivery(1, BASE + 1), now);
    m.step(Input::Tick, now + 100 * MS);
    m.step(delivery(2, BASE + 1), now);
    assert_eq!(
        m.step(Input::CommitFailed(Failure::Permanent), now),
        vec![Action::Finish(End::LakeFailed(Failure::Permanent))]
    );
    assert_eq!(m.report().events_committed, 0);
}

#[test]
#[should_panic(expected = "delivery tags increase")]
fn delivery_tags_must_increase() {
    let (mut m, now) = machine();
    m.step(delivery(2, BASE + 1), now);
    m.step(delivery(2, BASE + 2), now);
}

#[test]
#[should_panic(expected = "a delivery the machine did not ask for")]
fn no_delivery_while_an_event_is_held() {
    let (mut m, now) = machine();
    m.step(delivery(1, BASE + 1), now);
    m.step(Input::Tick, now + 100 * MS);
    m.step(delivery(2, BASE + 2), now);
    m.step(delivery(3, BASE + DAY_NS), now);
    m.step(delivery(4, BASE + DAY_NS + 1), now);
}
