//! The runtime queries execute on, apart from the one that serves connections:
//! a query that keeps its threads busy without yielding (a nested-loop join,
//! say) then slows other queries, but logins, metadata calls, deadlines and
//! cancellations are still answered. Each query's stream is driven there and
//! handed over through a small channel (back-pressure: at most two batches
//! wait); dropping the served stream aborts the query's task.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use audience_engine::EngineError;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::PeakRecordingPool;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{FutureExt, Stream, StreamExt};
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The query runtime, shut down without waiting when the server goes.
#[derive(Debug)]
pub(crate) struct QueryRuntime {
    /// Taken on drop, to shut down without waiting.
    runtime: Option<Runtime>,
    handle: Handle,
}

impl QueryRuntime {
    /// A multi-threaded runtime sized so that a query always finds a free
    /// worker: a running query keeps at most one worker per core busy (its
    /// partitions), so `slots` queries that never yield still leave a core's
    /// worth of threads free, and the OS shares the cores among them all.
    pub(crate) fn new(slots: usize) -> Result<Self, EngineError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runtime = Builder::new_multi_thread()
            .worker_threads(cores * (slots + 1))
            .thread_name("audience-query")
            .on_thread_park(audience_engine::idle_memory::on_thread_park)
            .enable_all()
            .build()
            .map_err(|e| EngineError::Internal(format!("cannot start the query runtime: {e}")))?;
        Ok(QueryRuntime {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Executes `frame` on the query runtime; its batches arrive through the
    /// returned stream. The returned pool is the query's own (with its limit,
    /// in front of the engine's; its peak goes in the query's log line).
    pub(crate) fn execute(
        &self,
        frame: DataFrame,
    ) -> (SendableRecordBatchStream, Arc<PeakRecordingPool>) {
        let schema = Arc::clone(frame.schema().inner());
        let (task, pool) = audience_engine::query_task(frame.task_ctx());
        let (sender, receiver) = mpsc::channel(2);
        let run = async move {
            let produced = AssertUnwindSafe(produce(frame, task, &sender))
                .catch_unwind()
                .await;
            // a panic must not end the stream as if the result were complete
            if let Err(panic) = produced {
                let _ = sender.send(Err(panicked(&*panic))).await;
            }
        };
        let task = self.handle.spawn(run);
        let stream = RecordBatchStreamAdapter::new(schema, Received { receiver, task });
        (Box::pin(stream), pool)
    }
}

/// Plans and runs `frame`, sending its batches (or its error) to `sender`
/// until the result ends or the client's stream is gone.
async fn produce(
    frame: DataFrame,
    task: Arc<TaskContext>,
    sender: &mpsc::Sender<Result<RecordBatch, DataFusionError>>,
) {
    let planned = frame.create_physical_plan().await;
    let mut stream = match planned.and_then(|plan| execute_stream(plan, task)) {
        Ok(stream) => stream,
        Err(e) => {
            let _ = sender.send(Err(e)).await;
            return;
        }
    };
    while let Some(batch) = stream.next().await {
        if sender.send(batch).await.is_err() {
            return; // the client's stream is gone
        }
    }
}

/// The error of a query that panicked: a bug, reported as such; the server
/// goes on serving.
fn panicked(panic: &(dyn std::any::Any + Send)) -> DataFusionError {
    let text = audience_engine::panic_message(panic);
    DataFusionError::Internal(format!("the query panicked: {text}"))
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Batches received from a query's task, which is aborted when this is dropped.
struct Received {
    receiver: mpsc::Receiver<Result<RecordBatch, DataFusionError>>,
    task: JoinHandle<()>,
}

impl Stream for Received {
    type Item = Result<RecordBatch, DataFusionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

impl Drop for Received {
    fn drop(&mut self) {
        self.task.abort();
    }
}
