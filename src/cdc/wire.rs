//! The serde decoding path: serde derive straight into the public types, taken when the
//! message is not in TigerBeetle's exact layout (`canonical`). Integer fields go through `uint`,
//! which sees the raw JSON text of the value: that is the only way to get integers above
//! u64::MAX exactly out of serde_json (without `arbitrary_precision`, which would change
//! `serde_json::Number` for the whole crate).

use serde::de::{self, Deserializer, Error as _, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{AccountFields, Event, EventType, TransferFields};

#[derive(Deserialize)]
#[serde(remote = "Event")]
pub(super) struct EventWire {
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
pub(super) trait WireUint: Sized {
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
pub(super) fn parse_uint(
    raw: &str,
    max: u128,
    out_of_range: &'static str,
) -> Result<u128, &'static str> {
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
