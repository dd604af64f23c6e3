//! The CDC message that `tigerbeetle amqp` publishes, one per transfer event, and its decoding.
//!
//! The format is TigerBeetle's `src/cdc/runner.zig` (`Message`) and `docs/operating/cdc.md`.
//! Integers arrive as JSON numbers or as JSON strings (values above 2^53 are strings, and the
//! same field can be either across messages); every field round-trips exactly.
//!
//! The module's parts, one per decoding stage: `canonical` reads TigerBeetle's exact layout with
//! a cursor (nearly every message), `wire` is the serde path for everything else, `explain`
//! names the wrong field once both failed, `headers` cross-checks the AMQP headers, and
//! `encode` writes the bytes TigerBeetle publishes (tests, benchmarks, the demo).

mod canonical;
mod counts;
mod encode;
mod explain;
mod headers;
mod wire;

#[cfg(test)]
mod tests;

use lapin::types::FieldTable;

pub use counts::EventCounts;
pub use encode::{encode, encode_into, STRING_THRESHOLD};
pub use headers::Headers;

use explain::explain;
use wire::EventWire;

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

impl EventType {
    /// Every event type, in discriminant order.
    pub const ALL: [EventType; 5] = [
        EventType::SinglePhase,
        EventType::TwoPhasePending,
        EventType::TwoPhasePosted,
        EventType::TwoPhaseVoided,
        EventType::TwoPhaseExpired,
    ];

    /// The wire name (TigerBeetle's `ChangeEventType` tag name).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SinglePhase => "single_phase",
            EventType::TwoPhasePending => "two_phase_pending",
            EventType::TwoPhasePosted => "two_phase_posted",
            EventType::TwoPhaseVoided => "two_phase_voided",
            EventType::TwoPhaseExpired => "two_phase_expired",
        }
    }

    /// The inverse of `self as u8`.
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(usize::from(v)).copied()
    }

    /// The inverse of [`EventType::as_str`]; exact, case-sensitive.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a CDC message was rejected. Values quoted from the message are truncated to
/// [`QUOTE_LEN_MAX`] characters, so an error never carries a whole body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not well-formed JSON.
    #[error("malformed JSON at line {line} column {column}: {reason}")]
    Json {
        reason: String,
        line: usize,
        column: usize,
    },
    #[error("missing field {path}")]
    MissingField { path: String },
    #[error("duplicate field {path}")]
    DuplicateField { path: String },
    /// A field is present but its value is unacceptable (`reason` says why).
    #[error("field {path}: {reason}, got `{value}`")]
    InvalidField {
        path: String,
        reason: &'static str,
        value: String,
    },
    #[error("unknown event type `{value}` in field type")]
    UnknownEventType { value: String },
    /// The message is well-formed but breaks something TigerBeetle guarantees.
    #[error("field {path}: {reason}")]
    Invariant { path: String, reason: &'static str },
    #[error("header {name}: expected {expected}, found {found}")]
    HeaderType {
        name: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("header {name} is `{header}` but the body says `{body}`")]
    HeaderMismatch {
        name: &'static str,
        header: String,
        body: String,
    },
    /// Rejected for a reason the decoder could not pin to a field (should not happen).
    #[error("invalid message: {reason}")]
    Invalid { reason: String },
}

/// The longest excerpt of a message that an error quotes.
pub const QUOTE_LEN_MAX: usize = 64;

/// `s`, cut to at most [`QUOTE_LEN_MAX`] characters (the cut marked with `...`).
fn quote(s: &str) -> String {
    if s.chars().count() <= QUOTE_LEN_MAX {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(QUOTE_LEN_MAX - 3).collect();
    out.push_str("...");
    out
}

/// Decodes one message body. Unknown fields are ignored (newer TigerBeetle versions may add
/// some); everything else is checked, and the error names the offending field.
pub fn decode(body: &[u8]) -> Result<Event, DecodeError> {
    // Nearly every message is exactly what `tigerbeetle amqp` writes; read that layout directly.
    if let Some(event) = canonical::decode(body) {
        check_invariants(&event)?;
        return Ok(event);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = EventWire::deserialize(&mut de).and_then(|event| de.end().map(|()| event));
    let event = match parsed {
        Ok(event) => event,
        Err(e) => return Err(explain(body, &e)),
    };
    check_invariants(&event)?;
    Ok(event)
}

/// Decodes a delivery: the body, cross-checked against the AMQP headers that came with it.
pub fn decode_delivery(body: &[u8], headers: Option<&FieldTable>) -> Result<Event, DecodeError> {
    let headers = Headers::from_field_table(headers)?;
    let event = decode(body)?;
    headers.check(&event)?;
    Ok(event)
}

/// TigerBeetle assigns every object a non-zero timestamp; a zero means the producer is not
/// TigerBeetle, or the message was damaged in a way JSON cannot show.
/// The largest timestamp TigerBeetle assigns before the year 2262, and the largest the lake
/// stores (as a signed 64-bit integer).
pub const TIMESTAMP_MAX: u64 = i64::MAX as u64;

fn check_invariants(event: &Event) -> Result<(), DecodeError> {
    let timestamps = [
        ("timestamp", event.timestamp),
        ("transfer.timestamp", event.transfer.timestamp),
        ("debit_account.timestamp", event.debit_account.timestamp),
        ("credit_account.timestamp", event.credit_account.timestamp),
    ];
    if let Some((path, _)) = timestamps.iter().find(|(_, t)| *t == 0) {
        return Err(DecodeError::Invariant {
            path: (*path).to_owned(),
            reason: "zero timestamp (TigerBeetle never assigns one)",
        });
    }
    // The lake stores timestamps as signed 64-bit integers (schemas/lake.md).
    match timestamps.iter().find(|(_, t)| *t > TIMESTAMP_MAX) {
        Some((path, _)) => Err(DecodeError::Invariant {
            path: (*path).to_owned(),
            reason: "timestamp at or above 2^63 (TigerBeetle timestamps stay below it until 2262)",
        }),
        None => Ok(()),
    }
}
