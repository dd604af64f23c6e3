//! What the integration tests share: reading the whole source cluster through the real client,
//! and comparing a lake with it field by field.

#![allow(dead_code)]

pub mod stack;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use ledgerlake::cdc::{Event, EventType};
use ledgerlake::lake::{AccountRecord, Lake};
use ledgerlake::tb::client::for_each_page;
use ledgerlake::tb::flags::{account, transfer};
use ledgerlake::tb::limits::{BATCH_EVENTS_MAX, NS_PER_S, QUERY_LIMIT_MAX};
use ledgerlake::tb::{Balances, ClusterError};
use tigerbeetle_unofficial::account::Filter as AccountFilter;
use tigerbeetle_unofficial::{Account, Client, QueryFilter, Transfer};

/// TigerBeetle's largest batch, as a query's limit.
pub const PAGE: u32 = QUERY_LIMIT_MAX;

const TRANSFER_PENDING: u16 = transfer::PENDING;
const TRANSFER_POST: u16 = transfer::POST_PENDING_TRANSFER;
const TRANSFER_VOID: u16 = transfer::VOID_PENDING_TRANSFER;
pub const ACCOUNT_HISTORY: u16 = account::HISTORY;

/// Objects one test reads from a cluster, at most.
const OBJECTS_MAX: usize = 10_000_000;

/// Every object a paged query returns, following the timestamp cursor: `fetch(timestamp_min)`
/// returns up to `PAGE` objects from that timestamp on, in timestamp order.
async fn all_pages<T, F, Fut>(fetch: F, timestamp_of: fn(&T) -> u64) -> Vec<T>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, ClusterError>>,
{
    let mut all = Vec::new();
    for_each_page::<_, ClusterError, _, _, _>(
        "objects",
        OBJECTS_MAX,
        timestamp_of,
        fetch,
        |page| {
            all.extend(page);
            Ok(())
        },
    )
    .await
    .expect("a paged query");
    all
}

fn query_filter(timestamp_min: u64) -> Box<QueryFilter> {
    let mut filter = QueryFilter::new(PAGE);
    filter.as_raw_mut().timestamp_min = timestamp_min;
    Box::new(filter)
}

/// Every transfer in the source cluster, in timestamp order.
pub async fn source_transfers(client: &Client) -> Vec<Transfer> {
    let fetch = |timestamp_min| async move {
        Ok(client
            .query_transfers(query_filter(timestamp_min))
            .await
            .expect("query_transfers"))
    };
    all_pages(fetch, |t: &Transfer| t.as_raw().timestamp).await
}

/// Every account in the source cluster, in timestamp order.
pub async fn source_accounts(client: &Client) -> Vec<Account> {
    let fetch = |timestamp_min| async move {
        Ok(client
            .query_accounts(query_filter(timestamp_min))
            .await
            .expect("query_accounts"))
    };
    all_pages(fetch, |a: &Account| a.as_raw().timestamp).await
}

/// The balance history of a `history` account: (timestamp, [dp, dpo, cp, cpo]).
pub async fn account_history(client: &Client, account_id: u128) -> Vec<(u64, [u128; 4])> {
    let fetch = |timestamp_min| async move {
        let mut filter = AccountFilter::new(account_id, PAGE);
        filter.as_raw_mut().timestamp_min = timestamp_min;
        // Both directions: debits and credits.
        filter.as_raw_mut().flags = 0b11;
        Ok(client
            .get_account_balances(Box::new(filter))
            .await
            .expect("get_account_balances"))
    };
    let balances = all_pages(fetch, |b: &tigerbeetle_unofficial::account::Balance| {
        b.as_raw().timestamp
    })
    .await;
    balances
        .iter()
        .map(|b| (b.as_raw().timestamp, Balances::from(b).values()))
        .collect()
}

fn balances_of(side: &ledgerlake::cdc::AccountFields) -> [u128; 4] {
    Balances::from(side).values()
}

fn expected_event_type(flags: u16) -> EventType {
    if flags & TRANSFER_POST != 0 {
        EventType::TwoPhasePosted
    } else if flags & TRANSFER_VOID != 0 {
        EventType::TwoPhaseVoided
    } else if flags & TRANSFER_PENDING != 0 {
        EventType::TwoPhasePending
    } else {
        EventType::SinglePhase
    }
}

/// What the comparison found, for the test's own assertions and messages.
#[derive(Debug, Default)]
pub struct Comparison {
    pub events: usize,
    pub transfers: usize,
    pub expired: usize,
    pub accounts: usize,
    pub history_points: usize,
    pub event_types: BTreeMap<&'static str, usize>,
}

/// Asserts that the lake holds every transfer event of the source cluster exactly once, in order,
/// with every field equal; every account it has seen with equal static fields; and, for `history`
/// accounts, the source's balance history at every point. Call it once the source is quiet and
/// the exporter has caught up.
pub async fn assert_lake_matches_source(lake: &Lake, client: &Client) -> Comparison {
    let (events, accounts) = lake.read_all().await.expect("the lake reads back whole");
    let transfers = source_transfers(client).await;
    let mut comparison = Comparison {
        events: events.len(),
        transfers: transfers.len(),
        ..Comparison::default()
    };

    for pair in events.windows(2) {
        assert!(
            pair[0].timestamp < pair[1].timestamp,
            "event timestamps must strictly increase: {} then {}",
            pair[0].timestamp,
            pair[1].timestamp
        );
    }
    for event in &events {
        *comparison
            .event_types
            .entry(event.event_type.as_str())
            .or_default() += 1;
    }

    // Every transfer is exactly one non-expiry event, in the same order.
    let (expired, committed): (Vec<&Event>, Vec<&Event>) = events
        .iter()
        .partition(|e| e.event_type == EventType::TwoPhaseExpired);
    assert_eq!(
        committed.len(),
        transfers.len(),
        "one event per transfer: lake has {} transfer events, source {} transfers",
        committed.len(),
        transfers.len()
    );
    for (event, transfer) in committed.iter().zip(&transfers) {
        assert_event_is_transfer(event, transfer.as_raw(), event.timestamp);
        assert_eq!(
            event.event_type,
            expected_event_type(transfer.as_raw().flags),
            "event type of transfer {}",
            event.transfer.id
        );
    }

    // Every expiry names a pending transfer with a timeout that was neither posted nor voided.
    let by_id: HashMap<u128, &Transfer> = transfers.iter().map(|t| (t.as_raw().id, t)).collect();
    let resolved: HashSet<u128> = transfers
        .iter()
        .filter(|t| t.as_raw().flags & (TRANSFER_POST | TRANSFER_VOID) != 0)
        .map(|t| t.as_raw().pending_id)
        .collect();
    let mut expired_ids = HashSet::new();
    for event in &expired {
        let pending = by_id.get(&event.transfer.id).unwrap_or_else(|| {
            panic!(
                "expired transfer {} is not in the source",
                event.transfer.id
            )
        });
        let raw = pending.as_raw();
        assert_event_is_transfer(event, raw, event.timestamp);
        assert!(
            raw.flags & TRANSFER_PENDING != 0 && raw.timeout > 0,
            "expired transfer {} is a pending transfer with a timeout",
            raw.id
        );
        assert!(
            !resolved.contains(&raw.id),
            "expired transfer {} was also posted or voided",
            raw.id
        );
        assert!(
            event.timestamp >= raw.timestamp + u64::from(raw.timeout) * NS_PER_S,
            "expiry of {} is not before its timeout",
            raw.id
        );
        assert!(
            expired_ids.insert(raw.id),
            "transfer {} expired twice",
            raw.id
        );
    }
    comparison.expired = expired.len();

    assert_accounts_match(&events, &accounts, client, &mut comparison).await;
    comparison
}

fn assert_event_is_transfer(
    event: &Event,
    t: &tigerbeetle_unofficial::transfer::Raw,
    event_timestamp: u64,
) {
    let id = t.id;
    let e = &event.transfer;
    assert_eq!(e.id, t.id, "transfer id at event {event_timestamp}");
    assert_eq!(e.amount, t.amount, "amount of transfer {id}");
    assert_eq!(e.pending_id, t.pending_id, "pending_id of transfer {id}");
    assert_eq!(
        e.user_data_128, t.user_data_128,
        "user_data_128 of transfer {id}"
    );
    assert_eq!(
        e.user_data_64, t.user_data_64,
        "user_data_64 of transfer {id}"
    );
    assert_eq!(
        e.user_data_32, t.user_data_32,
        "user_data_32 of transfer {id}"
    );
    assert_eq!(e.timeout, t.timeout, "timeout of transfer {id}");
    assert_eq!(e.code, t.code, "code of transfer {id}");
    assert_eq!(e.flags, t.flags, "flags of transfer {id}");
    assert_eq!(e.timestamp, t.timestamp, "timestamp of transfer {id}");
    assert_eq!(event.ledger, t.ledger, "ledger of transfer {id}");
    assert_eq!(
        event.debit_account.id, t.debit_account_id,
        "debit account of transfer {id}"
    );
    assert_eq!(
        event.credit_account.id, t.credit_account_id,
        "credit account of transfer {id}"
    );
    if event.event_type != EventType::TwoPhaseExpired {
        assert_eq!(
            event.timestamp, t.timestamp,
            "event timestamp of transfer {id}"
        );
    }
}

async fn assert_accounts_match(
    events: &[Event],
    accounts: &[AccountRecord],
    client: &Client,
    comparison: &mut Comparison,
) {
    // The lake records exactly the accounts that appear in events, once each.
    let in_events: HashSet<u128> = events
        .iter()
        .flat_map(|e| [e.debit_account.id, e.credit_account.id])
        .collect();
    let recorded: HashSet<u128> = accounts.iter().map(|a| a.id).collect();
    assert_eq!(recorded.len(), accounts.len(), "no account recorded twice");
    assert_eq!(
        recorded, in_events,
        "account records = accounts seen in events"
    );
    comparison.accounts = accounts.len();

    // The last event of each account carries its current balances.
    let mut last_seen: HashMap<u128, ([u128; 4], u16)> = HashMap::new();
    for event in events {
        for side in [&event.debit_account, &event.credit_account] {
            last_seen.insert(side.id, (balances_of(side), side.flags));
        }
    }
    let ids: Vec<u128> = accounts.iter().map(|a| a.id).collect();
    let mut source: HashMap<u128, Account> = HashMap::new();
    for chunk in ids.chunks(BATCH_EVENTS_MAX) {
        for account in client
            .lookup_accounts(chunk.to_vec())
            .await
            .expect("lookup_accounts")
        {
            source.insert(account.as_raw().id, account);
        }
    }
    for record in accounts {
        let raw = source
            .get(&record.id)
            .unwrap_or_else(|| panic!("account {} is not in the source", record.id))
            .as_raw();
        let id = record.id;
        assert_eq!(record.ledger, raw.ledger, "ledger of account {id}");
        assert_eq!(record.code, raw.code, "code of account {id}");
        assert_eq!(
            record.user_data_128, raw.user_data_128,
            "user_data_128 of account {id}"
        );
        assert_eq!(
            record.user_data_64, raw.user_data_64,
            "user_data_64 of account {id}"
        );
        assert_eq!(
            record.user_data_32, raw.user_data_32,
            "user_data_32 of account {id}"
        );
        assert_eq!(record.timestamp, raw.timestamp, "timestamp of account {id}");
        const CLOSED: u16 = 1 << 5;
        assert_eq!(
            record.flags & !CLOSED,
            raw.flags & !CLOSED,
            "flags (other than closed) of account {id}"
        );
        let (balances, flags) = last_seen[&id];
        assert_eq!(
            balances,
            [
                raw.debits_pending,
                raw.debits_posted,
                raw.credits_pending,
                raw.credits_posted
            ],
            "current balances of account {id}"
        );
        assert_eq!(flags, raw.flags, "current flags of account {id}");
    }

    // History accounts: every point of the source's history is an event with the same balances.
    let mut at: HashMap<(u128, u64), [u128; 4]> = HashMap::new();
    for event in events {
        for side in [&event.debit_account, &event.credit_account] {
            at.insert((side.id, event.timestamp), balances_of(side));
        }
    }
    for record in accounts.iter().filter(|a| a.flags & ACCOUNT_HISTORY != 0) {
        let history = account_history(client, record.id).await;
        let lake_points = at.keys().filter(|(id, _)| *id == record.id).count();
        let expiries = events
            .iter()
            .filter(|e| e.event_type == EventType::TwoPhaseExpired)
            .filter(|e| e.debit_account.id == record.id || e.credit_account.id == record.id)
            .count();
        for (timestamp, balances) in &history {
            match at.get(&(record.id, *timestamp)) {
                Some(lake) => assert_eq!(
                    lake, balances,
                    "balances of history account {} at {timestamp}",
                    record.id
                ),
                None => panic!(
                    "history account {} changed at {timestamp} but the lake has no event there",
                    record.id
                ),
            }
        }
        // TigerBeetle records no history point for an expiry; the CDC stream does carry one.
        assert_eq!(
            history.len(),
            lake_points - expiries,
            "history points of account {} ({expiries} expiries among the lake's events)",
            record.id
        );
        comparison.history_points += history.len();
    }
}

/// Polls until the lake's last committed timestamp reaches `timestamp`.
pub async fn wait_for_lake(lake: &Lake, timestamp: u64, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let last = lake.last_committed_timestamp().await.expect("lake listing");
        if last.is_some_and(|t| t >= timestamp) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lake did not reach {timestamp} within {timeout:?} (at {last:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
