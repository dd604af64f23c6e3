//! The planning rules, on synthetic lakes: order, batching, chains, expiries, deviations, resume.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::*;
use crate::cdc::{EventCounts, TransferFields};
use crate::lake::{AccountState, EventRow};
use crate::tb::flags::{account as account_flags, transfer as transfer_flags};

const T: u64 = 1_700_000_000_000_000_000;

fn record(id: u128, ledger: u32, timestamp: u64, flags: u16) -> AccountRecord {
    AccountRecord {
        id,
        ledger,
        code: 7,
        flags,
        user_data_128: id * 3,
        user_data_64: 5,
        user_data_32: 6,
        timestamp,
        first_seen_timestamp: timestamp + 1,
    }
}

fn row(timestamp: u64, event_type: EventType, id: u128, accounts: (u128, u128)) -> EventRow {
    EventRow {
        timestamp,
        event_type,
        ledger: 1,
        transfer: TransferFields {
            id,
            amount: 10,
            code: 9,
            timestamp,
            flags: match event_type {
                EventType::TwoPhasePending | EventType::TwoPhaseExpired => transfer_flags::PENDING,
                EventType::TwoPhasePosted => 1 << 2,
                EventType::TwoPhaseVoided => transfer_flags::VOID_PENDING_TRANSFER,
                EventType::SinglePhase => 0,
            },
            ..TransferFields::default()
        },
        debit_account: AccountState {
            id: accounts.0,
            ..AccountState::default()
        },
        credit_account: AccountState {
            id: accounts.1,
            ..AccountState::default()
        },
    }
}

fn single(timestamp: u64, id: u128) -> EventRow {
    row(timestamp, EventType::SinglePhase, id, (1, 2))
}

fn linked(mut r: EventRow) -> EventRow {
    r.transfer.flags |= transfer_flags::LINKED;
    r
}

fn on_ledger(mut r: EventRow, ledger: u32) -> EventRow {
    r.ledger = ledger;
    r
}

fn pending(timestamp: u64, id: u128, timeout: u32) -> EventRow {
    let mut r = row(timestamp, EventType::TwoPhasePending, id, (1, 2));
    r.transfer.timeout = timeout;
    r
}

/// The expiry of `p` (a pending row) at `timestamp`: the message carries the pending transfer.
fn expiry(timestamp: u64, p: &EventRow) -> EventRow {
    EventRow {
        timestamp,
        event_type: EventType::TwoPhaseExpired,
        ..*p
    }
}

fn post(timestamp: u64, id: u128, pending_id: u128) -> EventRow {
    let mut r = row(timestamp, EventType::TwoPhasePosted, id, (1, 2));
    r.transfer.pending_id = pending_id;
    r
}

fn two_accounts() -> Vec<PlannedAccount> {
    plan_accounts([record(1, 1, T, 0), record(2, 1, T + 1, 0)], u64::MAX, None)
        .unwrap()
        .0
}

/// Runs rows through the sequencer and batcher, as the replay does.
fn replay(
    accounts: Vec<PlannedAccount>,
    rows: &[EventRow],
    until: u64,
    resume: ResumePoint,
) -> Result<(Vec<Batch>, Skipped, TransferTally), PlanError> {
    let mut seq = Sequencer::new(None);
    let mut batcher = Batcher::new(accounts, resume, BATCH_EVENTS_MAX);
    for r in rows.iter().take_while(|r| r.timestamp <= until) {
        seq.push(r)?;
    }
    seq.finish();
    while let Some(unit) = seq.pop_unit() {
        batcher.push_unit(unit)?;
    }
    batcher.finish();
    let mut out = Vec::new();
    while let Some(b) = batcher.pop_batch() {
        out.push(b);
    }
    Ok((out, batcher.skipped, seq.tally))
}

fn summary(
    accounts: Vec<AccountRecord>,
    rows: &[EventRow],
    until: u64,
) -> Result<PlanSummary, PlanError> {
    let (planned, deviations) = plan_accounts(accounts, until, None)?;
    let mut b = PlanBuilder::new(until, None, planned, deviations, BATCH_EVENTS_MAX);
    b.push_rows(rows)?;
    b.finish()
}

fn transfers(batch: &Batch) -> &[PlannedTransfer] {
    match batch {
        Batch::Transfers(t) => t,
        Batch::Accounts(_) => panic!("expected transfers, got {batch:?}"),
    }
}

#[test]
fn until_accepts_latest_nanoseconds_and_rfc3339() {
    assert_eq!(parse_until("latest"), Ok(Until::Latest));
    assert_eq!(parse_until("1700000000000000001"), Ok(Until::At(T + 1)));
    assert_eq!(
        parse_until("2023-11-14T22:13:20.000000001Z"),
        Ok(Until::At(T + 1))
    );
    assert!(parse_until("yesterday").is_err());
    assert!(parse_until("99999999999999999999").is_err());
}

#[test]
fn until_outside_the_lake_is_refused_with_the_range() {
    let range = LakeRange::new(Some((T + 10, T + 20)), &[record(1, 1, T, 0)]);
    assert_eq!(
        range,
        Some(LakeRange {
            first: T,
            last: T + 20
        })
    );
    assert_eq!(LakeRange::resolve(range, Until::Latest), Ok(T + 20));
    // Before the first event but after the first account: accounts only, accepted.
    assert_eq!(LakeRange::resolve(range, Until::At(T + 5)), Ok(T + 5));
    for outside in [T - 1, T + 21] {
        let err = LakeRange::resolve(range, Until::At(outside)).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&format!("{T}..={}", T + 20)), "{message}");
        assert!(message.contains("2023-11-14T22:13:20"), "{message}");
    }
    assert_eq!(
        LakeRange::resolve(None, Until::Latest),
        Err(PlanError::EmptyLake)
    );
}

#[test]
fn accounts_lose_closed_and_linked_and_gain_imported() {
    let records = vec![
        record(1, 1, T, account_flags::CLOSED | account_flags::HISTORY),
        record(2, 1, T + 1, account_flags::LINKED),
        record(3, 2, T + 2, 0),
        record(4, 1, T + 3, 0),
    ];
    let (accounts, dev) = plan_accounts(records.clone(), T + 2, None).unwrap();
    assert_eq!(accounts.iter().map(|a| a.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        accounts[0].flags,
        account_flags::HISTORY | account_flags::IMPORTED
    );
    assert_eq!(accounts[1].flags, account_flags::IMPORTED);
    assert_eq!(
        dev,
        AccountDeviations {
            closed_dropped: 1,
            linked_dropped: 1
        }
    );
    assert_eq!(accounts[0].user_data_128, 3);
    assert_eq!(accounts[0].timestamp, T);

    let ledger_2: BTreeSet<u32> = [2].into();
    let (only, _) = plan_accounts(records, u64::MAX, Some(&ledger_2)).unwrap();
    assert_eq!(only.iter().map(|a| a.id).collect::<Vec<_>>(), [3]);
}

#[test]
fn swept_accounts_keep_closed_from_creation_and_lose_linked() {
    let created_closed = AccountRecord {
        first_seen_timestamp: T + 5,
        ..record(5, 1, T + 5, account_flags::CLOSED | account_flags::LINKED)
    };
    let (accounts, dev) = plan_accounts_with_swept(
        [record(1, 1, T, account_flags::CLOSED)],
        [created_closed, record(6, 1, T + 6, 0)],
        u64::MAX,
        None,
    )
    .unwrap();
    assert_eq!(accounts.iter().map(|a| a.id).collect::<Vec<_>>(), [1, 5, 6]);
    // Closed by a transfer (an `accounts` record): created open, the replay closes it.
    assert_eq!(accounts[0].flags, account_flags::IMPORTED);
    // Created closed (a swept record): created closed, as no transfer can ever reopen it.
    assert_eq!(
        accounts[1].flags,
        account_flags::CLOSED | account_flags::IMPORTED
    );
    assert_eq!(accounts[2].flags, account_flags::IMPORTED);
    assert_eq!(
        dev,
        AccountDeviations {
            closed_dropped: 1,
            linked_dropped: 1
        }
    );
    // The same account in both: the `accounts` record wins, and they must agree.
    let (accounts, _) = plan_accounts_with_swept(
        [record(1, 1, T, account_flags::CLOSED)],
        [record(1, 1, T, account_flags::CLOSED)],
        u64::MAX,
        None,
    )
    .unwrap();
    assert_eq!(accounts[0].flags, account_flags::IMPORTED);
    assert!(matches!(
        plan_accounts_with_swept([record(1, 1, T, 0)], [record(1, 2, T, 0)], u64::MAX, None),
        Err(PlanError::AccountConflict { id: 1, .. })
    ));
}

#[test]
fn an_extra_account_source_merges_and_must_agree() {
    let lake = record(1, 1, T, 0);
    let sweep_same = AccountRecord {
        flags: account_flags::CLOSED,
        first_seen_timestamp: 0,
        ..lake
    };
    let (accounts, _) =
        plan_accounts([lake, sweep_same, record(2, 1, T + 1, 0)], u64::MAX, None).unwrap();
    assert_eq!(accounts.len(), 2);
    let conflicting = AccountRecord { code: 8, ..lake };
    assert!(matches!(
        plan_accounts([lake, conflicting], u64::MAX, None),
        Err(PlanError::AccountConflict { id: 1, .. })
    ));
}

#[test]
fn transfers_keep_their_fields_with_imported_and_no_timeout() {
    let mut r = pending(T + 5, u128::MAX - 1, 30);
    r.transfer.user_data_128 = u128::MAX;
    r.transfer.amount = u128::MAX - 3;
    r.ledger = u32::MAX;
    let t = PlannedTransfer::from_row(&r).unwrap();
    assert_eq!(t.transfer.id, u128::MAX - 1);
    assert_eq!(
        (t.transfer.debit_account_id, t.transfer.credit_account_id),
        (1, 2)
    );
    assert_eq!(t.transfer.amount, u128::MAX - 3);
    assert_eq!(t.transfer.user_data_128, u128::MAX);
    assert_eq!(t.transfer.ledger, u32::MAX);
    assert_eq!(t.transfer.timeout, 0);
    assert_eq!(
        t.transfer.flags,
        transfer_flags::PENDING | transfer_flags::IMPORTED
    );
    assert_eq!(t.transfer.timestamp, T + 5);

    let mut bad = single(T + 6, 9);
    bad.transfer.timestamp = T + 7;
    assert!(matches!(
        PlannedTransfer::from_row(&bad),
        Err(PlanError::TransferTimestampMismatch { .. })
    ));
}

#[test]
fn an_expiry_becomes_a_void_of_the_pending_transfer_at_the_expiry_time() {
    let mut p = pending(T + 5, 77, 1);
    (
        p.transfer.user_data_128,
        p.transfer.user_data_64,
        p.transfer.user_data_32,
    ) = (11, 12, 13);
    let e = expiry(T + 1_000_000_005, &p);
    let v = PlannedTransfer::from_row(&e).unwrap();
    assert_eq!(v.transfer.id, 77 ^ EXPIRY_VOID_ID_XOR);
    assert_eq!(v.transfer.id, expiry_void_id(77));
    assert_eq!(v.transfer.pending_id, 77);
    assert_eq!(v.transfer.amount, 10);
    assert_eq!(
        v.transfer.flags,
        transfer_flags::VOID_PENDING_TRANSFER | transfer_flags::IMPORTED
    );
    assert_eq!(v.transfer.timestamp, T + 1_000_000_005);
    assert_eq!(
        (
            v.transfer.user_data_128,
            v.transfer.user_data_64,
            v.transfer.user_data_32,
            v.transfer.timeout
        ),
        (11, 12, 13, 0),
        "the pending transfer's user data, as TigerBeetle stores a void that leaves it 0"
    );
    assert_eq!(v.event_type, EventType::TwoPhaseExpired);
}

#[test]
fn void_ids_are_distinct_for_distinct_pending_ids() {
    let ids = [1u128, 2, 3, u128::MAX - 1, 1 << 64, EXPIRY_VOID_ID_XOR ^ 5];
    let voids: HashSet<u128> = ids.iter().map(|&i| expiry_void_id(i)).collect();
    assert_eq!(voids.len(), ids.len());
    assert_eq!(expiry_void_id(expiry_void_id(42)), 42);
}

#[test]
fn a_void_id_that_collides_with_a_lake_transfer_is_refused() {
    let accounts = vec![record(1, 1, T, 0), record(2, 1, T + 1, 0)];
    let p = pending(T + 10, 77, 1);
    let clash = single(T + 11, expiry_void_id(77));
    let rows = [p, clash, expiry(T + 20, &p)];
    let err = summary(accounts.clone(), &rows, T + 20).unwrap_err();
    assert!(
        matches!(err, PlanError::ExpiryVoidIdUnusable { pending_id: 77, .. }),
        "{err:?}"
    );
    // Before the expiry there is no void, so no clash.
    assert!(summary(accounts, &rows, T + 19).is_ok());
}

#[test]
fn the_plan_counts_events_deviations_and_open_pending_transfers() {
    let accounts = vec![
        record(1, 1, T, account_flags::CLOSED),
        record(2, 1, T + 1, 0),
        record(3, 1, T + 100, 0),
    ];
    let p1 = pending(T + 10, 101, 0);
    let p2 = pending(T + 11, 102, 2);
    let p3 = pending(T + 12, 103, 1);
    let rows = [
        single(T + 2, 100),
        p1,
        p2,
        p3,
        post(T + 13, 104, 101),
        expiry(T + 1_000_000_012, &p3),
    ];
    let s = summary(accounts, &rows, T + 1_000_000_012).unwrap();
    assert_eq!(s.accounts, 3);
    assert_eq!(s.account_deviations.closed_dropped, 1);
    assert_eq!(
        s.transfers.events,
        EventCounts {
            single_phase: 1,
            two_phase_pending: 3,
            two_phase_posted: 1,
            two_phase_voided: 0,
            two_phase_expired: 1,
        }
    );
    assert_eq!(s.transfers_created, 6);
    assert_eq!(
        s.transfers
            .timeouts_zeroed
            .iter()
            .map(|z| (z.transfer_id, z.expires_at))
            .collect::<Vec<_>>(),
        [(102, T + 11 + 2_000_000_000), (103, T + 12 + 1_000_000_000)]
    );
    assert_eq!(s.transfers.expiry_voids.len(), 1);
    assert_eq!(s.transfers.expiry_voids[0].pending_id, 103);
    let open: Vec<_> = s.transfers.open_pending.values().collect();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].transfer_id, open[0].expires_at),
        (102, Some(T + 11 + 2_000_000_000))
    );
    assert_eq!(s.first_timestamp, Some(T));
    assert_eq!(s.last_timestamp, Some(T + 1_000_000_012));
    // Accounts (1, 2), then transfers, then account 3 (T + 100) between transfers, then the rest.
    assert_eq!((s.account_batches, s.transfer_batches), (2, 2));
}

#[test]
fn a_transfer_whose_account_is_not_recorded_is_refused_by_the_plan() {
    let err = summary(vec![record(1, 1, T, 0)], &[single(T + 5, 9)], T + 5).unwrap_err();
    assert_eq!(
        err,
        PlanError::MissingAccount {
            transfer_id: 9,
            timestamp: T + 5,
            account_id: 2
        }
    );
    // An account created after the transfer is just as missing.
    let late = summary(
        vec![record(1, 1, T, 0), record(2, 1, T + 6, 0)],
        &[single(T + 5, 9)],
        T + 6,
    );
    assert!(matches!(
        late,
        Err(PlanError::MissingAccount { account_id: 2, .. })
    ));
}

#[test]
fn accounts_and_transfers_interleave_in_timestamp_order() {
    let accounts = plan_accounts(
        [
            record(1, 1, T, 0),
            record(2, 1, T + 1, 0),
            record(3, 1, T + 3, 0),
        ],
        u64::MAX,
        None,
    )
    .unwrap()
    .0;
    let rows = [single(T + 2, 10), single(T + 4, 11), single(T + 5, 12)];
    let (batches, skipped, _) = replay(accounts, &rows, u64::MAX, ResumePoint::default()).unwrap();
    let order: Vec<(char, u64)> = batches
        .iter()
        .flat_map(|b| match b {
            Batch::Accounts(a) => a.iter().map(|a| ('a', a.timestamp - T)).collect::<Vec<_>>(),
            Batch::Transfers(t) => t.iter().map(|t| ('t', t.transfer.timestamp - T)).collect(),
        })
        .collect();
    assert_eq!(
        order,
        [('a', 0), ('a', 1), ('t', 2), ('a', 3), ('t', 4), ('t', 5)]
    );
    assert_eq!(batches.len(), 4, "kinds never share a batch: {batches:?}");
    assert_eq!(skipped, Skipped::default());
}

#[test]
fn batches_hold_at_most_8189_events_and_never_split_a_chain() {
    let mut rows: Vec<EventRow> = (0..8187u64)
        .map(|i| single(T + 10 + i, 1000 + u128::from(i)))
        .collect();
    let base = T + 10 + 8187;
    rows.push(linked(single(base, 1)));
    rows.push(linked(single(base + 1, 2)));
    rows.push(single(base + 2, 3));
    rows.extend((0..10u64).map(|i| single(base + 3 + i, 100 + u128::from(i))));
    let (batches, _, _) = replay(two_accounts(), &rows, u64::MAX, ResumePoint::default()).unwrap();
    let sizes: Vec<usize> = batches.iter().map(Batch::len).collect();
    assert_eq!(sizes, [2, 8187, 13]);
    let chain = &transfers(&batches[2])[..3];
    assert_eq!(
        chain.iter().map(|t| t.transfer.id).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(chain[0].is_linked() && chain[1].is_linked() && !chain[2].is_linked());

    let full: Vec<EventRow> = (0..8189 * 2 + 1u64)
        .map(|i| single(T + 10 + i, 1 + u128::from(i)))
        .collect();
    let (batches, _, _) = replay(two_accounts(), &full, u64::MAX, ResumePoint::default()).unwrap();
    assert_eq!(
        batches.iter().map(Batch::len).collect::<Vec<_>>(),
        [2, 8189, 8189, 1]
    );
}

#[test]
fn a_smaller_batch_limit_is_honoured_and_a_longer_chain_refused() {
    let rows: Vec<EventRow> = (0..10u64)
        .map(|i| single(T + 10 + i, 1 + u128::from(i)))
        .collect();
    let mut batcher = Batcher::new(two_accounts(), ResumePoint::default(), 4);
    for r in &rows {
        batcher
            .push_unit(vec![PlannedTransfer::from_row(r).unwrap()])
            .unwrap();
    }
    batcher.finish();
    let sizes: Vec<usize> = std::iter::from_fn(|| batcher.pop_batch())
        .map(|b| b.len())
        .collect();
    assert_eq!(sizes, [2, 4, 4, 2]);
    let chain: Vec<PlannedTransfer> = rows[..5]
        .iter()
        .map(|r| PlannedTransfer::from_row(&linked(*r)).unwrap())
        .collect();
    let mut batcher = Batcher::new(two_accounts(), ResumePoint::default(), 4);
    assert!(matches!(
        batcher.push_unit(chain),
        Err(PlanError::ChainLongerThanBatch {
            len: 5,
            batch_max: 4,
            ..
        })
    ));
}

#[test]
fn a_chain_cut_by_until_ends_on_its_last_replayed_transfer() {
    let rows = [
        single(T + 10, 1),
        linked(single(T + 11, 2)),
        linked(single(T + 12, 3)),
        single(T + 13, 4),
    ];
    let (batches, _, tally) =
        replay(two_accounts(), &rows, T + 12, ResumePoint::default()).unwrap();
    let t = transfers(&batches[1]);
    assert_eq!(
        t.iter().map(|t| t.transfer.id).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(t[1].is_linked(), "the chain itself is kept");
    assert!(!t[2].is_linked(), "the cut end closes the chain");
    assert_eq!(
        tally.chain_cuts,
        [ChainCut {
            transfer_id: 3,
            timestamp: T + 12,
            reason: ChainCutReason::Until
        }]
    );
    // Through its end, the chain is untouched.
    let (_, _, tally) = replay(two_accounts(), &rows, T + 13, ResumePoint::default()).unwrap();
    assert!(tally.chain_cuts.is_empty());
}

#[test]
fn a_chain_losing_its_end_to_the_ledger_filter_is_closed_on_its_last_kept_transfer() {
    let rows = [
        linked(single(T + 10, 1)),
        on_ledger(linked(single(T + 11, 2)), 5),
        linked(single(T + 12, 3)),
        on_ledger(single(T + 13, 4), 5),
        single(T + 14, 6),
    ];
    let mut seq = Sequencer::new(Some([1].into()));
    for r in &rows {
        seq.push(r).unwrap();
    }
    seq.finish();
    let chain = seq.pop_unit().unwrap();
    assert_eq!(
        chain
            .iter()
            .map(|t| (t.transfer.id, t.is_linked()))
            .collect::<Vec<_>>(),
        [(1, true), (3, false)]
    );
    assert_eq!(seq.pop_unit().unwrap()[0].transfer.id, 6);
    assert_eq!(seq.tally.chain_cuts[0].reason, ChainCutReason::LedgerFilter);
    assert_eq!(seq.tally.events.total(), 3);
}

#[test]
fn malformed_sequences_are_refused() {
    let mut seq = Sequencer::new(None);
    seq.push(&single(T + 10, 1)).unwrap();
    assert_eq!(
        seq.push(&single(T + 10, 2)),
        Err(PlanError::EventsOutOfOrder {
            previous: T + 10,
            timestamp: T + 10
        })
    );
    let mut seq = Sequencer::new(None);
    let p = pending(T, 5, 1);
    seq.push(&linked(single(T + 10, 1))).unwrap();
    assert!(matches!(
        seq.push(&expiry(T + 11, &p)),
        Err(PlanError::ChainInterrupted { .. })
    ));

    let mut seq = Sequencer::new(None);
    let result = (0..=BATCH_EVENTS_MAX as u64)
        .try_for_each(|i| seq.push(&linked(single(T + i, 1 + u128::from(i)))));
    assert!(matches!(result, Err(PlanError::ChainTooLong { .. })));
}

#[test]
fn an_account_created_inside_a_chain_goes_before_the_chain() {
    // Only a source that imported events can have this; the chain must stay whole.
    let accounts = plan_accounts(
        [
            record(1, 1, T, 0),
            record(2, 1, T + 1, 0),
            record(3, 1, T + 11, 0),
        ],
        u64::MAX,
        None,
    )
    .unwrap()
    .0;
    let rows = [linked(single(T + 10, 1)), single(T + 12, 2)];
    let (batches, _, _) = replay(accounts, &rows, u64::MAX, ResumePoint::default()).unwrap();
    assert_eq!(batches.iter().map(Batch::len).collect::<Vec<_>>(), [3, 2]);
}

#[test]
fn resume_skips_what_the_target_holds_and_remembers_the_last_of_each_kind() {
    let accounts = plan_accounts(
        [
            record(1, 1, T, 0),
            record(2, 1, T + 1, 0),
            record(3, 1, T + 3, 0),
        ],
        u64::MAX,
        None,
    )
    .unwrap()
    .0;
    let rows = [single(T + 2, 10), single(T + 4, 11), single(T + 5, 12)];
    let resume = ResumePoint {
        accounts_through: Some(T + 3),
        transfers_through: Some(T + 4),
    };
    let (batches, skipped, _) = replay(accounts, &rows, u64::MAX, resume).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(transfers(&batches[0])[0].transfer.id, 12);
    assert_eq!((skipped.accounts, skipped.transfers), (3, 2));
    assert_eq!(skipped.last_account.unwrap().id, 3);
    assert_eq!(skipped.last_transfer.unwrap().transfer.id, 11);

    let chain = [linked(single(T + 2, 10)), single(T + 4, 11)];
    let inside = ResumePoint {
        accounts_through: Some(T + 1),
        transfers_through: Some(T + 2),
    };
    assert!(matches!(
        replay(two_accounts(), &chain, u64::MAX, inside),
        Err(PlanError::ResumeInsideChain { .. })
    ));
}

#[test]
fn every_transfer_follows_its_accounts_and_each_kind_stays_in_timestamp_order() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..20 {
        let mut ts = T;
        let mut records = Vec::new();
        let mut rows = Vec::new();
        let mut ids = 0u128;
        for _ in 0..rng.random_range(50..400) {
            ts += rng.random_range(1..5);
            if records.len() < 2 || rng.random_bool(0.2) {
                records.push(record(records.len() as u128 + 1, 1, ts, 0));
                continue;
            }
            let n = records.len() as u128;
            let (dr, cr) = (rng.random_range(1..=n), rng.random_range(1..=n));
            ids += 1;
            let mut r = row(ts, EventType::SinglePhase, ids, (dr, cr));
            if rng.random_bool(0.3) {
                r.transfer.flags |= transfer_flags::LINKED;
            }
            rows.push(r);
        }
        let until = rng.random_range(T..=ts);
        let accounts = plan_accounts(records, until, None).unwrap().0;
        let created: HashMap<u128, u64> = accounts.iter().map(|a| (a.id, a.timestamp)).collect();
        let (batches, _, _) =
            replay(accounts.clone(), &rows, until, ResumePoint::default()).unwrap();
        let mut seen = HashSet::new();
        let (mut last_account, mut last_transfer) = (0, 0);
        for b in &batches {
            assert!(b.len() <= BATCH_EVENTS_MAX);
            match b {
                Batch::Accounts(a) => {
                    for a in a {
                        assert!(a.timestamp > last_account && a.timestamp <= until);
                        last_account = a.timestamp;
                        seen.insert(a.id);
                    }
                }
                Batch::Transfers(t) => {
                    assert!(
                        !t.last().unwrap().is_linked(),
                        "a batch ends every chain it holds"
                    );
                    for t in t {
                        assert!(
                            t.transfer.timestamp > last_transfer && t.transfer.timestamp <= until
                        );
                        last_transfer = t.transfer.timestamp;
                        for id in [t.transfer.debit_account_id, t.transfer.credit_account_id] {
                            assert!(seen.contains(&id) && created[&id] < t.transfer.timestamp);
                        }
                    }
                }
            }
        }
        assert_eq!(seen.len(), accounts.len());
    }
}

#[test]
fn a_transfer_reusing_an_earlier_void_id_is_refused_as_it_is_read() {
    let accounts = vec![record(1, 1, T, 0), record(2, 1, T + 1, 0)];
    let (planned, deviations) = plan_accounts(accounts, u64::MAX, None).unwrap();
    let p = pending(T + 10, 77, 1);
    let clash = single(T + 30, expiry_void_id(77));
    let mut b = PlanBuilder::for_replay(
        u64::MAX,
        None,
        planned,
        deviations,
        BATCH_EVENTS_MAX,
        ResumePoint::default(),
    );
    b.push_rows(&[p, expiry(T + 20, &p)]).unwrap();
    // The replay reads the lake once: the clash is found when the later transfer is read, not
    // after the whole lake.
    let err = b.push_rows(&[clash]).unwrap_err();
    assert!(
        matches!(err, PlanError::ExpiryVoidIdUnusable { pending_id: 77, timestamp, .. } if timestamp == T + 20),
        "{err:?}"
    );
}

#[test]
fn the_replay_builder_yields_the_batches_it_counts_and_shrinks_them_on_demand() {
    let accounts = vec![record(1, 1, T, 0), record(2, 1, T + 1, 0)];
    let (planned, deviations) = plan_accounts(accounts, u64::MAX, None).unwrap();
    let rows: Vec<EventRow> = (0..100)
        .map(|i| single(T + 10 + i, 1000 + i as u128))
        .collect();
    let mut b = PlanBuilder::for_replay(
        u64::MAX,
        None,
        planned,
        deviations,
        BATCH_EVENTS_MAX,
        ResumePoint::default(),
    );
    b.push_rows(&rows[..50]).unwrap();
    b.set_batch_max(30);
    b.push_rows(&rows[50..]).unwrap();
    b.finish_rows().unwrap();
    let mut sizes = Vec::new();
    while let Some(batch) = b.pop_batch() {
        sizes.push((matches!(batch, Batch::Accounts(_)), batch.len()));
    }
    // The first transfers batch was opened at 8189 and keeps its 50; later ones hold 30.
    assert_eq!(
        sizes,
        vec![(true, 2), (false, 50), (false, 30), (false, 20)],
        "{sizes:?}"
    );
    let s = b.finish().unwrap();
    assert_eq!(s.transfers_created, 100);
    assert_eq!((s.account_batches, s.transfer_batches), (1, 3));
}
