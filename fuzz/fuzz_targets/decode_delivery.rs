//! Fuzzes `cdc::decode_delivery`: any body, with no headers or with routing headers taken from
//! the input, must give an event or an error with a reason, never a panic.
#![no_main]

use lapin::types::{AMQPValue, FieldTable, ShortString};
use ledgerlake::cdc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte, when present, picks the headers; the rest is the body.
    let (selector, body) = match data.split_first() {
        Some((&selector, body)) => (selector, body),
        None => (0, data),
    };
    let mut table = FieldTable::default();
    if selector & 1 == 1 {
        table.insert(
            "event_type".into(),
            AMQPValue::ShortString(ShortString::from("single_phase")),
        );
    }
    if selector & 2 == 2 {
        table.insert(
            "ledger".into(),
            AMQPValue::LongLongInt(i64::from(selector >> 2)),
        );
    }
    if selector & 4 == 4 {
        table.insert("transfer_code".into(), AMQPValue::Boolean(true));
    }
    let headers = (selector != 0).then_some(&table);
    match cdc::decode_delivery(body, headers) {
        Ok(event) => {
            // What decodes re-encodes to a body that decodes to the same event.
            let again = cdc::decode(cdc::encode(&event).as_bytes());
            assert_eq!(again, Ok(event));
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
