//! The slow path, taken only after the serde path failed: find which field is wrong.
//! serde_json's own errors do not say which object a field belongs to (`id` is in all three),
//! so walk the message again, level by level, against a schema of the format.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::wire::{parse_uint, WireUint};
use super::{quote, DecodeError, EventType};

/// What a field of the format holds.
#[derive(Clone, Copy)]
pub(super) enum Kind {
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
pub(super) const TRANSFER_SCHEMA: &[(&str, Kind)] = &[
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
pub(super) const ACCOUNT_SCHEMA: &[(&str, Kind)] = &[
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
pub(super) const MESSAGE_SCHEMA: &[(&str, Kind)] = &[
    ("timestamp", U64),
    ("type", Kind::EventType),
    ("ledger", U32),
    ("transfer", Kind::Object(TRANSFER_SCHEMA)),
    ("debit_account", Kind::Object(ACCOUNT_SCHEMA)),
    ("credit_account", Kind::Object(ACCOUNT_SCHEMA)),
];

/// Turns a fast-path failure into an error that names the field.
#[cold]
pub(super) fn explain(body: &[u8], error: &serde_json::Error) -> DecodeError {
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
pub(super) struct RawObject<'a>(pub(super) Vec<(String, &'a RawValue)>);

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
