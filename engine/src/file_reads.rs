//! Each table file read behind a fence: an error or a panic while opening or
//! decoding one Parquet file (a flipped byte in a page, a footer whose
//! embedded Arrow schema the reader cannot handle) fails the query with an
//! error that names the file, instead of an anonymous "Parquet error" or a
//! crashed process. A physical optimizer rule, run last, wraps every Parquet
//! scan's source; the wrapper changes nothing else about the scan.
//!
//! Panics are caught where they happen (the scan's synchronous planning steps
//! and each poll of its futures and streams); one raised inside the Parquet
//! readers is named as the file's, any other (a function evaluated in the scan)
//! unwinds on. [`install_panic_hook`] keeps the readers' caught panics out of
//! stderr.

use std::any::Any;
use std::cell::Cell;
use std::fmt::{self, Formatter};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    FileOpener, FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::parquet::errors::ParquetError;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter_pushdown::FilterPushdownPropagation;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::{DisplayFormatType, ExecutionPlan, SortOrderPushdownResult};
use datafusion_datasource::morsel::{Morsel, MorselPlan, MorselPlanner, Morselizer};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream, StreamExt};
use futures::{FutureExt, TryFutureExt};
use object_store::ObjectStore;

use crate::file_scans::rewrite_file_scans;
use crate::parquet_guard::bad_file_message;

/// Wraps every Parquet scan's source so that its reads are fenced.
#[derive(Debug, Default)]
pub(crate) struct FenceFileReads;

impl PhysicalOptimizerRule for FenceFileReads {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrite_file_scans(plan, |scan| {
            if !scan.file_source().is::<ParquetSource>() {
                return None;
            }
            let source = Arc::new(Fenced(Arc::clone(scan.file_source())));
            Some(
                FileScanConfigBuilder::from(scan.clone())
                    .with_source(source)
                    .build(),
            )
        })
    }

    fn name(&self) -> &str {
        "fence_file_reads"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A file source whose reads are fenced; everything else is the inner source's.
struct Fenced(Arc<dyn FileSource>);

impl fmt::Debug for Fenced {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        write!(f, "Fenced({})", self.0.file_type())
    }
}

fn fenced(source: Arc<dyn FileSource>) -> Arc<dyn FileSource> {
    Arc::new(Fenced(source))
}

impl FileSource for Fenced {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        self.0
            .create_file_opener(object_store, base_config, partition)
    }

    fn create_morselizer(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        partition: usize,
    ) -> Result<Box<dyn Morselizer>> {
        let inner = self
            .0
            .create_morselizer(object_store, base_config, partition)?;
        Ok(Box::new(FencedMorselizer(inner)))
    }

    fn table_schema(&self) -> &TableSchema {
        self.0.table_schema()
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        fenced(self.0.with_batch_size(batch_size))
    }

    fn filter(&self) -> Option<Arc<dyn PhysicalExpr>> {
        self.0.filter()
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        self.0.projection()
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        self.0.metrics()
    }

    fn file_type(&self) -> &str {
        self.0.file_type()
    }

    fn fmt_extra(&self, t: DisplayFormatType, f: &mut Formatter) -> fmt::Result {
        self.0.fmt_extra(t, f)
    }

    fn supports_repartitioning(&self) -> bool {
        self.0.supports_repartitioning()
    }

    fn try_pushdown_filters(
        &self,
        filters: Vec<Arc<dyn PhysicalExpr>>,
        config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn FileSource>>> {
        let mut result = self.0.try_pushdown_filters(filters, config)?;
        result.updated_node = result.updated_node.map(fenced);
        Ok(result)
    }

    fn try_pushdown_sort(
        &self,
        order: &[PhysicalSortExpr],
        eq_properties: &EquivalenceProperties,
    ) -> Result<SortOrderPushdownResult<Arc<dyn FileSource>>> {
        Ok(self.0.try_pushdown_sort(order, eq_properties)?.map(fenced))
    }

    fn reorder_files(&self, files: Vec<PartitionedFile>) -> Vec<PartitionedFile> {
        self.0.reorder_files(files)
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn FileSource>>> {
        Ok(self.0.try_pushdown_projection(projection)?.map(fenced))
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.0.apply_expressions(f)
    }
}

#[derive(Debug)]
struct FencedMorselizer(Box<dyn Morselizer>);

impl Morselizer for FencedMorselizer {
    fn plan_file(&self, file: PartitionedFile) -> Result<Box<dyn MorselPlanner>> {
        let path = file.object_meta.location.to_string();
        let inner = fence(&path, || self.0.plan_file(file))?;
        Ok(Box::new(FencedPlanner { path, inner }))
    }
}

/// Plans one file's reads; what it plans (morsels, further planners, the
/// I/O that precedes them) is fenced with the file's name.
#[derive(Debug)]
struct FencedPlanner {
    path: String,
    inner: Box<dyn MorselPlanner>,
}

impl MorselPlanner for FencedPlanner {
    fn plan(self: Box<Self>) -> Result<Option<MorselPlan>> {
        let FencedPlanner { path, inner } = *self;
        let Some(mut plan) = fence(&path, || inner.plan())? else {
            return Ok(None);
        };
        let planner = |path: &String| {
            let path = path.clone();
            move |inner| Box::new(FencedPlanner { path, inner }) as Box<dyn MorselPlanner>
        };
        let morsels = plan
            .take_morsels()
            .into_iter()
            .map(|inner| {
                Box::new(FencedMorsel {
                    path: path.clone(),
                    inner,
                }) as Box<dyn Morsel>
            })
            .collect();
        let planners = plan
            .take_ready_planners()
            .into_iter()
            .map(|inner| planner(&path)(inner))
            .collect();
        let pending = plan.take_pending_planner();
        let mut fenced = MorselPlan::new()
            .with_morsels(morsels)
            .with_planners(planners);
        if let Some(pending) = pending {
            let io = fenced_future(&path, pending.into_future());
            fenced.set_pending_planner(io.map_ok(planner(&path)));
        }
        Ok(Some(fenced))
    }
}

#[derive(Debug)]
struct FencedMorsel {
    path: String,
    inner: Box<dyn Morsel>,
}

impl Morsel for FencedMorsel {
    fn into_stream(self: Box<Self>) -> BoxStream<'static, Result<RecordBatch>> {
        let FencedMorsel { path, inner } = *self;
        let inner = fence(&path, || Ok(inner.into_stream()));
        match inner {
            Ok(inner) => FencedStream { path, inner }.boxed(),
            Err(e) => futures::stream::once(async { Err(e) }).boxed(),
        }
    }
}

/// `work`, with an error or panic reading the file at `path` named.
pub(crate) fn fenced_future<'a, T: 'a>(
    path: &str,
    work: impl Future<Output = Result<T>> + Send + 'a,
) -> impl Future<Output = Result<T>> + Send + 'a {
    FencedFuture {
        path: path.to_string(),
        inner: work.boxed(),
    }
}

struct FencedFuture<'a, T> {
    path: String,
    inner: BoxFuture<'a, Result<T>>,
}

impl<T> Future for FencedFuture<'_, T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let inner = &mut this.inner;
        match fence(&this.path, || Ok(inner.poll_unpin(cx))) {
            Ok(Poll::Ready(result)) => Poll::Ready(result.map_err(|e| named(&this.path, e))),
            Ok(Poll::Pending) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

struct FencedStream {
    path: String,
    inner: BoxStream<'static, Result<RecordBatch>>,
}

impl Stream for FencedStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let inner = &mut this.inner;
        match fence(&this.path, || Ok(inner.poll_next_unpin(cx))) {
            Ok(Poll::Ready(Some(result))) => {
                Poll::Ready(Some(result.map_err(|e| named(&this.path, e))))
            }
            Ok(other) => other,
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

thread_local! {
    /// How many fences this thread is inside.
    static FENCED: Cell<usize> = const { Cell::new(0) };
    /// Whether the last panic on this thread inside a fence came from the
    /// code that reads files (rather than, say, a function evaluated in the scan).
    static READER_PANICKED: Cell<bool> = const { Cell::new(false) };
}

/// Source paths of the crates that decode Parquet files and their footers.
const READER_CRATES: [&str; 5] = [
    "/parquet-",
    "/arrow-ipc-",
    "/datafusion-datasource-parquet-",
    "/flatbuffers-",
    "/bytes-",
];

fn in_reader(location: Option<&std::panic::Location<'_>>) -> bool {
    location.is_some_and(|l| READER_CRATES.iter().any(|c| l.file().contains(c)))
}

/// `work()`, with an error reading the file at `path`, or a panic of the code
/// that decodes it, named. Any other panic goes on unwinding (the query's own
/// bug, reported as such by whoever runs it).
pub(crate) fn fence<T>(path: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    FENCED.with(|n| n.set(n.get() + 1));
    let outcome = catch_unwind(AssertUnwindSafe(work));
    FENCED.with(|n| n.set(n.get() - 1));
    match outcome {
        Ok(result) => result.map_err(|e| named(path, e)),
        Err(panic) if READER_PANICKED.with(|p| p.replace(false)) => {
            let why = format!(
                "the Parquet reader failed on it ({})",
                panic_message(&*panic)
            );
            Err(DataFusionError::Execution(bad_file_message(path, &why)))
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// `e`, naming the file at `path` when it is an error decoding the file (other
/// errors — memory, cancellation, errors that name the file already — pass).
fn named(path: &str, e: DataFusionError) -> DataFusionError {
    let decoding = match &e {
        DataFusionError::ParquetError(_) | DataFusionError::ArrowError(..) => true,
        DataFusionError::External(inner) => inner.is::<ParquetError>() || inner.is::<ArrowError>(),
        _ => false,
    };
    let text = e.to_string();
    if !decoding || text.contains(path) {
        return e;
    }
    let prefixes = [
        "Arrow error: ",
        "Parquet error: ",
        "Parquet argument error: ",
        "External: ",
    ];
    let mut cause = text.as_str();
    while let Some(rest) = prefixes.iter().find_map(|p| cause.strip_prefix(p)) {
        cause = rest;
    }
    let why = format!("decoding it failed: {cause}");
    DataFusionError::Execution(bad_file_message(path, &why))
}

/// The message a panic carried.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Installs (once) a panic hook that leaves the file readers' panics inside a
/// fence unprinted (their message becomes the error naming the file) and
/// prints every other one as before.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let reader = FENCED.with(Cell::get) > 0 && in_reader(info.location());
            READER_PANICKED.with(|p| p.set(reader));
            if reader {
                tracing::debug!(panic = %info, "caught while reading a table file");
            } else {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_and_panics_name_the_file_and_others_pass() {
        install_panic_hook();
        let path = "events/part-7.parquet";
        let e = fence::<()>(path, || {
            Err(DataFusionError::ArrowError(
                Box::new(ArrowError::ParquetError(
                    "Parquet error: insufficient values".into(),
                )),
                None,
            ))
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(path) && e.contains("decoding it failed: insufficient values"),
            "{e}"
        );
        // a reader's panic is named (as the hook marks it); any other unwinds on
        READER_PANICKED.with(|p| p.set(true));
        let e = fence::<()>(path, || std::panic::resume_unwind(Box::new("Type NONE")))
            .unwrap_err()
            .to_string();
        assert!(e.contains(path) && e.contains("Type NONE"), "{e}");
        let other = catch_unwind(|| fence::<()>(path, || panic!("a function's bug")));
        assert!(
            other.is_err(),
            "a panic outside the reader was taken for the file's"
        );
        let e = fence::<()>(path, || {
            Err(DataFusionError::ResourcesExhausted("pool".into()))
        })
        .unwrap_err();
        assert!(matches!(e, DataFusionError::ResourcesExhausted(_)), "{e}");
        assert_eq!(fence(path, || Ok(7)).unwrap(), 7);
    }
}
