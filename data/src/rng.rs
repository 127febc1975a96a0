//! A small, fast, seedable random number generator (SplitMix64).
//!
//! Every member draws from its own stream, derived from the dataset seed and the
//! member id, so the rows do not depend on how members are spread over threads.

/// One random stream.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

/// SplitMix64's finaliser: a good 64-bit mixing function.
pub(crate) const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// The stream `stream` of member `member_id` under `seed`.
    pub(crate) fn new(seed: u64, member_id: u64, stream: u64) -> Self {
        Rng(mix(seed
            ^ mix(
                member_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ mix(stream)
            )))
    }

    /// Next 64 random bits.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (n > 0).
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    #[inline]
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    #[inline]
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Exponentially distributed with the given mean.
    #[inline]
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// Standard normal (Box–Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A Zipf-like (s ≈ 1) rank in `0..n`: rank `r` has probability ∝ `1/(r+1)`.
    #[inline]
    pub(crate) fn zipf(&mut self, n: u64) -> u64 {
        let r = ((n as f64 + 1.0).ln() * self.f64()).exp() as u64;
        r.saturating_sub(1).min(n - 1)
    }

    /// An index drawn from cumulative weights (the last entry is the total).
    #[inline]
    pub(crate) fn weighted(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative[cumulative.len() - 1];
        let x = self.f64() * total;
        cumulative
            .partition_point(|&c| c <= x)
            .min(cumulative.len() - 1)
    }
}

/// Running sums of `weights`, for [`Rng::weighted`].
pub(crate) fn cumulative(weights: &[f64]) -> Vec<f64> {
    weights
        .iter()
        .scan(0.0, |sum, w| {
            *sum += w;
            Some(*sum)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7, 1, 0).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::new(7, 1, 0).next_u64(), Rng::new(7, 2, 0).next_u64());
        assert_ne!(Rng::new(7, 1, 0).next_u64(), Rng::new(8, 1, 0).next_u64());
        assert_ne!(Rng::new(7, 1, 0).next_u64(), Rng::new(7, 1, 1).next_u64());
    }

    #[test]
    fn draws_stay_in_range() {
        let mut r = Rng::new(1, 1, 1);
        let cum = cumulative(&[1.0, 0.0, 3.0]);
        for _ in 0..10_000 {
            assert!(r.below(7) < 7);
            assert!((3..=5).contains(&r.range(3, 5)));
            assert!(r.zipf(10) < 10);
            assert_ne!(r.weighted(&cum), 1, "zero-weight entry drawn");
            let f = r.f64();
            assert!((0.0..1.0).contains(&f));
        }
    }
}
