//! The workload's randomness: a seeded PRNG and the id generators (small ids, ids at the top
//! of the range and around 2^53, random 128-bit ids), stable across platforms and releases.

use super::P53;

/// splitmix64: tiny, fast, good enough for workloads, and stable across platforms and releases.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6A09_E667_F3BC_C908)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(super) fn below(&mut self, n: u128) -> u128 {
        debug_assert!(n > 0);
        if n <= u128::from(u64::MAX) {
            // Bias is at most n / 2^64: irrelevant here.
            u128::from(self.next_u64()) % n
        } else {
            self.u128() % n
        }
    }

    /// Uniform in `lo..=hi`.
    pub(super) fn range(&mut self, lo: u128, hi: u128) -> u128 {
        debug_assert!(lo <= hi);
        if lo == 0 && hi == u128::MAX {
            return self.u128();
        }
        lo + self.below(hi - lo + 1)
    }

    pub(super) fn index(&mut self, len: usize) -> usize {
        self.below(len as u128) as usize
    }

    pub(super) fn percent(&mut self, p: u32) -> bool {
        self.next_u64() % 100 < u64::from(p)
    }

    pub(super) fn pick(&mut self, v: &[usize]) -> usize {
        v[self.index(v.len())]
    }
}

// Ids

/// Ids from disjoint ranges so that they never collide: a small counter (JSON numbers),
/// random 2^53 < id < 2^64 (JSON strings that fit u64), random 128-bit ids, and a countdown
/// from u128::MAX - 1 (u128::MAX itself is rejected by TigerBeetle).
pub(super) struct IdGen {
    rng: Rng,
    next_small: u128,
    next_top: u128,
}

const TOP_RESERVED: u128 = 1 << 32;

impl IdGen {
    pub(super) fn new(seed: u64) -> IdGen {
        IdGen {
            rng: Rng::new(seed),
            next_small: 1,
            next_top: u128::MAX - 1,
        }
    }

    pub(super) fn small(&mut self) -> u128 {
        let id = self.next_small;
        self.next_small += 1;
        id
    }

    pub(super) fn top(&mut self) -> u128 {
        let id = self.next_top;
        self.next_top -= 1;
        id
    }

    pub(super) fn mid(&mut self) -> u128 {
        // Exclusive of the 2^53 - 1, 2^53, 2^53 + 1 boundary ids handed out by the scenarios.
        self.rng.range(P53 + 2, u128::from(u64::MAX))
    }

    pub(super) fn random(&mut self) -> u128 {
        loop {
            let id = self.rng.u128();
            if id > u128::from(u64::MAX) && id < u128::MAX - TOP_RESERVED {
                return id;
            }
        }
    }

    /// The usual mix: 55 % small, 35 % random 128-bit, 10 % between 2^53 and 2^64.
    pub(super) fn any(&mut self) -> u128 {
        match self.rng.next_u64() % 100 {
            0..=54 => self.small(),
            55..=89 => self.random(),
            _ => self.mid(),
        }
    }
}
