//! The accounts of a run: their roles' flags, codes and user data.

use super::rng::Rng;
use super::*;

pub(super) fn new_acct(
    rng: &mut Rng,
    accts: &mut Vec<Acct>,
    id: u128,
    ledger: u32,
    role: Role,
) -> usize {
    let dmnec = match role {
        Role::DebitLimited => true,
        Role::Closable => accts.len().is_multiple_of(2),
        _ => false,
    };
    let cmned = match role {
        Role::CreditLimited => true,
        Role::Closable => !dmnec,
        _ => false,
    };
    let mut flags = account::Flags::empty();
    if dmnec {
        flags |= account::Flags::DEBITS_MUST_NOT_EXCEED_CREDITS;
    }
    if cmned {
        flags |= account::Flags::CREDITS_MUST_NOT_EXCEED_DEBITS;
    }
    if role == Role::Extreme || rng.percent(30) {
        flags |= account::Flags::HISTORY;
    }
    let code = if rng.percent(3) {
        u16::MAX
    } else {
        rng.range(1, 100) as u16
    };
    let account = Account::new(id, ledger, code)
        .with_flags(flags)
        .with_user_data_128(user_data_128(rng))
        .with_user_data_64(user_data_64(rng))
        .with_user_data_32(user_data_32(rng));
    accts.push(Acct {
        account,
        role,
        dmnec,
        cmned,
        bal: Bal::default(),
        expiring_dp: 0,
        expiring_cp: 0,
    });
    accts.len() - 1
}

pub(super) fn user_data_128(rng: &mut Rng) -> u128 {
    match rng.next_u64() % 100 {
        0..=29 => 0,
        30..=34 => u128::MAX,
        35..=59 => rng.range(1, P53),
        _ => rng.u128(),
    }
}

pub(super) fn user_data_64(rng: &mut Rng) -> u64 {
    match rng.next_u64() % 100 {
        0..=29 => 0,
        30..=34 => u64::MAX,
        35..=59 => rng.range(1, P53) as u64,
        _ => rng.next_u64(),
    }
}

pub(super) fn user_data_32(rng: &mut Rng) -> u32 {
    match rng.next_u64() % 100 {
        0..=29 => 0,
        30..=34 => u32::MAX,
        _ => rng.next_u64() as u32,
    }
}
