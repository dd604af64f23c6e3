//! The drill's check: a target cluster against the lake as of a moment. Every account (its
//! immutable fields, its flags, its four balances) and every transfer (all its fields), as the
//! rebuild documents them (docs/REBUILD.md: `imported` on everything, timeouts 0, an expiry as a
//! void, a chain cut at the moment loses `linked`), and nothing more in the target.
//!
//! The expected state comes from the lake's rows: an account's balances and `closed` flag are
//! those of the last event that touched it (its creation fields from the accounts tables); a
//! transfer's fields are the event's, mapped by the rebuild's own rules (`rebuild::plan`).
//! Transfers are compared in timestamp order against the target's, streamed page by page; above
//! [`TRANSFERS_COMPARED_MAX_DEFAULT`] (or the caller's bound) the fields are compared on a
//! deterministic sample — every k-th transfer in timestamp order, k a power of two chosen so the
//! sample fits the bound — while the presence of every transfer (its timestamp) is still checked.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_with::{serde_as, DisplayFromStr};

use crate::lake::{AccountState, Lake};
use crate::rebuild::execute::SEGMENT_READS_IN_FLIGHT;
use crate::rebuild::plan::{PlannedAccount, Sequencer};
use crate::rebuild::Prepared;
use crate::tb::flags::account::CLOSED;
use crate::tb::{Balances, Cluster, ClusterAccount, Transfer};

use super::DrillError;

/// Transfers whose fields are all compared before the drill samples.
pub const TRANSFERS_COMPARED_MAX_DEFAULT: u64 = 1_000_000;
/// Differences listed in a report; the total is always given.
pub const DIFFERENCES_LISTED_MAX: usize = 1000;
/// The most transfers the drill reads from a target in one pass.
pub const TARGET_TRANSFERS_MAX: usize = 1_000_000_000;

/// One difference between the lake and the target.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Difference {
    /// `account` or `transfer`.
    pub object: &'static str,
    /// `None` for a transfer the target lacks outside the sample (its timestamp says which).
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub id: Option<u128>,
    /// The transfer's timestamp (a transfer's identity in the target); `None` for accounts.
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub timestamp: Option<u64>,
    /// A field's name, or `presence` for an object only one side has.
    pub field: &'static str,
    pub lake: Option<String>,
    pub target: Option<String>,
}

/// What the comparison covered and found.
#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub accounts_in_lake: usize,
    pub accounts_in_target: usize,
    pub accounts_compared: usize,
    #[serde_as(as = "DisplayFromStr")]
    pub transfers_in_lake: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub transfers_in_target: u64,
    /// Transfers whose every field was compared (all of them unless sampled).
    #[serde_as(as = "DisplayFromStr")]
    pub transfers_fields_compared: u64,
    /// Fields compared on every k-th transfer in timestamp order (1: every transfer).
    #[serde_as(as = "DisplayFromStr")]
    pub transfers_sample_every: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub differences_total: u64,
    pub differences: Vec<Difference>,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.differences_total == 0
    }
}

#[derive(Default)]
struct Differences {
    total: u64,
    listed: Vec<Difference>,
}

impl Differences {
    fn push(&mut self, d: Difference) {
        self.total += 1;
        if self.listed.len() < DIFFERENCES_LISTED_MAX {
            self.listed.push(d);
        }
    }
}

/// The expected transfers: every timestamp, and the fields of a sample that halves as it grows.
struct Expected {
    timestamps: Vec<u64>,
    /// (position in `timestamps`, transfer), positions multiples of `every`.
    sample: Vec<(usize, Transfer)>,
    every: usize,
    sample_max: usize,
}

impl Expected {
    fn push(&mut self, t: Transfer) {
        let position = self.timestamps.len();
        self.timestamps.push(t.timestamp);
        if position.is_multiple_of(self.every) {
            self.sample.push((position, t));
        }
        if self.sample.len() > self.sample_max {
            self.every *= 2;
            let every = self.every;
            self.sample.retain(|(p, _)| p.is_multiple_of(every));
        }
    }
}

/// Compares `target` with the lake as of `prepared.until` (the accounts and segments a rebuild
/// to that moment prepared).
pub async fn compare(
    lake: &Lake,
    prepared: &Prepared,
    target: &Cluster,
    transfers_compared_max: u64,
) -> Result<Comparison, DrillError> {
    assert!(transfers_compared_max > 0);
    let until = prepared.until;
    let cluster = prepared.lake_cluster_id;
    let mut last_state: HashMap<u128, AccountState> = HashMap::new();
    let mut sequencer = Sequencer::new(None);
    let mut expected = Expected {
        timestamps: Vec::new(),
        sample: Vec::new(),
        every: 1,
        sample_max: usize::try_from(transfers_compared_max).unwrap_or(usize::MAX),
    };
    let mut rows = futures::stream::iter(prepared.segments.iter())
        .map(|seg| lake.read_events_of_cluster(seg, cluster))
        .buffered(SEGMENT_READS_IN_FLIGHT);
    while let Some(rows) = rows.try_next().await? {
        for row in rows.iter().take_while(|r| r.timestamp <= until) {
            last_state.insert(row.debit_account.id, row.debit_account);
            last_state.insert(row.credit_account.id, row.credit_account);
            sequencer.push(row).map_err(DrillError::Plan)?;
        }
        while let Some(unit) = sequencer.pop_unit() {
            unit.iter().for_each(|t| expected.push(t.transfer));
        }
    }
    drop(rows);
    sequencer.finish();
    while let Some(unit) = sequencer.pop_unit() {
        unit.iter().for_each(|t| expected.push(t.transfer));
    }

    let mut differences = Differences::default();
    let target_accounts = target.all_accounts().await?;
    let accounts_compared = compare_accounts(
        &prepared.accounts,
        &last_state,
        &target_accounts,
        &mut differences,
    );
    let (transfers_in_target, fields_compared) =
        compare_transfers(&expected, target, &mut differences).await?;
    let mut listed = differences.listed;
    listed.sort();
    Ok(Comparison {
        accounts_in_lake: prepared.accounts.len(),
        accounts_in_target: target_accounts.len(),
        accounts_compared,
        transfers_in_lake: expected.timestamps.len() as u64,
        transfers_in_target,
        transfers_fields_compared: fields_compared,
        transfers_sample_every: expected.every as u64,
        differences_total: differences.total,
        differences: listed,
    })
}

/// The account as the target should hold it: as created, `closed` as of its last event.
fn expected_account(
    planned: &PlannedAccount,
    last: Option<&AccountState>,
) -> (PlannedAccount, Balances) {
    let Some(s) = last else {
        return (*planned, Balances::default());
    };
    let account = PlannedAccount {
        flags: (planned.flags & !CLOSED) | (s.flags & CLOSED),
        ..*planned
    };
    let balances = Balances {
        debits_pending: s.debits_pending,
        debits_posted: s.debits_posted,
        credits_pending: s.credits_pending,
        credits_posted: s.credits_posted,
    };
    (account, balances)
}

fn compare_accounts(
    planned: &[PlannedAccount],
    last_state: &HashMap<u128, AccountState>,
    target: &[ClusterAccount],
    differences: &mut Differences,
) -> usize {
    let by_id: HashMap<u128, &ClusterAccount> = target.iter().map(|a| (a.account.id, a)).collect();
    let mut compared = 0;
    for p in planned {
        let (want, want_balances) = expected_account(p, last_state.get(&p.id));
        let Some(got) = by_id.get(&p.id) else {
            differences.push(presence("account", Some(p.id), None, true));
            continue;
        };
        compared += 1;
        let fields: [(&'static str, u128, u128); 11] = [
            ("ledger", want.ledger.into(), got.account.ledger.into()),
            ("code", want.code.into(), got.account.code.into()),
            ("flags", want.flags.into(), got.account.flags.into()),
            (
                "user_data_128",
                want.user_data_128,
                got.account.user_data_128,
            ),
            (
                "user_data_64",
                want.user_data_64.into(),
                got.account.user_data_64.into(),
            ),
            (
                "user_data_32",
                want.user_data_32.into(),
                got.account.user_data_32.into(),
            ),
            (
                "timestamp",
                want.timestamp.into(),
                got.account.timestamp.into(),
            ),
            (
                "debits_pending",
                want_balances.debits_pending,
                got.balances.debits_pending,
            ),
            (
                "debits_posted",
                want_balances.debits_posted,
                got.balances.debits_posted,
            ),
            (
                "credits_pending",
                want_balances.credits_pending,
                got.balances.credits_pending,
            ),
            (
                "credits_posted",
                want_balances.credits_posted,
                got.balances.credits_posted,
            ),
        ];
        field_differences("account", p.id, None, &fields, differences);
    }
    let planned_ids: std::collections::HashSet<u128> = planned.iter().map(|p| p.id).collect();
    for a in target
        .iter()
        .filter(|a| !planned_ids.contains(&a.account.id))
    {
        differences.push(presence("account", Some(a.account.id), None, false));
    }
    compared
}

/// Streams the target's transfers in timestamp order against the expected ones: (transfers in
/// the target, transfers whose fields were compared).
async fn compare_transfers(
    expected: &Expected,
    target: &Cluster,
    differences: &mut Differences,
) -> Result<(u64, u64), DrillError> {
    let sample: HashMap<usize, &Transfer> = expected.sample.iter().map(|(p, t)| (*p, t)).collect();
    let mut seen = vec![false; expected.timestamps.len()];
    let mut in_target = 0u64;
    let mut fields_compared = 0u64;
    target
        .for_each_transfers_page(TARGET_TRANSFERS_MAX, |page: Vec<Transfer>| {
            for got in page {
                in_target += 1;
                let Ok(position) = expected.timestamps.binary_search(&got.timestamp) else {
                    differences.push(presence(
                        "transfer",
                        Some(got.id),
                        Some(got.timestamp),
                        false,
                    ));
                    continue;
                };
                seen[position] = true;
                if let Some(want) = sample.get(&position) {
                    fields_compared += 1;
                    compare_transfer(want, &got, differences);
                }
            }
            Ok::<_, DrillError>(())
        })
        .await?;
    for (position, _) in seen.iter().enumerate().filter(|(_, s)| !**s) {
        let timestamp = expected.timestamps[position];
        let id = sample.get(&position).map(|t| t.id);
        differences.push(presence("transfer", id, Some(timestamp), true));
    }
    Ok((in_target, fields_compared))
}

fn compare_transfer(want: &Transfer, got: &Transfer, differences: &mut Differences) {
    let fields: [(&'static str, u128, u128); 12] = [
        ("id", want.id, got.id),
        (
            "debit_account_id",
            want.debit_account_id,
            got.debit_account_id,
        ),
        (
            "credit_account_id",
            want.credit_account_id,
            got.credit_account_id,
        ),
        ("amount", want.amount, got.amount),
        ("pending_id", want.pending_id, got.pending_id),
        ("user_data_128", want.user_data_128, got.user_data_128),
        (
            "user_data_64",
            want.user_data_64.into(),
            got.user_data_64.into(),
        ),
        (
            "user_data_32",
            want.user_data_32.into(),
            got.user_data_32.into(),
        ),
        ("timeout", want.timeout.into(), got.timeout.into()),
        ("ledger", want.ledger.into(), got.ledger.into()),
        ("code", want.code.into(), got.code.into()),
        ("flags", want.flags.into(), got.flags.into()),
    ];
    field_differences(
        "transfer",
        want.id,
        Some(want.timestamp),
        &fields,
        differences,
    );
}

fn field_differences(
    object: &'static str,
    id: u128,
    timestamp: Option<u64>,
    fields: &[(&'static str, u128, u128)],
    differences: &mut Differences,
) {
    for &(field, want, got) in fields.iter().filter(|(_, w, g)| w != g) {
        differences.push(Difference {
            object,
            id: Some(id),
            timestamp,
            field,
            lake: Some(want.to_string()),
            target: Some(got.to_string()),
        });
    }
}

/// An object only one side has (`in_lake`: the lake has it, the target does not).
fn presence(
    object: &'static str,
    id: Option<u128>,
    timestamp: Option<u64>,
    in_lake: bool,
) -> Difference {
    let (lake, target) = if in_lake {
        (Some("present".to_string()), None)
    } else {
        (None, Some("present".to_string()))
    };
    Difference {
        object,
        id,
        timestamp,
        field: "presence",
        lake,
        target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(timestamp: u64) -> Transfer {
        Transfer {
            id: u128::from(timestamp),
            timestamp,
            ..Transfer::default()
        }
    }

    #[test]
    fn the_sample_is_every_kth_transfer_and_fits_its_bound() {
        let mut e = Expected {
            timestamps: Vec::new(),
            sample: Vec::new(),
            every: 1,
            sample_max: 10,
        };
        for t in 1..=10 {
            e.push(transfer(t));
        }
        assert_eq!(e.every, 1, "up to the bound, every transfer");
        assert_eq!(e.sample.len(), 10);
        for t in 11..=100 {
            e.push(transfer(t));
        }
        assert_eq!(e.timestamps.len(), 100, "every timestamp is kept");
        assert!(e.sample.len() <= 10, "{}", e.sample.len());
        assert_eq!(e.every, 16);
        let positions: Vec<usize> = e.sample.iter().map(|(p, _)| *p).collect();
        assert_eq!(positions, vec![0, 16, 32, 48, 64, 80, 96]);
        assert!(e.sample.iter().all(|(p, t)| t.timestamp == *p as u64 + 1));
    }

    #[test]
    fn an_account_is_expected_closed_as_of_its_last_event() {
        let planned = PlannedAccount {
            id: 7,
            flags: 1 << 4,
            ..PlannedAccount::default()
        };
        assert_eq!(
            expected_account(&planned, None),
            (planned, Balances::default())
        );
        let last = AccountState {
            id: 7,
            debits_posted: 5,
            flags: CLOSED,
            ..AccountState::default()
        };
        let (a, b) = expected_account(&planned, Some(&last));
        assert_eq!(a.flags, (1 << 4) | CLOSED);
        assert_eq!(b.debits_posted, 5);
    }

    #[test]
    fn differences_are_counted_past_the_list() {
        let mut d = Differences::default();
        for id in 0..(DIFFERENCES_LISTED_MAX as u128 + 5) {
            d.push(presence("account", Some(id), None, true));
        }
        assert_eq!(d.total, DIFFERENCES_LISTED_MAX as u64 + 5);
        assert_eq!(d.listed.len(), DIFFERENCES_LISTED_MAX);
    }
}
