//! The rows of the two lake tables, and how a CDC `Event` splits into them and is rebuilt.
//!
//! A CDC message repeats each account's immutable fields (user data, code, creation timestamp)
//! in every event; the lake stores them once, in the accounts table, and keeps in the
//! transfers table only what changes per event (balances, flags). Joining the two gives back
//! every field of every message exactly.

use crate::cdc::{AccountFields, Event, EventType, TransferFields};

/// One row of the transfers table: everything of an event except the accounts' immutable
/// fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRow {
    pub timestamp: u64,
    pub event_type: EventType,
    pub ledger: u32,
    pub transfer: TransferFields,
    pub debit_account: AccountState,
    pub credit_account: AccountState,
}

/// An account as of an event: its id and the fields that can change from event to event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountState {
    pub id: u128,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    /// Can change: closing and reopening an account flips `closed`.
    pub flags: u16,
}

/// One row of the accounts table: an account's immutable fields, recorded in the segment where
/// the account first appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountRecord {
    pub id: u128,
    pub ledger: u32,
    pub code: u16,
    /// As in the event where the account was first seen (flags can change later).
    pub flags: u16,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    /// The account's creation timestamp.
    pub timestamp: u64,
    /// The event timestamp of its first appearance in the lake.
    pub first_seen_timestamp: u64,
}

impl Default for EventRow {
    // Only a blank to decode columns into; every field is overwritten.
    fn default() -> Self {
        EventRow {
            timestamp: 0,
            event_type: EventType::SinglePhase,
            ledger: 0,
            transfer: TransferFields::default(),
            debit_account: AccountState::default(),
            credit_account: AccountState::default(),
        }
    }
}

impl AccountState {
    pub fn from_fields(a: &AccountFields) -> Self {
        AccountState {
            id: a.id,
            debits_pending: a.debits_pending,
            debits_posted: a.debits_posted,
            credits_pending: a.credits_pending,
            credits_posted: a.credits_posted,
            flags: a.flags,
        }
    }

    /// Rebuilds the message's account from its state and its record. The caller has matched
    /// the ids.
    pub fn to_fields(&self, record: &AccountRecord) -> AccountFields {
        assert_eq!(self.id, record.id);
        AccountFields {
            id: self.id,
            debits_pending: self.debits_pending,
            debits_posted: self.debits_posted,
            credits_pending: self.credits_pending,
            credits_posted: self.credits_posted,
            user_data_128: record.user_data_128,
            user_data_64: record.user_data_64,
            user_data_32: record.user_data_32,
            code: record.code,
            flags: self.flags,
            timestamp: record.timestamp,
        }
    }
}

impl AccountRecord {
    pub fn from_event_account(a: &AccountFields, ledger: u32, event_ts: u64) -> Self {
        AccountRecord {
            id: a.id,
            ledger,
            code: a.code,
            flags: a.flags,
            user_data_128: a.user_data_128,
            user_data_64: a.user_data_64,
            user_data_32: a.user_data_32,
            timestamp: a.timestamp,
            first_seen_timestamp: event_ts,
        }
    }
}

impl EventRow {
    pub fn from_event(e: &Event) -> Self {
        EventRow {
            timestamp: e.timestamp,
            event_type: e.event_type,
            ledger: e.ledger,
            transfer: e.transfer,
            debit_account: AccountState::from_fields(&e.debit_account),
            credit_account: AccountState::from_fields(&e.credit_account),
        }
    }

    pub fn to_event(&self, debit: &AccountRecord, credit: &AccountRecord) -> Event {
        Event {
            timestamp: self.timestamp,
            event_type: self.event_type,
            ledger: self.ledger,
            transfer: self.transfer,
            debit_account: self.debit_account.to_fields(debit),
            credit_account: self.credit_account.to_fields(credit),
        }
    }
}

/// The stored discriminant back to an `EventType` (cdc.rs has no conversion from u8).
pub fn event_type_from_u8(v: u8) -> Option<EventType> {
    Some(match v {
        0 => EventType::SinglePhase,
        1 => EventType::TwoPhasePending,
        2 => EventType::TwoPhasePosted,
        3 => EventType::TwoPhaseVoided,
        4 => EventType::TwoPhaseExpired,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_discriminants_round_trip() {
        for t in [
            EventType::SinglePhase,
            EventType::TwoPhasePending,
            EventType::TwoPhasePosted,
            EventType::TwoPhaseVoided,
            EventType::TwoPhaseExpired,
        ] {
            assert_eq!(event_type_from_u8(t as u8), Some(t));
        }
        assert_eq!(event_type_from_u8(5), None);
        assert_eq!(event_type_from_u8(255), None);
    }
}
