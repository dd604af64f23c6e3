//! Exact sums of u128 balances over many accounts. A ledger's Σ debits_posted can exceed
//! u128::MAX (every account is bounded, their sum is not), so the double-entry check adds into
//! 256 bits (arrow's `i256`, already in the tree for Decimal256): never floats, never wrapping.

use std::fmt;

use arrow::datatypes::i256;

/// A non-negative integer below 2^255 (arrow's 256-bit integer, kept ≥ 0 by the API): room for
/// the sum of up to 2^127 u128 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct WideSum(i256);

impl WideSum {
    pub fn add(&mut self, v: u128) {
        self.0 = self
            .0
            .checked_add(i256::from_parts(v, 0))
            .expect("a sum of fewer than 2^127 u128 values fits in 255 bits");
    }

    /// Subtracts a value that was added before (the caller's invariant: the sum stays ≥ 0).
    pub fn sub(&mut self, v: u128) {
        let difference = self.0.wrapping_sub(i256::from_parts(v, 0));
        assert!(
            !difference.is_negative(),
            "subtracting a value that was added keeps the sum non-negative"
        );
        self.0 = difference;
    }
}

impl From<u128> for WideSum {
    fn from(v: u128) -> Self {
        WideSum(i256::from_parts(v, 0))
    }
}

impl fmt::Display for WideSum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_past_u128_max_are_exact() {
        let mut s = WideSum::default();
        s.add(u128::MAX);
        s.add(u128::MAX);
        // 2·(2^128 − 1) = 680564733841876926926749214863536422910
        assert_eq!(s.to_string(), "680564733841876926926749214863536422910");
        s.add(2);
        assert_eq!(s.to_string(), "680564733841876926926749214863536422912");
        s.sub(u128::MAX);
        s.sub(u128::MAX);
        assert_eq!(s, WideSum::from(2));
        assert_eq!(s.to_string(), "2");
    }

    #[test]
    fn equal_sums_compare_equal_whatever_the_order() {
        let (mut a, mut b) = (WideSum::default(), WideSum::default());
        for v in [u128::MAX, 1, 1 << 100, u128::MAX - 5] {
            a.add(v);
        }
        for v in [u128::MAX - 5, 1 << 100, 1, u128::MAX] {
            b.add(v);
        }
        assert_eq!(a, b);
        b.sub(1);
        assert_ne!(a, b);
    }

    #[test]
    fn sums_of_many_u128_max_are_exact() {
        // 2^20 accounts at u128::MAX each: far past u128::MAX, and back to zero.
        const COUNT: u32 = 1 << 20;
        let mut s = WideSum::default();
        for _ in 0..COUNT {
            s.add(u128::MAX);
        }
        // (2^128 − 1)·2^20 = 2^148 − 2^20.
        assert_eq!(
            s.to_string(),
            "356811923176489970264571492362373784094638080"
        );
        for _ in 0..COUNT {
            s.sub(u128::MAX);
        }
        assert_eq!(s, WideSum::default());
        assert_eq!(s.to_string(), "0");
    }

    #[test]
    #[should_panic(expected = "keeps the sum non-negative")]
    fn subtracting_more_than_was_added_is_a_programmer_error() {
        let mut s = WideSum::from(1);
        s.sub(2);
    }
}
