//! The fastest decoding path: the exact layout TigerBeetle writes (minified, its field order;
//! see `encode`), read with a cursor. Anything else — whitespace, another order, unknown or
//! duplicate fields, escapes, a non-canonical or out-of-range integer — gives `None`, and the
//! serde path (`wire`) decides, so what is accepted and every error stay exactly the serde
//! path's. Measured with `cargo bench --bench codec` (BENCHMARKS.md): decoding about 3 times
//! faster than serde.

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
