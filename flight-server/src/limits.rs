//! Admission: at most `max_concurrent_queries` run at once, up to
//! `max_queued_queries` wait for a slot, and beyond that a query is refused
//! with `RESOURCE_EXHAUSTED` so the client can retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

/// The server's query slots and queue.
#[derive(Debug)]
pub(crate) struct Admission {
    slots: Arc<Semaphore>,
    running_limit: usize,
    queued: AtomicUsize,
    queue_limit: usize,
}

/// A query's slot, held while it runs; `waited` is how long it queued.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    /// Time spent in the queue.
    pub(crate) waited: Duration,
}

impl Admission {
    /// `running` slots and a queue of `queued`.
    pub(crate) fn new(running: usize, queued: usize) -> Self {
        Admission {
            slots: Arc::new(Semaphore::new(running)),
            running_limit: running,
            queued: AtomicUsize::new(0),
            queue_limit: queued,
        }
    }

    /// Waits for a slot, or refuses at once when the queue is full.
    pub(crate) async fn admit(&self) -> Result<Slot, Status> {
        let started = Instant::now();
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(Slot {
                _permit: permit,
                waited: Duration::ZERO,
            });
        }
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.queue_limit {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(Status::resource_exhausted(format!(
                "server busy: {} queries running and {} waiting (server.max_concurrent_queries, \
                 server.max_queued_queries); retry shortly",
                self.running_limit, self.queue_limit
            )));
        }
        // leaves the queue even when the waiting request is dropped
        let _in_queue = QueuePlace(&self.queued);
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the server is shutting down"))?;
        Ok(Slot {
            _permit: permit,
            waited: started.elapsed(),
        })
    }
}

struct QueuePlace<'a>(&'a AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queue_then_refuse() -> Result<(), Status> {
        let admission = Arc::new(Admission::new(1, 1));
        let first = admission.admit().await?;
        let queued = {
            let a = Arc::clone(&admission);
            tokio::spawn(async move { a.admit().await.map(|s| s.waited) })
        };
        while admission.queued.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let refused = admission.admit().await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("retry"), "{}", refused.message());
        drop(first);
        let waited = queued
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        assert!(waited > Duration::ZERO);
        assert_eq!(admission.queued.load(Ordering::SeqCst), 0);
        Ok(())
    }
}
