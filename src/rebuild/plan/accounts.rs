//! The accounts a rebuild creates: from the lake's records, merged, filtered by `--until` and
//! ledger, sorted, with the flags they lose or gain.

use std::collections::{BTreeSet, HashMap};

use super::PlanError;
use crate::lake::AccountRecord;
use crate::tb::flags::account as account_flags;
use crate::tb::Account;

/// An account as it will be created: see [`planned_from_record`] and [`planned_from_swept`] for
/// its flags.
pub type PlannedAccount = Account;

/// An account record of the lake as TigerBeetle's object, its flags as recorded.
impl From<&AccountRecord> for Account {
    fn from(r: &AccountRecord) -> Self {
        Account {
            id: r.id,
            ledger: r.ledger,
            code: r.code,
            flags: r.flags,
            user_data_128: r.user_data_128,
            user_data_64: r.user_data_64,
            user_data_32: r.user_data_32,
            timestamp: r.timestamp,
        }
    }
}

/// From a record of the `accounts` table (its flags as of its first event): created open, since
/// the replayed closing transfer closes it again.
pub fn planned_from_record(r: &AccountRecord) -> PlannedAccount {
    PlannedAccount {
        flags: (r.flags & !(account_flags::CLOSED | account_flags::LINKED))
            | account_flags::IMPORTED,
        ..Account::from(r)
    }
}

/// From a record of the `swept_accounts` table (its flags as created): `closed` is kept, as the
/// sweep records it only for an account created closed, which no transfer can reopen.
pub fn planned_from_swept(r: &AccountRecord) -> PlannedAccount {
    PlannedAccount {
        flags: (r.flags & !account_flags::LINKED) | account_flags::IMPORTED,
        ..Account::from(r)
    }
}

/// The accounts to create up to `until` (by creation timestamp) in the chosen ledgers, sorted,
/// from records of the `accounts` table or any other source whose flags are as of an event.
pub fn plan_accounts(
    records: impl IntoIterator<Item = AccountRecord>,
    until: u64,
    ledgers: Option<&BTreeSet<u32>>,
) -> Result<(Vec<PlannedAccount>, AccountDeviations), PlanError> {
    plan_accounts_with_swept(records, [], until, ledgers)
}

/// [`plan_accounts`] with the lake's swept accounts too (flags as created, see
/// [`planned_from_swept`]). The same account recorded twice, in any source, must agree
/// on its immutable fields; the first record wins (`records` before `swept`).
pub fn plan_accounts_with_swept(
    records: impl IntoIterator<Item = AccountRecord>,
    swept: impl IntoIterator<Item = AccountRecord>,
    until: u64,
    ledgers: Option<&BTreeSet<u32>>,
) -> Result<(Vec<PlannedAccount>, AccountDeviations), PlanError> {
    let mut by_id: HashMap<u128, (AccountRecord, bool)> = HashMap::new();
    let tagged = records
        .into_iter()
        .map(|r| (r, false))
        .chain(swept.into_iter().map(|r| (r, true)));
    for (r, is_swept) in tagged {
        if r.timestamp > until || ledgers.is_some_and(|l| !l.contains(&r.ledger)) {
            continue;
        }
        match by_id.get(&r.id).map(|(seen, _)| seen) {
            None => {
                by_id.insert(r.id, (r, is_swept));
            }
            Some(seen) => {
                let immutable = |a: &AccountRecord| {
                    (
                        a.ledger,
                        a.code,
                        a.user_data_128,
                        a.user_data_64,
                        a.user_data_32,
                        a.timestamp,
                    )
                };
                if immutable(seen) != immutable(&r) {
                    return Err(PlanError::AccountConflict {
                        id: r.id,
                        first_timestamp: seen.timestamp,
                        second_timestamp: r.timestamp,
                    });
                }
            }
        }
    }
    let mut deviations = AccountDeviations::default();
    let mut accounts: Vec<PlannedAccount> = by_id
        .values()
        .map(|(r, is_swept)| {
            deviations.linked_dropped += u64::from(r.flags & account_flags::LINKED != 0);
            if *is_swept {
                return planned_from_swept(r);
            }
            deviations.closed_dropped += u64::from(r.flags & account_flags::CLOSED != 0);
            planned_from_record(r)
        })
        .collect();
    accounts.sort_by_key(|a| a.timestamp);
    if let Some(w) = accounts
        .windows(2)
        .find(|w| w[0].timestamp == w[1].timestamp)
    {
        return Err(PlanError::AccountTimestampClash {
            first_id: w[0].id,
            second_id: w[1].id,
            timestamp: w[0].timestamp,
        });
    }
    Ok((accounts, deviations))
}

/// Account flags that differ from the source's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountDeviations {
    /// Recorded as `closed` (closed by a transfer): created open, closed again by the replay.
    pub closed_dropped: u64,
    /// Created in a linked chain of accounts: created alone.
    pub linked_dropped: u64,
}
