//! Exact sums of u128 balances over many accounts. A ledger's Σ debits_posted can exceed
//! u128::MAX (every account is bounded, their sum is not), so the double-entry check adds into
//! 192 bits: never floats, never wrapping.

use std::fmt;

/// A non-negative integer below 2^192: `hi`·2^128 + `lo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct WideSum {
    hi: u64,
    lo: u128,
}

impl WideSum {
    pub fn add(&mut self, v: u128) {
        let (lo, carry) = self.lo.overflowing_add(v);
        self.lo = lo;
        self.hi = self
            .hi
            .checked_add(u64::from(carry))
            .expect("a sum of fewer than 2^64 u128 values fits in 192 bits");
    }

    /// Subtracts a value that was added before (the caller's invariant: the sum stays ≥ 0).
    pub fn sub(&mut self, v: u128) {
        let (lo, borrow) = self.lo.overflowing_sub(v);
        self.lo = lo;
        self.hi = self
            .hi
            .checked_sub(u64::from(borrow))
            .expect("subtracting a value that was added keeps the sum non-negative");
    }
}

impl From<u128> for WideSum {
    fn from(lo: u128) -> Self {
        WideSum { hi: 0, lo }
    }
}

impl fmt::Display for WideSum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.hi == 0 {
            return write!(f, "{}", self.lo);
        }
        // Long division by 10^19 over 64-bit limbs; each partial remainder fits in a u128.
        const CHUNK: u128 = 10_000_000_000_000_000_000;
        let mut limbs = [self.hi, (self.lo >> 64) as u64, self.lo as u64];
        let mut chunks = Vec::new();
        while limbs.iter().any(|&l| l != 0) {
            let mut rem: u128 = 0;
            for limb in limbs.iter_mut() {
                let cur = (rem << 64) | u128::from(*limb);
                *limb = (cur / CHUNK) as u64;
                rem = cur % CHUNK;
            }
            chunks.push(rem as u64);
        }
        let mut out = chunks.pop().expect("hi > 0").to_string();
        for c in chunks.iter().rev() {
            out.push_str(&format!("{c:019}"));
        }
        f.write_str(&out)
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
}
