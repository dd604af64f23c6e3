//! The CDC message that `tigerbeetle amqp` publishes, one per transfer event, and its decoding.
//!
//! The format is TigerBeetle's `src/cdc/runner.zig` (`Message`) and `docs/operating/cdc.md`.
//! Integers arrive as JSON numbers or as JSON strings (values above 2^53 are strings, and the
//! same field can be either across messages); every field round-trips exactly.

use lapin::types::{AMQPValue, FieldTable};
use serde::de::{self, Deserializer, Error as _, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

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
fn check_invariants(event: &Event) -> Result<(), DecodeError> {
    let timestamps = [
        ("timestamp", event.timestamp),
        ("transfer.timestamp", event.transfer.timestamp),
        ("debit_account.timestamp", event.debit_account.timestamp),
        ("credit_account.timestamp", event.credit_account.timestamp),
    ];
    match timestamps.iter().find(|(_, t)| *t == 0) {
        Some((path, _)) => Err(DecodeError::Invariant {
            path: (*path).to_owned(),
            reason: "zero timestamp (TigerBeetle never assigns one)",
        }),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Fastest path: the exact layout TigerBeetle writes (minified, its field order; see `encode`),
// read with a cursor. Anything else — whitespace, another order, unknown or duplicate fields,
// escapes, a non-canonical or out-of-range integer — gives `None`, and the serde path below
// decides, so what is accepted and every error stay exactly the serde path's. Measured with
// `cargo bench --bench codec` (BENCHMARKS.md): decoding about 3 times faster than serde.

mod canonical {
    use super::{AccountFields, Event, EventType, TransferFields};

    struct Cursor<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl Cursor<'_> {
        #[inline]
        fn literal(&mut self, expected: &[u8]) -> Option<()> {
            let end = self.at + expected.len();
            if self.bytes.get(self.at..end)? == expected {
                self.at = end;
                Some(())
            } else {
                None
            }
        }

        /// A canonical unsigned integer, bare or quoted, at most `max`.
        #[inline]
        fn uint(&mut self, max: u128) -> Option<u128> {
            let quoted = self.bytes.get(self.at) == Some(&b'"');
            self.at += usize::from(quoted);
            let start = self.at;
            let mut small: u64 = 0;
            while let Some(&d) = self.bytes.get(self.at) {
                if !d.is_ascii_digit() {
                    break;
                }
                if self.at - start < 19 {
                    small = small * 10 + u64::from(d - b'0');
                }
                self.at += 1;
            }
            let digits = &self.bytes[start..self.at];
            if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
                return None;
            }
            let value = if digits.len() <= 19 {
                u128::from(small)
            } else {
                digits.iter().try_fold(0u128, |acc, d| {
                    acc.checked_mul(10)?.checked_add(u128::from(d - b'0'))
                })?
            };
            if quoted {
                self.literal(b"\"")?;
            }
            (value <= max).then_some(value)
        }

        #[inline]
        fn field<T: TryFrom<u128>>(&mut self, key: &[u8]) -> Option<T> {
            self.literal(key)?;
            let max = match std::mem::size_of::<T>() {
                2 => u128::from(u16::MAX),
                4 => u128::from(u32::MAX),
                8 => u128::from(u64::MAX),
                _ => u128::MAX,
            };
            T::try_from(self.uint(max)?).ok()
        }

        fn event_type(&mut self) -> Option<EventType> {
            self.literal(b",\"type\":\"")?;
            let rest = self.bytes.get(self.at..)?;
            let len = rest.iter().position(|&b| b == b'"')?;
            let name = std::str::from_utf8(&rest[..len]).ok()?;
            self.at += len + 1;
            EventType::parse(name)
        }

        fn account(&mut self, key: &[u8]) -> Option<AccountFields> {
            let a = AccountFields {
                id: self.field(key)?,
                debits_pending: self.field(b",\"debits_pending\":")?,
                debits_posted: self.field(b",\"debits_posted\":")?,
                credits_pending: self.field(b",\"credits_pending\":")?,
                credits_posted: self.field(b",\"credits_posted\":")?,
                user_data_128: self.field(b",\"user_data_128\":")?,
                user_data_64: self.field(b",\"user_data_64\":")?,
                user_data_32: self.field(b",\"user_data_32\":")?,
                code: self.field(b",\"code\":")?,
                flags: self.field(b",\"flags\":")?,
                timestamp: self.field(b",\"timestamp\":")?,
            };
            self.literal(b"}")?;
            Some(a)
        }
    }

    /// The event, if `body` is exactly in TigerBeetle's own layout.
    pub(super) fn decode(body: &[u8]) -> Option<Event> {
        let mut c = Cursor { bytes: body, at: 0 };
        let timestamp = c.field(b"{\"timestamp\":")?;
        let event_type = c.event_type()?;
        let ledger = c.field(b",\"ledger\":")?;
        let transfer = TransferFields {
            id: c.field(b",\"transfer\":{\"id\":")?,
            amount: c.field(b",\"amount\":")?,
            pending_id: c.field(b",\"pending_id\":")?,
            user_data_128: c.field(b",\"user_data_128\":")?,
            user_data_64: c.field(b",\"user_data_64\":")?,
            user_data_32: c.field(b",\"user_data_32\":")?,
            timeout: c.field(b",\"timeout\":")?,
            code: c.field(b",\"code\":")?,
            flags: c.field(b",\"flags\":")?,
            timestamp: c.field(b",\"timestamp\":")?,
        };
        c.literal(b"}")?;
        let debit_account = c.account(b",\"debit_account\":{\"id\":")?;
        let credit_account = c.account(b",\"credit_account\":{\"id\":")?;
        c.literal(b"}")?;
        (c.at == body.len()).then_some(Event {
            timestamp,
            event_type,
            ledger,
            transfer,
            debit_account,
            credit_account,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Fast path: serde derive straight into the public types. Integer fields go through
// `uint`, which sees the raw JSON text of the value: that is the only way to get integers
// above u64::MAX exactly out of serde_json (without `arbitrary_precision`, which would change
// `serde_json::Number` for the whole crate).

#[derive(Deserialize)]
#[serde(remote = "Event")]
struct EventWire {
    #[serde(deserialize_with = "uint")]
    timestamp: u64,
    #[serde(rename = "type", deserialize_with = "event_type")]
    event_type: EventType,
    #[serde(deserialize_with = "uint")]
    ledger: u32,
    #[serde(with = "TransferWire")]
    transfer: TransferFields,
    #[serde(with = "AccountWire")]
    debit_account: AccountFields,
    #[serde(with = "AccountWire")]
    credit_account: AccountFields,
}

#[derive(Deserialize)]
#[serde(remote = "TransferFields")]
struct TransferWire {
    #[serde(deserialize_with = "uint")]
    id: u128,
    #[serde(deserialize_with = "uint")]
    amount: u128,
    #[serde(deserialize_with = "uint")]
    pending_id: u128,
    #[serde(deserialize_with = "uint")]
    user_data_128: u128,
    #[serde(deserialize_with = "uint")]
    user_data_64: u64,
    #[serde(deserialize_with = "uint")]
    user_data_32: u32,
    #[serde(deserialize_with = "uint")]
    timeout: u32,
    #[serde(deserialize_with = "uint")]
    code: u16,
    #[serde(deserialize_with = "uint")]
    flags: u16,
    #[serde(deserialize_with = "uint")]
    timestamp: u64,
}

#[derive(Deserialize)]
#[serde(remote = "AccountFields")]
struct AccountWire {
    #[serde(deserialize_with = "uint")]
    id: u128,
    #[serde(deserialize_with = "uint")]
    debits_pending: u128,
    #[serde(deserialize_with = "uint")]
    debits_posted: u128,
    #[serde(deserialize_with = "uint")]
    credits_pending: u128,
    #[serde(deserialize_with = "uint")]
    credits_posted: u128,
    #[serde(deserialize_with = "uint")]
    user_data_128: u128,
    #[serde(deserialize_with = "uint")]
    user_data_64: u64,
    #[serde(deserialize_with = "uint")]
    user_data_32: u32,
    #[serde(deserialize_with = "uint")]
    code: u16,
    #[serde(deserialize_with = "uint")]
    flags: u16,
    #[serde(deserialize_with = "uint")]
    timestamp: u64,
}

/// The unsigned widths the format uses.
trait WireUint: Sized {
    const MAX: u128;
    /// The reason given for a value above `MAX`.
    const OUT_OF_RANGE: &'static str;
    fn from_u128(v: u128) -> Self;
}

macro_rules! wire_uint {
    ($($t:ty),*) => {$(
        impl WireUint for $t {
            const MAX: u128 = <$t>::MAX as u128;
            const OUT_OF_RANGE: &'static str = concat!("out of range for ", stringify!($t));
            fn from_u128(v: u128) -> Self {
                // `parse_uint` has checked `v <= MAX`.
                v as $t
            }
        }
    )*};
}
wire_uint!(u16, u32, u64, u128);

fn uint<'de, D: Deserializer<'de>, T: WireUint>(d: D) -> Result<T, D::Error> {
    let raw = <&RawValue>::deserialize(d)?;
    match parse_uint(raw.get(), T::MAX, T::OUT_OF_RANGE) {
        Ok(v) => Ok(T::from_u128(v)),
        Err(reason) => Err(D::Error::custom(reason)),
    }
}

fn event_type<'de, D: Deserializer<'de>>(d: D) -> Result<EventType, D::Error> {
    struct Name;
    impl Visitor<'_> for Name {
        type Value = EventType;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an event type name")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<EventType, E> {
            EventType::parse(s).ok_or_else(|| E::custom("unknown event type"))
        }
    }
    d.deserialize_str(Name)
}

/// Parses the raw JSON text of an integer field: a number, or a string of decimal digits.
/// Exact over the whole u128 range, since it never goes through a float. The canonical form
/// only (no sign, no leading zero, no exponent), as TigerBeetle writes it.
fn parse_uint(raw: &str, max: u128, out_of_range: &'static str) -> Result<u128, &'static str> {
    let digits = match raw.as_bytes() {
        [b'"', inner @ .., b'"'] => inner,
        [b'-' | b'0'..=b'9', ..] => raw.as_bytes(),
        _ => return Err("expected an integer (number or decimal string)"),
    };
    let value = match digits {
        [] => return Err("empty string"),
        [b'0'] => 0,
        [b'0', ..] if digits.iter().all(u8::is_ascii_digit) => return Err("leading zero"),
        // 19 digits always fit a u64, whose arithmetic is cheaper: the common case.
        _ if digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit) => u128::from(
            digits
                .iter()
                .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')),
        ),
        _ if digits.iter().all(u8::is_ascii_digit) => digits
            .iter()
            .try_fold(0u128, |acc, d| {
                acc.checked_mul(10)?.checked_add(u128::from(d - b'0'))
            })
            .ok_or(out_of_range)?,
        _ => return Err(non_digit_reason(digits)),
    };
    if value > max {
        return Err(out_of_range);
    }
    Ok(value)
}

/// Why `digits`, which holds something other than ASCII digits, is not an integer.
#[cold]
fn non_digit_reason(digits: &[u8]) -> &'static str {
    match digits[0] {
        b'-' => "negative",
        b'+' => "leading '+'",
        _ if digits.iter().any(|d| matches!(d, b'.')) => "fraction",
        _ if digits.iter().any(|d| matches!(d, b'e' | b'E')) => "exponent",
        _ if digits.iter().any(u8::is_ascii_whitespace) => "whitespace",
        _ if digits.contains(&b'\\') => "escape sequence",
        _ => "not a decimal integer",
    }
}

// ---------------------------------------------------------------------------------------------
// Slow path, only after the fast path failed: find which field is wrong. serde_json's own
// errors do not say which object a field belongs to (`id` is in all three), so walk the
// message again, level by level, against a schema of the format.

/// What a field of the format holds.
#[derive(Clone, Copy)]
enum Kind {
    Uint {
        max: u128,
        out_of_range: &'static str,
    },
    EventType,
    Object(&'static [(&'static str, Kind)]),
}

const fn uint_kind<T: WireUint>() -> Kind {
    Kind::Uint {
        max: T::MAX,
        out_of_range: T::OUT_OF_RANGE,
    }
}

const U16: Kind = uint_kind::<u16>();
const U32: Kind = uint_kind::<u32>();
const U64: Kind = uint_kind::<u64>();
const U128: Kind = uint_kind::<u128>();

/// The fields of each object, in the order TigerBeetle writes them (`encode` follows it).
const TRANSFER_SCHEMA: &[(&str, Kind)] = &[
    ("id", U128),
    ("amount", U128),
    ("pending_id", U128),
    ("user_data_128", U128),
    ("user_data_64", U64),
    ("user_data_32", U32),
    ("timeout", U32),
    ("code", U16),
    ("flags", U16),
    ("timestamp", U64),
];
const ACCOUNT_SCHEMA: &[(&str, Kind)] = &[
    ("id", U128),
    ("debits_pending", U128),
    ("debits_posted", U128),
    ("credits_pending", U128),
    ("credits_posted", U128),
    ("user_data_128", U128),
    ("user_data_64", U64),
    ("user_data_32", U32),
    ("code", U16),
    ("flags", U16),
    ("timestamp", U64),
];
const MESSAGE_SCHEMA: &[(&str, Kind)] = &[
    ("timestamp", U64),
    ("type", Kind::EventType),
    ("ledger", U32),
    ("transfer", Kind::Object(TRANSFER_SCHEMA)),
    ("debit_account", Kind::Object(ACCOUNT_SCHEMA)),
    ("credit_account", Kind::Object(ACCOUNT_SCHEMA)),
];

/// Turns a fast-path failure into an error that names the field.
#[cold]
fn explain(body: &[u8], error: &serde_json::Error) -> DecodeError {
    use serde_json::error::Category;
    if matches!(error.classify(), Category::Syntax | Category::Eof) {
        return json_error(error);
    }
    let entries = match serde_json::from_slice::<RawObject>(body) {
        Ok(RawObject(entries)) => entries,
        Err(e) if e.is_data() => {
            return DecodeError::Invalid {
                reason: "the body is not a JSON object".to_owned(),
            }
        }
        Err(e) => return json_error(&e),
    };
    check_object("", &entries, MESSAGE_SCHEMA).unwrap_or_else(|| DecodeError::Invalid {
        reason: quote(&error.to_string()),
    })
}

fn json_error(error: &serde_json::Error) -> DecodeError {
    // serde_json's message is "<reason> at line L column C": keep the reason only.
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    DecodeError::Json {
        reason: quote(message.strip_suffix(&position).unwrap_or(&message)),
        line: error.line(),
        column: error.column(),
    }
}

/// The members of a JSON object in order, duplicates kept, values left unparsed.
struct RawObject<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject<'de>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(RawObject(entries))
            }
        }
        d.deserialize_map(Members)
    }
}

/// The first problem in an object against its schema, if any.
fn check_object(
    prefix: &str,
    entries: &[(String, &RawValue)],
    schema: &[(&str, Kind)],
) -> Option<DecodeError> {
    schema.iter().find_map(|&(name, kind)| {
        let path = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        };
        let mut values = entries.iter().filter(|(key, _)| key == name);
        match (values.next(), values.next()) {
            (None, _) => Some(DecodeError::MissingField { path }),
            (Some(_), Some(_)) => Some(DecodeError::DuplicateField { path }),
            (Some((_, raw)), None) => check_value(path, raw, kind),
        }
    })
}

fn check_value(path: String, raw: &RawValue, kind: Kind) -> Option<DecodeError> {
    let invalid = |path, reason| DecodeError::InvalidField {
        path,
        reason,
        value: quote(raw.get()),
    };
    match kind {
        Kind::Uint { max, out_of_range } => parse_uint(raw.get(), max, out_of_range)
            .err()
            .map(|reason| invalid(path, reason)),
        Kind::EventType => match serde_json::from_str::<String>(raw.get()) {
            Ok(name) if EventType::parse(&name).is_some() => None,
            Ok(name) => Some(DecodeError::UnknownEventType {
                value: quote(&name),
            }),
            Err(_) => Some(invalid(path, "expected an event type name")),
        },
        Kind::Object(schema) => match serde_json::from_str::<RawObject>(raw.get()) {
            Ok(RawObject(entries)) => check_object(&path, &entries, schema),
            Err(_) => Some(invalid(path, "expected an object")),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// AMQP headers. TigerBeetle duplicates a few body fields there for routing; a disagreement
// means a broker plugin or another producer tampered with the message.

/// The routing headers TigerBeetle puts on each message (`None` when absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub event_type: Option<String>,
    pub ledger: Option<i64>,
    pub transfer_code: Option<i64>,
    pub debit_account_code: Option<i64>,
    pub credit_account_code: Option<i64>,
}

impl Headers {
    /// Reads the routing headers; other headers are ignored. Integers may come as any AMQP
    /// integer type (TigerBeetle promotes them to signed types, brokers may convert).
    pub fn from_field_table(table: Option<&FieldTable>) -> Result<Headers, DecodeError> {
        let Some(table) = table else {
            return Ok(Headers::default());
        };
        let table = table.inner();
        let int = |name| table.get(name).map(|v| header_int(name, v)).transpose();
        Ok(Headers {
            event_type: table
                .get("event_type")
                .map(|v| header_string("event_type", v))
                .transpose()?,
            ledger: int("ledger")?,
            transfer_code: int("transfer_code")?,
            debit_account_code: int("debit_account_code")?,
            credit_account_code: int("credit_account_code")?,
        })
    }

    /// Checks every present header against the body.
    pub fn check(&self, event: &Event) -> Result<(), DecodeError> {
        if let Some(name) = &self.event_type {
            if name != event.event_type.as_str() {
                return Err(DecodeError::HeaderMismatch {
                    name: "event_type",
                    header: quote(name),
                    body: event.event_type.as_str().to_owned(),
                });
            }
        }
        let ints = [
            ("ledger", self.ledger, i64::from(event.ledger)),
            (
                "transfer_code",
                self.transfer_code,
                i64::from(event.transfer.code),
            ),
            (
                "debit_account_code",
                self.debit_account_code,
                i64::from(event.debit_account.code),
            ),
            (
                "credit_account_code",
                self.credit_account_code,
                i64::from(event.credit_account.code),
            ),
        ];
        for (name, header, body) in ints {
            match header {
                Some(header) if header != body => {
                    return Err(DecodeError::HeaderMismatch {
                        name,
                        header: header.to_string(),
                        body: body.to_string(),
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn header_string(name: &'static str, value: &AMQPValue) -> Result<String, DecodeError> {
    let wrong = |found: String| DecodeError::HeaderType {
        name,
        expected: "a UTF-8 string",
        found,
    };
    match value {
        AMQPValue::ShortString(s) => Ok(s.as_str().to_owned()),
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes())
            .map(str::to_owned)
            .map_err(|_| wrong("a non-UTF-8 long string".to_owned())),
        other => Err(wrong(other.get_type().to_string())),
    }
}

fn header_int(name: &'static str, value: &AMQPValue) -> Result<i64, DecodeError> {
    match *value {
        AMQPValue::ShortShortInt(v) => Ok(v.into()),
        AMQPValue::ShortShortUInt(v) => Ok(v.into()),
        AMQPValue::ShortInt(v) => Ok(v.into()),
        AMQPValue::ShortUInt(v) => Ok(v.into()),
        AMQPValue::LongInt(v) => Ok(v.into()),
        AMQPValue::LongUInt(v) => Ok(v.into()),
        AMQPValue::LongLongInt(v) => Ok(v),
        ref other => Err(DecodeError::HeaderType {
            name,
            expected: "an integer",
            found: other.get_type().to_string(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding: the exact bytes `tigerbeetle amqp` publishes. Zig's `std.json.stringify` with
// `emit_nonportable_numbers_as_strings` writes an integer as a string when it is outside
// (-2^53, 2^53) — note 2^53 itself is already a string — and as a number otherwise.

/// The smallest integer TigerBeetle writes as a JSON string.
pub const STRING_THRESHOLD: u128 = 1 << 53;

/// The longest encoding: every integer at its maximum, and a 17-character event type.
const ENCODED_LEN_MAX: usize = 1425;

/// Encodes an event as TigerBeetle does: minified, TigerBeetle's field order.
pub fn encode(event: &Event) -> String {
    let mut out = String::with_capacity(ENCODED_LEN_MAX);
    encode_into(event, &mut out);
    out
}

/// [`encode`], appending to `out` (lets a caller reuse one buffer).
pub fn encode_into(event: &Event, out: &mut String) {
    encode_with(event, out, &mut |v| v >= STRING_THRESHOLD);
}

/// Encodes with `as_string` deciding, per integer, string or number: tests vary it to
/// produce the other representations the decoder must accept.
fn encode_with(event: &Event, out: &mut String, as_string: &mut impl FnMut(u128) -> bool) {
    let mut int = |out: &mut String, key: &str, v: u128| {
        out.push_str(key);
        let quoted = as_string(v);
        if quoted {
            out.push('"');
        }
        push_decimal(out, v);
        if quoted {
            out.push('"');
        }
    };
    int(out, "{\"timestamp\":", event.timestamp.into());
    out.push_str(",\"type\":\"");
    out.push_str(event.event_type.as_str());
    out.push('"');
    int(out, ",\"ledger\":", event.ledger.into());

    let t = &event.transfer;
    int(out, ",\"transfer\":{\"id\":", t.id);
    int(out, ",\"amount\":", t.amount);
    int(out, ",\"pending_id\":", t.pending_id);
    int(out, ",\"user_data_128\":", t.user_data_128);
    int(out, ",\"user_data_64\":", t.user_data_64.into());
    int(out, ",\"user_data_32\":", t.user_data_32.into());
    int(out, ",\"timeout\":", t.timeout.into());
    int(out, ",\"code\":", t.code.into());
    int(out, ",\"flags\":", t.flags.into());
    int(out, ",\"timestamp\":", t.timestamp.into());
    out.push('}');

    for (key, a) in [
        (",\"debit_account\":{\"id\":", &event.debit_account),
        (",\"credit_account\":{\"id\":", &event.credit_account),
    ] {
        int(out, key, a.id);
        int(out, ",\"debits_pending\":", a.debits_pending);
        int(out, ",\"debits_posted\":", a.debits_posted);
        int(out, ",\"credits_pending\":", a.credits_pending);
        int(out, ",\"credits_posted\":", a.credits_posted);
        int(out, ",\"user_data_128\":", a.user_data_128);
        int(out, ",\"user_data_64\":", a.user_data_64.into());
        int(out, ",\"user_data_32\":", a.user_data_32.into());
        int(out, ",\"code\":", a.code.into());
        int(out, ",\"flags\":", a.flags.into());
        int(out, ",\"timestamp\":", a.timestamp.into());
        out.push('}');
    }
    out.push('}');
}

/// Appends `v` in decimal, without `fmt` (u128 `Display` divides in 128 bits per digit).
fn push_decimal(out: &mut String, v: u128) {
    const CHUNK: u128 = 10_000_000_000_000_000_000; // 10^19, the largest power of 10 in a u64
    let mut buf = [0u8; 39]; // u128::MAX has 39 digits
    let mut end = buf.len();
    let mut write_u64 = |mut n: u64, min_digits: usize, end: &mut usize| {
        let start = *end;
        while n > 0 || start - *end < min_digits.max(1) {
            *end -= 1;
            buf[*end] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    // Peel 19-digit chunks while the rest is too large for u64 arithmetic (at most twice).
    let mut rest = v;
    while rest > u128::from(u64::MAX) {
        write_u64((rest % CHUNK) as u64, 19, &mut end);
        rest /= CHUNK;
    }
    write_u64(rest as u64, 1, &mut end);
    out.push_str(std::str::from_utf8(&buf[end..]).expect("ASCII digits"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{LongString, ShortString};
    use proptest::prelude::*;
    use serde_json::Value;

    /// The formatted example of `docs/operating/cdc.md`.
    const DOC_EXAMPLE: &str = r#"{
      "timestamp": "1745328372758695656",
      "type": "single_phase",
      "ledger": 2,
      "transfer": {
        "id": 9082709,
        "amount": 3794,
        "pending_id": 0,
        "user_data_128": "79248595801719937611592367840129079151",
        "user_data_64": "13615171707598273871",
        "user_data_32": 3229992513,
        "timeout": 0,
        "code": 20295,
        "flags": 0,
        "timestamp": "1745328372758695656"
      },
      "debit_account": {
        "id": 3750,
        "debits_pending": 0,
        "debits_posted": 8463768,
        "credits_pending": 0,
        "credits_posted": 8861179,
        "user_data_128": "118966247877720884212341541320399553321",
        "user_data_64": "526432537153007844",
        "user_data_32": 4157247332,
        "code": 1,
        "flags": 0,
        "timestamp": "1745328270103398016"
      },
      "credit_account": {
        "id": 6765,
        "debits_pending": 0,
        "debits_posted": 8669204,
        "credits_pending": 0,
        "credits_posted": 8637251,
        "user_data_128": "43670023860556310170878798978091998141",
        "user_data_64": "12485093662256535374",
        "user_data_32": 1924162092,
        "code": 1,
        "flags": 0,
        "timestamp": "1745328270103401031"
      }
    }"#;

    fn doc_event() -> Event {
        Event {
            timestamp: 1745328372758695656,
            event_type: EventType::SinglePhase,
            ledger: 2,
            transfer: TransferFields {
                id: 9082709,
                amount: 3794,
                pending_id: 0,
                user_data_128: 79248595801719937611592367840129079151,
                user_data_64: 13615171707598273871,
                user_data_32: 3229992513,
                timeout: 0,
                code: 20295,
                flags: 0,
                timestamp: 1745328372758695656,
            },
            debit_account: AccountFields {
                id: 3750,
                debits_pending: 0,
                debits_posted: 8463768,
                credits_pending: 0,
                credits_posted: 8861179,
                user_data_128: 118966247877720884212341541320399553321,
                user_data_64: 526432537153007844,
                user_data_32: 4157247332,
                code: 1,
                flags: 0,
                timestamp: 1745328270103398016,
            },
            credit_account: AccountFields {
                id: 6765,
                debits_pending: 0,
                debits_posted: 8669204,
                credits_pending: 0,
                credits_posted: 8637251,
                user_data_128: 43670023860556310170878798978091998141,
                user_data_64: 12485093662256535374,
                user_data_32: 1924162092,
                code: 1,
                flags: 0,
                timestamp: 1745328270103401031,
            },
        }
    }

    /// Every leaf field of the format, as a path, with its kind.
    fn leaf_paths() -> Vec<(String, Kind)> {
        fn walk(prefix: &str, schema: &[(&str, Kind)], out: &mut Vec<(String, Kind)>) {
            for &(name, kind) in schema {
                let path = if prefix.is_empty() {
                    name.to_owned()
                } else {
                    format!("{prefix}.{name}")
                };
                match kind {
                    Kind::Object(inner) => walk(&path, inner, out),
                    _ => out.push((path, kind)),
                }
            }
        }
        let mut out = Vec::new();
        walk("", MESSAGE_SCHEMA, &mut out);
        out
    }

    fn uint_paths() -> Vec<(String, u128)> {
        leaf_paths()
            .into_iter()
            .filter_map(|(path, kind)| match kind {
                Kind::Uint { max, .. } => Some((path, max)),
                _ => None,
            })
            .collect()
    }

    fn pointer(path: &str) -> String {
        format!("/{}", path.replace('.', "/"))
    }

    /// The doc example, minified, with the field at `path` set to the raw JSON `raw`.
    fn with_field(path: &str, raw: &str) -> Vec<u8> {
        let mut doc: Value = serde_json::from_str(&encode(&doc_event())).unwrap();
        *doc.pointer_mut(&pointer(path)).unwrap() = Value::String("@@".into());
        serde_json::to_string(&doc)
            .unwrap()
            .replacen("\"@@\"", raw, 1)
            .into_bytes()
    }

    /// The doc example, minified, edited by `edit`.
    fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut doc: Value = serde_json::from_str(&encode(&doc_event())).unwrap();
        edit(&mut doc);
        serde_json::to_vec(&doc).unwrap()
    }

    /// The decimal value of the integer at `path` in `event`.
    fn field_decimal(event: &Event, path: &str) -> String {
        let mut all_strings = String::new();
        encode_with(event, &mut all_strings, &mut |_| true);
        let doc: Value = serde_json::from_str(&all_strings).unwrap();
        doc.pointer(&pointer(path))
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn assert_invalid(body: &[u8], path: &str, reason: &str) {
        match decode(body) {
            Err(DecodeError::InvalidField {
                path: p, reason: r, ..
            }) if p == path && r == reason => {}
            other => panic!("{path}: expected `{reason}`, got {other:?}"),
        }
    }

    #[test]
    fn decodes_the_documented_example() {
        assert_eq!(decode(DOC_EXAMPLE.as_bytes()), Ok(doc_event()));
    }

    #[test]
    fn encodes_the_documented_example_byte_for_byte() {
        let minified: String = DOC_EXAMPLE.split_whitespace().collect();
        assert_eq!(encode(&doc_event()), minified);
    }

    #[test]
    fn encode_switches_to_strings_at_two_to_the_53() {
        let mut event = doc_event();
        event.transfer.amount = STRING_THRESHOLD - 1;
        assert!(encode(&event).contains(r#""amount":9007199254740991,"#));
        event.transfer.amount = STRING_THRESHOLD;
        assert!(encode(&event).contains(r#""amount":"9007199254740992","#));
    }

    #[test]
    fn every_integer_field_accepts_its_maximum_as_number_and_string() {
        for (path, max) in uint_paths() {
            for raw in [max.to_string(), format!("\"{max}\"")] {
                let event = decode(&with_field(&path, &raw)).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(
                    field_decimal(&event, &path),
                    max.to_string(),
                    "{path} = {raw}"
                );
            }
        }
    }

    #[test]
    fn every_integer_field_rejects_its_maximum_plus_one() {
        let u128_max_plus_one = "340282366920938463463374607431768211456";
        for (path, max) in uint_paths() {
            let over = max
                .checked_add(1)
                .map_or(u128_max_plus_one.to_owned(), |v| v.to_string());
            for raw in [over.clone(), format!("\"{over}\"")] {
                let body = with_field(&path, &raw);
                match decode(&body) {
                    Err(DecodeError::InvalidField {
                        path: p, reason, ..
                    }) => {
                        assert_eq!(p, path);
                        assert!(reason.starts_with("out of range for u"), "{reason}");
                    }
                    other => panic!("{path} = {raw}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn integers_beyond_f64_precision_are_exact() {
        let cases: [u128; 5] = [
            STRING_THRESHOLD,
            STRING_THRESHOLD + 1,
            u64::MAX.into(),
            u128::from(u64::MAX) + 1,
            u128::MAX - 1,
        ];
        for v in cases {
            for raw in [v.to_string(), format!("\"{v}\"")] {
                let event = decode(&with_field("transfer.amount", &raw)).unwrap();
                assert_eq!(event.transfer.amount, v, "{raw}");
            }
        }
        for raw in ["18446744073709551615", "\"18446744073709551615\""] {
            let event = decode(&with_field("transfer.user_data_64", raw)).unwrap();
            assert_eq!(event.transfer.user_data_64, u64::MAX);
        }
    }

    #[test]
    fn non_canonical_integers_are_rejected_with_a_reason() {
        let cases = [
            ("-1", "negative"),
            ("\"-1\"", "negative"),
            ("-0", "negative"),
            ("1.5", "fraction"),
            ("1.0", "fraction"),
            ("\"1.5\"", "fraction"),
            ("1e3", "exponent"),
            ("1E3", "exponent"),
            ("\"1e3\"", "exponent"),
            ("\"+1\"", "leading '+'"),
            ("\"\"", "empty string"),
            ("\" 1\"", "whitespace"),
            ("\"1 \"", "whitespace"),
            ("\"01\"", "leading zero"),
            ("\"\\u0031\"", "escape sequence"),
            ("\"12a\"", "not a decimal integer"),
            ("true", "expected an integer (number or decimal string)"),
            ("null", "expected an integer (number or decimal string)"),
            ("[1]", "expected an integer (number or decimal string)"),
            ("{}", "expected an integer (number or decimal string)"),
        ];
        for (path, _) in uint_paths() {
            for (raw, reason) in cases {
                assert_invalid(&with_field(&path, raw), &path, reason);
            }
        }
    }

    #[test]
    fn every_missing_field_is_named() {
        let objects = ["transfer", "debit_account", "credit_account"];
        let paths = leaf_paths().into_iter().map(|(p, _)| p);
        for path in paths.chain(objects.map(String::from)) {
            let body = edited(|doc| {
                let (parent, name) = match path.rsplit_once('.') {
                    Some((parent, name)) => (pointer(parent), name),
                    None => (String::new(), path.as_str()),
                };
                let object = doc.pointer_mut(&parent).unwrap().as_object_mut().unwrap();
                assert!(object.remove(name).is_some(), "{path}");
            });
            let expected = DecodeError::MissingField { path: path.clone() };
            assert_eq!(decode(&body), Err(expected.clone()));
            assert_eq!(expected.to_string(), format!("missing field {path}"));
        }
    }

    #[test]
    fn a_duplicate_field_is_named() {
        let body = encode(&doc_event()).replacen(
            "\"pending_id\":0",
            "\"pending_id\":0,\"pending_id\":1",
            1,
        );
        assert_eq!(
            decode(body.as_bytes()),
            Err(DecodeError::DuplicateField {
                path: "transfer.pending_id".into()
            })
        );
    }

    #[test]
    fn unknown_fields_are_tolerated_at_every_level() {
        for parent in ["", "/transfer", "/debit_account", "/credit_account"] {
            let body = edited(|doc| {
                let object = doc.pointer_mut(parent).unwrap().as_object_mut().unwrap();
                object.insert(
                    "added_later".into(),
                    serde_json::json!({"a": [1, "x", null]}),
                );
                object.insert("also_new".into(), serde_json::json!(-1.5e300));
            });
            assert_eq!(decode(&body), Ok(doc_event()), "in {parent:?}");
        }
    }

    #[test]
    fn event_types_are_decoded_by_name() {
        for t in EventType::ALL {
            let event = decode(&with_field("type", &format!("\"{t}\""))).unwrap();
            assert_eq!(event.event_type, t);
        }
    }

    #[test]
    fn an_unknown_event_type_is_named() {
        assert_eq!(
            decode(&with_field("type", "\"two_phase_undone\"")),
            Err(DecodeError::UnknownEventType {
                value: "two_phase_undone".into()
            })
        );
        assert_invalid(
            &with_field("type", "1"),
            "type",
            "expected an event type name",
        );
    }

    #[test]
    fn malformed_json_is_reported_with_position() {
        let body = encode(&doc_event());
        let cases = [&body[..body.len() - 1], "", "{\"timestamp\":1,}"];
        for case in cases {
            match decode(case.as_bytes()) {
                Err(DecodeError::Json { reason, line, .. }) => {
                    assert!(
                        !reason.is_empty() && !reason.contains(" at line "),
                        "{reason}"
                    );
                    assert!(line >= 1);
                }
                other => panic!("{case:?}: {other:?}"),
            }
        }
        let trailing = format!("{body} x");
        assert!(matches!(
            decode(trailing.as_bytes()),
            Err(DecodeError::Json { .. })
        ));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_rejected() {
        for body in ["[]", "1", "\"x\"", "null"] {
            assert!(
                matches!(decode(body.as_bytes()), Err(DecodeError::Invalid { .. })),
                "{body}"
            );
        }
        assert_invalid(
            &with_field("transfer", "[]"),
            "transfer",
            "expected an object",
        );
    }

    #[test]
    fn malformed_json_wins_over_a_bad_field_before_it() {
        let body = encode(&doc_event()).replacen("\"ledger\":2", "\"ledger\":-2", 1);
        let body = &body[..body.len() - 1];
        assert!(matches!(
            decode(body.as_bytes()),
            Err(DecodeError::Json { .. })
        ));
    }

    #[test]
    fn zero_timestamps_break_an_invariant() {
        let paths = [
            "timestamp",
            "transfer.timestamp",
            "debit_account.timestamp",
            "credit_account.timestamp",
        ];
        for path in paths {
            match decode(&with_field(path, "0")) {
                Err(DecodeError::Invariant { path: p, .. }) => assert_eq!(p, path),
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn quoted_values_are_truncated() {
        let long = format!("\"{}\"", "7".repeat(500));
        let error = decode(&with_field("transfer.id", &long)).unwrap_err();
        let DecodeError::InvalidField { value, .. } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(value.chars().count(), QUOTE_LEN_MAX);
        assert!(value.ends_with("..."));
        assert!(error.to_string().len() < 200, "{error}");

        let long_type = format!("\"{}\"", "é".repeat(100));
        let error = decode(&with_field("type", &long_type)).unwrap_err();
        let DecodeError::UnknownEventType { value } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(value.chars().count(), QUOTE_LEN_MAX);
    }

    #[test]
    fn the_schema_matches_the_encoder_field_order() {
        fn keys(raw: &str) -> Vec<String> {
            let RawObject(entries) = serde_json::from_str(raw).unwrap();
            entries.into_iter().map(|(k, _)| k).collect()
        }
        fn names(schema: &[(&str, Kind)]) -> Vec<String> {
            schema.iter().map(|(n, _)| n.to_string()).collect()
        }
        let body = encode(&doc_event());
        let RawObject(top) = serde_json::from_str(&body).unwrap();
        assert_eq!(keys(&body), names(MESSAGE_SCHEMA));
        for (key, raw) in &top {
            match key.as_str() {
                "transfer" => assert_eq!(keys(raw.get()), names(TRANSFER_SCHEMA)),
                "debit_account" | "credit_account" => {
                    assert_eq!(keys(raw.get()), names(ACCOUNT_SCHEMA))
                }
                _ => {}
            }
        }
    }

    #[test]
    fn the_largest_message_is_encoded_len_max_long() {
        let account = AccountFields {
            id: u128::MAX,
            debits_pending: u128::MAX,
            debits_posted: u128::MAX,
            credits_pending: u128::MAX,
            credits_posted: u128::MAX,
            user_data_128: u128::MAX,
            user_data_64: u64::MAX,
            user_data_32: u32::MAX,
            code: u16::MAX,
            flags: u16::MAX,
            timestamp: u64::MAX,
        };
        let event = Event {
            timestamp: u64::MAX,
            event_type: EventType::TwoPhasePending, // one of the two longest names
            ledger: u32::MAX,
            transfer: TransferFields {
                id: u128::MAX,
                amount: u128::MAX,
                pending_id: u128::MAX,
                user_data_128: u128::MAX,
                user_data_64: u64::MAX,
                user_data_32: u32::MAX,
                timeout: u32::MAX,
                code: u16::MAX,
                flags: u16::MAX,
                timestamp: u64::MAX,
            },
            debit_account: account,
            credit_account: account,
        };
        let body = encode(&event);
        assert_eq!(body.len(), ENCODED_LEN_MAX);
        assert_eq!(decode(body.as_bytes()), Ok(event));
    }

    #[test]
    fn event_type_names_and_discriminants_round_trip() {
        for (i, t) in EventType::ALL.into_iter().enumerate() {
            assert_eq!(t as usize, i);
            assert_eq!(EventType::from_u8(t as u8), Some(t));
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::from_u8(5), None);
        assert_eq!(EventType::parse("Single_Phase"), None);
        assert_eq!(EventType::TwoPhaseExpired.as_str(), "two_phase_expired");
    }

    /// The headers exactly as TigerBeetle's `Message.header()` writes them.
    fn tigerbeetle_headers(event: &Event) -> FieldTable {
        let mut table = FieldTable::default();
        let t = event.event_type.as_str();
        table.insert(
            "event_type".into(),
            AMQPValue::LongString(LongString::from(t)),
        );
        table.insert("ledger".into(), AMQPValue::LongLongInt(event.ledger.into()));
        let codes = [
            ("transfer_code", event.transfer.code),
            ("debit_account_code", event.debit_account.code),
            ("credit_account_code", event.credit_account.code),
        ];
        for (name, code) in codes {
            table.insert(name.into(), AMQPValue::LongInt(code.into()));
        }
        table.insert("app_id".into(), AMQPValue::LongString("tigerbeetle".into()));
        table
    }

    #[test]
    fn headers_are_read_from_a_tigerbeetle_table() {
        let event = doc_event();
        let headers = Headers::from_field_table(Some(&tigerbeetle_headers(&event))).unwrap();
        let expected = Headers {
            event_type: Some("single_phase".into()),
            ledger: Some(2),
            transfer_code: Some(20295),
            debit_account_code: Some(1),
            credit_account_code: Some(1),
        };
        assert_eq!(headers, expected);
        assert_eq!(headers.check(&event), Ok(()));
        assert_eq!(Headers::from_field_table(None), Ok(Headers::default()));
        assert_eq!(Headers::default().check(&event), Ok(()));
    }

    #[test]
    fn headers_accept_any_integer_type_and_short_strings() {
        let values = [
            AMQPValue::ShortShortInt(7),
            AMQPValue::ShortShortUInt(7),
            AMQPValue::ShortInt(7),
            AMQPValue::ShortUInt(7),
            AMQPValue::LongInt(7),
            AMQPValue::LongUInt(7),
            AMQPValue::LongLongInt(7),
        ];
        for value in values {
            let mut table = FieldTable::default();
            table.insert("ledger".into(), value.clone());
            table.insert(
                "event_type".into(),
                AMQPValue::ShortString(ShortString::from("x")),
            );
            let headers = Headers::from_field_table(Some(&table)).unwrap();
            assert_eq!(headers.ledger, Some(7), "{value:?}");
            assert_eq!(headers.event_type.as_deref(), Some("x"));
        }
    }

    #[test]
    fn a_header_of_the_wrong_type_is_named() {
        let names = [
            "event_type",
            "ledger",
            "transfer_code",
            "debit_account_code",
            "credit_account_code",
        ];
        for name in names {
            let mut table = tigerbeetle_headers(&doc_event());
            table.insert(name.into(), AMQPValue::Boolean(true));
            match Headers::from_field_table(Some(&table)) {
                Err(DecodeError::HeaderType { name: n, found, .. }) => {
                    assert_eq!(n, name);
                    assert_eq!(found, "Boolean");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut table = FieldTable::default();
        let bad_utf8 = AMQPValue::LongString(LongString::from(vec![0xff, 0xfe]));
        table.insert("event_type".into(), bad_utf8);
        assert!(matches!(
            Headers::from_field_table(Some(&table)),
            Err(DecodeError::HeaderType {
                name: "event_type",
                ..
            })
        ));
    }

    #[test]
    fn each_header_mismatch_names_the_header_and_both_values() {
        let event = doc_event();
        let good = Headers::from_field_table(Some(&tigerbeetle_headers(&event))).unwrap();
        let cases = [
            (
                Headers {
                    event_type: Some("two_phase_posted".into()),
                    ..good.clone()
                },
                "event_type",
                "two_phase_posted",
                "single_phase",
            ),
            (
                Headers {
                    ledger: Some(3),
                    ..good.clone()
                },
                "ledger",
                "3",
                "2",
            ),
            (
                Headers {
                    transfer_code: Some(-1),
                    ..good.clone()
                },
                "transfer_code",
                "-1",
                "20295",
            ),
            (
                Headers {
                    debit_account_code: Some(2),
                    ..good.clone()
                },
                "debit_account_code",
                "2",
                "1",
            ),
            (
                Headers {
                    credit_account_code: Some(70000),
                    ..good.clone()
                },
                "credit_account_code",
                "70000",
                "1",
            ),
        ];
        for (headers, name, header, body) in cases {
            let error = headers.check(&event).unwrap_err();
            assert_eq!(
                error,
                DecodeError::HeaderMismatch {
                    name,
                    header: header.into(),
                    body: body.into()
                }
            );
            let text = error.to_string();
            assert!(text.contains(name) && text.contains(header) && text.contains(body));
        }
    }

    #[test]
    fn decode_delivery_checks_the_headers() {
        let event = doc_event();
        let body = encode(&event);
        let mut table = tigerbeetle_headers(&event);
        assert_eq!(decode_delivery(body.as_bytes(), Some(&table)), Ok(event));
        assert_eq!(decode_delivery(body.as_bytes(), None), Ok(event));
        table.insert("ledger".into(), AMQPValue::LongLongInt(9));
        assert!(matches!(
            decode_delivery(body.as_bytes(), Some(&table)),
            Err(DecodeError::HeaderMismatch { name: "ledger", .. })
        ));
    }

    /// Integers biased towards the edges that matter: 0, around 2^53, around 2^64, max.
    fn edgy_u128() -> BoxedStrategy<u128> {
        prop_oneof![
            any::<u128>(),
            any::<u64>().prop_map(u128::from),
            0..=1000u128,
            (STRING_THRESHOLD - 3)..=(STRING_THRESHOLD + 3),
            (u128::from(u64::MAX) - 3)..=(u128::from(u64::MAX) + 3),
            (u128::MAX - 3)..=u128::MAX,
        ]
        .boxed()
    }

    /// `edgy_u128` truncated to a narrower width (keeps 0, max and 2^53 ± 3 for u64).
    fn edgy<T: WireUint + std::fmt::Debug + 'static>() -> BoxedStrategy<T> {
        edgy_u128().prop_map(|v| T::from_u128(v & T::MAX)).boxed()
    }

    // Boxed: unboxed, the nested strategy trees overflow the test thread's stack in debug.
    fn any_transfer() -> BoxedStrategy<TransferFields> {
        let ids = (edgy(), edgy(), edgy(), edgy());
        let rest = (edgy(), edgy(), edgy(), edgy(), edgy(), 1..=u64::MAX);
        (ids, rest)
            .prop_map(|((id, amount, pending_id, user_data_128), rest)| {
                let (user_data_64, user_data_32, timeout, code, flags, timestamp) = rest;
                TransferFields {
                    id,
                    amount,
                    pending_id,
                    user_data_128,
                    user_data_64,
                    user_data_32,
                    timeout,
                    code,
                    flags,
                    timestamp,
                }
            })
            .boxed()
    }

    fn any_account() -> BoxedStrategy<AccountFields> {
        let big = (edgy(), edgy(), edgy(), edgy(), edgy(), edgy());
        let rest = (edgy(), edgy(), edgy(), edgy(), 1..=u64::MAX);
        (big, rest)
            .prop_map(|(big, rest)| {
                let (
                    id,
                    debits_pending,
                    debits_posted,
                    credits_pending,
                    credits_posted,
                    user_data_128,
                ) = big;
                let (user_data_64, user_data_32, code, flags, timestamp) = rest;
                AccountFields {
                    id,
                    debits_pending,
                    debits_posted,
                    credits_pending,
                    credits_posted,
                    user_data_128,
                    user_data_64,
                    user_data_32,
                    code,
                    flags,
                    timestamp,
                }
            })
            .boxed()
    }

    fn any_event() -> BoxedStrategy<Event> {
        let head = (1..=u64::MAX, 0..5u8, edgy());
        (head, any_transfer(), any_account(), any_account())
            .prop_map(
                |((timestamp, t, ledger), transfer, debit_account, credit_account)| Event {
                    timestamp,
                    event_type: EventType::from_u8(t).unwrap(),
                    ledger,
                    transfer,
                    debit_account,
                    credit_account,
                },
            )
            .boxed()
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_the_identity(event in any_event()) {
            prop_assert_eq!(decode(encode(&event).as_bytes()), Ok(event));
        }

        #[test]
        fn numbers_and_strings_decode_the_same(event in any_event(), mut bits in any::<u64>()) {
            // One bit per integer field (34 of them) picks its representation.
            let mut body = String::new();
            encode_with(&event, &mut body, &mut |_| {
                bits = bits.rotate_right(1);
                bits & 1 == 1
            });
            prop_assert_eq!(decode(body.as_bytes()), Ok(event));
        }

        #[test]
        fn canonical_layout_takes_the_cursor_path(event in any_event(), mut bits in any::<u64>()) {
            prop_assert_eq!(canonical::decode(encode(&event).as_bytes()), Some(event));
            // Numbers as strings and strings as numbers: the same event, or left to serde.
            let mut body = String::new();
            encode_with(&event, &mut body, &mut |_| {
                bits = bits.rotate_right(1);
                bits & 1 == 1
            });
            prop_assert_eq!(canonical::decode(body.as_bytes()), Some(event));
        }

        #[test]
        fn cursor_path_never_accepts_what_serde_rejects(event in any_event(), cut in 0usize..1500, byte in any::<u8>()) {
            // Damage one byte: the cursor path must agree with serde or step aside.
            let mut body = encode(&event).into_bytes();
            let i = cut % body.len();
            body[i] = byte;
            if let Some(fast) = canonical::decode(&body) {
                let mut de = serde_json::Deserializer::from_slice(&body);
                let slow = EventWire::deserialize(&mut de).and_then(|e| de.end().map(|()| e));
                prop_assert_eq!(Some(fast), slow.ok());
            }
        }

        #[test]
        fn push_decimal_agrees_with_display(v in edgy_u128()) {
            let mut out = String::new();
            push_decimal(&mut out, v);
            prop_assert_eq!(out, v.to_string());
        }
    }
}
