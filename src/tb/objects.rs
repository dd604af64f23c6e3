//! One definition of each TigerBeetle object ledgerlake handles, with the conversions to and
//! from the client crate's types. Flags are kept as the `u16` the cluster stores (see
//! [`super::flags`]).

use serde::Serialize;
use serde_with::{serde_as, DisplayFromStr};
use tigerbeetle_unofficial as tbc;

/// An account's fields other than its balances: all fixed at creation, except `closed` in
/// `flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Account {
    pub id: u128,
    pub ledger: u32,
    pub code: u16,
    pub flags: u16,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    /// Its creation timestamp (ns).
    pub timestamp: u64,
}

impl From<&tbc::Account> for Account {
    fn from(a: &tbc::Account) -> Self {
        let r = a.as_raw();
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

/// The account to create: balances start at zero.
impl From<&Account> for tbc::Account {
    fn from(a: &Account) -> Self {
        tbc::Account::from_raw(tbc::account::Raw {
            id: a.id,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
            user_data_128: a.user_data_128,
            user_data_64: a.user_data_64,
            user_data_32: a.user_data_32,
            reserved: 0,
            ledger: a.ledger,
            code: a.code,
            flags: a.flags,
            timestamp: a.timestamp,
        })
    }
}

/// The four balances of an account, as of some instant. In JSON each is a decimal string (most
/// JSON parsers read numbers as doubles).
#[serde_as]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Balances {
    #[serde_as(as = "DisplayFromStr")]
    pub debits_pending: u128,
    #[serde_as(as = "DisplayFromStr")]
    pub debits_posted: u128,
    #[serde_as(as = "DisplayFromStr")]
    pub credits_pending: u128,
    #[serde_as(as = "DisplayFromStr")]
    pub credits_posted: u128,
}

/// The field names, in the order [`Balances::values`] lists them.
pub const BALANCE_FIELDS: [&str; 4] = [
    "debits_pending",
    "debits_posted",
    "credits_pending",
    "credits_posted",
];

impl Balances {
    pub fn values(&self) -> [u128; 4] {
        [
            self.debits_pending,
            self.debits_posted,
            self.credits_pending,
            self.credits_posted,
        ]
    }

    /// `(field, self, other)` for every field that differs.
    pub fn diff(&self, other: &Balances) -> Vec<(&'static str, u128, u128)> {
        BALANCE_FIELDS
            .iter()
            .zip(self.values().into_iter().zip(other.values()))
            .filter(|(_, (a, b))| a != b)
            .map(|(&field, (a, b))| (field, a, b))
            .collect()
    }
}

impl From<&tbc::Account> for Balances {
    fn from(a: &tbc::Account) -> Self {
        let r = a.as_raw();
        Balances {
            debits_pending: r.debits_pending,
            debits_posted: r.debits_posted,
            credits_pending: r.credits_pending,
            credits_posted: r.credits_posted,
        }
    }
}

/// One entry of `get_account_balances` (a `history` account after one of its transfers).
impl From<&tbc::account::Balance> for Balances {
    fn from(b: &tbc::account::Balance) -> Self {
        let r = b.as_raw();
        Balances {
            debits_pending: r.debits_pending,
            debits_posted: r.debits_posted,
            credits_pending: r.credits_pending,
            credits_posted: r.credits_posted,
        }
    }
}

/// A transfer's stored fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transfer {
    pub id: u128,
    pub debit_account_id: u128,
    pub credit_account_id: u128,
    pub amount: u128,
    pub pending_id: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    /// Seconds (pending transfers only; 0 for none).
    pub timeout: u32,
    pub ledger: u32,
    pub code: u16,
    pub flags: u16,
    pub timestamp: u64,
}

impl Transfer {
    pub fn has_flag(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

impl From<&tbc::Transfer> for Transfer {
    fn from(t: &tbc::Transfer) -> Self {
        let r = t.as_raw();
        Transfer {
            id: r.id,
            debit_account_id: r.debit_account_id,
            credit_account_id: r.credit_account_id,
            amount: r.amount,
            pending_id: r.pending_id,
            user_data_128: r.user_data_128,
            user_data_64: r.user_data_64,
            user_data_32: r.user_data_32,
            timeout: r.timeout,
            ledger: r.ledger,
            code: r.code,
            flags: r.flags,
            timestamp: r.timestamp,
        }
    }
}

impl From<&Transfer> for tbc::Transfer {
    fn from(t: &Transfer) -> Self {
        tbc::Transfer::from_raw(tbc::transfer::Raw {
            id: t.id,
            debit_account_id: t.debit_account_id,
            credit_account_id: t.credit_account_id,
            amount: t.amount,
            pending_id: t.pending_id,
            user_data_128: t.user_data_128,
            user_data_64: t.user_data_64,
            user_data_32: t.user_data_32,
            timeout: t.timeout,
            ledger: t.ledger,
            code: t.code,
            flags: t.flags,
            timestamp: t.timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_the_fields() {
        let b = |v: [u128; 4]| Balances {
            debits_pending: v[0],
            debits_posted: v[1],
            credits_pending: v[2],
            credits_posted: v[3],
        };
        assert_eq!(
            b([1, 2, 3, 4]).diff(&b([1, 9, 3, 8])),
            vec![("debits_posted", 2, 9), ("credits_posted", 4, 8)]
        );
    }

    #[test]
    fn balances_are_decimal_strings_in_json() {
        let b = Balances {
            debits_pending: u128::MAX,
            ..Balances::default()
        };
        let json = serde_json::to_value(b).unwrap();
        assert_eq!(json["debits_pending"], u128::MAX.to_string());
        assert_eq!(json["credits_posted"], "0");
    }

    #[test]
    fn objects_round_trip_through_the_client_types() {
        let a = Account {
            id: u128::MAX - 1,
            ledger: 7,
            code: u16::MAX,
            flags: 1 << 3,
            user_data_128: 1 << 100,
            user_data_64: u64::MAX,
            user_data_32: 3,
            timestamp: 42,
        };
        assert_eq!(Account::from(&tbc::Account::from(&a)), a);
        let t = Transfer {
            id: 9,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: u128::MAX,
            pending_id: 4,
            user_data_128: 5,
            user_data_64: 6,
            user_data_32: 7,
            timeout: 8,
            ledger: 10,
            code: 11,
            flags: 1 << 8,
            timestamp: 12,
        };
        assert_eq!(Transfer::from(&tbc::Transfer::from(&t)), t);
    }
}
