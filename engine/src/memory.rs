//! The memory limit: parsing `"8GB"` / `"75%"` and building the pool that enforces it.

use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};

use crate::error::EngineError;
use crate::repartition_buffers::GrantRepartitionBuffers;

/// Bytes for a limit written as `"8GB"`, `"512MiB"`, `"1024"` (bytes) or `"75%"` of
/// `total_memory`. `"0"` and `"unlimited"` mean no limit (`None`).
pub fn parse_memory_limit(text: &str, total_memory: u64) -> Result<Option<usize>, EngineError> {
    let t = text.trim();
    let bad = || {
        EngineError::Config(format!(
            "memory_limit must be a size like \"8GB\" or \"512MiB\", a share like \"75%\", or \"unlimited\"; got \"{text}\""
        ))
    };
    if t.eq_ignore_ascii_case("unlimited") || t == "0" {
        return Ok(None);
    }
    if let Some(pct) = t.strip_suffix('%') {
        let pct: f64 = pct.trim().parse().map_err(|_| bad())?;
        if !(pct > 0.0 && pct <= 100.0) {
            return Err(bad());
        }
        return Ok(Some((total_memory as f64 * pct / 100.0) as usize));
    }
    parse_size(t).map(Some).ok_or_else(bad)
}

/// Bytes for a size written as `"8GB"`, `"512MiB"` or `"1024"` (bytes); `None`
/// for anything else, and for less than one byte.
pub fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024f64.powi(4),
        _ => return None,
    };
    let bytes = number * scale;
    (bytes >= 1.0).then_some(bytes as usize)
}

/// The machine's total memory in bytes (from `/proc/meminfo`; 8 GiB where unknown).
pub fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(8 << 30)
}

/// A pool of `bytes` that spilling operators share fairly, that names the
/// largest consumers when a query is refused, and that grants repartitions'
/// buffers (see `repartition_buffers`).
pub(crate) fn memory_pool(bytes: usize) -> Arc<dyn MemoryPool> {
    let top = NonZeroUsize::MIN.saturating_add(4);
    let fair = TrackConsumersPool::new(FairSpillPool::new(bytes), top);
    Arc::new(GrantRepartitionBuffers(fair))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_shares() -> Result<(), EngineError> {
        assert_eq!(parse_memory_limit("8GB", 0)?, Some(8_000_000_000));
        assert_eq!(parse_memory_limit("512MiB", 0)?, Some(512 << 20));
        assert_eq!(parse_memory_limit(" 1.5 g ", 0)?, Some(1_500_000_000));
        assert_eq!(parse_memory_limit("4096", 0)?, Some(4096));
        assert_eq!(parse_memory_limit("50%", 1000)?, Some(500));
        assert_eq!(parse_memory_limit("unlimited", 1000)?, None);
        for bad in ["", "GB", "8XB", "150%", "-1GB", "0%"] {
            let e = parse_memory_limit(bad, 1000)
                .err()
                .ok_or(EngineError::Internal("expected an error".into()))?
                .to_string();
            assert!(e.contains("memory_limit"), "{bad}: {e}");
        }
        Ok(())
    }
}
