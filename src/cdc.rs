//! The CDC message that `tigerbeetle amqp` publishes, one per transfer event, and its decoding.
//!
//! The format is TigerBeetle's `src/cdc/runner.zig` (`Message`) and `docs/operating/cdc.md`.
//! Integers arrive as JSON numbers or as JSON strings (values above 2^53 are strings, and the
//! same field can be either across messages); every field round-trips exactly.

/// The five kinds of transfer event (`type` in the body, `event_type` in the AMQP headers).
/// The discriminant is what the lake stores (`event_type` column, UTINYINT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EventType {
    SinglePhase = 0,
    TwoPhasePending = 1,
    TwoPhasePosted = 2,
    TwoPhaseVoided = 3,
    TwoPhaseExpired = 4,
}

/// The transfer as the message carries it. The debit and credit account ids are the ids of
/// `Event::debit_account` and `Event::credit_account`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransferFields {
    pub id: u128,
    pub amount: u128,
    pub pending_id: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub timeout: u32,
    pub code: u16,
    pub flags: u16,
    pub timestamp: u64,
}

/// An account as the message carries it, balances as of the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountFields {
    pub id: u128,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub code: u16,
    pub flags: u16,
    pub timestamp: u64,
}

/// One decoded CDC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The event timestamp (ns): unique and strictly increasing across events. For
    /// `TwoPhaseExpired` it is the expiry time, otherwise the transfer's timestamp.
    pub timestamp: u64,
    pub event_type: EventType,
    pub ledger: u32,
    pub transfer: TransferFields,
    pub debit_account: AccountFields,
    pub credit_account: AccountFields,
}
