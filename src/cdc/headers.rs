//! The AMQP headers of a CDC delivery. TigerBeetle duplicates a few body fields there for
//! routing; a disagreement means a broker plugin or another producer tampered with the message.

use lapin::types::{AMQPValue, FieldTable};

use super::{quote, DecodeError, Event};

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
