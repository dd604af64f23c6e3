//! How one CDC event moves the balances of its two accounts, by TigerBeetle's rules
//! (`docs/reference/transfer.md`, `docs/coding/two-phase-transfers.md`, and
//! `post_or_void_pending_transfer` in `src/state_machine.zig`). An event carries the balances
//! *after* it, so the balances before it plus its movement must equal what it carries.
//!
//! | event            | debit account                     | credit account                      |
//! |------------------|-----------------------------------|-------------------------------------|
//! | `single_phase`   | debits_posted += amount           | credits_posted += amount            |
//! | `pending`        | debits_pending += amount          | credits_pending += amount           |
//! | `posted`         | debits_pending −= P; debits_posted += amount | credits_pending −= P; credits_posted += amount |
//! | `voided`, `expired` | debits_pending −= P            | credits_pending −= P                |
//!
//! `amount` is the event's transfer amount: the amount actually moved (a post of `u128::MAX`
//! or a balancing transfer carries what it really moved). `P` is the amount of the pending
//! transfer being resolved — for a post, the *original* pending transfer's amount (a partial
//! post releases all of it and posts only `amount`); an expiry's transfer is the pending
//! transfer itself.

use crate::cdc::{AccountFields, EventType};
use crate::lake::AccountState;

pub use crate::tb::{Balances, BALANCE_FIELDS};

impl Balances {
    pub fn of(state: &AccountState) -> Balances {
        Balances::from(state)
    }
}

impl From<&AccountState> for Balances {
    fn from(state: &AccountState) -> Self {
        Balances {
            debits_pending: state.debits_pending,
            debits_posted: state.debits_posted,
            credits_pending: state.credits_pending,
            credits_posted: state.credits_posted,
        }
    }
}

impl From<&AccountFields> for Balances {
    fn from(side: &AccountFields) -> Self {
        Balances {
            debits_pending: side.debits_pending,
            debits_posted: side.debits_posted,
            credits_pending: side.credits_pending,
            credits_posted: side.credits_posted,
        }
    }
}

/// Which of its two accounts an event moves: the debit account's `debits_*` or the credit
/// account's `credits_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Debit,
    Credit,
}

/// What an event does to the pending and posted balance of the side it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Movement {
    pub pending_add: u128,
    pub pending_release: u128,
    pub posted_add: u128,
}

/// The movement of an event. `pending_amount` is the amount of the pending transfer it
/// resolves (posted, voided, expired); it is ignored for the other two types.
pub fn movement(event_type: EventType, amount: u128, pending_amount: u128) -> Movement {
    match event_type {
        EventType::SinglePhase => Movement {
            posted_add: amount,
            ..Movement::default()
        },
        EventType::TwoPhasePending => Movement {
            pending_add: amount,
            ..Movement::default()
        },
        EventType::TwoPhasePosted => Movement {
            pending_release: pending_amount,
            posted_add: amount,
            ..Movement::default()
        },
        EventType::TwoPhaseVoided | EventType::TwoPhaseExpired => Movement {
            pending_release: pending_amount,
            ..Movement::default()
        },
    }
}

/// The balances after `movement` on `side`, or `None` if it would go below zero or above
/// `u128::MAX` (which TigerBeetle never does, so the chain is broken).
pub fn apply(before: &Balances, side: Side, m: &Movement) -> Option<Balances> {
    let step = |pending: u128, posted: u128| -> Option<(u128, u128)> {
        let pending = pending
            .checked_sub(m.pending_release)?
            .checked_add(m.pending_add)?;
        Some((pending, posted.checked_add(m.posted_add)?))
    };
    let mut after = *before;
    match side {
        Side::Debit => {
            (after.debits_pending, after.debits_posted) =
                step(before.debits_pending, before.debits_posted)?;
        }
        Side::Credit => {
            (after.credits_pending, after.credits_posted) =
                step(before.credits_pending, before.credits_posted)?;
        }
    }
    Some(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: [u128; 4]) -> Balances {
        Balances {
            debits_pending: v[0],
            debits_posted: v[1],
            credits_pending: v[2],
            credits_posted: v[3],
        }
    }

    #[test]
    fn each_event_type_moves_the_documented_fields() {
        let zero = Balances::default();
        let single = movement(EventType::SinglePhase, 5, 999);
        assert_eq!(apply(&zero, Side::Debit, &single), Some(b([0, 5, 0, 0])));
        assert_eq!(apply(&zero, Side::Credit, &single), Some(b([0, 0, 0, 5])));
        let pending = movement(EventType::TwoPhasePending, 7, 999);
        let held = apply(&zero, Side::Debit, &pending).unwrap();
        assert_eq!(held, b([7, 0, 0, 0]));
        // A partial post releases the whole pending amount and posts only its own amount.
        let post = movement(EventType::TwoPhasePosted, 3, 7);
        assert_eq!(apply(&held, Side::Debit, &post), Some(b([0, 3, 0, 0])));
        for t in [EventType::TwoPhaseVoided, EventType::TwoPhaseExpired] {
            assert_eq!(
                apply(&held, Side::Debit, &movement(t, 7, 7)),
                Some(zero),
                "{t:?}"
            );
        }
    }

    #[test]
    fn impossible_movements_are_none_not_wrapped() {
        let zero = Balances::default();
        let release = movement(EventType::TwoPhaseVoided, 1, 1);
        assert_eq!(apply(&zero, Side::Credit, &release), None);
        let full = b([0, u128::MAX, 0, 0]);
        assert_eq!(
            apply(&full, Side::Debit, &movement(EventType::SinglePhase, 1, 0)),
            None
        );
        assert_eq!(
            apply(&full, Side::Debit, &movement(EventType::SinglePhase, 0, 0)),
            Some(full)
        );
    }
}
