//! The simulated trickle day `benches/compact.rs` and `benches/verify.rs` commit through
//! `Lake::commit`: five single-phase transfers a second between 1,000 accounts, balances as
//! TigerBeetle moves them; `Segment::recording_first_seen` records each account once.

use ledgerlake::cdc::{AccountFields, Event, EventType, TransferFields};

pub const CLUSTER: u128 = 77;
/// 2026-03-01T00:00:00Z.
pub const START_NS: u64 = 1_772_323_200 * 1_000_000_000;
pub const NS_PER_S: u64 = 1_000_000_000;
pub const EVENTS_PER_SECOND: u64 = 5;
pub const ACCOUNTS: u128 = 1_000;
/// Events per bulk segment (the exporter's default `--segment-events-max`).
pub const BULK_EVENTS: usize = 32_768;

fn account(id: u128, balances: [u128; 2], ts: u64) -> AccountFields {
    AccountFields {
        id,
        debits_posted: balances[0],
        credits_posted: balances[1],
        user_data_128: id << 64,
        user_data_64: id as u64,
        user_data_32: 7,
        code: 10,
        timestamp: ts,
        ..Default::default()
    }
}

/// The events of second `s` after `start` (five, a few ms apart): single-phase transfers
/// between two accounts of one ledger (an account's ledger is its id's parity), `posted` the
/// running balances of every account.
pub fn second(start: u64, s: u64, posted: &mut [[u128; 2]]) -> Vec<Event> {
    (0..EVENTS_PER_SECOND)
        .map(|i| {
            let n = s * EVENTS_PER_SECOND + i;
            let ts = start + s * NS_PER_S + i * 7_000_000 + 1;
            let debit = u128::from(n.wrapping_mul(2_654_435_761)) % ACCOUNTS;
            let credit = (debit + 2 * (1 + u128::from(n % 17))) % ACCOUNTS;
            let amount = u128::from(n % 1_000) + 1;
            posted[debit as usize][0] += amount;
            posted[credit as usize][1] += amount;
            let created = |a: u128| START_NS - 1_000 + a as u64;
            Event {
                timestamp: ts,
                event_type: EventType::SinglePhase,
                ledger: 1 + (debit % 2) as u32,
                transfer: TransferFields {
                    id: (u128::from(ts) << 16) | 0xabc,
                    amount,
                    user_data_64: n,
                    code: 1,
                    timestamp: ts,
                    ..Default::default()
                },
                debit_account: account(debit + 1, posted[debit as usize], created(debit)),
                credit_account: account(credit + 1, posted[credit as usize], created(credit)),
            }
        })
        .collect()
}

pub fn median(mut t: Vec<f64>) -> f64 {
    assert!(!t.is_empty(), "a median of no runs");
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}
