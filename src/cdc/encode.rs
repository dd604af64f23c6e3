//! Encoding: the exact bytes `tigerbeetle amqp` publishes. Zig's `std.json.stringify` with
//! `emit_nonportable_numbers_as_strings` writes an integer as a string when it is outside
//! (-2^53, 2^53) — note 2^53 itself is already a string — and as a number otherwise.

use super::Event;

/// The smallest integer TigerBeetle writes as a JSON string.
pub const STRING_THRESHOLD: u128 = 1 << 53;

/// The longest encoding: every integer at its maximum, and a 17-character event type.
pub(super) const ENCODED_LEN_MAX: usize = 1425;

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
pub(super) fn encode_with(
    event: &Event,
    out: &mut String,
    as_string: &mut impl FnMut(u128) -> bool,
) {
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
pub(super) fn push_decimal(out: &mut String, v: u128) {
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
