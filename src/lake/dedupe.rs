//! Accounts recorded more than once, merged on read. Every segment records every account its
//! events touch, and the sweep records the accounts no transfer had touched when it read them,
//! so an account can have several records (in `accounts`, in `swept_accounts`, or both). A
//! reader keeps one per id: **the record with the smallest `first_seen_timestamp`** (the first
//! the lake holds; on a tie, the one read first). Records of one id must agree on the
//! account's immutable fields (ledger, code, user data, creation timestamp); `flags` and
//! `first_seen_timestamp` may differ (they are as of the record's event). Two records that
//! disagree are an error every reader reports, and a problem `verify` names.

use std::collections::HashMap;

use super::AccountRecord;

/// Two records of one account that disagree on its immutable fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "account {} has records that disagree on its immutable fields (ledger, code, user data, \
     creation timestamp): {kept:?} and {other:?}",
    kept.id
)]
pub struct AccountDisagreement {
    /// The record kept so far.
    pub kept: AccountRecord,
    /// The record that disagrees with it.
    pub other: AccountRecord,
}

/// The fields TigerBeetle never changes after an account is created.
fn immutable(r: &AccountRecord) -> (u32, u16, u128, u64, u32, u64) {
    (
        r.ledger,
        r.code,
        r.user_data_128,
        r.user_data_64,
        r.user_data_32,
        r.timestamp,
    )
}

/// Whether two records of one account agree on its immutable fields.
pub fn records_agree(a: &AccountRecord, b: &AccountRecord) -> bool {
    assert_eq!(a.id, b.id, "records of one account");
    immutable(a) == immutable(b)
}

/// What [`AccountBook::insert`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merged {
    /// The first record of its account.
    New,
    /// It replaced the record kept so far (it was first seen earlier).
    Replaced,
    /// The record kept so far stays (first seen no later).
    Kept,
}

/// One record per account, merged by the rule of this module, in order of each account's
/// first insertion.
#[derive(Debug, Default, Clone)]
pub struct AccountBook {
    index: HashMap<u128, usize>,
    records: Vec<AccountRecord>,
}

impl AccountBook {
    /// Merges one record; a record that disagrees with the one kept is an error (and changes
    /// nothing).
    pub fn insert(&mut self, record: AccountRecord) -> Result<Merged, Box<AccountDisagreement>> {
        match self.index.get(&record.id) {
            None => {
                self.index.insert(record.id, self.records.len());
                self.records.push(record);
                Ok(Merged::New)
            }
            Some(&i) => {
                let kept = &mut self.records[i];
                if !records_agree(kept, &record) {
                    return Err(Box::new(AccountDisagreement {
                        kept: *kept,
                        other: record,
                    }));
                }
                if record.first_seen_timestamp < kept.first_seen_timestamp {
                    *kept = record;
                    Ok(Merged::Replaced)
                } else {
                    Ok(Merged::Kept)
                }
            }
        }
    }

    /// The record kept for `id`.
    pub fn get(&self, id: u128) -> Option<&AccountRecord> {
        self.index.get(&id).map(|&i| &self.records[i])
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The kept records, in order of each account's first insertion.
    pub fn into_records(self) -> Vec<AccountRecord> {
        self.records
    }
}

/// One record per account of `records` (see the module's rule), in order of first appearance.
pub fn dedupe_accounts(
    records: impl IntoIterator<Item = AccountRecord>,
) -> Result<Vec<AccountRecord>, Box<AccountDisagreement>> {
    let mut book = AccountBook::default();
    for r in records {
        book.insert(r)?;
    }
    Ok(book.into_records())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u128, first_seen: u64, flags: u16) -> AccountRecord {
        AccountRecord {
            id,
            ledger: 7,
            code: 9,
            flags,
            user_data_128: u128::MAX,
            user_data_64: 64,
            user_data_32: 32,
            timestamp: 100,
            first_seen_timestamp: first_seen,
        }
    }

    #[test]
    fn the_record_first_seen_is_kept_whatever_the_reading_order() {
        // Swept (first seen at creation, flags as created), then two segments' records.
        let swept = record(1, 100, 0);
        let first_event = record(1, 500, 1 << 3);
        let later_event = record(1, 900, 1 << 5);
        for order in [
            [swept, first_event, later_event],
            [later_event, first_event, swept],
            [first_event, swept, later_event],
        ] {
            assert_eq!(dedupe_accounts(order).unwrap(), vec![swept], "{order:?}");
        }
        assert_eq!(
            dedupe_accounts([later_event, first_event]).unwrap(),
            vec![first_event]
        );
    }

    #[test]
    fn accounts_keep_the_order_of_their_first_record() {
        let got = dedupe_accounts([record(2, 10, 0), record(1, 20, 0), record(2, 30, 0)]).unwrap();
        assert_eq!(got, vec![record(2, 10, 0), record(1, 20, 0)]);
        let mut book = AccountBook::default();
        assert_eq!(book.insert(record(3, 50, 0)), Ok(Merged::New));
        assert_eq!(
            book.insert(record(3, 50, 1)),
            Ok(Merged::Kept),
            "a tie keeps the first"
        );
        assert_eq!(book.insert(record(3, 40, 2)), Ok(Merged::Replaced));
        assert_eq!(book.get(3), Some(&record(3, 40, 2)));
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn records_that_disagree_on_an_immutable_field_are_an_error() {
        let base = record(1, 500, 0);
        let changed: [fn(&mut AccountRecord); 6] = [
            |r| r.ledger += 1,
            |r| r.code += 1,
            |r| r.user_data_128 -= 1,
            |r| r.user_data_64 += 1,
            |r| r.user_data_32 += 1,
            |r| r.timestamp += 1,
        ];
        for change in changed {
            let mut other = record(1, 900, 0);
            change(&mut other);
            let err = dedupe_accounts([base, other]).unwrap_err();
            assert_eq!(*err, AccountDisagreement { kept: base, other });
            assert!(err
                .to_string()
                .contains("account 1 has records that disagree"));
            // Whichever comes first.
            assert!(dedupe_accounts([other, base]).is_err());
        }
        // Flags and first_seen_timestamp are as of each record's event: they may differ.
        let mut flags = record(1, 900, 1 << 5);
        flags.first_seen_timestamp = 1;
        assert_eq!(dedupe_accounts([base, flags]).unwrap(), vec![flags]);
    }
}
