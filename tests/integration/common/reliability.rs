//! What the reliability tests share: their size (the CI slice, or the full run
//! that `scripts/reliability.sh` records), seeded randomness that prints its
//! seed, and the figures a full run writes.

use std::io::Write;

use super::test_server::TestConfig;

/// Whether this is the recorded full run (`AUDIENCE_RELIABILITY=full`) rather
/// than the CI slice.
pub fn full() -> bool {
    std::env::var("AUDIENCE_RELIABILITY").is_ok_and(|v| v == "full")
}

/// `ci` in the CI slice, `full` in the full run.
pub fn size(ci: usize, full_size: usize) -> usize {
    if full() { full_size } else { ci }
}

/// How long a time-bounded fuzzer runs: `AUDIENCE_FUZZ_SECONDS`, or `ci` /
/// `full_size` seconds.
pub fn fuzz_budget(ci: u64, full_size: u64) -> std::time::Duration {
    let seconds = std::env::var("AUDIENCE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full() { full_size } else { ci });
    std::time::Duration::from_secs(seconds)
}

/// A server configuration over the sample, or in the full run over
/// `AUDIENCE_RELIABILITY_DATA` (scale s).
pub fn server_config() -> TestConfig {
    match std::env::var_os("AUDIENCE_RELIABILITY_DATA") {
        Some(dir) if full() => TestConfig::default().with_data(dir.as_ref()),
        _ => TestConfig::default(),
    }
}

/// A seeded random stream (SplitMix64). The seed is `AUDIENCE_FUZZ_SEED` or
/// `default`, printed so that a failure can be replayed.
#[derive(Debug)]
pub struct Seeded(u64);

impl Seeded {
    pub fn new(test: &str, default: u64) -> Self {
        let seed = std::env::var("AUDIENCE_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default);
        println!("{test}: seed {seed} (replay with AUDIENCE_FUZZ_SEED={seed})");
        Seeded(seed)
    }

    /// A stream from `seed`, not printed (for streams derived from a printed seed).
    pub fn quiet(seed: u64) -> Self {
        Seeded(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Appends one row's figures to the full run's record
/// (`AUDIENCE_RELIABILITY_OUT`, a JSON-lines file); nothing in the CI slice.
pub fn record(row: &str, figures: serde_json::Value) {
    let Ok(path) = std::env::var("AUDIENCE_RELIABILITY_OUT") else {
        return;
    };
    let line = serde_json::json!({ "row": row, "full": full(), "figures": figures });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}
