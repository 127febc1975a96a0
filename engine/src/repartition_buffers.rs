//! A memory pool in which a repartition's buffered batches are always
//! granted (and counted). DataFusion 55's `RepartitionExec` spills a batch it
//! cannot reserve memory for into a spill pool, and that pool deadlocks when
//! two of its input tasks spill at once: the reader waits on the older file
//! while the batch it needs is in the newer one, the writers wait on the
//! reader, every worker parks and the query neither answers nor fails
//! (apache/datafusion#24883, fixed after 55 by #24891; remove this file with
//! the upgrade). Found by the configuration matrix (reliability M3): a join of
//! `events`, `members` and `orders` under a 4 MiB pool, 2 partitions, hung in
//! 3 of 10 runs.
//!
//! A repartition buffers at most about a batch per output channel (its
//! channels' gate holds the senders back while every channel has data), so
//! granting it goes over the limit by that much at most; the bytes are
//! counted in the pool's reservations, and every other operator keeps its
//! share and spills or fails as before.

use std::fmt;

use datafusion::error::Result;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

/// The inner pool, except that a repartition channel's reservation always grows.
#[derive(Debug)]
pub(crate) struct GrantRepartitionBuffers<P>(pub(crate) P);

/// Whether `consumer` is a repartition's output channel (`RepartitionExec[3]`,
/// not its merge, `RepartitionExec[Merge 3]`, which fails cleanly).
fn repartition_channel(consumer: &str) -> bool {
    consumer
        .strip_prefix("RepartitionExec[")
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

impl<P: MemoryPool> fmt::Display for GrantRepartitionBuffers<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl<P: MemoryPool> MemoryPool for GrantRepartitionBuffers<P> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.0.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.0.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.0.grow(reservation, additional)
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.0.shrink(reservation, shrink)
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        if repartition_channel(reservation.consumer().name()) {
            self.0.grow(reservation, additional);
            return Ok(());
        }
        self.0.try_grow(reservation, additional)
    }

    fn reserved(&self) -> usize {
        self.0.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.0.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::execution::memory_pool::FairSpillPool;

    use super::*;

    #[test]
    fn only_repartition_channels_grow_past_the_limit() {
        assert!(repartition_channel("RepartitionExec[0]"));
        assert!(repartition_channel("RepartitionExec[15]"));
        for other in [
            "RepartitionExec[Merge 0]",
            "RepartitionExec[]",
            "ExternalSorter[0]",
        ] {
            assert!(!repartition_channel(other), "{other}");
        }
        let pool: Arc<dyn MemoryPool> = Arc::new(GrantRepartitionBuffers(FairSpillPool::new(1000)));
        let channel = MemoryConsumer::new("RepartitionExec[1]")
            .with_can_spill(true)
            .register(&pool);
        channel.try_grow(1500).unwrap();
        assert_eq!(pool.reserved(), 1500, "the granted bytes count");
        let sort = MemoryConsumer::new("ExternalSorter[0]")
            .with_can_spill(true)
            .register(&pool);
        // the others keep their fair share (half the pool, with two spillers)
        assert!(sort.try_grow(600).is_err(), "a sort past its share");
        sort.try_grow(400).unwrap();
        let merge = MemoryConsumer::new("RepartitionExec[Merge 0]").register(&pool);
        assert!(
            merge.try_grow(2000).is_err(),
            "a repartition's merge is refused"
        );
    }
}
