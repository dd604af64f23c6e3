//! TigerBeetle's limits and units, as ledgerlake depends on them (TigerBeetle 0.16 with its
//! default configuration). Each is defined once here; a module with a tighter bound of its own
//! names it after what it bounds.

/// A request or reply is at most 1 MiB (`message_size_max`), its 256-byte header included.
pub const MESSAGE_SIZE_MAX_BYTES: usize = 1 << 20;
/// The header of every message.
pub const MESSAGE_HEADER_SIZE_BYTES: usize = 256;
/// Accounts, transfers, account balances and query filters are 128 bytes each.
pub const EVENT_SIZE_BYTES: usize = 128;

/// The most events one request carries (`create_accounts`, `create_transfers`,
/// `lookup_accounts`), and the most objects one query returns (`query_accounts`,
/// `query_transfers`, `get_account_transfers`, `get_account_balances`): the message body holds
/// (1 MiB − 256 B) / 128 B = 8,190 slots, and one goes to the trailer that frames the batch.
pub const BATCH_EVENTS_MAX: usize =
    (MESSAGE_SIZE_MAX_BYTES - MESSAGE_HEADER_SIZE_BYTES) / EVENT_SIZE_BYTES - 1;

/// [`BATCH_EVENTS_MAX`] as a query filter's `limit`.
pub const QUERY_LIMIT_MAX: u32 = BATCH_EVENTS_MAX as u32;

const _: () = assert!(BATCH_EVENTS_MAX == 8_189);

/// Timestamps are nanoseconds since the Unix epoch; a pending transfer's `timeout` is seconds.
pub const NS_PER_S: u64 = 1_000_000_000;

/// When a pending transfer created at `timestamp` (ns) with `timeout_s` (seconds, 0 for none)
/// expires: `None` without a timeout.
pub fn expires_at(timestamp: u64, timeout_s: u32) -> Option<u64> {
    (timeout_s > 0).then(|| timestamp + u64::from(timeout_s) * NS_PER_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_limit_fills_one_message() {
        let body = MESSAGE_SIZE_MAX_BYTES - MESSAGE_HEADER_SIZE_BYTES;
        assert!((BATCH_EVENTS_MAX + 1) * EVENT_SIZE_BYTES <= body);
        assert!((BATCH_EVENTS_MAX + 2) * EVENT_SIZE_BYTES > body);
    }

    #[test]
    fn a_timeout_of_zero_never_expires() {
        assert_eq!(expires_at(5, 0), None);
        assert_eq!(expires_at(5, 2), Some(5 + 2 * NS_PER_S));
    }
}
