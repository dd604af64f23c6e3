//! Unit tests of the CDC codec: the documented example, every field's limits and reasons,
//! the headers, and properties of the three decoding paths against the encoder.

use super::canonical;
use super::encode::{encode_with, push_decimal, ENCODED_LEN_MAX};
use super::explain::{Kind, RawObject, ACCOUNT_SCHEMA, MESSAGE_SCHEMA, TRANSFER_SCHEMA};
use super::wire::{EventWire, WireUint};
use super::*;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
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
        // Timestamps stop below 2^63 (the lake stores them signed); one above is refused.
        let max = if path.ends_with("timestamp") {
            let above = u128::from(TIMESTAMP_MAX) + 1;
            assert!(
                matches!(
                    decode(&with_field(&path, &above.to_string())),
                    Err(DecodeError::Invariant { .. })
                ),
                "{path} = {above}"
            );
            u128::from(TIMESTAMP_MAX)
        } else {
            max
        };
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
    let body =
        encode(&doc_event()).replacen("\"pending_id\":0", "\"pending_id\":0,\"pending_id\":1", 1);
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
    // The lake stores timestamps below 2^63: one above is refused, naming the field.
    match decode(body.as_bytes()) {
        Err(DecodeError::Invariant { path, .. }) => assert_eq!(path, "timestamp"),
        other => panic!("{other:?}"),
    }
    let mut event = event;
    event.timestamp = TIMESTAMP_MAX;
    event.transfer.timestamp = TIMESTAMP_MAX;
    event.debit_account.timestamp = TIMESTAMP_MAX;
    event.credit_account.timestamp = TIMESTAMP_MAX;
    assert_eq!(decode(encode(&event).as_bytes()), Ok(event));
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
    let rest = (edgy(), edgy(), edgy(), edgy(), edgy(), 1..=TIMESTAMP_MAX);
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
    let rest = (edgy(), edgy(), edgy(), edgy(), 1..=TIMESTAMP_MAX);
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
    let head = (1..=TIMESTAMP_MAX, 0..5u8, edgy());
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

/// The seed corpus of the fuzz target (`fuzz/`), decoded on every test run: `valid_*` files
/// decode (and re-encode to the same event), `bad_*` files are rejected with a reason; none
/// panics, with or without headers.
#[test]
fn the_fuzz_corpus_decodes_without_panicking() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode_delivery");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    assert!(entries.len() >= 20, "{} corpus files", entries.len());
    let mut headers = FieldTable::default();
    headers.insert("transfer_code".into(), AMQPValue::Boolean(true));
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&path).unwrap();
        let with_headers = decode_delivery(&body, Some(&headers));
        assert!(
            matches!(
                with_headers,
                Err(DecodeError::HeaderType {
                    name: "transfer_code",
                    ..
                })
            ),
            "{name}: {with_headers:?}"
        );
        match decode_delivery(&body, None) {
            Ok(event) => {
                assert!(name.starts_with("valid_"), "{name} decodes: {event:?}");
                assert_eq!(decode(encode(&event).as_bytes()), Ok(event), "{name}");
            }
            Err(error) => {
                assert!(name.starts_with("bad_"), "{name}: {error}");
                let reason = error.to_string();
                assert!(!reason.is_empty(), "{name}");
                assert!(
                    !matches!(&error, DecodeError::Invalid { reason } if reason.is_empty()),
                    "{name}"
                );
            }
        }
    }
}
