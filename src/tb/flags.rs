//! Account and transfer flags. The client crate's bitflags ([`AccountFlags`],
//! [`TransferFlags`]) are the definition; the `u16` constants below are their bits, for the
//! `flags` fields of the CDC messages, the lake and [`super::Account`] / [`super::Transfer`],
//! which keep a source's flags bit for bit (bits this client version does not name included).

pub use tigerbeetle_unofficial::account::Flags as AccountFlags;
pub use tigerbeetle_unofficial::transfer::Flags as TransferFlags;

/// `AccountFlags` bits.
pub mod account {
    use super::AccountFlags as F;

    pub const LINKED: u16 = F::LINKED.bits();
    pub const DEBITS_MUST_NOT_EXCEED_CREDITS: u16 = F::DEBITS_MUST_NOT_EXCEED_CREDITS.bits();
    pub const CREDITS_MUST_NOT_EXCEED_DEBITS: u16 = F::CREDITS_MUST_NOT_EXCEED_DEBITS.bits();
    pub const HISTORY: u16 = F::HISTORY.bits();
    pub const IMPORTED: u16 = F::IMPORTED.bits();
    /// The only flag that changes after creation (closing and reopening an account).
    pub const CLOSED: u16 = F::CLOSED.bits();
}

/// `TransferFlags` bits.
pub mod transfer {
    use super::TransferFlags as F;

    pub const LINKED: u16 = F::LINKED.bits();
    pub const PENDING: u16 = F::PENDING.bits();
    pub const POST_PENDING_TRANSFER: u16 = F::POST_PENDING_TRANSFER.bits();
    pub const VOID_PENDING_TRANSFER: u16 = F::VOID_PENDING_TRANSFER.bits();
    pub const BALANCING_DEBIT: u16 = F::BALANCING_DEBIT.bits();
    pub const BALANCING_CREDIT: u16 = F::BALANCING_CREDIT.bits();
    pub const CLOSING_DEBIT: u16 = F::CLOSING_DEBIT.bits();
    pub const CLOSING_CREDIT: u16 = F::CLOSING_CREDIT.bits();
    pub const IMPORTED: u16 = F::IMPORTED.bits();
}

#[cfg(test)]
mod tests {
    #[test]
    fn bits_are_tigerbeetles() {
        // docs/reference/account.md#flags and transfer.md#flags.
        assert_eq!(super::account::LINKED, 1 << 0);
        assert_eq!(super::account::HISTORY, 1 << 3);
        assert_eq!(super::account::IMPORTED, 1 << 4);
        assert_eq!(super::account::CLOSED, 1 << 5);
        assert_eq!(super::transfer::PENDING, 1 << 1);
        assert_eq!(super::transfer::POST_PENDING_TRANSFER, 1 << 2);
        assert_eq!(super::transfer::VOID_PENDING_TRANSFER, 1 << 3);
        assert_eq!(super::transfer::IMPORTED, 1 << 8);
    }
}
