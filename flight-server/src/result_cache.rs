//! Finished results of queries, kept so that a repeated query — a
//! dashboard's tiles, refreshed by many viewers — is answered without running
//! again. Keyed by [`audience_engine::result_key`]: the plan, the session's
//! settings and the version of each table read, so a load, a compaction or a
//! `SET` means a new key, never an old answer. Queries without a key (one
//! reading a non-Delta table, or calling `random()` or `now()`) always run.
//! At most `server.result_cache` bytes, the least recently used results
//! going first; no result over an eighth of it is kept.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use audience_engine::EngineError;
use datafusion::dataframe::DataFrame;
use futures::Stream;
use tonic::Status;

/// The results kept, by key.
#[derive(Debug)]
pub(crate) struct ResultCache {
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_key: HashMap<String, Entry>,
    bytes: usize,
    /// Counts lookups, to order entries by their last use.
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    batch: RecordBatch,
    bytes: usize,
    used: u64,
}

impl ResultCache {
    /// A cache of at most `capacity` bytes (0: none).
    pub(crate) fn new(capacity: usize) -> Self {
        ResultCache {
            capacity,
            entries: Mutex::default(),
        }
    }

    /// The largest result kept.
    fn largest(&self) -> usize {
        self.capacity / 8
    }

    /// The key of `frame`'s result, if the cache is on and the query has one.
    pub(crate) async fn key(&self, frame: &DataFrame) -> Result<Option<String>, EngineError> {
        match self.capacity {
            0 => Ok(None),
            _ => audience_engine::result_key(frame).await,
        }
    }

    /// The result kept under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<RecordBatch> {
        let mut entries = self.lock();
        entries.clock += 1;
        let now = entries.clock;
        let entry = entries.by_key.get_mut(key)?;
        entry.used = now;
        Some(entry.batch.clone())
    }

    /// Keeps `batch` under `key`, making room by dropping the least recently used.
    fn insert(&self, key: String, batch: RecordBatch) {
        let bytes = batch.get_array_memory_size() + key.len();
        if bytes > self.largest() {
            return;
        }
        let mut entries = self.lock();
        entries.clock += 1;
        let used = entries.clock;
        if let Some(old) = entries.by_key.remove(&key) {
            entries.bytes -= old.bytes;
        }
        while entries.bytes + bytes > self.capacity {
            let Some(oldest) = entries
                .by_key
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(old) = entries.by_key.remove(&oldest) {
                entries.bytes -= old.bytes;
            }
        }
        entries.bytes += bytes;
        entries.by_key.insert(key, Entry { batch, bytes, used });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A query's stream as served, keeping a copy of its batches; when it ends
/// complete (not failed, stopped or dropped) and small enough, the copy is
/// kept in the cache under `key`.
pub(crate) struct Keeping<S> {
    inner: S,
    schema: SchemaRef,
    cache: Arc<ResultCache>,
    /// `None` once the result is known not to be kept.
    key: Option<String>,
    kept: Vec<RecordBatch>,
    bytes: usize,
}

impl<S> Keeping<S> {
    /// Serves `inner` (of `schema`), keeping its result under `key` if any.
    pub(crate) fn new(
        inner: S,
        schema: SchemaRef,
        cache: Arc<ResultCache>,
        key: Option<String>,
    ) -> Self {
        Keeping {
            inner,
            schema,
            cache,
            key,
            kept: Vec::new(),
            bytes: 0,
        }
    }
}

impl<S> Stream for Keeping<S>
where
    S: Stream<Item = Result<RecordBatch, Status>> + Unpin,
{
    type Item = Result<RecordBatch, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        let this = &mut *self;
        match &polled {
            Poll::Ready(Some(Ok(batch))) if this.key.is_some() => {
                this.bytes += batch.get_array_memory_size();
                if this.bytes > this.cache.largest() {
                    this.key = None;
                    this.kept = Vec::new();
                } else {
                    this.kept.push(batch.clone());
                }
            }
            Poll::Ready(Some(Err(_))) => this.key = None,
            Poll::Ready(None) => {
                if let Some(key) = this.key.take() {
                    // one compact batch, holding no more than its rows
                    match concat_batches(&this.schema, &std::mem::take(&mut this.kept)) {
                        Ok(batch) => this.cache.insert(key, batch),
                        Err(e) => tracing::debug!(error = %e, "result not kept"),
                    }
                }
            }
            _ => {}
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use futures::StreamExt;

    fn batch(rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from_iter_values(0..rows))],
        )
        .unwrap()
    }

    async fn serve(cache: &Arc<ResultCache>, key: &str, items: Vec<Result<RecordBatch, Status>>) {
        let schema = batch(0).schema();
        let stream = futures::stream::iter(items);
        let mut keeping = Keeping::new(stream, schema, Arc::clone(cache), Some(key.into()));
        while keeping.next().await.is_some() {}
    }

    #[tokio::test]
    async fn a_complete_result_is_kept_whole_and_a_failed_or_large_one_is_not() {
        let cache = Arc::new(ResultCache::new(1 << 20));
        serve(&cache, "two batches", vec![Ok(batch(3)), Ok(batch(4))]).await;
        let kept = cache.get("two batches").expect("a complete result is kept");
        assert_eq!(kept.num_rows(), 7);
        serve(
            &cache,
            "failed",
            vec![Ok(batch(3)), Err(Status::internal("boom"))],
        )
        .await;
        assert!(cache.get("failed").is_none());
        // 20,000 rows (160 kB) are over an eighth of 1 MiB
        serve(&cache, "large", vec![Ok(batch(10_000)), Ok(batch(10_000))]).await;
        assert!(cache.get("large").is_none());
        // a stream dropped before its end keeps nothing
        let schema = batch(0).schema();
        let items = futures::stream::iter(vec![Ok(batch(3)), Ok(batch(3))]);
        let mut dropped = Keeping::new(items, schema, Arc::clone(&cache), Some("dropped".into()));
        assert!(dropped.next().await.is_some());
        drop(dropped);
        assert!(cache.get("dropped").is_none());
    }

    #[tokio::test]
    async fn the_least_recently_used_result_goes_first() {
        // 1,000 rows take about 8.1 kB: room for eight, not nine
        let capacity = 8 * 8_500;
        let cache = Arc::new(ResultCache::new(capacity));
        let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
        for key in keys {
            serve(&cache, key, vec![Ok(batch(1_000))]).await;
        }
        assert!(keys.iter().all(|k| cache.get(k).is_some()));
        assert!(cache.get("a").is_some());
        serve(&cache, "i", vec![Ok(batch(1_000))]).await;
        assert!(cache.get("b").is_none(), "b was the least recently used");
        for key in ["a", "c", "d", "e", "f", "g", "h", "i"] {
            assert!(cache.get(key).is_some(), "{key}");
        }
        assert!(cache.lock().bytes <= capacity);
    }
}
